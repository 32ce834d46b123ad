/*-------------------------------------------------------------------------
 *
 * history.c
 *	  The field-level audit trail: one generic trigger that writes
 *	  salesmgmt.change_log for every audited table, the guard that keeps
 *	  the log append-only, and its purge (docs/history.md).
 *
 * The trigger is a statement trigger with transition tables
 * (salesmgmt._audit_table creates one per event): a bulk UPDATE of
 * 100,000 rows reads the old and the new versions in step, compares them
 * column by column in binary, and writes one change_log row per changed
 * row the way COPY writes rows (table_multi_insert in batches, then the
 * index entries), without SPI and without re-planning anything.  Values
 * become jsonb as to_jsonb would make them; the common scalar types are
 * converted directly, any other type through to_jsonb itself.
 *
 * The trigger arguments name the table's id column, and optionally the
 * columns holding the owning rep and the account: change_log keeps them
 * for its row-level security (a rep sees the history of the rows of reps
 * they see, or of accounts they see).  Any further arguments name columns
 * whose updates are not logged (derived values such as a lead's score):
 * they are neither compared nor recorded, so an UPDATE of only them logs
 * nothing; inserts and deletes still log the whole row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "parser/parse_relation.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "salesmgmt.h"
#include "compat.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_audit_trigger);
PG_FUNCTION_INFO_V1(sm_change_log_guard);
PG_FUNCTION_INFO_V1(sm_purge_change_log);
PG_FUNCTION_INFO_V1(sm_outer_role);

/* rows written per table_multi_insert */
#define HS_BATCH 1000

/* salesmgmt.change_log_retention: '' keeps the log forever */
static char *hs_retention = NULL;

/* true while purge_change_log deletes: the guard lets it through */
static bool hs_purging = false;

/* how a column's values become jsonb */
typedef enum HsKind
{
	HS_BOOL,
	HS_INT2,
	HS_INT4,
	HS_INT8,
	HS_NUMERIC,
	HS_TEXT,					/* text, varchar: the bytes as they are */
	HS_DATETIME,				/* date, time(tz), timestamp(tz): ISO 8601 */
	HS_JSONB,
	HS_OTHER					/* to_jsonb itself */
} HsKind;

typedef struct HsCol
{
	AttrNumber	attnum;
	bool		byval;
	int16		len;
	Oid			typid;
	HsKind		kind;
	char	   *name;
	int			namelen;
	Datum		name_text;
	bool		unlogged;		/* its updates are not logged */
	FmgrInfo	to_jsonb;		/* HS_OTHER */
} HsCol;

/* the columns of change_log, in the order the trigger fills them */
typedef enum HsLogCol
{
	HL_TABLE,
	HL_ROW,
	HL_OP,
	HL_COLUMNS,
	HL_OLD,
	HL_NEW,
	HL_TXID,
	HL_AT,
	HL_BY,
	HL_OWNER,
	HL_ACCOUNT,
	HL_NCOLS
} HsLogCol;

static const char *const hs_log_names[HL_NCOLS] = {
	"table_name", "row_id", "operation", "changed_columns", "old_values",
	"new_values", "txid", "changed_at", "changed_by", "owner_rep_id", "account_id"
};

/* a statement's writer into change_log */
typedef struct HsWriter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	BulkInsertState bistate;
	TupleTableSlot *slots[HS_BATCH];
	int			nused;
	int			attno[HL_NCOLS];
	ExprState **defaults;		/* change_id */
	MemoryContext batch_cxt;
	Datum		fixed[HL_NCOLS];	/* table, operation, txid, at, by */
} HsWriter;

/* the retention is an interval, or empty */
static bool
hs_check_retention(char **newval, void **extra, GucSource source)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	PG_TRY();
	{
		Interval   *keep = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(*newval),
																 ObjectIdGetDatum(InvalidOid),
																 Int32GetDatum(-1)));

		if (keep->month < 0 || keep->day < 0 || keep->time < 0)
			ok = false;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	if (!ok)
		GUC_check_errdetail("The retention is an interval that is not negative, such as '2 years', or empty to keep every change.");
	return ok;
}

void
sm_change_log_init(void)
{
	DefineCustomStringVariable("salesmgmt.change_log_retention",
							   "How long salesmgmt.change_log keeps changes; empty keeps them forever.",
							   "An interval such as '2 years'; salesmgmt.purge_change_log() without an argument deletes what is older.",
							   &hs_retention,
							   "",
							   PGC_SUSET,
							   0,
							   hs_check_retention, NULL, NULL);
}

/* ----------------------------------------------------------------------
 * Values as jsonb
 * ----------------------------------------------------------------------
 */

static void
hs_init_col(HsCol *c, Form_pg_attribute att)
{
	Oid			base = getBaseType(att->atttypid);

	c->attnum = att->attnum;
	c->byval = att->attbyval;
	c->len = att->attlen;
	c->typid = base;
	c->name = pstrdup(NameStr(att->attname));
	c->namelen = strlen(c->name);
	c->name_text = CStringGetTextDatum(c->name);
	c->unlogged = false;
	switch (base)
	{
		case BOOLOID:
			c->kind = HS_BOOL;
			break;
		case INT2OID:
			c->kind = HS_INT2;
			break;
		case INT4OID:
			c->kind = HS_INT4;
			break;
		case INT8OID:
			c->kind = HS_INT8;
			break;
		case NUMERICOID:
			c->kind = HS_NUMERIC;
			break;
		case TEXTOID:
		case VARCHAROID:
			c->kind = HS_TEXT;
			break;
		case DATEOID:
		case TIMEOID:
		case TIMETZOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			c->kind = HS_DATETIME;
			break;
		case JSONBOID:
			c->kind = HS_JSONB;
			break;
		default:
			{
				FuncExpr   *expr;

				c->kind = HS_OTHER;
				expr = makeFuncExpr(F_TO_JSONB, JSONBOID,
									list_make1(makeNullConst(att->atttypid, -1, InvalidOid)),
									InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
				fmgr_info(F_TO_JSONB, &c->to_jsonb);
				fmgr_info_set_expr((Node *) expr, &c->to_jsonb);
			}
			break;
	}
}

static void
hs_binary(JsonbValue *v, Jsonb *jb)
{
	v->type = jbvBinary;
	v->val.binary.data = &jb->root;
	v->val.binary.len = VARSIZE(jb) - VARHDRSZ;
}

static void
hs_string(JsonbValue *v, char *s)
{
	v->type = jbvString;
	v->val.string.val = s;
	v->val.string.len = strlen(s);
}

/* one value, as to_jsonb makes it, pushed as the value of the last key */
static void
hs_push_value(JsonbParseState **st, const HsCol *c, Datum d, bool isnull)
{
	JsonbValue	v;

	if (isnull)
		v.type = jbvNull;
	else
		switch (c->kind)
		{
			case HS_BOOL:
				v.type = jbvBool;
				v.val.boolean = DatumGetBool(d);
				break;
			case HS_INT2:
				v.type = jbvNumeric;
				v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int2_numeric, d));
				break;
			case HS_INT4:
				v.type = jbvNumeric;
				v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int4_numeric, d));
				break;
			case HS_INT8:
				v.type = jbvNumeric;
				v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric, d));
				break;
			case HS_NUMERIC:
				{
					Numeric		n = DatumGetNumeric(d);

					if (numeric_is_nan(n) || numeric_is_inf(n))
						hs_string(&v, DatumGetCString(DirectFunctionCall1(numeric_out, d)));
					else
					{
						v.type = jbvNumeric;
						v.val.numeric = n;
					}
				}
				break;
			case HS_TEXT:
				{
					text	   *t = DatumGetTextPP(d);

					v.type = jbvString;
					v.val.string.val = VARDATA_ANY(t);
					v.val.string.len = VARSIZE_ANY_EXHDR(t);
				}
				break;
			case HS_DATETIME:
				hs_string(&v, JsonEncodeDateTime(NULL, d, c->typid, NULL));
				break;
			case HS_JSONB:
				hs_binary(&v, DatumGetJsonbP(d));
				break;
			case HS_OTHER:
				hs_binary(&v, DatumGetJsonbP(FunctionCall1(&((HsCol *) c)->to_jsonb, d)));
				break;
		}
	pushJsonbValue(st, WJB_VALUE, &v);
}

static void
hs_push_key(JsonbParseState **st, const HsCol *c)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = c->name;
	k.val.string.len = c->namelen;
	pushJsonbValue(st, WJB_KEY, &k);
}

/* the columns of a row listed in which (all when which is NULL) */
static Datum
hs_row_jsonb(const HsCol *cols, int ncols, const bool *which, Datum *values, bool *nulls)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < ncols; i++)
	{
		int			a = cols[i].attnum - 1;

		if (which != NULL && !which[i])
			continue;
		hs_push_key(&st, &cols[i]);
		hs_push_value(&st, &cols[i], values[a], nulls[a]);
	}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(res));
}

/* ----------------------------------------------------------------------
 * The writer
 * ----------------------------------------------------------------------
 */

/*
 * Open change_log for batched inserts.  The trigger writes as the
 * extension, whatever the role changing the audited table: no privilege
 * or row-level security check applies to the log, as to any trigger's
 * own bookkeeping.
 */
static void
hs_open_writer(HsWriter *w, Relation audited)
{
	Oid			relid = sm_relation_oid("change_log");
	bool		set[MaxHeapAttributeNumber];

	memset(w, 0, sizeof(*w));
	w->rel = table_open(relid, RowExclusiveLock);
	w->rri = sm_open_insert_target(w->rel, &w->estate);
	w->bistate = GetBulkInsertState();
	w->batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "salesmgmt change_log batch",
										 ALLOCSET_DEFAULT_SIZES);

	memset(set, 0, sizeof(set));
	for (int c = 0; c < HL_NCOLS; c++)
	{
		w->attno[c] = get_attnum(relid, hs_log_names[c]) - 1;
		if (w->attno[c] < 0)
			elog(ERROR, "column \"%s\" of salesmgmt.change_log not found", hs_log_names[c]);
		set[w->attno[c]] = true;
	}
	w->defaults = sm_column_defaults(w->rel, set);

	w->fixed[HL_TABLE] = CStringGetTextDatum(
		quote_qualified_identifier(get_namespace_name(RelationGetNamespace(audited)),
								   RelationGetRelationName(audited)));
	w->fixed[HL_TXID] = Int64GetDatum((int64) U64FromFullTransactionId(GetTopFullTransactionId()));
	w->fixed[HL_AT] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	w->fixed[HL_BY] = DirectFunctionCall1(namein,
										  CStringGetDatum(GetUserNameFromId(GetOuterUserId(), false)));
}

static void
hs_flush(HsWriter *w)
{
	if (w->nused == 0)
		return;
	w->estate->es_output_cid = GetCurrentCommandId(true);
	table_multi_insert(w->rel, w->slots, w->nused, w->estate->es_output_cid, 0, w->bistate);
	for (int i = 0; i < w->nused; i++)
	{
		if (w->rri->ri_NumIndices > 0)
			sm_insert_index_tuples(w->rri, w->slots[i], w->estate);
		ExecClearTuple(w->slots[i]);
		ResetPerTupleExprContext(w->estate);
	}
	w->nused = 0;
	MemoryContextReset(w->batch_cxt);
}

static void
hs_close_writer(HsWriter *w)
{
	hs_flush(w);
	FreeBulkInsertState(w->bistate);
	ExecCloseIndices(w->rri);
	for (int i = 0; i < HS_BATCH; i++)
		if (w->slots[i] != NULL)
			ExecDropSingleTupleTableSlot(w->slots[i]);
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
	MemoryContextDelete(w->batch_cxt);
}

/* the next slot of the batch, its fixed columns and defaults filled */
static TupleTableSlot *
hs_next_slot(HsWriter *w)
{
	TupleTableSlot *slot;
	TupleDesc	desc = RelationGetDescr(w->rel);
	ExprContext *econtext = GetPerTupleExprContext(w->estate);

	if (w->nused >= HS_BATCH)
		hs_flush(w);
	if (w->slots[w->nused] == NULL)
		w->slots[w->nused] = table_slot_create(w->rel, NULL);
	slot = w->slots[w->nused++];
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * desc->natts);
	for (int c = 0; c < HL_NCOLS; c++)
	{
		if (c == HL_TABLE || c == HL_OP || c == HL_TXID || c == HL_AT || c == HL_BY)
		{
			slot->tts_values[w->attno[c]] = w->fixed[c];
			slot->tts_isnull[w->attno[c]] = false;
		}
	}
	for (int a = 0; a < desc->natts; a++)
		if (w->defaults[a] != NULL)
			slot->tts_values[a] = ExecEvalExpr(w->defaults[a], econtext, &slot->tts_isnull[a]);
	return slot;
}

static void
hs_set(HsWriter *w, TupleTableSlot *slot, HsLogCol c, Datum v, bool isnull)
{
	slot->tts_values[w->attno[c]] = v;
	slot->tts_isnull[w->attno[c]] = isnull;
}

/* ----------------------------------------------------------------------
 * The trigger
 * ----------------------------------------------------------------------
 */

/* a restore (pg_restore, psql of a dump) loads the log as it was */
static bool
hs_loading_dump(Relation rel)
{
	if (row_security || check_function_bodies)
		return false;
	return sm_relation_ownercheck(RelationGetRelid(rel), GetUserId());
}

static AttrNumber
hs_arg_column(Relation rel, TriggerData *td, int n)
{
	const char *name;
	AttrNumber	a;

	if (td->tg_trigger->tgnargs <= n || td->tg_trigger->tgargs[n][0] == '\0')
		return InvalidAttrNumber;
	name = td->tg_trigger->tgargs[n];
	a = attnameAttNum(rel, name, false);
	if (a == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("audited table %s has no column \"%s\"", RelationGetRelationName(rel), name),
				 errhint("Call salesmgmt._audit_table again for the table to recreate its triggers.")));
	return a;
}

static Datum
hs_int64(Datum d, Oid typid)
{
	switch (typid)
	{
		case INT2OID:
			return Int64GetDatum((int64) DatumGetInt16(d));
		case INT4OID:
			return Int64GetDatum((int64) DatumGetInt32(d));
		default:
			return d;
	}
}

/*
 * salesmgmt._audit_trigger(id_column, owner_column, account_column):
 * AFTER INSERT, UPDATE or DELETE FOR EACH STATEMENT with the transition
 * tables of the event.  One change_log row per inserted or deleted row
 * (all its columns) and per updated row whose values changed (the changed
 * columns only, old and new).
 */
Datum
sm_audit_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	Tuplestorestate *oldtable = NULL;
	Tuplestorestate *newtable = NULL;
	TupleTableSlot *oldslot = NULL;
	TupleTableSlot *newslot = NULL;
	AttrNumber	id_att,
				owner_att,
				account_att;
	HsCol	   *cols;
	int			ncols = 0;
	bool	   *changed;
	Datum	   *names;
	Datum		all_names;
	const char *op;
	HsWriter	w;
	MemoryContext rowcxt;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		(TRIGGER_FIRED_BY_INSERT(td->tg_event) && td->tg_newtable == NULL) ||
		(TRIGGER_FIRED_BY_DELETE(td->tg_event) && td->tg_oldtable == NULL) ||
		(TRIGGER_FIRED_BY_UPDATE(td->tg_event) &&
		 (td->tg_oldtable == NULL || td->tg_newtable == NULL)) ||
		TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("salesmgmt._audit_trigger must be fired AFTER INSERT, UPDATE or DELETE FOR EACH STATEMENT with transition tables"),
				 errhint("Attach it with salesmgmt._audit_table(table).")));

	rel = td->tg_relation;
	oldtable = td->tg_oldtable;
	newtable = td->tg_newtable;
	if ((newtable != NULL ? tuplestore_tuple_count(newtable)
		 : tuplestore_tuple_count(oldtable)) == 0 || hs_loading_dump(rel))
		return PointerGetDatum(NULL);

	desc = RelationGetDescr(rel);
	id_att = hs_arg_column(rel, td, 0);
	if (id_att == InvalidAttrNumber)
		elog(ERROR, "salesmgmt._audit_trigger needs the id column as its first argument");
	owner_att = hs_arg_column(rel, td, 1);
	account_att = hs_arg_column(rel, td, 2);

	cols = palloc(sizeof(HsCol) * desc->natts);
	names = palloc(sizeof(Datum) * desc->natts);
	changed = palloc(sizeof(bool) * desc->natts);
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);

		if (att->attisdropped)
			continue;
		hs_init_col(&cols[ncols], att);
		names[ncols] = cols[ncols].name_text;
		ncols++;
	}
	all_names = PointerGetDatum(sm_make_array(names, NULL, ncols, TEXTOID));
	/* the arguments after the account column: columns whose updates are not logged */
	for (int n = 3; n < td->tg_trigger->tgnargs; n++)
	{
		AttrNumber	a = hs_arg_column(rel, td, n);

		for (int i = 0; i < ncols; i++)
			if (cols[i].attnum == a)
				cols[i].unlogged = true;
	}

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		op = "INSERT";
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		op = "UPDATE";
	else
		op = "DELETE";

	hs_open_writer(&w, rel);
	w.fixed[HL_OP] = CStringGetTextDatum(op);
	rowcxt = w.batch_cxt;
	if (oldtable != NULL)
	{
		int			ptr = tuplestore_alloc_read_pointer(oldtable, EXEC_FLAG_REWIND);

		tuplestore_select_read_pointer(oldtable, ptr);
		tuplestore_rescan(oldtable);
		oldslot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	}
	if (newtable != NULL)
	{
		int			ptr = tuplestore_alloc_read_pointer(newtable, EXEC_FLAG_REWIND);

		tuplestore_select_read_pointer(newtable, ptr);
		tuplestore_rescan(newtable);
		newslot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	}

	/*
	 * The trigger manager appends the old and the new version of each
	 * updated row together: the two tables are read in step.
	 */
	for (;;)
	{
		TupleTableSlot *slot;
		TupleTableSlot *keyslot;
		MemoryContext oldcxt;
		bool		isnull;
		int			nchanged = 0;

		CHECK_FOR_INTERRUPTS();
		if (newslot != NULL && !tuplestore_gettupleslot(newtable, true, false, newslot))
			break;
		if (oldslot != NULL && !tuplestore_gettupleslot(oldtable, true, false, oldslot))
		{
			if (newslot != NULL)
				elog(ERROR, "transition tables of %s are out of step", RelationGetRelationName(rel));
			break;
		}
		keyslot = newslot != NULL ? newslot : oldslot;
		if (oldslot != NULL)
			slot_getallattrs(oldslot);
		if (newslot != NULL)
			slot_getallattrs(newslot);

		if (oldslot != NULL && newslot != NULL)
		{
			for (int i = 0; i < ncols; i++)
			{
				int			a = cols[i].attnum - 1;
				bool		on = oldslot->tts_isnull[a];
				bool		nn = newslot->tts_isnull[a];

				if (cols[i].unlogged)
				{
					changed[i] = false;
					continue;
				}
				changed[i] = (on != nn) ||
					(!on && !datumIsEqual(oldslot->tts_values[a], newslot->tts_values[a],
										  cols[i].byval, cols[i].len));
				if (changed[i])
					names[nchanged++] = cols[i].name_text;
			}
			if (nchanged == 0)
				continue;
		}

		slot = hs_next_slot(&w);
		oldcxt = MemoryContextSwitchTo(rowcxt);
		{
			Datum		id = slot_getattr(keyslot, id_att, &isnull);

			hs_set(&w, slot, HL_ROW,
				   isnull ? (Datum) 0 : hs_int64(id, TupleDescAttr(desc, id_att - 1)->atttypid),
				   isnull);
		}
		if (owner_att != InvalidAttrNumber)
		{
			Datum		d = slot_getattr(keyslot, owner_att, &isnull);

			hs_set(&w, slot, HL_OWNER,
				   isnull ? (Datum) 0 : hs_int64(d, TupleDescAttr(desc, owner_att - 1)->atttypid),
				   isnull);
		}
		if (account_att != InvalidAttrNumber)
		{
			Datum		d = slot_getattr(keyslot, account_att, &isnull);

			hs_set(&w, slot, HL_ACCOUNT,
				   isnull ? (Datum) 0 : hs_int64(d, TupleDescAttr(desc, account_att - 1)->atttypid),
				   isnull);
		}
		if (nchanged > 0)
			hs_set(&w, slot, HL_COLUMNS,
				   PointerGetDatum(sm_make_array(names, NULL, nchanged, TEXTOID)), false);
		else
			hs_set(&w, slot, HL_COLUMNS, all_names, false);
		if (oldslot != NULL)
			hs_set(&w, slot, HL_OLD,
				   hs_row_jsonb(cols, ncols, newslot != NULL ? changed : NULL,
								oldslot->tts_values, oldslot->tts_isnull), false);
		if (newslot != NULL)
			hs_set(&w, slot, HL_NEW,
				   hs_row_jsonb(cols, ncols, oldslot != NULL ? changed : NULL,
								newslot->tts_values, newslot->tts_isnull), false);
		MemoryContextSwitchTo(oldcxt);
		ExecStoreVirtualTuple(slot);
		/* the batch's values live in rowcxt: flush before reusing it */
		if (w.nused >= HS_BATCH)
			hs_flush(&w);
	}
	if (oldslot != NULL)
		ExecDropSingleTupleTableSlot(oldslot);
	if (newslot != NULL)
		ExecDropSingleTupleTableSlot(newslot);
	hs_close_writer(&w);
	return PointerGetDatum(NULL);
}

/* ----------------------------------------------------------------------
 * Append-only, and the purge
 * ----------------------------------------------------------------------
 */

/* BEFORE UPDATE OR DELETE OR TRUNCATE on change_log: only the purge passes */
Datum
sm_change_log_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("salesmgmt._change_log_guard must be called as a trigger")));
	if (hs_purging && TRIGGER_FIRED_BY_DELETE(td->tg_event))
		return PointerGetDatum(NULL);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("salesmgmt.change_log is append-only"),
			 errdetail("%s is not allowed on %s.",
					   TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? "UPDATE" :
					   TRIGGER_FIRED_BY_DELETE(td->tg_event) ? "DELETE" : "TRUNCATE",
					   RelationGetRelationName(td->tg_relation)),
			 errhint("Old changes are removed with salesmgmt.purge_change_log(before).")));
	PG_RETURN_NULL();
}

/*
 * purge_change_log(p_before timestamptz): delete the changes made before
 * p_before, or, when it is null, before now() minus
 * salesmgmt.change_log_retention.  Returns the number of rows deleted.
 */
Datum
sm_purge_change_log(PG_FUNCTION_ARGS)
{
	TimestampTz before;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Datum		arg;
	char		nulls = ' ';
	Oid			argtype = TIMESTAMPTZOID;
	int64		deleted = 0;

	if (PG_ARGISNULL(0))
	{
		Interval   *keep;

		if (hs_retention == NULL || hs_retention[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("purge_change_log needs a date when salesmgmt.change_log_retention is not set"),
					 errhint("Pass the moment before which changes go, or set salesmgmt.change_log_retention (e.g. '2 years').")));
		keep = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(hs_retention),
													 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
		before = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
														 TimestampTzGetDatum(now),
														 IntervalPGetDatum(keep)));
	}
	else
		before = PG_GETARG_TIMESTAMPTZ(0);
	if (TIMESTAMP_NOT_FINITE(before) || before > now)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("purge_change_log cannot purge changes up to %s",
						timestamptz_to_str(before)),
				 errdetail("The moment must be finite and not in the future."),
				 errhint("Pass a past moment, such as now() - interval '2 years'.")));

	arg = TimestampTzGetDatum(before);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	hs_purging = true;
	PG_TRY();
	{
		if (SPI_execute_with_args("DELETE FROM salesmgmt.change_log WHERE changed_at < $1",
								  1, &argtype, &arg, &nulls, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "deleting from salesmgmt.change_log failed");
		deleted = (int64) SPI_processed;
	}
	PG_FINALLY();
	{
		hs_purging = false;
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_INT64(deleted);
}

/* salesmgmt._outer_role(): the caller's role, even inside SECURITY DEFINER */
Datum
sm_outer_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(DirectFunctionCall1(namein,
										CStringGetDatum(GetUserNameFromId(GetOuterUserId(), false))));
}

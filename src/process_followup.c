/*-------------------------------------------------------------------------
 *
 * process_followup.c
 *	  salesmgmt._follow_up_quiet(p_rule, p_as_of): the items a follow-up
 *	  rule finds quiet as of a time (docs/process.md#follow-up-discipline),
 *	  the search that salesmgmt.run_follow_up_rules starts every rule with.
 *
 *	  One query per rule reads the rule's items (open deals, owned
 *	  accounts, owned open leads) with when each went quiet: for
 *	  no_activity the item's last activity comes from one pass over
 *	  activity joined to the items (a hash join at scale), never one probe
 *	  per item -- made in C (fq_last_activity) when row-level security does
 *	  not apply to the caller on activity, else a grouped subquery; for
 *	  overdue it is the due date.  Items quiet for less than
 *	  remind_after_days are left out by the query.  The rows come through a
 *	  cursor, a batch at a time; each is deformed once and the rule's
 *	  condition is tested on its values in C (rules.c, as lead scoring
 *	  does), without SQL per row and without building a composite datum per
 *	  row as rule_matches_row(condition, row) needs.  Row-level security
 *	  applies as to any query of the caller.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/rls.h"
#include "utils/ruleutils.h"
#include "utils/hsearch.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "core_bulk.h"
#include "pipeline.h"
#include "rules.h"
#include "salesmgmt.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_follow_up_quiet);

#define FOLLOWUP_BATCH 10000
/* the last activity of each item, read in C (fq_last_activity) */
#define FQ_LAST_ENR "sm_fq_last"
/* reminders written per batch */
#define FOLLOWUP_WRITE_BATCH 2000

/* result columns of salesmgmt._follow_up_quiet, in order */
typedef enum FollowUpQuietCol
{
	FQ_SUBJECT_ID,
	FQ_OWNER_REP_ID,
	FQ_TITLE,
	FQ_ACCOUNT_ID,
	FQ_QUIET_SINCE,
	FQ_NCOLS
} FollowUpQuietCol;

static const char *const fq_col_names[FQ_NCOLS] = {
	"subject_id", "owner_rep_id", "title", "account_id", "quiet_since"
};

/* what the query of each subject reads */
typedef struct FollowUpSubject
{
	const char *subject;
	const char *from;			/* the items, aliased x */
	const char *id;				/* x's key, also activity's column */
	const char *title;
	const char *account;
	const char *where;			/* which items a rule considers */
	const char *since_quiet;	/* no_activity (la.last: last activity) */
	const char *since_due;		/* overdue */
} FollowUpSubject;

static const FollowUpSubject fq_subjects[] = {
	{"deal",
		"salesmgmt.deal x JOIN salesmgmt.stage s ON s.stage_id = x.stage_id AND s.outcome = 'open'",
		"deal_id", "x.name", "x.account_id", "true",
		"greatest(la.last, x.created_at)", "x.next_step_due::timestamptz"},
	{"lead", "salesmgmt.lead x",
		"lead_id", "x.name || coalesce(' (' || x.company || ')', '')", "NULL::bigint",
		"x.owner_rep_id IS NOT NULL AND x.status IN ('new', 'working', 'nurturing', 'qualified')",
		"greatest(la.last, x.assigned_at, x.created_at)", "x.next_follow_up::timestamptz"},
	{"account", "salesmgmt.account x",
		"account_id", "x.name", "x.account_id", "x.owner_rep_id IS NOT NULL",
		"greatest(la.last, x.created_at)", "x.next_follow_up::timestamptz"},
};

/* a column of the rule row that the table declares NOT NULL */
static Datum
fq_rule_attr(HeapTupleHeader rule, const char *name)
{
	bool		isnull;
	Datum		d = GetAttributeByName(rule, name, &isnull);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("follow-up rule has no %s", name),
				 errhint("Pass a row of salesmgmt.follow_up_rule.")));
	return d;
}

/*
 * The query of a subject and trigger: the item's columns (x.*, which the
 * condition is tested on) followed by the five result columns.
 * $1 = as-of time, $2 = $1 - remind_after_days days (computed once, in
 * the session's time zone, as the expression would be per row).
 */
static char *
fq_query(const FollowUpSubject *s, bool no_activity, bool last_enr)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfo(&q,
					 "SELECT x.*, x.%s AS sm_fq_id, x.owner_rep_id AS sm_fq_owner,"
					 " %s AS sm_fq_title, %s AS sm_fq_account, q.since AS sm_fq_since"
					 " FROM %s",
					 s->id, s->title, s->account, s->from);
	if (no_activity && last_enr)
		appendStringInfo(&q, " LEFT JOIN " FQ_LAST_ENR " la ON la.id OPERATOR(pg_catalog.=) x.%s", s->id);
	else if (no_activity)
		appendStringInfo(&q,
						 " LEFT JOIN (SELECT a.%s AS id, max(a.occurred_at) AS last"
						 " FROM salesmgmt.activity a"
						 " WHERE a.%s IS NOT NULL AND a.occurred_at <= $1"
						 " GROUP BY a.%s) la ON la.id = x.%s",
						 s->id, s->id, s->id, s->id);
	appendStringInfo(&q,
					 " CROSS JOIN LATERAL (SELECT %s AS since) q"
					 " WHERE %s AND q.since IS NOT NULL"
					 " AND q.since <= $2",
					 no_activity ? s->since_quiet : s->since_due, s->where);
	return q.data;
}

/*
 * The last activity of each item as of a time, read in C: one sequential
 * pass over activity's heap that reads only the item's column and
 * occurred_at, the latest per item kept in a hash table, instead of the
 * executor's scan, qualification and grouping of every row.  Handed to
 * the query as FQ_LAST_ENR (id, last).  NULL when the read must be the
 * caller's query: row-level security applies to the caller on activity,
 * the caller may not read the two columns, or the table is not a heap.
 */
typedef struct FqLast
{
	int64		id;				/* hash key */
	TimestampTz last;
} FqLast;

static Tuplestorestate *
fq_last_activity(const char *idcol, TimestampTz as_of, TupleDesc *desc)
{
	Oid			relid = sm_relation_oid("activity");
	AttrNumber	idatt = get_attnum(relid, idcol);
	AttrNumber	atatt = get_attnum(relid, "occurred_at");
	Relation	rel;
	TupleDesc	reldesc;
	TableScanDesc scan;
	HeapTuple	tup;
	HASHCTL		ctl;
	HTAB	   *last;
	HASH_SEQ_STATUS seq;
	FqLast	   *e;
	Tuplestorestate *ts;

	if (idatt == InvalidAttrNumber || atatt == InvalidAttrNumber ||
		check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		return NULL;
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		(pg_attribute_aclcheck(relid, idatt, GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
		 pg_attribute_aclcheck(relid, atatt, GetUserId(), ACL_SELECT) != ACLCHECK_OK))
		return NULL;
	rel = table_open(relid, AccessShareLock);
	if (rel->rd_rel->relam != HEAP_TABLE_AM_OID)
	{
		table_close(rel, AccessShareLock);
		return NULL;
	}
	reldesc = RelationGetDescr(rel);

	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(FqLast);
	ctl.hcxt = CurrentMemoryContext;
	last = hash_create("follow-up last activity", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	/* the statement's snapshot, as the query of the items reads with */
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		int64		id;
		TimestampTz at;
		bool		found;

		id = DatumGetInt64(heap_getattr(tup, idatt, reldesc, &isnull));
		if (isnull)
			continue;
		at = DatumGetTimestampTz(heap_getattr(tup, atatt, reldesc, &isnull));
		if (isnull || at > as_of)
			continue;
		e = hash_search(last, &id, HASH_ENTER, &found);
		if (!found || at > e->last)
			e->last = at;
		CHECK_FOR_INTERRUPTS();
	}
	table_endscan(scan);
	table_close(rel, NoLock);

	*desc = CreateTemplateTupleDesc(2);
	TupleDescInitEntry(*desc, 1, "id", INT8OID, -1, 0);
	TupleDescInitEntry(*desc, 2, "last", TIMESTAMPTZOID, -1, 0);
	ts = tuplestore_begin_heap(false, false, work_mem);
	hash_seq_init(&seq, last);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum		v[2] = {Int64GetDatum(e->id), TimestampTzGetDatum(e->last)};
		bool		n[2] = {false, false};

		tuplestore_putvalues(ts, *desc, v, n);
	}
	hash_destroy(last);
	return ts;
}

Datum
sm_follow_up_quiet(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HeapTupleHeader rule;
	const FollowUpSubject *subj = NULL;
	char	   *subject;
	char	   *trigger_on;
	Jsonb	   *cond;
	SmRule	   *compiled;
	bool		all;
	Datum		args[2];
	Oid			argtypes[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Portal		portal;
	MemoryContext rowcxt;
	Datum	   *vals = NULL;
	bool	   *nulls = NULL;
	bool		no_activity;
	Tuplestorestate *last = NULL;
	TupleDesc	last_desc = NULL;

	InitMaterializedSRF(fcinfo, 0);
	sm_check_result_columns(rsinfo->setDesc, fq_col_names, FQ_NCOLS);
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("follow-up rule must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as-of time must not be null")));
	rule = PG_GETARG_HEAPTUPLEHEADER(0);
	args[0] = PG_GETARG_DATUM(1);

	subject = TextDatumGetCString(fq_rule_attr(rule, "subject"));
	trigger_on = TextDatumGetCString(fq_rule_attr(rule, "trigger_on"));
	/* $1 - make_interval(days => remind_after_days) */
	args[1] = DirectFunctionCall2(timestamptz_mi_interval, args[0],
								  DirectFunctionCall7(make_interval, Int32GetDatum(0), Int32GetDatum(0),
													  Int32GetDatum(0),
													  fq_rule_attr(rule, "remind_after_days"),
													  Int32GetDatum(0), Int32GetDatum(0),
													  Float8GetDatum(0)));
	cond = DatumGetJsonbPCopy(fq_rule_attr(rule, "condition"));
	for (int i = 0; i < (int) lengthof(fq_subjects); i++)
		if (strcmp(fq_subjects[i].subject, subject) == 0)
			subj = &fq_subjects[i];
	if (subj == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("follow-up rule subject \"%s\" is not deal, account or lead", subject)));

	/* validated against the subject's table, as when the rule was written */
	compiled = sm_rule_compile(cond, sm_relation_oid(subj->subject), "follow-up rule condition");
	all = sm_rule_matches_all(compiled);

	no_activity = strcmp(trigger_on, "overdue") != 0;
	if (no_activity)
		last = fq_last_activity(subj->id, DatumGetTimestampTz(args[0]), &last_desc);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (last != NULL)
		sm_spi_register_tuplestore(FQ_LAST_ENR, last_desc, last);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "follow-up rows", ALLOCSET_DEFAULT_SIZES);
	portal = SPI_cursor_open_with_args(NULL, fq_query(subj, no_activity, last != NULL),
									   2, argtypes, args, NULL, true, 0);
	if (portal == NULL)
		elog(ERROR, "could not open the follow-up cursor: %s", SPI_result_code_string(SPI_result));
	for (;;)
	{
		SPITupleTable *tt;
		TupleDesc	desc;
		uint64		n;
		int			first;

		SPI_cursor_fetch(portal, true, FOLLOWUP_BATCH);
		tt = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;
		desc = tt->tupdesc;
		/* the five result columns follow the item's own */
		first = desc->natts - FQ_NCOLS;
		if (vals == NULL)
		{
			/* SPI's procedure context: gone at SPI_finish */
			vals = palloc(sizeof(Datum) * desc->natts);
			nulls = palloc(sizeof(bool) * desc->natts);
		}
		if (!all)
			sm_rule_bind(compiled, desc);
		for (uint64 i = 0; i < n; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(rowcxt);

			heap_deform_tuple(tt->vals[i], desc, vals, nulls);
			if (all || sm_rule_match_values(compiled, vals, nulls))
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
									 vals + first, nulls + first);
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
		}
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	if (last != NULL)
		tuplestore_end(last);
	return (Datum) 0;
}

/* ----------------------------------------------------------------------
 * The reminders, written in bulk: salesmgmt._follow_up_remind(p_rule,
 * p_as_of).
 *
 * run_follow_up_rules' remind step writes one task (sales_task) and one
 * action (follow_up_action) per quiet item not yet reminded in its quiet
 * episode.  As an INSERT ... SELECT that costs, per row, the BEFORE
 * triggers of sales_task (a PL/pgSQL one among them), one foreign-key
 * query per non-null reference of the task and of the action, and the
 * index entries in heap order.  Here the rows are written in batches by
 * the writer of src/core_bulk.c, and what the triggers do is done once per
 * batch -- but only when the triggers are the extension's own, so the
 * effects are known:
 *
 * - sales_task_references_visible (_check_references) fires only for a
 *	 caller that is not a salesmgmt_admin: the bulk path needs an admin;
 * - sales_task_completed_at (_sales_task_completed_at) changes only a task
 *	 inserted as done: a reminder is inserted open, so it does nothing;
 * - a foreign key's check (RI_FKey_check_ins) locks the referenced row FOR
 *	 KEY SHARE, as the owner of the referenced table, and fails (23503)
 *	 when it is not there: here the distinct keys of a batch are locked in
 *	 one query per foreign key, the same way, and the batch fails when
 *	 fewer rows are found than keys were asked for.
 *
 * Any other trigger that fires on INSERT (a user's, an audit trigger of
 * salesmgmt._audit_table), a foreign key of more than one column,
 * row-level security that applies to the caller, a missing INSERT right
 * or a replication role other than origin: the function returns NULL and
 * run_follow_up_rules writes the reminders with its INSERT ... SELECT, so
 * that every trigger fires and every check is made as before.
 * ----------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(sm_follow_up_remind);

/* a single-column foreign key of a table written in bulk */
typedef struct FuForeignKey
{
	AttrNumber	attno;			/* 0-based, in the referencing table */
	Oid			constraint;
	Oid			confrelid;
	Oid			owner;			/* of the referenced table */
	char	   *lock_sql;		/* locks the keys $1, counts the rows */
	Datum	   *keys;			/* the batch's non-null keys (int8) */
	int			nkeys;
} FuForeignKey;

typedef struct FuTarget
{
	SmBulkWriter bulk;
	int			nfks;
	FuForeignKey *fks;
} FuTarget;

/* the extension's INSERT triggers on sales_task, whose effects are known */
static const struct
{
	const char *trigger;
	const char *function;
}			fu_known_triggers[] = {
	{"sales_task_references_visible", "_check_references"},
	{"sales_task_completed_at", "_sales_task_completed_at"},
};

/*
 * Whether rows can be written into rel in bulk by the current user (see
 * above); if so, *fks gets the table's foreign keys.
 */
static bool
fu_bulk_allowed(Relation rel, List **fks)
{
	Oid			relid = RelationGetRelid(rel);
	TriggerDesc *trig = rel->trigdesc;
	Oid			admin = get_role_oid("salesmgmt_admin", true);

	*fks = NIL;
	if (rel->rd_rel->relkind != RELKIND_RELATION ||
		SessionReplicationRole != SESSION_REPLICATION_ROLE_ORIGIN ||
		pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) != ACLCHECK_OK ||
		check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		return false;
	for (int i = 0; trig != NULL && i < trig->numtriggers; i++)
	{
		Trigger    *t = &trig->triggers[i];
		bool		known = false;

		if (t->tgenabled == TRIGGER_DISABLED || !TRIGGER_FOR_INSERT(t->tgtype))
			continue;
		if (t->tgfoid == F_RI_FKEY_CHECK_INS && t->tgisinternal)
		{
			ListCell   *lc;

			foreach(lc, RelationGetFKeyList(rel))
			{
				ForeignKeyCacheInfo *fk = lfirst(lc);

				if (fk->conoid != t->tgconstraint)
					continue;
				if (fk->nkeys != 1 ||
					TupleDescAttr(RelationGetDescr(rel), fk->conkey[0] - 1)->atttypid != INT8OID)
					return false;
				*fks = lappend(*fks, fk);
				known = true;
			}
		}
		else if (get_func_namespace(t->tgfoid) == sm_schema_oid())
		{
			char	   *fn = get_func_name(t->tgfoid);

			for (int k = 0; k < (int) lengthof(fu_known_triggers); k++)
				if (strcmp(t->tgname, fu_known_triggers[k].trigger) == 0 &&
					strcmp(fn, fu_known_triggers[k].function) == 0)
					known = true;
			/* the visibility check is skipped for admins only */
			if (known && strcmp(fn, "_check_references") == 0 &&
				(!OidIsValid(admin) || !has_privs_of_role(GetUserId(), admin)))
				return false;
		}
		if (!known)
			return false;
	}
	return true;
}

/* open a table for the reminders; false (and closed) when not in bulk */
static bool
fu_target_open(FuTarget *t, const char *relname, const bool *set, int batch)
{
	Relation	rel = table_open(sm_relation_oid(relname), RowExclusiveLock);
	List	   *fks;
	ListCell   *lc;
	int			i = 0;

	if (!fu_bulk_allowed(rel, &fks))
	{
		table_close(rel, RowExclusiveLock);
		return false;
	}
	t->nfks = list_length(fks);
	t->fks = palloc0(sizeof(FuForeignKey) * Max(t->nfks, 1));
	foreach(lc, fks)
	{
		ForeignKeyCacheInfo *fk = lfirst(lc);
		FuForeignKey *f = &t->fks[i++];
		Oid			nsp = get_rel_namespace(fk->confrelid);

		f->attno = fk->conkey[0] - 1;
		f->constraint = fk->conoid;
		f->confrelid = fk->confrelid;
		{
			/* RowShareLock, as the foreign key's check takes */
			Relation	pk = table_open(fk->confrelid, RowShareLock);

			f->owner = pk->rd_rel->relowner;
			table_close(pk, NoLock);
		}
		f->keys = palloc(sizeof(Datum) * batch);
		/* what RI_FKey_check_ins runs per row, for a batch of keys */
		f->lock_sql = psprintf("SELECT pg_catalog.count(*) FROM (SELECT FROM ONLY %s x"
							   " WHERE x.%s OPERATOR(pg_catalog.=) ANY ($1) FOR KEY SHARE OF x) s",
							   quote_qualified_identifier(get_namespace_name(nsp),
														  get_rel_name(fk->confrelid)),
							   quote_identifier(get_attname(fk->confrelid, fk->confkey[0], false)));
	}
	sm_bulk_open(&t->bulk, rel, set, batch);
	return true;
}

static int
fu_int64_cmp(const void *a, const void *b)
{
	int64		x = DatumGetInt64(*(const Datum *) a);
	int64		y = DatumGetInt64(*(const Datum *) b);

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * The foreign keys of the batch: per foreign key, its distinct non-null
 * keys locked FOR KEY SHARE as the referenced table's owner (row-level
 * security not forced), as the checks of RI_FKey_check_ins do; 23503 when
 * a key is not there.  Inside the caller's SPI connection.
 */
static void
fu_lock_references(FuTarget *t)
{
	for (int k = 0; k < t->nfks; k++)
	{
		FuForeignKey *f = &t->fks[k];
		Oid			save_user;
		int			save_sec;
		int			n = 0;
		int			ret;
		bool		isnull;
		Datum		arg;
		Oid			argtype = INT8ARRAYOID;
		int64		found;

		for (int i = 0; i < t->bulk.nused; i++)
		{
			TupleTableSlot *slot = t->bulk.slots[i];

			if (!slot->tts_isnull[f->attno])
				f->keys[n++] = slot->tts_values[f->attno];
		}
		if (n == 0)
			continue;
		qsort(f->keys, n, sizeof(Datum), fu_int64_cmp);
		f->nkeys = 1;
		for (int i = 1; i < n; i++)
			if (DatumGetInt64(f->keys[i]) != DatumGetInt64(f->keys[f->nkeys - 1]))
				f->keys[f->nkeys++] = f->keys[i];
		arg = PointerGetDatum(sm_make_array(f->keys, NULL, f->nkeys, INT8OID));
		GetUserIdAndSecContext(&save_user, &save_sec);
		SetUserIdAndSecContext(f->owner,
							   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
		ret = SPI_execute_with_args(f->lock_sql, 1, &argtype, &arg, NULL, false, 0);
		SetUserIdAndSecContext(save_user, save_sec);
		if (ret != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "locking the rows referenced by salesmgmt.%s failed: %s",
				 RelationGetRelationName(t->bulk.rel), SPI_result_code_string(ret));
		found = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (found != f->nkeys)
			ereport(ERROR,
					(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
					 errmsg("insert or update on table \"%s\" violates foreign key constraint \"%s\"",
							RelationGetRelationName(t->bulk.rel), get_constraint_name(f->constraint)),
					 errdetail("%d of the %d keys of column \"%s\" are not present in table \"%s\".",
							   (int) (f->nkeys - found), f->nkeys,
							   NameStr(TupleDescAttr(RelationGetDescr(t->bulk.rel), f->attno)->attname),
							   get_rel_name(f->confrelid)),
					 errtableconstraint(t->bulk.rel, get_constraint_name(f->constraint))));
		SPI_freetuptable(SPI_tuptable);
	}
}

/* lock the batch's references, then write it */
static void
fu_target_write(FuTarget *t)
{
	if (t->bulk.nused == 0)
		return;
	fu_lock_references(t);
	sm_bulk_write(&t->bulk);
}

/* the 0-based position of a column, which must exist */
static AttrNumber
fu_attno(Relation rel, const char *name)
{
	AttrNumber	a = get_attnum(RelationGetRelid(rel), name);

	if (a == InvalidAttrNumber)
		elog(ERROR, "column \"%s\" of salesmgmt.%s not found", name, RelationGetRelationName(rel));
	return a - 1;
}

/* columns of sales_task and follow_up_action the reminders set */
enum
{
	FT_REP, FT_ACCOUNT, FT_DEAL, FT_LEAD, FT_TITLE, FT_DESCRIPTION, FT_DUE, FT_NCOLS
};
static const char *const ft_names[FT_NCOLS] = {
	"rep_id", "account_id", "deal_id", "lead_id", "title", "description", "due_date"
};
enum
{
	FA_RULE, FA_SUBJECT, FA_SUBJECT_ID, FA_ACTION, FA_QUIET, FA_ACTED, FA_REP, FA_TASK, FA_NCOLS
};
static const char *const fa_names[FA_NCOLS] = {
	"rule_id", "subject", "subject_id", "action", "quiet_since", "acted_at", "rep_id", "task_id"
};

Datum
sm_follow_up_remind(PG_FUNCTION_ARGS)
{
	HeapTupleHeader rule;
	int64		rule_id;
	char	   *rule_name;
	char	   *subject;
	Datum		as_of;
	Datum		due;
	Datum		subject_text;
	Datum		remind_text;
	FuTarget	task,
				act;
	AttrNumber	ft[FT_NCOLS],
				fa[FA_NCOLS];
	AttrNumber	task_id_att;
	bool		set[MaxHeapAttributeNumber];
	Datum		args[3];
	Oid			argtypes[3] = {INT8OID, TEXTOID};
	Portal		portal;
	MemoryContext batch_cxt;
	int64		n = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("follow-up rule must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as-of time must not be null")));
	rule = PG_GETARG_HEAPTUPLEHEADER(0);
	as_of = PG_GETARG_DATUM(1);
	rule_id = DatumGetInt64(fq_rule_attr(rule, "rule_id"));
	rule_name = TextDatumGetCString(fq_rule_attr(rule, "name"));
	subject = TextDatumGetCString(fq_rule_attr(rule, "subject"));
	if (strcmp(subject, "deal") != 0 && strcmp(subject, "account") != 0 && strcmp(subject, "lead") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("follow-up rule subject \"%s\" is not deal, account or lead", subject)));

	memset(set, 0, sizeof(set));
	{
		Relation	rel = table_open(sm_relation_oid("sales_task"), AccessShareLock);

		for (int c = 0; c < FT_NCOLS; c++)
			set[ft[c] = fu_attno(rel, ft_names[c])] = true;
		task_id_att = fu_attno(rel, "task_id");
		table_close(rel, AccessShareLock);
	}
	if (!fu_target_open(&task, "sales_task", set, FOLLOWUP_WRITE_BATCH))
		PG_RETURN_NULL();
	memset(set, 0, sizeof(set));
	{
		Relation	rel = table_open(sm_relation_oid("follow_up_action"), AccessShareLock);

		for (int c = 0; c < FA_NCOLS; c++)
			set[fa[c] = fu_attno(rel, fa_names[c])] = true;
		table_close(rel, AccessShareLock);
	}
	if (!fu_target_open(&act, "follow_up_action", set, FOLLOWUP_WRITE_BATCH))
	{
		sm_bulk_close(&task.bulk);
		PG_RETURN_NULL();
	}

	due = DirectFunctionCall1(timestamptz_date, as_of);
	subject_text = CStringGetTextDatum(subject);
	remind_text = CStringGetTextDatum("remind");
	batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "follow-up reminders", ALLOCSET_DEFAULT_SIZES);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = Int64GetDatum(rule_id);
	args[1] = subject_text;
	/* the quiet items of run_follow_up_rules not yet reminded in their episode */
	portal = SPI_cursor_open_with_args(NULL,
									   "SELECT q.subject_id, q.owner_rep_id, q.title, q.account_id, q.quiet_since"
									   "  FROM pg_temp.sm_follow_up_quiet q"
									   " WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.follow_up_action f"
									   "   WHERE f.rule_id OPERATOR(pg_catalog.=) $1"
									   "     AND f.subject OPERATOR(pg_catalog.=) $2"
									   "     AND f.subject_id OPERATOR(pg_catalog.=) q.subject_id"
									   "     AND f.quiet_since OPERATOR(pg_catalog.=) q.quiet_since"
									   "     AND f.action OPERATOR(pg_catalog.=) 'remind')"
									   " ORDER BY q.subject_id",
									   2, argtypes, args, NULL, false, 0);
	if (portal == NULL)
		elog(ERROR, "could not open the follow-up cursor: %s", SPI_result_code_string(SPI_result));
	for (;;)
	{
		SPITupleTable *tt;
		MemoryContext old;
		uint64		rows;

		SPI_cursor_fetch(portal, true, FOLLOWUP_WRITE_BATCH);
		tt = SPI_tuptable;
		rows = SPI_processed;
		if (rows == 0)
			break;
		old = MemoryContextSwitchTo(batch_cxt);
		for (uint64 i = 0; i < rows; i++)
		{
			TupleTableSlot *slot = sm_bulk_next_slot(&task.bulk);
			Datum		v[FQ_NCOLS];
			bool		nul[FQ_NCOLS];
			char	   *since;

			heap_deform_tuple(tt->vals[i], tt->tupdesc, v, nul);
			since = DatumGetCString(DirectFunctionCall1(timestamptz_out, v[FQ_QUIET_SINCE]));
			slot->tts_values[ft[FT_REP]] = v[FQ_OWNER_REP_ID];
			slot->tts_isnull[ft[FT_REP]] = nul[FQ_OWNER_REP_ID];
			slot->tts_values[ft[FT_ACCOUNT]] = v[FQ_ACCOUNT_ID];
			slot->tts_isnull[ft[FT_ACCOUNT]] = nul[FQ_ACCOUNT_ID];
			if (strcmp(subject, "account") != 0)
			{
				int			c = subject[0] == 'd' ? FT_DEAL : FT_LEAD;

				slot->tts_values[ft[c]] = v[FQ_SUBJECT_ID];
				slot->tts_isnull[ft[c]] = false;
			}
			/* format('Follow up: %s', title): a null title as '' */
			slot->tts_values[ft[FT_TITLE]] =
				CStringGetTextDatum(psprintf("Follow up: %s",
											 nul[FQ_TITLE] ? "" : TextDatumGetCString(v[FQ_TITLE])));
			slot->tts_isnull[ft[FT_TITLE]] = false;
			slot->tts_values[ft[FT_DESCRIPTION]] =
				CStringGetTextDatum(psprintf("Rule \"%s\": quiet since %s.", rule_name, since));
			slot->tts_isnull[ft[FT_DESCRIPTION]] = false;
			slot->tts_values[ft[FT_DUE]] = due;
			slot->tts_isnull[ft[FT_DUE]] = false;
			ExecStoreVirtualTuple(slot);
		}
		/* the tasks, then an action per task naming it */
		fu_target_write(&task);
		for (int i = 0; i < task.bulk.nused; i++)
		{
			TupleTableSlot *ts = task.bulk.slots[i];
			TupleTableSlot *slot = sm_bulk_next_slot(&act.bulk);
			bool		isnull;

			slot->tts_values[fa[FA_RULE]] = Int64GetDatum(rule_id);
			slot->tts_values[fa[FA_SUBJECT]] = subject_text;
			slot->tts_values[fa[FA_SUBJECT_ID]] = SPI_getbinval(tt->vals[i], tt->tupdesc, FQ_SUBJECT_ID + 1, &isnull);
			slot->tts_values[fa[FA_ACTION]] = remind_text;
			slot->tts_values[fa[FA_QUIET]] = SPI_getbinval(tt->vals[i], tt->tupdesc, FQ_QUIET_SINCE + 1, &isnull);
			slot->tts_values[fa[FA_ACTED]] = as_of;
			slot->tts_values[fa[FA_REP]] = ts->tts_values[ft[FT_REP]];
			slot->tts_values[fa[FA_TASK]] = ts->tts_values[task_id_att];
			for (int c = 0; c < FA_NCOLS; c++)
				slot->tts_isnull[fa[c]] = false;
			slot->tts_isnull[fa[FA_REP]] = ts->tts_isnull[ft[FT_REP]];
			slot->tts_isnull[fa[FA_TASK]] = ts->tts_isnull[task_id_att];
			ExecStoreVirtualTuple(slot);
		}
		fu_target_write(&act);
		n += act.bulk.nused;
		sm_bulk_clear(&act.bulk);
		sm_bulk_clear(&task.bulk);
		MemoryContextSwitchTo(old);
		MemoryContextReset(batch_cxt);
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	sm_bulk_close(&act.bulk);
	sm_bulk_close(&task.bulk);
	PG_RETURN_INT32((int32) n);
}

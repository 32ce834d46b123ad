/*-------------------------------------------------------------------------
 *
 * pipeline.c
 *	  The sales process, enforced by the database itself.
 *
 * Two C triggers on salesmgmt.deal do the work for every writer (an
 * application, a bulk UPDATE, COPY, a BI tool with write access):
 *
 *	- deal_pipeline_rules (BEFORE INSERT OR UPDATE, per row) checks that the
 *	  stage belongs to the deal's pipeline (SM003), that the move is allowed
 *	  by the pipeline's transition policy (SM001), that the deal carries the
 *	  fields the new stage requires (SM002) and that the current role may
 *	  move deals into it (SM004); it maintains stage_entered_at, closed_at
 *	  and updated_at.
 *	- deal_pipeline_history_insert and _update (AFTER INSERT / AFTER UPDATE,
 *	  per statement, with transition tables) append the state of each deal
 *	  after each change to salesmgmt.deal_stage_history.
 *
 * Pipeline, stage and transition configuration is cached per backend in
 * hash tables (one lookup per row instead of several queries).  The cache
 * is dropped whenever a relcache invalidation arrives for one of the
 * configuration tables; a statement trigger on those tables
 * (pipeline_config_changed) sends such an invalidation, so a change made
 * and committed in one session is seen by the next move in every other.
 *
 * See docs/pipeline.md.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "salesmgmt.h"
#include "pipeline.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_deal_rules);
PG_FUNCTION_INFO_V1(sm_deal_history);
PG_FUNCTION_INFO_V1(sm_pipeline_config_changed);
PG_FUNCTION_INFO_V1(sm_append_only);

/* ----------------------------------------------------------------------
 * The configuration cache
 * ----------------------------------------------------------------------
 */


/*
 * The cache is valid while no invalidation arrived since it was loaded:
 * the relcache callback only bumps a counter (it may run at any time,
 * even in the middle of a load), and the next use reloads.
 */
static MemoryContext sm_cache_cxt = NULL;
static HTAB *sm_stage_hash = NULL;
static HTAB *sm_pipeline_hash = NULL;
static bool sm_cache_loaded = false;
static uint64 sm_cache_stamp = 0;
static uint64 sm_inval_count = 0;
static LocalTransactionId sm_cache_lxid = InvalidLocalTransactionId;
static Oid	sm_config_relids[4];	/* pipeline, stage, transition, history */
static Oid	sm_config_owner;		/* owner of salesmgmt.stage */
static Oid	sm_history_owner;		/* owner of salesmgmt.deal_stage_history */
static bool sm_callback_registered = false;

/* Attribute numbers of salesmgmt.deal's columns, for the relation relid */
typedef struct SmDealCols
{
	Oid			relid;
	AttrNumber	deal_id;
	AttrNumber	pipeline_id;
	AttrNumber	stage_id;
	AttrNumber	owner_rep_id;
	AttrNumber	amount;
	AttrNumber	currency;
	AttrNumber	expected_close_date;
	AttrNumber	probability;
	AttrNumber	forecast_category;
	AttrNumber	updated_at;
	AttrNumber	stage_entered_at;
	AttrNumber	closed_at;
	AttrNumber	extra;
} SmDealCols;

static SmDealCols sm_deal_cols;

/* salesmgmt.change_note: note written into the history rows */
static char *sm_change_note = NULL;

static void
sm_pipeline_relcache_cb(Datum arg, Oid relid)
{
	if (relid == InvalidOid ||
		relid == sm_config_relids[0] ||
		relid == sm_config_relids[1] ||
		relid == sm_config_relids[2] ||
		relid == sm_config_relids[3] ||
		sm_process_relcache(relid))
		sm_inval_count++;
	if (relid == InvalidOid || relid == sm_deal_cols.relid)
	{
		/* gates resolve field names against deal's columns: reload too */
		sm_deal_cols.relid = InvalidOid;
		sm_inval_count++;
	}
}

void
sm_pipeline_init(void)
{
	DefineCustomStringVariable("salesmgmt.change_note",
							   "Note recorded in the deal history rows written while it is set.",
							   "salesmgmt.move_deal sets it for the duration of one move; "
							   "SET LOCAL it to annotate the changes of a transaction.",
							   &sm_change_note,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);
}

static SmPolicy
sm_parse_policy(const char *s)
{
	if (strcmp(s, "free") == 0)
		return SM_POLICY_FREE;
	if (strcmp(s, "explicit") == 0)
		return SM_POLICY_EXPLICIT;
	return SM_POLICY_FORWARD;
}

static const char *
sm_policy_name(SmPolicy p)
{
	switch (p)
	{
		case SM_POLICY_FREE:
			return "free";
		case SM_POLICY_EXPLICIT:
			return "explicit";
		case SM_POLICY_FORWARD:
			break;
	}
	return "forward";
}

Oid
sm_relation_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* Copies a one-dimensional text[] or name[] datum into a C string array. */
int
sm_copy_string_array(Datum arr, Oid elemtype, char ***out)
{
	ArrayType  *a = DatumGetArrayTypeP(arr);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			k = 0;

	if (elemtype == NAMEOID)
		deconstruct_array(a, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR,
						  &elems, &nulls, &n);
	else
		deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &n);
	*out = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			continue;			/* a null element names nothing */
		if (elemtype == NAMEOID)
			(*out)[k++] = pstrdup(NameStr(*DatumGetName(elems[i])));
		else
			(*out)[k++] = TextDatumGetCString(elems[i]);
	}
	return k;
}

/*
 * Reads the configuration tables into a fresh memory context.  The
 * queries do not run read-only, so in READ COMMITTED they see the latest
 * committed configuration (and this transaction's own changes) rather
 * than the calling statement's snapshot: an invalidation that arrives
 * later always means a reload that sees the newer rows.
 */
static void
sm_load_config(void)
{
	MemoryContext newcxt;
	MemoryContext oldcxt;
	HASHCTL		ctl;
	HTAB	   *stages;
	HTAB	   *pipelines;
	uint64		stamp = sm_inval_count;
	int			ret;
	Oid			save_userid;
	int			save_sec;

	if (!sm_callback_registered)
	{
		CacheRegisterRelcacheCallback(sm_pipeline_relcache_cb, (Datum) 0);
		sm_callback_registered = true;
	}
	sm_config_relids[0] = sm_relation_oid("pipeline");
	sm_config_relids[1] = sm_relation_oid("stage");
	sm_config_relids[2] = sm_relation_oid("stage_transition");
	sm_config_relids[3] = sm_relation_oid("deal_stage_history");
	sm_config_owner = sm_relation_owner(sm_config_relids[1]);
	sm_history_owner = sm_relation_owner(sm_config_relids[3]);

	/*
	 * Build under the current (transaction) context, so that an error
	 * half-way leaves nothing behind; move under CacheMemoryContext once
	 * complete.
	 */
	newcxt = AllocSetContextCreate(CurrentMemoryContext,
								   "salesmgmt pipeline cache",
								   ALLOCSET_SMALL_SIZES);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.hcxt = newcxt;
	ctl.entrysize = sizeof(SmPipeline);
	pipelines = hash_create("salesmgmt pipelines", 16, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.entrysize = sizeof(SmStage);
	stages = hash_create("salesmgmt stages", 64, &ctl,
						 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	/*
	 * Every writer of deals needs the configuration, whatever it may read
	 * itself: read it as the tables' owner, without row-level security
	 * (as the server's foreign-key triggers read referenced rows).
	 */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(sm_config_owner,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * These run as the owner under the caller's search_path: every object
	 * and operator is qualified, so that nothing the caller defines can
	 * run with the owner's rights.
	 */
	ret = SPI_execute("SELECT p.pipeline_id, p.name, p.transition_policy,"
					  "       (SELECT pg_catalog.count(*) FROM salesmgmt.stage s"
					  "         WHERE s.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id)"
					  "  FROM salesmgmt.pipeline p", false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading salesmgmt.pipeline failed: %s", SPI_result_code_string(ret));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
		SmPipeline *p = hash_search(pipelines, &id, HASH_ENTER, NULL);
		char	   *policy = SPI_getvalue(tup, td, 3);

		p->name = MemoryContextStrdup(newcxt, SPI_getvalue(tup, td, 2));
		p->policy = sm_parse_policy(policy);
		p->nstages = 0;
		p->stages = MemoryContextAlloc(newcxt, sizeof(SmStage *) *
									   Max(1, DatumGetInt64(SPI_getbinval(tup, td, 4, &isnull))));
	}

	ret = SPI_execute("SELECT stage_id, pipeline_id, name, position, outcome, probability,"
					  "       forecast_category, required_fields, entry_roles"
					  "  FROM salesmgmt.stage ORDER BY pipeline_id, position, stage_id",
					  false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading salesmgmt.stage failed: %s", SPI_result_code_string(ret));
	oldcxt = MemoryContextSwitchTo(newcxt);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
		int64		pid = DatumGetInt64(SPI_getbinval(tup, td, 2, &isnull));
		SmStage    *s = hash_search(stages, &id, HASH_ENTER, NULL);
		SmPipeline *p = hash_search(pipelines, &pid, HASH_FIND, NULL);
		char	   *outcome = SPI_getvalue(tup, td, 5);
		Datum		d;

		if (p == NULL)			/* cannot happen: foreign key */
			elog(ERROR, "stage " INT64_FORMAT " has no pipeline", id);
		s->pipeline = p;
		p->stages[p->nstages++] = s;
		s->name = pstrdup(SPI_getvalue(tup, td, 3));
		s->position = DatumGetInt32(SPI_getbinval(tup, td, 4, &isnull));
		s->outcome = strcmp(outcome, "won") == 0 ? SM_OUTCOME_WON :
			strcmp(outcome, "lost") == 0 ? SM_OUTCOME_LOST : SM_OUTCOME_OPEN;
		s->probability = datumCopy(SPI_getbinval(tup, td, 6, &isnull), false, -1);
		s->category = datumCopy(SPI_getbinval(tup, td, 7, &isnull), false, -1);
		d = SPI_getbinval(tup, td, 8, &isnull);
		s->nrequired = isnull ? 0 : sm_copy_string_array(d, TEXTOID, &s->required);
		s->required_attnum = palloc0(sizeof(AttrNumber) * Max(1, s->nrequired));
		s->required_relid = InvalidOid;
		d = SPI_getbinval(tup, td, 9, &isnull);
		s->nroles = isnull ? -1 : sm_copy_string_array(d, NAMEOID, &s->roles);
		s->nnext = 0;
		s->next = NULL;
		s->ntemplates = 0;
		s->nrequired_templates = 0;
		s->rules = NULL;
	}
	MemoryContextSwitchTo(oldcxt);

	ret = SPI_execute("SELECT from_stage_id, to_stage_id FROM salesmgmt.stage_transition"
					  " ORDER BY from_stage_id, to_stage_id", false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading salesmgmt.stage_transition failed: %s", SPI_result_code_string(ret));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		from = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
		int64		to = DatumGetInt64(SPI_getbinval(tup, td, 2, &isnull));
		SmStage    *s = hash_search(stages, &from, HASH_FIND, NULL);

		if (s == NULL)			/* cannot happen: foreign key */
			continue;
		if (s->next == NULL)
			s->next = MemoryContextAlloc(newcxt, sizeof(int64) * 8);
		else if (s->nnext % 8 == 0)
			s->next = repalloc(s->next, sizeof(int64) * (s->nnext + 8));
		s->next[s->nnext++] = to;
	}
	sm_process_load(stages, newcxt);
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);

	/* complete: make it the cache */
	MemoryContextSetParent(newcxt, CacheMemoryContext);
	if (sm_cache_cxt != NULL)
		MemoryContextDelete(sm_cache_cxt);
	sm_cache_cxt = newcxt;
	sm_stage_hash = stages;
	sm_pipeline_hash = pipelines;
	sm_cache_stamp = stamp;
	sm_cache_loaded = true;

	/*
	 * In REPEATABLE READ and SERIALIZABLE the rows were read under the
	 * transaction's snapshot, which may predate a change whose
	 * invalidation already arrived: the cache is good for this
	 * transaction only.
	 */
	sm_cache_lxid = IsolationUsesXactSnapshot() ? SM_MY_LXID : InvalidLocalTransactionId;
}

/*
 * Makes sure the cache is current.  Pointers into the cache stay valid
 * until the next call of this function: callers do not keep them across
 * anything that may run another deal trigger.
 */
void
sm_config_current(void)
{
	static TimestampTz last_statement = 0;
	static LocalTransactionId last_lxid = InvalidLocalTransactionId;
	TimestampTz statement = GetCurrentStatementStartTimestamp();

	/*
	 * Once per statement, take in invalidations sent by transactions that
	 * committed meanwhile: within a transaction the deal's lock is already
	 * held (so no lock acquisition does it for us), and a READ COMMITTED
	 * statement must see the configuration committed before it started.
	 * Our own transaction's changes arrive at each command boundary.
	 */
	if (statement != last_statement || SM_MY_LXID != last_lxid)
	{
		AcceptInvalidationMessages();
		/* a cache read under a transaction snapshot is that transaction's */
		if (sm_cache_lxid != InvalidLocalTransactionId && sm_cache_lxid != SM_MY_LXID)
			sm_cache_loaded = false;
		last_statement = statement;
		last_lxid = SM_MY_LXID;
	}
	if (!sm_cache_loaded || sm_cache_stamp != sm_inval_count)
		sm_load_config();
}

SmStage *
sm_find_stage(int64 stage_id)
{
	return (SmStage *) hash_search(sm_stage_hash, &stage_id, HASH_FIND, NULL);
}

SmPipeline *
sm_find_pipeline(int64 pipeline_id)
{
	return (SmPipeline *) hash_search(sm_pipeline_hash, &pipeline_id, HASH_FIND, NULL);
}

/* every cached pipeline, for a hash_seq_search */
HTAB *
sm_pipelines(void)
{
	return sm_pipeline_hash;
}

static AttrNumber
sm_deal_attnum(TupleDesc td, const char *name)
{
	int			attnum = SPI_fnumber(td, name);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of salesmgmt.deal does not exist", name),
				 errhint("The salesmgmt extension may be damaged; reinstall it.")));
	return (AttrNumber) attnum;
}

static const SmDealCols *
sm_deal_columns(Relation rel)
{
	TupleDesc	td = RelationGetDescr(rel);

	if (sm_deal_cols.relid == RelationGetRelid(rel))
		return &sm_deal_cols;
	if (!sm_callback_registered)
	{
		CacheRegisterRelcacheCallback(sm_pipeline_relcache_cb, (Datum) 0);
		sm_callback_registered = true;
	}
	sm_deal_cols.deal_id = sm_deal_attnum(td, "deal_id");
	sm_deal_cols.pipeline_id = sm_deal_attnum(td, "pipeline_id");
	sm_deal_cols.stage_id = sm_deal_attnum(td, "stage_id");
	sm_deal_cols.owner_rep_id = sm_deal_attnum(td, "owner_rep_id");
	sm_deal_cols.amount = sm_deal_attnum(td, "amount");
	sm_deal_cols.currency = sm_deal_attnum(td, "currency");
	sm_deal_cols.expected_close_date = sm_deal_attnum(td, "expected_close_date");
	sm_deal_cols.probability = sm_deal_attnum(td, "probability");
	sm_deal_cols.forecast_category = sm_deal_attnum(td, "forecast_category");
	sm_deal_cols.updated_at = sm_deal_attnum(td, "updated_at");
	sm_deal_cols.stage_entered_at = sm_deal_attnum(td, "stage_entered_at");
	sm_deal_cols.closed_at = sm_deal_attnum(td, "closed_at");
	sm_deal_cols.extra = sm_deal_attnum(td, "extra");
	sm_deal_cols.relid = RelationGetRelid(rel);
	return &sm_deal_cols;
}

/*
 * Is this session loading a dump?  pg_restore, and the scripts pg_dump
 * writes, turn off row_security and check_function_bodies; no ordinary
 * session does both.  A dump holds deals together with their history and
 * their maintained columns as they were, so the triggers must neither
 * check nor change nor add anything; and the rules they enforce may have
 * changed since the deals were written (a stage gate added later must
 * not make a dump unrestorable).  Only the table's owner (or a superuser)
 * is let through: who could disable the triggers anyway.
 */
static bool
sm_loading_dump(Relation rel)
{
	if (row_security || check_function_bodies)
		return false;
	return sm_relation_ownercheck(RelationGetRelid(rel), GetUserId());
}

/* ----------------------------------------------------------------------
 * Rules
 * ----------------------------------------------------------------------
 */

static bool
sm_transition_listed(const SmStage *from, int64 to_stage_id)
{
	for (int i = 0; i < from->nnext; i++)
		if (from->next[i] == to_stage_id)
			return true;
	return false;
}

/*
 * May a deal move from one stage to another of the same pipeline?  A
 * listed transition always allows the move; otherwise a closed deal stays
 * closed, and an open one moves as the pipeline's policy says.
 */
bool
sm_move_allowed(const SmStage *from, const SmStage *to)
{
	if (from == to)
		return true;
	if (sm_transition_listed(from, to->stage_id))
		return true;
	if (from->outcome != SM_OUTCOME_OPEN)
		return false;
	switch (from->pipeline->policy)
	{
		case SM_POLICY_FREE:
			return true;
		case SM_POLICY_FORWARD:
			return to->outcome != SM_OUTCOME_OPEN || to->position > from->position;
		case SM_POLICY_EXPLICIT:
			return false;
	}
	return false;
}

/* "A", "B" and "C": the stages a deal in stage from may move to */
static char *
sm_allowed_list(const SmStage *from)
{
	StringInfoData buf;
	const SmPipeline *p = from->pipeline;

	initStringInfo(&buf);
	for (int i = 0; i < p->nstages; i++)
	{
		if (p->stages[i] == from || !sm_move_allowed(from, p->stages[i]))
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfo(&buf, "\"%s\"", p->stages[i]->name);
	}
	return buf.data;
}

char *
sm_stage_list(const SmPipeline *p)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < p->nstages; i++)
		appendStringInfo(&buf, "%s\"%s\"", i > 0 ? ", " : "", p->stages[i]->name);
	return buf.data;
}

static void
sm_check_transition(int64 deal_id, const SmStage *from, const SmStage *to)
{
	char	   *allowed;

	if (sm_move_allowed(from, to))
		return;
	allowed = sm_allowed_list(from);
	ereport(ERROR,
			(errcode(ERRCODE_SM_INVALID_TRANSITION),
			 errmsg("deal " INT64_FORMAT " cannot move from stage \"%s\" to stage \"%s\"",
					deal_id, from->name, to->name),
			 from->outcome != SM_OUTCOME_OPEN ?
			 errdetail("Deal " INT64_FORMAT " is closed (%s in stage \"%s\"); pipeline \"%s\" lists no transition from \"%s\" to \"%s\".",
					   deal_id, from->outcome == SM_OUTCOME_WON ? "won" : "lost",
					   from->name, from->pipeline->name, from->name, to->name) :
			 errdetail("Deal " INT64_FORMAT " is in stage \"%s\"; pipeline \"%s\" has the %s transition policy and lists no transition from \"%s\" to \"%s\".",
					   deal_id, from->name, from->pipeline->name,
					   sm_policy_name(from->pipeline->policy), from->name, to->name),
			 allowed[0] != '\0' ?
			 errhint("Deal " INT64_FORMAT " may move to: %s.", deal_id, allowed) :
			 errhint("No move out of stage \"%s\" is configured; add one to salesmgmt.stage_transition to allow it.",
					 from->name)));
}

/* Is a text value empty: no characters other than white space? */
static bool
sm_blank(const char *s, int len)
{
	for (int i = 0; i < len; i++)
		if (!isspace((unsigned char) s[i]))
			return false;
	return true;
}

/*
 * Is a required field present?  Null, blank text, an empty array, an
 * empty JSON object, and an amount of 0 (the column's default) count as
 * missing; a JSON key must exist and hold something other than null, a
 * blank string, [] or {}.
 */
static bool
sm_field_present(HeapTuple tup, TupleDesc td, const SmDealCols *cols,
				 const char *name, AttrNumber attnum)
{
	bool		isnull;
	Datum		d;

	if (attnum > 0)
	{
		Oid			typid = TupleDescAttr(td, attnum - 1)->atttypid;

		d = heap_getattr(tup, attnum, td, &isnull);
		if (isnull)
			return false;
		switch (typid)
		{
			case TEXTOID:
			case VARCHAROID:
			case BPCHAROID:
				{
					text	   *t = DatumGetTextPP(d);

					return !sm_blank(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				}
			case NAMEOID:
				return !sm_blank(NameStr(*DatumGetName(d)), strlen(NameStr(*DatumGetName(d))));
			case NUMERICOID:
				return attnum != cols->amount ||
					!sm_numeric_is_zero(DatumGetNumeric(d));
			case JSONBOID:
				{
					Jsonb	   *j = DatumGetJsonbP(d);

					return !(JB_ROOT_IS_OBJECT(j) || JB_ROOT_IS_ARRAY(j)) ||
						JB_ROOT_COUNT(j) > 0;
				}
			default:
				if (type_is_array(typid))
					return ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(d)),
										  ARR_DIMS(DatumGetArrayTypeP(d))) > 0;
				return true;
		}
	}
	else
	{
		Jsonb	   *extra;
		JsonbValue *v;

		d = heap_getattr(tup, cols->extra, td, &isnull);
		if (isnull)
			return false;
		extra = DatumGetJsonbP(d);
		if (!JB_ROOT_IS_OBJECT(extra))
			return false;
		v = getKeyJsonValueFromContainer(&extra->root, name, strlen(name), NULL);
		if (v == NULL)
			return false;
		switch (v->type)
		{
			case jbvNull:
				return false;
			case jbvString:
				return !sm_blank(v->val.string.val, v->val.string.len);
			case jbvBinary:
				return JsonContainerSize(v->val.binary.data) > 0;
			default:
				return true;
		}
	}
}

static void
sm_check_gate(int64 deal_id, SmStage *stage, HeapTuple tup, Relation rel,
			  const SmDealCols *cols)
{
	TupleDesc	td = RelationGetDescr(rel);
	StringInfoData missing;

	if (stage->nrequired == 0)
		return;
	if (stage->required_relid != RelationGetRelid(rel))
	{
		for (int i = 0; i < stage->nrequired; i++)
		{
			int			attnum = SPI_fnumber(td, stage->required[i]);

			stage->required_attnum[i] = attnum > 0 ? (AttrNumber) attnum : 0;
		}
		stage->required_relid = RelationGetRelid(rel);
	}
	initStringInfo(&missing);
	for (int i = 0; i < stage->nrequired; i++)
	{
		if (sm_field_present(tup, td, cols, stage->required[i], stage->required_attnum[i]))
			continue;
		appendStringInfo(&missing, "%s%s", missing.len > 0 ? ", " : "",
						 stage->required[i]);
	}
	if (missing.len == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_SM_STAGE_GATE_UNMET),
			 errmsg("deal " INT64_FORMAT " cannot enter stage \"%s\": required fields are missing",
					deal_id, stage->name),
			 errdetail("Missing or empty: %s.", missing.data),
			 errhint("Set these deal columns or keys of deal.extra (in the same statement or before), then move the deal.")));
}

/* Is the current role allowed into the stage (entry_roles)? */
bool
sm_role_may_enter(const SmStage *stage)
{
	Oid			user = GetUserId();

	if (stage->nroles < 0)
		return true;
	for (int i = 0; i < stage->nroles; i++)
	{
		Oid			role = get_role_oid(stage->roles[i], true);

		if (OidIsValid(role) && is_member_of_role(user, role))
			return true;
	}
	return superuser();
}

static void
sm_check_entry_role(int64 deal_id, const SmStage *stage)
{
	StringInfoData roles;

	if (sm_role_may_enter(stage))
		return;
	initStringInfo(&roles);
	for (int i = 0; i < stage->nroles; i++)
		appendStringInfo(&roles, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(stage->roles[i]));
	ereport(ERROR,
			(errcode(ERRCODE_SM_STAGE_ROLE_DENIED),
			 errmsg("role \"%s\" may not move deal " INT64_FORMAT " into stage \"%s\"",
					GetUserNameFromId(GetUserId(), false), deal_id, stage->name),
			 stage->nroles > 0 ?
			 errdetail("Only members of %s may move deals into stage \"%s\".",
					   roles.data, stage->name) :
			 errdetail("Stage \"%s\" has an empty list of entry roles: only superusers may move deals into it.",
					   stage->name),
			 errhint("Ask a member of one of these roles to make the move, or change salesmgmt.stage.entry_roles.")));
}

static int64
sm_get_int64(HeapTuple tup, TupleDesc td, AttrNumber attnum, bool *isnull)
{
	Datum		d = heap_getattr(tup, attnum, td, isnull);

	return *isnull ? 0 : DatumGetInt64(d);
}

/*
 * Looks up the deal's stage and checks that it belongs to the deal's
 * pipeline (SM003; a stage or pipeline that does not exist is a foreign
 * key violation, reported here with names rather than later by the
 * constraint with ids only).
 */
static SmStage *
sm_deal_stage(int64 deal_id, int64 pipeline_id, int64 stage_id)
{
	SmStage    *stage = sm_find_stage(stage_id);
	SmPipeline *pipeline = sm_find_pipeline(pipeline_id);

	if (pipeline == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("pipeline " INT64_FORMAT " of deal " INT64_FORMAT " does not exist",
						pipeline_id, deal_id),
				 errhint("Create the pipeline first, e.g. with salesmgmt.create_pipeline.")));
	if (stage == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("stage " INT64_FORMAT " of deal " INT64_FORMAT " does not exist",
						stage_id, deal_id),
				 errhint("Pipeline \"%s\" has the stages %s.",
						 pipeline->name, sm_stage_list(pipeline))));
	if (stage->pipeline != pipeline)
		ereport(ERROR,
				(errcode(ERRCODE_SM_STAGE_WRONG_PIPELINE),
				 errmsg("stage \"%s\" belongs to pipeline \"%s\", not to pipeline \"%s\" of deal " INT64_FORMAT,
						stage->name, stage->pipeline->name, pipeline->name, deal_id),
				 errdetail("Stage id " INT64_FORMAT " is in pipeline " INT64_FORMAT "; the deal is in pipeline " INT64_FORMAT ".",
						   stage_id, stage->pipeline->pipeline_id, pipeline_id),
				 errhint("Choose one of the stages of pipeline \"%s\": %s.",
						 pipeline->name, sm_stage_list(pipeline))));
	return stage;
}

/*
 * The BEFORE INSERT OR UPDATE row trigger: checks the move and maintains
 * stage_entered_at, closed_at and updated_at.
 *
 * The time of a change is now(), unless the writer sets stage_entered_at
 * explicitly (on INSERT, or on an UPDATE that changes the stage and sets
 * stage_entered_at to a new value): then that time is the time of the
 * change, which is how imports and backfills record when things happened.
 * It may not lie in the future, nor before the deal entered its previous
 * stage.
 */
Datum
sm_deal_rules(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	td;
	const SmDealCols *cols;
	HeapTuple	newtup;
	HeapTuple	oldtup = NULL;
	bool		is_update;
	bool		isnull;
	bool		sea_null;
	int64		deal_id;
	int64		pipeline_id;
	int64		stage_id;
	SmStage    *stage;
	SmStage    *old_stage = NULL;
	bool		stage_changed;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz sea;
	TimestampTz old_sea = 0;
	TimestampTz changed_at;
	int			repl_cols[3];
	Datum		repl_values[3];
	bool		repl_nulls[3];

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_deal_rules must be fired BEFORE INSERT OR UPDATE FOR EACH ROW")));

	rel = trigdata->tg_relation;
	td = RelationGetDescr(rel);
	cols = sm_deal_columns(rel);
	is_update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	if (is_update)
	{
		oldtup = trigdata->tg_trigtuple;
		newtup = trigdata->tg_newtuple;
	}
	else
		newtup = trigdata->tg_trigtuple;

	if (sm_loading_dump(rel))
		return PointerGetDatum(newtup);

	deal_id = sm_get_int64(newtup, td, cols->deal_id, &isnull);
	pipeline_id = sm_get_int64(newtup, td, cols->pipeline_id, &isnull);
	if (isnull)
		return PointerGetDatum(newtup); /* the NOT NULL constraint refuses it */
	stage_id = sm_get_int64(newtup, td, cols->stage_id, &isnull);
	if (isnull)
		return PointerGetDatum(newtup);

	sm_config_current();
	stage = sm_deal_stage(deal_id, pipeline_id, stage_id);

	sea = DatumGetTimestampTz(heap_getattr(newtup, cols->stage_entered_at, td, &sea_null));

	if (is_update)
	{
		int64		old_deal_id = sm_get_int64(oldtup, td, cols->deal_id, &isnull);
		int64		old_pipeline_id = sm_get_int64(oldtup, td, cols->pipeline_id, &isnull);
		int64		old_stage_id = sm_get_int64(oldtup, td, cols->stage_id, &isnull);
		bool		old_sea_null;

		if (old_deal_id != deal_id)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("deal " INT64_FORMAT " cannot change its id to " INT64_FORMAT,
							old_deal_id, deal_id),
					 errdetail("The history, payments and splits of a deal refer to its id."),
					 errhint("Create a new deal instead.")));
		if (old_pipeline_id != pipeline_id)
		{
			SmPipeline *old_pipeline = sm_find_pipeline(old_pipeline_id);

			ereport(ERROR,
					(errcode(ERRCODE_SM_STAGE_WRONG_PIPELINE),
					 errmsg("deal " INT64_FORMAT " cannot move from pipeline \"%s\" to pipeline \"%s\"",
							deal_id,
							old_pipeline ? old_pipeline->name : "?",
							stage->pipeline->name),
					 errdetail("A deal moves only through the stages of its own pipeline."),
					 errhint("Close the deal and create a new one in the other pipeline.")));
		}
		old_stage = sm_find_stage(old_stage_id);
		old_sea = DatumGetTimestampTz(heap_getattr(oldtup, cols->stage_entered_at, td, &old_sea_null));
		if (old_sea_null)
			old_sea = now;
	}
	stage_changed = !is_update || old_stage != stage;

	if (is_update && stage_changed)
	{
		if (old_stage == NULL)	/* deleted under a deal: cannot happen, FK */
			elog(ERROR, "deal " INT64_FORMAT " is in unknown stage", deal_id);
		sm_check_transition(deal_id, old_stage, stage);
	}
	if (stage_changed)
	{
		sm_check_entry_role(deal_id, stage);
		sm_check_gate(deal_id, stage, newtup, rel, cols);
	}
	/* approvals (process.c): a move into a guarded stage, guarded fields;
	 * a new deal created in a guarded stage */
	sm_process_check_row(deal_id, old_stage, stage, oldtup, newtup, rel);

	/* the time of the change */
	changed_at = now;
	if (!sea_null && (!is_update || sea != old_sea))
	{
		if (sea > GetCurrentTimestamp())
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("stage_entered_at of deal " INT64_FORMAT " lies in the future",
							deal_id),
					 errdetail("stage_entered_at is %s.", timestamptz_to_str(sea)),
					 errhint("Record changes when they happened, or leave stage_entered_at alone to use now().")));
		if (is_update && sea < old_sea)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("stage_entered_at of deal " INT64_FORMAT " cannot go back from %s to %s",
							deal_id, pstrdup(timestamptz_to_str(old_sea)),
							pstrdup(timestamptz_to_str(sea))),
					 errhint("Backfill the moves of a deal in the order they happened.")));
		if (stage_changed)
			changed_at = sea;
	}

	/* stage_entered_at */
	repl_cols[0] = cols->stage_entered_at;
	repl_nulls[0] = false;
	if (stage_changed)
		repl_values[0] = TimestampTzGetDatum(changed_at);
	else
		repl_values[0] = TimestampTzGetDatum(sea_null ? old_sea : sea);

	/* closed_at: the time the deal entered its won or lost stage */
	repl_cols[1] = cols->closed_at;
	if (stage->outcome == SM_OUTCOME_OPEN)
	{
		repl_nulls[1] = true;
		repl_values[1] = (Datum) 0;
	}
	else if (stage_changed)
	{
		repl_nulls[1] = false;
		repl_values[1] = TimestampTzGetDatum(changed_at);
	}
	else
	{
		repl_values[1] = heap_getattr(oldtup, cols->closed_at, td, &repl_nulls[1]);
		if (repl_nulls[1])
		{
			repl_nulls[1] = false;
			repl_values[1] = repl_values[0];
		}
	}

	/* updated_at */
	repl_cols[2] = cols->updated_at;
	repl_nulls[2] = false;
	repl_values[2] = TimestampTzGetDatum(changed_at);

	return PointerGetDatum(heap_modify_tuple_by_cols(newtup, td, 3, repl_cols,
													 repl_values, repl_nulls));
}

/* ----------------------------------------------------------------------
 * History
 *
 * Statement-level AFTER triggers with transition tables: the trigger
 * manager keeps the old and new versions of the changed deals, this code
 * turns each change into a history row in C (the stage's probability and
 * category from the cache), and one INSERT ... SELECT over an ephemeral
 * named relation appends them all.  One executor run per statement rather
 * than one per row is what keeps a bulk UPDATE close to the cost of the
 * UPDATE itself; going through the executor (not heap_insert) keeps the
 * history table's own constraints, indexes and triggers in force.
 * ----------------------------------------------------------------------
 */

#define SM_HISTORY_NCOLS 18
#define SM_HISTORY_ENR "salesmgmt_deal_changes"

static TupleDesc sm_history_desc = NULL;
static Datum sm_prob_one;
static Datum sm_prob_zero;

/* A tuple descriptor of the given columns, for the life of the backend. */
TupleDesc
sm_make_tupdesc(int ncols, const SmColumnDef *cols)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	TupleDesc	d = CreateTemplateTupleDesc(ncols);

	for (int i = 0; i < ncols; i++)
		TupleDescInitEntry(d, (AttrNumber) (i + 1), cols[i].name, cols[i].type, -1, 0);
	MemoryContextSwitchTo(oldcxt);
	return d;
}

/* Makes a tuplestore a relation the queries of this SPI connection read. */
void
sm_spi_register_tuplestore(const char *name, TupleDesc desc, Tuplestorestate *ts)
{
	EphemeralNamedRelation enr = palloc0(sizeof(EphemeralNamedRelationData));
	int			ret;

	enr->md.name = pstrdup(name);
	enr->md.reliddesc = InvalidOid;
	enr->md.tupdesc = desc;
	enr->md.enrtype = ENR_NAMED_TUPLESTORE;
	enr->md.enrtuples = (double) tuplestore_tuple_count(ts);
	enr->reldata = ts;
	ret = SPI_register_relation(enr);
	if (ret != SPI_OK_REL_REGISTER)
		elog(ERROR, "SPI_register_relation failed: %s", SPI_result_code_string(ret));
}

/* Row type of the changes handed to the INSERT, and two constants. */
static void
sm_history_init(void)
{
	MemoryContext oldcxt;
	TupleDesc	d;
	static const SmColumnDef cols[SM_HISTORY_NCOLS] = {
		{"deal_id", INT8OID},
		{"pipeline_id", INT8OID},
		{"from_stage_id", INT8OID},
		{"to_stage_id", INT8OID},
		{"owner_rep_id", INT8OID},
		{"old_amount", NUMERICOID},
		{"new_amount", NUMERICOID},
		{"currency", BPCHAROID},
		{"old_expected_close_date", DATEOID},
		{"new_expected_close_date", DATEOID},
		{"probability", NUMERICOID},
		{"forecast_category", TEXTOID},
		{"effective_probability", NUMERICOID},
		{"effective_category", TEXTOID},
		{"changed_at", TIMESTAMPTZOID},
		{"changed_by", NAMEOID},
		{"time_in_previous_stage", INTERVALOID},
		{"note", TEXTOID},
	};

	if (sm_history_desc != NULL)
		return;
	d = sm_make_tupdesc(SM_HISTORY_NCOLS, cols);
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	sm_prob_one = NumericGetDatum(sm_numeric_from_int64(1));
	sm_prob_zero = NumericGetDatum(sm_numeric_from_int64(0));
	MemoryContextSwitchTo(oldcxt);
	sm_history_desc = d;
}

/* Did a column change?  Compares values, not representations. */
static bool
sm_column_changed(TupleTableSlot *oldslot, TupleTableSlot *newslot, AttrNumber attnum)
{
	bool		oldnull;
	bool		newnull;
	Datum		o = slot_getattr(oldslot, attnum, &oldnull);
	Datum		n = slot_getattr(newslot, attnum, &newnull);
	Form_pg_attribute att = TupleDescAttr(newslot->tts_tupleDescriptor, attnum - 1);

	if (oldnull || newnull)
		return oldnull != newnull;
	if (att->atttypid == NUMERICOID)
		return !DatumGetBool(DirectFunctionCall2(numeric_eq, o, n));
	if (att->attlen == -1)
	{
		struct varlena *ov = PG_DETOAST_DATUM_PACKED(o);
		struct varlena *nv = PG_DETOAST_DATUM_PACKED(n);

		return VARSIZE_ANY_EXHDR(ov) != VARSIZE_ANY_EXHDR(nv) ||
			memcmp(VARDATA_ANY(ov), VARDATA_ANY(nv), VARSIZE_ANY_EXHDR(ov)) != 0;
	}
	return !datumIsEqual(o, n, att->attbyval, att->attlen);
}

/* Is this change one the history records? */
static bool
sm_tracked_change(TupleTableSlot *oldslot, TupleTableSlot *newslot, const SmDealCols *cols)
{
	return sm_column_changed(oldslot, newslot, cols->stage_id) ||
		sm_column_changed(oldslot, newslot, cols->amount) ||
		sm_column_changed(oldslot, newslot, cols->expected_close_date) ||
		sm_column_changed(oldslot, newslot, cols->probability) ||
		sm_column_changed(oldslot, newslot, cols->forecast_category) ||
		sm_column_changed(oldslot, newslot, cols->owner_rep_id) ||
		sm_column_changed(oldslot, newslot, cols->currency);
}

/*
 * Fills values/nulls with the history row of one change: the state of
 * the deal after it (newslot), what it was before (oldslot, or NULL for
 * the creation of the deal), when, by whom, with which note.
 */
static void
sm_history_row(TupleTableSlot *oldslot, TupleTableSlot *newslot,
			   const SmDealCols *cols, Datum who, Datum note, bool note_null,
			   Datum *values, bool *nulls)
{
	bool		isnull;
	int64		stage_id = DatumGetInt64(slot_getattr(newslot, cols->stage_id, &isnull));
	SmStage    *stage = sm_find_stage(stage_id);
	bool		stage_changed;

	if (stage == NULL)			/* the BEFORE trigger has checked it */
		elog(ERROR, "stage " INT64_FORMAT " does not exist", stage_id);

	values[0] = slot_getattr(newslot, cols->deal_id, &nulls[0]);
	values[1] = slot_getattr(newslot, cols->pipeline_id, &nulls[1]);
	values[3] = Int64GetDatum(stage_id);
	nulls[3] = false;
	values[4] = slot_getattr(newslot, cols->owner_rep_id, &nulls[4]);
	values[6] = slot_getattr(newslot, cols->amount, &nulls[6]);
	values[7] = slot_getattr(newslot, cols->currency, &nulls[7]);
	values[9] = slot_getattr(newslot, cols->expected_close_date, &nulls[9]);
	values[10] = slot_getattr(newslot, cols->probability, &nulls[10]);
	values[11] = slot_getattr(newslot, cols->forecast_category, &nulls[11]);
	if (oldslot != NULL)
	{
		values[2] = slot_getattr(oldslot, cols->stage_id, &nulls[2]);
		values[5] = slot_getattr(oldslot, cols->amount, &nulls[5]);
		values[8] = slot_getattr(oldslot, cols->expected_close_date, &nulls[8]);
		stage_changed = DatumGetInt64(values[2]) != stage_id;
	}
	else
	{
		nulls[2] = nulls[5] = nulls[8] = true;
		stage_changed = true;
	}

	/* effective probability and category: closed deals ignore overrides */
	nulls[12] = nulls[13] = false;
	if (stage->outcome == SM_OUTCOME_WON)
		values[12] = sm_prob_one;
	else if (stage->outcome == SM_OUTCOME_LOST)
		values[12] = sm_prob_zero;
	else
		values[12] = nulls[10] ? stage->probability : values[10];
	values[13] = (stage->outcome != SM_OUTCOME_OPEN || nulls[11]) ?
		stage->category : values[11];

	/*
	 * When: a stage change happened at the deal's (maintained)
	 * stage_entered_at, which honours the import rule; anything else now.
	 */
	nulls[14] = false;
	if (stage_changed)
		values[14] = slot_getattr(newslot, cols->stage_entered_at, &isnull);
	else
		values[14] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	values[15] = who;
	nulls[15] = false;
	if (oldslot != NULL && stage_changed)
	{
		bool		oldnull;
		Datum		was = slot_getattr(oldslot, cols->stage_entered_at, &oldnull);

		nulls[16] = oldnull;
		if (!oldnull)
			values[16] = DirectFunctionCall2(timestamp_mi, values[14], was);
	}
	else
		nulls[16] = true;
	values[17] = note;
	nulls[17] = note_null;
}

/* Hands a stage change (or the creation of a deal) to the sales process. */
static void
sm_process_history_row(SmProcessBatch *batch, TupleTableSlot *oldslot,
					   TupleTableSlot *newslot, const SmDealCols *cols)
{
	bool		isnull;
	SmStage    *to = sm_find_stage(DatumGetInt64(slot_getattr(newslot, cols->stage_id, &isnull)));
	SmStage    *from = NULL;

	if (oldslot != NULL)
	{
		from = sm_find_stage(DatumGetInt64(slot_getattr(oldslot, cols->stage_id, &isnull)));
		if (from == to)
			return;
	}
	if (to != NULL)
		sm_process_row(batch, oldslot, newslot, from, to);
}

#define SM_HISTORY_COLS \
	"deal_id, pipeline_id, from_stage_id, to_stage_id, owner_rep_id," \
	" old_amount, new_amount, currency," \
	" old_expected_close_date, new_expected_close_date," \
	" probability, forecast_category," \
	" effective_probability, effective_category," \
	" changed_at, changed_by, time_in_previous_stage, note"

/* A kept plan of one of the two appending statements. */
static SPIPlanPtr
sm_history_plan(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

	if (p == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(p) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return p;
}

/*
 * Appends the collected changes with one INSERT ... SELECT, as the history
 * table's owner: whoever may change a deal causes its history, but nobody
 * needs (or should get) INSERT on the history itself.  On a Citus shard of
 * deal (salesmgmt.distribute(), docs/scale-out.md) Citus plans the INSERT
 * into the distributed history apart from this SPI connection, where the
 * ephemeral relation does not exist: there each row goes in with its own
 * INSERT ... VALUES, routed to the co-located shard on this node.
 */
static void
sm_history_append(Tuplestorestate *changes, bool on_shard)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr row_plan = NULL;
	Oid			save_userid;
	int			save_sec;
	int			ret = SPI_OK_INSERT;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(sm_history_owner,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (!on_shard)
	{
		sm_spi_register_tuplestore(SM_HISTORY_ENR, sm_history_desc, changes);
		if (plan == NULL)
			plan = sm_history_plan("INSERT INTO salesmgmt.deal_stage_history (" SM_HISTORY_COLS ")"
								   " SELECT " SM_HISTORY_COLS " FROM " SM_HISTORY_ENR, 0, NULL);
		ret = SPI_execute_plan(plan, NULL, NULL, false, 0);
	}
	else
	{
		TupleTableSlot *slot = MakeSingleTupleTableSlot(sm_history_desc, &TTSOpsMinimalTuple);
		char		nulls[SM_HISTORY_NCOLS];

		if (row_plan == NULL)
		{
			Oid			types[SM_HISTORY_NCOLS];
			StringInfoData sql;

			initStringInfo(&sql);
			appendStringInfoString(&sql, "INSERT INTO salesmgmt.deal_stage_history (" SM_HISTORY_COLS ") VALUES (");
			for (int i = 0; i < SM_HISTORY_NCOLS; i++)
			{
				types[i] = TupleDescAttr(sm_history_desc, i)->atttypid;
				appendStringInfo(&sql, "%s$%d", i > 0 ? ", " : "", i + 1);
			}
			appendStringInfoChar(&sql, ')');
			row_plan = sm_history_plan(sql.data, SM_HISTORY_NCOLS, types);
		}
		tuplestore_rescan(changes);
		while (ret == SPI_OK_INSERT && tuplestore_gettupleslot(changes, true, false, slot))
		{
			slot_getallattrs(slot);
			for (int i = 0; i < SM_HISTORY_NCOLS; i++)
				nulls[i] = slot->tts_isnull[i] ? 'n' : ' ';
			ret = SPI_execute_plan(row_plan, slot->tts_values, nulls, false, 0);
		}
		ExecDropSingleTupleTableSlot(slot);
	}
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "appending to salesmgmt.deal_stage_history failed: %s",
			 SPI_result_code_string(ret));
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
}

/*
 * A read pointer of our own on a transition table: other triggers of the
 * statement may read the same tuplestore.
 */
static void
sm_rewind(Tuplestorestate *ts)
{
	int			ptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);

	tuplestore_select_read_pointer(ts, ptr);
	tuplestore_rescan(ts);
}

/*
 * The AFTER INSERT and AFTER UPDATE statement triggers (REFERENCING NEW
 * TABLE, and OLD TABLE for UPDATE): append the state of each deal after
 * its creation and after every change of stage, owner, amount, currency,
 * expected close date, probability override or forecast-category
 * override.
 */
Datum
sm_deal_history(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	td;
	const SmDealCols *cols;
	Tuplestorestate *newtable;
	Tuplestorestate *oldtable = NULL;
	Tuplestorestate *changes;
	TupleTableSlot *newslot;
	TupleTableSlot *oldslot = NULL;
	MemoryContext rowcxt;
	MemoryContext oldcxt;
	NameData	who;
	Datum		note = (Datum) 0;
	bool		note_null = true;
	Datum		values[SM_HISTORY_NCOLS];
	bool		nulls[SM_HISTORY_NCOLS];
	int64		nchanges;
	SmProcessBatch *batch;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		  TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)) ||
		trigdata->tg_newtable == NULL ||
		(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) && trigdata->tg_oldtable == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_deal_history must be fired AFTER INSERT or AFTER UPDATE FOR EACH STATEMENT with transition tables")));

	rel = trigdata->tg_relation;
	newtable = trigdata->tg_newtable;
	if (tuplestore_tuple_count(newtable) == 0 || sm_loading_dump(rel))
		return PointerGetDatum(NULL);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		oldtable = trigdata->tg_oldtable;

	td = RelationGetDescr(rel);
	cols = sm_deal_columns(rel);
	sm_history_init();
	sm_config_current();

	namestrcpy(&who, GetUserNameFromId(GetUserId(), false));
	if (sm_change_note != NULL && sm_change_note[0] != '\0')
	{
		note = CStringGetTextDatum(sm_change_note);
		note_null = false;
	}

	batch = sm_process_begin();
	changes = tuplestore_begin_heap(false, false, work_mem);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "salesmgmt history row",
								   ALLOCSET_DEFAULT_SIZES);
	newslot = MakeSingleTupleTableSlot(td, &TTSOpsMinimalTuple);
	sm_rewind(newtable);
	if (oldtable != NULL)
	{
		oldslot = MakeSingleTupleTableSlot(td, &TTSOpsMinimalTuple);
		sm_rewind(oldtable);
	}

	/*
	 * The trigger manager appends the old and the new version of each
	 * updated row together, so the two tables are read in step; the deal
	 * id (which the BEFORE trigger keeps from changing) proves it.
	 */
	while (tuplestore_gettupleslot(newtable, true, false, newslot))
	{
		CHECK_FOR_INTERRUPTS();

		/* read outside rowcxt: a tuple read back from disk is the slot's */
		if (oldslot != NULL &&
			!tuplestore_gettupleslot(oldtable, true, false, oldslot))
			elog(ERROR, "transition tables of salesmgmt.deal are out of step");

		oldcxt = MemoryContextSwitchTo(rowcxt);
		if (oldslot != NULL)
		{
			bool		isnull;

			if (DatumGetInt64(slot_getattr(oldslot, cols->deal_id, &isnull)) !=
				DatumGetInt64(slot_getattr(newslot, cols->deal_id, &isnull)))
				elog(ERROR, "transition tables of salesmgmt.deal are out of step");
			if (!sm_tracked_change(oldslot, newslot, cols))
			{
				MemoryContextSwitchTo(oldcxt);
				MemoryContextReset(rowcxt);
				continue;
			}
		}
		sm_history_row(oldslot, newslot, cols, NameGetDatum(&who), note, note_null,
					   values, nulls);
		if (batch != NULL)
			sm_process_history_row(batch, oldslot, newslot, cols);
		MemoryContextSwitchTo(oldcxt);
		tuplestore_putvalues(changes, sm_history_desc, values, nulls);
		MemoryContextReset(rowcxt);
	}
	ExecDropSingleTupleTableSlot(newslot);
	if (oldslot != NULL)
		ExecDropSingleTupleTableSlot(oldslot);
	MemoryContextDelete(rowcxt);

	nchanges = tuplestore_tuple_count(changes);
	if (nchanges > 0)
		sm_history_append(changes, strcmp(RelationGetRelationName(rel), "deal") != 0);
	tuplestore_end(changes);
	/* stage tasks: checked, cancelled and created for the whole statement */
	if (batch != NULL)
		sm_process_finish(batch);

	return PointerGetDatum(NULL);
}

/* ----------------------------------------------------------------------
 * Configuration changes and append-only tables
 * ----------------------------------------------------------------------
 */

/*
 * Statement trigger on pipeline, stage and stage_transition: a data
 * change does not by itself invalidate anything, so send a relcache
 * invalidation for the table.  It reaches this backend at the next
 * command and the others when the transaction commits (or never, if it
 * aborts: the local cache is then reset too).
 */
Datum
sm_pipeline_config_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_pipeline_config_changed must be fired as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}

/*
 * Statement trigger BEFORE UPDATE OR DELETE OR TRUNCATE on a history or
 * ledger table: refuses the statement.  Corrections are new rows.
 */
Datum
sm_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *op;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_append_only must be fired as a trigger")));
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		op = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		op = "DELETE";
	else if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		op = "TRUNCATE";
	else
		return PointerGetDatum(trigdata->tg_trigtuple);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s.%s is append-only: %s is not allowed",
					get_namespace_name(RelationGetNamespace(trigdata->tg_relation)),
					RelationGetRelationName(trigdata->tg_relation), op),
			 errhint("Record a correction as a new change instead.")));
	PG_RETURN_NULL();
}

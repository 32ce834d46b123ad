/*-------------------------------------------------------------------------
 *
 * process.c
 *	  The sales process, enforced: stage tasks (checklists that gate a
 *	  stage) and approvals, hooked into the pipeline triggers of pipeline.c.
 *
 * When a deal enters a stage (INSERT, UPDATE of any size, move_deal) the
 * stage's task templates become tasks in salesmgmt.sales_task, in the same
 * statement; a deal may not step forward (or to won) while a required task
 * of its current stage is open (SM070); a move to a lost stage cancels the
 * deal's open stage tasks.  All three are done per statement, from the
 * history trigger's pass over the transition tables: one query each for a
 * bulk UPDATE of any size, skipped when no stage involved has templates.
 *
 * A move into a stage whose approval rule (compiled once, evaluated in C
 * on the new row) matches the deal needs an approved request, which the
 * move consumes (SM071); a change to the amount or a field the rules test
 * is refused while a request is pending (SM072) and voids an approved
 * one.  Only moves into guarded stages and changes to guarded fields run
 * SQL (process_approval.sql's internal functions, as the owner).
 *
 * Which stages have templates and approval rules is part of the pipeline
 * configuration cache (pipeline.c), reloaded on the same relcache
 * invalidations.
 *
 * See docs/process.md.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "pipeline.h"
#include "salesmgmt.h"
#include "rules.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_stage_task_guard);

/* relations of the sales process; InvalidOid before 0.2.0's tables exist */
static Oid	sm_template_relid = InvalidOid;
static Oid	sm_rule_relid = InvalidOid;
static Oid	sm_task_owner = InvalidOid;

/* An approval rule of a stage, compiled (in the configuration cache) */
typedef struct SmApprovalRule
{
	int64		rule_id;
	char	   *name;
	SmRule	   *rule;
	Oid			bound_relid;	/* deal relation the rule is bound to */
	struct SmApprovalRule *next;
} SmApprovalRule;

/* the fields any approval rule guards (with amount); none: no rules */
static int	sm_nguarded = 0;
static char **sm_guarded = NULL;
static AttrNumber *sm_guarded_attnum = NULL;
static Oid	sm_guarded_relid = InvalidOid;

bool
sm_process_relcache(Oid relid)
{
	return OidIsValid(relid) && (relid == sm_template_relid || relid == sm_rule_relid);
}

/* Adds a field to the guarded set (once). */
static void
sm_guard_field(const char *name, MemoryContext cxt)
{
	for (int i = 0; i < sm_nguarded; i++)
		if (strcmp(sm_guarded[i], name) == 0)
			return;
	if (sm_nguarded % 8 == 0)
		sm_guarded = sm_guarded == NULL ?
			MemoryContextAlloc(cxt, sizeof(char *) * 8) :
			repalloc(sm_guarded, sizeof(char *) * (sm_nguarded + 8));
	sm_guarded[sm_nguarded++] = MemoryContextStrdup(cxt, name);
}

/*
 * The active approval rules of each stage, compiled against salesmgmt.deal
 * (a rule written before a column was dropped fails here, naming it), and
 * the fields they guard.
 */
static void
sm_load_approval_rules(HTAB *stages, MemoryContext cxt)
{
	Oid			deal_relid = sm_relation_oid("deal");
	int			ret;

	sm_nguarded = 0;
	sm_guarded = NULL;
	sm_guarded_attnum = NULL;
	sm_guarded_relid = InvalidOid;
	sm_rule_relid = get_relname_relid("approval_rule", sm_schema_oid());
	if (!OidIsValid(sm_rule_relid))
		return;
	ret = SPI_execute("SELECT rule_id, name, stage_id, condition,"
					  "       ARRAY(SELECT salesmgmt._rule_fields(condition))"
					  "  FROM salesmgmt.approval_rule WHERE active"
					  " ORDER BY stage_id, rule_id DESC", false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading salesmgmt.approval_rule failed: %s", SPI_result_code_string(ret));
	if (SPI_processed > 0)
		sm_guard_field("amount", cxt);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		stage_id = DatumGetInt64(SPI_getbinval(tup, td, 3, &isnull));
		SmStage    *s = hash_search(stages, &stage_id, HASH_FIND, NULL);
		MemoryContext oldcxt;
		SmApprovalRule *r;
		char	  **fields;
		int			nfields;

		if (s == NULL)			/* cannot happen: foreign key */
			continue;
		oldcxt = MemoryContextSwitchTo(cxt);
		r = palloc0(sizeof(SmApprovalRule));
		r->rule_id = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
		r->name = pstrdup(SPI_getvalue(tup, td, 2));
		r->rule = sm_rule_compile(DatumGetJsonbPCopy(SPI_getbinval(tup, td, 4, &isnull)),
								  deal_relid, "approval rule condition");
		r->bound_relid = InvalidOid;
		r->next = s->rules;
		s->rules = r;
		MemoryContextSwitchTo(oldcxt);
		nfields = sm_copy_string_array(SPI_getbinval(tup, td, 5, &isnull), TEXTOID, &fields);
		for (int k = 0; k < nfields; k++)
			sm_guard_field(fields[k], cxt);
	}
}

/*
 * Called by the configuration loader (pipeline.c), inside its SPI
 * connection and as the configuration's owner: how many task templates,
 * and how many required ones, each stage has.
 */
void
sm_process_load(HTAB *stages, MemoryContext cxt)
{
	int			ret;

	sm_template_relid = get_relname_relid("stage_task_template", sm_schema_oid());
	if (!OidIsValid(sm_template_relid))
		return;					/* the 0.1.0 schema: no stage tasks */
	sm_task_owner = sm_relation_owner(sm_relation_oid("sales_task"));

	ret = SPI_execute("SELECT stage_id, pg_catalog.count(*)::integer,"
					  "       pg_catalog.count(*) FILTER (WHERE required)::integer"
					  "  FROM salesmgmt.stage_task_template GROUP BY stage_id", false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading salesmgmt.stage_task_template failed: %s",
			 SPI_result_code_string(ret));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
		SmStage    *s = hash_search(stages, &id, HASH_FIND, NULL);

		if (s == NULL)			/* cannot happen: foreign key */
			continue;
		s->ntemplates = DatumGetInt32(SPI_getbinval(tup, td, 2, &isnull));
		s->nrequired_templates = DatumGetInt32(SPI_getbinval(tup, td, 3, &isnull));
	}
	sm_load_approval_rules(stages, cxt);
}

/* ----------------------------------------------------------------------
 * Per-statement work on the stage changes of deals
 * ----------------------------------------------------------------------
 */

#define SM_MOVES_ENR "salesmgmt_deal_moves"
#define SM_MOVES_NCOLS 8

struct SmProcessBatch
{
	Tuplestorestate *moves;
	int64		nforward;		/* forward moves out of stages with required tasks */
	int64		nlost;			/* moves to a lost stage */
	int64		ncreate;		/* entries into stages with templates */
	int64		nrows;
	AttrNumber	deal_id;
	AttrNumber	account_id;
	AttrNumber	owner_rep_id;
	AttrNumber	stage_entered_at;
};

static TupleDesc sm_moves_desc = NULL;

static TupleDesc
sm_moves_tupdesc(void)
{
	static const SmColumnDef cols[SM_MOVES_NCOLS] = {
		{"deal_id", INT8OID},
		{"account_id", INT8OID},
		{"owner_rep_id", INT8OID},
		{"from_stage_id", INT8OID},
		{"to_stage_id", INT8OID},
		{"forward", BOOLOID},	/* out of a stage with required tasks */
		{"lost", BOOLOID},
		{"entered_at", TIMESTAMPTZOID},
	};

	if (sm_moves_desc == NULL)
		sm_moves_desc = sm_make_tupdesc(SM_MOVES_NCOLS, cols);
	return sm_moves_desc;
}

/* NULL when the sales process has nothing to do (no stage tasks yet) */
SmProcessBatch *
sm_process_begin(void)
{
	SmProcessBatch *b;

	if (!OidIsValid(sm_template_relid))
		return NULL;
	b = palloc0(sizeof(SmProcessBatch));
	/* in the caller's context: rows are collected in a per-row one */
	b->moves = tuplestore_begin_heap(true, false, work_mem);
	return b;
}

static AttrNumber
sm_slot_attnum(TupleTableSlot *slot, const char *name)
{
	int			attnum = SPI_fnumber(slot->tts_tupleDescriptor, name);

	if (attnum <= 0)
		elog(ERROR, "column \"%s\" of salesmgmt.deal does not exist", name);
	return (AttrNumber) attnum;
}

/*
 * One deal that entered a stage: created in it (from NULL) or moved from
 * another.  Only what needs work is kept.
 */
void
sm_process_row(SmProcessBatch *b, TupleTableSlot *oldslot, TupleTableSlot *newslot,
			   const SmStage *from, const SmStage *to)
{
	Datum		values[SM_MOVES_NCOLS];
	bool		nulls[SM_MOVES_NCOLS] = {false};
	bool		forward = from != NULL && from->nrequired_templates > 0 &&
		sm_move_is_forward(from, to);
	bool		lost = from != NULL && to->outcome == SM_OUTCOME_LOST;
	bool		create = to->ntemplates > 0;

	if (!forward && !lost && !create)
		return;
	if (b->nrows++ == 0)
	{
		b->deal_id = sm_slot_attnum(newslot, "deal_id");
		b->account_id = sm_slot_attnum(newslot, "account_id");
		b->owner_rep_id = sm_slot_attnum(newslot, "owner_rep_id");
		b->stage_entered_at = sm_slot_attnum(newslot, "stage_entered_at");
	}
	values[0] = slot_getattr(newslot, b->deal_id, &nulls[0]);
	values[1] = slot_getattr(newslot, b->account_id, &nulls[1]);
	values[2] = slot_getattr(newslot, b->owner_rep_id, &nulls[2]);
	values[3] = Int64GetDatum(from ? from->stage_id : 0);
	nulls[3] = from == NULL;
	values[4] = Int64GetDatum(to->stage_id);
	values[5] = BoolGetDatum(forward);
	values[6] = BoolGetDatum(lost);
	values[7] = slot_getattr(newslot, b->stage_entered_at, &nulls[7]);
	tuplestore_putvalues(b->moves, sm_moves_tupdesc(), values, nulls);
	b->nforward += forward;
	b->nlost += lost;
	b->ncreate += create;
}

/*
 * SPI as the owner of the process tables, without row-level security:
 * every writer of deals needs the tasks and requests of the deal, whoever
 * they are assigned to.  sm_owner_spi_end restores the caller.
 */
typedef struct SmSavedUser
{
	Oid			userid;
	int			sec;
} SmSavedUser;

static void
sm_owner_spi_begin(SmSavedUser *saved)
{
	GetUserIdAndSecContext(&saved->userid, &saved->sec);
	SetUserIdAndSecContext(sm_task_owner,
						   saved->sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

static void
sm_owner_spi_end(SmSavedUser *saved)
{
	SPI_finish();
	SetUserIdAndSecContext(saved->userid, saved->sec);
}

static SPIPlanPtr
sm_keep_plan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*plan = p;
	}
	return *plan;
}

/* the open required tasks of a deal's stage: count, list, ids */
#define SM_OPEN_TASKS_COLS \
	"pg_catalog.count(*)," \
	" pg_catalog.string_agg(pg_catalog.format('#%s \"%s\"%s', t.task_id, t.title," \
	"     CASE WHEN t.due_date IS NOT NULL" \
	"          THEN pg_catalog.format(' (due %s)', t.due_date) ELSE '' END)," \
	"     ', ' ORDER BY t.task_id)," \
	" pg_catalog.string_agg(t.task_id::text, ', ' ORDER BY t.task_id)"

/* SM070, from the columns SM_OPEN_TASKS_COLS starting at col */
static void
sm_raise_open_tasks(HeapTuple tup, TupleDesc td, int col, int64 deal_id,
					const SmStage *from, const SmStage *to)
{
	bool		isnull;
	int64		ntasks = DatumGetInt64(SPI_getbinval(tup, td, col, &isnull));
	char	   *list = SPI_getvalue(tup, td, col + 1);
	char	   *ids = SPI_getvalue(tup, td, col + 2);

	ereport(ERROR,
			(errcode(ERRCODE_SM_STAGE_TASKS_OPEN),
			 errmsg("deal " INT64_FORMAT " cannot move from stage \"%s\" to stage \"%s\": " INT64_FORMAT " required task%s of stage \"%s\" %s open",
					deal_id, from ? from->name : "?", to ? to->name : "?", ntasks,
					ntasks == 1 ? "" : "s", from ? from->name : "?",
					ntasks == 1 ? "is" : "are"),
			 errdetail("Open required tasks: %s.", list),
			 errhint("Complete them first (UPDATE salesmgmt.sales_task SET status = 'done' WHERE task_id IN (%s)); salesmgmt.deal_checklist(" INT64_FORMAT ") lists them. A move back or to a lost stage is allowed.",
					 ids, deal_id)));
}

/* SM070: the first deal (by id) that stepped forward past open required tasks */
static void
sm_check_open_tasks(void)
{
	static SPIPlanPtr plan = NULL;
	int			ret;
	HeapTuple	tup;
	TupleDesc	td;
	bool		isnull;

	sm_keep_plan(&plan,
				 "SELECT m.deal_id, m.from_stage_id, m.to_stage_id, " SM_OPEN_TASKS_COLS
				 "  FROM " SM_MOVES_ENR " m"
				 "  JOIN salesmgmt.sales_task t"
				 "    ON t.deal_id OPERATOR(pg_catalog.=) m.deal_id"
				 "   AND t.stage_id OPERATOR(pg_catalog.=) m.from_stage_id"
				 "   AND t.status OPERATOR(pg_catalog.=) 'open' AND t.required"
				 " WHERE m.forward"
				 " GROUP BY m.deal_id, m.from_stage_id, m.to_stage_id"
				 " ORDER BY m.deal_id LIMIT 1", 0, NULL);
	ret = SPI_execute_plan(plan, NULL, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "checking stage tasks failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		return;
	tup = SPI_tuptable->vals[0];
	td = SPI_tuptable->tupdesc;
	sm_raise_open_tasks(tup, td, 4, DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull)),
						sm_find_stage(DatumGetInt64(SPI_getbinval(tup, td, 2, &isnull))),
						sm_find_stage(DatumGetInt64(SPI_getbinval(tup, td, 3, &isnull))));
}

/*
 * The same check for one deal, from the row trigger: a move that needs an
 * approval reports its open tasks first (the statement-level check would
 * come only after the approval is refused).
 */
static void
sm_check_open_tasks_of(int64 deal_id, const SmStage *from, const SmStage *to)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {INT8OID, INT8OID};
	Datum		args[2];
	SmSavedUser saved;

	sm_owner_spi_begin(&saved);
	sm_keep_plan(&plan,
				 "SELECT " SM_OPEN_TASKS_COLS " FROM salesmgmt.sales_task t"
				 " WHERE t.deal_id OPERATOR(pg_catalog.=) $1 AND t.stage_id OPERATOR(pg_catalog.=) $2"
				 "   AND t.status OPERATOR(pg_catalog.=) 'open' AND t.required"
				 " HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 0", 2, argtypes);
	args[0] = Int64GetDatum(deal_id);
	args[1] = Int64GetDatum(from->stage_id);
	if (SPI_execute_plan(plan, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "checking stage tasks failed");
	if (SPI_processed > 0)
		sm_raise_open_tasks(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, deal_id, from, to);
	sm_owner_spi_end(&saved);
}

/*
 * After the history of a statement's changes is written: checks forward
 * moves against open required tasks, cancels the open stage tasks of lost
 * deals, and creates the tasks of the stages deals entered.  Runs as the
 * owner of sales_task: the check must see every task of the deal (some
 * are assigned to the manager), and nobody needs INSERT on tasks for
 * their deals to get them.
 */
void
sm_process_finish(SmProcessBatch *b)
{
	static SPIPlanPtr cancel_plan = NULL;
	static SPIPlanPtr create_plan = NULL;
	SmSavedUser saved;
	int			ret;

	if (b->nrows == 0)
	{
		tuplestore_end(b->moves);
		return;
	}
	sm_owner_spi_begin(&saved);
	sm_spi_register_tuplestore(SM_MOVES_ENR, sm_moves_tupdesc(), b->moves);

	if (b->nforward > 0)
		sm_check_open_tasks();
	if (b->nlost > 0)
	{
		sm_keep_plan(&cancel_plan,
					 "UPDATE salesmgmt.sales_task t SET status = 'cancelled'"
					 "  FROM " SM_MOVES_ENR " m"
					 " WHERE m.lost AND t.deal_id OPERATOR(pg_catalog.=) m.deal_id"
					 "   AND t.stage_id IS NOT NULL"
					 "   AND t.status OPERATOR(pg_catalog.=) 'open'", 0, NULL);
		ret = SPI_execute_plan(cancel_plan, NULL, NULL, false, 0);
		if (ret != SPI_OK_UPDATE)
			elog(ERROR, "cancelling stage tasks failed: %s", SPI_result_code_string(ret));
	}
	if (b->ncreate > 0)
	{
		/*
		 * A template the deal already has an open or done task of (it came
		 * back to the stage) is not repeated; a cancelled one is.
		 */
		sm_keep_plan(&create_plan,
					 "INSERT INTO salesmgmt.sales_task (rep_id, account_id, deal_id, title,"
					 "       description, due_date, stage_id, template_id, required)"
					 "SELECT CASE WHEN tt.assignee OPERATOR(pg_catalog.=) 'owner_manager'"
					 "            THEN COALESCE(salesmgmt._rep_manager(m.owner_rep_id), m.owner_rep_id)"
					 "            ELSE m.owner_rep_id END,"
					 "       m.account_id, m.deal_id, tt.title, tt.description,"
					 "       (m.entered_at::date OPERATOR(pg_catalog.+) tt.due_days),"
					 "       m.to_stage_id, tt.template_id, tt.required"
					 "  FROM " SM_MOVES_ENR " m"
					 "  JOIN salesmgmt.stage_task_template tt"
					 "    ON tt.stage_id OPERATOR(pg_catalog.=) m.to_stage_id"
					 " WHERE NOT EXISTS (SELECT FROM salesmgmt.sales_task x"
					 "                    WHERE x.deal_id OPERATOR(pg_catalog.=) m.deal_id"
					 "                      AND x.template_id OPERATOR(pg_catalog.=) tt.template_id"
					 "                      AND x.status OPERATOR(pg_catalog.<>) 'cancelled')"
					 " ORDER BY m.deal_id, tt.position, tt.template_id", 0, NULL);
		ret = SPI_execute_plan(create_plan, NULL, NULL, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "creating stage tasks failed: %s", SPI_result_code_string(ret));
	}
	sm_owner_spi_end(&saved);
	tuplestore_end(b->moves);
}

/*
 * Open required tasks of a deal's stage (for allowed_next_stages); 0 when
 * the stage has no required templates.  Reads as the owner of sales_task.
 */
int64
sm_process_open_required(int64 deal_id, int64 stage_id)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {INT8OID, INT8OID};
	Datum		args[2];
	SmStage    *stage;
	SmSavedUser saved;
	int64		n;
	bool		isnull;

	sm_config_current();
	stage = sm_find_stage(stage_id);
	if (stage == NULL || stage->nrequired_templates == 0)
		return 0;
	sm_owner_spi_begin(&saved);
	sm_keep_plan(&plan,
				 "SELECT pg_catalog.count(*) FROM salesmgmt.sales_task"
				 " WHERE deal_id OPERATOR(pg_catalog.=) $1 AND stage_id OPERATOR(pg_catalog.=) $2"
				 "   AND status OPERATOR(pg_catalog.=) 'open' AND required", 2, argtypes);
	args[0] = Int64GetDatum(deal_id);
	args[1] = Int64GetDatum(stage_id);
	if (SPI_execute_plan(plan, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading salesmgmt.sales_task failed");
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	sm_owner_spi_end(&saved);
	return n;
}

/* ----------------------------------------------------------------------
 * The guard on stage tasks
 * ----------------------------------------------------------------------
 */

/* Admins, and the owner of the table (the triggers' own writes), may. */
static bool
sm_task_privileged(Relation rel)
{
	Oid			admin = get_role_oid("salesmgmt_admin", true);

	return GetUserId() == rel->rd_rel->relowner ||
		(OidIsValid(admin) && has_privs_of_role(GetUserId(), admin));
}

static bool
sm_attr_changed(HeapTuple oldtup, HeapTuple newtup, TupleDesc td, const char *name)
{
	int			attnum = SPI_fnumber(td, name);
	bool		oldnull;
	bool		newnull;
	Datum		o;
	Datum		n;
	Form_pg_attribute att;

	if (attnum <= 0)
		return false;
	att = TupleDescAttr(td, attnum - 1);
	o = heap_getattr(oldtup, attnum, td, &oldnull);
	n = heap_getattr(newtup, attnum, td, &newnull);
	if (oldnull || newnull)
		return oldnull != newnull;
	return !datumIsEqual(o, n, att->attbyval, att->attlen);
}

static char *
sm_attr_text(HeapTuple tup, TupleDesc td, const char *name)
{
	char	   *v = SPI_getvalue(tup, td, SPI_fnumber(td, name));

	return v ? v : "";
}

/* 42501: a required open stage task cannot be deleted or cancelled */
static void
sm_refuse_task_change(HeapTuple oldtup, TupleDesc td, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("required stage task %s cannot be %s", sm_attr_text(oldtup, td, "task_id"), what),
			 errdetail("It is on the checklist of deal %s's stage %s.",
					   sm_attr_text(oldtup, td, "deal_id"),
					   sm_attr_text(oldtup, td, "stage_id")),
			 errhint("Complete it, or ask an admin; moving the deal to a lost stage cancels its open tasks.")));
}

/*
 * BEFORE UPDATE OR DELETE on sales_task, for stage tasks only (WHEN
 * OLD.stage_id IS NOT NULL): a rep or manager completes a stage task or
 * edits its text and due date, but does not detach it from its deal and
 * stage, make it optional, cancel it or delete it while it is required and
 * open.  Admins may; a move to a lost stage cancels the tasks itself.
 */
Datum
sm_stage_task_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	td;
	HeapTuple	oldtup;
	HeapTuple	newtup = NULL;
	bool		required_open;
	char	   *task_id;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_stage_task_guard must be fired BEFORE UPDATE OR DELETE FOR EACH ROW")));
	rel = trigdata->tg_relation;
	td = RelationGetDescr(rel);
	oldtup = trigdata->tg_trigtuple;
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		newtup = trigdata->tg_newtuple;
	if (sm_task_privileged(rel))
		return PointerGetDatum(newtup ? newtup : oldtup);

	task_id = sm_attr_text(oldtup, td, "task_id");
	required_open = strcmp(sm_attr_text(oldtup, td, "status"), "open") == 0 &&
		strcmp(sm_attr_text(oldtup, td, "required"), "t") == 0;
	if (newtup == NULL)
	{
		if (required_open)
			sm_refuse_task_change(oldtup, td, "deleted");
		return PointerGetDatum(oldtup);
	}
	if (sm_attr_changed(oldtup, newtup, td, "deal_id") ||
		sm_attr_changed(oldtup, newtup, td, "stage_id") ||
		sm_attr_changed(oldtup, newtup, td, "template_id") ||
		sm_attr_changed(oldtup, newtup, td, "required"))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("stage task %s cannot change its deal, stage, template or whether it is required",
						task_id),
				 errhint("Only an admin may change salesmgmt.stage_task_template or its tasks' place on a checklist.")));
	if (required_open && strcmp(sm_attr_text(newtup, td, "status"), "cancelled") == 0)
		sm_refuse_task_change(oldtup, td, "cancelled");
	return PointerGetDatum(newtup);
}

/* ----------------------------------------------------------------------
 * Approvals: checks per row in the BEFORE trigger
 * ----------------------------------------------------------------------
 */

/* The guarded fields of a row as a JSON object of their text values. */
static Jsonb *
sm_guarded_jsonb(HeapTuple tup, TupleDesc td)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < sm_nguarded; i++)
	{
		char	   *v;

		if (sm_guarded_attnum[i] <= 0)
			continue;
		v = SPI_getvalue(tup, td, sm_guarded_attnum[i]);
		if (v == NULL)
		{
			JsonbValue	null;

			sm_jsonb_push_key(&state, sm_guarded[i]);
			null.type = jbvNull;
			pushJsonbValue(&state, WJB_VALUE, &null);
		}
		else
			sm_jsonb_push_string(&state, sm_guarded[i], v);
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* Runs one of process_approval.sql's internal functions as the owner. */
static void
sm_approval_call(const char *sql, SPIPlanPtr *plan, int nargs, Oid *argtypes, Datum *args)
{
	SmSavedUser saved;

	sm_owner_spi_begin(&saved);
	sm_keep_plan(plan, sql, nargs, argtypes);
	if (SPI_execute_plan(*plan, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "%s failed", sql);
	sm_owner_spi_end(&saved);
}

/*
 * Per row, from the BEFORE trigger.  Updates: a change to a guarded field
 * meets the deal's open requests (refused while pending, voiding an
 * approval); a move into a stage whose rule matches the deal consumes its
 * approved request or is refused.  Inserts (from and oldtup NULL): a new
 * deal cannot have an approved request yet, so a deal created right in a
 * stage whose rule matches it is refused; it enters an earlier stage, asks,
 * and moves once approved (otherwise an INSERT, a COPY or an import would
 * skip the approval an UPDATE needs).
 */
void
sm_process_check_row(int64 deal_id, const SmStage *from, const SmStage *to,
					 HeapTuple oldtup, HeapTuple newtup, Relation rel)
{
	static SPIPlanPtr changed_plan = NULL;
	static SPIPlanPtr consume_plan = NULL;
	TupleDesc	td = RelationGetDescr(rel);
	Oid			relid = RelationGetRelid(rel);
	bool		changed = false;

	if (sm_nguarded == 0)
		return;					/* no approval rules */
	if (sm_guarded_relid != relid)
	{
		MemoryContext cxt = GetMemoryChunkContext(sm_guarded);

		sm_guarded_attnum = MemoryContextAlloc(cxt, sizeof(AttrNumber) * sm_nguarded);
		for (int i = 0; i < sm_nguarded; i++)
		{
			int			attnum = SPI_fnumber(td, sm_guarded[i]);

			sm_guarded_attnum[i] = attnum > 0 ? (AttrNumber) attnum : 0;
		}
		sm_guarded_relid = relid;
	}
	for (int i = 0; oldtup != NULL && i < sm_nguarded && !changed; i++)
		changed = sm_guarded_attnum[i] > 0 &&
			sm_attr_changed(oldtup, newtup, td, sm_guarded[i]);
	if (changed)
	{
		Oid			argtypes[3] = {INT8OID, JSONBOID, JSONBOID};
		Datum		args[3];

		args[0] = Int64GetDatum(deal_id);
		args[1] = JsonbPGetDatum(sm_guarded_jsonb(oldtup, td));
		args[2] = JsonbPGetDatum(sm_guarded_jsonb(newtup, td));
		sm_approval_call("SELECT salesmgmt._approval_fields_changed($1, $2, $3)",
						 &changed_plan, 3, argtypes, args);
	}

	if (from != to && to->rules != NULL)
	{
		StringInfoData names;

		initStringInfo(&names);
		for (SmApprovalRule *r = to->rules; r != NULL; r = r->next)
		{
			if (r->bound_relid != relid)
			{
				sm_rule_bind(r->rule, td);
				r->bound_relid = relid;
			}
			if (sm_rule_match_tuple(r->rule, newtup, td))
				appendStringInfo(&names, "%s\"%s\"", names.len > 0 ? ", " : "", r->name);
		}
		if (names.len > 0 && from == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_SM_APPROVAL_REQUIRED),
					 errmsg("deal " INT64_FORMAT " cannot be created in stage \"%s\" without an approval",
							deal_id, to->name),
					 errdetail("Approval rules that apply to the deal: %s; a new deal has no approved request.",
							   names.data),
					 errhint("Create the deal in an earlier stage, ask with salesmgmt.request_approval(), and move it once approved.")));
		if (names.len > 0)
		{
			Oid			argtypes[3] = {INT8OID, INT8OID, TEXTOID};
			Datum		args[3];

			if (from->nrequired_templates > 0 && sm_move_is_forward(from, to))
				sm_check_open_tasks_of(deal_id, from, to);

			args[0] = Int64GetDatum(deal_id);
			args[1] = Int64GetDatum(to->stage_id);
			args[2] = CStringGetTextDatum(names.data);
			sm_approval_call("SELECT salesmgmt._approval_consume($1, $2, $3)",
							 &consume_plan, 3, argtypes, args);
		}
	}
}

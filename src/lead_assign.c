/*-------------------------------------------------------------------------
 *
 * lead_assign.c
 *	  Lead routing and status moves (docs/leads.md).
 *
 *	  The BEFORE INSERT OR UPDATE trigger on salesmgmt.lead routes every
 *	  lead inserted without owner and pool by the assignment rules of
 *	  entity "lead", in the inserting statement, so COPY and bulk inserts
 *	  are routed like single inserts; on UPDATE it checks status moves.
 *	  An UPDATE of only the score columns (score_leads) is no edit: the
 *	  trigger returns the row as it is, without touching updated_at.
 *	  salesmgmt.assign(entity, id) routes an existing lead, account or deal
 *	  the same way.
 *
 *	  The active rules are compiled once per backend (rules.c) and dropped
 *	  when salesmgmt.assignment_rule changes (its statement trigger sends a
 *	  relcache invalidation that every backend sees).
 *
 *	  Fair turns: a team target increments the team's row of
 *	  salesmgmt.assignment_rotation in the routing transaction.  The row
 *	  lock queues concurrent routings to the team until the holder commits,
 *	  and the counter it returns picks the rep (turn mod number of active
 *	  reps, by rep_id), so committed routings take consecutive turns: over
 *	  N items and R reps every rep gets floor(N/R) or ceil(N/R), whatever
 *	  the number of concurrent sessions.  Load-balanced routing counts the
 *	  open items after taking the lock, in a new statement (a fresh
 *	  snapshot under READ COMMITTED), so a capacity is never exceeded by
 *	  concurrent routings.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "lead.h"
#include "rules.h"
#include "salesmgmt.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_lead_before);
PG_FUNCTION_INFO_V1(sm_assign);

typedef enum TargetKind
{
	TK_REP,
	TK_ROUND_ROBIN,
	TK_LOAD_BALANCED,
	TK_POOL
} TargetKind;

typedef struct AssignRule
{
	int64		rule_id;
	TargetKind	kind;
	int64		target_id;
	SmRule	   *cond;
} AssignRule;

typedef struct EntityRules
{
	int			nrules;
	AssignRule *rules;
	TupleDesc	bound;			/* descriptor the conditions are bound to */
} EntityRules;

static const char *const entity_names[SM_ENTITY_COUNT] = {"lead", "account", "deal"};

static MemoryContext assign_cxt = NULL;
static EntityRules assign_rules[SM_ENTITY_COUNT];
static bool assign_valid = false;
static bool assign_callback = false;
static Oid	assign_rule_relid = InvalidOid;


static void
assign_relcache_cb(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == assign_rule_relid)
		assign_valid = false;
}

int
sm_entity_from_name(const char *name)
{
	for (int i = 0; i < SM_ENTITY_COUNT; i++)
		if (strcmp(name, entity_names[i]) == 0)
			return i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown entity \"%s\"", name),
			 errhint("Assignment rules route lead, account or deal.")));
	return -1;					/* keep compiler quiet */
}

static TargetKind
target_kind_from_name(const char *s)
{
	if (strcmp(s, "rep") == 0)
		return TK_REP;
	if (strcmp(s, "team_round_robin") == 0)
		return TK_ROUND_ROBIN;
	if (strcmp(s, "team_load_balanced") == 0)
		return TK_LOAD_BALANCED;
	return TK_POOL;
}

/* the active rules, compiled; SPI must be connected */
static void
load_rules(void)
{
	MemoryContext newcxt,
				old;
	uint64		n;
	int			counts[SM_ENTITY_COUNT] = {0};
	int			ret;

	if (assign_valid)
		return;
	if (!assign_callback)
	{
		CacheRegisterRelcacheCallback(assign_relcache_cb, (Datum) 0);
		assign_callback = true;
	}
	assign_rule_relid = sm_relation_oid("assignment_rule");

	ret = SPI_execute("SELECT entity, rule_id, target_kind, target_id, condition"
					  "  FROM salesmgmt.assignment_rule WHERE active ORDER BY entity, position",
					  true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	n = SPI_processed;

	/* built beside the transaction; kept only once complete */
	newcxt = AllocSetContextCreate(CurrentMemoryContext, "salesmgmt assignment rules",
								   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(newcxt);
	{
		EntityRules fresh[SM_ENTITY_COUNT];

		for (int e = 0; e < SM_ENTITY_COUNT; e++)
		{
			fresh[e].nrules = 0;
			fresh[e].rules = palloc0(sizeof(AssignRule) * Max(n, 1));
			fresh[e].bound = NULL;
		}
		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			TupleDesc	d = SPI_tuptable->tupdesc;
			bool		isnull;
			int			e = sm_entity_from_name(TextDatumGetCString(SPI_getbinval(t, d, 1, &isnull)));
			AssignRule *r = &fresh[e].rules[fresh[e].nrules++];

			r->rule_id = DatumGetInt64(SPI_getbinval(t, d, 2, &isnull));
			r->kind = target_kind_from_name(TextDatumGetCString(SPI_getbinval(t, d, 3, &isnull)));
			r->target_id = DatumGetInt64(SPI_getbinval(t, d, 4, &isnull));
			/*
			 * Validated when written; compiled here without the table, so
			 * that a column dropped since makes the rule never match rather
			 * than stop every insert.
			 */
			r->cond = sm_rule_compile(DatumGetJsonbPCopy(SPI_getbinval(t, d, 5, &isnull)),
									  InvalidOid, "assignment rule condition");
			counts[e]++;
		}
		MemoryContextSwitchTo(old);
		if (assign_cxt)
			MemoryContextDelete(assign_cxt);
		MemoryContextSetParent(newcxt, CacheMemoryContext);
		assign_cxt = newcxt;
		memcpy(assign_rules, fresh, sizeof(fresh));
	}
	assign_valid = true;
}

/*
 * An owner given explicitly by a rep or manager must be one they see
 * (admins and the extension's own functions give any).  SPI connected.
 */
static void
check_given_owner(int64 rep_id)
{
	Oid			admin = get_role_oid("salesmgmt_admin", true);
	Oid			t = INT8OID;
	Datum		arg = Int64GetDatum(rep_id);
	bool		isnull;
	int			ret;

	if (superuser() || (OidIsValid(admin) && has_privs_of_role(GetUserId(), admin)))
		return;
	ret = SPI_execute_with_args("SELECT salesmgmt.rep_visible($1)", 1, &t, &arg, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) || isnull)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("lead cannot be given to rep " INT64_FORMAT, rep_id),
				 errdetail("The rep is outside the current role's scope."),
				 errhint("Leave owner_rep_id null to let the assignment rules route the lead.")));
}

/*
 * Route a row of the entity: the first matching rule whose target yields
 * an owner (or a pool).  SPI must be connected.  False when no rule did.
 */
static bool
route(int entity, HeapTuple tuple, TupleDesc desc, SmRouting *out)
{
	EntityRules *er;

	load_rules();
	er = &assign_rules[entity];
	if (er->bound != desc)
	{
		for (int i = 0; i < er->nrules; i++)
			sm_rule_bind(er->rules[i].cond, desc);
		er->bound = desc;
	}
	for (int i = 0; i < er->nrules; i++)
	{
		AssignRule *r = &er->rules[i];
		bool		found = false;

		if (!sm_rule_match_tuple(r->cond, tuple, desc))
			continue;
		out->rule_id = r->rule_id;
		out->rep_id = 0;
		out->pool_id = 0;
		switch (r->kind)
		{
			case TK_REP:
				found = sm_rep_active(r->target_id);
				out->rep_id = r->target_id;
				break;
			case TK_ROUND_ROBIN:
				found = sm_turn_round_robin(r->target_id, &out->rep_id);
				break;
			case TK_LOAD_BALANCED:
				found = sm_turn_load_balanced(entity, r->target_id, &out->rep_id);
				break;
			case TK_POOL:
				found = true;
				out->pool_id = r->target_id;
				break;
		}
		if (found)
			return true;
	}
	return false;
}

/* ---------------------------------------------------------------------
 * Status moves
 * ---------------------------------------------------------------------
 */

static const char *const lead_statuses[] = {
	"new", "working", "nurturing", "qualified", "disqualified", "converted"
};

/* allowed[from] lists the statuses a lead may move to */
static const char *const lead_moves[] = {
	"working nurturing qualified disqualified converted",	/* new */
	"nurturing qualified disqualified converted",	/* working */
	"working qualified disqualified converted", /* nurturing */
	"working nurturing disqualified converted", /* qualified */
	"working nurturing",		/* disqualified */
	""							/* converted */
};

static void
check_status_move(const char *from, const char *to)
{
	for (int i = 0; i < (int) lengthof(lead_statuses); i++)
	{
		if (strcmp(from, lead_statuses[i]) != 0)
			continue;
		{
			const char *allowed = lead_moves[i];
			size_t		len = strlen(to);

			for (const char *p = allowed; (p = strstr(p, to)) != NULL; p += len)
				if ((p == allowed || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
					return;
			ereport(ERROR,
					(errcode(ERRCODE_SM_LEAD_STATUS_MOVE),
					 errmsg("lead cannot move from %s to %s", from, to),
					 *allowed ? errdetail("From %s a lead may move to: %s.", from, allowed)
					 : errdetail("A converted lead is final."),
					 strcmp(to, "converted") == 0
					 ? errhint("Convert leads with salesmgmt.convert_lead().") : 0));
		}
	}
}

/*
 * True when the update changes the score or its explanation and nothing
 * else (compared in binary: a column that merely looks different counts
 * as changed, which only means updated_at moves as for any edit).
 */
static bool
lead_only_score_changed(HeapTuple oldt, HeapTuple newt, TupleDesc desc,
						int a_score, int a_expl)
{
	Datum	   *ov = palloc(sizeof(Datum) * desc->natts);
	Datum	   *nv = palloc(sizeof(Datum) * desc->natts);
	bool	   *on = palloc(sizeof(bool) * desc->natts);
	bool	   *nn = palloc(sizeof(bool) * desc->natts);
	bool		score_changed = false;

	heap_deform_tuple(oldt, desc, ov, on);
	heap_deform_tuple(newt, desc, nv, nn);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		same;

		if (att->attisdropped)
			continue;
		same = on[i] == nn[i] &&
			(on[i] || datumIsEqual(ov[i], nv[i], att->attbyval, att->attlen));
		if (i + 1 == a_score || i + 1 == a_expl)
			score_changed |= !same;
		else if (!same)
			return false;
	}
	return score_changed;
}

/* ---------------------------------------------------------------------
 * The trigger
 * ---------------------------------------------------------------------
 */

static int
attnum_of(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (!a->attisdropped && strcmp(NameStr(a->attname), name) == 0)
			return i + 1;
	}
	elog(ERROR, "column \"%s\" of salesmgmt.lead is missing", name);
	return 0;
}

Datum
sm_lead_before(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	tuple;
	int			a_owner,
				a_pool,
				a_status,
				a_assigned,
				a_updated,
				a_score,
				a_expl;
	int			cols[4];
	Datum		vals[4];
	bool		nulls[4];
	int			ncols = 0;
	bool		owner_null,
				pool_null;
	Datum		owner;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_lead_before must be fired as a BEFORE ROW trigger")));
	desc = RelationGetDescr(td->tg_relation);
	/* the columns' numbers, looked up once per descriptor */
	{
		static TupleDesc known = NULL;
		static Oid	known_rel = InvalidOid;
		static int	known_natts = 0;
		static int	cached[7];

		if (known != desc || known_rel != RelationGetRelid(td->tg_relation) ||
			known_natts != desc->natts)
		{
			cached[0] = attnum_of(desc, "owner_rep_id");
			cached[1] = attnum_of(desc, "pool_id");
			cached[2] = attnum_of(desc, "status");
			cached[3] = attnum_of(desc, "assigned_at");
			cached[4] = attnum_of(desc, "updated_at");
			cached[5] = attnum_of(desc, "score");
			cached[6] = attnum_of(desc, "score_explanation");
			known = desc;
			known_rel = RelationGetRelid(td->tg_relation);
			known_natts = desc->natts;
		}
		a_owner = cached[0];
		a_pool = cached[1];
		a_status = cached[2];
		a_assigned = cached[3];
		a_updated = cached[4];
		a_score = cached[5];
		a_expl = cached[6];
	}

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		tuple = td->tg_trigtuple;
		owner = heap_getattr(tuple, a_owner, desc, &owner_null);
		(void) heap_getattr(tuple, a_pool, desc, &pool_null);
		if (owner_null && pool_null)
		{
			SmRouting r;
			bool		routed;
			Oid			save_userid;
			int			save_sec;

			/* the rotation and the load are read and kept as the table owner */
			GetUserIdAndSecContext(&save_userid, &save_sec);
			SetUserIdAndSecContext(td->tg_relation->rd_rel->relowner,
								   save_sec | SECURITY_LOCAL_USERID_CHANGE);
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			routed = route(SM_ENTITY_LEAD, tuple, desc, &r);
			SPI_finish();
			SetUserIdAndSecContext(save_userid, save_sec);
			if (routed && r.rep_id != 0)
			{
				cols[ncols] = a_owner;
				vals[ncols] = Int64GetDatum(r.rep_id);
				nulls[ncols++] = false;
				owner_null = false;
			}
			else if (routed)
			{
				cols[ncols] = a_pool;
				vals[ncols] = Int64GetDatum(r.pool_id);
				nulls[ncols++] = false;
			}
		}
		else if (!owner_null)
		{
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			check_given_owner(DatumGetInt64(owner));
			SPI_finish();
		}
		if (!owner_null)
		{
			bool		isnull;

			(void) heap_getattr(tuple, a_assigned, desc, &isnull);
			if (isnull)
			{
				cols[ncols] = a_assigned;
				vals[ncols] = TimestampTzGetDatum(now);
				nulls[ncols++] = false;
			}
		}
	}
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		HeapTuple	oldt = td->tg_trigtuple;
		bool		isnull,
					old_owner_null;
		Datum		old_owner;
		char	   *from,
				   *to;

		tuple = td->tg_newtuple;
		if (lead_only_score_changed(oldt, tuple, desc, a_score, a_expl))
			return PointerGetDatum(tuple);
		from = TextDatumGetCString(heap_getattr(oldt, a_status, desc, &isnull));
		to = TextDatumGetCString(heap_getattr(tuple, a_status, desc, &isnull));
		if (strcmp(from, to) != 0)
			check_status_move(from, to);
		else if (strcmp(from, "converted") == 0)
		{
			/* a converted lead keeps its owner */
			owner = heap_getattr(tuple, a_owner, desc, &owner_null);
			old_owner = heap_getattr(oldt, a_owner, desc, &old_owner_null);
			if (owner_null != old_owner_null ||
				(!owner_null && DatumGetInt64(owner) != DatumGetInt64(old_owner)))
				ereport(ERROR,
						(errcode(ERRCODE_SM_LEAD_CONVERTED),
						 errmsg("lead was converted and cannot change owner"),
						 errhint("Change the owner of the account or deal it became.")));
		}
		owner = heap_getattr(tuple, a_owner, desc, &owner_null);
		old_owner = heap_getattr(oldt, a_owner, desc, &old_owner_null);
		if (!owner_null && (old_owner_null || DatumGetInt64(owner) != DatumGetInt64(old_owner)))
		{
			cols[ncols] = a_assigned;
			vals[ncols] = TimestampTzGetDatum(now);
			nulls[ncols++] = false;
		}
		cols[ncols] = a_updated;
		vals[ncols] = TimestampTzGetDatum(GetCurrentTimestamp());
		nulls[ncols++] = false;
	}
	else
		return PointerGetDatum(td->tg_trigtuple);

	if (ncols == 0)
		return PointerGetDatum(tuple);
	return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, ncols, cols, vals, nulls));
}

/* ---------------------------------------------------------------------
 * salesmgmt.assign(p_entity text, p_id bigint) RETURNS bigint
 * ---------------------------------------------------------------------
 */
Datum
sm_assign(PG_FUNCTION_ARGS)
{
	int			entity;
	int64		id;
	char	   *sql;
	Oid			t = INT8OID;
	Datum		arg;
	int			ret;
	HeapTuple	row;
	TupleDesc	desc;
	SmRouting	r;
	bool		routed;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("entity and id must not be null"),
				 errhint("For example salesmgmt.assign('lead', 42).")));
	entity = sm_entity_from_name(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	id = PG_GETARG_INT64(1);
	arg = Int64GetDatum(id);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sql = psprintf("SELECT * FROM salesmgmt.%s WHERE %s_id = $1 FOR UPDATE",
				   entity_names[entity], entity_names[entity]);
	ret = SPI_execute_with_args(sql, 1, &t, &arg, NULL, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("%s " INT64_FORMAT " does not exist", entity_names[entity], id)));
	row = SPI_copytuple(SPI_tuptable->vals[0]);
	desc = CreateTupleDescCopy(SPI_tuptable->tupdesc);
	if (entity == SM_ENTITY_LEAD)
	{
		char	   *status = SPI_getvalue(row, desc, SPI_fnumber(desc, "status"));

		if (strcmp(status, "converted") == 0 || strcmp(status, "disqualified") == 0)
			ereport(ERROR,
					(errcode(strcmp(status, "converted") == 0 ? ERRCODE_SM_LEAD_CONVERTED
							 : ERRCODE_SM_LEAD_STATUS_MOVE),
					 errmsg("lead " INT64_FORMAT " is %s and is not routed", id, status)));
	}
	routed = route(entity, row, desc, &r);
	assign_rules[entity].bound = NULL;	/* desc is ours, not the relation's */
	if (routed)
	{
		Oid			types[3] = {INT8OID, INT8OID, INT8OID};
		Datum		args[3];
		char		nulls[3] = {' ', r.rep_id ? ' ' : 'n', r.pool_id ? ' ' : 'n'};

		args[0] = arg;
		args[1] = Int64GetDatum(r.rep_id);
		args[2] = Int64GetDatum(r.pool_id);
		if (entity == SM_ENTITY_LEAD)
			sql = "WITH u AS (UPDATE salesmgmt.lead SET owner_rep_id = $2, pool_id = coalesce($3, pool_id),"
				"                  assigned_at = CASE WHEN $2 IS NULL THEN NULL ELSE now() END"
				"             WHERE lead_id = $1 RETURNING lead_id, pool_id)"
				" INSERT INTO salesmgmt.lead_history (lead_id, kind, rep_id, pool_id, reason)"
				" SELECT u.lead_id, 'assigned', $2, u.pool_id, 'assignment rule' FROM u";
		else
			sql = psprintf("UPDATE salesmgmt.%s SET owner_rep_id = $2 WHERE %s_id = $1",
						   entity_names[entity], entity_names[entity]);
		ret = SPI_execute_with_args(sql, entity == SM_ENTITY_LEAD ? 3 : 2, types, args, nulls, false, 0);
		if (ret < 0)
			elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
		if (entity == SM_ENTITY_LEAD)
		{
			ret = SPI_execute_with_args("SELECT salesmgmt.emit_event('lead.assigned', 'lead', $1,"
										" pg_catalog.jsonb_build_object('lead_id', $1, 'owner_rep_id', $2,"
										"                               'pool_id', $3, 'via', 'assign'))",
										3, types, args, nulls, false, 0);
			if (ret != SPI_OK_SELECT)
				elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
		}
	}
	sm_turns_flush();
	SPI_finish();
	if (!routed || r.rep_id == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(r.rep_id);
}

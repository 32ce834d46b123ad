/*-------------------------------------------------------------------------
 *
 * lead_turns.c
 *	  Whose turn it is: the team targets of assignment rules (round robin,
 *	  load balanced) and the checks of rep targets, for lead_assign.c.
 *
 *	  The first routing to a team in a statement increments the team's row
 *	  of salesmgmt.assignment_rotation (inserting it if missing), which
 *	  locks the row until the transaction ends: a concurrent routing to the
 *	  team waits there, then reads the counter this transaction committed.
 *	  While the lock is held nobody else routes to the team, so the rest of
 *	  the statement counts turns, and (load balanced) the open items of the
 *	  team's reps, in memory: the team's active reps and capacities are
 *	  read once, its reps' open items are counted once after the lock, in a
 *	  statement of their own (a snapshot that sees what the previous holder
 *	  committed).  At the end of the statement (an AFTER STATEMENT trigger
 *	  on lead, or the end of salesmgmt.assign) the counters are written
 *	  back and the state is dropped.  An error drops it as well; a
 *	  rolled-back savepoint forgets the teams whose rows it took (the row
 *	  changes and the locks go with it).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "lead.h"
#include "salesmgmt.h"

PG_FUNCTION_INFO_V1(sm_lead_after_statement);

typedef struct TeamTurns
{
	int64		team_id;
	int64		turns;			/* the counter, as this transaction has it */
	int64		written;		/* the counter as the row holds it */
	SubTransactionId subid;		/* the (sub)transaction that took the row */
	int			nreps;
	int64	   *reps;			/* active reps by rep_id */
	int64	   *caps;			/* capacity per rep, 0 for none */
	int64	   *loads;			/* open items per rep, when load_entity >= 0 */
	int			load_entity;
} TeamTurns;

typedef struct RepActive
{
	int64		rep_id;
	bool		active;
} RepActive;

/* the statement's state, in TopTransactionContext; NULL when there is none */
typedef struct TurnState
{
	int			nteams;
	int			maxteams;
	TeamTurns  *teams;
	int			nreps;
	int			maxreps;
	RepActive  *reps;
} TurnState;

static TurnState *turn_state = NULL;
static bool turn_callbacks = false;

static SPIPlanPtr plan_bump = NULL;
static SPIPlanPtr plan_insert = NULL;
static SPIPlanPtr plan_write = NULL;
static SPIPlanPtr plan_team = NULL;
static SPIPlanPtr plan_active = NULL;
static SPIPlanPtr plan_subscribed = NULL;
static SPIPlanPtr plan_loads[SM_ENTITY_COUNT];

static void
turns_xact_cb(XactEvent event, void *arg)
{
	turn_state = NULL;
}

/*
 * A rolled-back subtransaction takes back the rows it took (and their
 * locks): forget those teams; the others stay as they are.
 */
static void
turns_subxact_cb(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	TurnState  *st = turn_state;
	int			kept = 0;

	if (event != SUBXACT_EVENT_ABORT_SUB || st == NULL)
		return;
	for (int i = 0; i < st->nteams; i++)
		if (st->teams[i].subid < mySubid)
			st->teams[kept++] = st->teams[i];
	st->nteams = kept;
}

static TurnState *
state(void)
{
	if (!turn_callbacks)
	{
		RegisterXactCallback(turns_xact_cb, NULL);
		RegisterSubXactCallback(turns_subxact_cb, NULL);
		turn_callbacks = true;
	}
	if (turn_state == NULL)
		turn_state = MemoryContextAllocZero(TopTransactionContext, sizeof(TurnState));
	return turn_state;
}

static SPIPlanPtr
keep_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*slot = p;
	}
	return *slot;
}

static void
run_plan(SPIPlanPtr plan, Datum *args, bool read_only, int expect)
{
	int			ret = SPI_execute_plan(plan, args, NULL, read_only, 0);

	if (ret != expect)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
}

static int64
col_int8(uint64 row, int col, bool *isnull)
{
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull));
}

/* the team, its row locked, its counter read and its reps loaded */
static TeamTurns *
team(int64 team_id)
{
	TurnState  *st = state();
	TeamTurns  *t;
	Oid			t8 = INT8OID;
	Datum		arg = Int64GetDatum(team_id);
	bool		isnull;
	MemoryContext old;

	for (int i = 0; i < st->nteams; i++)
		if (st->teams[i].team_id == team_id)
			return &st->teams[i];

	/* take the row (and its lock): a turn now, written back at the end */
	run_plan(keep_plan(&plan_bump,
					   "UPDATE salesmgmt.assignment_rotation SET turns = turns + 1, updated_at = now()"
					   " WHERE team_id = $1 RETURNING turns", 1, &t8),
			 &arg, false, SPI_OK_UPDATE_RETURNING);
	if (SPI_processed == 0)
		run_plan(keep_plan(&plan_insert,
						   "INSERT INTO salesmgmt.assignment_rotation AS r (team_id, turns) VALUES ($1, 1)"
						   " ON CONFLICT (team_id) DO UPDATE SET turns = r.turns + 1, updated_at = now()"
						   " RETURNING turns", 1, &t8),
				 &arg, false, SPI_OK_INSERT_RETURNING);

	old = MemoryContextSwitchTo(TopTransactionContext);
	if (st->nteams == st->maxteams)
	{
		st->maxteams = Max(8, st->maxteams * 2);
		st->teams = st->teams ? repalloc(st->teams, sizeof(TeamTurns) * st->maxteams)
			: palloc(sizeof(TeamTurns) * st->maxteams);
	}
	t = &st->teams[st->nteams];
	memset(t, 0, sizeof(TeamTurns));
	t->team_id = team_id;
	/* the turn the UPDATE took is used by the caller: count from one before */
	t->written = col_int8(0, 1, &isnull);
	t->subid = GetCurrentSubTransactionId();
	t->turns = t->written - 1;
	t->load_entity = -1;
	MemoryContextSwitchTo(old);

	run_plan(keep_plan(&plan_team,
					   "SELECT r.rep_id, coalesce(c.max_open_leads, 0)::bigint"
					   "  FROM salesmgmt.rep r LEFT JOIN salesmgmt.rep_capacity c ON c.rep_id = r.rep_id"
					   " WHERE r.team_id = $1 AND r.active ORDER BY r.rep_id", 1, &t8),
			 &arg, true, SPI_OK_SELECT);
	old = MemoryContextSwitchTo(TopTransactionContext);
	t->nreps = (int) SPI_processed;
	t->reps = palloc(sizeof(int64) * Max(t->nreps, 1));
	t->caps = palloc(sizeof(int64) * Max(t->nreps, 1));
	t->loads = palloc0(sizeof(int64) * Max(t->nreps, 1));
	for (int i = 0; i < t->nreps; i++)
	{
		t->reps[i] = col_int8(i, 1, &isnull);
		t->caps[i] = col_int8(i, 2, &isnull);
	}
	MemoryContextSwitchTo(old);
	st->nteams++;
	return t;
}

/* count the open items of the team's reps (after the lock) */
static void
load_counts(TeamTurns *t, int entity)
{
	static const char *const sql[SM_ENTITY_COUNT] = {
		"SELECT owner_rep_id, count(*) FROM salesmgmt.lead WHERE owner_rep_id = ANY ($1)"
		"   AND status IN ('new', 'working', 'nurturing', 'qualified') GROUP BY 1",
		"SELECT owner_rep_id, count(*) FROM salesmgmt.account WHERE owner_rep_id = ANY ($1) GROUP BY 1",
		"SELECT d.owner_rep_id, count(*) FROM salesmgmt.deal d JOIN salesmgmt.stage s ON s.stage_id = d.stage_id"
		" WHERE d.owner_rep_id = ANY ($1) AND s.outcome = 'open' GROUP BY 1"
	};
	Oid			t8a = INT8ARRAYOID;
	Datum	   *elems = palloc(sizeof(Datum) * Max(t->nreps, 1));
	Datum		arg;
	bool		isnull;

	if (t->load_entity == entity)
		return;
	for (int i = 0; i < t->nreps; i++)
		elems[i] = Int64GetDatum(t->reps[i]);
	arg = PointerGetDatum(construct_array(elems, t->nreps, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	/* not read-only: a new snapshot, which sees what the lock waited for */
	run_plan(keep_plan(&plan_loads[entity], sql[entity], 1, &t8a), &arg, false, SPI_OK_SELECT);
	memset(t->loads, 0, sizeof(int64) * Max(t->nreps, 1));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		int64		rep = col_int8(r, 1, &isnull);

		for (int i = 0; i < t->nreps; i++)
			if (t->reps[i] == rep)
				t->loads[i] = col_int8(r, 2, &isnull);
	}
	t->load_entity = entity;
}

bool
sm_turn_round_robin(int64 team_id, int64 *rep)
{
	TeamTurns  *t = team(team_id);
	int64		turn = ++t->turns;

	if (t->nreps == 0)
		return false;
	*rep = t->reps[(turn - 1) % t->nreps];
	return true;
}

bool
sm_turn_load_balanced(int entity, int64 team_id, int64 *rep)
{
	TeamTurns  *t = team(team_id);
	int64		turn = ++t->turns;
	int			best = -1;
	int64		best_dist = 0;

	if (t->nreps == 0)
		return false;
	load_counts(t, entity);
	for (int i = 0; i < t->nreps; i++)
	{
		int64		dist;

		if (t->caps[i] > 0 && t->loads[i] >= t->caps[i])
			continue;
		/* ties: the rep whose turn comes first from this turn on */
		dist = ((i - (turn - 1) % t->nreps) + t->nreps) % t->nreps;
		if (best < 0 || t->loads[i] < t->loads[best] ||
			(t->loads[i] == t->loads[best] && dist < best_dist))
		{
			best = i;
			best_dist = dist;
		}
	}
	if (best < 0)
		return false;
	t->loads[best]++;
	*rep = t->reps[best];
	return true;
}

bool
sm_rep_active(int64 rep_id)
{
	TurnState  *st = state();
	Oid			t8 = INT8OID;
	Datum		arg = Int64GetDatum(rep_id);
	bool		active;

	for (int i = 0; i < st->nreps; i++)
		if (st->reps[i].rep_id == rep_id)
			return st->reps[i].active;
	run_plan(keep_plan(&plan_active, "SELECT 1 FROM salesmgmt.rep WHERE rep_id = $1 AND active", 1, &t8),
			 &arg, true, SPI_OK_SELECT);
	active = SPI_processed > 0;
	if (st->nreps == st->maxreps)
	{
		st->maxreps = Max(16, st->maxreps * 2);
		st->reps = st->reps ? repalloc(st->reps, sizeof(RepActive) * st->maxreps)
			: MemoryContextAlloc(TopTransactionContext, sizeof(RepActive) * st->maxreps);
	}
	st->reps[st->nreps].rep_id = rep_id;
	st->reps[st->nreps++].active = active;
	return active;
}

/* write the counters back and forget the statement's state; SPI connected */
void
sm_turns_flush(void)
{
	TurnState  *st = turn_state;
	Oid			types[2] = {INT8OID, INT8OID};

	if (st == NULL)
		return;
	for (int i = 0; i < st->nteams; i++)
	{
		Datum		args[2];

		if (st->teams[i].turns == st->teams[i].written)
			continue;
		args[0] = Int64GetDatum(st->teams[i].team_id);
		args[1] = Int64GetDatum(st->teams[i].turns);
		run_plan(keep_plan(&plan_write,
						   "UPDATE salesmgmt.assignment_rotation SET turns = $2, updated_at = now() WHERE team_id = $1",
						   2, types),
				 args, false, SPI_OK_UPDATE);
	}
	turn_state = NULL;
}

/*
 * AFTER INSERT ... FOR EACH STATEMENT on lead, with the inserted rows as
 * new_leads: the routed statement ends.  Writes the turns back, then emits
 * lead.created for every lead and lead.assigned for those routed to a rep
 * or a pool (one query each, only when an endpoint subscribes).
 */
Datum
sm_lead_after_statement(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Oid			save_userid;
	int			save_sec;
	int			ret;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_lead_after_statement must be fired as an AFTER trigger")));
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(td->tg_relation->rd_rel->relowner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sm_turns_flush();
	/* events only when an endpoint subscribes (a saved plan: one index probe) */
	run_plan(keep_plan(&plan_subscribed,
					   "SELECT 1 FROM salesmgmt.webhook_endpoint e"
					   " WHERE e.active AND (salesmgmt._webhook_subscribes(e.event_types, 'lead.created')"
					   "                     OR salesmgmt._webhook_subscribes(e.event_types, 'lead.assigned'))"
					   " LIMIT 1", 0, NULL),
			 NULL, true, SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		SPI_finish();
		SetUserIdAndSecContext(save_userid, save_sec);
		return PointerGetDatum(NULL);
	}
	if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "SPI_register_trigger_data failed");
	ret = SPI_execute("SELECT salesmgmt.emit_event('lead.created', 'lead', n.lead_id,"
					  "                            pg_catalog.jsonb_build_object('lead', pg_catalog.to_jsonb(n))),"
					  "       CASE WHEN n.assigned_at IS NOT NULL OR n.pool_id IS NOT NULL THEN"
					  "       salesmgmt.emit_event('lead.assigned', 'lead', n.lead_id,"
					  "           pg_catalog.jsonb_build_object('lead_id', n.lead_id, 'owner_rep_id', n.owner_rep_id,"
					  "                                         'pool_id', n.pool_id, 'via', 'routing')) END"
					  "  FROM new_leads n",
					  false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	return PointerGetDatum(NULL);
}

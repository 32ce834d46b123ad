/*-------------------------------------------------------------------------
 *
 * org_sql.c
 *	  The SQL-callable functions of the cached organisation (src/org.c):
 *	  the row-level security predicates and the invalidation trigger.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/inval.h"
#include "utils/rel.h"

#include "org.h"
#include "salesmgmt.h"
#include "util.h"

/* ------------------------------------------------------------------------
 * SQL-callable: the policy predicates (STRICT: null in, null out)
 * ------------------------------------------------------------------------
 */
#define SM_PREDICATE(sqlname, cfunc) \
PG_FUNCTION_INFO_V1(sqlname); \
Datum \
sqlname(PG_FUNCTION_ARGS) \
{ \
	PG_RETURN_BOOL(cfunc(GetUserId(), PG_GETARG_INT64(0))); \
}

SM_PREDICATE(sm_rep_visible, sm_org_rep_visible)
SM_PREDICATE(sm_rep_managed, sm_org_rep_managed)
SM_PREDICATE(sm_team_visible, sm_org_team_visible)
SM_PREDICATE(sm_team_managed, sm_org_team_managed)
SM_PREDICATE(sm_deal_visible, sm_org_deal_visible)
SM_PREDICATE(sm_deal_changeable, sm_org_deal_changeable)
SM_PREDICATE(sm_account_visible, sm_org_account_visible)
SM_PREDICATE(sm_account_changeable, sm_org_account_changeable)
SM_PREDICATE(sm_rep_teammate, sm_org_rep_teammate)

/* rep_manages(manager, rep): the manager manages a team above the rep */
PG_FUNCTION_INFO_V1(sm_rep_manages);
Datum
sm_rep_manages(PG_FUNCTION_ARGS)
{
	int64		manager = PG_GETARG_INT64(0);
	int64	   *chain;
	int			n = sm_org_manager_chain(PG_GETARG_INT64(1), &chain);

	for (int i = 0; i < n; i++)
		if (chain[i] == manager)
			PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(false);
}

PG_FUNCTION_INFO_V1(sm_leaderboard_visible);
Datum
sm_leaderboard_visible(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(sm_org_leaderboard_visible(GetUserId(), PG_GETARG_INT64(0), PG_GETARG_INT64(1)));
}

PG_FUNCTION_INFO_V1(sm_deal_row_visible);
Datum
sm_deal_row_visible(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(sm_org_deal_row_visible(GetUserId(), PG_GETARG_INT64(0), PG_GETARG_INT64(1)));
}

/* the rep the current role is mapped to (active reps only), or null */
PG_FUNCTION_INFO_V1(sm_org_current_rep);
Datum
sm_org_current_rep(PG_FUNCTION_ARGS)
{
	int64		rep;
	bool		has_rep;

	(void) sm_org_access(GetUserId(), &rep, &has_rep);
	if (!has_rep)
		PG_RETURN_NULL();
	PG_RETURN_INT64(rep);
}

/*
 * Statement trigger on the tables the cache reads: tell every backend
 * (at commit; this one at its next command) that the organisation
 * changed.  The argument, if any, names the salesmgmt relation whose
 * cached data the change touches; by default the trigger's own table.
 */
PG_FUNCTION_INFO_V1(sm_org_invalidate);
Datum
sm_org_invalidate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Oid			relid;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("salesmgmt._org_invalidate() must be called as a trigger")));
	relid = RelationGetRelid(trigdata->tg_relation);
	if (trigdata->tg_trigger->tgnargs > 0)
		relid = sm_relation_oid(trigdata->tg_trigger->tgargs[0]);
	CacheInvalidateRelcacheByRelid(relid);
	return PointerGetDatum(NULL);
}

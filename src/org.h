/*-------------------------------------------------------------------------
 *
 * org.h
 *	  The cached organisation: the team tree, the reps and what each
 *	  database role sees of them, kept per backend and invalidated when
 *	  salesmgmt.team, rep, deal_split, deal or account change (statement
 *	  triggers send relcache invalidations) or role membership changes.
 *
 *	  Read-only: works on a hot standby.  Every function answers from
 *	  data committed before the current statement started (and the
 *	  current transaction's own changes).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_ORG_H
#define SALESMGMT_ORG_H

#include "postgres.h"

/* what a role is to salesmgmt */
typedef enum SmAccess
{
	SM_ACCESS_NONE,				/* unmapped or inactive */
	SM_ACCESS_REP,
	SM_ACCESS_MANAGER,
	SM_ACCESS_ADMIN
} SmAccess;

extern SmAccess sm_org_access(Oid role, int64 *rep_id, bool *has_rep);

/* visibility for a role (normally GetUserId()) */
extern bool sm_org_rep_visible(Oid role, int64 rep_id);
extern bool sm_org_rep_managed(Oid role, int64 rep_id);
extern bool sm_org_team_visible(Oid role, int64 team_id);
extern bool sm_org_team_managed(Oid role, int64 team_id);
extern bool sm_org_deal_visible(Oid role, int64 deal_id);
extern bool sm_org_deal_row_visible(Oid role, int64 deal_id, int64 owner_rep_id);
extern bool sm_org_deal_changeable(Oid role, int64 deal_id);
extern bool sm_org_account_visible(Oid role, int64 account_id);
extern bool sm_org_account_changeable(Oid role, int64 account_id);
extern bool sm_org_rep_teammate(Oid role, int64 rep_id);
extern bool sm_org_leaderboard_visible(Oid role, int64 scheme_id, int64 rep_id);

/* 42501 naming the deal when the caller sees it but may not change it */
extern void sm_org_require_deal_changeable(int64 deal_id);

/*
 * The organisation for other concerns: each returns the number of ids and
 * a palloc'd array (in CurrentMemoryContext) through *ids.
 */
extern int	sm_org_subtree_reps(int64 team_id, int64 **ids);
extern int	sm_org_manager_chain(int64 rep_id, int64 **ids);
extern int	sm_org_visible_reps(Oid role, int64 **ids);

#endif							/* SALESMGMT_ORG_H */

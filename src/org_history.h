/*-------------------------------------------------------------------------
 *
 * org_history.h
 *	  The team tree and the reps' teams, today or as of a day: the one
 *	  loader that commissions, forecasts and scorecards use
 *	  (salesmgmt.team, salesmgmt.rep and their versions in
 *	  salesmgmt.team_history and salesmgmt.rep_team_history, see
 *	  src/org_history.sql and docs/history-org.md).
 *
 *	  Rows are read with the caller's rights, in CurrentMemoryContext,
 *	  inside the caller's SPI connection.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_ORG_HISTORY_H
#define SALESMGMT_ORG_HISTORY_H

#include "postgres.h"

#include "utils/date.h"

typedef struct SmOrgVersion
{
	DateADT		from;			/* first day */
	DateADT		to;				/* exclusive; DATEVAL_NOEND when current */
	int64		a;				/* rep: team; team: parent (0: none) */
	int64		b;				/* team: manager (0: none) */
} SmOrgVersion;

typedef struct SmOrgTeam
{
	int64		team_id;		/* first: the key of the binary search */
	int64		parent_id;		/* 0: top level */
	int64		manager_id;		/* 0: none */
	char	   *name;
	int64		cur_parent;		/* today's values (the row itself) */
	int64		cur_manager;
	int			nversions;
	SmOrgVersion *versions;		/* by valid_from */
} SmOrgTeam;

typedef struct SmOrgRep
{
	int64		rep_id;			/* first: the key of the binary search */
	int64		team_id;		/* 0: none */
	char	   *name;
	int64		cur_team;
	int			nversions;
	SmOrgVersion *versions;
} SmOrgRep;

typedef struct SmOrg
{
	int			nteams;
	SmOrgTeam  *teams;			/* by team_id */
	int			nreps;
	SmOrgRep   *reps;			/* by rep_id */
	bool		with_history;
} SmOrg;

/* are the history tables there (not in a database still at 0.1.0)? */
extern bool sm_org_history_present(void);

/* is salesmgmt.quota_of_record there (the quotas of periods that are
 * over as they were at their end, src/quota_as_of.sql)? */
extern bool sm_quota_of_record_present(void);

/* today's organisation; with_history also reads the versions (needed by
 * sm_org_tree_at and sm_org_tree_change_days); read_only: with the
 * calling statement's snapshot, else a new one */
extern SmOrg *sm_org_tree_load(bool with_history, bool read_only);

/* today's organisation, or with has_day the one at the end of day
 * (read-only) */
extern SmOrg *sm_org_tree_load_at(bool has_day, DateADT day);

/* set parents, managers and teams to those of day (or today's values
 * when has_day is false) */
extern void sm_org_tree_at(SmOrg *org, bool has_day, DateADT day);

/* the days, ascending, on which some version after a first one begins:
 * the organisation of any day is the one of the latest such day before
 * it (or the first versions) */
extern int	sm_org_tree_change_days(SmOrg *org, DateADT **days);

extern int	sm_org_tree_team(SmOrg *org, int64 team_id);	/* index or -1 */
extern int	sm_org_tree_rep(SmOrg *org, int64 rep_id);	/* index or -1 */

/* the managers above rep index r: nearest first, each once, never the rep
 * itself; at most max, returns the count */
extern int	sm_org_tree_managers(SmOrg *org, int r, int64 *ids, int max);

/* reps in team_id or any team below it, ascending; palloc'd */
extern int	sm_org_tree_subtree_reps(SmOrg *org, int64 team_id, int64 **ids);

/* a timestamp's day in the session time zone */
extern DateADT sm_org_day_of(TimestampTz ts);

#endif							/* SALESMGMT_ORG_HISTORY_H */

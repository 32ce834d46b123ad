/*-------------------------------------------------------------------------
 *
 * org_internal.h
 *	  What org.c and org_parallel.c share of the cached organisation: the
 *	  id sets and a role's view.  Not for other concerns (they use org.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_ORG_INTERNAL_H
#define SALESMGMT_ORG_INTERNAL_H

#include "postgres.h"

#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "org.h"

/* a set of bigint ids: a bitmap when dense enough, a hash table otherwise */
typedef struct IdSet
{
	uint64	   *bits;			/* dense: bit per id in [0, nbits) */
	int64		nbits;
	HTAB	   *hash;			/* sparse: IdEntry keys */
} IdSet;

/* an entry of an id hash table (sets use the key only) */
typedef struct IdEntry
{
	int64		key;
	int64		val;
} IdEntry;

/* a growable array of int64 */
typedef struct IdList
{
	int64	   *ids;
	int			n;
	int			cap;
	MemoryContext cxt;
} IdList;

static inline void
idlist_init(IdList *l, MemoryContext cxt)
{
	l->cxt = cxt;
	l->n = 0;
	l->cap = 64;
	l->ids = MemoryContextAlloc(cxt, sizeof(int64) * l->cap);
}

static inline void
idlist_add(IdList *l, int64 id)
{
	if (l->n == l->cap)
	{
		l->cap *= 2;
		l->ids = repalloc_huge(l->ids, sizeof(int64) * l->cap);
	}
	l->ids[l->n++] = id;
}

/* two bigint columns of a query's rows, side by side */
typedef struct IdPairs
{
	IdList		first;
	IdList		second;
} IdPairs;

static inline void
idpairs_init(IdPairs *p, MemoryContext cxt)
{
	idlist_init(&p->first, cxt);
	idlist_init(&p->second, cxt);
}

/* what a role sees (org.c: role_build, or org_parallel.c in a worker) */
typedef struct RoleView
{
	Oid			role;			/* hash key */
	bool		built;
	uint64		org_gen;
	uint64		role_gen;
	MemoryContext cxt;
	SmAccess	access;
	bool		has_rep;
	int64		rep_id;
	bool		has_team;		/* the rep's own team */
	int64		team_id;
	IdSet	   *reps;			/* visible reps: own and managed */
	IdSet	   *managed_reps;	/* reps of managed trees, never the role's own */
	IdSet	   *teams;			/* own team and managed teams */
	IdSet	   *managed_teams;
	/* accounts, built when first asked */
	uint64		account_gen;
	MemoryContext account_cxt;
	IdSet	   *owned_accounts; /* owned by a visible rep (after a load) */
	IdSet	   *seen_accounts;	/* of deals it sees (loaded for visibility) */
	HTAB	   *account_memo;	/* before it: account_id -> ACCOUNT_* bits */
	int			account_probes;
	/* deals a credit split shares with a visible rep, built when first asked */
	uint64		split_gen;
	MemoryContext split_cxt;
	IdSet	   *shared_deals;
} RoleView;

/* which parts of a view a statement's policies use (and a worker adopted) */
#define SM_VIEW_SETS		0x01	/* reps and teams */
#define SM_VIEW_SPLITS		0x02	/* shared_deals */
#define SM_VIEW_OWNED		0x04	/* owned_accounts */
#define SM_VIEW_SEEN		0x08	/* seen_accounts */

/* org.c */
extern IdSet *sm_org_idset_build(MemoryContext cxt, const int64 *ids, int n);
extern RoleView *sm_org_view_prepare(Oid role, int parts, int *ready);

/* org_parallel.c: fill a parallel worker's view from its leader's */
extern int	sm_org_parallel_adopt(RoleView *v);

#endif							/* SALESMGMT_ORG_INTERNAL_H */

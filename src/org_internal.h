/*-------------------------------------------------------------------------
 *
 * org_internal.h
 *	  What org.c, org_parallel.c and org_deal_owner.c share of the cached
 *	  organisation: the id sets and a role's view.  Not for other concerns
 *	  (they use org.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_ORG_INTERNAL_H
#define SALESMGMT_ORG_INTERNAL_H

#include "postgres.h"

#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "org.h"

/*
 * A set of bigint ids: a bitmap when dense enough; otherwise a sorted array
 * when small (a few compares, where a hash probe hashes and chases an
 * entry), a hash table when large.
 */
typedef struct IdSet
{
	uint64	   *bits;			/* dense: bit per id in [0, nbits) */
	int64		nbits;
	int64	   *ids;			/* small sparse: nids ids, ascending */
	int			nids;
	HTAB	   *hash;			/* large sparse: IdEntry keys */
} IdSet;

/* an entry of an id hash table (sets use the key only) */
typedef struct IdEntry
{
	int64		key;
	int64		val;
} IdEntry;

/* the set holds the id (NULL: the empty set) */
static inline bool
idset_has(const IdSet *s, int64 id)
{
	if (s == NULL)
		return false;
	if (s->bits != NULL)
		return id >= 0 && id < s->nbits && (s->bits[id / 64] & (UINT64CONST(1) << (id % 64))) != 0;
	if (s->hash == NULL)
	{
		int			lo = 0,
					hi = s->nids;

		while (lo < hi)
		{
			int			mid = (lo + hi) / 2;

			if (s->ids[mid] < id)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo < s->nids && s->ids[lo] == id;
	}
	return hash_search(s->hash, &id, HASH_FIND, NULL) != NULL;
}

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
extern RoleView *sm_org_view(Oid role);
extern bool sm_org_view_split(RoleView *v, int64 deal_id);
extern bool sm_org_view_account(RoleView *v, bool changeable, int64 account_id);
extern RoleView *sm_org_view_prepare(Oid role, int parts, int *ready);

/* org_parallel.c: fill a parallel worker's view from its leader's */
extern int	sm_org_parallel_adopt(RoleView *v);

#endif							/* SALESMGMT_ORG_INTERNAL_H */

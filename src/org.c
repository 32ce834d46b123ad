/*-------------------------------------------------------------------------
 *
 * org.c
 *	  The cached organisation and the row-level security predicates.
 *
 * Each backend keeps, in memory under CacheMemoryContext:
 *	  - the team tree and the rep directory (salesmgmt.team, salesmgmt.rep);
 *	  - the owner of each deal, filled lazily by index probes and, once a
 *		statement has needed many, by one scan of salesmgmt.deal;
 *	  - per database role: its access (admin, manager, rep, none), its rep,
 *		the reps and teams it sees and manages, and (when asked) the
 *		deals that credit splits share with its reps and the accounts it
 *		sees.
 *
 * Invalidation.  Row changes send no relcache invalidation by themselves,
 * so statement triggers (salesmgmt._org_invalidate, see
 * src/security_org.sql) call CacheInvalidateRelcacheByRelid at the end of
 * every statement that changes these tables; the message reaches every
 * backend when the transaction commits (and this one at its next command).
 * Role membership and role renames arrive as syscache invalidations of
 * AUTHMEMROLEMEM and AUTHOID.  The callbacks only count generations;
 * structures are rebuilt at their next use, once per statement at most,
 * after taking in the invalidations committed meanwhile.
 *
 * Loads read with the newest snapshot (like catalog lookups), so an
 * invalidation that arrived before a load can never leave the load with
 * older data; in parallel mode, where no new snapshot may be taken, a load
 * is valid for the current transaction only.  Loads run as the owner of
 * the schema: the predicates must see every row, whatever the caller's
 * policies on these tables say.  Nothing is written: a hot standby serves
 * the predicates too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "compat.h"
#include "org_internal.h"
#include "salesmgmt.h"
#include "util.h"

/* ------------------------------------------------------------------------
 * Sets and maps of bigint ids: a bitmap (or a dense array) when the ids
 * are dense enough, a hash table otherwise.
 * ------------------------------------------------------------------------
 */
#define SM_DENSE_LIMIT		((int64) 64 * 1024 * 1024)

typedef struct IdMap
{
	int64	   *vals;			/* dense: value per id in [0, nvals) */
	int64		nvals;
	HTAB	   *hash;
} IdMap;

#define SM_NO_VALUE		PG_INT64_MIN

static HTAB *
id_hash_create(const char *name, long n, MemoryContext cxt)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(IdEntry);
	ctl.hcxt = cxt;
	return hash_create(name, Max(n, 16), &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static bool
ids_dense(const int64 *ids, int n, int64 *max)
{
	int64		hi = -1;

	for (int i = 0; i < n; i++)
	{
		if (ids[i] < 0)
			return false;
		hi = Max(hi, ids[i]);
	}
	*max = hi;
	/* a bit per id costs less than a hash entry (~40 bytes) per member */
	return hi < SM_DENSE_LIMIT && hi < (int64) n * 256 + 65536;
}

/* sparse sets up to this size are sorted arrays (binary search) */
#define SM_SORTED_LIMIT		4096

static int
id_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}

IdSet *
sm_org_idset_build(MemoryContext cxt, const int64 *ids, int n)
{
	IdSet	   *s = MemoryContextAllocZero(cxt, sizeof(IdSet));
	int64		max;

	if (ids_dense(ids, n, &max))
	{
		s->nbits = max + 1;
		s->bits = MemoryContextAllocZero(cxt, sizeof(uint64) * (s->nbits / 64 + 1));
		for (int i = 0; i < n; i++)
			s->bits[ids[i] / 64] |= UINT64CONST(1) << (ids[i] % 64);
	}
	else if (n <= SM_SORTED_LIMIT)
	{
		s->ids = MemoryContextAlloc(cxt, sizeof(int64) * Max(n, 1));
		memcpy(s->ids, ids, sizeof(int64) * n);
		qsort(s->ids, n, sizeof(int64), id_cmp);
		for (int i = 0; i < n; i++)
			if (s->nids == 0 || s->ids[s->nids - 1] != s->ids[i])
				s->ids[s->nids++] = s->ids[i];
	}
	else
	{
		s->hash = id_hash_create("salesmgmt id set", n, cxt);
		for (int i = 0; i < n; i++)
			(void) hash_search(s->hash, &ids[i], HASH_ENTER, NULL);
	}
	return s;
}

/* idset_has: org_internal.h */

static IdMap *
idmap_build(MemoryContext cxt, const int64 *keys, const int64 *vals, int n)
{
	IdMap	   *m = MemoryContextAllocZero(cxt, sizeof(IdMap));
	int64		max;

	if (ids_dense(keys, n, &max) && max < (int64) n * 4 + 65536)
	{
		m->nvals = max + 1;
		m->vals = MemoryContextAllocHuge(cxt, sizeof(int64) * m->nvals);
		for (int64 i = 0; i < m->nvals; i++)
			m->vals[i] = SM_NO_VALUE;
		for (int i = 0; i < n; i++)
			m->vals[keys[i]] = vals[i];
	}
	else
	{
		m->hash = id_hash_create("salesmgmt id map", n, cxt);
		for (int i = 0; i < n; i++)
			((IdEntry *) hash_search(m->hash, &keys[i], HASH_ENTER, NULL))->val = vals[i];
	}
	return m;
}

/* the value of the key, or SM_NO_VALUE; *known: the map covers the key */
static inline int64
idmap_get(const IdMap *m, int64 key, bool *known)
{
	IdEntry    *e;

	if (m->hash == NULL)
	{
		*known = key >= 0 && key < m->nvals;
		return *known ? m->vals[key] : SM_NO_VALUE;
	}
	*known = true;
	e = hash_search(m->hash, &key, HASH_FIND, NULL);
	return e ? e->val : SM_NO_VALUE;
}

/* IdList, IdPairs: org_internal.h */

/* ------------------------------------------------------------------------
 * Generations and invalidation
 * ------------------------------------------------------------------------
 */
enum
{
	GEN_ORG,					/* team, rep */
	GEN_SPLIT,					/* deal_split */
	GEN_DEAL,					/* deal owners (update of owner, delete) */
	GEN_ACCOUNT,				/* accounts seen (account, deal changes) */
	GEN_ROLE,					/* role membership, role names */
	GEN_SCHEME,					/* kpi_scheme (leaderboard visibility) */
	NUM_GENS
};

static uint64 sm_gen[NUM_GENS];
static Oid	sm_rel_team, sm_rel_rep, sm_rel_split, sm_rel_deal, sm_rel_account, sm_rel_scheme;
static bool sm_callbacks_registered = false;
static LocalTransactionId sm_tied_lxid = InvalidLocalTransactionId;
static MemoryContext sm_org_cxt = NULL;

static void
bump_all(void)
{
	for (int i = 0; i < NUM_GENS; i++)
		sm_gen[i]++;
}

static void
org_relcache_cb(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || !OidIsValid(sm_rel_team))
		bump_all();
	else if (relid == sm_rel_team || relid == sm_rel_rep)
		sm_gen[GEN_ORG]++;
	else if (relid == sm_rel_split)
		sm_gen[GEN_SPLIT]++, sm_gen[GEN_ACCOUNT]++;
	else if (relid == sm_rel_deal)
		sm_gen[GEN_DEAL]++, sm_gen[GEN_ACCOUNT]++;
	else if (relid == sm_rel_account)
		sm_gen[GEN_ACCOUNT]++;
	else if (relid == sm_rel_scheme)
		sm_gen[GEN_SCHEME]++;
}

static void
org_syscache_cb(Datum arg, int cacheid, uint32 hashvalue)
{
	sm_gen[GEN_ROLE]++;
}

/*
 * A deal probed in a transaction that then rolls back (to a savepoint or
 * wholly) may have been one it created: forget the probed owners.
 */
static bool sm_probed_in_xact = false;

static void
org_xact_cb(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		if (sm_probed_in_xact)
			sm_gen[GEN_DEAL]++, sm_gen[GEN_ACCOUNT]++;
		sm_probed_in_xact = false;
	}
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
			 event == XACT_EVENT_PREPARE)
		sm_probed_in_xact = false;
}

static void
org_subxact_cb(SubXactEvent event, SubTransactionId my, SubTransactionId parent, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && sm_probed_in_xact)
		sm_gen[GEN_DEAL]++, sm_gen[GEN_ACCOUNT]++;
}

/*
 * Every entry point: register the callbacks, and once per statement take
 * in the invalidations committed since (within a transaction the locks
 * are already held, so no lock acquisition does it for us).
 */
static TimestampTz sm_last_statement = 0;
static LocalTransactionId sm_last_lxid = InvalidLocalTransactionId;

static void
org_begin_statement(void)
{
	if (!sm_callbacks_registered)
	{
		CacheRegisterRelcacheCallback(org_relcache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, org_syscache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, org_syscache_cb, (Datum) 0);
		RegisterXactCallback(org_xact_cb, NULL);
		RegisterSubXactCallback(org_subxact_cb, NULL);
		sm_org_cxt = AllocSetContextCreate(CacheMemoryContext, "salesmgmt organisation",
										   ALLOCSET_DEFAULT_SIZES);
		sm_callbacks_registered = true;
		bump_all();
	}
	if (GetCurrentStatementStartTimestamp() != sm_last_statement || SM_MY_LXID != sm_last_lxid)
	{
		AcceptInvalidationMessages();
		/* what was read with a parallel query's snapshot is its own */
		if (sm_tied_lxid != InvalidLocalTransactionId && sm_tied_lxid != SM_MY_LXID)
		{
			bump_all();
			sm_tied_lxid = InvalidLocalTransactionId;
		}
		sm_last_statement = GetCurrentStatementStartTimestamp();
		sm_last_lxid = SM_MY_LXID;
	}
}

/* the same statement as the last call: nothing to do (every row's case) */
static inline void
org_begin(void)
{
	if (unlikely(!sm_callbacks_registered ||
				 GetCurrentStatementStartTimestamp() != sm_last_statement ||
				 SM_MY_LXID != sm_last_lxid))
		org_begin_statement();
}

/* ------------------------------------------------------------------------
 * Reading the tables: SPI as the schema's owner, newest snapshot
 * ------------------------------------------------------------------------
 */
typedef void (*OrgRowFn) (HeapTuple tup, TupleDesc desc, void *arg);

static int64
col_int64(HeapTuple tup, TupleDesc desc, int col, bool *isnull)
{
	Datum		d = SPI_getbinval(tup, desc, col, isnull);

	return *isnull ? 0 : DatumGetInt64(d);
}

/* an OrgRowFn: columns 1 and 2 of the row into an IdPairs */
static void
pair_row(HeapTuple tup, TupleDesc desc, void *arg)
{
	IdPairs    *p = arg;
	bool		isnull;

	idlist_add(&p->first, col_int64(tup, desc, 1, &isnull));
	idlist_add(&p->second, col_int64(tup, desc, 2, &isnull));
}

typedef struct OrgSpi
{
	Oid			save_user;
	int			save_sec;
	bool		snapshot;
} OrgSpi;

static void
org_spi_begin(OrgSpi *s)
{
	HeapTuple	tup;
	Oid			owner;

	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(sm_schema_oid()));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for schema %s", SALESMGMT_SCHEMA);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&s->save_user, &s->save_sec);
	SetUserIdAndSecContext(owner, s->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	s->snapshot = !IsInParallelMode();
	if (s->snapshot)
		PushActiveSnapshot(GetLatestSnapshot());
	else
		sm_tied_lxid = SM_MY_LXID;
}

static void
org_spi_end(OrgSpi *s)
{
	if (s->snapshot)
		PopActiveSnapshot();
	SetUserIdAndSecContext(s->save_user, s->save_sec);
	SPI_finish();
}

static void
org_query(const char *sql, int nargs, Oid *types, Datum *vals, OrgRowFn fn, void *arg)
{
	OrgSpi		s;
	int			rc;

	org_spi_begin(&s);
	rc = SPI_execute_with_args(sql, nargs, types, vals, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "salesmgmt organisation query failed: %s", SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
		fn(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, arg);
	org_spi_end(&s);
}

/* ------------------------------------------------------------------------
 * The team tree and the reps
 * ------------------------------------------------------------------------
 */
typedef struct OrgTeam
{
	int64		team_id;
	int64		parent_id;
	int64		manager_id;
	bool		has_parent;
	bool		has_manager;
	int			parent;			/* index, -1 for none */
	int			first_child;
	int			next_sibling;
	int			first_rep;		/* reps of this team, a chain over reps */
} OrgTeam;

typedef struct OrgRep
{
	int64		rep_id;
	int64		team_id;
	bool		has_team;
	bool		active;
	char	   *db_role;		/* null when unmapped */
	int			next_in_team;
} OrgRep;

typedef struct Org
{
	MemoryContext cxt;
	uint64		gen;
	OrgTeam    *teams;
	int			nteams;
	int			cap_teams;
	OrgRep	   *reps;
	int			nreps;
	int			cap_reps;
	HTAB	   *team_idx;		/* team_id -> index */
	HTAB	   *rep_idx;		/* rep_id -> index */
} Org;

static Org *sm_org = NULL;

static void
org_team_row(HeapTuple tup, TupleDesc desc, void *arg)
{
	Org		   *o = arg;
	OrgTeam    *t;
	bool		isnull;

	if (o->nteams == o->cap_teams)
	{
		o->cap_teams *= 2;
		o->teams = repalloc_huge(o->teams, sizeof(OrgTeam) * o->cap_teams);
	}
	t = &o->teams[o->nteams++];
	t->team_id = col_int64(tup, desc, 1, &isnull);
	t->parent_id = col_int64(tup, desc, 2, &isnull);
	t->has_parent = !isnull;
	t->manager_id = col_int64(tup, desc, 3, &isnull);
	t->has_manager = !isnull;
	t->parent = t->first_child = t->next_sibling = t->first_rep = -1;
}

static void
org_rep_row(HeapTuple tup, TupleDesc desc, void *arg)
{
	Org		   *o = arg;
	OrgRep	   *r;
	bool		isnull;
	char	   *role;

	if (o->nreps == o->cap_reps)
	{
		o->cap_reps *= 2;
		o->reps = repalloc_huge(o->reps, sizeof(OrgRep) * o->cap_reps);
	}
	r = &o->reps[o->nreps++];
	r->rep_id = col_int64(tup, desc, 1, &isnull);
	r->team_id = col_int64(tup, desc, 2, &isnull);
	r->has_team = !isnull;
	r->active = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
	role = SPI_getvalue(tup, desc, 4);
	r->db_role = role ? MemoryContextStrdup(o->cxt, role) : NULL;
	r->next_in_team = -1;
}

static int
org_index(HTAB *h, int64 id)
{
	IdEntry    *e = hash_search(h, &id, HASH_FIND, NULL);

	return e ? (int) e->val : -1;
}

static Org *
org_get(void)
{
	MemoryContext cxt,
				old;
	Org		   *o;

	if (sm_org != NULL && sm_org->gen == sm_gen[GEN_ORG])
		return sm_org;
	if (sm_org != NULL)
	{
		MemoryContextDelete(sm_org->cxt);
		sm_org = NULL;
	}
	/* the tables' oids: a dropped and recreated extension has new ones */
	sm_rel_team = sm_relation_oid("team");
	sm_rel_rep = sm_relation_oid("rep");
	sm_rel_split = sm_relation_oid("deal_split");
	sm_rel_deal = sm_relation_oid("deal");
	sm_rel_account = sm_relation_oid("account");
	sm_rel_scheme = sm_relation_oid("kpi_scheme");

	cxt = AllocSetContextCreate(sm_org_cxt, "salesmgmt team tree", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	o = palloc0(sizeof(Org));
	o->cxt = cxt;
	o->gen = sm_gen[GEN_ORG];	/* before loading: a change meanwhile reloads */
	o->cap_teams = o->cap_reps = 64;
	o->teams = palloc(sizeof(OrgTeam) * o->cap_teams);
	o->reps = palloc(sizeof(OrgRep) * o->cap_reps);
	MemoryContextSwitchTo(old);

	org_query("SELECT team_id, parent_team_id, manager_rep_id FROM salesmgmt.team",
			  0, NULL, NULL, org_team_row, o);
	org_query("SELECT rep_id, team_id, active, db_role FROM salesmgmt.rep",
			  0, NULL, NULL, org_rep_row, o);

	o->team_idx = id_hash_create("salesmgmt teams", o->nteams, cxt);
	o->rep_idx = id_hash_create("salesmgmt reps", o->nreps, cxt);
	for (int i = 0; i < o->nteams; i++)
		((IdEntry *) hash_search(o->team_idx, &o->teams[i].team_id, HASH_ENTER, NULL))->val = i;
	for (int i = 0; i < o->nteams; i++)
	{
		OrgTeam    *t = &o->teams[i];

		t->parent = t->has_parent ? org_index(o->team_idx, t->parent_id) : -1;
		if (t->parent >= 0)
		{
			t->next_sibling = o->teams[t->parent].first_child;
			o->teams[t->parent].first_child = i;
		}
	}
	for (int i = 0; i < o->nreps; i++)
	{
		OrgRep	   *r = &o->reps[i];
		int			team = r->has_team ? org_index(o->team_idx, r->team_id) : -1;

		((IdEntry *) hash_search(o->rep_idx, &r->rep_id, HASH_ENTER, NULL))->val = i;
		if (team >= 0)
		{
			r->next_in_team = o->teams[team].first_rep;
			o->teams[team].first_rep = i;
		}
	}
	sm_org = o;
	return o;
}

/*
 * Mark the team and every team below it in "seen" (indexes), adding the
 * teams to "teams" and their reps to "reps" (either may be NULL).
 * Iterative, and a team is visited once, so a cycle cannot loop.
 */
static void
org_walk_subtree(Org *o, int root, bool *seen, IdList *teams, IdList *reps)
{
	int		   *stack;
	int			depth = 0;

	if (root < 0 || seen[root])
		return;
	stack = palloc(sizeof(int) * (o->nteams + 1));
	stack[depth++] = root;
	seen[root] = true;
	while (depth > 0)
	{
		int			t = stack[--depth];

		if (teams)
			idlist_add(teams, o->teams[t].team_id);
		if (reps)
			for (int r = o->teams[t].first_rep; r >= 0; r = o->reps[r].next_in_team)
				idlist_add(reps, o->reps[r].rep_id);
		for (int c = o->teams[t].first_child; c >= 0; c = o->teams[c].next_sibling)
			if (!seen[c])
			{
				seen[c] = true;
				stack[depth++] = c;
			}
	}
	pfree(stack);
}

/* ------------------------------------------------------------------------
 * What a role sees
 * ------------------------------------------------------------------------
 */
/* RoleView: org_internal.h */

static HTAB *sm_roles = NULL;
static RoleView *sm_last_view = NULL;

/* a view about to be (re)built: empty, of the current generations */
static void
role_view_reset(RoleView *v)
{
	if (v->cxt)
		MemoryContextReset(v->cxt);
	else
		v->cxt = AllocSetContextCreate(sm_org_cxt, "salesmgmt role view", ALLOCSET_SMALL_SIZES);
	v->org_gen = sm_gen[GEN_ORG];
	v->role_gen = sm_gen[GEN_ROLE];
	v->account_gen = 0;
	v->owned_accounts = v->seen_accounts = NULL;
	v->account_memo = NULL;
	if (v->account_cxt)
		MemoryContextReset(v->account_cxt);
	v->shared_deals = NULL;
}

static void
role_build(RoleView *v, Org *o)
{
	MemoryContext old;
	char	   *rolname = GetUserNameFromId(v->role, true);
	Oid			admin = get_role_oid("salesmgmt_admin", true);
	Oid			manager = get_role_oid("salesmgmt_manager", true);
	IdList		reps,
				managed,
				teams,
				managed_teams;
	int			me = -1;

	role_view_reset(v);
	v->org_gen = o->gen;
	v->has_rep = false;
	v->rep_id = 0;
	v->has_team = false;
	v->team_id = 0;

	for (int i = 0; rolname && i < o->nreps; i++)
		if (o->reps[i].active && o->reps[i].db_role && strcmp(o->reps[i].db_role, rolname) == 0)
		{
			me = i;
			v->has_rep = true;
			v->rep_id = o->reps[i].rep_id;
			break;
		}

	if (OidIsValid(admin) && has_privs_of_role(v->role, admin))
		v->access = SM_ACCESS_ADMIN;
	else if (!v->has_rep)
		v->access = SM_ACCESS_NONE;
	else if (OidIsValid(manager) && has_privs_of_role(v->role, manager))
		v->access = SM_ACCESS_MANAGER;
	else
		v->access = SM_ACCESS_REP;

	old = MemoryContextSwitchTo(v->cxt);
	idlist_init(&reps, v->cxt);
	idlist_init(&managed, v->cxt);
	idlist_init(&teams, v->cxt);
	idlist_init(&managed_teams, v->cxt);
	if (me >= 0)
	{
		idlist_add(&reps, v->rep_id);
		v->has_team = o->reps[me].has_team;
		v->team_id = o->reps[me].team_id;
		if (v->has_team)
			idlist_add(&teams, v->team_id);
	}
	if (me >= 0 && v->access == SM_ACCESS_MANAGER)
	{
		bool	   *seen = palloc0(sizeof(bool) * (o->nteams + 1));

		for (int t = 0; t < o->nteams; t++)
			if (o->teams[t].has_manager && o->teams[t].manager_id == v->rep_id)
				org_walk_subtree(o, t, seen, &managed_teams, &managed);
		pfree(seen);
		for (int i = 0; i < managed.n; i++)
			if (managed.ids[i] != v->rep_id)
				idlist_add(&reps, managed.ids[i]);
		for (int i = 0; i < managed_teams.n; i++)
			idlist_add(&teams, managed_teams.ids[i]);
	}
	/* a manager's own row is never "managed": compacted out */
	{
		int			k = 0;

		for (int i = 0; i < managed.n; i++)
			if (managed.ids[i] != v->rep_id)
				managed.ids[k++] = managed.ids[i];
		managed.n = k;
	}
	v->reps = sm_org_idset_build(v->cxt, reps.ids, reps.n);
	v->managed_reps = sm_org_idset_build(v->cxt, managed.ids, managed.n);
	v->teams = sm_org_idset_build(v->cxt, teams.ids, teams.n);
	v->managed_teams = sm_org_idset_build(v->cxt, managed_teams.ids, managed_teams.n);
	MemoryContextSwitchTo(old);
	v->built = true;
}

static bool role_adopt(RoleView *v);

/* not inlined into sm_org_view: its every-row case would pay this frame */
static pg_noinline RoleView *
role_get(Oid role)
{
	RoleView   *v;
	bool		found;
	Org		   *o;

	org_begin();
	/* the same role as the last row: no hash lookup */
	if (sm_last_view != NULL && sm_last_view->role == role && sm_last_view->built &&
		sm_last_view->org_gen == sm_gen[GEN_ORG] && sm_last_view->role_gen == sm_gen[GEN_ROLE])
		return sm_last_view;
	if (sm_roles == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RoleView);
		ctl.hcxt = sm_org_cxt;
		sm_roles = hash_create("salesmgmt roles", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	v = hash_search(sm_roles, &role, HASH_ENTER, &found);
	if (!found)
	{
		memset(((char *) v) + sizeof(Oid), 0, sizeof(RoleView) - sizeof(Oid));
	}
	if (!(v->built && v->org_gen == sm_gen[GEN_ORG] && v->role_gen == sm_gen[GEN_ROLE]))
	{
		v->built = false;
		if (!role_adopt(v))
		{
			o = org_get();
			role_build(v, o);
		}
	}
	sm_last_view = v;			/* entries never move: the table only grows */
	return v;
}

/*
 * The role's view, for a predicate that asks several questions of one row
 * (one look-up instead of one per question).  Valid until the next call of
 * a function here: a load may take in an invalidation.
 */
RoleView *
sm_org_view(Oid role)
{
	RoleView   *v = sm_last_view;

	/* role_get's every-row case, in a function small enough to be cheap */
	if (likely(v != NULL && v->role == role && sm_callbacks_registered &&
			   GetCurrentStatementStartTimestamp() == sm_last_statement &&
			   SM_MY_LXID == sm_last_lxid && v->built &&
			   v->org_gen == sm_gen[GEN_ORG] && v->role_gen == sm_gen[GEN_ROLE]))
		return v;
	return role_get(role);
}

/* ------------------------------------------------------------------------
 * Deal owners: deal_id -> owner_rep_id
 * ------------------------------------------------------------------------
 */
#define SM_DEAL_PROBES_BEFORE_SCAN	2000

typedef struct Deals
{
	MemoryContext cxt;
	uint64		gen;
	IdMap	   *all;			/* after a full scan */
	HTAB	   *probed;			/* owners found by probes (deal_id -> owner) */
	int			nprobes;
} Deals;

static Deals *sm_deals = NULL;

static Deals *
deals_get(void)
{
	MemoryContext cxt;

	if (sm_deals != NULL && sm_deals->gen == sm_gen[GEN_DEAL])
		return sm_deals;
	if (sm_deals != NULL)
	{
		MemoryContextDelete(sm_deals->cxt);
		sm_deals = NULL;
	}
	cxt = AllocSetContextCreate(sm_org_cxt, "salesmgmt deal owners", ALLOCSET_DEFAULT_SIZES);
	sm_deals = MemoryContextAllocZero(cxt, sizeof(Deals));
	sm_deals->cxt = cxt;
	sm_deals->gen = sm_gen[GEN_DEAL];
	sm_deals->probed = id_hash_create("salesmgmt probed deals", 256, cxt);
	return sm_deals;
}

/*
 * A look-up by one bigint key with a saved plan (as the schema's owner,
 * newest snapshot), each row handed to fn.  Remembered: a rollback forgets
 * what was probed in the transaction (it may have been its own rows).
 */
static void
org_probe(SPIPlanPtr *plan, const char *sql, int64 key, OrgRowFn fn, void *arg)
{
	OrgSpi		s;
	Datum		value = Int64GetDatum(key);
	int			rc;

	org_spi_begin(&s);
	if (*plan == NULL)
	{
		Oid			type = INT8OID;
		SPIPlanPtr	p = SPI_prepare(sql, 1, &type);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*plan = p;
	}
	rc = SPI_execute_plan(*plan, &value, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "salesmgmt organisation look-up failed: %s", SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
		fn(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, arg);
	org_spi_end(&s);
	sm_probed_in_xact = true;
}

static void
first_int64_row(HeapTuple tup, TupleDesc desc, void *arg)
{
	bool		isnull;
	int64		v = col_int64(tup, desc, 1, &isnull);

	*(int64 *) arg = isnull ? SM_NO_VALUE : v;
}

/* one deal's owner by its primary key, or SM_NO_VALUE */
static int64
deal_probe(int64 deal_id)
{
	static SPIPlanPtr plan = NULL;
	int64		owner = SM_NO_VALUE;

	org_probe(&plan, "SELECT owner_rep_id FROM salesmgmt.deal WHERE deal_id OPERATOR(pg_catalog.=) $1",
			  deal_id, first_int64_row, &owner);
	return owner;
}

/*
 * The owner of a deal, or SM_NO_VALUE when it does not exist.  Deals
 * created after the cache was filled are probed (and remembered when they
 * exist: a later change of their owner or their deletion invalidates).
 */
static int64
deal_owner(int64 deal_id)
{
	Deals	   *d = deals_get();
	IdEntry    *e;
	int64		owner;
	bool		known;

	if (d->all != NULL)
	{
		owner = idmap_get(d->all, deal_id, &known);
		if (owner != SM_NO_VALUE)
			return owner;
	}
	e = hash_search(d->probed, &deal_id, HASH_FIND, NULL);
	if (e != NULL)
		return e->val;
	if (d->all == NULL && ++d->nprobes > SM_DEAL_PROBES_BEFORE_SCAN)
	{
		/* a statement needs many: one scan beats many probes */
		IdPairs		scan;

		idpairs_init(&scan, d->cxt);
		org_query("SELECT deal_id, owner_rep_id FROM salesmgmt.deal", 0, NULL, NULL, pair_row, &scan);
		d->all = idmap_build(d->cxt, scan.first.ids, scan.second.ids, scan.first.n);
		pfree(scan.first.ids);
		pfree(scan.second.ids);
		owner = idmap_get(d->all, deal_id, &known);
		if (owner != SM_NO_VALUE)
			return owner;
	}
	owner = deal_probe(deal_id);
	/* a deal that does not exist (yet) is not remembered */
	if (owner != SM_NO_VALUE && d->gen == sm_gen[GEN_DEAL])
		((IdEntry *) hash_search(d->probed, &deal_id, HASH_ENTER, NULL))->val = owner;
	return owner;
}

/* ------------------------------------------------------------------------
 * The predicates
 * ------------------------------------------------------------------------
 */
SmAccess
sm_org_access(Oid role, int64 *rep_id, bool *has_rep)
{
	RoleView   *v = sm_org_view(role);

	*rep_id = v->rep_id;
	*has_rep = v->has_rep;
	return v->access;
}

/* admins: every id; others: the ids of one of the role's sets */
static bool
role_set_has(Oid role, size_t set_offset, int64 id)
{
	RoleView   *v = sm_org_view(role);

	return v->access == SM_ACCESS_ADMIN || idset_has(*(IdSet **) ((char *) v + set_offset), id);
}

bool
sm_org_rep_visible(Oid role, int64 rep_id)
{
	return role_set_has(role, offsetof(RoleView, reps), rep_id);
}

bool
sm_org_rep_managed(Oid role, int64 rep_id)
{
	return role_set_has(role, offsetof(RoleView, managed_reps), rep_id);
}

bool
sm_org_team_visible(Oid role, int64 team_id)
{
	return role_set_has(role, offsetof(RoleView, teams), team_id);
}

bool
sm_org_team_managed(Oid role, int64 team_id)
{
	return role_set_has(role, offsetof(RoleView, managed_teams), team_id);
}

/* the rep is visible to the role or in the role's own team */
bool
sm_org_rep_teammate(Oid role, int64 rep_id)
{
	RoleView   *v = sm_org_view(role);
	Org		   *o;
	int			r;

	if (v->access == SM_ACCESS_ADMIN || idset_has(v->reps, rep_id))
		return true;
	if (v->access == SM_ACCESS_NONE || !v->has_team)
		return false;
	o = org_get();
	r = org_index(o->rep_idx, rep_id);
	return r >= 0 && o->reps[r].has_team && o->reps[r].team_id == v->team_id;
}

/* leaderboard visibility of the schemes: scheme_id -> LB_* */
#define LB_PRIVATE	0
#define LB_TEAM		1
#define LB_SCHEME	2

static HTAB *sm_schemes = NULL;
static uint64 sm_schemes_gen = 0;

static void
scheme_row(HeapTuple tup, TupleDesc desc, void *arg)
{
	char	   *v = SPI_getvalue(tup, desc, 1);

	*(int64 *) arg = v == NULL ? LB_PRIVATE
		: strcmp(v, "scheme") == 0 ? LB_SCHEME
		: strcmp(v, "team") == 0 ? LB_TEAM : LB_PRIVATE;
}

static int
scheme_visibility(int64 scheme_id)
{
	static SPIPlanPtr plan = NULL;
	IdEntry    *e;
	int64		vis = LB_PRIVATE;

	if (sm_schemes == NULL || sm_schemes_gen != sm_gen[GEN_SCHEME])
	{
		if (sm_schemes)
			hash_destroy(sm_schemes);
		sm_schemes = id_hash_create("salesmgmt schemes", 16, sm_org_cxt);
		sm_schemes_gen = sm_gen[GEN_SCHEME];
	}
	e = hash_search(sm_schemes, &scheme_id, HASH_FIND, NULL);
	if (e != NULL)
		return (int) e->val;
	org_probe(&plan, "SELECT leaderboard_visibility FROM salesmgmt.kpi_scheme "
			  "WHERE scheme_id OPERATOR(pg_catalog.=) $1", scheme_id, scheme_row, &vis);
	if (sm_schemes_gen == sm_gen[GEN_SCHEME])
		((IdEntry *) hash_search(sm_schemes, &scheme_id, HASH_ENTER, NULL))->val = vis;
	return (int) vis;
}

/* the role sees the rep's scorecard of the scheme on its leaderboard */
bool
sm_org_leaderboard_visible(Oid role, int64 scheme_id, int64 rep_id)
{
	RoleView   *v = sm_org_view(role);

	if (v->access == SM_ACCESS_ADMIN || idset_has(v->reps, rep_id))
		return true;
	if (v->access == SM_ACCESS_NONE)
		return false;
	switch (scheme_visibility(scheme_id))
	{
		case LB_SCHEME:
			return true;
		case LB_TEAM:
			return sm_org_rep_teammate(role, rep_id);
		default:
			return false;
	}
}

/*
 * move_deal and other functions that change a deal: a deal the caller sees
 * but may not change (shared by a split) is refused with 42501 naming it,
 * rather than silently left as it is.  Nothing to check where row-level
 * security does not apply (superusers, the owner, BYPASSRLS roles).
 */
void
sm_org_require_deal_changeable(int64 deal_id)
{
	Oid			role = GetUserId();

	if (check_enable_rls(sm_relation_oid("deal"), InvalidOid, true) != RLS_ENABLED)
		return;
	if (sm_org_deal_visible(role, deal_id) && !sm_org_deal_changeable(role, deal_id))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("deal " INT64_FORMAT " is visible to role \"%s\" but may not be changed by it",
						deal_id, GetUserNameFromId(role, false)),
				 errdetail("A credit split shares the deal with you; only the owner's side (the owner and their managers) changes it."),
				 errhint("Ask the deal's owner or their manager to make the change.")));
}

/* an OrgRowFn: column 1 of the row into an IdList */
static void
first_col_row(HeapTuple tup, TupleDesc desc, void *arg)
{
	bool		isnull;

	idlist_add((IdList *) arg, col_int64(tup, desc, 1, &isnull));
}

/*
 * A visible rep holds a credit share of the deal: one probe of the role's
 * set of shared deals (a bitmap as a rule), read once per change of the
 * splits or of the role's reps: only the splits of the role's reps (a
 * parallel worker, which starts with nothing cached, reads no more).
 */
bool
sm_org_view_split(RoleView *v, int64 deal_id)
{
	if (v->shared_deals == NULL || v->split_gen != sm_gen[GEN_SPLIT])
	{
		uint64		gen = sm_gen[GEN_SPLIT];	/* a change while reading reloads */
		Org		   *o = org_get();
		MemoryContext old;
		IdList		deals;
		Datum	   *reps;
		int			n = 0;
		Oid			type = INT8ARRAYOID;
		Datum		arg;

		if (v->split_cxt)
			MemoryContextReset(v->split_cxt);
		else
			v->split_cxt = AllocSetContextCreate(sm_org_cxt, "salesmgmt role splits",
												 ALLOCSET_SMALL_SIZES);
		old = MemoryContextSwitchTo(v->split_cxt);
		reps = palloc(sizeof(Datum) * (o->nreps + 1));
		for (int i = 0; i < o->nreps; i++)
			if (idset_has(v->reps, o->reps[i].rep_id))
				reps[n++] = Int64GetDatum(o->reps[i].rep_id);
		arg = PointerGetDatum(construct_array(reps, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
											  TYPALIGN_DOUBLE));
		idlist_init(&deals, v->split_cxt);
		MemoryContextSwitchTo(old);
		org_query("SELECT deal_id FROM salesmgmt.deal_split WHERE rep_id OPERATOR(pg_catalog.=) ANY ($1)",
				  1, &type, &arg, first_col_row, &deals);
		v->shared_deals = sm_org_idset_build(v->split_cxt, deals.ids, deals.n);
		v->split_gen = gen;
	}
	return idset_has(v->shared_deals, deal_id);
}

bool
sm_org_deal_row_visible(Oid role, int64 deal_id, int64 owner_rep_id)
{
	RoleView   *v = sm_org_view(role);

	if (v->access == SM_ACCESS_ADMIN || idset_has(v->reps, owner_rep_id))
		return true;
	return v->access != SM_ACCESS_NONE && sm_org_view_split(v, deal_id);
}

bool
sm_org_deal_visible(Oid role, int64 deal_id)
{
	int64		owner = deal_owner(deal_id);

	if (owner == SM_NO_VALUE)
		return false;
	return sm_org_deal_row_visible(role, deal_id, owner);
}

bool
sm_org_deal_changeable(Oid role, int64 deal_id)
{
	RoleView   *v = sm_org_view(role);
	int64		owner = deal_owner(deal_id);

	if (owner == SM_NO_VALUE)
		return false;
	return v->access == SM_ACCESS_ADMIN || idset_has(v->reps, owner);
}

/* accounts: owned by a visible rep, or the account of a deal it sees */
typedef struct AccountLoad
{
	RoleView   *view;
	IdList		owned;
	IdList		seen;
} AccountLoad;

static void
account_owned_row(HeapTuple tup, TupleDesc desc, void *arg)
{
	AccountLoad *a = arg;
	bool		isnull;
	int64		account = col_int64(tup, desc, 1, &isnull);
	int64		owner = col_int64(tup, desc, 2, &isnull);

	if (!isnull && idset_has(a->view->reps, owner))
		idlist_add(&a->owned, account);
}

static void
account_deal_row(HeapTuple tup, TupleDesc desc, void *arg)
{
	AccountLoad *a = arg;
	bool		isnull;
	int64		account = col_int64(tup, desc, 1, &isnull);
	int64		rep = col_int64(tup, desc, 2, &isnull);

	if (!isnull && idset_has(a->view->reps, rep))
		idlist_add(&a->seen, account);
}

/* a new generation of the role's accounts: start from nothing */
static void
role_accounts_reset(RoleView *v)
{
	if (v->account_cxt)
		MemoryContextReset(v->account_cxt);
	else
		v->account_cxt = AllocSetContextCreate(sm_org_cxt, "salesmgmt role accounts",
											   ALLOCSET_DEFAULT_SIZES);
	v->account_gen = sm_gen[GEN_ACCOUNT];
	v->owned_accounts = v->seen_accounts = NULL;
	v->account_memo = id_hash_create("salesmgmt account memo", 64, v->account_cxt);
	v->account_probes = 0;
}

/*
 * Every account of the role at once, for a statement that asks about many:
 * the owned ones (one scan of account), and only when visibility is asked,
 * those seen through deals (scans of deal and deal_split).
 */
static void
role_accounts_load(RoleView *v, bool seen)
{
	AccountLoad a;
	MemoryContext old;

	a.view = v;
	old = MemoryContextSwitchTo(v->account_cxt);
	idlist_init(&a.owned, v->account_cxt);
	idlist_init(&a.seen, v->account_cxt);
	/* owners and deals are filtered here: no operator of the caller's */
	if (v->owned_accounts == NULL)
	{
		org_query("SELECT account_id, owner_rep_id FROM salesmgmt.account",
				  0, NULL, NULL, account_owned_row, &a);
		v->owned_accounts = sm_org_idset_build(v->account_cxt, a.owned.ids, a.owned.n);
	}
	if (seen && v->seen_accounts == NULL)
	{
		org_query("SELECT account_id, owner_rep_id FROM salesmgmt.deal",
				  0, NULL, NULL, account_deal_row, &a);
		org_query("SELECT d.account_id, s.rep_id FROM salesmgmt.deal_split s "
				  "JOIN salesmgmt.deal d ON d.deal_id OPERATOR(pg_catalog.=) s.deal_id",
				  0, NULL, NULL, account_deal_row, &a);
		v->seen_accounts = sm_org_idset_build(v->account_cxt, a.seen.ids, a.seen.n);
	}
	MemoryContextSwitchTo(old);
}

#define ACCOUNT_VISIBLE		1
#define ACCOUNT_CHANGEABLE	2
#define ACCOUNT_KNOWN		4	/* ACCOUNT_VISIBLE is known (deals probed) */
#define SM_ACCOUNT_PROBES_BEFORE_LOAD	2000

static void
account_deal_probe_row(HeapTuple tup, TupleDesc desc, void *arg)
{
	RoleView   *v = ((void **) arg)[0];
	int		   *bits = ((void **) arg)[1];
	bool		isnull;
	int64		deal = col_int64(tup, desc, 1, &isnull);
	int64		owner = col_int64(tup, desc, 2, &isnull);

	if (idset_has(v->reps, owner) || sm_org_view_split(v, deal))
		*bits |= ACCOUNT_VISIBLE;
}

/* one account: its owner, then (if not visible, and asked) the deals on it */
static int
account_probe(RoleView *v, int64 account_id, bool visible)
{
	static SPIPlanPtr owner_plan = NULL;
	static SPIPlanPtr deals_plan = NULL;
	int64		owner = SM_NO_VALUE;
	int			bits = 0;
	void	   *args[2] = {v, &bits};

	org_probe(&owner_plan,
			  "SELECT owner_rep_id FROM salesmgmt.account WHERE account_id OPERATOR(pg_catalog.=) $1",
			  account_id, first_int64_row, &owner);
	if (owner != SM_NO_VALUE && idset_has(v->reps, owner))
		return ACCOUNT_VISIBLE | ACCOUNT_CHANGEABLE | ACCOUNT_KNOWN;
	if (!visible)
		return 0;
	org_probe(&deals_plan,
			  "SELECT deal_id, owner_rep_id FROM salesmgmt.deal WHERE account_id OPERATOR(pg_catalog.=) $1",
			  account_id, account_deal_probe_row, args);
	return bits | ACCOUNT_KNOWN;
}

/*
 * Admins: every account; reps and managers: owned by a visible rep
 * (changeable), or the account of a deal they see (visible).  A few
 * accounts are looked up one by one (an insert's check); a statement that
 * asks about many loads them all once.
 */
bool
sm_org_view_account(RoleView *v, bool changeable, int64 account_id)
{
	IdEntry    *e;
	bool		found;
	int			bits;

	if (v->access == SM_ACCESS_ADMIN)
		return true;
	if (v->access == SM_ACCESS_NONE)
		return false;
	if (v->account_memo == NULL || v->account_gen != sm_gen[GEN_ACCOUNT])
		role_accounts_reset(v);
	/* a parallel worker starts cold in every statement: load at once */
	if ((v->account_probes >= SM_ACCOUNT_PROBES_BEFORE_LOAD || IsParallelWorker()) &&
		(v->owned_accounts == NULL || (!changeable && v->seen_accounts == NULL)))
		role_accounts_load(v, !changeable);
	if (changeable && v->owned_accounts != NULL)
		return idset_has(v->owned_accounts, account_id);
	if (v->seen_accounts != NULL)	/* seen: owned, or through a deal */
		return idset_has(v->owned_accounts, account_id) || idset_has(v->seen_accounts, account_id);
	e = hash_search(v->account_memo, &account_id, HASH_FIND, &found);
	/* changeable needs the owner only: the deals on it are probed if asked */
	if (e == NULL || (!changeable && !(e->val & ACCOUNT_KNOWN)))
	{
		bits = account_probe(v, account_id, !changeable);
		v->account_probes++;
		/* a probe may take in an invalidation: then this answer is not kept */
		if (v->account_gen == sm_gen[GEN_ACCOUNT] && v->account_memo != NULL)
			((IdEntry *) hash_search(v->account_memo, &account_id, HASH_ENTER, NULL))->val = bits;
	}
	else
		bits = (int) e->val;
	return (bits & (changeable ? ACCOUNT_CHANGEABLE : ACCOUNT_VISIBLE)) != 0;
}

bool
sm_org_account_visible(Oid role, int64 account_id)
{
	return sm_org_view_account(sm_org_view(role), false, account_id);
}

bool
sm_org_account_changeable(Oid role, int64 account_id)
{
	return sm_org_view_account(sm_org_view(role), true, account_id);
}

/* ------------------------------------------------------------------------
 * Parallel query: the leader's view goes to its workers (org_parallel.c)
 * ------------------------------------------------------------------------
 */
/*
 * The leader, before a parallel plan runs: the role's view with the parts
 * the plan's policies use built now (they stay cached for the next
 * statements).  *ready: the SM_VIEW_* parts that are current.
 */
RoleView *
sm_org_view_prepare(Oid role, int parts, int *ready)
{
	RoleView   *v = sm_org_view(role);

	*ready = 0;
	if (v->access != SM_ACCESS_MANAGER && v->access != SM_ACCESS_REP)
		return v;
	if (parts & SM_VIEW_SPLITS)
		(void) sm_org_view_split(v, -1);
	if (parts & (SM_VIEW_OWNED | SM_VIEW_SEEN))
	{
		if (v->account_memo == NULL || v->account_gen != sm_gen[GEN_ACCOUNT])
			role_accounts_reset(v);
		role_accounts_load(v, (parts & SM_VIEW_SEEN) != 0);
	}
	/* a load may have taken in an invalidation: only what is still current */
	if (!(v->built && v->org_gen == sm_gen[GEN_ORG] && v->role_gen == sm_gen[GEN_ROLE]))
		return v;
	*ready = SM_VIEW_SETS;
	if (v->shared_deals != NULL && v->split_gen == sm_gen[GEN_SPLIT])
		*ready |= SM_VIEW_SPLITS;
	if (v->account_memo != NULL && v->account_gen == sm_gen[GEN_ACCOUNT])
		*ready |= (v->owned_accounts ? SM_VIEW_OWNED : 0) | (v->seen_accounts ? SM_VIEW_SEEN : 0);
	return v;
}

/*
 * A parallel worker starts every statement with nothing cached: it takes
 * the view its leader published for the statement, when there is one,
 * instead of reading team, rep, deal_split, account and deal again.
 */
static bool
role_adopt(RoleView *v)
{
	int			parts;

	if (!IsParallelWorker())
		return false;
	role_view_reset(v);
	role_accounts_reset(v);
	if (v->split_cxt)
		MemoryContextReset(v->split_cxt);
	else
		v->split_cxt = AllocSetContextCreate(sm_org_cxt, "salesmgmt role splits",
											 ALLOCSET_SMALL_SIZES);
	parts = sm_org_parallel_adopt(v);
	if (!(parts & SM_VIEW_SETS))
	{
		role_view_reset(v);
		return false;
	}
	if (!(parts & SM_VIEW_SPLITS))
		v->shared_deals = NULL;
	v->split_gen = sm_gen[GEN_SPLIT];
	v->built = true;
	return true;
}

/* ------------------------------------------------------------------------
 * The organisation for other concerns
 * ------------------------------------------------------------------------
 */
static int
idlist_out(IdList *l, int64 **ids)
{
	*ids = l->ids;
	return l->n;
}

int
sm_org_subtree_reps(int64 team_id, int64 **ids)
{
	Org		   *o;
	IdList		reps;
	bool	   *seen;

	org_begin();
	o = org_get();
	idlist_init(&reps, CurrentMemoryContext);
	seen = palloc0(sizeof(bool) * (o->nteams + 1));
	org_walk_subtree(o, org_index(o->team_idx, team_id), seen, NULL, &reps);
	pfree(seen);
	return idlist_out(&reps, ids);
}

int
sm_org_manager_chain(int64 rep_id, int64 **ids)
{
	Org		   *o;
	IdList		chain;
	int			r,
				t,
				steps = 0;

	org_begin();
	o = org_get();
	idlist_init(&chain, CurrentMemoryContext);
	r = org_index(o->rep_idx, rep_id);
	t = (r >= 0 && o->reps[r].has_team) ? org_index(o->team_idx, o->reps[r].team_id) : -1;
	/* a tree has at most nteams levels: a cycle stops there */
	for (; t >= 0 && steps <= o->nteams; t = o->teams[t].parent, steps++)
		if (o->teams[t].has_manager && o->teams[t].manager_id != rep_id)
			idlist_add(&chain, o->teams[t].manager_id);
	return idlist_out(&chain, ids);
}

int
sm_org_visible_reps(Oid role, int64 **ids)
{
	RoleView   *v = sm_org_view(role);
	Org		   *o = org_get();
	IdList		reps;

	idlist_init(&reps, CurrentMemoryContext);
	for (int i = 0; i < o->nreps; i++)
		if (v->access == SM_ACCESS_ADMIN || idset_has(v->reps, o->reps[i].rep_id))
			idlist_add(&reps, o->reps[i].rep_id);
	return idlist_out(&reps, ids);
}

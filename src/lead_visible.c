/*-------------------------------------------------------------------------
 *
 * lead_visible.c
 *	  salesmgmt.lead_visible(owner_rep_id, pool_id): the per-row predicate of
 *	  the lead policies, in C like deal_visible (src/org.c).
 *
 * A lead with an owner is visible when its owner is (the cached
 * organisation of org.c answers).  A lead waiting in a pool is visible to
 * a role when a rep the role sees may claim from the pool: an active rep of
 * one of the pool's teams or of a team below one.  The pools' teams and
 * the reps who may claim are read once (as the schema's owner) and kept
 * per backend; the answer for a role and a pool is kept too, so a scan of
 * a million pool leads costs a hash lookup per row instead of the
 * PL/pgSQL predicate's query.  Everything is dropped when lead_pool_team,
 * team or rep change (relcache invalidations: the statement triggers of
 * security_org.sql and lead.sql) or role membership changes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "catalog/pg_namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/inval.h"
#include "utils/array.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "org.h"
#include "salesmgmt.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_lead_visible);

/* a pool and the reps who may claim from it (sorted) */
typedef struct LvPool
{
	int64		pool_id;
	int			nreps;
	int64	   *reps;
} LvPool;

/* the answer for a role and a pool */
typedef struct LvKey
{
	Oid			role;
	int64		pool_id;
} LvKey;

typedef struct LvAnswer
{
	LvKey		key;
	bool		visible;
} LvAnswer;

static MemoryContext lv_cxt = NULL;
static HTAB *lv_pools = NULL;	/* pool_id -> LvPool; NULL: not loaded */
static HTAB *lv_answers = NULL;
static bool lv_registered = false;
static bool lv_stale = true;	/* set by the callbacks, acted on at a call's start */
static Oid	lv_rel_pool_team = InvalidOid,
			lv_rel_team = InvalidOid,
			lv_rel_rep = InvalidOid;

/*
 * The callbacks only mark the cache stale: they may run while it is being
 * read or filled (invalidations are taken in when a lock is acquired, in
 * the middle of a query), so it is freed at the start of the next call.
 */
static void
lv_relcache_cb(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == lv_rel_pool_team || relid == lv_rel_team ||
		relid == lv_rel_rep)
		lv_stale = true;
}

static void
lv_syscache_cb(Datum arg, int cacheid, uint32 hashvalue)
{
	lv_stale = true;
}

static int
lv_cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Loads every pool's claimers: the active reps of the pool's teams and of
 * the teams below them, read as the schema's owner with the latest
 * snapshot (what the organisation cache of org.c also sees).
 */
static void
lv_load(void)
{
	HASHCTL		ctl;
	HeapTuple	tup;
	Oid			owner;
	Oid			save_user;
	int			save_sec;
	bool		snapshot;
	int			rc;
	MemoryContext old;

	lv_rel_pool_team = sm_relation_oid("lead_pool_team");
	lv_rel_team = sm_relation_oid("team");
	lv_rel_rep = sm_relation_oid("rep");

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(LvPool);
	ctl.hcxt = lv_cxt;
	lv_pools = hash_create("salesmgmt lead pools", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(LvKey);
	ctl.entrysize = sizeof(LvAnswer);
	ctl.hcxt = lv_cxt;
	lv_answers = hash_create("salesmgmt lead pool answers", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(sm_schema_oid()));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for schema %s", SALESMGMT_SCHEMA);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	snapshot = !IsInParallelMode();
	if (snapshot)
		PushActiveSnapshot(GetLatestSnapshot());
	rc = SPI_execute("WITH RECURSIVE below(pool_id, team_id) AS ("
					 "    SELECT pt.pool_id, pt.team_id FROM salesmgmt.lead_pool_team pt"
					 "    UNION"
					 "    SELECT b.pool_id, t.team_id FROM below b"
					 "      JOIN salesmgmt.team t ON t.parent_team_id = b.team_id)"
					 " SELECT b.pool_id, pg_catalog.array_agg(DISTINCT r.rep_id)"
					 "   FROM below b JOIN salesmgmt.rep r ON r.team_id = b.team_id AND r.active"
					 "  GROUP BY b.pool_id",
					 true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the lead pools failed: %s", SPI_result_code_string(rc));
	old = MemoryContextSwitchTo(lv_cxt);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		pool_id = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
		ArrayType  *reps = DatumGetArrayTypeP(SPI_getbinval(row, desc, 2, &isnull));
		LvPool	   *p = hash_search(lv_pools, &pool_id, HASH_ENTER, NULL);
		Datum	   *elems;
		int			n;

		deconstruct_array(reps, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &elems, NULL, &n);
		p->nreps = n;
		p->reps = palloc(sizeof(int64) * Max(n, 1));
		for (int k = 0; k < n; k++)
			p->reps[k] = DatumGetInt64(elems[k]);
		qsort(p->reps, n, sizeof(int64), lv_cmp_int64);
	}
	MemoryContextSwitchTo(old);
	if (snapshot)
		PopActiveSnapshot();
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
}

/* may a rep the role sees claim from the pool */
static bool
lv_pool_visible(Oid role, int64 pool_id)
{
	LvKey		key;
	LvAnswer   *a;
	LvPool	   *p;
	bool		found;
	bool		visible = false;

	if (lv_pools == NULL)
		lv_load();
	memset(&key, 0, sizeof(key));
	key.role = role;
	key.pool_id = pool_id;
	a = hash_search(lv_answers, &key, HASH_FIND, &found);
	if (found)
		return a->visible;
	p = hash_search(lv_pools, &pool_id, HASH_FIND, NULL);
	for (int i = 0; p != NULL && i < p->nreps && !visible; i++)
		visible = sm_org_rep_visible(role, p->reps[i]);
	a = hash_search(lv_answers, &key, HASH_ENTER, NULL);
	a->visible = visible;
	return visible;
}

/*
 * salesmgmt.lead_visible(p_owner_rep_id bigint, p_pool_id bigint), not
 * STRICT: a waiting lead has no owner.
 */
Datum
sm_lead_visible(PG_FUNCTION_ARGS)
{
	Oid			role = GetUserId();
	int64		rep_id;
	bool		has_rep;

	/* first: takes in the invalidations committed since the last statement */
	if (sm_org_access(role, &rep_id, &has_rep) == SM_ACCESS_ADMIN)
		PG_RETURN_BOOL(true);
	if (!PG_ARGISNULL(0))
		PG_RETURN_BOOL(sm_org_rep_visible(role, PG_GETARG_INT64(0)));
	if (PG_ARGISNULL(1))
		PG_RETURN_BOOL(false);
	if (!lv_registered)
	{
		lv_cxt = AllocSetContextCreate(CacheMemoryContext, "salesmgmt lead pools",
									   ALLOCSET_SMALL_SIZES);
		CacheRegisterRelcacheCallback(lv_relcache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, lv_syscache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, lv_syscache_cb, (Datum) 0);
		lv_registered = true;
	}
	if (lv_stale)
	{
		MemoryContextReset(lv_cxt);
		lv_pools = NULL;
		lv_answers = NULL;
		lv_stale = false;
	}
	PG_RETURN_BOOL(lv_pool_visible(role, PG_GETARG_INT64(1)));
}

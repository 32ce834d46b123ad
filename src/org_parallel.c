/*-------------------------------------------------------------------------
 *
 * org_parallel.c
 *	  Parallel query and the cached organisation: the leader hands its
 *	  view of the role to its parallel workers.
 *
 * A parallel worker is a new process for each statement: without help it
 * would read the organisation, the role's split-shared deals and the
 * role's accounts again (scans of team, rep, deal_split, account and
 * deal) in every statement, while the leader keeps them cached.
 *
 * So, before a plan that may use workers runs (ExecutorStart), the leader
 * looks for salesmgmt functions in the plan (the row-level security
 * predicates the rewriter put there), builds the parts of the role's view
 * they use (its cache: nothing is read when they are current), and copies
 * them into a dynamic shared memory segment.  The segment's handle and a
 * publication number go to the workers in the hidden setting
 * salesmgmt.parallel_view, which parallel workers receive from their
 * leader with the rest of its settings.  A worker whose first predicate
 * call finds the segment, published by its own leader (pid), with the
 * same number, for the same role and statement (start timestamp), copies
 * the view and reads nothing; otherwise it reads the tables as before.
 *
 * The segment belongs to the leader's resource owner: detached (and so
 * destroyed) at ExecutorEnd, or by the resource owner when the statement
 * fails; a detach callback forgets it either way.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "storage/dsm.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "org_internal.h"
#include "salesmgmt.h"

#define ORGP_MAGIC		0x534d5056	/* "SMPV" */
#define ORGP_NSETS		7
#define ORGP_MAX_NESTED	8

/* the segment: this header, then ORGP_NSETS sets (absent ones empty) */
typedef struct OrgpHeader
{
	uint32		magic;
	int32		leader_pid;
	uint64		number;			/* publication number of the leader */
	Oid			role;
	int32		parts;			/* SM_VIEW_* present */
	TimestampTz statement;		/* statement start: workers restore it */
	int32		access;
	bool		has_rep;
	bool		has_team;
	int64		rep_id;
	int64		team_id;
	Size		size;
} OrgpHeader;

/* each set: kind (0 bitmap of nwords words, 1 list of n ids), then data */
typedef struct OrgpSet
{
	int64		kind;
	int64		count;			/* nbits for a bitmap, ids for a list */
} OrgpSet;

/* the leader's published segments, one per running executor */
typedef struct OrgpPublished
{
	QueryDesc  *query;
	dsm_segment *seg;
	char	   *previous;		/* the setting before, restored at the end */
} OrgpPublished;

static OrgpPublished orgp_published[ORGP_MAX_NESTED];
static int	orgp_npublished = 0;
static uint64 orgp_number = 0;
static char *orgp_setting = NULL;	/* salesmgmt.parallel_view */

static ExecutorStart_hook_type orgp_prev_start = NULL;
static ExecutorEnd_hook_type orgp_prev_end = NULL;

/* ------------------------------------------------------------------------
 * Which parts of the view a plan's policies use
 * ------------------------------------------------------------------------
 */
typedef struct OrgpWalk
{
	Oid			schema;
	int			parts;
} OrgpWalk;

/* the predicates that use the role's reps and teams only */
static const char *const orgp_set_predicates[] = {
	"rep_visible", "rep_managed", "team_visible", "team_managed", "rep_teammate",
	"deal_changeable", "leaderboard_visible"
};

static int
orgp_function_parts(Oid schema, Oid funcid)
{
	char	   *name;

	if (get_func_namespace(funcid) != schema)
		return 0;
	name = get_func_name(funcid);
	if (name == NULL)
		return 0;
	if (strcmp(name, "activity_visible") == 0)
		return SM_VIEW_SETS | SM_VIEW_SPLITS | SM_VIEW_OWNED;
	if (strcmp(name, "deal_visible") == 0)
		return SM_VIEW_SETS | SM_VIEW_SPLITS;
	if (strcmp(name, "account_changeable") == 0)
		return SM_VIEW_SETS | SM_VIEW_OWNED;
	if (strcmp(name, "account_visible") == 0)
		return SM_VIEW_SETS | SM_VIEW_SPLITS | SM_VIEW_OWNED | SM_VIEW_SEEN;
	for (int i = 0; i < (int) lengthof(orgp_set_predicates); i++)
		if (strcmp(name, orgp_set_predicates[i]) == 0)
			return SM_VIEW_SETS;
	return 0;					/* not a predicate: nothing to build for it */
}

static bool
orgp_expr_walker(Node *node, OrgpWalk *w)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr))
		w->parts |= orgp_function_parts(w->schema, ((FuncExpr *) node)->funcid);
	return expression_tree_walker(node, orgp_expr_walker, (void *) w);
}

static void orgp_plan_walk(Plan *plan, OrgpWalk *w);

static void
orgp_plans_walk(List *plans, OrgpWalk *w)
{
	ListCell   *lc;

	foreach(lc, plans)
		orgp_plan_walk((Plan *) lfirst(lc), w);
}

/* the quals and target lists of a plan tree (subplans: from the statement) */
static void
orgp_plan_walk(Plan *plan, OrgpWalk *w)
{
	if (plan == NULL)
		return;
	check_stack_depth();
	(void) orgp_expr_walker((Node *) plan->qual, w);
	(void) orgp_expr_walker((Node *) plan->targetlist, w);
	orgp_plan_walk(plan->lefttree, w);
	orgp_plan_walk(plan->righttree, w);
	switch (nodeTag(plan))
	{
		case T_Append:
			orgp_plans_walk(((Append *) plan)->appendplans, w);
			break;
		case T_MergeAppend:
			orgp_plans_walk(((MergeAppend *) plan)->mergeplans, w);
			break;
		case T_BitmapAnd:
			orgp_plans_walk(((BitmapAnd *) plan)->bitmapplans, w);
			break;
		case T_BitmapOr:
			orgp_plans_walk(((BitmapOr *) plan)->bitmapplans, w);
			break;
		case T_SubqueryScan:
			orgp_plan_walk(((SubqueryScan *) plan)->subplan, w);
			break;
		case T_CustomScan:
			orgp_plans_walk(((CustomScan *) plan)->custom_plans, w);
			break;
		default:
			break;
	}
}

/* ------------------------------------------------------------------------
 * Writing and reading the segment
 * ------------------------------------------------------------------------
 */
static Size
orgp_set_size(const IdSet *s)
{
	if (s == NULL)
		return sizeof(OrgpSet);
	if (s->bits != NULL)
		return sizeof(OrgpSet) + sizeof(uint64) * (s->nbits / 64 + 1);
	if (s->hash == NULL)
		return sizeof(OrgpSet) + sizeof(int64) * s->nids;
	return sizeof(OrgpSet) + sizeof(int64) * hash_get_num_entries(s->hash);
}

static char *
orgp_set_write(char *p, const IdSet *s)
{
	OrgpSet    *h = (OrgpSet *) p;

	p += sizeof(OrgpSet);
	if (s == NULL)
	{
		h->kind = 1;
		h->count = 0;
	}
	else if (s->bits != NULL)
	{
		h->kind = 0;
		h->count = s->nbits;
		memcpy(p, s->bits, sizeof(uint64) * (s->nbits / 64 + 1));
		p += sizeof(uint64) * (s->nbits / 64 + 1);
	}
	else if (s->hash == NULL)
	{
		h->kind = 1;
		h->count = s->nids;
		memcpy(p, s->ids, sizeof(int64) * s->nids);
		p += sizeof(int64) * s->nids;
	}
	else
	{
		HASH_SEQ_STATUS seq;
		IdEntry    *e;
		int64	   *ids = (int64 *) p;

		h->kind = 1;
		h->count = 0;
		hash_seq_init(&seq, s->hash);
		while ((e = hash_seq_search(&seq)) != NULL)
			ids[h->count++] = e->key;
		p += sizeof(int64) * h->count;
	}
	return p;
}

/* a set of the segment into cxt; NULL when it would overrun the segment */
static IdSet *
orgp_set_read(char **pp, const char *end, MemoryContext cxt)
{
	OrgpSet    *h = (OrgpSet *) *pp;
	char	   *p = *pp + sizeof(OrgpSet);
	Size		bytes;
	IdSet	   *s;

	if (p > end || h->count < 0 || h->count > (int64) (end - p) * 64)
		return NULL;
	bytes = h->kind == 0 ? sizeof(uint64) * (h->count / 64 + 1) : sizeof(int64) * h->count;
	if (p + bytes > end)
		return NULL;
	*pp = p + bytes;
	if (h->kind == 1)
		return sm_org_idset_build(cxt, (const int64 *) p, (int) h->count);
	s = MemoryContextAllocZero(cxt, sizeof(IdSet));
	s->nbits = h->count;
	s->bits = MemoryContextAlloc(cxt, bytes);
	memcpy(s->bits, p, bytes);
	return s;
}

/* the sets of a view, in the segment's order */
static void
orgp_sets(RoleView *v, IdSet ***sets)
{
	sets[0] = &v->reps;
	sets[1] = &v->managed_reps;
	sets[2] = &v->teams;
	sets[3] = &v->managed_teams;
	sets[4] = &v->shared_deals;
	sets[5] = &v->owned_accounts;
	sets[6] = &v->seen_accounts;
}

static const int orgp_set_part[ORGP_NSETS] = {
	SM_VIEW_SETS, SM_VIEW_SETS, SM_VIEW_SETS, SM_VIEW_SETS,
	SM_VIEW_SPLITS, SM_VIEW_OWNED, SM_VIEW_SEEN
};

static void
orgp_forget(dsm_segment *seg, Datum arg)
{
	for (int i = 0; i < orgp_npublished; i++)
		if (orgp_published[i].seg == seg)
			orgp_published[i].seg = NULL;
}

static void
orgp_set_setting(const char *value)
{
	(void) set_config_option("salesmgmt.parallel_view", value, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SET, true, 0, false);
}

/* the leader: copy the view into a new segment and name it to the workers */
static void
orgp_publish(QueryDesc *query, RoleView *v, int parts)
{
	IdSet	  **sets[ORGP_NSETS];
	Size		size = MAXALIGN(sizeof(OrgpHeader));
	dsm_segment *seg;
	OrgpHeader *h;
	char	   *p;
	OrgpPublished *pub;

	orgp_sets(v, sets);
	for (int i = 0; i < ORGP_NSETS; i++)
		size += orgp_set_size((parts & orgp_set_part[i]) ? *sets[i] : NULL);
	seg = dsm_create(size, DSM_CREATE_NULL_IF_MAXSEGMENTS);
	if (seg == NULL)
		return;
	h = dsm_segment_address(seg);
	memset(h, 0, sizeof(OrgpHeader));
	h->magic = ORGP_MAGIC;
	h->leader_pid = MyProcPid;
	h->number = ++orgp_number;
	h->role = v->role;
	h->parts = parts;
	h->statement = GetCurrentStatementStartTimestamp();
	h->access = (int32) v->access;
	h->has_rep = v->has_rep;
	h->rep_id = v->rep_id;
	h->has_team = v->has_team;
	h->team_id = v->team_id;
	h->size = size;
	p = (char *) h + MAXALIGN(sizeof(OrgpHeader));
	for (int i = 0; i < ORGP_NSETS; i++)
		p = orgp_set_write(p, (parts & orgp_set_part[i]) ? *sets[i] : NULL);

	pub = &orgp_published[orgp_npublished++];
	pub->query = query;
	pub->seg = seg;
	pub->previous = orgp_setting ? MemoryContextStrdup(TopMemoryContext, orgp_setting) : NULL;
	on_dsm_detach(seg, orgp_forget, (Datum) 0);
	orgp_set_setting(psprintf("%u:" UINT64_FORMAT, dsm_segment_handle(seg), h->number));
	elog(DEBUG2, "salesmgmt: view of role %u published to parallel workers (parts %d, %zu bytes)",
		 v->role, parts, size);
}

/*
 * A worker: the view its leader published for this statement, copied into
 * v (whose contexts are ready); the SM_VIEW_* parts taken, 0 for none.
 */
int
sm_org_parallel_adopt(RoleView *v)
{
	dsm_handle	handle;
	uint64		number;
	dsm_segment *seg;
	OrgpHeader *h;
	IdSet	  **sets[ORGP_NSETS];
	MemoryContext cxts[ORGP_NSETS];
	char	   *p,
			   *end;
	int			parts = 0;

	if (!IsParallelWorker() || orgp_setting == NULL ||
		sscanf(orgp_setting, "%u:" UINT64_FORMAT, &handle, &number) != 2)
		return 0;
	seg = dsm_attach(handle);
	if (seg == NULL)
		return 0;
	h = dsm_segment_address(seg);
	if (dsm_segment_map_length(seg) < sizeof(OrgpHeader) || h->magic != ORGP_MAGIC ||
		MyProc->lockGroupLeader == NULL || h->leader_pid != MyProc->lockGroupLeader->pid || h->number != number || h->role != v->role ||
		h->statement != GetCurrentStatementStartTimestamp() ||
		h->size > dsm_segment_map_length(seg))
	{
		dsm_detach(seg);
		return 0;
	}
	v->access = (SmAccess) h->access;
	v->has_rep = h->has_rep;
	v->rep_id = h->rep_id;
	v->has_team = h->has_team;
	v->team_id = h->team_id;
	orgp_sets(v, sets);
	for (int i = 0; i < ORGP_NSETS; i++)
		cxts[i] = i < 4 ? v->cxt : i == 4 ? v->split_cxt : v->account_cxt;
	p = (char *) h + MAXALIGN(sizeof(OrgpHeader));
	end = (char *) h + h->size;
	parts = h->parts;
	for (int i = 0; i < ORGP_NSETS; i++)
	{
		IdSet	   *s = orgp_set_read(&p, end, cxts[i]);

		if (s == NULL)
		{
			parts = 0;
			break;
		}
		*sets[i] = (parts & orgp_set_part[i]) ? s : NULL;
	}
	dsm_detach(seg);
	if (parts != 0)
	{
		elog(DEBUG1, "salesmgmt: parallel worker took its leader's view of role %u (parts %d)",
			 v->role, parts);
	}
	return parts;
}

/* ------------------------------------------------------------------------
 * The executor hooks
 * ------------------------------------------------------------------------
 */
static void
orgp_executor_start(QueryDesc *query, int eflags)
{
	PlannedStmt *stmt = query->plannedstmt;

	/* nested executors end in order; forget those a failure skipped */
	while (orgp_npublished > 0 && orgp_published[orgp_npublished - 1].seg == NULL)
	{
		OrgpPublished *pub = &orgp_published[--orgp_npublished];

		if (pub->previous)
			pfree(pub->previous);
		pub->previous = NULL;
	}
	if (stmt->parallelModeNeeded && !(eflags & EXEC_FLAG_EXPLAIN_ONLY) &&
		!IsInParallelMode() && !IsParallelWorker() && orgp_npublished < ORGP_MAX_NESTED &&
		IsTransactionState())
	{
		OrgpWalk	w;

		w.schema = get_namespace_oid(SALESMGMT_SCHEMA, true);
		w.parts = 0;
		if (OidIsValid(w.schema))
		{
			orgp_plan_walk(stmt->planTree, &w);
			orgp_plans_walk(stmt->subplans, &w);
		}
		/* superusers and BYPASSRLS roles: no policy put the predicates there */
		if (w.parts != 0 && !superuser() && !has_bypassrls_privilege(GetUserId()))
		{
			int			ready;
			RoleView   *v = sm_org_view_prepare(GetUserId(), w.parts, &ready);

			if (ready & SM_VIEW_SETS)
				orgp_publish(query, v, ready);
		}
	}
	if (orgp_prev_start)
		orgp_prev_start(query, eflags);
	else
		standard_ExecutorStart(query, eflags);
}

static void
orgp_executor_end(QueryDesc *query)
{
	if (orgp_prev_end)
		orgp_prev_end(query);
	else
		standard_ExecutorEnd(query);
	for (int i = orgp_npublished - 1; i >= 0; i--)
	{
		OrgpPublished *pub = &orgp_published[i];

		if (pub->query != query)
			continue;
		if (pub->seg != NULL)
			dsm_detach(pub->seg);	/* orgp_forget clears pub->seg */
		if (!IsInParallelMode())
			orgp_set_setting(pub->previous ? pub->previous : "");
		if (pub->previous)
			pfree(pub->previous);
		pub->previous = NULL;
		pub->query = NULL;
		pub->seg = NULL;
		if (i == orgp_npublished - 1)
			orgp_npublished--;
		break;
	}
}

/* called from _PG_init */
void
sm_org_parallel_init(void)
{
	DefineCustomStringVariable("salesmgmt.parallel_view",
							   "Internal: the role's view a parallel query's leader published to its workers.",
							   "Set by salesmgmt for the statement that runs; nothing to configure.",
							   &orgp_setting,
							   "",
							   PGC_SUSET,
							   GUC_NO_SHOW_ALL | GUC_NO_RESET_ALL | GUC_NOT_IN_SAMPLE |
							   GUC_DISALLOW_IN_FILE,
							   NULL, NULL, NULL);
	orgp_prev_start = ExecutorStart_hook;
	ExecutorStart_hook = orgp_executor_start;
	orgp_prev_end = ExecutorEnd_hook;
	ExecutorEnd_hook = orgp_executor_end;
}

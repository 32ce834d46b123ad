/*-------------------------------------------------------------------------
 *
 * commission.c
 *	  The commission engine: tier arithmetic, run_commissions with its
 *	  corrections of finalized periods, and the triggers that guard plans,
 *	  assignments, draws and the ledger.
 *
 * Tier arithmetic.  For a plan, a quota q and the credit x a rep has
 * accumulated in a plan period, E(x) is the exact tier commission of the
 * period.  Tier k covers credits [B_k, B_k+1) with B_k = from_k * q, and on
 * it E is linear: E(x) = a_k + r_k * x, where a_1 = 0 and
 *		retroactive tier:	a_k = 0 (all credit of the period earns r_k)
 *		marginal tier:		a_k = E_{k-1}(B_k) - r_k * B_k (new credit earns r_k)
 * so a line that takes the period's credit from x to x' earns
 * E(x') - E(x), catch-ups of retroactive tiers included, whatever the mix of
 * modes.  Rounding is cumulative: a line pays
 *		round(least(E(x'), cap), 2) - round(least(E(x), cap), 2)
 * so the lines of a period add up to its exact commission rounded once, and
 * no cent is lost or invented by rounding many small lines.  Without a quota
 * (none, or zero) the first tier's rate applies to all credit.
 *
 * run_commissions(start, end) works in a few set-oriented passes:
 *	1. lock the commission periods, check the period, replace its drafts;
 *	2. load plans, tiers, SPIFFs, assignments, the team tree, exchange rates,
 *	   quotas and draws into memory (hash tables by rep);
 *	3. if periods are finalized: merge (in rep, deal order) what finalized
 *	   events are due now with what the ledger booked for them, giving
 *	   adjustment and clawback items per rep;
 *	4. stream the period's credit events ordered by rep and time through one
 *	   cursor, merging each rep's adjustment items in time order, and emit
 *	   earned, SPIFF and override lines, written in batches the way COPY
 *	   writes (table_multi_insert, then the index entries);
 *	5. claw back refunds, settle draws, and return one row per rep.
 *
 * Concurrency.  Every run, finalization and discard takes SHARE ROW
 * EXCLUSIVE on salesmgmt.commission_period, so they run one at a time and
 * each sees the lines the previous one committed (READ COMMITTED takes a
 * new snapshot per query).  Assignment and draw triggers take SHARE on it,
 * so they cannot slip past a concurrent finalization.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "salesmgmt.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_commission_amount);
PG_FUNCTION_INFO_V1(sm_run_commissions);
PG_FUNCTION_INFO_V1(sm_finalize_commissions);
PG_FUNCTION_INFO_V1(sm_discard_commissions);
PG_FUNCTION_INFO_V1(sm_commission_tier_check);
PG_FUNCTION_INFO_V1(sm_commission_assignment_check);
PG_FUNCTION_INFO_V1(sm_commission_draw_check);
PG_FUNCTION_INFO_V1(sm_commission_spiff_check);
PG_FUNCTION_INFO_V1(sm_commission_plan_check);
PG_FUNCTION_INFO_V1(sm_commission_ledger_guard);

/* rows fetched per cursor round trip; lines per table_multi_insert batch
 * (as COPY: more slots only cost resource-owner bookkeeping) */
#define CM_FETCH		10000
#define CM_FLUSH_AT		1000

/*
 * True while run_commissions, finalize_commissions or discard_commissions
 * works: only then may draft lines and periods change.
 */
static bool cm_engine_active = false;

/* ----------------------------------------------------------------------
 * Small helpers
 * ----------------------------------------------------------------------
 */

/* the numerics 0 and 1, made once for the backend's life (never freed) */
static Numeric
cm_small(int value)
{
	static Numeric small[2] = {NULL, NULL};

	if (small[value] == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		small[value] = int64_to_numeric(value);
		MemoryContextSwitchTo(old);
	}
	return small[value];
}

#define cm_zero()	cm_small(0)
#define cm_one()	cm_small(1)

static inline int
cm_sign(Numeric n)
{
	return sm_numeric_cmp(n, cm_zero());
}

static Numeric
cm_neg(Numeric n)
{
	return DatumGetNumeric(DirectFunctionCall1(numeric_uminus, NumericGetDatum(n)));
}

/* a copy of a numeric in the given context */
static Numeric
cm_copy(MemoryContext cxt, Numeric n)
{
	Numeric		copy;

	if (n == NULL)
		return NULL;
	copy = (Numeric) MemoryContextAlloc(cxt, VARSIZE(n));
	memcpy(copy, n, VARSIZE(n));
	return copy;
}

/* replace *slot by a copy of n in cxt; the old value, owned by the slot
 * (never a shared constant), is freed */
static void
cm_set(MemoryContext cxt, Numeric *slot, Numeric n)
{
	if (*slot != NULL && *slot != n)
		pfree(*slot);
	*slot = cm_copy(cxt, n);
}

/* *slot += n, the sum kept in cxt */
static void
cm_accum(MemoryContext cxt, Numeric *slot, Numeric n)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	Numeric		sum = (*slot == NULL) ? cm_copy(cxt, n) : sm_numeric_add(*slot, n);

	if (*slot != NULL)
		pfree(*slot);
	*slot = sum;
	MemoryContextSwitchTo(old);
}

static char *
cm_date_str(DateADT d)
{
	return DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(d)));
}

static char *
cm_num_str(Numeric n)
{
	return n == NULL ? "null" : sm_numeric_to_cstring(n);
}

static TimestampTz
cm_date_ts(DateADT d)
{
	return DatumGetTimestampTz(DirectFunctionCall1(date_timestamptz, DateADTGetDatum(d)));
}

typedef enum CmPeriodKind
{
	CM_MONTH,
	CM_QUARTER,
	CM_YEAR
} CmPeriodKind;

/* the calendar month, quarter or year containing d */
static void
cm_plan_period(CmPeriodKind kind, DateADT d, DateADT *start, DateADT *end)
{
	int			y,
				m,
				dd,
				m0,
				len,
				ny,
				nm;

	j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &dd);
	switch (kind)
	{
		case CM_MONTH:
			m0 = m;
			len = 1;
			break;
		case CM_QUARTER:
			m0 = ((m - 1) / 3) * 3 + 1;
			len = 3;
			break;
		default:
			m0 = 1;
			len = 12;
			break;
	}
	ny = y;
	nm = m0 + len;
	if (nm > 12)
	{
		nm -= 12;
		ny++;
	}
	*start = date2j(y, m0, 1) - POSTGRES_EPOCH_JDATE;
	*end = date2j(ny, nm, 1) - POSTGRES_EPOCH_JDATE - 1;
}

/* SPI calls leave the SPI procedure context current: restore ours */
static Portal
cm_cursor_open(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	MemoryContext old = CurrentMemoryContext;
	Portal		portal;

	/* not read-only: a new snapshot that sees this run's own deletions */
	portal = SPI_cursor_open_with_args(NULL, sql, nargs, types, values, nulls, false, 0);
	if (portal == NULL)
		elog(ERROR, "could not open cursor for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	MemoryContextSwitchTo(old);
	return portal;
}

static SPITupleTable *
cm_fetch(Portal portal, uint64 *n)
{
	MemoryContext old = CurrentMemoryContext;
	SPITupleTable *tt;

	SPI_cursor_fetch(portal, true, CM_FETCH);
	tt = SPI_tuptable;
	*n = SPI_processed;
	MemoryContextSwitchTo(old);
	return tt;
}

static SPITupleTable *
cm_query(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
		 bool read_only, int expected, uint64 *n)
{
	MemoryContext old = CurrentMemoryContext;
	int			rc;
	SPITupleTable *tt;

	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);
	if (rc != expected)
		elog(ERROR, "SPI_execute_with_args failed (%s) for \"%s\"",
			 SPI_result_code_string(rc), sql);
	tt = SPI_tuptable;
	if (n)
		*n = SPI_processed;
	MemoryContextSwitchTo(old);
	return tt;
}

/* run a query with the latest snapshot: sees rows that concurrent
 * transactions committed after ours started (as unique checks do) */
static SPITupleTable *
cm_query_latest(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
				uint64 *n)
{
	MemoryContext old = CurrentMemoryContext;
	SPIPlanPtr	plan;
	int			rc;
	SPITupleTable *tt;

	plan = SPI_prepare(sql, nargs, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed (%s) for \"%s\"",
			 SPI_result_code_string(SPI_result), sql);
	rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
							  InvalidSnapshot, true, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_snapshot failed (%s) for \"%s\"",
			 SPI_result_code_string(rc), sql);
	tt = SPI_tuptable;
	*n = SPI_processed;
	SPI_freeplan(plan);
	MemoryContextSwitchTo(old);
	return tt;
}

static inline Datum
cm_col(SPITupleTable *tt, uint64 row, int col, bool *isnull)
{
	return SPI_getbinval(tt->vals[row], tt->tupdesc, col, isnull);
}

static int64
cm_col_int8(SPITupleTable *tt, uint64 row, int col, int64 if_null)
{
	bool		isnull;
	Datum		d = cm_col(tt, row, col, &isnull);

	return isnull ? if_null : DatumGetInt64(d);
}

/* a numeric column copied into the current context; NULL for SQL null */
static Numeric
cm_col_numeric(SPITupleTable *tt, uint64 row, int col)
{
	bool		isnull;
	Datum		d = cm_col(tt, row, col, &isnull);

	return isnull ? NULL : DatumGetNumericCopy(d);
}

/* ----------------------------------------------------------------------
 * Plans and tier arithmetic
 * ----------------------------------------------------------------------
 */

typedef struct CmTier
{
	Numeric		from;			/* attainment, inclusive */
	Numeric		to;				/* exclusive; NULL for the open-ended top */
	Numeric		rate;
	bool		retro;
} CmTier;

typedef struct CmPlan
{
	int64		plan_id;
	bool		payment_basis;
	CmPeriodKind period;
	Numeric		cap;			/* NULL: no cap */
	int32		clawback_days;	/* 0: no clawbacks */
	Numeric		override_rate;	/* NULL: no override */
	int			ntiers;
	CmTier	   *tiers;
} CmPlan;

/*
 * The tiers of a plan must start at 0, leave no gap, not overlap, and only
 * the last may be open-ended (tiers sorted by attainment_from).  Shared by
 * the constraint trigger and by every computation, which may run inside the
 * transaction that is still entering tiers.
 */
static void
cm_validate_tiers(int64 plan_id, int n, Numeric *from, Numeric *to)
{
	int			i;

	if (n == 0)
		return;
	if (cm_sign(from[0]) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("commission tiers of plan " INT64_FORMAT " do not start at attainment 0",
						plan_id),
				 errdetail("The lowest tier starts at attainment %s.", cm_num_str(from[0])),
				 errhint("Add a tier from 0, or lower the first tier's attainment_from to 0.")));
	for (i = 1; i < n; i++)
	{
		if (to[i - 1] == NULL || sm_numeric_cmp(to[i - 1], from[i]) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_EXCLUSION_VIOLATION),
					 errmsg("commission tiers of plan " INT64_FORMAT " overlap", plan_id),
					 errdetail("Tier [%s, %s) overlaps tier [%s, %s).",
							   cm_num_str(from[i - 1]), to[i - 1] ? cm_num_str(to[i - 1]) : "open",
							   cm_num_str(from[i]), to[i] ? cm_num_str(to[i]) : "open"),
					 errhint("Make each tier start where the one below it ends.")));
		if (sm_numeric_cmp(to[i - 1], from[i]) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("commission tiers of plan " INT64_FORMAT " leave a gap between attainment %s and %s",
							plan_id, cm_num_str(to[i - 1]), cm_num_str(from[i])),
					 errhint("Make each tier start where the one below it ends.")));
	}
	if (to[n - 1] != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("the highest commission tier of plan " INT64_FORMAT " is not open-ended",
						plan_id),
				 errdetail("It ends at attainment %s; credit above that would earn nothing.",
						   cm_num_str(to[n - 1])),
				 errhint("Set attainment_to of the highest tier to null.")));
}

/*
 * Load plans and their tiers (all plans, or the one given) into cxt.
 * Returns the number of plans; *plans is sorted by plan_id.  read_only
 * queries see the calling statement's snapshot (STABLE callers); the
 * others a new one that sees the caller's own earlier changes.
 */
static int
cm_load_plans(MemoryContext cxt, int64 only_plan, bool read_only, CmPlan **plans)
{
	const char *sql =
		"SELECT p.plan_id, p.basis = 'payment', p.period, p.cap, coalesce(p.clawback_days, 0),"
		"       nullif(p.override_rate, 0), t.attainment_from, t.attainment_to, t.rate,"
		"       coalesce(t.mode, p.tier_mode) = 'retroactive', t.tier_id IS NOT NULL"
		"  FROM salesmgmt.commission_plan p"
		"  LEFT JOIN salesmgmt.commission_tier t ON t.plan_id = p.plan_id"
		" WHERE $1 IS NULL OR p.plan_id = $1"
		" ORDER BY p.plan_id, t.attainment_from, t.tier_id";
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(only_plan)};
	char		nulls[1] = {only_plan == 0 ? 'n' : ' '};
	SPITupleTable *tt;
	uint64		n,
				i,
				first;
	int			nplans = 0;
	CmPlan	   *out;
	MemoryContext old;

	tt = cm_query(sql, 1, types, values, nulls, read_only, SPI_OK_SELECT, &n);
	old = MemoryContextSwitchTo(cxt);
	out = palloc0(sizeof(CmPlan) * Max(n, 1));
	for (i = 0; i < n; i = first)
	{
		CmPlan	   *p = &out[nplans++];
		bool		isnull;
		char	   *period;
		Numeric    *from,
				   *to;
		int			k;

		p->plan_id = cm_col_int8(tt, i, 1, 0);
		p->payment_basis = DatumGetBool(cm_col(tt, i, 2, &isnull));
		period = TextDatumGetCString(cm_col(tt, i, 3, &isnull));
		p->period = strcmp(period, "month") == 0 ? CM_MONTH :
			strcmp(period, "year") == 0 ? CM_YEAR : CM_QUARTER;
		p->cap = cm_col_numeric(tt, i, 4);
		p->clawback_days = DatumGetInt32(cm_col(tt, i, 5, &isnull));
		p->override_rate = cm_col_numeric(tt, i, 6);
		for (first = i; first < n && cm_col_int8(tt, first, 1, 0) == p->plan_id; first++)
			;
		p->ntiers = DatumGetBool(cm_col(tt, i, 11, &isnull)) ? (int) (first - i) : 0;
		p->tiers = palloc0(sizeof(CmTier) * Max(p->ntiers, 1));
		from = palloc(sizeof(Numeric) * Max(p->ntiers, 1));
		to = palloc(sizeof(Numeric) * Max(p->ntiers, 1));
		for (k = 0; k < p->ntiers; k++)
		{
			p->tiers[k].from = from[k] = cm_col_numeric(tt, i + k, 7);
			p->tiers[k].to = to[k] = cm_col_numeric(tt, i + k, 8);
			p->tiers[k].rate = cm_col_numeric(tt, i + k, 9);
			p->tiers[k].retro = DatumGetBool(cm_col(tt, i + k, 10, &isnull));
		}
		cm_validate_tiers(p->plan_id, p->ntiers, from, to);
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);
	*plans = out;
	return nplans;
}

/*
 * The tier arithmetic of one plan period: boundaries in credit and the
 * offsets of the linear pieces (see the file header).
 */
typedef struct CmTiering
{
	CmPlan	   *plan;
	Numeric		quota;			/* NULL: no (or zero) quota */
	int			nt;				/* tiers in use: 0 (plan has none), 1 without
								 * quota, else plan->ntiers */
	Numeric    *bound;			/* B_k */
	Numeric    *offset;			/* a_k */
} CmTiering;

static void
cm_tiering_init(CmTiering *t, CmPlan *plan, Numeric quota)
{
	int			k;

	t->plan = plan;
	t->quota = (quota != NULL && cm_sign(quota) > 0) ? quota : NULL;
	t->nt = plan->ntiers == 0 ? 0 : (t->quota == NULL ? 1 : plan->ntiers);
	t->bound = palloc(sizeof(Numeric) * Max(t->nt, 1));
	t->offset = palloc(sizeof(Numeric) * Max(t->nt, 1));
	if (t->nt == 0)
		return;
	t->bound[0] = cm_zero();
	t->offset[0] = cm_zero();
	for (k = 1; k < t->nt; k++)
	{
		CmTier	   *tk = &plan->tiers[k];

		t->bound[k] = sm_numeric_mul(tk->from, t->quota);
		if (tk->retro)
			t->offset[k] = cm_zero();
		else
		{
			/* E_{k-1}(B_k) - r_k * B_k */
			Numeric		left = sm_numeric_add(t->offset[k - 1],
											  sm_numeric_mul(plan->tiers[k - 1].rate, t->bound[k]));

			t->offset[k] = sm_numeric_sub(left, sm_numeric_mul(tk->rate, t->bound[k]));
		}
	}
}

/* index of the tier credit x falls in (negative credit: the first) */
static int
cm_tier_of(CmTiering *t, Numeric x)
{
	int			k;

	for (k = t->nt - 1; k > 0; k--)
		if (sm_numeric_cmp(x, t->bound[k]) >= 0)
			return k;
	return 0;
}

/* E(x) on tier k */
static Numeric
cm_earnings(CmTiering *t, int k, Numeric x)
{
	if (t->nt == 0)
		return cm_zero();
	return sm_numeric_add(t->offset[k], sm_numeric_mul(t->plan->tiers[k].rate, x));
}

/* what the plan pays for exact earnings e: least(e, cap) rounded to cents */
static Numeric
cm_paid(CmPlan *plan, Numeric e)
{
	if (plan->cap != NULL && sm_numeric_cmp(e, plan->cap) > 0)
		e = plan->cap;
	return sm_numeric_round(e, 2);
}

/* E(x) - E_{k-1}(x) at the lower boundary of tier k: the retroactive jump */
static Numeric
cm_catch_up(CmTiering *t, int k)
{
	Numeric		right = cm_earnings(t, k, t->bound[k]);
	Numeric		left = cm_earnings(t, k - 1, t->bound[k]);

	return sm_numeric_sub(right, left);
}

/*
 * The tiers a move of the period's credit from x to y passes through, in
 * the direction of the move: each with the slice of credit in it, what the
 * slice earns, and the catch-up of a boundary crossed into it.  The slices'
 * amounts and catch-ups add up to E(y) - E(x) exactly.
 */
static Jsonb *
cm_tiers_json(CmTiering *t, Numeric x, Numeric y, int kx, int ky)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;
	bool		up = ky > kx;
	int			lo_k = up ? kx : ky;
	int			hi_k = up ? ky : kx;
	Numeric		lo = up ? x : y;
	Numeric		hi = up ? y : x;
	int			step = up ? 1 : -1;
	int			j;

	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (j = kx;; j += step)
	{
		CmTier	   *tier = &t->plan->tiers[j];
		Numeric		seg_lo = (j == lo_k) ? lo : t->bound[j];
		Numeric		seg_hi = (j == hi_k) ? hi : t->bound[j + 1];
		Numeric		slice = sm_numeric_sub(seg_hi, seg_lo);

		if (!up)
			slice = cm_neg(slice);
		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		sm_jsonb_push_numeric(&st, "tier", int64_to_numeric(j + 1));
		sm_jsonb_push_numeric(&st, "from", tier->from);
		sm_jsonb_push_numeric(&st, "to", tier->to);
		sm_jsonb_push_numeric(&st, "rate", tier->rate);
		sm_jsonb_push_string(&st, "mode", tier->retro ? "retroactive" : "marginal");
		sm_jsonb_push_numeric(&st, "credit", slice);
		sm_jsonb_push_numeric(&st, "amount", sm_numeric_mul(tier->rate, slice));
		/* crossing a boundary into tier j (up) or out of it (down) */
		if (up && j > kx && tier->retro)
			sm_jsonb_push_numeric(&st, "catch_up", cm_catch_up(t, j));
		else if (!up && j < kx && t->plan->tiers[j + 1].retro)
			sm_jsonb_push_numeric(&st, "catch_up", cm_neg(cm_catch_up(t, j + 1)));
		pushJsonbValue(&st, WJB_END_OBJECT, NULL);
		if (j == ky)
			break;
	}
	res = pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * commission_amount(plan, quota, prior_credit, credit): what credit earns
 * on top of prior_credit in a plan period, by the plan's tiers and cap.
 */
Datum
sm_commission_amount(PG_FUNCTION_ARGS)
{
	int64		plan_id;
	Numeric		quota,
				prior,
				credit,
				after;
	CmPlan	   *plans;
	CmTiering	t;
	Numeric		result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("plan, prior credit and credit of commission_amount must not be null"),
				 errhint("Pass 0 as the prior credit at the start of a period; a null quota means no quota.")));
	plan_id = PG_GETARG_INT64(0);
	quota = PG_ARGISNULL(1) ? NULL : PG_GETARG_NUMERIC(1);
	prior = PG_GETARG_NUMERIC(2);
	credit = PG_GETARG_NUMERIC(3);
	if ((quota && numeric_is_nan(quota)) || numeric_is_nan(prior) || numeric_is_nan(credit))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("commission_amount does not accept NaN")));
	if (quota != NULL && cm_sign(quota) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quota must not be negative"),
				 errdetail("The quota given is %s.", cm_num_str(quota))));

	SPI_connect();
	if (cm_load_plans(CurrentMemoryContext, plan_id, true, &plans) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("commission plan " INT64_FORMAT " does not exist", plan_id),
				 errhint("The plans are in salesmgmt.commission_plan.")));
	cm_tiering_init(&t, &plans[0], quota);
	after = sm_numeric_add(prior, credit);
	result = sm_numeric_sub(cm_paid(&plans[0], cm_earnings(&t, cm_tier_of(&t, after), after)),
							cm_paid(&plans[0], cm_earnings(&t, cm_tier_of(&t, prior), prior)));
	{
		/* the result must outlive SPI_finish */
		Numeric		copy = (Numeric) SPI_palloc(VARSIZE(result));

		memcpy(copy, result, VARSIZE(result));
		result = copy;
	}
	SPI_finish();
	PG_RETURN_NUMERIC(result);
}

/* ----------------------------------------------------------------------
 * Triggers
 * ----------------------------------------------------------------------
 */

static TriggerData *
cm_trigger_data(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" was not called by trigger manager", name)));
	return (TriggerData *) fcinfo->context;
}

static Datum
cm_tuple_get(TriggerData *td, HeapTuple tuple, const char *col, bool *isnull)
{
	TupleDesc	desc = td->tg_relation->rd_att;
	int			attno = SPI_fnumber(desc, col);

	if (attno <= 0)
		elog(ERROR, "column \"%s\" of \"%s\" not found", col,
			 RelationGetRelationName(td->tg_relation));
	return heap_getattr(tuple, attno, desc, isnull);
}

static int64
cm_tuple_int8(TriggerData *td, HeapTuple tuple, const char *col)
{
	bool		isnull;
	Datum		d = cm_tuple_get(td, tuple, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

static DateADT
cm_tuple_date(TriggerData *td, HeapTuple tuple, const char *col, DateADT if_null)
{
	bool		isnull;
	Datum		d = cm_tuple_get(td, tuple, col, &isnull);

	return isnull ? if_null : DatumGetDateADT(d);
}

/*
 * The finalized commission period that the days [from, to] touch, if any.
 * Takes SHARE on commission_period first, so that a finalization in
 * progress is waited for, and reads with the latest snapshot, so that one
 * committed meanwhile is seen.  SPI must be connected.
 */
static bool
cm_finalized_period_in(DateADT from, DateADT to, DateADT *pstart, DateADT *pend)
{
	Oid			types[2] = {DATEOID, DATEOID};
	Datum		values[2] = {DateADTGetDatum(from), DateADTGetDatum(to)};
	SPITupleTable *tt;
	uint64		n;
	bool		isnull;

	LockRelationOid(sm_relation_oid("commission_period"), ShareLock);
	tt = cm_query_latest("SELECT period_start, period_end FROM salesmgmt.commission_period"
						 " WHERE status = 'final' AND period_start <= $2 AND period_end >= $1"
						 " ORDER BY period_start LIMIT 1",
						 2, types, values, NULL, &n);
	if (n == 0)
		return false;
	*pstart = DatumGetDateADT(cm_col(tt, 0, 1, &isnull));
	*pend = DatumGetDateADT(cm_col(tt, 0, 2, &isnull));
	return true;
}

static char *
cm_range_str(DateADT from, DateADT to)
{
	return psprintf("%s to %s", cm_date_str(from),
					DATE_IS_NOEND(to) ? "open end" : cm_date_str(to));
}

/*
 * Tiers: the constraint trigger checks, at commit, the whole plan the row
 * belongs to, under a row lock on the plan so that two transactions adding
 * tiers to the same plan are checked one after the other.
 */
static void
cm_check_plan_tiers(int64 plan_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(plan_id)};
	SPITupleTable *tt;
	uint64		n,
				i;
	Numeric    *from,
			   *to;

	cm_query("SELECT 1 FROM salesmgmt.commission_plan WHERE plan_id = $1 FOR NO KEY UPDATE",
			 1, types, values, NULL, false, SPI_OK_SELECT, &n);
	if (n == 0)
		return;					/* the plan is being deleted with its tiers */
	tt = cm_query_latest("SELECT attainment_from, attainment_to FROM salesmgmt.commission_tier"
						 " WHERE plan_id = $1 ORDER BY attainment_from, tier_id",
						 1, types, values, NULL, &n);
	from = palloc(sizeof(Numeric) * Max(n, 1));
	to = palloc(sizeof(Numeric) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		from[i] = cm_col_numeric(tt, i, 1);
		to[i] = cm_col_numeric(tt, i, 2);
	}
	cm_validate_tiers(plan_id, (int) n, from, to);
}

Datum
sm_commission_tier_check(PG_FUNCTION_ARGS)
{
	TriggerData *td = cm_trigger_data(fcinfo, "commission_tier_check");
	int64		new_plan = 0,
				old_plan = 0;

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		new_plan = cm_tuple_int8(td, TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple,
								 "plan_id");
	if (TRIGGER_FIRED_BY_DELETE(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		old_plan = cm_tuple_int8(td, td->tg_trigtuple, "plan_id");

	SPI_connect();
	if (new_plan != 0)
		cm_check_plan_tiers(new_plan);
	if (old_plan != 0 && old_plan != new_plan)
		cm_check_plan_tiers(old_plan);
	SPI_finish();
	return PointerGetDatum(NULL);
}

typedef struct CmAssignRow
{
	int64		id;
	int64		rep_id;
	int64		plan_id;
	DateADT		from;
	DateADT		to;				/* DATEVAL_NOEND while it lasts */
} CmAssignRow;

static CmAssignRow
cm_assign_row(TriggerData *td, HeapTuple tuple)
{
	CmAssignRow r;

	r.id = cm_tuple_int8(td, tuple, "assignment_id");
	r.rep_id = cm_tuple_int8(td, tuple, "rep_id");
	r.plan_id = cm_tuple_int8(td, tuple, "plan_id");
	r.from = cm_tuple_date(td, tuple, "valid_from", DATEVAL_NOBEGIN);
	r.to = cm_tuple_date(td, tuple, "valid_to", DATEVAL_NOEND);
	return r;
}

static void
cm_assignment_not_finalized(CmAssignRow *r, DateADT from, DateADT to)
{
	DateADT		ps,
				pe;

	if (from > to)
		return;
	if (cm_finalized_period_in(from, to, &ps, &pe))
		ereport(ERROR,
				(errcode(ERRCODE_SM_PERIOD_FINALIZED),
				 errmsg("assignment of rep " INT64_FORMAT " to plan " INT64_FORMAT " touches the finalized commission period %s",
						r->rep_id, r->plan_id, cm_range_str(ps, pe)),
				 errdetail("The change affects the days %s.", cm_range_str(from, to)),
				 errhint("Finalized periods never change: change the assignment only from %s on; corrections go into the open period.",
						 cm_date_str(pe + 1))));
}

/*
 * Assignments of a rep must not overlap.  Without btree_gist there is no
 * exclusion constraint, so the check locks the rep's row (FOR NO KEY
 * UPDATE: concurrent assignment changes of the same rep queue up, foreign
 * key checks on the rep do not) and reads with the latest snapshot, which
 * sees an assignment a concurrent transaction committed meanwhile.
 */
Datum
sm_commission_assignment_check(PG_FUNCTION_ARGS)
{
	TriggerData *td = cm_trigger_data(fcinfo, "commission_assignment_check");
	bool		has_new = !TRIGGER_FIRED_BY_DELETE(td->tg_event);
	bool		has_old = !TRIGGER_FIRED_BY_INSERT(td->tg_event);
	CmAssignRow nr = {0},
				orow = {0};

	if (has_new)
		nr = cm_assign_row(td, TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);
	if (has_old)
		orow = cm_assign_row(td, td->tg_trigtuple);

	SPI_connect();
	if (has_new)
	{
		Oid			types[4] = {INT8OID, INT8OID, DATEOID, DATEOID};
		Datum		values[4] = {Int64GetDatum(nr.rep_id), Int64GetDatum(nr.id),
		DateADTGetDatum(nr.from), DateADTGetDatum(nr.to)};
		SPITupleTable *tt;
		uint64		n;

		cm_query("SELECT 1 FROM salesmgmt.rep WHERE rep_id = $1 FOR NO KEY UPDATE",
				 1, types, values, NULL, false, SPI_OK_SELECT, &n);
		tt = cm_query_latest("SELECT assignment_id, plan_id, valid_from, coalesce(valid_to, 'infinity')"
							 "  FROM salesmgmt.commission_assignment"
							 " WHERE rep_id = $1 AND assignment_id <> $2"
							 "   AND valid_from <= $4 AND coalesce(valid_to, 'infinity') >= $3"
							 " ORDER BY valid_from LIMIT 1",
							 4, types, values, NULL, &n);
		if (n > 0)
		{
			bool		isnull;

			ereport(ERROR,
					(errcode(ERRCODE_EXCLUSION_VIOLATION),
					 errmsg("commission assignments of rep " INT64_FORMAT " overlap", nr.rep_id),
					 errdetail("Plan " INT64_FORMAT " from %s overlaps plan " INT64_FORMAT " from %s.",
							   nr.plan_id, cm_range_str(nr.from, nr.to),
							   cm_col_int8(tt, 0, 2, 0),
							   cm_range_str(DatumGetDateADT(cm_col(tt, 0, 3, &isnull)),
											DatumGetDateADT(cm_col(tt, 0, 4, &isnull)))),
					 errhint("A rep is paid on one plan at a time: end the other assignment (valid_to) the day before this one starts.")));
		}
	}

	/* the days whose plan changes must not lie in a finalized period */
	if (!has_old)
		cm_assignment_not_finalized(&nr, nr.from, nr.to);
	else if (!has_new)
		cm_assignment_not_finalized(&orow, orow.from, orow.to);
	else if (nr.rep_id != orow.rep_id || nr.plan_id != orow.plan_id ||
			 nr.to < orow.from || orow.to < nr.from)
	{
		cm_assignment_not_finalized(&orow, orow.from, orow.to);
		cm_assignment_not_finalized(&nr, nr.from, nr.to);
	}
	else
	{
		/* same rep and plan, overlapping ranges: only the difference */
		if (nr.from != orow.from)
			cm_assignment_not_finalized(&nr, Min(nr.from, orow.from), Max(nr.from, orow.from) - 1);
		if (nr.to != orow.to)
			cm_assignment_not_finalized(&nr, Min(nr.to, orow.to) + 1, Max(nr.to, orow.to));
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* A draw is settled by the run containing its last day. */
Datum
sm_commission_draw_check(PG_FUNCTION_ARGS)
{
	TriggerData *td = cm_trigger_data(fcinfo, "commission_draw_check");
	HeapTuple	tuples[2];
	int			ntuples = 0,
				i;

	if (!TRIGGER_FIRED_BY_INSERT(td->tg_event))
		tuples[ntuples++] = td->tg_trigtuple;
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		tuples[ntuples++] = td->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		tuples[ntuples++] = td->tg_newtuple;

	SPI_connect();
	for (i = 0; i < ntuples; i++)
	{
		DateADT		day = cm_tuple_date(td, tuples[i], "period_end", DATEVAL_NOEND);
		DateADT		ps,
					pe;

		if (cm_finalized_period_in(day, day, &ps, &pe))
			ereport(ERROR,
					(errcode(ERRCODE_SM_PERIOD_FINALIZED),
					 errmsg("draw of rep " INT64_FORMAT " is settled in the finalized commission period %s",
							cm_tuple_int8(td, tuples[i], "rep_id"), cm_range_str(ps, pe)),
					 errdetail("A draw is settled by the commission period that contains its period_end, %s.",
							   cm_date_str(day)),
					 errhint("Finalized periods never change: give the draw a period that ends in an open period.")));
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* is any final commission line about this plan (or SPIFF)?  Connects SPI. */
static bool
cm_final_lines_exist(const char *column, int64 id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};
	uint64		n;
	char	   *sql = psprintf("SELECT 1 FROM salesmgmt.commission_line"
							   " WHERE %s = $1 AND status = 'final' LIMIT 1",
							   quote_identifier(column));

	SPI_connect();
	cm_query(sql, 1, types, values, NULL, false, SPI_OK_SELECT, &n);
	SPI_finish();
	return n > 0;
}

/*
 * A SPIFF condition is matched against the deal's columns: every key must
 * be one, "extra" must hold an object (matched by containment) and the
 * others a scalar (matched by equality), else a typo would silently never
 * match.  A SPIFF that final lines paid stays.
 */
static void
cm_validate_spiff_condition(Jsonb *cond)
{
	Oid			deal = sm_relation_oid("deal");
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	if (!JB_ROOT_IS_OBJECT(cond) || JB_ROOT_IS_SCALAR(cond))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("SPIFF condition must be a JSON object"),
				 errhint("For example {\"extra\": {\"product\": \"analytics\"}}; {} matches every deal.")));
	it = JsonbIteratorInit(&cond->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			AttrNumber	att;

			key = pnstrdup(v.val.string.val, v.val.string.len);
			att = get_attnum(deal, key);
			if (att == InvalidAttrNumber || att < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("SPIFF condition names \"%s\", which is not a column of salesmgmt.deal", key),
						 errhint("Match custom fields inside extra, e.g. {\"extra\": {\"%s\": ...}}.", key)));
		}
		else if (tok == WJB_VALUE)
		{
			bool		container = (v.type == jbvBinary);

			if (strcmp(key, "extra") == 0)
			{
				if (!container || !JsonContainerIsObject(v.val.binary.data))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("SPIFF condition on \"extra\" must be a JSON object"),
							 errhint("For example {\"extra\": {\"product\": \"analytics\"}}.")));
			}
			else if (container)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("SPIFF condition on deal column \"%s\" must be a scalar", key),
						 errhint("Give the value the column must equal, e.g. {\"pipeline_id\": 2}.")));
		}
	}
}

Datum
sm_commission_spiff_check(PG_FUNCTION_ARGS)
{
	TriggerData *td = cm_trigger_data(fcinfo, "commission_spiff_check");

	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		int64		spiff_id = cm_tuple_int8(td, td->tg_trigtuple, "spiff_id");

		if (cm_final_lines_exist("spiff_id", spiff_id))
			ereport(ERROR,
					(errcode(ERRCODE_SM_PERIOD_FINALIZED),
					 errmsg("SPIFF " INT64_FORMAT " was paid in a finalized commission period", spiff_id),
					 errhint("End it instead: set valid_to.")));
		return PointerGetDatum(td->tg_trigtuple);
	}
	else
	{
		HeapTuple	tuple = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
		bool		isnull;
		Datum		cond = cm_tuple_get(td, tuple, "condition", &isnull);

		if (!isnull)
			cm_validate_spiff_condition(DatumGetJsonbP(cond));
		return PointerGetDatum(tuple);
	}
}

/*
 * The basis and period of a plan decide which events its final lines
 * credited and how corrections are matched to them: they cannot change
 * once the plan paid final lines.  Rates, tiers and caps may change; they
 * apply to periods run afterwards.
 */
Datum
sm_commission_plan_check(PG_FUNCTION_ARGS)
{
	TriggerData *td = cm_trigger_data(fcinfo, "commission_plan_check");
	HeapTuple	oldt = td->tg_trigtuple;
	HeapTuple	newt = td->tg_newtuple;
	bool		n1,
				n2;

	if (!TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		return PointerGetDatum(oldt);
	if (cm_tuple_int8(td, oldt, "plan_id") != cm_tuple_int8(td, newt, "plan_id") ||
		!datumIsEqual(cm_tuple_get(td, oldt, "basis", &n1), cm_tuple_get(td, newt, "basis", &n2), false, -1) ||
		!datumIsEqual(cm_tuple_get(td, oldt, "period", &n1), cm_tuple_get(td, newt, "period", &n2), false, -1))
	{
		int64		plan_id = cm_tuple_int8(td, oldt, "plan_id");

		if (cm_final_lines_exist("plan_id", plan_id))
			ereport(ERROR,
					(errcode(ERRCODE_SM_PERIOD_FINALIZED),
					 errmsg("basis and period of commission plan " INT64_FORMAT " cannot change: it paid final commission lines",
							plan_id),
					 errhint("Create a new plan and assign reps to it from the next open period.")));
	}
	return PointerGetDatum(newt);
}

/*
 * The ledger's tables, commission_line and commission_period: rows of a
 * finalized period never change (SM010), and the others change only
 * through run_commissions, finalize_commissions and discard_commissions.
 * INSERT is not guarded: pg_restore loads the ledger with COPY.
 */
Datum
sm_commission_ledger_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = cm_trigger_data(fcinfo, "commission_ledger_guard");
	const char *relname = RelationGetRelationName(td->tg_relation);
	bool		is_line = strcmp(relname, "commission_line") == 0;
	bool		isnull;

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		uint64		n;

		SPI_connect();
		cm_query(psprintf("SELECT 1 FROM salesmgmt.%s WHERE status = 'final' LIMIT 1",
						  quote_identifier(relname)),
				 0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
		SPI_finish();
		if (n > 0)
			ereport(ERROR,
					(errcode(ERRCODE_SM_PERIOD_FINALIZED),
					 errmsg("salesmgmt.%s holds rows of finalized periods and cannot be truncated", relname),
					 errhint("Finalized periods are kept for good; forget open ones with salesmgmt.discard_commissions.")));
		return PointerGetDatum(NULL);
	}

	if (strcmp(TextDatumGetCString(cm_tuple_get(td, td->tg_trigtuple, "status", &isnull)), "final") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SM_PERIOD_FINALIZED),
				 is_line ?
				 errmsg("commission line " INT64_FORMAT " is final",
						cm_tuple_int8(td, td->tg_trigtuple, "line_id")) :
				 errmsg("commission period %s is finalized",
						cm_range_str(cm_tuple_date(td, td->tg_trigtuple, "period_start", 0),
									 cm_tuple_date(td, td->tg_trigtuple, "period_end", 0))),
				 errdetail("Finalized periods and their lines are never updated or deleted."),
				 errhint("Corrections go into the open period: change the deal, split or payment and run that period; it adds adjustment or clawback lines.")));
	if (!cm_engine_active)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("commission %s are maintained by salesmgmt.run_commissions, finalize_commissions and discard_commissions",
						is_line ? "lines" : "periods"),
				 errhint("Change plans, deals or splits and run the period again, or forget it with salesmgmt.discard_commissions.")));
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);
}

/* ----------------------------------------------------------------------
 * run_commissions: the in-memory model
 * ----------------------------------------------------------------------
 */

typedef enum CmKind
{
	CK_EARNED,
	CK_SPIFF,
	CK_OVERRIDE,
	CK_CLAWBACK,
	CK_DRAW,
	CK_ADJUSTMENT,
	CK_NKINDS
} CmKind;

static const char *const cm_kind_names[CK_NKINDS] = {
	"earned", "spiff", "override", "clawback", "draw", "adjustment"
};

typedef enum CmReason
{
	CR_NONE,
	CR_LATE,					/* adjustment: credited event first seen after
								 * its period was finalized */
	CR_CHANGED,					/* adjustment: its credit changed (split,
								 * amount, rate) */
	CR_MOVED,					/* adjustment: the deal is now won in another
								 * period */
	CR_REMOVED,					/* adjustment: the payment no longer exists */
	CR_LOST,					/* clawbacks */
	CR_REOPENED,
	CR_DELETED,
	CR_REFUND,
	CR_ADVANCE,					/* draws */
	CR_GUARANTEE,
	CR_RECOVERY,
	CR_NREASONS
} CmReason;

static const char *const cm_reason_names[CR_NREASONS] = {
	NULL, "late", "changed", "moved", "removed", "lost", "reopened", "deleted",
	"refund", "advance", "guarantee", "recovery"
};

/* per-rep sums, in the order of the result columns after quota/attainment */
typedef enum CmSum
{
	CS_CREDIT,
	CS_EARNED,
	CS_SPIFFS,
	CS_OVERRIDES,
	CS_ADJUSTMENTS,
	CS_CLAWBACKS,
	CS_DRAWS,
	CS_RECOVERY,
	CS_NSUMS
} CmSum;

/* the columns of a line that run_commissions sets */
typedef enum CmCol
{
	LC_REP, LC_KIND, LC_DEAL, LC_PAYMENT, LC_PLAN, LC_SPIFF, LC_DRAW, LC_SOURCE,
	LC_CREDITED_AT, LC_PP_START, LC_PP_END, LC_SHARE, LC_CREDIT, LC_QUOTA,
	LC_ATT_BEFORE, LC_ATT_AFTER, LC_TIER, LC_RATE, LC_TIERS, LC_EARNED_BEFORE,
	LC_EARNED_AFTER, LC_CAPPED, LC_BASE, LC_RECOVERABLE, LC_REVERSED_AT, LC_AMOUNT, LC_REASON,
	LC_NCOLS
} CmCol;

static const struct
{
	const char *name;
	Oid			type;
}			cm_cols[LC_NCOLS] = {
	{"rep_id", INT8OID},
	{"kind", TEXTOID},
	{"deal_id", INT8OID},
	{"payment_id", INT8OID},
	{"plan_id", INT8OID},
	{"spiff_id", INT8OID},
	{"draw_id", INT8OID},
	{"source_rep_id", INT8OID},
	{"credited_at", TIMESTAMPTZOID},
	{"plan_period_start", DATEOID},
	{"plan_period_end", DATEOID},
	{"share", NUMERICOID},
	{"credit", NUMERICOID},
	{"quota", NUMERICOID},
	{"attainment_before", NUMERICOID},
	{"attainment_after", NUMERICOID},
	{"tier", INT4OID},
	{"rate", NUMERICOID},
	{"tiers", JSONBOID},
	{"earned_before", NUMERICOID},
	{"earned_after", NUMERICOID},
	{"capped", BOOLOID},
	{"base", NUMERICOID},
	{"recoverable", BOOLOID},
	{"reversed_at", TIMESTAMPTZOID},
	{"amount", NUMERICOID},
	{"reason", TEXTOID},
};

typedef struct CmSpiff
{
	int64		spiff_id;
	CmPlan	   *plan;
	Numeric		amount;			/* flat per deal, or NULL */
	Numeric		rate;			/* rate on credit, or NULL */
	DateADT		from;
	DateADT		to;
} CmSpiff;

typedef struct CmAssign
{
	DateADT		from;
	DateADT		to;
	CmPlan	   *plan;
} CmAssign;

typedef struct CmQuota
{
	DateADT		start;
	DateADT		end;
	Numeric		amount;			/* in the reporting currency */
} CmQuota;

typedef struct CmDraw
{
	int64		draw_id;
	Numeric		amount;
	bool		recoverable;
} CmDraw;

/* a credited event: a won deal, a payment or refund, or a correction */
typedef struct CmEvent
{
	int64		deal_id;
	int64		payment_id;		/* 0 for a won deal */
	bool		payment;		/* payment-basis event */
	TimestampTz at;
	DateADT		day;
	Numeric		amount;			/* deal or payment amount, own currency */
	char		currency[4];
	Numeric		share;
	int			sign;			/* -1 for refunds */
	Numeric		fraction;		/* payments: share of the deal amount */
	bool	   *spiff_match;	/* per run SPIFF, or NULL */
} CmEvent;

/* an adjustment or clawback a rep gets for a finalized period */
typedef struct CmCorr
{
	bool		own;			/* own credit change through the tiers, else a
								 * ready line */
	TimestampTz at;
	DateADT		day;
	int64		deal_id;
	int64		payment_id;
	bool		payment;
	CmPlan	   *plan;
	CmReason	reason;
	Numeric		share;
	Numeric		delta;			/* own: change of credit */
	CmKind		kind;			/* ready line: */
	int64		spiff_id;
	int64		source_rep_id;
	Numeric		credit;
	Numeric		base;
	Numeric		rate;
	Numeric		amount;
	TimestampTz reversed_at;	/* clawbacks */
} CmCorr;

/* tier state of one rep, plan and plan period */
typedef struct CmState
{
	struct CmState *next;
	CmPlan	   *plan;
	DateADT		pstart;
	DateADT		pend;
	CmTiering	t;
	Numeric		quota;			/* as shown on lines; NULL without quota rows */
	Numeric		credit;			/* credit of the period so far */
	Numeric		earned;			/* E(credit), exact */
	Numeric		paid;			/* round(least(earned, cap), 2) */
	Numeric		att;			/* credit / quota for display, or NULL */
} CmState;

typedef struct CmRep
{
	int64		rep_id;			/* hash key */
	int64		team_id;
	int			nassign,
				maxassign;
	CmAssign   *assign;
	int			nquota,
				maxquota;
	CmQuota    *quota;
	int			nmanagers;
	struct CmRep **managers;	/* nearest first, each once, never self */
	int			ndraws,
				maxdraws;
	CmDraw	   *draws;
	Numeric		draw_balance;	/* recoverable draws outstanding before */
	int			ncorr,
				maxcorr,
				corr_next;
	CmCorr	   *corr;
	CmState    *states;			/* in rep_cxt while the rep is processed */
	bool		done;
	bool		listed;
	Numeric		sums[CS_NSUMS];
} CmRep;

typedef struct CmCurrency
{
	char		code[4];
	int			ndirect,
				nreverse;
	DateADT    *direct_from;	/* code -> reporting */
	Numeric    *direct_rate;
	DateADT    *reverse_from;	/* reporting -> code */
	Numeric    *reverse_rate;
} CmCurrency;

typedef struct CmPriorKey
{
	int64		rep_id;
	int64		plan_id;
	DateADT		pstart;
} CmPriorKey;

typedef struct CmPrior
{
	CmPriorKey	key;
	Numeric		credit;
} CmPrior;

/* what a rep has been paid on a deal, by component (own credit, one SPIFF,
 * override on one rep below) */
typedef struct CmComp
{
	int64		rep_id;
	int			comp;			/* 0 own, 1 SPIFF, 2 override */
	int64		aux;			/* spiff_id or source_rep_id */
	CmPlan	   *plan;
	Numeric		credit_net;
	Numeric		credit_gross;	/* before clawbacks */
	Numeric		amount_net;
	Numeric		amount_gross;
	TimestampTz at;
	int			nclawed;
	int64	   *clawed;			/* refunds already clawed back */
} CmComp;

typedef struct CmRefund
{
	int64		payment_id;
	TimestampTz at;
	Numeric		fraction;		/* refund / deal amount, or NULL */
} CmRefund;

/* a deal refunded during the period (booking-basis clawbacks) */
typedef struct CmWatch
{
	int64		deal_id;		/* hash key */
	int			nrefunds,
				maxrefunds;
	CmRefund   *refunds;
	int			ncomps,
				maxcomps;
	CmComp	   *comps;
} CmWatch;

typedef struct CmWriter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	BulkInsertState bistate;
	TupleTableSlot **slots;
	int			nused;
	int			maxslots;
	AttrNumber	attno[LC_NCOLS];	/* 0-based positions in the table */
	int32		typmod[LC_NCOLS];
	AttrNumber	period_start;
	AttrNumber	period_end;
	AttrNumber	currency;
	Datum		currency_datum;
	ExprState **defaults;		/* per table column not set by the run */
} CmWriter;

typedef struct CmRun
{
	MemoryContext run_cxt;		/* the whole run */
	MemoryContext rep_cxt;		/* the rep being processed */
	MemoryContext line_cxt;		/* lines not yet written */
	MemoryContext tmp_cxt;		/* scratch */
	DateADT		start;
	DateADT		end;
	TimestampTz start_ts;		/* start 00:00 */
	TimestampTz end_ts;			/* the day after end, 00:00 */
	char		currency[4];
	int			nplans;
	CmPlan	   *plans;
	int		   *plan_nspiffs;
	int		  **plan_spiffs;	/* per plan: indexes into spiffs */
	int			nspiffs;
	CmSpiff    *spiffs;
	Datum		spiff_params;	/* jsonb[] of the values the conditions name */
	char	   *spiff_select;	/* the SQL of the SPIFF match column */
	bool		any_booking;
	bool		any_payment;
	bool		aligned;		/* the period is made of whole plan periods */
	int			ncur;
	CmCurrency *cur;
	HTAB	   *reps;
	int			nfinal;
	DateADT    *final_start;
	DateADT    *final_end;
	HTAB	   *prior;
	HTAB	   *watch;
	bool		recording;		/* note lines of watched deals */
	CmWriter	writer;
	Datum		kind_text[CK_NKINDS];
	Datum		reason_text[CR_NREASONS];
	uint64		nlines;
} CmRun;

/* grow a (count, max, array) triple held in cxt by one */
#define CM_APPEND(cxt, arr, n, max) \
	do { \
		if ((n) >= (max)) \
		{ \
			(max) = (max) == 0 ? 4 : (max) * 2; \
			(arr) = (arr) == NULL ? MemoryContextAllocZero((cxt), sizeof(*(arr)) * (max)) \
				: repalloc((arr), sizeof(*(arr)) * (max)); \
		} \
		(n)++; \
	} while (0)

static CmPlan *
cm_plan_by_id(CmRun *run, int64 plan_id)
{
	int			lo = 0,
				hi = run->nplans - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (run->plans[mid].plan_id == plan_id)
			return &run->plans[mid];
		if (run->plans[mid].plan_id < plan_id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

static int
cm_plan_index(CmRun *run, CmPlan *plan)
{
	return (int) (plan - run->plans);
}

static CmRep *
cm_rep(CmRun *run, int64 rep_id)
{
	CmRep	   *rep = hash_search(run->reps, &rep_id, HASH_FIND, NULL);

	if (rep == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("rep " INT64_FORMAT " does not exist", rep_id),
				 errdetail("A credited deal, split or commission row refers to it.")));
	return rep;
}

static CmPlan *
cm_plan_at(CmRep *rep, DateADT day)
{
	int			i;

	for (i = 0; i < rep->nassign; i++)
		if (rep->assign[i].from <= day && day <= rep->assign[i].to)
			return rep->assign[i].plan;
	return NULL;
}

static DateADT
cm_ts_date(TimestampTz ts)
{
	return DatumGetDateADT(DirectFunctionCall1(timestamptz_date, TimestampTzGetDatum(ts)));
}

/* a hash table in cxt keyed by the first keysize bytes of its entries */
static HTAB *
cm_hash(const char *name, Size keysize, Size entrysize, long nelem, MemoryContext cxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = cxt;
	return hash_create(name, Max(nelem, 16), &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* ----------------------------------------------------------------------
 * Currency conversion, with salesmgmt.convert_amount's semantics: the
 * latest rate of the pair valid on the day, else division by the latest
 * rate of the reverse pair, else an error naming the pair and the day.
 * ----------------------------------------------------------------------
 */

static CmCurrency *
cm_currency(CmRun *run, const char *code, bool create)
{
	int			i;

	for (i = 0; i < run->ncur; i++)
		if (strcmp(run->cur[i].code, code) == 0)
			return &run->cur[i];
	if (!create)
		return NULL;
	run->cur = repalloc(run->cur, sizeof(CmCurrency) * (run->ncur + 1));
	memset(&run->cur[run->ncur], 0, sizeof(CmCurrency));
	strlcpy(run->cur[run->ncur].code, code, 4);
	return &run->cur[run->ncur++];
}

/* index of the last entry with from <= day, or -1 */
static int
cm_rate_index(DateADT *from, int n, DateADT day)
{
	int			lo = 0,
				hi = n - 1,
				found = -1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (from[mid] <= day)
		{
			found = mid;
			lo = mid + 1;
		}
		else
			hi = mid - 1;
	}
	return found;
}

static Numeric
cm_convert(CmRun *run, Numeric amount, const char *code, DateADT day)
{
	CmCurrency *c;
	int			i;

	if (strcmp(code, run->currency) == 0)
		return amount;
	c = cm_currency(run, code, false);
	if (c != NULL)
	{
		if ((i = cm_rate_index(c->direct_from, c->ndirect, day)) >= 0)
			return sm_numeric_mul(amount, c->direct_rate[i]);
		if ((i = cm_rate_index(c->reverse_from, c->nreverse, day)) >= 0)
			return sm_numeric_div(amount, c->reverse_rate[i]);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("no exchange rate from %s to %s on %s", code, run->currency, cm_date_str(day)),
			 errdetail("salesmgmt.currency_rate has no row for this pair (in either direction) valid on or before that date."),
			 errhint("Insert a rate: INSERT INTO salesmgmt.currency_rate (currency, quote_currency, valid_from, rate) VALUES ('%s', '%s', '%s', ...).",
					 code, run->currency, cm_date_str(day))));
	return NULL;				/* keep compiler quiet */
}

static void
cm_load_rates(CmRun *run)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(run->currency)};
	SPITupleTable *tt;
	uint64		n,
				i;
	MemoryContext old;

	tt = cm_query("SELECT currency::text, quote_currency::text, valid_from, rate"
				  "  FROM salesmgmt.currency_rate WHERE currency = $1 OR quote_currency = $1"
				  " ORDER BY 1, 2, 3",
				  1, types, values, NULL, false, SPI_OK_SELECT, &n);
	old = MemoryContextSwitchTo(run->run_cxt);
	run->cur = palloc(sizeof(CmCurrency));
	run->ncur = 0;
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		char	   *from = TextDatumGetCString(cm_col(tt, i, 1, &isnull));
		char	   *quote = TextDatumGetCString(cm_col(tt, i, 2, &isnull));
		bool		direct = strcmp(quote, run->currency) == 0;
		CmCurrency *c = cm_currency(run, direct ? from : quote, true);
		int		   *cnt = direct ? &c->ndirect : &c->nreverse;
		DateADT   **days = direct ? &c->direct_from : &c->reverse_from;
		Numeric   **rates = direct ? &c->direct_rate : &c->reverse_rate;

		*days = *cnt == 0 ? palloc(sizeof(DateADT) * n) : *days;
		*rates = *cnt == 0 ? palloc(sizeof(Numeric) * n) : *rates;
		(*days)[*cnt] = DatumGetDateADT(cm_col(tt, i, 3, &isnull));
		(*rates)[*cnt] = cm_col_numeric(tt, i, 4);
		(*cnt)++;
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);
}

/* ----------------------------------------------------------------------
 * Loading the inputs
 * ----------------------------------------------------------------------
 */

static void
cm_load_spiffs(CmRun *run)
{
	SPITupleTable *tt;
	uint64		n,
				i;
	MemoryContext old;
	Datum	   *params = NULL;
	int			nparams = 0,
				maxparams = 0;
	StringInfoData sel;

	tt = cm_query("SELECT spiff_id, plan_id, condition, amount, rate,"
				  "       coalesce(valid_from, '-infinity'), coalesce(valid_to, 'infinity')"
				  "  FROM salesmgmt.commission_spiff ORDER BY spiff_id",
				  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	old = MemoryContextSwitchTo(run->run_cxt);
	run->nspiffs = (int) n;
	run->spiffs = palloc0(sizeof(CmSpiff) * Max(n, 1));
	run->plan_nspiffs = palloc0(sizeof(int) * Max(run->nplans, 1));
	run->plan_spiffs = palloc0(sizeof(int *) * Max(run->nplans, 1));

	/*
	 * The match column: for each SPIFF whether to_jsonb(deal) @> condition,
	 * key by key without building the row's JSON: extra by containment,
	 * other columns by equality of their JSON values.  The values are
	 * parameters ($3[k]); the column names come from the catalog check.
	 */
	initStringInfo(&sel);
	appendStringInfoString(&sel, n == 0 ? "NULL::bool[]" : "ARRAY[");
	for (i = 0; i < n; i++)
	{
		CmSpiff    *sp = &run->spiffs[i];
		bool		isnull;
		Jsonb	   *cond;
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *key = NULL;
		int			pi;

		sp->spiff_id = cm_col_int8(tt, i, 1, 0);
		sp->plan = cm_plan_by_id(run, cm_col_int8(tt, i, 2, 0));
		cond = DatumGetJsonbPCopy(cm_col(tt, i, 3, &isnull));
		cm_validate_spiff_condition(cond);
		sp->amount = cm_col_numeric(tt, i, 4);
		sp->rate = cm_col_numeric(tt, i, 5);
		sp->from = DatumGetDateADT(cm_col(tt, i, 6, &isnull));
		sp->to = DatumGetDateADT(cm_col(tt, i, 7, &isnull));

		appendStringInfoString(&sel, i == 0 ? "(true" : ", (true");
		it = JsonbIteratorInit(&cond->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				key = pnstrdup(v.val.string.val, v.val.string.len);
			else if (tok == WJB_VALUE)
			{
				CM_APPEND(run->run_cxt, params, nparams, maxparams);
				params[nparams - 1] = JsonbPGetDatum(JsonbValueToJsonb(&v));
				if (strcmp(key, "extra") == 0)
					appendStringInfo(&sel, " AND d.extra @> $3[%d]", nparams);
				else
					appendStringInfo(&sel, " AND to_jsonb(d.%s) @> $3[%d]", quote_identifier(key), nparams);
			}
		}
		appendStringInfoChar(&sel, ')');
		pi = cm_plan_index(run, sp->plan);
		run->plan_spiffs[pi] = run->plan_nspiffs[pi] == 0
			? palloc(sizeof(int) * n) : run->plan_spiffs[pi];
		run->plan_spiffs[pi][run->plan_nspiffs[pi]++] = (int) i;
	}
	if (n > 0)
		appendStringInfoChar(&sel, ']');
	run->spiff_select = sel.data;
	run->spiff_params = PointerGetDatum(construct_array(params, nparams, JSONBOID, -1, false, TYPALIGN_INT));
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);
}

static void
cm_load_reps(CmRun *run)
{
	SPITupleTable *tt;
	uint64		n,
				i;
	HTAB	   *teams;
	typedef struct
	{
		int64		team_id;
		int64		parent;
		int64		manager;
	}			CmTeam;
	HASH_SEQ_STATUS seq;
	CmRep	   *rep;
	MemoryContext old;

	teams = cm_hash("salesmgmt commission teams", sizeof(int64), sizeof(CmTeam), 256, run->tmp_cxt);
	tt = cm_query("SELECT team_id, parent_team_id, manager_rep_id FROM salesmgmt.team",
				  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	for (i = 0; i < n; i++)
	{
		int64		id = cm_col_int8(tt, i, 1, 0);
		CmTeam	   *t = hash_search(teams, &id, HASH_ENTER, NULL);

		t->parent = cm_col_int8(tt, i, 2, 0);
		t->manager = cm_col_int8(tt, i, 3, 0);
	}
	SPI_freetuptable(tt);

	tt = cm_query("SELECT rep_id, team_id FROM salesmgmt.rep",
				  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	run->reps = cm_hash("salesmgmt commission reps", sizeof(int64), sizeof(CmRep), (long) n, run->run_cxt);
	for (i = 0; i < n; i++)
	{
		int64		id = cm_col_int8(tt, i, 1, 0);

		rep = hash_search(run->reps, &id, HASH_ENTER, NULL);
		memset(((char *) rep) + sizeof(int64), 0, sizeof(CmRep) - sizeof(int64));
		rep->team_id = cm_col_int8(tt, i, 2, 0);
	}
	SPI_freetuptable(tt);

	/* managers above each rep, walking up the team tree */
	old = MemoryContextSwitchTo(run->run_cxt);
	hash_seq_init(&seq, run->reps);
	while ((rep = hash_seq_search(&seq)) != NULL)
	{
		int64		team = rep->team_id;
		int			depth = 0;
		CmRep	   *chain[64];

		while (team != 0 && depth++ < 1000)
		{
			CmTeam	   *t = hash_search(teams, &team, HASH_FIND, NULL);

			if (t == NULL)
				break;
			if (t->manager != 0 && t->manager != rep->rep_id)
			{
				CmRep	   *m = hash_search(run->reps, &t->manager, HASH_FIND, NULL);
				int			k;
				bool		seen = false;

				for (k = 0; k < rep->nmanagers; k++)
					seen |= (chain[k] == m);
				if (m != NULL && !seen && rep->nmanagers < (int) lengthof(chain))
					chain[rep->nmanagers++] = m;
			}
			team = t->parent;
		}
		if (rep->nmanagers > 0)
		{
			rep->managers = palloc(sizeof(CmRep *) * rep->nmanagers);
			memcpy(rep->managers, chain, sizeof(CmRep *) * rep->nmanagers);
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(run->tmp_cxt);
}

static void
cm_load_assignments(CmRun *run)
{
	SPITupleTable *tt;
	uint64		n,
				i;

	tt = cm_query("SELECT rep_id, plan_id, valid_from, coalesce(valid_to, 'infinity')"
				  "  FROM salesmgmt.commission_assignment ORDER BY rep_id, valid_from",
				  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	for (i = 0; i < n; i++)
	{
		CmRep	   *rep = cm_rep(run, cm_col_int8(tt, i, 1, 0));
		CmAssign   *a;
		bool		isnull;

		CM_APPEND(run->run_cxt, rep->assign, rep->nassign, rep->maxassign);
		a = &rep->assign[rep->nassign - 1];
		a->plan = cm_plan_by_id(run, cm_col_int8(tt, i, 2, 0));
		a->from = DatumGetDateADT(cm_col(tt, i, 3, &isnull));
		a->to = DatumGetDateADT(cm_col(tt, i, 4, &isnull));
		if (a->from <= run->end && a->to >= run->start)
		{
			DateADT		ps,
						pe;

			rep->listed = true;
			if (a->plan->payment_basis)
				run->any_payment = true;
			else
				run->any_booking = true;
			cm_plan_period(a->plan->period, run->start, &ps, &pe);
			if (ps != run->start)
				run->aligned = false;
			cm_plan_period(a->plan->period, run->end, &ps, &pe);
			if (pe != run->end)
				run->aligned = false;
		}
		else if (run->nfinal > 0)
		{
			/* corrections of finalized periods may need any plan's events */
			if (a->plan->payment_basis)
				run->any_payment = true;
			else
				run->any_booking = true;
		}
	}
	SPI_freetuptable(tt);
}

/* quotas, converted to the reporting currency at their first day */
static void
cm_load_quotas(CmRun *run)
{
	SPITupleTable *tt;
	uint64		n,
				i;
	MemoryContext old;

	tt = cm_query("SELECT rep_id, period_start, period_end, amount, currency::text"
				  "  FROM salesmgmt.quota WHERE rep_id IS NOT NULL ORDER BY rep_id, period_start",
				  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	old = MemoryContextSwitchTo(run->run_cxt);
	for (i = 0; i < n; i++)
	{
		CmRep	   *rep = cm_rep(run, cm_col_int8(tt, i, 1, 0));
		CmQuota    *q;
		bool		isnull;
		char	   *code;

		if (rep->nassign == 0)
			continue;			/* no plan, no tiers: its quota is not needed */
		CM_APPEND(run->run_cxt, rep->quota, rep->nquota, rep->maxquota);
		q = &rep->quota[rep->nquota - 1];
		q->start = DatumGetDateADT(cm_col(tt, i, 2, &isnull));
		q->end = DatumGetDateADT(cm_col(tt, i, 3, &isnull));
		code = TextDatumGetCString(cm_col(tt, i, 5, &isnull));
		q->amount = cm_convert(run, cm_col_numeric(tt, i, 4), code, q->start);
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);
}

/*
 * The quota of a rep for the days [from, to]: the rep's quota rows that
 * overlap them, each prorated by the days of overlap and rounded to cents.
 * NULL if no row overlaps.
 */
static Numeric
cm_quota_for(CmRep *rep, DateADT from, DateADT to)
{
	Numeric		sum = NULL;
	int			i;

	for (i = 0; i < rep->nquota; i++)
	{
		CmQuota    *q = &rep->quota[i];
		int			overlap = Min(q->end, to) - Max(q->start, from) + 1;
		int			days = q->end - q->start + 1;
		Numeric		part;

		if (overlap <= 0)
			continue;
		part = q->amount;
		if (overlap < days)
			part = sm_numeric_div(sm_numeric_mul(part, int64_to_numeric(overlap)),
								  int64_to_numeric(days));
		part = sm_numeric_round(part, 2);
		sum = sum == NULL ? part : sm_numeric_add(sum, part);
	}
	return sum;
}

static void
cm_load_draws(CmRun *run)
{
	Oid			types[2] = {DATEOID, DATEOID};
	Datum		values[2] = {DateADTGetDatum(run->start), DateADTGetDatum(run->end)};
	SPITupleTable *tt;
	uint64		n,
				i;
	MemoryContext old = CurrentMemoryContext;

	tt = cm_query("SELECT draw_id, rep_id, amount, recoverable FROM salesmgmt.commission_draw"
				  " WHERE period_end BETWEEN $1 AND $2 ORDER BY rep_id, period_end, draw_id",
				  2, types, values, NULL, false, SPI_OK_SELECT, &n);
	MemoryContextSwitchTo(run->run_cxt);
	for (i = 0; i < n; i++)
	{
		CmRep	   *rep = cm_rep(run, cm_col_int8(tt, i, 2, 0));
		CmDraw	   *d;
		bool		isnull;

		CM_APPEND(run->run_cxt, rep->draws, rep->ndraws, rep->maxdraws);
		d = &rep->draws[rep->ndraws - 1];
		d->draw_id = cm_col_int8(tt, i, 1, 0);
		d->amount = cm_col_numeric(tt, i, 3);
		d->recoverable = DatumGetBool(cm_col(tt, i, 4, &isnull));
		rep->listed = true;
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);

	/* recoverable draws advanced and not yet recovered, by earlier runs */
	tt = cm_query("SELECT rep_id, sum(amount) FROM salesmgmt.commission_line"
				  " WHERE kind = 'draw' AND recoverable GROUP BY rep_id HAVING sum(amount) > 0",
				  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	MemoryContextSwitchTo(run->run_cxt);
	for (i = 0; i < n; i++)
	{
		CmRep	   *rep = cm_rep(run, cm_col_int8(tt, i, 1, 0));

		rep->draw_balance = cm_col_numeric(tt, i, 2);
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);
}

/*
 * Credit of plan periods booked by other runs: what an earlier run of a
 * plan period that this run only partly covers credited (a quarterly plan
 * run monthly), and the credit of finalized plan periods that corrections
 * continue from.
 */
static void
cm_load_prior(CmRun *run)
{
	Oid			types[2] = {DATEOID, TIMESTAMPTZOID};
	Datum		values[2] = {DateADTGetDatum(run->start), TimestampTzGetDatum(run->start_ts)};
	SPITupleTable *tt;
	uint64		n,
				i;

	run->prior = cm_hash("salesmgmt commission prior credit", sizeof(CmPriorKey), sizeof(CmPrior),
						 256, run->run_cxt);
	if (run->aligned && run->nfinal == 0)
		return;
	tt = cm_query("SELECT l.rep_id, l.plan_id, l.plan_period_start, sum(l.credit)"
				  "  FROM salesmgmt.commission_line l"
				  " WHERE l.kind IN ('earned', 'adjustment') AND l.spiff_id IS NULL"
				  "   AND l.source_rep_id IS NULL AND l.credit IS NOT NULL"
				  "   AND ((l.plan_period_start < $1 AND l.plan_period_end >= $1 AND l.credited_at < $2)"
				  "        OR EXISTS (SELECT 1 FROM salesmgmt.commission_period f"
				  "                    WHERE f.status = 'final' AND l.credited_at >= f.period_start"
				  "                      AND l.credited_at < f.period_end + 1))"
				  " GROUP BY 1, 2, 3",
				  2, types, values, NULL, false, SPI_OK_SELECT, &n);
	for (i = 0; i < n; i++)
	{
		CmPriorKey	key;
		CmPrior    *p;
		bool		isnull;

		memset(&key, 0, sizeof(key));
		key.rep_id = cm_col_int8(tt, i, 1, 0);
		key.plan_id = cm_col_int8(tt, i, 2, 0);
		key.pstart = DatumGetDateADT(cm_col(tt, i, 3, &isnull));
		p = hash_search(run->prior, &key, HASH_ENTER, NULL);
		p->credit = cm_copy(run->run_cxt, DatumGetNumeric(cm_col(tt, i, 4, &isnull)));
	}
	SPI_freetuptable(tt);
}

/* ----------------------------------------------------------------------
 * Writing lines.  A run writes millions of lines, so they are written the
 * way COPY writes rows: a batch of slots goes to table_multi_insert, then
 * each row's index entries are made, after the table's NOT NULL and CHECK
 * constraints were checked.  Columns the run does not set get their
 * defaults (line_id, status, created_at).  Row-level security and
 * privileges are checked once, as the role running the function; INSERT
 * triggers on the ledger are refused rather than silently skipped.
 * ----------------------------------------------------------------------
 */

static void
cm_init_writer(CmRun *run)
{
	MemoryContext old = MemoryContextSwitchTo(run->run_cxt);
	Oid			relid = sm_relation_oid("commission_line");
	CmWriter   *w = &run->writer;
	TupleDesc	desc;
	TriggerDesc *trig;
	RangeTblEntry *rte;
	AclResult	aclresult;
	int			c,
				a;
	bool		set[MaxHeapAttributeNumber];

	w->rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(w->rel);
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, RelationGetRelationName(w->rel));
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("run_commissions cannot write salesmgmt.commission_line under row-level security"),
				 errhint("The function must be owned by a role that bypasses row-level security, as the extension's owner does.")));
	trig = w->rel->trigdesc;
	if (trig != NULL && (trig->trig_insert_before_row || trig->trig_insert_after_row ||
						 trig->trig_insert_instead_row || trig->trig_insert_before_statement ||
						 trig->trig_insert_after_statement))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("salesmgmt.commission_line must not have INSERT triggers"),
				 errdetail("run_commissions writes the ledger in bulk, without firing them."),
				 errhint("React to runs with triggers on salesmgmt.commission_period, or read the lines after the run.")));

	w->estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = w->rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	sm_init_range_table(w->estate, rte);
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, w->rel, 1, NULL, 0);
	ExecOpenIndices(w->rri, false);
	w->bistate = GetBulkInsertState();

	memset(set, 0, sizeof(set));
	for (c = 0; c < LC_NCOLS; c++)
	{
		w->attno[c] = get_attnum(relid, cm_cols[c].name) - 1;
		if (w->attno[c] < 0)
			elog(ERROR, "column \"%s\" of salesmgmt.commission_line not found", cm_cols[c].name);
		w->typmod[c] = TupleDescAttr(desc, w->attno[c])->atttypmod;
		set[w->attno[c]] = true;
	}
	w->period_start = get_attnum(relid, "period_start") - 1;
	w->period_end = get_attnum(relid, "period_end") - 1;
	w->currency = get_attnum(relid, "currency") - 1;
	set[w->period_start] = set[w->period_end] = set[w->currency] = true;
	w->currency_datum = DirectFunctionCall3(bpcharin, CStringGetDatum(run->currency),
											ObjectIdGetDatum(InvalidOid),
											Int32GetDatum(TupleDescAttr(desc, w->currency)->atttypmod));
	w->defaults = palloc0(sizeof(ExprState *) * desc->natts);
	for (a = 0; a < desc->natts; a++)
	{
		Node	   *expr;

		if (set[a] || TupleDescAttr(desc, a)->attisdropped)
			continue;
		expr = build_column_default(w->rel, a + 1);
		if (expr != NULL)
			w->defaults[a] = ExecInitExpr(expression_planner((Expr *) expr), NULL);
	}
	w->maxslots = CM_FLUSH_AT * 2;
	w->slots = palloc0(sizeof(TupleTableSlot *) * w->maxslots);

	for (c = 0; c < CK_NKINDS; c++)
		run->kind_text[c] = CStringGetTextDatum(cm_kind_names[c]);
	for (c = 1; c < CR_NREASONS; c++)
		run->reason_text[c] = CStringGetTextDatum(cm_reason_names[c]);
	MemoryContextSwitchTo(old);
}

static void
cm_flush(CmRun *run)
{
	CmWriter   *w = &run->writer;
	MemoryContext caller = CurrentMemoryContext;
	int			i;

	if (w->nused == 0)
		return;
	MemoryContextSwitchTo(run->line_cxt);
	w->estate->es_output_cid = GetCurrentCommandId(true);
	if (w->rel->rd_att->constr != NULL)
		for (i = 0; i < w->nused; i++)
			ExecConstraints(w->rri, w->slots[i], w->estate);
	table_multi_insert(w->rel, w->slots, w->nused, w->estate->es_output_cid, 0, w->bistate);
	for (i = 0; i < w->nused; i++)
	{
		if (w->rri->ri_NumIndices > 0)
			sm_insert_index_tuples(w->rri, w->slots[i], w->estate);
		ExecClearTuple(w->slots[i]);
		ResetPerTupleExprContext(w->estate);
	}
	run->nlines += w->nused;
	w->nused = 0;
	MemoryContextReset(run->line_cxt);
	MemoryContextSwitchTo(caller);
}

static void
cm_close_writer(CmRun *run)
{
	CmWriter   *w = &run->writer;
	int			i;

	cm_flush(run);
	FreeBulkInsertState(w->bistate);
	ExecCloseIndices(w->rri);
	for (i = 0; i < w->maxslots; i++)
		if (w->slots[i] != NULL)
			ExecDropSingleTupleTableSlot(w->slots[i]);
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
}

/* a line into the next slot of the batch; datums must live in line_cxt or
 * longer */
static void
cm_write(CmRun *run, Datum *v, bool *n)
{
	CmWriter   *w = &run->writer;
	TupleTableSlot *slot;
	TupleDesc	desc = RelationGetDescr(w->rel);
	ExprContext *econtext = GetPerTupleExprContext(w->estate);
	int			c,
				a;

	if (w->nused >= w->maxslots)
	{
		MemoryContext old = MemoryContextSwitchTo(run->run_cxt);

		w->slots = repalloc(w->slots, sizeof(TupleTableSlot *) * w->maxslots * 2);
		memset(w->slots + w->maxslots, 0, sizeof(TupleTableSlot *) * w->maxslots);
		w->maxslots *= 2;
		MemoryContextSwitchTo(old);
	}
	if (w->slots[w->nused] == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(run->run_cxt);

		w->slots[w->nused] = table_slot_create(w->rel, NULL);
		MemoryContextSwitchTo(old);
	}
	slot = w->slots[w->nused++];
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * desc->natts);
	for (c = 0; c < LC_NCOLS; c++)
	{
		a = w->attno[c];
		slot->tts_isnull[a] = n[c];
		slot->tts_values[a] = v[c];
		/* numeric(p,s) columns: what an INSERT's assignment cast would do */
		if (!n[c] && w->typmod[c] >= 0 && cm_cols[c].type == NUMERICOID)
			slot->tts_values[a] = DirectFunctionCall2(numeric, v[c], Int32GetDatum(w->typmod[c]));
	}
	slot->tts_values[w->period_start] = DateADTGetDatum(run->start);
	slot->tts_isnull[w->period_start] = false;
	slot->tts_values[w->period_end] = DateADTGetDatum(run->end);
	slot->tts_isnull[w->period_end] = false;
	slot->tts_values[w->currency] = w->currency_datum;
	slot->tts_isnull[w->currency] = false;
	for (a = 0; a < desc->natts; a++)
		if (w->defaults[a] != NULL)
			slot->tts_values[a] = ExecEvalExpr(w->defaults[a], econtext, &slot->tts_isnull[a]);
	ExecStoreVirtualTuple(slot);
}

/* note a line about a watched (refunded) deal, for refund clawbacks */
static void
cm_record(CmRun *run, CmRep *rep, CmPlan *plan, CmKind kind, Datum *v, bool *n, Numeric amount)
{
	int64		deal_id = DatumGetInt64(v[LC_DEAL]);
	CmWatch    *w = hash_search(run->watch, &deal_id, HASH_FIND, NULL);
	int			comp = !n[LC_SPIFF] ? 1 : !n[LC_SOURCE] ? 2 : 0;
	int64		aux = comp == 1 ? DatumGetInt64(v[LC_SPIFF]) : comp == 2 ? DatumGetInt64(v[LC_SOURCE]) : 0;
	CmComp	   *c = NULL;
	int			i;
	MemoryContext old;

	if (w == NULL || plan == NULL || plan->payment_basis)
		return;
	old = MemoryContextSwitchTo(run->run_cxt);
	for (i = 0; i < w->ncomps; i++)
		if (w->comps[i].rep_id == rep->rep_id && w->comps[i].comp == comp && w->comps[i].aux == aux)
			c = &w->comps[i];
	if (c == NULL)
	{
		CM_APPEND(run->run_cxt, w->comps, w->ncomps, w->maxcomps);
		c = &w->comps[w->ncomps - 1];
		memset(c, 0, sizeof(*c));
		c->rep_id = rep->rep_id;
		c->comp = comp;
		c->aux = aux;
	}
	c->plan = plan;
	if (!n[LC_CREDITED_AT] && DatumGetTimestampTz(v[LC_CREDITED_AT]) > c->at)
		c->at = DatumGetTimestampTz(v[LC_CREDITED_AT]);
	cm_accum(run->run_cxt, &c->amount_net, amount);
	if (kind != CK_CLAWBACK)
		cm_accum(run->run_cxt, &c->amount_gross, amount);
	if (comp == 0 && !n[LC_CREDIT])
	{
		cm_accum(run->run_cxt, &c->credit_net, DatumGetNumeric(v[LC_CREDIT]));
		if (kind != CK_CLAWBACK)
			cm_accum(run->run_cxt, &c->credit_gross, DatumGetNumeric(v[LC_CREDIT]));
	}
	MemoryContextSwitchTo(old);
}

/*
 * Add a line to the buffer.  Every datum must live in line_cxt or longer;
 * the rep, kind and amount are set here.
 */
static void
cm_emit(CmRun *run, CmRep *rep, CmPlan *plan, CmKind kind, Datum *v, bool *n, Numeric amount)
{
	CmSum		sum;

	v[LC_REP] = Int64GetDatum(rep->rep_id);
	n[LC_REP] = false;
	v[LC_KIND] = run->kind_text[kind];
	n[LC_KIND] = false;
	v[LC_AMOUNT] = NumericGetDatum(amount);
	n[LC_AMOUNT] = false;
	if (plan != NULL)
	{
		v[LC_PLAN] = Int64GetDatum(plan->plan_id);
		n[LC_PLAN] = false;
	}
	cm_write(run, v, n);

	switch (kind)
	{
		case CK_EARNED:
			sum = CS_EARNED;
			break;
		case CK_SPIFF:
			sum = CS_SPIFFS;
			break;
		case CK_OVERRIDE:
			sum = CS_OVERRIDES;
			break;
		case CK_CLAWBACK:
			sum = CS_CLAWBACKS;
			break;
		case CK_ADJUSTMENT:
			sum = CS_ADJUSTMENTS;
			break;
		default:
			sum = cm_sign(amount) >= 0 ? CS_DRAWS : CS_RECOVERY;
			break;
	}
	cm_accum(run->run_cxt, &rep->sums[sum], amount);
	rep->listed = true;
	if (run->recording && !n[LC_DEAL] && kind != CK_DRAW)
		cm_record(run, rep, plan, kind, v, n, amount);
}

static void
cm_line_init(Datum *v, bool *n)
{
	int			c;

	for (c = 0; c < LC_NCOLS; c++)
	{
		v[c] = (Datum) 0;
		n[c] = true;
	}
}

#define CM_SET(v, n, col, datum) ((v)[col] = (datum), (n)[col] = false)

/* the columns that say which credited event a line is about */
static void
cm_line_event(Datum *v, bool *n, CmEvent *ev)
{
	CM_SET(v, n, LC_DEAL, Int64GetDatum(ev->deal_id));
	if (ev->payment_id != 0)
		CM_SET(v, n, LC_PAYMENT, Int64GetDatum(ev->payment_id));
	CM_SET(v, n, LC_CREDITED_AT, TimestampTzGetDatum(ev->at));
	if (ev->share != NULL)
		CM_SET(v, n, LC_SHARE, NumericGetDatum(ev->share));
}

/* ----------------------------------------------------------------------
 * Tier states and the lines of credit
 * ----------------------------------------------------------------------
 */

static CmState *
cm_state(CmRun *run, CmRep *rep, CmPlan *plan, DateADT day)
{
	DateADT		ps,
				pe;
	CmState    *st;
	CmPriorKey	key;
	CmPrior    *prior;
	MemoryContext old;
	int			k;

	cm_plan_period(plan->period, day, &ps, &pe);
	for (st = rep->states; st != NULL; st = st->next)
		if (st->plan == plan && st->pstart == ps)
			return st;

	old = MemoryContextSwitchTo(run->rep_cxt);
	st = palloc0(sizeof(CmState));
	st->plan = plan;
	st->pstart = ps;
	st->pend = pe;
	st->quota = cm_quota_for(rep, ps, pe);
	cm_tiering_init(&st->t, plan, st->quota);
	memset(&key, 0, sizeof(key));
	key.rep_id = rep->rep_id;
	key.plan_id = plan->plan_id;
	key.pstart = ps;
	prior = hash_search(run->prior, &key, HASH_FIND, NULL);
	/* the running values are owned by the state: cm_set frees them */
	st->credit = cm_copy(run->rep_cxt, prior ? prior->credit : cm_zero());
	k = cm_tier_of(&st->t, st->credit);
	st->earned = cm_copy(run->rep_cxt, cm_earnings(&st->t, k, st->credit));
	st->paid = cm_copy(run->rep_cxt, cm_paid(plan, st->earned));
	st->att = st->t.quota ? sm_numeric_round(sm_numeric_div(st->credit, st->t.quota), 4) : NULL;
	st->next = rep->states;
	rep->states = st;
	MemoryContextSwitchTo(old);
	return st;
}

/*
 * Move the credit of a plan period by delta and write the line: earned
 * for a credited event, adjustment for a correction.  Runs in line_cxt.
 */
static void
cm_credit_line(CmRun *run, CmRep *rep, CmState *st, CmEvent *ev, Numeric delta,
			   CmKind kind, CmReason reason)
{
	CmPlan	   *plan = st->plan;
	CmTiering  *t = &st->t;
	Datum		v[LC_NCOLS];
	bool		n[LC_NCOLS];
	Numeric		after = sm_numeric_add(st->credit, delta);
	int			kb = cm_tier_of(t, st->credit);
	int			ka = cm_tier_of(t, after);
	Numeric		earned = cm_earnings(t, ka, after);
	Numeric		paid = cm_paid(plan, earned);
	Numeric		amount = sm_numeric_sub(paid, st->paid);
	Numeric		att = t->quota ? sm_numeric_round(sm_numeric_div(after, t->quota), 4) : NULL;

	cm_line_init(v, n);
	cm_line_event(v, n, ev);
	CM_SET(v, n, LC_PP_START, DateADTGetDatum(st->pstart));
	CM_SET(v, n, LC_PP_END, DateADTGetDatum(st->pend));
	CM_SET(v, n, LC_CREDIT, NumericGetDatum(delta));
	if (st->quota)
		CM_SET(v, n, LC_QUOTA, NumericGetDatum(cm_copy(run->line_cxt, st->quota)));
	if (att)
	{
		CM_SET(v, n, LC_ATT_BEFORE, NumericGetDatum(cm_copy(run->line_cxt, st->att)));
		CM_SET(v, n, LC_ATT_AFTER, NumericGetDatum(att));
	}
	if (t->nt > 0)
	{
		CM_SET(v, n, LC_TIER, Int32GetDatum(ka + 1));
		CM_SET(v, n, LC_RATE, NumericGetDatum(plan->tiers[ka].rate));
		if (ka != kb)
			CM_SET(v, n, LC_TIERS, JsonbPGetDatum(cm_tiers_json(t, st->credit, after, kb, ka)));
	}
	CM_SET(v, n, LC_EARNED_BEFORE, NumericGetDatum(cm_copy(run->line_cxt, st->earned)));
	CM_SET(v, n, LC_EARNED_AFTER, NumericGetDatum(earned));
	CM_SET(v, n, LC_CAPPED, BoolGetDatum(plan->cap != NULL && sm_numeric_cmp(earned, plan->cap) > 0));
	if (reason != CR_NONE)
		CM_SET(v, n, LC_REASON, run->reason_text[reason]);
	cm_emit(run, rep, plan, kind, v, n, amount);

	cm_set(run->rep_cxt, &st->credit, after);
	cm_set(run->rep_cxt, &st->earned, earned);
	cm_set(run->rep_cxt, &st->paid, paid);
	if (att)
		cm_set(run->rep_cxt, &st->att, att);
}

/* credit of an event: amount times share, in the reporting currency */
static Numeric
cm_event_credit(CmRun *run, CmEvent *ev)
{
	Numeric		x = cm_convert(run, sm_numeric_mul(ev->amount, ev->share), ev->currency, ev->day);

	return ev->sign < 0 ? cm_neg(x) : x;
}

/*
 * What a SPIFF pays on an event, or NULL if it does not apply.  Flat
 * SPIFFs pay amount times share (on payment basis also times the part of
 * the deal the payment is), rate SPIFFs rate times credit.
 */
static Numeric
cm_spiff_amount(CmSpiff *sp, CmEvent *ev, Numeric credit, Numeric *base, Numeric *rate)
{
	if (sp->rate != NULL)
	{
		*base = credit;
		*rate = sp->rate;
	}
	else
	{
		*base = sp->amount;
		*rate = ev->share;
		if (ev->payment)
		{
			if (ev->fraction == NULL)
				return NULL;
			*rate = sm_numeric_mul(*rate, ev->fraction);
			if (ev->sign < 0)
				*rate = cm_neg(*rate);
		}
	}
	return sm_numeric_round(sm_numeric_mul(*base, *rate), 2);
}

static bool
cm_spiff_applies(CmRun *run, int idx, CmEvent *ev)
{
	CmSpiff    *sp = &run->spiffs[idx];

	return ev->spiff_match != NULL && ev->spiff_match[idx] &&
		sp->from <= ev->day && ev->day <= sp->to;
}

/* overrides of the managers above rep on credit (kind override, or
 * adjustment when the credit is a correction) */
static void
cm_overrides(CmRun *run, CmRep *rep, CmEvent *ev, Numeric *credit, CmKind kind, CmReason reason)
{
	int			i;

	for (i = 0; i < rep->nmanagers; i++)
	{
		CmRep	   *m = rep->managers[i];
		CmPlan	   *mp = cm_plan_at(m, ev->day);
		Datum		v[LC_NCOLS];
		bool		n[LC_NCOLS];
		Numeric		amount;
		DateADT		ps,
					pe;

		if (mp == NULL || mp->override_rate == NULL || mp->payment_basis != ev->payment)
			continue;
		if (*credit == NULL)
			*credit = cm_event_credit(run, ev);
		amount = sm_numeric_round(sm_numeric_mul(*credit, mp->override_rate), 2);
		if (cm_sign(amount) == 0)
			continue;
		cm_line_init(v, n);
		cm_line_event(v, n, ev);
		cm_plan_period(mp->period, ev->day, &ps, &pe);
		CM_SET(v, n, LC_PP_START, DateADTGetDatum(ps));
		CM_SET(v, n, LC_PP_END, DateADTGetDatum(pe));
		CM_SET(v, n, LC_SOURCE, Int64GetDatum(rep->rep_id));
		CM_SET(v, n, LC_BASE, NumericGetDatum(*credit));
		CM_SET(v, n, LC_RATE, NumericGetDatum(mp->override_rate));
		if (reason != CR_NONE)
			CM_SET(v, n, LC_REASON, run->reason_text[reason]);
		cm_emit(run, m, mp, kind, v, n, amount);
	}
}

/* a credited event of the period: earned line, SPIFFs, overrides */
static void
cm_credit_event(CmRun *run, CmRep *rep, CmEvent *ev)
{
	CmPlan	   *plan = cm_plan_at(rep, ev->day);
	Numeric		credit = NULL;

	if (plan != NULL && plan->payment_basis == ev->payment)
	{
		int			pi = cm_plan_index(run, plan);
		int			i;

		credit = cm_event_credit(run, ev);
		cm_credit_line(run, rep, cm_state(run, rep, plan, ev->day), ev, credit, CK_EARNED, CR_NONE);
		cm_accum(run->run_cxt, &rep->sums[CS_CREDIT], credit);
		for (i = 0; i < run->plan_nspiffs[pi]; i++)
		{
			int			idx = run->plan_spiffs[pi][i];
			Numeric		base,
						rate,
						amount;
			Datum		v[LC_NCOLS];
			bool		n[LC_NCOLS];

			if (!cm_spiff_applies(run, idx, ev))
				continue;
			amount = cm_spiff_amount(&run->spiffs[idx], ev, credit, &base, &rate);
			if (amount == NULL || cm_sign(amount) == 0)
				continue;
			cm_line_init(v, n);
			cm_line_event(v, n, ev);
			CM_SET(v, n, LC_SPIFF, Int64GetDatum(run->spiffs[idx].spiff_id));
			CM_SET(v, n, LC_BASE, NumericGetDatum(base));
			CM_SET(v, n, LC_RATE, NumericGetDatum(rate));
			cm_emit(run, rep, plan, CK_SPIFF, v, n, amount);
		}
	}
	cm_overrides(run, rep, ev, &credit, CK_OVERRIDE, CR_NONE);
}

/* ----------------------------------------------------------------------
 * Reading credited events
 * ----------------------------------------------------------------------
 */

/*
 * The credited events: won deals (booking) and payments and refunds
 * (payment basis), one row per credited rep (split), with the SPIFF match
 * column.  Either of the period ($1, $2) ordered by rep and time, or of
 * the finalized periods ordered by rep, deal and payment.
 */
static char *
cm_events_sql(CmRun *run, bool finalized)
{
	StringInfoData q;

	initStringInfo(&q);
	if (run->any_booking)
	{
		appendStringInfo(&q,
						 "SELECT coalesce(s.rep_id, d.owner_rep_id), d.deal_id, NULL::int8, d.closed_at,"
						 "       d.closed_at::date, d.amount, d.currency::text, coalesce(s.share, 1::numeric),"
						 "       1, NULL::numeric, %s"
						 "  FROM salesmgmt.deal d"
						 "  JOIN salesmgmt.stage st ON st.stage_id = d.stage_id AND st.outcome = 'won'"
						 "  LEFT JOIN salesmgmt.deal_split s ON s.deal_id = d.deal_id"
						 " WHERE %s",
						 run->spiff_select,
						 finalized ?
						 "EXISTS (SELECT 1 FROM salesmgmt.commission_period f WHERE f.status = 'final'"
						 " AND d.closed_at >= f.period_start AND d.closed_at < f.period_end + 1)" :
						 "d.closed_at >= $1 AND d.closed_at < $2");
	}
	if (run->any_payment)
	{
		if (run->any_booking)
			appendStringInfoString(&q, " UNION ALL ");
		appendStringInfo(&q,
						 "SELECT coalesce(s.rep_id, d.owner_rep_id), p.deal_id, p.payment_id, p.paid_at,"
						 "       p.paid_at::date, p.amount, p.currency::text, coalesce(s.share, 1::numeric),"
						 "       CASE p.kind WHEN 'refund' THEN -1 ELSE 1 END,"
						 "       CASE WHEN d.amount > 0 THEN (CASE WHEN p.currency = d.currency THEN p.amount"
						 "            ELSE salesmgmt.convert_amount(p.amount, p.currency, d.currency, p.paid_at::date)"
						 "            END) / d.amount END, %s"
						 "  FROM salesmgmt.payment p"
						 "  JOIN salesmgmt.deal d ON d.deal_id = p.deal_id"
						 "  LEFT JOIN salesmgmt.deal_split s ON s.deal_id = d.deal_id"
						 " WHERE %s",
						 run->spiff_select,
						 finalized ?
						 "EXISTS (SELECT 1 FROM salesmgmt.commission_period f WHERE f.status = 'final'"
						 " AND p.paid_at >= f.period_start AND p.paid_at < f.period_end + 1)" :
						 "p.paid_at >= $1 AND p.paid_at < $2");
	}
	appendStringInfoString(&q, finalized ? " ORDER BY 1, 2, 3 NULLS FIRST" : " ORDER BY 1, 4, 2, 3 NULLS FIRST");
	return q.data;
}

#define CM_EVENT_COLS 11

static Portal
cm_events_open(CmRun *run, bool finalized)
{
	Oid			types[3] = {TIMESTAMPTZOID, TIMESTAMPTZOID, JSONBARRAYOID};
	Datum		values[3] = {TimestampTzGetDatum(run->start_ts), TimestampTzGetDatum(run->end_ts),
	run->spiff_params};

	return cm_cursor_open(cm_events_sql(run, finalized), 3, types, values, NULL);
}

/* an event from a deformed events row; data used later is copied into
 * the current context */
static void
cm_event_from_row(CmRun *run, Datum *v, bool *isnull, CmEvent *ev)
{
	text	   *cur;
	int			len;

	ev->deal_id = DatumGetInt64(v[1]);
	ev->payment = !isnull[2];
	ev->payment_id = ev->payment ? DatumGetInt64(v[2]) : 0;
	ev->at = DatumGetTimestampTz(v[3]);
	ev->day = DatumGetDateADT(v[4]);
	ev->amount = DatumGetNumeric(v[5]);
	cur = DatumGetTextPP(v[6]);
	len = Min(VARSIZE_ANY_EXHDR(cur), 3);
	memcpy(ev->currency, VARDATA_ANY(cur), len);
	ev->currency[len] = '\0';
	ev->share = DatumGetNumericCopy(v[7]);
	ev->sign = DatumGetInt32(v[8]);
	ev->fraction = isnull[9] ? NULL : DatumGetNumeric(v[9]);
	ev->spiff_match = NULL;
	if (!isnull[10])
	{
		ArrayType  *arr = DatumGetArrayTypeP(v[10]);

		if (ARR_HASNULL(arr) || ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr)) != run->nspiffs)
			elog(ERROR, "unexpected SPIFF match array");
		/* no nulls: the data follow the fixed header */
		ev->spiff_match = (bool *) ((char *) arr + ARR_OVERHEAD_NONULLS(ARR_NDIM(arr)));
	}
}

/* a reader of a cursor, one deformed row at a time */
typedef struct CmReader
{
	Portal		portal;
	SPITupleTable *tt;
	uint64		n;
	uint64		i;
	Datum		v[16];
	bool		isnull[16];
} CmReader;

static bool
cm_reader_next(CmReader *r)
{
	if (r->tt != NULL && r->i + 1 < r->n)
		r->i++;
	else
	{
		if (r->tt != NULL)
			SPI_freetuptable(r->tt);
		r->tt = cm_fetch(r->portal, &r->n);
		r->i = 0;
		if (r->n == 0)
		{
			SPI_freetuptable(r->tt);
			r->tt = NULL;
			return false;
		}
	}
	heap_deform_tuple(r->tt->vals[r->i], r->tt->tupdesc, r->v, r->isnull);
	return true;
}

/* ----------------------------------------------------------------------
 * Corrections of finalized periods
 *
 * What is due now for the events of finalized periods (recomputed from
 * today's deals, splits and payments) is merged, in (rep, deal, payment)
 * order, with what the ledger booked for them.  Per rep and deal:
 *	- a booking-basis deal that is no longer won (reopened, lost, deleted)
 *	  has everything booked on it clawed back, if that happened within the
 *	  plan's clawback window of the win;
 *	- otherwise a change of the rep's credit becomes an adjustment through
 *	  the tiers of the original plan period (reason late, changed, moved or
 *	  removed), with overrides for today's managers on the change, and a
 *	  change of a SPIFF's amount becomes a SPIFF adjustment.
 * ----------------------------------------------------------------------
 */

typedef struct CmBooked
{
	int			comp;
	int64		aux;
	CmPlan	   *plan;
	Numeric		credit;
	Numeric		amount;
	TimestampTz at;
} CmBooked;

typedef struct CmDue
{
	bool		present;
	CmPlan	   *plan;
	CmEvent		ev;
	Numeric		credit;
	int			nspiffs;
	int64	   *spiff_id;
	Numeric    *spiff_amount;
} CmDue;

static void
cm_add_corr(CmRun *run, CmRep *rep, CmCorr *c)
{
	CM_APPEND(run->run_cxt, rep->corr, rep->ncorr, rep->maxcorr);
	rep->corr[rep->ncorr - 1] = *c;
}

/* a due row of a finalized period: what the rep is owed for it today */
static void
cm_due_from_row(CmRun *run, CmReader *r, CmDue *due)
{
	CmRep	   *rep = cm_rep(run, DatumGetInt64(r->v[0]));
	CmPlan	   *plan;
	int			pi,
				i;

	memset(due, 0, sizeof(*due));
	cm_event_from_row(run, r->v, r->isnull, &due->ev);
	plan = cm_plan_at(rep, due->ev.day);
	if (plan == NULL || plan->payment_basis != due->ev.payment)
		return;
	due->present = true;
	due->plan = plan;
	due->credit = cm_event_credit(run, &due->ev);
	pi = cm_plan_index(run, plan);
	due->spiff_id = palloc(sizeof(int64) * Max(run->plan_nspiffs[pi], 1));
	due->spiff_amount = palloc(sizeof(Numeric) * Max(run->plan_nspiffs[pi], 1));
	for (i = 0; i < run->plan_nspiffs[pi]; i++)
	{
		int			idx = run->plan_spiffs[pi][i];
		Numeric		base,
					rate,
					amount;

		if (!cm_spiff_applies(run, idx, &due->ev))
			continue;
		amount = cm_spiff_amount(&run->spiffs[idx], &due->ev, due->credit, &base, &rate);
		if (amount == NULL)
			continue;
		due->spiff_id[due->nspiffs] = run->spiffs[idx].spiff_id;
		due->spiff_amount[due->nspiffs++] = amount;
	}
	/* the event's numerics point into the cursor's rows: keep copies */
	due->ev.amount = NULL;
	due->ev.fraction = NULL;
	due->ev.spiff_match = NULL;
}

static void
cm_correct_key(CmRun *run, CmRep *rep, int64 deal_id, int64 pay, CmDue *due,
			   CmBooked *booked, int nbooked, const char *outcome, TimestampTz unwon_at)
{
	MemoryContext old = MemoryContextSwitchTo(run->run_cxt);
	CmCorr		c;
	int			i,
				j;
	bool		won = outcome != NULL && strcmp(outcome, "won") == 0;
	CmBooked   *own = NULL;

	for (i = 0; i < nbooked; i++)
		if (booked[i].comp == 0)
			own = &booked[i];

	memset(&c, 0, sizeof(c));
	c.deal_id = deal_id;
	c.payment_id = pay;
	c.payment = pay != 0;

	if (pay == 0 && !won && nbooked > 0)
	{
		/* booking basis, the deal fell through: claw back within the window */
		CmReason	reason = outcome == NULL ? CR_DELETED :
			strcmp(outcome, "lost") == 0 ? CR_LOST : CR_REOPENED;

		for (i = 0; i < nbooked; i++)
		{
			CmBooked   *b = &booked[i];
			int32		days = b->plan ? b->plan->clawback_days : 0;

			if (days <= 0 || (cm_sign(b->amount) == 0 && (b->comp != 0 || cm_sign(b->credit) == 0)))
				continue;
			if (unwon_at < b->at || unwon_at > b->at + (int64) days * USECS_PER_DAY)
				continue;
			c.own = false;
			c.kind = CK_CLAWBACK;
			c.reason = reason;
			c.at = b->at;
			c.day = cm_ts_date(b->at);
			c.plan = b->plan;
			c.spiff_id = b->comp == 1 ? b->aux : 0;
			c.source_rep_id = b->comp == 2 ? b->aux : 0;
			c.credit = b->comp == 0 ? cm_neg(b->credit) : NULL;
			c.base = cm_copy(run->run_cxt, b->amount);
			c.rate = cm_one();
			c.amount = cm_neg(b->amount);
			c.reversed_at = unwon_at;
			cm_add_corr(run, rep, &c);
		}
		MemoryContextSwitchTo(old);
		return;
	}

	/* the rep's own credit */
	{
		Numeric		due_credit = due->present ? due->credit : cm_zero();
		Numeric		delta = sm_numeric_sub(due_credit, own ? own->credit : cm_zero());

		c.reason = own == NULL ? CR_LATE : !due->present ? (pay ? CR_REMOVED : CR_MOVED) : CR_CHANGED;
		c.at = due->present ? due->ev.at : own ? own->at : 0;
		c.day = due->present ? due->ev.day : cm_ts_date(c.at);
		if (cm_sign(delta) != 0)
		{
			c.own = true;
			c.plan = due->present ? due->plan : own->plan;
			c.share = due->present ? cm_copy(run->run_cxt, due->ev.share) : NULL;
			c.delta = cm_copy(run->run_cxt, delta);
			if (c.plan != NULL)
				cm_add_corr(run, rep, &c);
		}
	}

	/* SPIFFs: what is due against what was booked, SPIFF by SPIFF */
	c.own = false;
	c.kind = CK_ADJUSTMENT;
	c.share = NULL;
	for (i = 0; i < due->nspiffs + nbooked; i++)
	{
		int64		spiff_id;
		Numeric		due_amount = cm_zero();
		Numeric		booked_amount = cm_zero();
		CmPlan	   *plan = NULL;
		bool		in_due = false,
					in_booked = false;
		Numeric		delta;

		if (i < due->nspiffs)
			spiff_id = due->spiff_id[i];
		else if (booked[i - due->nspiffs].comp == 1)
		{
			spiff_id = booked[i - due->nspiffs].aux;
			/* handled with the due SPIFF already? */
			for (j = 0; j < due->nspiffs; j++)
				if (due->spiff_id[j] == spiff_id)
					break;
			if (j < due->nspiffs)
				continue;
		}
		else
			continue;
		for (j = 0; j < due->nspiffs; j++)
			if (due->spiff_id[j] == spiff_id)
			{
				due_amount = due->spiff_amount[j];
				plan = due->plan;
				in_due = true;
			}
		for (j = 0; j < nbooked; j++)
			if (booked[j].comp == 1 && booked[j].aux == spiff_id)
			{
				booked_amount = booked[j].amount;
				plan = plan ? plan : booked[j].plan;
				in_booked = true;
			}
		delta = sm_numeric_sub(due_amount, booked_amount);
		if (cm_sign(delta) == 0)
			continue;
		c.reason = !in_booked ? CR_LATE : !in_due ? (pay ? CR_REMOVED : CR_MOVED) : CR_CHANGED;
		c.plan = plan;
		c.spiff_id = spiff_id;
		c.base = cm_copy(run->run_cxt, delta);
		c.rate = cm_one();
		c.amount = c.base;
		cm_add_corr(run, rep, &c);
	}
	MemoryContextSwitchTo(old);
}

static const char *cm_booked_sql =
"SELECT b.rep_id, b.deal_id, b.pay_key, b.comp, b.aux, b.plan_id, b.credit, b.amount,"
"       b.credited_at, st.outcome,"
"       CASE WHEN st.outcome IS DISTINCT FROM 'won' THEN coalesce("
"           (SELECT min(h.changed_at) FROM salesmgmt.deal_stage_history h"
"              JOIN salesmgmt.stage hs ON hs.stage_id = h.to_stage_id"
"             WHERE h.deal_id = b.deal_id AND h.changed_at > b.credited_at AND hs.outcome <> 'won'),"
"           d.stage_entered_at, now()) END"
"  FROM (SELECT l.rep_id, l.deal_id,"
"               CASE WHEN pl.basis = 'payment' THEN l.payment_id END AS pay_key,"
"               CASE WHEN l.spiff_id IS NOT NULL THEN 1 WHEN l.source_rep_id IS NOT NULL THEN 2 ELSE 0 END AS comp,"
"               coalesce(l.spiff_id, l.source_rep_id, 0) AS aux,"
"               max(l.plan_id) AS plan_id, sum(coalesce(l.credit, 0)) AS credit,"
"               sum(l.amount) AS amount, max(l.credited_at) AS credited_at"
"          FROM salesmgmt.commission_line l"
"          LEFT JOIN salesmgmt.commission_plan pl ON pl.plan_id = l.plan_id"
"         WHERE l.deal_id IS NOT NULL AND l.kind <> 'draw'"
"           AND EXISTS (SELECT 1 FROM salesmgmt.commission_period f WHERE f.status = 'final'"
"                        AND l.credited_at >= f.period_start AND l.credited_at < f.period_end + 1)"
"         GROUP BY 1, 2, 3, 4, 5) b"
"  LEFT JOIN salesmgmt.deal d ON d.deal_id = b.deal_id"
"  LEFT JOIN salesmgmt.stage st ON st.stage_id = d.stage_id"
" ORDER BY b.rep_id, b.deal_id, b.pay_key NULLS FIRST";

/* (rep, deal, payment) of a reader's row; payment 0 when null */
static void
cm_reader_key(CmReader *r, int64 *key)
{
	key[0] = DatumGetInt64(r->v[0]);
	key[1] = DatumGetInt64(r->v[1]);
	key[2] = r->isnull[2] ? 0 : DatumGetInt64(r->v[2]);
}

static int
cm_key_cmp(int64 *a, int64 *b)
{
	int			i;

	for (i = 0; i < 3; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

static int
cm_corr_cmp(const void *a, const void *b)
{
	const CmCorr *x = a;
	const CmCorr *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	if (x->deal_id != y->deal_id)
		return x->deal_id < y->deal_id ? -1 : 1;
	if (x->payment_id != y->payment_id)
		return x->payment_id < y->payment_id ? -1 : 1;
	return (int) y->own - (int) x->own;
}

static void
cm_corrections(CmRun *run)
{
	CmReader	due,
				bk;
	bool		has_due,
				has_bk;
	HASH_SEQ_STATUS seq;
	CmRep	   *rep;
	int			maxbooked = 16;
	CmBooked   *booked = MemoryContextAlloc(run->run_cxt, sizeof(CmBooked) * maxbooked);

	memset(&due, 0, sizeof(due));
	memset(&bk, 0, sizeof(bk));
	due.portal = cm_events_open(run, true);
	bk.portal = cm_cursor_open(cm_booked_sql, 0, NULL, NULL, NULL);
	MemoryContextSwitchTo(run->tmp_cxt);
	has_due = cm_reader_next(&due);
	has_bk = cm_reader_next(&bk);
	while (has_due || has_bk)
	{
		int64		key[3],
					k2[3];
		CmDue		d;
		int			nbooked = 0;
		char	   *outcome = NULL;
		TimestampTz unwon_at = 0;

		CHECK_FOR_INTERRUPTS();
		if (has_due)
			cm_reader_key(&due, key);
		if (has_bk)
		{
			cm_reader_key(&bk, k2);
			if (!has_due || cm_key_cmp(k2, key) < 0)
				memcpy(key, k2, sizeof(key));
		}
		memset(&d, 0, sizeof(d));
		while (has_due && (cm_reader_key(&due, k2), cm_key_cmp(k2, key) == 0))
		{
			cm_due_from_row(run, &due, &d);
			has_due = cm_reader_next(&due);
		}
		while (has_bk && (cm_reader_key(&bk, k2), cm_key_cmp(k2, key) == 0))
		{
			CmBooked   *b;

			if (nbooked == maxbooked)
			{
				maxbooked *= 2;
				booked = repalloc(booked, sizeof(CmBooked) * maxbooked);
			}
			b = &booked[nbooked++];
			b->comp = DatumGetInt32(bk.v[3]);
			b->aux = DatumGetInt64(bk.v[4]);
			b->plan = bk.isnull[5] ? NULL : cm_plan_by_id(run, DatumGetInt64(bk.v[5]));
			b->credit = DatumGetNumericCopy(bk.v[6]);
			b->amount = DatumGetNumericCopy(bk.v[7]);
			b->at = DatumGetTimestampTz(bk.v[8]);
			outcome = bk.isnull[9] ? NULL : TextDatumGetCString(bk.v[9]);
			unwon_at = bk.isnull[10] ? 0 : DatumGetTimestampTz(bk.v[10]);
			has_bk = cm_reader_next(&bk);
		}
		if (nbooked == 0)
			outcome = "won";	/* due rows are of won deals or payments */
		if (d.present || nbooked > 0)
			cm_correct_key(run, cm_rep(run, key[0]), key[1], key[2], &d,
						   booked, nbooked, outcome, unwon_at);
		MemoryContextReset(run->tmp_cxt);
	}
	SPI_cursor_close(due.portal);
	SPI_cursor_close(bk.portal);
	MemoryContextSwitchTo(run->line_cxt);

	/* each rep's corrections in time order, to merge with its events */
	hash_seq_init(&seq, run->reps);
	while ((rep = hash_seq_search(&seq)) != NULL)
		if (rep->ncorr > 1)
			qsort(rep->corr, rep->ncorr, sizeof(CmCorr), cm_corr_cmp);
}

/* apply a rep's corrections up to time until (all of them if !limited) */
static void
cm_apply_corrections(CmRun *run, CmRep *rep, bool limited, TimestampTz until)
{
	while (rep->corr_next < rep->ncorr)
	{
		CmCorr	   *c = &rep->corr[rep->corr_next];
		CmEvent		ev;

		if (limited && c->at > until)
			break;
		if (!limited && run->writer.nused >= CM_FLUSH_AT)
			cm_flush(run);
		memset(&ev, 0, sizeof(ev));
		ev.deal_id = c->deal_id;
		ev.payment_id = c->payment_id;
		ev.payment = c->payment;
		ev.at = c->at;
		ev.day = c->day;
		ev.share = c->share;
		if (c->own)
		{
			Numeric		delta = c->delta;

			cm_credit_line(run, rep, cm_state(run, rep, c->plan, c->day), &ev, delta,
						   CK_ADJUSTMENT, c->reason);
			cm_overrides(run, rep, &ev, &delta, CK_ADJUSTMENT, c->reason);
		}
		else
		{
			Datum		v[LC_NCOLS];
			bool		n[LC_NCOLS];

			cm_line_init(v, n);
			cm_line_event(v, n, &ev);
			if (c->spiff_id != 0)
				CM_SET(v, n, LC_SPIFF, Int64GetDatum(c->spiff_id));
			if (c->source_rep_id != 0)
				CM_SET(v, n, LC_SOURCE, Int64GetDatum(c->source_rep_id));
			if (c->credit != NULL)
				CM_SET(v, n, LC_CREDIT, NumericGetDatum(c->credit));
			CM_SET(v, n, LC_BASE, NumericGetDatum(c->base));
			CM_SET(v, n, LC_RATE, NumericGetDatum(c->rate));
			CM_SET(v, n, LC_REASON, run->reason_text[c->reason]);
			if (c->kind == CK_CLAWBACK)
				CM_SET(v, n, LC_REVERSED_AT, TimestampTzGetDatum(c->reversed_at));
			cm_emit(run, rep, c->plan, c->kind, v, n, c->amount);
		}
		rep->corr_next++;
	}
}

static void
cm_finish_rep(CmRun *run, CmRep *rep)
{
	cm_apply_corrections(run, rep, false, 0);
	rep->states = NULL;
	rep->done = true;
	MemoryContextReset(run->rep_cxt);
}

/* ----------------------------------------------------------------------
 * Refunds on booking basis: within the clawback window of the win, a
 * refund claws back its fraction of what was paid on the deal (each
 * component: own commission, SPIFFs, overrides), never more than is left.
 * ----------------------------------------------------------------------
 */

static void
cm_load_watch(CmRun *run)
{
	Oid			types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[2] = {TimestampTzGetDatum(run->start_ts), TimestampTzGetDatum(run->end_ts)};
	SPITupleTable *tt;
	uint64		n,
				i;
	Datum	   *ids;
	int			nids = 0;
	Oid			atypes[1] = {INT8ARRAYOID};
	Datum		avalues[1];
	MemoryContext old = CurrentMemoryContext;

	tt = cm_query("SELECT p.deal_id, p.payment_id, p.paid_at,"
				  "       CASE WHEN d.amount > 0 THEN (CASE WHEN p.currency = d.currency THEN p.amount"
				  "            ELSE salesmgmt.convert_amount(p.amount, p.currency, d.currency, p.paid_at::date)"
				  "            END) / d.amount END"
				  "  FROM salesmgmt.payment p JOIN salesmgmt.deal d ON d.deal_id = p.deal_id"
				  " WHERE p.kind = 'refund' AND p.paid_at >= $1 AND p.paid_at < $2"
				  " ORDER BY p.deal_id, p.paid_at, p.payment_id",
				  2, types, values, NULL, false, SPI_OK_SELECT, &n);
	if (n == 0)
	{
		SPI_freetuptable(tt);
		return;
	}
	run->watch = cm_hash("salesmgmt commission refunds", sizeof(int64), sizeof(CmWatch), (long) n, run->run_cxt);
	MemoryContextSwitchTo(run->run_cxt);
	ids = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
	{
		int64		deal_id = cm_col_int8(tt, i, 1, 0);
		bool		found,
					isnull;
		CmWatch    *w = hash_search(run->watch, &deal_id, HASH_ENTER, &found);
		CmRefund   *r;

		if (!found)
		{
			memset(((char *) w) + sizeof(int64), 0, sizeof(CmWatch) - sizeof(int64));
			ids[nids++] = Int64GetDatum(deal_id);
		}
		CM_APPEND(run->run_cxt, w->refunds, w->nrefunds, w->maxrefunds);
		r = &w->refunds[w->nrefunds - 1];
		r->payment_id = cm_col_int8(tt, i, 2, 0);
		r->at = DatumGetTimestampTz(cm_col(tt, i, 3, &isnull));
		r->fraction = cm_col_numeric(tt, i, 4);
	}
	avalues[0] = PointerGetDatum(construct_array(ids, nids, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);

	/* what other runs paid on these deals */
	tt = cm_query("SELECT l.rep_id, l.deal_id,"
				  "       CASE WHEN l.spiff_id IS NOT NULL THEN 1 WHEN l.source_rep_id IS NOT NULL THEN 2 ELSE 0 END,"
				  "       coalesce(l.spiff_id, l.source_rep_id, 0), max(l.plan_id),"
				  "       sum(coalesce(l.credit, 0)),"
				  "       coalesce(sum(l.credit) FILTER (WHERE l.kind <> 'clawback'), 0),"
				  "       sum(l.amount), coalesce(sum(l.amount) FILTER (WHERE l.kind <> 'clawback'), 0),"
				  "       max(l.credited_at),"
				  "       array_agg(l.payment_id) FILTER (WHERE l.kind = 'clawback' AND l.reason = 'refund')"
				  "  FROM salesmgmt.commission_line l"
				  " WHERE l.deal_id = ANY ($1) AND l.kind <> 'draw'"
				  " GROUP BY 1, 2, 3, 4",
				  1, atypes, avalues, NULL, false, SPI_OK_SELECT, &n);
	MemoryContextSwitchTo(run->run_cxt);
	for (i = 0; i < n; i++)
	{
		int64		deal_id = cm_col_int8(tt, i, 2, 0);
		CmWatch    *w = hash_search(run->watch, &deal_id, HASH_FIND, NULL);
		CmComp	   *c;
		bool		isnull;
		Datum		clawed;

		CM_APPEND(run->run_cxt, w->comps, w->ncomps, w->maxcomps);
		c = &w->comps[w->ncomps - 1];
		memset(c, 0, sizeof(*c));
		c->rep_id = cm_col_int8(tt, i, 1, 0);
		c->comp = DatumGetInt32(cm_col(tt, i, 3, &isnull));
		c->aux = cm_col_int8(tt, i, 4, 0);
		c->plan = cm_plan_by_id(run, cm_col_int8(tt, i, 5, 0));
		c->credit_net = cm_col_numeric(tt, i, 6);
		c->credit_gross = cm_col_numeric(tt, i, 7);
		c->amount_net = cm_col_numeric(tt, i, 8);
		c->amount_gross = cm_col_numeric(tt, i, 9);
		c->at = DatumGetTimestampTz(cm_col(tt, i, 10, &isnull));
		clawed = cm_col(tt, i, 11, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			k;

			deconstruct_array(DatumGetArrayTypeP(clawed), INT8OID, 8, FLOAT8PASSBYVAL,
							  TYPALIGN_DOUBLE, &elems, &nulls, &c->nclawed);
			c->clawed = palloc(sizeof(int64) * Max(c->nclawed, 1));
			for (k = 0; k < c->nclawed; k++)
				c->clawed[k] = nulls[k] ? 0 : DatumGetInt64(elems[k]);
		}
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);
	run->recording = true;
}

static void
cm_refunds(CmRun *run)
{
	HASH_SEQ_STATUS seq;
	CmWatch    *w;

	if (run->watch == NULL)
		return;
	run->recording = false;
	hash_seq_init(&seq, run->watch);
	while ((w = hash_seq_search(&seq)) != NULL)
	{
		int			i,
					j,
					k;

		for (i = 0; i < w->nrefunds; i++)
		{
			CmRefund   *r = &w->refunds[i];

			if (r->fraction == NULL)
				continue;
			if (run->writer.nused >= CM_FLUSH_AT)
				cm_flush(run);
			for (j = 0; j < w->ncomps; j++)
			{
				CmComp	   *c = &w->comps[j];
				Numeric		net = c->amount_net ? c->amount_net : cm_zero();
				Numeric		base,
							rate,
							claw,
							credit = NULL;
				Datum		v[LC_NCOLS];
				bool		n[LC_NCOLS];
				bool		done = false;
				CmEvent		ev;

				if (c->plan == NULL || c->plan->payment_basis || c->plan->clawback_days <= 0)
					continue;
				if (r->at < c->at || r->at > c->at + (int64) c->plan->clawback_days * USECS_PER_DAY)
					continue;
				for (k = 0; k < c->nclawed; k++)
					done |= (c->clawed[k] == r->payment_id);
				if (done || cm_sign(net) <= 0)
					continue;
				base = c->amount_gross ? c->amount_gross : cm_zero();
				rate = r->fraction;
				claw = sm_numeric_round(sm_numeric_mul(base, rate), 2);
				if (sm_numeric_cmp(claw, net) > 0)
				{
					claw = net;
					base = net;
					rate = cm_one();
				}
				if (c->comp == 0 && c->credit_gross != NULL)
				{
					credit = sm_numeric_mul(c->credit_gross, r->fraction);
					if (c->credit_net && sm_numeric_cmp(credit, c->credit_net) > 0)
						credit = c->credit_net;
				}
				if (cm_sign(claw) == 0)
					continue;
				memset(&ev, 0, sizeof(ev));
				ev.deal_id = w->deal_id;
				ev.payment_id = r->payment_id;
				ev.at = c->at;
				cm_line_init(v, n);
				cm_line_event(v, n, &ev);
				if (c->comp == 1)
					CM_SET(v, n, LC_SPIFF, Int64GetDatum(c->aux));
				if (c->comp == 2)
					CM_SET(v, n, LC_SOURCE, Int64GetDatum(c->aux));
				if (credit != NULL)
					CM_SET(v, n, LC_CREDIT, NumericGetDatum(cm_neg(credit)));
				CM_SET(v, n, LC_BASE, NumericGetDatum(base));
				CM_SET(v, n, LC_RATE, NumericGetDatum(rate));
				CM_SET(v, n, LC_REASON, run->reason_text[CR_REFUND]);
				CM_SET(v, n, LC_REVERSED_AT, TimestampTzGetDatum(r->at));
				cm_emit(run, cm_rep(run, c->rep_id), c->plan, CK_CLAWBACK, v, n, cm_neg(claw));
				cm_set(run->run_cxt, &c->amount_net, sm_numeric_sub(net, claw));
				if (credit != NULL)
					cm_set(run->run_cxt, &c->credit_net, sm_numeric_sub(c->credit_net, credit));
			}
		}
	}
}

/* ----------------------------------------------------------------------
 * Draws.  A recoverable draw is advanced (a draw line) and, with what is
 * still outstanding from earlier periods, recovered from the period's
 * earnings (a negative draw line, never more than the earnings).  A
 * non-recoverable draw tops the earnings up to its amount.
 * ----------------------------------------------------------------------
 */

static void
cm_draw_line(CmRun *run, CmRep *rep, int64 draw_id, bool recoverable, CmReason reason,
			 Numeric base, Numeric amount)
{
	Datum		v[LC_NCOLS];
	bool		n[LC_NCOLS];

	cm_line_init(v, n);
	if (draw_id != 0)
		CM_SET(v, n, LC_DRAW, Int64GetDatum(draw_id));
	CM_SET(v, n, LC_RECOVERABLE, BoolGetDatum(recoverable));
	if (base != NULL)
		CM_SET(v, n, LC_BASE, NumericGetDatum(base));
	CM_SET(v, n, LC_REASON, run->reason_text[reason]);
	cm_emit(run, rep, NULL, CK_DRAW, v, n, amount);
}

static Numeric
cm_sum(CmRep *rep, CmSum s)
{
	return rep->sums[s] ? rep->sums[s] : cm_zero();
}

static void
cm_draws(CmRun *run)
{
	HASH_SEQ_STATUS seq;
	CmRep	   *rep;

	hash_seq_init(&seq, run->reps);
	while ((rep = hash_seq_search(&seq)) != NULL)
	{
		Numeric		earnings,
					balance,
					guarantee,
					topup;
		int			i;

		if (rep->ndraws == 0 && rep->draw_balance == NULL)
			continue;
		if (run->writer.nused >= CM_FLUSH_AT)
			cm_flush(run);
		earnings = cm_sum(rep, CS_EARNED);
		earnings = sm_numeric_add(earnings, cm_sum(rep, CS_SPIFFS));
		earnings = sm_numeric_add(earnings, cm_sum(rep, CS_OVERRIDES));
		earnings = sm_numeric_add(earnings, cm_sum(rep, CS_ADJUSTMENTS));
		earnings = sm_numeric_add(earnings, cm_sum(rep, CS_CLAWBACKS));
		balance = rep->draw_balance ? rep->draw_balance : cm_zero();
		guarantee = cm_zero();
		for (i = 0; i < rep->ndraws; i++)
		{
			CmDraw	   *d = &rep->draws[i];

			if (d->recoverable)
			{
				cm_draw_line(run, rep, d->draw_id, true, CR_ADVANCE, NULL, d->amount);
				balance = sm_numeric_add(balance, d->amount);
			}
			else
				guarantee = sm_numeric_add(guarantee, d->amount);
		}
		if (cm_sign(earnings) > 0 && cm_sign(balance) > 0)
			cm_draw_line(run, rep, 0, true, CR_RECOVERY, earnings,
						 cm_neg(sm_numeric_min(balance, earnings)));
		/* top up to the guarantee: guarantee - earnings, within [0, guarantee] */
		topup = sm_numeric_sub(guarantee, sm_numeric_max(cm_zero(), sm_numeric_min(earnings, guarantee)));
		for (i = 0; i < rep->ndraws && cm_sign(topup) > 0; i++)
		{
			CmDraw	   *d = &rep->draws[i];
			Numeric		part;

			if (d->recoverable)
				continue;
			part = sm_numeric_min(d->amount, topup);
			cm_draw_line(run, rep, d->draw_id, false, CR_GUARANTEE, earnings, part);
			topup = sm_numeric_sub(topup, part);
		}
	}
}

/* ----------------------------------------------------------------------
 * run_commissions, finalize_commissions, discard_commissions
 * ----------------------------------------------------------------------
 */

static void
cm_period_args(FunctionCallInfo fcinfo, DateADT *start, DateADT *end)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("start and end of a commission period must not be null")));
	*start = PG_GETARG_DATEADT(0);
	*end = PG_GETARG_DATEADT(1);
	if (DATE_NOT_FINITE(*start) || DATE_NOT_FINITE(*end))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a commission period must have finite dates")));
	if (*end < *start)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("commission period ends before it starts"),
				 errdetail("The period starts on %s and ends on %s.", cm_date_str(*start), cm_date_str(*end)),
				 errhint("Pass the first and the last day of the period (both inclusive).")));
}

static char *
cm_outer_user(void)
{
	return GetUserNameFromId(GetOuterUserId(), false);
}

/*
 * Check the period against those already run (none may overlap it with
 * other bounds; a finalized one never runs again), note the finalized
 * periods, and register the run.
 */
static void
cm_register_period(CmRun *run)
{
	SPITupleTable *tt;
	uint64		n,
				i;
	Oid			types[4] = {DATEOID, DATEOID, TEXTOID, TEXTOID};
	Datum		values[4];

	tt = cm_query("SELECT period_start, period_end, status = 'final', currency::text"
				  "  FROM salesmgmt.commission_period ORDER BY period_start",
				  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	run->final_start = MemoryContextAlloc(run->run_cxt, sizeof(DateADT) * Max(n, 1));
	run->final_end = MemoryContextAlloc(run->run_cxt, sizeof(DateADT) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		DateADT		ps = DatumGetDateADT(cm_col(tt, i, 1, &isnull));
		DateADT		pe = DatumGetDateADT(cm_col(tt, i, 2, &isnull));
		bool		final = DatumGetBool(cm_col(tt, i, 3, &isnull));
		char	   *currency = TextDatumGetCString(cm_col(tt, i, 4, &isnull));
		bool		overlaps = ps <= run->end && pe >= run->start;
		bool		same = ps == run->start && pe == run->end;

		if (overlaps && final)
			ereport(ERROR,
					(errcode(ERRCODE_SM_PERIOD_FINALIZED),
					 same ? errmsg("commission period %s is finalized", cm_range_str(ps, pe))
					 : errmsg("commission period %s overlaps the finalized period %s",
							  cm_range_str(run->start, run->end), cm_range_str(ps, pe)),
					 errdetail("Lines of a finalized period are final and never change."),
					 errhint("Corrections go into the open period: change the deal, split or payment and run the next open period; it adds adjustment and clawback lines.")));
		if (overlaps && !same)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("commission period %s overlaps the open period %s",
							cm_range_str(run->start, run->end), cm_range_str(ps, pe)),
					 errhint("Run exactly that period again, or forget it first with salesmgmt.discard_commissions('%s', '%s').",
							 cm_date_str(ps), cm_date_str(pe))));
		if (strcmp(currency, run->currency) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("commission periods were run in %s, not in the reporting currency %s",
							currency, run->currency),
					 errdetail("Credits and amounts of a ledger must be in one currency."),
					 errhint("SET salesmgmt.reporting_currency = '%s' to run commissions.", currency)));
		if (final)
		{
			run->final_start[run->nfinal] = ps;
			run->final_end[run->nfinal++] = pe;
		}
	}
	SPI_freetuptable(tt);

	values[0] = DateADTGetDatum(run->start);
	values[1] = DateADTGetDatum(run->end);
	values[2] = CStringGetTextDatum(run->currency);
	values[3] = CStringGetTextDatum(cm_outer_user());
	cm_query("INSERT INTO salesmgmt.commission_period AS p"
			 "       (period_start, period_end, currency, runs, last_run_at, last_run_by)"
			 " VALUES ($1, $2, $3, 1, now(), $4)"
			 " ON CONFLICT (period_start) DO UPDATE"
			 "   SET runs = p.runs + 1, last_run_at = now(), last_run_by = $4",
			 4, types, values, NULL, false, SPI_OK_INSERT, NULL);
	cm_query("DELETE FROM salesmgmt.commission_line WHERE period_start = $1 AND period_end = $2",
			 2, types, values, NULL, false, SPI_OK_DELETE, NULL);
}

static int
cm_rep_ptr_cmp(const void *a, const void *b)
{
	int64		x = (*(CmRep *const *) a)->rep_id;
	int64		y = (*(CmRep *const *) b)->rep_id;

	return x < y ? -1 : x > y ? 1 : 0;
}

static void
cm_results(CmRun *run, ReturnSetInfo *rsinfo)
{
	HASH_SEQ_STATUS seq;
	CmRep	   *rep;
	CmRep	  **listed;
	int			nlisted = 0,
				i;

	listed = palloc(sizeof(CmRep *) * Max(hash_get_num_entries(run->reps), 1));
	hash_seq_init(&seq, run->reps);
	while ((rep = hash_seq_search(&seq)) != NULL)
		if (rep->listed)
			listed[nlisted++] = rep;
	qsort(listed, nlisted, sizeof(CmRep *), cm_rep_ptr_cmp);
	for (i = 0; i < nlisted; i++)
	{
		Datum		values[12];
		bool		nulls[12];
		Numeric		quota,
					credit,
					payout = cm_zero();
		int			s;

		rep = listed[i];
		memset(nulls, 0, sizeof(nulls));
		credit = cm_sum(rep, CS_CREDIT);
		quota = cm_quota_for(rep, run->start, run->end);
		values[0] = Int64GetDatum(rep->rep_id);
		values[1] = NumericGetDatum(credit);
		nulls[2] = quota == NULL;
		values[2] = nulls[2] ? (Datum) 0 : NumericGetDatum(quota);
		nulls[3] = quota == NULL || cm_sign(quota) <= 0;
		values[3] = nulls[3] ? (Datum) 0 :
			NumericGetDatum(sm_numeric_round(sm_numeric_div(credit, quota), 4));
		for (s = CS_EARNED; s < CS_NSUMS; s++)
		{
			Numeric		x = sm_numeric_round(cm_sum(rep, s), 2);

			values[4 + s - CS_EARNED] = NumericGetDatum(x);
			payout = sm_numeric_add(payout, x);
		}
		values[11] = NumericGetDatum(payout);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

static void
cm_run(CmRun *run, ReturnSetInfo *rsinfo)
{
	CmRep	   *rep;
	HASH_SEQ_STATUS seq;

	LockRelationOid(sm_relation_oid("commission_period"), ShareRowExclusiveLock);
	cm_register_period(run);

	run->nplans = cm_load_plans(run->run_cxt, 0, false, &run->plans);
	cm_load_reps(run);
	cm_load_spiffs(run);
	cm_load_assignments(run);
	cm_load_rates(run);
	cm_load_quotas(run);
	cm_load_draws(run);
	cm_load_prior(run);
	cm_init_writer(run);

	if (run->nfinal > 0 && (run->any_booking || run->any_payment))
		cm_corrections(run);
	if (run->any_booking)
		cm_load_watch(run);

	/* the period's credited events, rep by rep in time order */
	if (run->any_booking || run->any_payment)
	{
		CmReader	r;
		CmRep	   *cur = NULL;

		memset(&r, 0, sizeof(r));
		r.portal = cm_events_open(run, false);
		MemoryContextSwitchTo(run->line_cxt);
		for (;;)
		{
			CmEvent		ev;
			int64		rep_id;

			CHECK_FOR_INTERRUPTS();
			if (run->writer.nused >= CM_FLUSH_AT)
				cm_flush(run);
			if (!cm_reader_next(&r))
				break;
			MemoryContextSwitchTo(run->line_cxt);
			rep_id = DatumGetInt64(r.v[0]);
			if (cur == NULL || cur->rep_id != rep_id)
			{
				if (cur != NULL)
					cm_finish_rep(run, cur);
				cur = cm_rep(run, rep_id);
			}
			cm_event_from_row(run, r.v, r.isnull, &ev);
			cm_apply_corrections(run, cur, true, ev.at);
			cm_credit_event(run, cur, &ev);
		}
		if (cur != NULL)
			cm_finish_rep(run, cur);
		SPI_cursor_close(r.portal);
	}
	MemoryContextSwitchTo(run->line_cxt);

	/* reps with corrections and no events in the period */
	hash_seq_init(&seq, run->reps);
	while ((rep = hash_seq_search(&seq)) != NULL)
		if (!rep->done && rep->ncorr > 0)
			cm_finish_rep(run, rep);

	cm_refunds(run);
	cm_draws(run);
	cm_close_writer(run);
	MemoryContextSwitchTo(run->tmp_cxt);
	cm_results(run, rsinfo);
}

Datum
sm_run_commissions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext caller = CurrentMemoryContext;
	CmRun	   *run;
	DateADT		start,
				end;

	cm_period_args(fcinfo, &start, &end);
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("run_commissions must run in a READ COMMITTED transaction"),
				 errdetail("Under REPEATABLE READ or SERIALIZABLE it could not see the lines of a concurrent run it waited for, and could book a correction twice."),
				 errhint("Run it in its own transaction, or use SET TRANSACTION ISOLATION LEVEL READ COMMITTED.")));
	if (sm_reporting_currency == NULL)
		elog(ERROR, "salesmgmt.reporting_currency is not set");
	InitMaterializedSRF(fcinfo, 0);

	run = MemoryContextAllocZero(CurTransactionContext, sizeof(CmRun));
	run->run_cxt = AllocSetContextCreate(CurTransactionContext, "salesmgmt commission run",
										 ALLOCSET_DEFAULT_SIZES);
	run->rep_cxt = AllocSetContextCreate(run->run_cxt, "salesmgmt commission rep", ALLOCSET_DEFAULT_SIZES);
	run->line_cxt = AllocSetContextCreate(run->run_cxt, "salesmgmt commission lines", ALLOCSET_DEFAULT_SIZES);
	run->tmp_cxt = AllocSetContextCreate(run->run_cxt, "salesmgmt commission scratch", ALLOCSET_DEFAULT_SIZES);
	run->start = start;
	run->end = end;
	run->start_ts = cm_date_ts(start);
	run->end_ts = cm_date_ts(end + 1);
	run->aligned = true;
	strlcpy(run->currency, sm_reporting_currency, sizeof(run->currency));

	SPI_connect();
	cm_engine_active = true;
	PG_TRY();
	{
		cm_run(run, rsinfo);
	}
	PG_FINALLY();
	{
		cm_engine_active = false;
	}
	PG_END_TRY();
	SPI_finish();
	MemoryContextSwitchTo(caller);
	MemoryContextDelete(run->run_cxt);
	pfree(run);
	return (Datum) 0;
}

/*
 * The registered period [start, end] under the SHARE ROW EXCLUSIVE lock,
 * refusing a final one (SM010), one never run, or other bounds.
 */
static void
cm_open_period(DateADT start, DateADT end, const char *verb)
{
	Oid			types[2] = {DATEOID, DATEOID};
	Datum		values[2] = {DateADTGetDatum(start), DateADTGetDatum(end)};
	SPITupleTable *tt;
	uint64		n;
	bool		isnull;
	DateADT		ps,
				pe;

	LockRelationOid(sm_relation_oid("commission_period"), ShareRowExclusiveLock);
	tt = cm_query("SELECT period_start, period_end, status = 'final' FROM salesmgmt.commission_period"
				  " WHERE period_start <= $2 AND period_end >= $1 ORDER BY period_start LIMIT 1",
				  2, types, values, NULL, false, SPI_OK_SELECT, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("commission period %s has not been run", cm_range_str(start, end)),
				 errhint("Run salesmgmt.run_commissions('%s', '%s') first.",
						 cm_date_str(start), cm_date_str(end))));
	ps = DatumGetDateADT(cm_col(tt, 0, 1, &isnull));
	pe = DatumGetDateADT(cm_col(tt, 0, 2, &isnull));
	if (DatumGetBool(cm_col(tt, 0, 3, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_SM_PERIOD_FINALIZED),
				 ps == start && pe == end
				 ? errmsg("commission period %s is already finalized", cm_range_str(ps, pe))
				 : errmsg("commission period %s overlaps the finalized period %s",
						  cm_range_str(start, end), cm_range_str(ps, pe)),
				 errhint("Finalized periods never change; corrections go into the open period.")));
	if (ps != start || pe != end)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("commission period %s is not the period that was run, %s",
						cm_range_str(start, end), cm_range_str(ps, pe)),
				 errhint("%s exactly %s.", verb, cm_range_str(ps, pe))));
	SPI_freetuptable(tt);
}

Datum
sm_finalize_commissions(PG_FUNCTION_ARGS)
{
	DateADT		start,
				end;
	Oid			types[3] = {DATEOID, DATEOID, TEXTOID};
	Datum		values[3];
	uint64		n = 0;

	cm_period_args(fcinfo, &start, &end);
	values[0] = DateADTGetDatum(start);
	values[1] = DateADTGetDatum(end);
	values[2] = CStringGetTextDatum(cm_outer_user());
	SPI_connect();
	cm_open_period(start, end, "Finalize");
	cm_engine_active = true;
	PG_TRY();
	{
		cm_query("UPDATE salesmgmt.commission_period SET status = 'final', finalized_at = now(),"
				 "       finalized_by = $3 WHERE period_start = $1",
				 3, types, values, NULL, false, SPI_OK_UPDATE, NULL);
		cm_query("UPDATE salesmgmt.commission_line SET status = 'final'"
				 " WHERE period_start = $1 AND period_end = $2 AND status = 'draft'",
				 2, types, values, NULL, false, SPI_OK_UPDATE, &n);
	}
	PG_FINALLY();
	{
		cm_engine_active = false;
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_INT64((int64) n);
}

Datum
sm_discard_commissions(PG_FUNCTION_ARGS)
{
	DateADT		start,
				end;
	Oid			types[2] = {DATEOID, DATEOID};
	Datum		values[2];
	uint64		n = 0;

	cm_period_args(fcinfo, &start, &end);
	values[0] = DateADTGetDatum(start);
	values[1] = DateADTGetDatum(end);
	SPI_connect();
	cm_open_period(start, end, "Discard");
	cm_engine_active = true;
	PG_TRY();
	{
		cm_query("DELETE FROM salesmgmt.commission_line WHERE period_start = $1 AND period_end = $2",
				 2, types, values, NULL, false, SPI_OK_DELETE, &n);
		cm_query("DELETE FROM salesmgmt.commission_period WHERE period_start = $1",
				 1, types, values, NULL, false, SPI_OK_DELETE, NULL);
	}
	PG_FINALLY();
	{
		cm_engine_active = false;
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_INT64((int64) n);
}

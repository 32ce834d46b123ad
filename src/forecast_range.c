/*-------------------------------------------------------------------------
 *
 * forecast_range.c
 *	  salesmgmt.forecast_range: the Monte Carlo range of a period's revenue.
 *
 * The model of a call is in forecast.h, the overview in forecast.c.
 *
 *-------------------------------------------------------------------------
 */
#include "forecast.h"
#include "forecast_dist.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "optimizer/cost.h"
#include "port/atomics.h"
#include "storage/shm_toc.h"

PG_FUNCTION_INFO_V1(sm_forecast_range);

/* the entry point of forecast_range's parallel workers (access/parallel.c) */
PGDLLEXPORT void sm_forecast_range_worker(dsm_segment *seg, shm_toc *toc);

/* ------------------------------------------------------------------------
 * salesmgmt.forecast_range
 * ------------------------------------------------------------------------
 */

/* the result columns of salesmgmt.forecast_range, in order */
typedef enum FrCol
{
	FR_COL_MEAN,
	FR_COL_STDDEV,
	FR_COL_P10,
	FR_COL_P50,
	FR_COL_P90,
	FR_COL_MIN,
	FR_COL_MAX,
	FR_COL_SIMULATIONS,
	FR_COL_CLOSED_WON,
	FR_COL_OPEN_DEALS,
	FR_COL_EXPECTED,
	FR_COL_EXPECTED_STDDEV,
	FR_COL_CURRENCY,
	FR_NCOLUMNS
} FrCol;

static const char *const fc_range_columns[] = {
	"mean", "stddev", "p10", "p50", "p90", "min", "max", "simulations",
	"closed_won", "open_deals", "expected", "expected_stddev", "currency"
};

StaticAssertDecl(lengthof(fc_range_columns) == FR_NCOLUMNS,
				 "every column of salesmgmt.forecast_range is named");

/* ------------------------------------------------------------------------
 * The simulation, in parallel
 *
 * The draws are most of the time of a large forecast_range (100,000 open
 * deals times 10,000 simulations are a billion of them), and they split
 * without changing a bit of the answer: a deal's outcome in simulation i
 * depends only on (seed, deal, i), and each participant owns whole
 * simulations, so every total is the same integer sum whoever adds it.
 * The leader puts the open deals in dynamic shared memory and launches up
 * to max_parallel_workers_per_gather workers (access/parallel.c, as CREATE
 * INDEX does); every participant, the leader too, takes chunks of
 * simulations from a shared counter until none is left, so a worker that
 * could not be launched costs nothing but its share of speed.
 * ------------------------------------------------------------------------
 */

#define FR_PARALLEL_KEY		UINT64CONST(0x53A1E5F0C0000001)
#define FR_CHUNK			256 /* simulations a participant takes at a time */

/*
 * Fewer draws than this (deals times simulations) are simulated by the
 * leader alone: starting workers takes a few milliseconds, about what a
 * single process needs for ten million draws.
 */
#define FR_PARALLEL_MIN_DRAWS	INT64CONST(10000000)

typedef struct FrShared
{
	int64		seed;
	int32		nsim;
	int32		ndeals;
	pg_atomic_uint32 next_chunk;
	pg_atomic_uint32 overflow;
	/* then, each MAXALIGNed: deal ids, cents, thresholds (ndeals each), totals (nsim) */
} FrShared;

#define FR_DEALS_OFFSET			MAXALIGN(sizeof(FrShared))
#define FR_ARRAY_SIZE(n)		MAXALIGN(sizeof(int64) * (Size) (n))
#define FR_SHARED_SIZE(ndeals, nsim) \
	(FR_DEALS_OFFSET + 3 * FR_ARRAY_SIZE(ndeals) + FR_ARRAY_SIZE(nsim))

static inline int64 *
fr_deal_ids(FrShared *sh)
{
	return (int64 *) ((char *) sh + FR_DEALS_OFFSET);
}

static inline int64 *
fr_cents(FrShared *sh)
{
	return (int64 *) ((char *) sh + FR_DEALS_OFFSET + FR_ARRAY_SIZE(sh->ndeals));
}

static inline uint64 *
fr_thresholds(FrShared *sh)
{
	return (uint64 *) ((char *) sh + FR_DEALS_OFFSET + 2 * FR_ARRAY_SIZE(sh->ndeals));
}

static inline int64 *
fr_totals(FrShared *sh)
{
	return (int64 *) ((char *) sh + FR_DEALS_OFFSET + 3 * FR_ARRAY_SIZE(sh->ndeals));
}

/* a participant's loop: chunks of simulations until none is left */
static void
fr_participate(FrShared *sh)
{
	for (;;)
	{
		uint32		chunk = pg_atomic_fetch_add_u32(&sh->next_chunk, 1);
		int64		from = (int64) chunk * FR_CHUNK;

		if (from >= sh->nsim)
			break;
		CHECK_FOR_INTERRUPTS();
		if (fd_add_deals_slice(fr_totals(sh), sh->seed, (int) from,
							   (int) Min(from + FR_CHUNK, sh->nsim), sh->ndeals,
							   fr_deal_ids(sh), fr_cents(sh), fr_thresholds(sh)))
			pg_atomic_write_u32(&sh->overflow, 1);
	}
}

void
sm_forecast_range_worker(dsm_segment *seg, shm_toc *toc)
{
	fr_participate(shm_toc_lookup(toc, FR_PARALLEL_KEY, false));
}

/* a deal's probability (1/10000) as the threshold of its 32-bit draws */
static inline uint64
fr_threshold(int32 p)
{
	return (((uint64) p << 32) + FC_UNIT / 2) / FC_UNIT;
}

/*
 * How many workers to ask for: none when the call is small, when this
 * backend is already in parallel mode (forecast_range inside a parallel
 * query's leader) or when max_parallel_workers_per_gather is 0.
 */
static int
fr_parallel_workers(FcCall *c, int nsim)
{
	if (max_parallel_workers_per_gather <= 0 || IsInParallelMode() ||
		(int64) c->nopen * nsim < FR_PARALLEL_MIN_DRAWS)
		return 0;
	return Min(max_parallel_workers_per_gather, (nsim + FR_CHUNK - 1) / FR_CHUNK);
}

/*
 * Simulate: in each run every open deal is won with its probability, by
 * the draws of forecast_dist.c (a deal's outcome in run i depends only on
 * the seed, its deal_id and i, so the order of the scan does not matter and
 * forecast_dist_agg over the same deals gives the same totals).  A deal of
 * probability p (in 1/10000) is won when its 32-bit uniform is below
 * round(p * 2^32 / 10000), which is exact for p = 0 and p = 1 and within
 * 2^-33 of p otherwise.
 */
static ForecastDist *
fc_simulate(FcCall *c, int nsim, int64 seed)
{
	ForecastDist *fd = fd_make(nsim, seed);
	int			nworkers = fr_parallel_workers(c, nsim);
	ParallelContext *pcxt;
	FrShared   *sh;
	Size		size;
	int			i;

	if (nworkers == 0)
	{
		for (i = 0; i < c->nopen; i++)
		{
			CHECK_FOR_INTERRUPTS();
			fd_add_deal(fd, c->open_id[i], c->open_cents[i], fr_threshold(c->open_p[i]));
		}
		return fd;
	}

	size = FR_SHARED_SIZE(c->nopen, nsim);
	EnterParallelMode();
	pcxt = CreateParallelContext("salesmgmt", "sm_forecast_range_worker", nworkers);
	shm_toc_estimate_chunk(&pcxt->estimator, size);
	shm_toc_estimate_keys(&pcxt->estimator, 1);
	InitializeParallelDSM(pcxt);

	sh = shm_toc_allocate(pcxt->toc, size);
	sh->seed = seed;
	sh->nsim = nsim;
	sh->ndeals = c->nopen;
	pg_atomic_init_u32(&sh->next_chunk, 0);
	pg_atomic_init_u32(&sh->overflow, 0);
	memcpy(fr_deal_ids(sh), c->open_id, sizeof(int64) * (Size) c->nopen);
	memcpy(fr_cents(sh), c->open_cents, sizeof(int64) * (Size) c->nopen);
	for (i = 0; i < c->nopen; i++)
		fr_thresholds(sh)[i] = fr_threshold(c->open_p[i]);
	memset(fr_totals(sh), 0, sizeof(int64) * (Size) nsim);
	shm_toc_insert(pcxt->toc, FR_PARALLEL_KEY, sh);

	LaunchParallelWorkers(pcxt);
	ereport(DEBUG1,
			(errmsg_internal("forecast_range: %d of %d parallel workers launched for " INT64_FORMAT " draws",
							 pcxt->nworkers_launched, nworkers, (int64) c->nopen * nsim)));
	fr_participate(sh);
	WaitForParallelWorkersToFinish(pcxt);

	if (pg_atomic_read_u32(&sh->overflow) != 0)
		fd_overflow();
	memcpy(fd->totals, fr_totals(sh), sizeof(int64) * (Size) nsim);
	fd->ndeals = c->nopen;

	DestroyParallelContext(pcxt);
	ExitParallelMode();
	return fd;
}

/*
 * salesmgmt.forecast_range(from, to, team, simulations, seed): the
 * closed-won revenue plus a Monte Carlo simulation of the open deals, each
 * won with its effective probability; returns one row (columns: FrCol).
 */
Datum
sm_forecast_range(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FcCall		call;
	FcCall	   *c = &call;
	int			nsim;
	int64		seed;
	ForecastDist *fd;
	int64	   *sorted;
	Numeric		fig[FC_NFIGURES];
	Numeric		weighted;
	Numeric		(*figs)[FC_NFIGURES + 1];
	Numeric		won_exact;
	double		exact_var = 0;
	Datum		values[FR_NCOLUMNS];
	bool		nulls[FR_NCOLUMNS];
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("forecast period must not be null"),
				 errhint("Pass the first and last day of the period as p_from and p_to.")));
	if (PG_ARGISNULL(3) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("number of simulations and seed must not be null"),
				 errhint("Leave them out to simulate 10000 times with seed 0.")));
	nsim = PG_GETARG_INT32(3);
	seed = PG_GETARG_INT64(4);
	if (nsim < 1 || nsim > FC_MAX_SIMULATIONS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of simulations must be between 1 and %d, not %d",
						FC_MAX_SIMULATIONS, nsim),
				 errhint("10000 simulations give percentiles to about 1%% of the spread.")));

	InitMaterializedSRF(fcinfo, 0);
	sm_check_result_columns(rsinfo->setDesc, fc_range_columns, FR_NCOLUMNS);
	fc_init_call(c, fcinfo, PG_GETARG_DATEADT(0), PG_GETARG_DATEADT(1));
	fc_set_currency(c, fcinfo, -1);
	c->kind = FC_GROUP_TOTAL;
	c->simulate = true;
	c->need_splits = !PG_ARGISNULL(2);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	fc_load_catalog(c);
	if (!PG_ARGISNULL(2))
	{
		int64		team_id = PG_GETARG_INT64(2);
		int			r;

		c->scope_team = fc_lookup(c->team_map, team_id);
		if (c->scope_team < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("team " INT64_FORMAT " does not exist", team_id),
					 errhint("See SELECT team_id, name FROM salesmgmt.team; pass NULL for everyone.")));
		/* the reps below the team, now that the team is known */
		for (r = 0; r < c->nreps; r++)
		{
			int			team = c->reps[r].team;
			int			k;

			if (team < 0)
				continue;
			for (k = 0; k < c->teams[team].nchain; k++)
				if (c->teams[team].chain[k] == c->scope_team)
					c->reps[r].in_scope = true;
		}
	}
	fc_make_groups(c);
	fc_scan_deals(c);

	/* the exact closed-won revenue and expected value */
	figs = palloc(sizeof(*figs));
	fc_group_figures(c, 0, figs[0], &figs[0][FC_NFIGURES],
					 sm_numeric_from_cstring("0.000001"),
					 sm_numeric_from_cstring("0.0000000001"));
	fc_add_foreign(c, figs, sm_numeric_from_cstring("0.000001"),
				   sm_numeric_from_cstring("0.0000000001"));
	for (i = 0; i < FC_NFIGURES; i++)
		fig[i] = figs[0][i];
	weighted = figs[0][FC_NFIGURES];
	won_exact = fig[FC_WON];

	/* simulate the open deals; the exact variance beside it */
	for (i = 0; i < c->nopen; i++)
	{
		double		v = (double) c->open_cents[i];
		double		p = (double) c->open_p[i] / FC_UNIT;

		exact_var += v * v * p * (1 - p);
	}
	fd = fc_simulate(c, nsim, seed);
	sorted = fd_sorted(fd);

	memset(nulls, 0, sizeof(nulls));
	values[FR_COL_MEAN] = NumericGetDatum(sm_numeric_round(sm_numeric_add(won_exact, fd_mean_units(fd)), 2));
	values[FR_COL_STDDEV] = fd_money(fd_stddev_cents(fd), NULL);
	values[FR_COL_P10] = fd_money(fd_quantile(sorted, nsim, 0.1), won_exact);
	values[FR_COL_P50] = fd_money(fd_quantile(sorted, nsim, 0.5), won_exact);
	values[FR_COL_P90] = fd_money(fd_quantile(sorted, nsim, 0.9), won_exact);
	values[FR_COL_MIN] = fd_money((double) sorted[0], won_exact);
	values[FR_COL_MAX] = fd_money((double) sorted[nsim - 1], won_exact);
	values[FR_COL_SIMULATIONS] = Int32GetDatum(nsim);
	values[FR_COL_CLOSED_WON] = NumericGetDatum(sm_numeric_round(won_exact, 2));
	values[FR_COL_OPEN_DEALS] = Int64GetDatum(c->nopen);
	values[FR_COL_EXPECTED] = NumericGetDatum(sm_numeric_round(sm_numeric_add(won_exact, weighted), 2));
	values[FR_COL_EXPECTED_STDDEV] = fd_money(sqrt(exact_var), NULL);
	values[FR_COL_CURRENCY] = DirectFunctionCall3(bpcharin, CStringGetDatum(c->target),
									 ObjectIdGetDatum(InvalidOid), Int32GetDatum(7));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);

	SPI_finish();
	return (Datum) 0;
}

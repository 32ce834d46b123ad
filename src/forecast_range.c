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

PG_FUNCTION_INFO_V1(sm_forecast_range);

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

/* order the open deals by deal_id, so that the draws do not depend on
 * the order the scan happened to return them in */
typedef struct FcOpenDeal
{
	int64		id;
	int64		cents;
	int32		p;
} FcOpenDeal;

static int
fc_open_cmp(const void *a, const void *b)
{
	int64		x = ((const FcOpenDeal *) a)->id;
	int64		y = ((const FcOpenDeal *) b)->id;

	return (x > y) - (x < y);
}

static int
fc_int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* the q-quantile of n sorted values, interpolated like percentile_cont */
static double
fc_quantile(const int64 *sorted, int n, double q)
{
	double		pos = q * (n - 1);
	int			lo = (int) floor(pos);
	int			hi = Min(lo + 1, n - 1);

	return sorted[lo] + (pos - lo) * (double) (sorted[hi] - sorted[lo]);
}

static Datum
fc_money_datum(double v)
{
	return NumericGetDatum(sm_numeric_round(DatumGetNumeric(DirectFunctionCall1(float8_numeric,
																				Float8GetDatum(v))),
											2));
}

/*
 * Simulate: in each run every open deal is won with its probability.  The
 * draws are branch-free: a 64-bit random number gives two independent
 * 32-bit uniforms u, and a deal of probability p (in 1/10000) is won when
 * u < round(p * 2^32 / 10000), which is exact for p = 0 and p = 1 and
 * within 2^-33 of p otherwise.  Deals of probability 0 or 1 need no draw.
 */
static void
fc_simulate(const FcOpenDeal *deals, int n, int nsim, uint64 seed, int64 *totals)
{
	int64	   *cents = palloc(sizeof(int64) * Max(n, 1));
	uint64	   *threshold = palloc(sizeof(uint64) * Max(n, 1));
	int64		certain = 0;
	int			m = 0;
	int			i,
				s;
	pg_prng_state prng;

	for (i = 0; i < n; i++)
	{
		if (deals[i].p <= 0)
			continue;
		if (deals[i].p >= FC_UNIT)
		{
			certain += deals[i].cents;
			continue;
		}
		cents[m] = deals[i].cents;
		threshold[m] = (((uint64) deals[i].p << 32) + FC_UNIT / 2) / FC_UNIT;
		m++;
	}

	pg_prng_seed(&prng, seed);
	for (s = 0; s < nsim; s++)
	{
		int64		t = certain;

		CHECK_FOR_INTERRUPTS();
		for (i = 0; i + 1 < m; i += 2)
		{
			uint64		r = pg_prng_uint64(&prng);

			t += cents[i] & -(int64) ((r & 0xFFFFFFFF) < threshold[i]);
			t += cents[i + 1] & -(int64) ((r >> 32) < threshold[i + 1]);
		}
		if (i < m)
		{
			uint64		r = pg_prng_uint64(&prng);

			t += cents[i] & -(int64) ((r & 0xFFFFFFFF) < threshold[i]);
		}
		totals[s] = t;
	}
	pfree(cents);
	pfree(threshold);
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
	FcOpenDeal *deals;
	int64	   *totals;
	Numeric		fig[FC_NFIGURES];
	Numeric		weighted;
	Numeric		(*figs)[FC_NFIGURES + 1];
	Numeric		won_exact;
	double		won,
				mean,
				var = 0,
				exact_var = 0;
	INT128		sum = int64_to_int128(0);
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
	won = sm_numeric_to_double(won_exact);

	/* simulate over the open deals in deal_id order */
	deals = palloc_extended(sizeof(FcOpenDeal) * Max(c->nopen, 1), MCXT_ALLOC_HUGE);
	for (i = 0; i < c->nopen; i++)
	{
		double		v = (double) c->open_cents[i];
		double		p = (double) c->open_p[i] / FC_UNIT;

		deals[i].id = c->open_id[i];
		deals[i].cents = c->open_cents[i];
		deals[i].p = c->open_p[i];
		exact_var += v * v * p * (1 - p);
	}
	qsort(deals, c->nopen, sizeof(FcOpenDeal), fc_open_cmp);
	totals = palloc_extended(sizeof(int64) * nsim, MCXT_ALLOC_HUGE);
	fc_simulate(deals, c->nopen, nsim, (uint64) seed, totals);

	for (i = 0; i < nsim; i++)
		int128_add_int64(&sum, totals[i]);
	mean = sm_numeric_to_double(fc_int128_numeric(sum, int64_to_numeric(1))) / nsim;
	for (i = 0; i < nsim; i++)
		var += ((double) totals[i] - mean) * ((double) totals[i] - mean);
	var = (nsim > 1) ? var / (nsim - 1) : 0;
	qsort(totals, nsim, sizeof(int64), fc_int64_cmp);

	memset(nulls, 0, sizeof(nulls));
	values[FR_COL_MEAN] = fc_money_datum(won + mean / 100);
	values[FR_COL_STDDEV] = fc_money_datum(sqrt(var) / 100);
	values[FR_COL_P10] = fc_money_datum(won + fc_quantile(totals, nsim, 0.1) / 100);
	values[FR_COL_P50] = fc_money_datum(won + fc_quantile(totals, nsim, 0.5) / 100);
	values[FR_COL_P90] = fc_money_datum(won + fc_quantile(totals, nsim, 0.9) / 100);
	values[FR_COL_MIN] = fc_money_datum(won + (double) totals[0] / 100);
	values[FR_COL_MAX] = fc_money_datum(won + (double) totals[nsim - 1] / 100);
	values[FR_COL_SIMULATIONS] = Int32GetDatum(nsim);
	values[FR_COL_CLOSED_WON] = NumericGetDatum(sm_numeric_round(won_exact, 2));
	values[FR_COL_OPEN_DEALS] = Int64GetDatum(c->nopen);
	values[FR_COL_EXPECTED] = NumericGetDatum(sm_numeric_round(sm_numeric_add(won_exact, weighted), 2));
	values[FR_COL_EXPECTED_STDDEV] = fc_money_datum(sqrt(exact_var) / 100);
	values[FR_COL_CURRENCY] = DirectFunctionCall3(bpcharin, CStringGetDatum(c->target),
									 ObjectIdGetDatum(InvalidOid), Int32GetDatum(7));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);

	SPI_finish();
	return (Datum) 0;
}

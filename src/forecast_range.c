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
	int			i;

	for (i = 0; i < c->nopen; i++)
	{
		CHECK_FOR_INTERRUPTS();
		fd_add_deal(fd, c->open_id[i], c->open_cents[i],
					(((uint64) c->open_p[i] << 32) + FC_UNIT / 2) / FC_UNIT);
	}
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

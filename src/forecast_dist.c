/*-------------------------------------------------------------------------
 *
 * forecast_dist.c
 *	  salesmgmt.forecast_dist, the state of a Monte Carlo forecast as a
 *	  value that merges: the type, its text and binary forms, the
 *	  aggregate forecast_dist_agg (with a combine function, for parallel
 *	  and distributed aggregation), `+`, and the statistics
 *	  (percentile, mean, stddev, histogram).  forecast_range.c simulates
 *	  with the same functions.
 *
 * The draws.  Whether deal d is won in simulation i is decided by a
 * counter-based generator: the deal's key k = mix(mix(seed) ^ d * G2) and
 * the i-th number of the deal's own SplitMix64 stream, mix(k + (i + 1) G),
 * where mix is SplitMix64's finaliser and G its odd constant.  Its top 32
 * bits are a uniform u, and the deal is won when u < round(p 2^32): exact
 * for p = 0 and p = 1, within 2^-33 of p otherwise.  No draw depends on
 * another deal, on the order of the rows or on the process that made it,
 * so a state is the element-wise sum of the states of any partition of
 * its deals: parallel workers, partitions and shards give exactly the
 * result of one process.
 *
 * Money.  Amounts are numeric; a state holds, per simulation, the sum of
 * the amounts won in whole cents as int64 (amounts are rounded to cents
 * once, on the way in).  That keeps the sums exact, the merge a plain
 * integer addition and the value 8 bytes per simulation; a sum that would
 * not fit (beyond +-92 trillion in currency units) is an error, never a
 * wrapped number.  The statistics are derived: mean exact (numeric),
 * percentiles interpolated like percentile_cont, standard deviation in
 * double precision, all rounded to cents.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/int.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"

#include "compat.h"
#include "forecast.h"
#include "forecast_dist.h"

PG_FUNCTION_INFO_V1(sm_forecast_dist_in);
PG_FUNCTION_INFO_V1(sm_forecast_dist_out);
PG_FUNCTION_INFO_V1(sm_forecast_dist_sfunc);
PG_FUNCTION_INFO_V1(sm_forecast_dist_combine);
PG_FUNCTION_INFO_V1(sm_forecast_dist_send);
PG_FUNCTION_INFO_V1(sm_forecast_dist_recv);
PG_FUNCTION_INFO_V1(sm_forecast_dist_final);
PG_FUNCTION_INFO_V1(sm_forecast_dist_plus);
PG_FUNCTION_INFO_V1(sm_forecast_dist_percentile);
PG_FUNCTION_INFO_V1(sm_forecast_dist_mean);
PG_FUNCTION_INFO_V1(sm_forecast_dist_stddev);
PG_FUNCTION_INFO_V1(sm_forecast_dist_simulations);
PG_FUNCTION_INFO_V1(sm_forecast_dist_deals);
PG_FUNCTION_INFO_V1(sm_forecast_dist_histogram);

#define FD_GAMMA	UINT64CONST(0x9E3779B97F4A7C15)
#define FD_G2		UINT64CONST(0xD6E8FEB86659FD93)

/* most buckets histogram() returns */
#define FD_MAX_BUCKETS	10000

#define PG_GETARG_FD_P(n)	((ForecastDist *) PG_DETOAST_DATUM(PG_GETARG_DATUM(n)))

/* SplitMix64's finaliser */
static inline uint64
fd_mix(uint64 z)
{
	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

void
fd_overflow(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("forecast distribution total out of range"),
			 errdetail("A simulated total must stay within +-92,233,720,368,547,758.07."),
			 errhint("Forecast smaller sets of deals and add the figures up as numeric.")));
}

static void
fd_check_simulations(int64 nsim)
{
	if (nsim < 1 || nsim > FD_MAX_SIMULATIONS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of simulations must be between 1 and %d, not " INT64_FORMAT,
						FD_MAX_SIMULATIONS, nsim),
				 errhint("10000 simulations give percentiles to about 1%% of the spread.")));
}

/* a state of nsim zero totals, in the current memory context */
ForecastDist *
fd_make(int32 nsim, int64 seed)
{
	ForecastDist *fd;

	fd_check_simulations(nsim);
	fd = palloc_extended(FD_SIZE(nsim), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	SET_VARSIZE(fd, FD_SIZE(nsim));
	fd->version = FD_LAYOUT_VERSION;
	fd->nsim = nsim;
	fd->seed = seed;
	return fd;
}

/* the key of a deal's draws: every draw of the deal derives from it */
static inline uint64
fd_deal_key(int64 seed, int64 deal_id)
{
	return fd_mix(fd_mix((uint64) seed) ^ ((uint64) deal_id * FD_G2));
}

/*
 * Add a deal's amount (cents) to the totals of simulations [from, to) in
 * which its draw is below threshold (round(p 2^32)).  Returns true when a
 * total overflowed.
 */
static inline bool
fd_add_span(int64 *t, uint64 key, int64 cents, uint64 threshold, int from, int to)
{
	bool		overflow = false;
	int			i;

	if (threshold >= FD_THRESHOLD_ONE)
	{
		for (i = from; i < to; i++)
			overflow |= pg_add_s64_overflow(t[i], cents, &t[i]);
	}
	else
	{
		for (i = from; i < to; i++)
		{
			uint64		u = fd_mix(key + (uint64) (i + 1) * FD_GAMMA) >> 32;

			overflow |= pg_add_s64_overflow(t[i], cents & -(int64) (u < threshold), &t[i]);
		}
	}
	return overflow;
}

/* Add one deal to every simulation of fd. */
void
fd_add_deal(ForecastDist *fd, int64 deal_id, int64 cents, uint64 threshold)
{
	fd->ndeals++;
	if (cents == 0 || threshold == 0)
		return;
	if (fd_add_span(fd->totals, fd_deal_key(fd->seed, deal_id), cents, threshold, 0, fd->nsim))
		fd_overflow();
}

/*
 * Add n deals to the totals of simulations [from, to) only (totals indexed
 * from simulation 0): a slice of what fd_add_deal does for each of them,
 * for a parallel participant that owns the slice.  The deals are taken in
 * slices of simulations, not the simulations in slices of deals, so that a
 * slice of totals stays in the cache while the deals stream past.  Returns
 * true when a total overflowed (the caller raises fd_overflow).
 */
bool
fd_add_deals_slice(int64 *totals, int64 seed, int from, int to, int n,
				   const int64 *deal_ids, const int64 *cents, const uint64 *thresholds)
{
	bool		overflow = false;
	int			d;

	for (d = 0; d < n; d++)
		if (cents[d] != 0 && thresholds[d] != 0)
			overflow |= fd_add_span(totals, fd_deal_key(seed, deal_ids[d]), cents[d],
									thresholds[d], from, to);
	return overflow;
}

/* sample standard deviation of the totals, in cents */
double
fd_stddev_cents(const ForecastDist *fd)
{
	double		mean = 0,
				var = 0;
	int			i;

	if (fd->nsim < 2)
		return 0;
	for (i = 0; i < fd->nsim; i++)
		mean += (double) fd->totals[i];
	mean /= fd->nsim;
	for (i = 0; i < fd->nsim; i++)
		var += ((double) fd->totals[i] - mean) * ((double) fd->totals[i] - mean);
	return sqrt(var / (fd->nsim - 1));
}

/* mean of the totals, exact, in currency units (not rounded) */
Numeric
fd_mean_units(const ForecastDist *fd)
{
	INT128		sum = int64_to_int128(0);
	int			i;

	for (i = 0; i < fd->nsim; i++)
		int128_add_int64(&sum, fd->totals[i]);
	return sm_numeric_div(fc_int128_numeric(sum, sm_numeric_from_cstring("0.01")),
						  int64_to_numeric(fd->nsim));
}

static int
fd_int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* the totals in ascending order, a palloc'd copy */
int64 *
fd_sorted(const ForecastDist *fd)
{
	int64	   *s = palloc_extended(sizeof(int64) * fd->nsim, MCXT_ALLOC_HUGE);

	memcpy(s, fd->totals, sizeof(int64) * fd->nsim);
	qsort(s, fd->nsim, sizeof(int64), fd_int64_cmp);
	return s;
}

/* the q-quantile of n sorted values, interpolated like percentile_cont */
double
fd_quantile(const int64 *sorted, int n, double q)
{
	double		pos = q * (n - 1);
	int			lo = (int) floor(pos);
	int			hi = Min(lo + 1, n - 1);

	return sorted[lo] + (pos - lo) * (double) (sorted[hi] - sorted[lo]);
}

/* offset + cents / 100, rounded to cents (offset NULL: 0) */
Datum
fd_money(double cents, Numeric offset)
{
	double		whole = floor(cents);
	Numeric		n;

	/* the whole cents exactly, the fraction through float8 */
	n = sm_numeric_add(int64_to_numeric((int64) whole),
					   DatumGetNumeric(DirectFunctionCall1(float8_numeric,
														   Float8GetDatum(cents - whole))));
	n = sm_numeric_div(n, int64_to_numeric(100));
	if (offset != NULL)
		n = sm_numeric_add(offset, n);
	return NumericGetDatum(sm_numeric_round(n, 2));
}

/* ------------------------------------------------------------------------
 * Text form: {"seed": 42, "deals": 3, "totals": [100.00, 250.50, 0.00]},
 * JSON that BI tools read (totals in currency units, one per simulation).
 * ------------------------------------------------------------------------
 */

static void
fd_append_cents(StringInfo buf, int64 cents)
{
	uint64		a = cents < 0 ? -(uint64) cents : (uint64) cents;

	appendStringInfo(buf, "%s" UINT64_FORMAT ".%02d", cents < 0 ? "-" : "",
					 a / 100, (int) (a % 100));
}

Datum
sm_forecast_dist_out(PG_FUNCTION_ARGS)
{
	ForecastDist *fd = PG_GETARG_FD_P(0);
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"seed\": " INT64_FORMAT ", \"deals\": " INT64_FORMAT ", \"totals\": [",
					 fd->seed, fd->ndeals);
	for (i = 0; i < fd->nsim; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		fd_append_cents(&buf, fd->totals[i]);
	}
	appendStringInfoString(&buf, "]}");
	PG_RETURN_CSTRING(buf.data);
}

typedef struct FdParser
{
	const char *input;
	const char *p;
} FdParser;

sm_noreturn_before static void fd_syntax(FdParser *ps, const char *what) sm_noreturn_after;

static void
fd_syntax(FdParser *ps, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type forecast_dist: \"%s\"", ps->input),
			 errdetail("Expected %s at character %d.", what, (int) (ps->p - ps->input) + 1),
			 errhint("Write {\"seed\": 42, \"deals\": 3, \"totals\": [100.00, 250.50, 0.00]}, one total in currency units (at most 2 decimals) per simulation.")));
}

static void
fd_expect(FdParser *ps, const char *token)
{
	while (isspace((unsigned char) *ps->p))
		ps->p++;
	if (strncmp(ps->p, token, strlen(token)) != 0)
		fd_syntax(ps, psprintf("\"%s\"", token));
	ps->p += strlen(token);
	while (isspace((unsigned char) *ps->p))
		ps->p++;
}

/* an integer, or with max_decimals > 0 an amount, as an int64 x 10^max_decimals */
static int64
fd_parse_number(FdParser *ps, int max_decimals)
{
	bool		neg = false;
	int64		v = 0;
	int			digits = 0,
				decimals = 0;

	if (*ps->p == '-')
	{
		neg = true;
		ps->p++;
	}
	while (isdigit((unsigned char) *ps->p))
	{
		if (pg_mul_s64_overflow(v, 10, &v) || pg_sub_s64_overflow(v, *ps->p - '0', &v))
			fd_syntax(ps, "a number within range");
		ps->p++;
		digits++;
	}
	if (digits == 0)
		fd_syntax(ps, "a number");
	if (max_decimals > 0 && *ps->p == '.')
	{
		ps->p++;
		while (isdigit((unsigned char) *ps->p))
		{
			if (++decimals > max_decimals)
				fd_syntax(ps, "at most 2 decimals");
			if (pg_mul_s64_overflow(v, 10, &v) || pg_sub_s64_overflow(v, *ps->p - '0', &v))
				fd_syntax(ps, "a number within range");
			ps->p++;
		}
		if (decimals == 0)
			fd_syntax(ps, "a digit after the decimal point");
	}
	for (; decimals < max_decimals; decimals++)
		if (pg_mul_s64_overflow(v, 10, &v))
			fd_syntax(ps, "a number within range");
	/* accumulated negatively, so that the smallest int64 parses */
	if (!neg)
	{
		if (v == PG_INT64_MIN)
			fd_syntax(ps, "a number within range");
		v = -v;
	}
	return v;
}

Datum
sm_forecast_dist_in(PG_FUNCTION_ARGS)
{
	FdParser	ps;
	int64		seed,
				ndeals;
	int64	   *totals;
	int			n = 0,
				alloc = 64;
	ForecastDist *fd;

	ps.input = PG_GETARG_CSTRING(0);
	ps.p = ps.input;
	fd_expect(&ps, "{");
	fd_expect(&ps, "\"seed\"");
	fd_expect(&ps, ":");
	seed = fd_parse_number(&ps, 0);
	fd_expect(&ps, ",");
	fd_expect(&ps, "\"deals\"");
	fd_expect(&ps, ":");
	ndeals = fd_parse_number(&ps, 0);
	if (ndeals < 0)
		fd_syntax(&ps, "a number of deals that is not negative");
	fd_expect(&ps, ",");
	fd_expect(&ps, "\"totals\"");
	fd_expect(&ps, ":");
	fd_expect(&ps, "[");
	totals = palloc(sizeof(int64) * alloc);
	for (;;)
	{
		if (n >= FD_MAX_SIMULATIONS)
			fd_syntax(&ps, psprintf("at most %d totals", FD_MAX_SIMULATIONS));
		if (n >= alloc)
		{
			alloc *= 2;
			totals = repalloc_huge(totals, sizeof(int64) * alloc);
		}
		totals[n++] = fd_parse_number(&ps, 2);
		while (isspace((unsigned char) *ps.p))
			ps.p++;
		if (*ps.p != ',')
			break;
		ps.p++;
		while (isspace((unsigned char) *ps.p))
			ps.p++;
	}
	fd_expect(&ps, "]");
	fd_expect(&ps, "}");
	if (*ps.p != '\0')
		fd_syntax(&ps, "the end of the value");

	fd = fd_make(n, seed);
	fd->ndeals = ndeals;
	memcpy(fd->totals, totals, sizeof(int64) * n);
	PG_RETURN_POINTER(fd);
}

/* ------------------------------------------------------------------------
 * The aggregate: forecast_dist_agg(deal_id, amount, probability, seed,
 * simulations).  Its state is a forecast_dist value, not internal: Citus
 * pushes an aggregate down to the shards (and merges the partial states
 * with the combine function) only when the state has a real type, and
 * PostgreSQL's parallel workers then hand their states to the leader as
 * ordinary values (the binary form below), so no serial/deserial pair is
 * needed (PostgreSQL allows one only for internal states).  The transition
 * and combine functions update the state in place in the aggregate's
 * memory context, as array_agg does, and return the same pointer, so a
 * state is not copied per row.
 * ------------------------------------------------------------------------
 */

static void
fd_agg_check(FunctionCallInfo fcinfo, const char *fn)
{
	if (!AggCheckCallContext(fcinfo, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s can only be called by the aggregate forecast_dist_agg", fn),
				 errhint("Call salesmgmt.forecast_dist_agg(deal_id, amount, probability, seed, simulations).")));
}

sm_noreturn_before static void fd_mismatch(const ForecastDist *a, const ForecastDist *b) sm_noreturn_after;

static void
fd_mismatch(const ForecastDist *a, const ForecastDist *b)
{
	ereport(ERROR,
			(errcode(ERRCODE_SM_FORECAST_DIST_MISMATCH),
			 errmsg("forecast distributions of different seeds or simulation counts do not add up"),
			 errdetail("One has seed " INT64_FORMAT " and %d simulations, the other seed " INT64_FORMAT " and %d.",
					   a->seed, a->nsim, b->seed, b->nsim),
			 errhint("Build every part with the same seed and number of simulations.")));
}

/* a + b into a; both over disjoint deals, same seed and simulations */
static void
fd_merge_into(ForecastDist *a, const ForecastDist *b)
{
	bool		overflow = false;
	int			i;

	if (a->nsim != b->nsim || a->seed != b->seed)
		fd_mismatch(a, b);
	for (i = 0; i < a->nsim; i++)
		overflow |= pg_add_s64_overflow(a->totals[i], b->totals[i], &a->totals[i]);
	if (overflow || pg_add_s64_overflow(a->ndeals, b->ndeals, &a->ndeals))
		fd_overflow();
}

static ForecastDist *
fd_copy(MemoryContext cxt, const ForecastDist *fd)
{
	ForecastDist *c = MemoryContextAllocHuge(cxt, VARSIZE(fd));

	memcpy(c, fd, VARSIZE(fd));
	return c;
}

/* numeric(amount) rounded to whole cents, as int64 */
static int64
fd_cents(Numeric amount)
{
	return sm_numeric_scaled_int64(NumericGetDatum(sm_numeric_round(amount, 2)), 2);
}

/* round(p 2^32) for a probability p in [0, 1] */
static uint64
fd_threshold(Numeric p)
{
	if (numeric_is_nan(p) ||
		sm_numeric_sign(p) < 0 || sm_numeric_cmp(p, sm_numeric_const(1)) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("probability must be between 0 and 1, not %s", sm_numeric_to_cstring(p)),
				 errhint("Pass the deal's probability of being won as a fraction, e.g. 0.25.")));
	return (uint64) DatumGetInt64(DirectFunctionCall1(numeric_int8,
													  NumericGetDatum(sm_numeric_mul(p, int64_to_numeric(FD_THRESHOLD_ONE)))));
}

/*
 * The transition: rows with a null amount or probability are skipped (as
 * sum() skips nulls); deal_id, seed and simulations must not be null, and
 * seed and simulations must be the same on every row of the group.  The
 * first state is made in the per-row context (the executor copies it into
 * the aggregate's context); later ones are updated in place.
 */
Datum
sm_forecast_dist_sfunc(PG_FUNCTION_ARGS)
{
	ForecastDist *state = PG_ARGISNULL(0) ? NULL : (ForecastDist *) PG_GETARG_POINTER(0);
	int64		seed,
				deal_id;
	int32		nsim;

	fd_agg_check(fcinfo, "_forecast_dist_sfunc");
	if (PG_ARGISNULL(1) || PG_ARGISNULL(4) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("deal id, seed and number of simulations must not be null"),
				 errhint("The deal id seeds the deal's draws: pass the deal_id of every row, and one seed and number of simulations for all.")));
	deal_id = PG_GETARG_INT64(1);
	seed = PG_GETARG_INT64(4);
	nsim = PG_GETARG_INT32(5);

	if (state == NULL)
		state = fd_make(nsim, seed);
	else if (state->seed != seed || state->nsim != nsim)
		ereport(ERROR,
				(errcode(ERRCODE_SM_FORECAST_DIST_MISMATCH),
				 errmsg("seed and number of simulations must be the same for every deal of a forecast distribution"),
				 errdetail("Seed " INT64_FORMAT " and %d simulations, then seed " INT64_FORMAT " and %d for deal " INT64_FORMAT ".",
						   state->seed, state->nsim, seed, nsim, deal_id),
				 errhint("Pass constants for seed and simulations.")));

	if (!PG_ARGISNULL(2) && !PG_ARGISNULL(3))
	{
		Numeric		amount = PG_GETARG_NUMERIC(2);

		if (numeric_is_nan(amount) || numeric_is_inf(amount))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("amount of deal " INT64_FORMAT " must be a finite number", deal_id)));
		fd_add_deal(state, deal_id, fd_cents(amount), fd_threshold(PG_GETARG_NUMERIC(3)));
	}
	PG_RETURN_POINTER(state);
}

/* combine two partial states: b added into a (a is the aggregate's own) */
Datum
sm_forecast_dist_combine(PG_FUNCTION_ARGS)
{
	ForecastDist *a = PG_ARGISNULL(0) ? NULL : (ForecastDist *) PG_GETARG_POINTER(0);
	ForecastDist *b = PG_ARGISNULL(1) ? NULL : PG_GETARG_FD_P(1);

	fd_agg_check(fcinfo, "_forecast_dist_combine");
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		PG_RETURN_POINTER(fd_copy(CurrentMemoryContext, b));
	fd_merge_into(a, b);
	PG_RETURN_POINTER(a);
}

Datum
sm_forecast_dist_final(PG_FUNCTION_ARGS)
{
	fd_agg_check(fcinfo, "_forecast_dist_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	/* a copy: the state may be updated in place after this (window frames) */
	PG_RETURN_POINTER(fd_copy(CurrentMemoryContext, (ForecastDist *) PG_GETARG_POINTER(0)));
}

/* ------------------------------------------------------------------------
 * Binary form (COPY BINARY, binary protocol): the layout version, the
 * number of simulations, the seed, the number of deals and the totals, in
 * network byte order.
 * ------------------------------------------------------------------------
 */

Datum
sm_forecast_dist_send(PG_FUNCTION_ARGS)
{
	ForecastDist *fd = PG_GETARG_FD_P(0);
	StringInfoData buf;
	int			i;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, FD_LAYOUT_VERSION);
	pq_sendint32(&buf, fd->nsim);
	pq_sendint64(&buf, fd->seed);
	pq_sendint64(&buf, fd->ndeals);
	for (i = 0; i < fd->nsim; i++)
		pq_sendint64(&buf, fd->totals[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

Datum
sm_forecast_dist_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int32		version = pq_getmsgint(buf, 4);
	int32		nsim = pq_getmsgint(buf, 4);
	ForecastDist *fd;
	int			i;

	if (version != FD_LAYOUT_VERSION || nsim < 1 || nsim > FD_MAX_SIMULATIONS ||
		buf->len - buf->cursor != 16 + 8 * nsim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary forecast distribution"),
				 errdetail("Layout version %d, %d simulations, %d bytes left.",
						   version, nsim, buf->len - buf->cursor)));
	fd = fd_make(nsim, 0);
	fd->seed = pq_getmsgint64(buf);
	fd->ndeals = pq_getmsgint64(buf);
	if (fd->ndeals < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary forecast distribution"),
				 errdetail("A negative number of deals.")));
	for (i = 0; i < nsim; i++)
		fd->totals[i] = pq_getmsgint64(buf);
	PG_RETURN_POINTER(fd);
}

/* ------------------------------------------------------------------------
 * Functions on the type
 * ------------------------------------------------------------------------
 */

Datum
sm_forecast_dist_plus(PG_FUNCTION_ARGS)
{
	ForecastDist *a = PG_GETARG_FD_P(0);
	ForecastDist *b = PG_GETARG_FD_P(1);
	ForecastDist *r = fd_copy(CurrentMemoryContext, a);

	fd_merge_into(r, b);
	PG_RETURN_POINTER(r);
}

Datum
sm_forecast_dist_percentile(PG_FUNCTION_ARGS)
{
	ForecastDist *fd = PG_GETARG_FD_P(0);
	float8		q = PG_GETARG_FLOAT8(1);
	int64	   *sorted;

	if (isnan(q) || q < 0 || q > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("percentile must be between 0 and 1, not %g", q),
				 errhint("Pass 0.1 for P10, 0.5 for the median, 0.9 for P90.")));
	sorted = fd_sorted(fd);
	PG_RETURN_DATUM(fd_money(fd_quantile(sorted, fd->nsim, q), NULL));
}

Datum
sm_forecast_dist_mean(PG_FUNCTION_ARGS)
{
	PG_RETURN_NUMERIC(sm_numeric_round(fd_mean_units(PG_GETARG_FD_P(0)), 2));
}

Datum
sm_forecast_dist_stddev(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(fd_money(fd_stddev_cents(PG_GETARG_FD_P(0)), NULL));
}

Datum
sm_forecast_dist_simulations(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(PG_GETARG_FD_P(0)->nsim);
}

Datum
sm_forecast_dist_deals(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(PG_GETARG_FD_P(0)->ndeals);
}

/* the result columns of salesmgmt.histogram(forecast_dist, int) */
typedef enum FdHistCol
{
	FD_HIST_BUCKET,
	FD_HIST_LOWER,
	FD_HIST_UPPER,
	FD_HIST_SIMULATIONS,
	FD_HIST_NCOLUMNS
} FdHistCol;

static const char *const fd_hist_columns[] = {
	"bucket", "lower", "upper", "simulations"
};

StaticAssertDecl(lengthof(fd_hist_columns) == FD_HIST_NCOLUMNS,
				 "every column of salesmgmt.histogram is named");

/* min + (max - min) k / buckets, in currency units, rounded to cents */
static Datum
fd_bound(int64 min, int64 max, int k, int buckets)
{
	Numeric		span = sm_numeric_sub(int64_to_numeric(max), int64_to_numeric(min));
	Numeric		b = sm_numeric_add(int64_to_numeric(min),
								   sm_numeric_div(sm_numeric_mul(span, int64_to_numeric(k)),
												  int64_to_numeric(buckets)));

	return NumericGetDatum(sm_numeric_round(sm_numeric_div(b, int64_to_numeric(100)), 2));
}

/*
 * histogram(fd, buckets): buckets of equal width from the lowest to the
 * highest total (the last one includes the highest), each with the number
 * of simulations whose total falls in it.  All totals equal: one bucket
 * holds them all.
 */
Datum
sm_forecast_dist_histogram(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ForecastDist *fd = PG_GETARG_FD_P(0);
	int32		buckets = PG_GETARG_INT32(1);
	int64		min = PG_INT64_MAX,
				max = PG_INT64_MIN;
	int64	   *counts;
	int			i;

	if (buckets < 1 || buckets > FD_MAX_BUCKETS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of buckets must be between 1 and %d, not %d", FD_MAX_BUCKETS, buckets),
				 errhint("20 buckets draw a readable histogram.")));
	InitMaterializedSRF(fcinfo, 0);
	sm_check_result_columns(rsinfo->setDesc, fd_hist_columns, FD_HIST_NCOLUMNS);

	for (i = 0; i < fd->nsim; i++)
	{
		min = Min(min, fd->totals[i]);
		max = Max(max, fd->totals[i]);
	}
	if (min == max)
		buckets = 1;
	counts = palloc0(sizeof(int64) * buckets);
	for (i = 0; i < fd->nsim; i++)
	{
		int			b = 0;

		if (max > min)
		{
			/* floor((t - min) buckets / (max - min)) without overflow */
			double		f = ((double) ((uint64) fd->totals[i] - (uint64) min)) /
				((double) ((uint64) max - (uint64) min));

			b = Min((int) floor(f * buckets), buckets - 1);
		}
		counts[b]++;
	}
	for (i = 0; i < buckets; i++)
	{
		Datum		values[FD_HIST_NCOLUMNS];
		bool		nulls[FD_HIST_NCOLUMNS] = {0};

		values[FD_HIST_BUCKET] = Int32GetDatum(i + 1);
		values[FD_HIST_LOWER] = fd_bound(min, max, i, buckets);
		values[FD_HIST_UPPER] = fd_bound(min, max, i + 1, buckets);
		values[FD_HIST_SIMULATIONS] = Int32GetDatum((int32) counts[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

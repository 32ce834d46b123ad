/*-------------------------------------------------------------------------
 *
 * training.c
 *	  The measured effect of a training course (salesmgmt.training_effect):
 *	  a difference in differences against the peers who never took it,
 *	  with a seeded bootstrap interval.
 *
 * For each KPI the course targets (salesmgmt.training_course_kpi) and each
 * rep who completed the course at least a window ago (completion day c):
 *
 *	  before = the KPI's value over [c - w, c), after = over [c, c + w)
 *	  peers  = the same over the same calendar days, for the reps who never
 *			   enrolled in the course and have data of the metric's source
 *			   in the whole span (pooled: a win rate of all their deals;
 *			   counts: the mean per peer)
 *	  did	 = (after - before) - (peers after - peers before)
 *
 * The estimate is the mean of the reps' did; its 95% interval comes from
 * 1,000 bootstrap resamples of the reps (percentiles 2.5 and 97.5), drawn
 * with pg_prng seeded from the course and the KPI, so the same data give
 * the same interval.  Fewer than TR_MIN_REPS reps with data in both
 * windows give no estimate, and a reason.
 *
 * One scan of the metric's source over the whole span: completers'
 * events go to their own two windows (found by binary search on the rep);
 * peers' events are summed per day, and prefix sums answer any window in
 * constant time, so the cost is the scan, not reps x peers.
 *
 * Metrics measured per window: win_rate (%, credited shares), deals_won,
 * activities (calls, e-mails, meetings, visits, demos), meetings
 * (meetings, visits, demos), as the KPI engine defines them (kpi.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgrprotos.h"
#include "utils/tuplestore.h"

#include "salesmgmt.h"
#include "core_spi.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_training_effect);

#define TR_MIN_REPS			5		/* fewer completers: no estimate */
#define TR_RESAMPLES		1000	/* bootstrap resamples */
#define TR_MAX_WINDOW_DAYS	3650
#define TR_BATCH			10000	/* rows per cursor fetch */

/* the result columns of salesmgmt.training_effect, in order */
typedef enum TrCol
{
	TR_COL_KPI_ID,
	TR_COL_KPI_CODE,
	TR_COL_METRIC,
	TR_COL_WINDOW_DAYS,
	TR_COL_REPS,
	TR_COL_PEERS,
	TR_COL_ESTIMATE,
	TR_COL_CI_LOW,
	TR_COL_CI_HIGH,
	TR_COL_REASON,
	TR_NCOLUMNS
} TrCol;

static const char *const tr_columns[] = {
	"kpi_id", "kpi_code", "metric", "window_days", "reps", "peers",
	"estimate", "ci_low", "ci_high", "reason"
};

StaticAssertDecl(lengthof(tr_columns) == TR_NCOLUMNS,
				 "every column of salesmgmt.training_effect is named");

typedef enum TrMetric
{
	TR_WIN_RATE,
	TR_DEALS_WON,
	TR_ACTIVITIES,
	TR_MEETINGS,
	TR_UNMEASURED
} TrMetric;

/*
 * The events of a metric's source in [$1, $2): rep, day, weight, flag.
 * Deals: won or lost in the span, one row per credited rep (the share);
 * flag = won.  Activities: every kind the activities KPI counts; flag =
 * a meeting, visit or demo.
 */
static const char *const tr_deal_events =
"SELECT coalesce(sp.rep_id, d.owner_rep_id), d.closed_at::date,"
"       coalesce(sp.share, 1)::float8, st.outcome = 'won'"
"  FROM salesmgmt.deal d"
"  JOIN salesmgmt.stage st ON st.stage_id = d.stage_id"
"  LEFT JOIN salesmgmt.deal_split sp ON sp.deal_id = d.deal_id"
" WHERE st.outcome IN ('won', 'lost')"
"   AND d.closed_at >= $1::timestamptz AND d.closed_at < $2::timestamptz";

static const char *const tr_activity_events =
"SELECT a.rep_id, a.occurred_at::date, 1::float8, a.kind IN ('meeting', 'visit', 'demo')"
"  FROM salesmgmt.activity a"
" WHERE a.kind NOT IN ('note', 'coaching')"
"   AND a.occurred_at >= $1::timestamptz AND a.occurred_at < $2::timestamptz";

/* a rep who completed the course: its two windows */
typedef struct TrRep
{
	int64		rep_id;
	DateADT		completed;
	double		num[2];			/* [0] before, [1] after */
	double		den[2];
} TrRep;

/* everything one KPI's estimate needs */
typedef struct TrRun
{
	TrMetric	metric;
	int			window;
	TrRep	   *reps;			/* sorted by rep_id */
	int			nreps;
	int64	   *peers;			/* sorted */
	bool	   *peer_seen;		/* a peer with data in the span */
	int			npeers;
	DateADT		lo;				/* span [lo, hi) */
	DateADT		hi;
	double	   *pnum;			/* peers' prefix sums per day, hi - lo + 1 */
	double	   *pden;
} TrRun;

static TrMetric
tr_metric(const char *name)
{
	if (strcmp(name, "win_rate") == 0)
		return TR_WIN_RATE;
	if (strcmp(name, "deals_won") == 0)
		return TR_DEALS_WON;
	if (strcmp(name, "activities") == 0)
		return TR_ACTIVITIES;
	if (strcmp(name, "meetings") == 0)
		return TR_MEETINGS;
	return TR_UNMEASURED;
}

static int
tr_cmp_rep(const void *a, const void *b)
{
	int64		x = ((const TrRep *) a)->rep_id;
	int64		y = ((const TrRep *) b)->rep_id;

	return (x > y) - (x < y);
}

static int
tr_cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

static int
tr_cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* the course exists and targets KPIs: its KPIs (id, code, metric) */
static SPITupleTable *
tr_course_kpis(int64 course_id, uint64 *n)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(course_id)};
	SPITupleTable *tt;

	sm_spi_query("SELECT 1 FROM salesmgmt.training_course WHERE course_id = $1",
				 1, types, values, NULL, true, SPI_OK_SELECT, n);
	if (*n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("training course " INT64_FORMAT " does not exist", course_id),
				 errhint("Give a course_id of salesmgmt.training_course.")));
	tt = sm_spi_query("SELECT k.kpi_id, k.code, k.metric"
					  "  FROM salesmgmt.training_course_kpi ck"
					  "  JOIN salesmgmt.kpi k ON k.kpi_id = ck.kpi_id"
					  " WHERE ck.course_id = $1 ORDER BY k.kpi_id",
					  1, types, values, NULL, true, SPI_OK_SELECT, n);
	if (*n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SM_COURSE_WITHOUT_KPI),
				 errmsg("training course " INT64_FORMAT " targets no KPI", course_id),
				 errdetail("The effect of a course is measured on the KPIs it is meant to improve."),
				 errhint("Name them in salesmgmt.training_course_kpi.")));
	return tt;
}

/*
 * The completers (whose after window is over by today), sorted by rep,
 * and the peers (never enrolled), sorted; sets the span [lo, hi).
 */
static void
tr_load_reps(TrRun *run, int64 course_id)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(course_id), Int32GetDatum(run->window)};
	SPITupleTable *tt;
	uint64		n;
	uint64		i;

	tt = sm_spi_query("SELECT e.rep_id, e.completed_at::date"
					  "  FROM salesmgmt.training_enrollment e"
					  " WHERE e.course_id = $1 AND e.status = 'completed'"
					  "   AND isfinite(e.completed_at) AND e.completed_at::date + $2 <= current_date",
					  2, types, values, NULL, true, SPI_OK_SELECT, &n);
	run->nreps = (int) n;
	run->reps = palloc0(sizeof(TrRep) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		run->reps[i].rep_id = DatumGetInt64(sm_spi_col(tt, i, 1, &isnull));
		run->reps[i].completed = DatumGetDateADT(sm_spi_col(tt, i, 2, &isnull));
		if (i == 0 || run->reps[i].completed - run->window < run->lo)
			run->lo = run->reps[i].completed - run->window;
		if (i == 0 || run->reps[i].completed + run->window > run->hi)
			run->hi = run->reps[i].completed + run->window;
	}
	qsort(run->reps, run->nreps, sizeof(TrRep), tr_cmp_rep);

	tt = sm_spi_query("SELECT r.rep_id FROM salesmgmt.rep r"
					  " WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.training_enrollment e"
					  "                    WHERE e.rep_id = r.rep_id AND e.course_id = $1)",
					  1, types, values, NULL, true, SPI_OK_SELECT, &n);
	run->npeers = (int) n;
	run->peers = palloc(sizeof(int64) * Max(n, 1));
	run->peer_seen = palloc0(sizeof(bool) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		run->peers[i] = DatumGetInt64(sm_spi_col(tt, i, 1, &isnull));
	}
	qsort(run->peers, run->npeers, sizeof(int64), tr_cmp_int64);
}

/* one event: to the completer's window, or to the peers' day */
static void
tr_add_event(TrRun *run, int64 rep_id, DateADT day, double weight, bool flag)
{
	double		num = (run->metric == TR_ACTIVITIES) ? weight : (flag ? weight : 0);
	TrRep		key;
	TrRep	   *rep;
	int64	   *peer;

	key.rep_id = rep_id;
	rep = bsearch(&key, run->reps, run->nreps, sizeof(TrRep), tr_cmp_rep);
	if (rep != NULL)
	{
		int			k;

		if (day >= rep->completed - run->window && day < rep->completed)
			k = 0;
		else if (day >= rep->completed && day < rep->completed + run->window)
			k = 1;
		else
			return;
		rep->num[k] += num;
		rep->den[k] += weight;
		return;
	}
	peer = bsearch(&rep_id, run->peers, run->npeers, sizeof(int64), tr_cmp_int64);
	if (peer == NULL || day < run->lo || day >= run->hi)
		return;					/* a rep enrolled but not (yet) completed */
	run->peer_seen[peer - run->peers] = true;
	run->pnum[day - run->lo + 1] += num;
	run->pden[day - run->lo + 1] += weight;
}

/* one scan of the metric's source over the span, then prefix sums */
static void
tr_scan(TrRun *run)
{
	Oid			types[2] = {DATEOID, DATEOID};
	Datum		values[2] = {DateADTGetDatum(run->lo), DateADTGetDatum(run->hi)};
	int			days = run->hi - run->lo;
	Portal		portal;
	SPITupleTable *tt;
	uint64		n;
	int			d;

	run->pnum = palloc0(sizeof(double) * (days + 1));
	run->pden = palloc0(sizeof(double) * (days + 1));
	portal = sm_spi_cursor_open(run->metric == TR_WIN_RATE || run->metric == TR_DEALS_WON
								? tr_deal_events : tr_activity_events,
								2, types, values, NULL);
	for (;;)
	{
		uint64		i;

		tt = sm_spi_cursor_fetch(portal, TR_BATCH, &n);
		if (n == 0)
			break;
		for (i = 0; i < n; i++)
		{
			bool		nulls[4];
			Datum		rep = sm_spi_col(tt, i, 1, &nulls[0]);
			Datum		day = sm_spi_col(tt, i, 2, &nulls[1]);
			Datum		weight = sm_spi_col(tt, i, 3, &nulls[2]);
			Datum		flag = sm_spi_col(tt, i, 4, &nulls[3]);

			if (nulls[0] || nulls[1] || nulls[2])
				continue;
			tr_add_event(run, DatumGetInt64(rep), DatumGetDateADT(day),
						 DatumGetFloat8(weight), !nulls[3] && DatumGetBool(flag));
		}
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);
	for (d = 1; d <= days; d++)
	{
		run->pnum[d] += run->pnum[d - 1];
		run->pden[d] += run->pden[d - 1];
	}
}

/* the peers' value over [from, to); false without data (a rate of nothing) */
static bool
tr_peer_value(TrRun *run, int npeers, DateADT from, DateADT to, double *value)
{
	double		num = run->pnum[to - run->lo] - run->pnum[from - run->lo];
	double		den = run->pden[to - run->lo] - run->pden[from - run->lo];

	if (run->metric == TR_WIN_RATE)
	{
		if (den <= 0)
			return false;
		*value = 100.0 * num / den;
		return true;
	}
	*value = num / npeers;
	return true;
}

/* a completer's value in window k; false without data */
static bool
tr_rep_value(TrRun *run, TrRep *rep, int k, double *value)
{
	if (run->metric == TR_WIN_RATE)
	{
		if (rep->den[k] <= 0)
			return false;
		*value = 100.0 * rep->num[k] / rep->den[k];
		return true;
	}
	*value = rep->num[k];
	return true;
}

static Datum
tr_numeric(double v)
{
	return NumericGetDatum(sm_numeric_round(DatumGetNumeric(DirectFunctionCall1(float8_numeric,
																			  Float8GetDatum(v))), 4));
}

/*
 * The estimate and its interval for one KPI into values/nulls, or the
 * reason there is none.  run is loaded and scanned.
 */
static void
tr_estimate(TrRun *run, uint64 seed, Datum *values, bool *nulls)
{
	double	   *did = palloc(sizeof(double) * Max(run->nreps, 1));
	int			n = 0;
	int			npeers = 0;
	int			i;
	char	   *reason = NULL;

	for (i = 0; i < run->npeers; i++)
		npeers += run->peer_seen[i] ? 1 : 0;
	for (i = 0; i < run->nreps && npeers > 0; i++)
	{
		TrRep	   *rep = &run->reps[i];
		double		b,
					a,
					pb,
					pa;

		if (tr_rep_value(run, rep, 0, &b) && tr_rep_value(run, rep, 1, &a) &&
			tr_peer_value(run, npeers, rep->completed - run->window, rep->completed, &pb) &&
			tr_peer_value(run, npeers, rep->completed, rep->completed + run->window, &pa))
			did[n++] = (a - b) - (pa - pb);
	}
	values[TR_COL_REPS] = Int32GetDatum(n);
	values[TR_COL_PEERS] = Int32GetDatum(npeers);

	if (run->nreps == 0)
		reason = psprintf("no rep completed the course %d days or more ago", run->window);
	else if (npeers == 0)
		reason = pstrdup("no peers: every rep with data of the metric enrolled in the course");
	else if (n < TR_MIN_REPS)
		reason = psprintf("completers with data in both windows: %d, fewer than the %d needed",
						  n, TR_MIN_REPS);
	if (reason != NULL)
	{
		values[TR_COL_REASON] = CStringGetTextDatum(reason);
		nulls[TR_COL_REASON] = false;
		return;
	}
	{
		double	   *means = palloc(sizeof(double) * TR_RESAMPLES);
		double		sum = 0;
		pg_prng_state prng;
		int			b;

		for (i = 0; i < n; i++)
			sum += did[i];
		values[TR_COL_ESTIMATE] = tr_numeric(sum / n);
		nulls[TR_COL_ESTIMATE] = false;

		pg_prng_seed(&prng, seed);
		for (b = 0; b < TR_RESAMPLES; b++)
		{
			double		s = 0;

			for (i = 0; i < n; i++)
				s += did[pg_prng_uint64_range(&prng, 0, n - 1)];
			means[b] = s / n;
		}
		qsort(means, TR_RESAMPLES, sizeof(double), tr_cmp_double);
		values[TR_COL_CI_LOW] = tr_numeric(means[(int) floor(0.025 * TR_RESAMPLES)]);
		values[TR_COL_CI_HIGH] = tr_numeric(means[(int) ceil(0.975 * TR_RESAMPLES) - 1]);
		nulls[TR_COL_CI_LOW] = nulls[TR_COL_CI_HIGH] = false;
	}
}

/*
 * salesmgmt.training_effect(p_course_id bigint, p_window_days int): one row
 * per KPI the course targets (columns: TrCol).
 */
Datum
sm_training_effect(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		course_id;
	int			window;
	SPITupleTable *kpis;
	uint64		nkpis;
	uint64		k;
	MemoryContext cxt = CurrentMemoryContext;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("course and window days must not be null")));
	course_id = PG_GETARG_INT64(0);
	window = PG_GETARG_INT32(1);
	if (window < 1 || window > TR_MAX_WINDOW_DAYS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window days must be between 1 and %d, not %d", TR_MAX_WINDOW_DAYS, window),
				 errhint("Give the days before and after the completion to compare, e.g. 90.")));

	InitMaterializedSRF(fcinfo, 0);
	sm_check_result_columns(rsinfo->setDesc, tr_columns, TR_NCOLUMNS);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	kpis = tr_course_kpis(course_id, &nkpis);
	for (k = 0; k < nkpis; k++)
	{
		Datum		values[TR_NCOLUMNS];
		bool		nulls[TR_NCOLUMNS];
		bool		isnull;
		int64		kpi_id = DatumGetInt64(sm_spi_col(kpis, k, 1, &isnull));
		char	   *metric = SPI_getvalue(kpis->vals[k], kpis->tupdesc, 3);
		TrRun		run;
		int			c;

		for (c = 0; c < TR_NCOLUMNS; c++)
			nulls[c] = true;
		values[TR_COL_KPI_ID] = Int64GetDatum(kpi_id);
		values[TR_COL_KPI_CODE] = CStringGetTextDatum(SPI_getvalue(kpis->vals[k], kpis->tupdesc, 2));
		values[TR_COL_METRIC] = CStringGetTextDatum(metric);
		values[TR_COL_WINDOW_DAYS] = Int32GetDatum(window);
		nulls[TR_COL_KPI_ID] = nulls[TR_COL_KPI_CODE] = nulls[TR_COL_METRIC] = false;
		nulls[TR_COL_WINDOW_DAYS] = nulls[TR_COL_REPS] = nulls[TR_COL_PEERS] = false;

		memset(&run, 0, sizeof(run));
		run.metric = tr_metric(metric);
		run.window = window;
		if (run.metric == TR_UNMEASURED)
		{
			values[TR_COL_REPS] = values[TR_COL_PEERS] = Int32GetDatum(0);
			values[TR_COL_REASON] = CStringGetTextDatum(psprintf("metric %s is not measured per window (win_rate, deals_won, activities and meetings are)",
																 metric));
			nulls[TR_COL_REASON] = false;
		}
		else
		{
			tr_load_reps(&run, course_id);
			if (run.nreps > 0)
				tr_scan(&run);
			tr_estimate(&run, (uint64) course_id * UINT64CONST(0x9E3779B97F4A7C15) ^ (uint64) kpi_id,
						values, nulls);
		}
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();
	return (Datum) 0;
}

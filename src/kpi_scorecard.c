/*-------------------------------------------------------------------------
 *
 * kpi_scorecard.c
 *	  compute_scorecards(): every KPI of a scheme measured for every rep
 *	  over a period in one pass per source table, scored, graded, ranked
 *	  and stored.  The overview of the KPI concern is at the top of kpi.c,
 *	  what both files share in kpi.h.
 *
 *-------------------------------------------------------------------------
 */
#include "kpi.h"
#include "org.h"
#include "org_history.h"

PG_FUNCTION_INFO_V1(sm_compute_scorecards);

/* ----------------------------------------------------------------------
 * compute_scorecards
 * ----------------------------------------------------------------------
 */

/* a KPI of the scheme being computed */
typedef struct KpiItem
{
	int64		kpi_id;
	char	   *code;
	KpiMetric	metric;
	char	   *function;		/* custom: schema-qualified name */
	int			custom_slot;	/* custom: index into RepAcc.custom */
	char	   *method_name;
	char	   *direction_name;
	KpiMethod	method;
	KpiDirection direction;
	Numeric		target;
	Numeric		floor;			/* NULL when not set */
	Numeric		cap;
	Numeric		weight;
} KpiItem;

/* one rep: what the source queries found, then the scorecard */
typedef struct RepAcc
{
	int64		rep_id;
	bool		active;
	bool		in_scope;		/* in the scheme's team (or the scheme has none) */
	bool		seen;			/* a source had data for the rep */

	/* deals, as credited shares; NULL means zero */
	Numeric		won_share;
	Numeric		won_amount;		/* reporting currency */
	Numeric		lost_share;
	Numeric		won_seconds;	/* sum of share x seconds created -> closed */
	Numeric		created_amount; /* reporting currency */
	int64		activities;
	int64		meetings;
	Numeric		quota;			/* reporting currency; NULL: no quota */
	/* ratios the queries compute (4 decimals); NULL means no data */
	Numeric		task_rate;
	Numeric		csat_avg;
	Numeric		nps;
	Numeric		attitude[3];
	int64		training_extra; /* courses counted besides the required ones */
	int64		training_done;
	Numeric    *custom;			/* per custom KPI; NULL means no data */
	bool	   *custom_returned;	/* per custom KPI: the function returned a row */

	/* the scorecard */
	Numeric    *values;			/* per KPI item */
	Numeric    *scores;
	Numeric    *effective;
	Numeric		coverage;
	Numeric		total;			/* NULL when no KPI had data */
	const char *grade;
	int			rank;			/* 0 when unranked */
} RepAcc;

typedef struct RepKey
{
	int64		rep_id;
	int			index;
} RepKey;

/* a dated exchange rate: 1 currency = rate quote */
typedef struct ScorecardRun
{
	int64		scheme_id;
	int64		team_id;		/* scope of the scheme, if has_team */
	bool		has_team;
	DateADT		period_start;
	DateADT		period_end;
	char		currency[4];	/* salesmgmt.reporting_currency */
	MemoryContext cxt;			/* lives for the call */
	MemoryContext scratch;		/* reset per rep / per row */

	KpiItem    *items;
	int			nitems;
	int			ncustom;
	GradeBand  *bands;
	int			nbands;
	bool		need[NUM_SOURCES];

	RepAcc	   *reps;
	int			nreps;
	HTAB	   *rep_index;

	SmRates		rates;			/* to and from the reporting currency */
	int64		training_required;
} ScorecardRun;

/* the arguments every source query gets: $1 from, $2 to (dates), $3 currency */
#define SOURCE_NARGS 3
static const Oid source_argtypes[SOURCE_NARGS] = {DATEOID, DATEOID, TEXTOID};

static void
kp_source_query(ScorecardRun *run, const char *sql)
{
	Datum		args[SOURCE_NARGS];

	args[0] = DateADTGetDatum(run->period_start);
	args[1] = DateADTGetDatum(run->period_end);
	args[2] = CStringGetTextDatum(run->currency);

	/*
	 * Read-only: every source query sees the snapshot of the calling
	 * statement, so the metrics agree with each other even while deals move.
	 */
	sm_spi_query(sql, SOURCE_NARGS, source_argtypes, args, NULL, true, SPI_OK_SELECT, NULL);
}

/*
 * The accumulator of a rep a source query returned.  The built-in sources
 * read tables whose rep_id is a foreign key, and share the snapshot the
 * reps were read with, so only a custom metric can name an unknown rep.
 */
static RepAcc *
kp_rep_for(ScorecardRun *run, int64 rep_id)
{
	RepKey	   *key;
	bool		found;

	key = hash_search(run->rep_index, &rep_id, HASH_FIND, &found);
	if (!found)
		elog(ERROR, "scorecard source returned unknown rep " INT64_FORMAT, rep_id);
	return &run->reps[key->index];
}

/* ---- the scheme ---- */

/*
 * Lock and read the scheme: its grade bands, team, and items (KPIs with
 * weight, method, target, floor and cap, custom metric functions
 * resolved), checking that the weights sum to 100; notes which sources
 * the items need.
 */
static void
kp_load_scheme(ScorecardRun *run)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	Numeric		total;
	int			i;
	bool		isnull;
	Jsonb	   *bands;

	args[0] = Int64GetDatum(run->scheme_id);

	/*
	 * Lock the scheme: recomputations of it are serialised (the second
	 * replaces the first's rows), and its weights cannot change meanwhile.
	 */
	sm_spi_query("SELECT grade_bands, team_id FROM salesmgmt.kpi_scheme WHERE scheme_id = $1 FOR NO KEY UPDATE",
				 1, argtypes, args, NULL, false, SPI_OK_SELECT, NULL);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("KPI scheme " INT64_FORMAT " does not exist", run->scheme_id),
				 errhint("The schemes are in salesmgmt.kpi_scheme.")));
	bands = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
	run->bands = kp_parse_grade_bands(bands, NULL, &run->nbands);
	run->team_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 2, &isnull));
	run->has_team = !isnull;

	sm_spi_query("SELECT k.kpi_id, k.code, k.metric, k.metric_function, k.method, k.direction,"
				 "       k.target, k.floor, k.cap, i.weight"
				 "  FROM salesmgmt.kpi_scheme_item i JOIN salesmgmt.kpi k ON k.kpi_id = i.kpi_id"
				 " WHERE i.scheme_id = $1 ORDER BY k.code",
				 1, argtypes, args, NULL, false, SPI_OK_SELECT, NULL);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SM_KPI_SCHEME_INCOMPLETE),
				 errmsg("KPI scheme " INT64_FORMAT " has no KPIs", run->scheme_id),
				 errhint("Add KPIs with weights that sum to 100 to salesmgmt.kpi_scheme_item.")));

	run->nitems = SPI_processed;
	run->items = palloc0(sizeof(KpiItem) * run->nitems);
	total = kp_num_zero;
	for (i = 0; i < run->nitems; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		KpiItem    *item = &run->items[i];
		DefinitionContext dc = {NULL, NULL};
		char	   *metric;

		item->kpi_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		item->code = SPI_getvalue(tup, desc, 2);
		dc.code = item->code;
		metric = SPI_getvalue(tup, desc, 3);
		item->metric = kp_metric_from_name(metric);
		if (item->metric == NUM_METRICS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown KPI metric \"%s\"", metric),
					 DEF_CONTEXT(&dc)));
		item->function = SPI_getvalue(tup, desc, 4);
		item->method_name = SPI_getvalue(tup, desc, 5);
		item->direction_name = SPI_getvalue(tup, desc, 6);
		item->method = kp_parse_method(&dc, item->method_name);
		item->direction = kp_parse_direction(&dc, item->direction_name);
		item->target = sm_spi_numeric(tup, desc, 7);
		item->floor = sm_spi_numeric(tup, desc, 8);
		item->cap = sm_spi_numeric(tup, desc, 9);
		item->weight = sm_spi_numeric(tup, desc, 10);
		kp_check_definition(&dc, item->method, item->direction, item->target,
							item->floor, item->cap);
		total = sm_numeric_add(total, item->weight);

		run->need[kp_metric_info[item->metric].source] = true;
		if (kp_metric_info[item->metric].source2 != NUM_SOURCES)
			run->need[kp_metric_info[item->metric].source2] = true;
		if (item->metric == M_CUSTOM)
			item->custom_slot = run->ncustom++;
	}
	SPI_freetuptable(SPI_tuptable);

	/* the commit-time check may not have run yet in this transaction */
	if (sm_numeric_cmp(total, kp_num_hundred) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SM_KPI_SCHEME_INCOMPLETE),
				 errmsg("weights of KPI scheme " INT64_FORMAT " sum to %s, not 100",
						run->scheme_id, sm_numeric_to_cstring(total)),
				 errhint("Fix the weights in salesmgmt.kpi_scheme_item before computing scorecards.")));
}

static int
kp_int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * Every rep goes into the index (the sources report on all of them); those
 * outside the scheme's team tree are marked out of scope.  The team tree
 * is the cached organisation's (org.c); for a period that ended before
 * today, the one of its last day (org_history.c).
 */
static void
kp_load_reps(ScorecardRun *run)
{
	HASHCTL		ctl;
	uint64		i;
	int64	   *subtree = NULL;
	int			nsubtree = 0;

	if (run->has_team)
	{
		if (run->period_end < GetSQLCurrentDate())
			nsubtree = sm_org_tree_subtree_reps(sm_org_tree_load_at(true, run->period_end),
												run->team_id, &subtree);
		else
			nsubtree = sm_org_subtree_reps(run->team_id, &subtree);
		qsort(subtree, nsubtree, sizeof(int64), kp_int64_cmp);
	}
	sm_spi_query("SELECT r.rep_id, r.active FROM salesmgmt.rep r",
				 0, NULL, NULL, NULL, true, SPI_OK_SELECT, NULL);
	run->nreps = SPI_processed;
	run->reps = palloc0(sizeof(RepAcc) * Max(run->nreps, 1));

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(RepKey);
	ctl.hcxt = run->cxt;
	run->rep_index = hash_create("salesmgmt scorecard reps", Max(run->nreps, 16), &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		RepAcc	   *rep = &run->reps[i];
		RepKey	   *key;
		bool		isnull;
		bool		found;

		rep->rep_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		rep->active = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
		rep->in_scope = !run->has_team ||
			(nsubtree > 0 && bsearch(&rep->rep_id, subtree, nsubtree, sizeof(int64),
									 kp_int64_cmp) != NULL);
		if (run->ncustom > 0)
		{
			rep->custom = palloc0(sizeof(Numeric) * run->ncustom);
			rep->custom_returned = palloc0(sizeof(bool) * run->ncustom);
		}
		key = hash_search(run->rep_index, &rep->rep_id, HASH_ENTER, &found);
		key->index = i;
	}
	SPI_freetuptable(SPI_tuptable);
}

/* ---- currency conversion ---- */

/*
 * The rates to and from the reporting currency, in memory: the deal query
 * then needs no per-row function call.  Read-only, as the source queries.
 */
static void
kp_load_rates(ScorecardRun *run)
{
	sm_rates_load(&run->rates, run->currency, DATEVAL_NOBEGIN, DATEVAL_NOEND, true);
}

/* ---- the source queries ---- */

/*
 * Each source is one query grouped by rep (the first column) and a function
 * that folds one of its rows into the rep's accumulator.  The row function
 * runs in the per-row scratch context: what it keeps must be copied into
 * run->cxt (sm_numeric_copy, sm_numeric_accum).
 */
typedef void (*SourceRowFn) (ScorecardRun *run, RepAcc *rep, HeapTuple tup, TupleDesc desc);

typedef struct SourceQuery
{
	KpiSource	source;
	const char *sql;
	SourceRowFn row;
} SourceQuery;

/*
 * Deals won or lost in the period, and deals created in it, credited by
 * split share (a deal without splits credits its owner in full).  Rows in
 * the reporting currency group per rep; the others also per day, the day
 * their amount is converted on.
 */
static void
kp_deal_row(ScorecardRun *run, RepAcc *rep, HeapTuple tup, TupleDesc desc)
{
	char	   *currency = SPI_getvalue(tup, desc, 2);
	bool		closed_null;
	bool		created_null;
	DateADT		closed_day = DatumGetDateADT(SPI_getbinval(tup, desc, 3, &closed_null));
	DateADT		created_day = DatumGetDateADT(SPI_getbinval(tup, desc, 4, &created_null));
	Numeric		won_amount = sm_spi_numeric(tup, desc, 6);
	Numeric		created_amount = sm_spi_numeric(tup, desc, 9);

	if (won_amount != NULL && !closed_null)
		won_amount = sm_rates_convert(&run->rates, won_amount, currency, closed_day);
	if (created_amount != NULL && !created_null)
		created_amount = sm_rates_convert(&run->rates, created_amount, currency, created_day);
	sm_numeric_accum(run->cxt, &rep->won_share, sm_spi_numeric(tup, desc, 5));
	sm_numeric_accum(run->cxt, &rep->won_amount, won_amount);
	sm_numeric_accum(run->cxt, &rep->lost_share, sm_spi_numeric(tup, desc, 7));
	sm_numeric_accum(run->cxt, &rep->won_seconds, sm_spi_numeric(tup, desc, 8));
	sm_numeric_accum(run->cxt, &rep->created_amount, created_amount);
}

static void
kp_activity_row(ScorecardRun *run, RepAcc *rep, HeapTuple tup, TupleDesc desc)
{
	rep->activities = sm_spi_int64(tup, desc, 2, 0);
	rep->meetings = sm_spi_int64(tup, desc, 3, 0);
}

/*
 * A rep's quota for the period: each quota overlapping it, prorated by the
 * days of overlap, converted on the period's last day.
 */
static void
kp_quota_row(ScorecardRun *run, RepAcc *rep, HeapTuple tup, TupleDesc desc)
{
	sm_numeric_accum(run->cxt, &rep->quota,
					 sm_rates_convert(&run->rates, sm_spi_numeric(tup, desc, 3), SPI_getvalue(tup, desc, 2),
								  run->period_end));
}

static void
kp_task_row(ScorecardRun *run, RepAcc *rep, HeapTuple tup, TupleDesc desc)
{
	rep->task_rate = sm_numeric_copy(run->cxt, sm_spi_numeric(tup, desc, 2));
}

static void
kp_csat_row(ScorecardRun *run, RepAcc *rep, HeapTuple tup, TupleDesc desc)
{
	rep->csat_avg = sm_numeric_copy(run->cxt, sm_spi_numeric(tup, desc, 2));
	rep->nps = sm_numeric_copy(run->cxt, sm_spi_numeric(tup, desc, 3));
}

/*
 * Courses expected of a rep by the period's end: every required course
 * created by then (run->training_required, the same for everyone), plus the
 * other courses the rep enrolled in by then.
 */
static void
kp_training_row(ScorecardRun *run, RepAcc *rep, HeapTuple tup, TupleDesc desc)
{
	rep->training_extra = sm_spi_int64(tup, desc, 2, 0);
	rep->training_done = sm_spi_int64(tup, desc, 3, 0);
}

static void
kp_review_row(ScorecardRun *run, RepAcc *rep, HeapTuple tup, TupleDesc desc)
{
	int			k;

	for (k = 0; k < 3; k++)
		rep->attitude[k] = sm_numeric_copy(run->cxt, sm_spi_numeric(tup, desc, 2 + k));
}

static const SourceQuery source_queries[] = {
	{SRC_DEALS,
		"SELECT coalesce(sp.rep_id, d.owner_rep_id),"
		"       d.currency::text,"
		"       CASE WHEN d.currency <> $3 AND d.closed_at >= $1::timestamptz"
		"             AND d.closed_at < ($2 + 1)::timestamptz THEN d.closed_at::date END,"
		"       CASE WHEN d.currency <> $3 AND d.created_at >= $1::timestamptz"
		"             AND d.created_at < ($2 + 1)::timestamptz THEN d.created_at::date END,"
		"       sum(coalesce(sp.share, 1)) FILTER (WHERE w.won),"
		"       sum(d.amount * coalesce(sp.share, 1)) FILTER (WHERE w.won),"
		"       sum(coalesce(sp.share, 1)) FILTER (WHERE w.lost),"
		"       sum(coalesce(sp.share, 1) * extract(epoch FROM d.closed_at - d.created_at)) FILTER (WHERE w.won),"
		"       sum(d.amount * coalesce(sp.share, 1)) FILTER (WHERE d.created_at >= $1::timestamptz"
		"                                                       AND d.created_at < ($2 + 1)::timestamptz)"
		"  FROM salesmgmt.deal d"
		"  JOIN salesmgmt.stage st ON st.stage_id = d.stage_id"
		"  LEFT JOIN salesmgmt.deal_split sp ON sp.deal_id = d.deal_id"
		"  CROSS JOIN LATERAL (SELECT st.outcome = 'won' AND d.closed_at >= $1::timestamptz"
		"                             AND d.closed_at < ($2 + 1)::timestamptz AS won,"
		"                             st.outcome = 'lost' AND d.closed_at >= $1::timestamptz"
		"                             AND d.closed_at < ($2 + 1)::timestamptz AS lost) w"
		" WHERE (d.closed_at >= $1::timestamptz AND d.closed_at < ($2 + 1)::timestamptz"
		"        AND st.outcome IN ('won', 'lost'))"
		"    OR (d.created_at >= $1::timestamptz AND d.created_at < ($2 + 1)::timestamptz)"
		" GROUP BY 1, 2, 3, 4",
	kp_deal_row},
	{SRC_ACTIVITIES,
		"SELECT a.rep_id,"
		"       count(*) FILTER (WHERE a.kind NOT IN ('note', 'coaching')),"
		"       count(*) FILTER (WHERE a.kind IN ('meeting', 'visit', 'demo'))"
		"  FROM salesmgmt.activity a"
		" WHERE a.occurred_at >= $1::timestamptz AND a.occurred_at < ($2 + 1)::timestamptz"
		" GROUP BY a.rep_id",
	kp_activity_row},
	{SRC_QUOTAS,
		"SELECT q.rep_id, q.currency::text,"
		"       sum(q.amount * (least(q.period_end, $2) - greatest(q.period_start, $1) + 1)"
		"           / (q.period_end - q.period_start + 1))"
		"  FROM salesmgmt.%s q"	/* quota_of_record, or quota on 0.1.0 */
		" WHERE q.rep_id IS NOT NULL AND q.period_start <= $2 AND q.period_end >= $1"
		"   AND q.product_family IS NULL"	/* the all-products target */
		"   AND q.measure = 'booked'"	/* of booked amounts, not new ARR */
		" GROUP BY 1, 2",
	kp_quota_row},
	{SRC_TASKS,
		"SELECT t.rep_id,"
		"       round((count(*) FILTER (WHERE t.status = 'done'))::numeric * 100 / count(*), 4)"
		"  FROM salesmgmt.sales_task t"
		" WHERE t.status <> 'cancelled'"
		"   AND coalesce(t.due_date, t.created_at::date) BETWEEN $1 AND $2"
		" GROUP BY t.rep_id",
	kp_task_row},
	{SRC_CSAT,
		"SELECT r.rep_id, round(avg(r.csat), 4),"
		"       CASE WHEN count(r.nps) > 0 THEN"
		"            round((count(*) FILTER (WHERE r.nps >= 9) - count(*) FILTER (WHERE r.nps <= 6))::numeric"
		"                  * 100 / count(r.nps), 4) END"
		"  FROM salesmgmt.csat_response r"
		" WHERE r.responded_at >= $1::timestamptz AND r.responded_at < ($2 + 1)::timestamptz"
		" GROUP BY r.rep_id",
	kp_csat_row},
	{SRC_TRAINING,
		"SELECT e.rep_id,"
		"       count(*) FILTER (WHERE NOT (c.required AND c.created_at < ($2 + 1)::timestamptz)),"
		"       count(*) FILTER (WHERE e.status = 'completed' AND e.completed_at < ($2 + 1)::timestamptz)"
		"  FROM salesmgmt.training_enrollment e"
		"  JOIN salesmgmt.training_course c ON c.course_id = e.course_id"
		" WHERE (c.required AND c.created_at < ($2 + 1)::timestamptz)"
		"    OR e.enrolled_at < ($2 + 1)::timestamptz"
		" GROUP BY e.rep_id",
	kp_training_row},
	{SRC_REVIEWS,
		"SELECT v.rep_id, round(avg(v.discipline), 4), round(avg(v.teamwork), 4),"
		"       round(avg(v.customer_service), 4)"
		"  FROM salesmgmt.review v"
		" WHERE v.period_end BETWEEN $1 AND $2"
		" GROUP BY v.rep_id",
	kp_review_row},
};

/*
 * Run one source query and fold its rows into the reps, each marked as
 * having data in the period; temporaries are freed row by row.
 */
static void
kp_collect_source(ScorecardRun *run, const SourceQuery *q)
{
	MemoryContext old;
	uint64		i;

	/*
	 * quotas of periods that are over as they were at their end
	 * (salesmgmt.quota_of_record, src/quota_as_of.sql): a quota changed
	 * since does not change a past scorecard
	 */
	if (q->source == SRC_QUOTAS)
		kp_source_query(run, psprintf(q->sql, sm_quota_of_record_present() ? "quota_of_record" : "quota"));
	else
		kp_source_query(run, q->sql);
	old = MemoryContextSwitchTo(run->scratch);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		RepAcc	   *rep = kp_rep_for(run, sm_spi_int64(tup, desc, 1, 0));

		rep->seen = true;
		q->row(run, rep, tup, desc);
		MemoryContextReset(run->scratch);
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(SPI_tuptable);
}

/* the required courses every rep is expected to take by the period's end */
static void
kp_count_required_courses(ScorecardRun *run)
{
	bool		isnull;

	kp_source_query(run,
					"SELECT count(*) FROM salesmgmt.training_course c"
					" WHERE c.required AND c.created_at < ($2 + 1)::timestamptz");
	run->training_required = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														 SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
}

/*
 * A custom metric: the function is resolved again by exact signature (it
 * may have been dropped and recreated since the KPI was saved) and called
 * by its quoted, schema-qualified name with typed parameters.  Its rows do
 * not bring former reps into the scorecards: a function that returns 0 for
 * every rep would otherwise score everyone who ever left.
 */
static void
kp_collect_custom(ScorecardRun *run, KpiItem *item)
{
	Oid			fn = kp_lookup_metric_function(item->function, item->code);
	char	   *name = format_procedure(fn);
	StringInfoData sql;
	MemoryContext old;
	uint64		i;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT r.rep_id, r.value FROM %s($1, $2) AS r(rep_id, value)",
					 kp_metric_function_name(fn));
	kp_source_query(run, sql.data);
	old = MemoryContextSwitchTo(run->scratch);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		rep_datum = SPI_getbinval(tup, desc, 1, &isnull);
		int64		rep_id = isnull ? 0 : DatumGetInt64(rep_datum);
		RepKey	   *key;
		bool		found;
		RepAcc	   *rep;
		Numeric		value;

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_SM_KPI_METRIC_RESULT),
					 errmsg("metric function %s returned a null rep_id", name),
					 errhint("Return one row per rep, with the rep's rep_id."),
					 errcontext("KPI \"%s\"", item->code)));
		key = hash_search(run->rep_index, &rep_id, HASH_FIND, &found);
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_SM_KPI_METRIC_RESULT),
					 errmsg("metric function %s returned rep_id " INT64_FORMAT ", which is not a rep",
							name, rep_id),
					 errhint("Return only rep_id values of salesmgmt.rep."),
					 errcontext("KPI \"%s\"", item->code)));
		rep = &run->reps[key->index];
		value = sm_spi_numeric(tup, desc, 2);
		if (value != NULL && (numeric_is_nan(value) || numeric_is_inf(value)))
			ereport(ERROR,
					(errcode(ERRCODE_SM_KPI_METRIC_RESULT),
					 errmsg("metric function %s returned %s for rep " INT64_FORMAT,
							name, sm_numeric_to_cstring(value), rep_id),
					 errhint("Return a finite number, or null when the rep has no data."),
					 errcontext("KPI \"%s\"", item->code)));
		if (rep->custom_returned[item->custom_slot])
			ereport(ERROR,
					(errcode(ERRCODE_SM_KPI_METRIC_RESULT),
					 errmsg("metric function %s returned rep " INT64_FORMAT " more than once",
							name, rep_id),
					 errhint("Return one row per rep."),
					 errcontext("KPI \"%s\"", item->code)));
		rep->custom_returned[item->custom_slot] = true;
		if (value != NULL)
			rep->custom[item->custom_slot] = sm_numeric_copy(run->cxt, sm_numeric_round(value, 4));
		MemoryContextReset(run->scratch);
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(SPI_tuptable);
}

/* ---- from what was collected to the scorecard ---- */

static Numeric
kp_or_zero(Numeric n)
{
	return n ? n : kp_num_zero;
}

/* numerator x 100 / denominator to 4 decimals; NULL when nothing to divide by */
static Numeric
kp_percent(Numeric numerator, Numeric denominator)
{
	if (denominator == NULL || sm_numeric_is_zero(denominator))
		return NULL;
	return sm_numeric_round(sm_numeric_div(sm_numeric_mul(kp_or_zero(numerator), kp_num_hundred),
										   denominator), 4);
}

/* the value of a metric for a rep (4 decimals, counts whole); NULL: no data */
static Numeric
kp_metric_value(ScorecardRun *run, RepAcc *rep, KpiItem *item)
{
	switch (item->metric)
	{
		case M_REVENUE_WON:
			return sm_numeric_round(kp_or_zero(rep->won_amount), 4);
		case M_DEALS_WON:
			return sm_numeric_round(kp_or_zero(rep->won_share), 4);
		case M_WIN_RATE:
			return kp_percent(rep->won_share,
							  sm_numeric_add(kp_or_zero(rep->won_share), kp_or_zero(rep->lost_share)));
		case M_AVG_DEAL_SIZE:
			if (rep->won_share == NULL || sm_numeric_is_zero(rep->won_share))
				return NULL;
			return sm_numeric_round(sm_numeric_div(kp_or_zero(rep->won_amount), rep->won_share), 4);
		case M_SALES_CYCLE_DAYS:
			if (rep->won_share == NULL || sm_numeric_is_zero(rep->won_share))
				return NULL;
			return sm_numeric_round(sm_numeric_div(rep->won_seconds,
												   sm_numeric_mul(rep->won_share,
																  kp_num_seconds_per_day)), 4);
		case M_PIPELINE_CREATED:
			return sm_numeric_round(kp_or_zero(rep->created_amount), 4);
		case M_ACTIVITIES:
			return int64_to_numeric(rep->activities);
		case M_MEETINGS:
			return int64_to_numeric(rep->meetings);
		case M_QUOTA_ATTAINMENT:
			return kp_percent(rep->won_amount, rep->quota);
		case M_TASK_COMPLETION_RATE:
			return rep->task_rate;
		case M_CSAT_AVG:
			return rep->csat_avg;
		case M_NPS:
			return rep->nps;
		case M_TRAINING_COMPLETION:
			return kp_percent(int64_to_numeric(rep->training_done),
							  int64_to_numeric(run->training_required + rep->training_extra));
		case M_ATTITUDE_DISCIPLINE:
			return rep->attitude[0];
		case M_ATTITUDE_TEAMWORK:
			return rep->attitude[1];
		case M_ATTITUDE_CUSTOMER_SERVICE:
			return rep->attitude[2];
		case M_CUSTOM:
			return rep->custom[item->custom_slot];
		case NUM_METRICS:
			break;
	}
	elog(ERROR, "unexpected metric %d", (int) item->metric);
	return NULL;				/* keep compiler quiet */
}

/*
 * Score one rep.  KPIs without data get no weight; the weights of the
 * others are scaled up to 100 (coverage = the weight that had data), so a
 * missing review neither helps nor hurts.  Intermediate numerics live in
 * the scratch context, reset per rep; the results are copied out.
 */
static void
kp_score_rep(ScorecardRun *run, RepAcc *rep)
{
	MemoryContext old;
	Numeric    *values = palloc(sizeof(Numeric) * run->nitems);
	Numeric    *scores = palloc(sizeof(Numeric) * run->nitems);
	Numeric    *effective = palloc(sizeof(Numeric) * run->nitems);
	Numeric		coverage;
	Numeric		weighted;
	Numeric		total = NULL;
	int			i;

	old = MemoryContextSwitchTo(run->scratch);
	coverage = kp_num_zero;
	weighted = kp_num_zero;
	for (i = 0; i < run->nitems; i++)
	{
		KpiItem    *item = &run->items[i];

		values[i] = kp_metric_value(run, rep, item);
		scores[i] = NULL;
		if (values[i] != NULL)
		{
			scores[i] = kp_score_value(values[i], item->target, item->method,
									   item->direction, item->floor, item->cap);
			coverage = sm_numeric_add(coverage, item->weight);
			weighted = sm_numeric_add(weighted, sm_numeric_mul(scores[i], item->weight));
		}
	}
	if (!sm_numeric_is_zero(coverage))
		total = sm_numeric_round(sm_numeric_div(weighted, coverage), 2);
	for (i = 0; i < run->nitems; i++)
	{
		if (values[i] != NULL)
			effective[i] = sm_numeric_round(sm_numeric_div(sm_numeric_mul(run->items[i].weight,
																		  kp_num_hundred),
														   coverage), 4);
		else
			effective[i] = kp_num_zero;
	}

	MemoryContextSwitchTo(old);
	for (i = 0; i < run->nitems; i++)
	{
		values[i] = sm_numeric_copy(CurrentMemoryContext, values[i]);
		scores[i] = sm_numeric_copy(CurrentMemoryContext, scores[i]);
		effective[i] = sm_numeric_copy(CurrentMemoryContext, effective[i]);
	}
	rep->values = values;
	rep->scores = scores;
	rep->effective = effective;
	rep->coverage = sm_numeric_copy(CurrentMemoryContext, coverage);
	rep->total = sm_numeric_copy(CurrentMemoryContext, total);
	rep->grade = NULL;
	if (total != NULL)
	{
		for (i = 0; i < run->nbands; i++)
		{
			if (sm_numeric_cmp(rep->total, run->bands[i].lower) >= 0)
			{
				rep->grade = run->bands[i].grade;
				break;
			}
		}
	}
	MemoryContextReset(run->scratch);
}

/* best score first; unscored last; then by rep */
static int
kp_rep_rank_cmp(const void *a, const void *b)
{
	const RepAcc *x = *(RepAcc *const *) a;
	const RepAcc *y = *(RepAcc *const *) b;

	if (x->total != NULL && y->total != NULL)
	{
		int			c = sm_numeric_cmp(y->total, x->total);

		if (c != 0)
			return c;
	}
	else if (x->total != NULL)
		return -1;
	else if (y->total != NULL)
		return 1;
	return (x->rep_id > y->rep_id) - (x->rep_id < y->rep_id);
}

/* standard competition ranking: equal scores share a rank (1, 1, 3) */
static void
kp_rank_reps(RepAcc **order, int n)
{
	int			i;

	qsort(order, n, sizeof(RepAcc *), kp_rep_rank_cmp);
	for (i = 0; i < n; i++)
	{
		RepAcc	   *rep = order[i];

		if (rep->total == NULL)
			rep->rank = 0;
		else if (i > 0 && order[i - 1]->total != NULL &&
				 sm_numeric_cmp(order[i - 1]->total, rep->total) == 0)
			rep->rank = order[i - 1]->rank;
		else
			rep->rank = i + 1;
	}
}

/* ---- storing ---- */

static Datum
kp_numeric_or_null(Numeric n, bool *isnull)
{
	*isnull = (n == NULL);
	return n ? NumericGetDatum(n) : (Datum) 0;
}

static const char *const store_sql =
"WITH sc AS ("
"    INSERT INTO salesmgmt.scorecard (scheme_id, rep_id, period_start, period_end, score, grade, rank, coverage)"
"    SELECT $1, s.rep_id, $2, $3, s.score, s.grade, s.rank, s.coverage"
"      FROM unnest($4::int8[], $5::numeric[], $6::text[], $7::int4[], $8::numeric[])"
"           AS s(rep_id, score, grade, rank, coverage)"
"    RETURNING scorecard_id, rep_id"
")"
"INSERT INTO salesmgmt.scorecard_item (scorecard_id, kpi_id, value, score, weight, effective_weight,"
"                                      method, direction, target, floor, cap)"
"SELECT sc.scorecard_id, i.kpi_id, i.value, i.score, k.weight, i.effective_weight,"
"       k.method, k.direction, k.target, k.floor, k.cap"
"  FROM unnest($9::int8[], $10::int8[], $11::numeric[], $12::numeric[], $13::numeric[])"
"       AS i(rep_id, kpi_id, value, score, effective_weight)"
"  JOIN sc ON sc.rep_id = i.rep_id"
"  JOIN unnest($14::int8[], $15::numeric[], $16::text[], $17::text[], $18::numeric[], $19::numeric[], $20::numeric[])"
"       AS k(kpi_id, weight, method, direction, target, floor, cap) ON k.kpi_id = i.kpi_id";

/*
 * Replace the scheme's scorecards of the period with these: one INSERT of
 * array parameters, whatever the number of reps.
 */
static void
kp_store_scorecards(ScorecardRun *run, RepAcc **order, int n)
{
	Oid			del_types[3] = {INT8OID, DATEOID, DATEOID};
	Oid			types[20] = {INT8OID, DATEOID, DATEOID,
		INT8ARRAYOID, NUMERICARRAYOID, TEXTARRAYOID, INT4ARRAYOID, NUMERICARRAYOID,
		INT8ARRAYOID, INT8ARRAYOID, NUMERICARRAYOID, NUMERICARRAYOID, NUMERICARRAYOID,
		INT8ARRAYOID, NUMERICARRAYOID, TEXTARRAYOID, TEXTARRAYOID, NUMERICARRAYOID,
	NUMERICARRAYOID, NUMERICARRAYOID};
	Datum		args[20];
	int			nitems = n * run->nitems;
	int			k = run->nitems;
	Datum	   *sc[5];
	bool	   *scn[5];
	Datum	   *it[5];
	bool	   *itn[5];
	Datum	   *kp[7];
	bool	   *kpn[7];
	int			c;
	int			i;
	int			j;

	args[0] = Int64GetDatum(run->scheme_id);
	args[1] = DateADTGetDatum(run->period_start);
	args[2] = DateADTGetDatum(run->period_end);
	sm_spi_query("DELETE FROM salesmgmt.scorecard_item si USING salesmgmt.scorecard s"
				 " WHERE si.scorecard_id = s.scorecard_id AND s.scheme_id = $1"
				 "   AND s.period_start = $2 AND s.period_end = $3",
				 3, del_types, args, NULL, false, SPI_OK_DELETE, NULL);
	sm_spi_query("DELETE FROM salesmgmt.scorecard"
				 " WHERE scheme_id = $1 AND period_start = $2 AND period_end = $3",
				 3, del_types, args, NULL, false, SPI_OK_DELETE, NULL);
	if (n == 0)
		return;

	for (c = 0; c < 5; c++)
	{
		sc[c] = palloc(sizeof(Datum) * n);
		scn[c] = palloc0(sizeof(bool) * n);
		it[c] = palloc(sizeof(Datum) * nitems);
		itn[c] = palloc0(sizeof(bool) * nitems);
	}
	for (c = 0; c < 7; c++)
	{
		kp[c] = palloc(sizeof(Datum) * k);
		kpn[c] = palloc0(sizeof(bool) * k);
	}

	for (i = 0; i < n; i++)
	{
		RepAcc	   *rep = order[i];

		sc[0][i] = Int64GetDatum(rep->rep_id);
		sc[1][i] = kp_numeric_or_null(rep->total, &scn[1][i]);
		scn[2][i] = (rep->grade == NULL);
		sc[2][i] = rep->grade ? CStringGetTextDatum(rep->grade) : (Datum) 0;
		scn[3][i] = (rep->rank == 0);
		sc[3][i] = Int32GetDatum(rep->rank);
		sc[4][i] = NumericGetDatum(rep->coverage);
		for (j = 0; j < k; j++)
		{
			int			x = i * k + j;

			it[0][x] = Int64GetDatum(rep->rep_id);
			it[1][x] = Int64GetDatum(run->items[j].kpi_id);
			it[2][x] = kp_numeric_or_null(rep->values[j], &itn[2][x]);
			it[3][x] = kp_numeric_or_null(rep->scores[j], &itn[3][x]);
			it[4][x] = NumericGetDatum(rep->effective[j]);
		}
	}
	for (j = 0; j < k; j++)
	{
		KpiItem    *item = &run->items[j];

		kp[0][j] = Int64GetDatum(item->kpi_id);
		kp[1][j] = NumericGetDatum(item->weight);
		kp[2][j] = CStringGetTextDatum(item->method_name);
		kp[3][j] = CStringGetTextDatum(item->direction_name);
		kp[4][j] = NumericGetDatum(item->target);
		kp[5][j] = kp_numeric_or_null(item->floor, &kpn[5][j]);
		kp[6][j] = NumericGetDatum(item->cap);
	}

	args[3] = PointerGetDatum(sm_make_array(sc[0], scn[0], n, INT8OID));
	args[4] = PointerGetDatum(sm_make_array(sc[1], scn[1], n, NUMERICOID));
	args[5] = PointerGetDatum(sm_make_array(sc[2], scn[2], n, TEXTOID));
	args[6] = PointerGetDatum(sm_make_array(sc[3], scn[3], n, INT4OID));
	args[7] = PointerGetDatum(sm_make_array(sc[4], scn[4], n, NUMERICOID));
	args[8] = PointerGetDatum(sm_make_array(it[0], itn[0], nitems, INT8OID));
	args[9] = PointerGetDatum(sm_make_array(it[1], itn[1], nitems, INT8OID));
	args[10] = PointerGetDatum(sm_make_array(it[2], itn[2], nitems, NUMERICOID));
	args[11] = PointerGetDatum(sm_make_array(it[3], itn[3], nitems, NUMERICOID));
	args[12] = PointerGetDatum(sm_make_array(it[4], itn[4], nitems, NUMERICOID));
	args[13] = PointerGetDatum(sm_make_array(kp[0], kpn[0], k, INT8OID));
	args[14] = PointerGetDatum(sm_make_array(kp[1], kpn[1], k, NUMERICOID));
	args[15] = PointerGetDatum(sm_make_array(kp[2], kpn[2], k, TEXTOID));
	args[16] = PointerGetDatum(sm_make_array(kp[3], kpn[3], k, TEXTOID));
	args[17] = PointerGetDatum(sm_make_array(kp[4], kpn[4], k, NUMERICOID));
	args[18] = PointerGetDatum(sm_make_array(kp[5], kpn[5], k, NUMERICOID));
	args[19] = PointerGetDatum(sm_make_array(kp[6], kpn[6], k, NUMERICOID));
	sm_spi_query(store_sql, 20, types, args, NULL, false, SPI_OK_INSERT, NULL);
	if (SPI_processed != (uint64) nitems)
		elog(ERROR, "stored " UINT64_FORMAT " scorecard items instead of %d",
			 SPI_processed, nitems);
}

/* ---- the result ---- */

/* {"<code>": {"metric", "value", "score", "weight", "effective_weight"}, ...} */
static Jsonb *
kp_rep_details(ScorecardRun *run, RepAcc *rep)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;
	int			i;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < run->nitems; i++)
	{
		KpiItem    *item = &run->items[i];
		JsonbValue	v;

		sm_jsonb_push_key(&state, item->code);
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		sm_jsonb_push_key(&state, "metric");
		v.type = jbvString;
		v.val.string.val = (char *) kp_metric_info[item->metric].name;
		v.val.string.len = strlen(v.val.string.val);
		pushJsonbValue(&state, WJB_VALUE, &v);
		sm_jsonb_push_numeric(&state, "value", rep->values[i]);
		sm_jsonb_push_numeric(&state, "score", rep->scores[i]);
		sm_jsonb_push_numeric(&state, "weight", item->weight);
		sm_jsonb_push_numeric(&state, "effective_weight", rep->effective[i]);
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* the result columns of salesmgmt.compute_scorecards, in order */
typedef enum KpResCol
{
	KP_RES_REP_ID,
	KP_RES_SCORE,
	KP_RES_GRADE,
	KP_RES_RANK,
	KP_RES_DETAILS,
	KP_RES_NCOLS
} KpResCol;

static const char *const kp_result_columns[] = {"rep_id", "score", "grade", "rank", "details"};

StaticAssertDecl(lengthof(kp_result_columns) == KP_RES_NCOLS,
				 "every column of compute_scorecards is named");

/*
 * compute_scorecards(p_scheme_id, p_period_start, p_period_end)
 */
Datum
sm_compute_scorecards(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ScorecardRun run;
	MemoryContext old;
	RepAcc	  **order;
	int			n;
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("scheme and period of a scorecard computation must not be null")));
	memset(&run, 0, sizeof(run));
	run.scheme_id = PG_GETARG_INT64(0);
	run.period_start = PG_GETARG_DATEADT(1);
	run.period_end = PG_GETARG_DATEADT(2);
	if (DATE_NOT_FINITE(run.period_start) || DATE_NOT_FINITE(run.period_end))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("scorecard period must have finite dates")));
	if (run.period_end < run.period_start)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("scorecard period ends before it starts"),
				 errdetail("The period is %s to %s.",
						   DatumGetCString(DirectFunctionCall1(date_out, PG_GETARG_DATUM(1))),
						   DatumGetCString(DirectFunctionCall1(date_out, PG_GETARG_DATUM(2)))),
				 errhint("Both dates are inclusive: pass the first and the last day.")));
	strlcpy(run.currency, sm_currency_reporting(), sizeof(run.currency));
	kp_init_constants();

	InitMaterializedSRF(fcinfo, 0);
	sm_check_result_columns(rsinfo->setDesc, kp_result_columns, KP_RES_NCOLS);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	run.cxt = AllocSetContextCreate(CurrentMemoryContext, "salesmgmt scorecards",
									ALLOCSET_DEFAULT_SIZES);
	run.scratch = AllocSetContextCreate(run.cxt, "salesmgmt scorecard scratch",
										ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(run.cxt);

	kp_load_scheme(&run);
	kp_load_reps(&run);
	if (run.need[SRC_DEALS] || run.need[SRC_QUOTAS])
		kp_load_rates(&run);
	if (run.need[SRC_TRAINING])
		kp_count_required_courses(&run);
	for (i = 0; i < (int) lengthof(source_queries); i++)
	{
		if (run.need[source_queries[i].source])
			kp_collect_source(&run, &source_queries[i]);
	}
	for (i = 0; i < run.nitems; i++)
	{
		if (run.items[i].metric == M_CUSTOM)
			kp_collect_custom(&run, &run.items[i]);
	}

	/* every active rep in scope, and former reps with data in the period */
	order = palloc(sizeof(RepAcc *) * Max(run.nreps, 1));
	n = 0;
	for (i = 0; i < run.nreps; i++)
	{
		RepAcc	   *rep = &run.reps[i];

		if (!rep->in_scope || (!rep->active && !rep->seen))
			continue;
		kp_score_rep(&run, rep);
		order[n++] = rep;
	}
	kp_rank_reps(order, n);
	kp_store_scorecards(&run, order, n);

	for (i = 0; i < n; i++)
	{
		RepAcc	   *rep = order[i];
		Datum		values[KP_RES_NCOLS];
		bool		nulls[KP_RES_NCOLS];

		MemoryContextSwitchTo(run.scratch);
		memset(nulls, 0, sizeof(nulls));
		values[KP_RES_REP_ID] = Int64GetDatum(rep->rep_id);
		values[KP_RES_SCORE] = kp_numeric_or_null(rep->total, &nulls[KP_RES_SCORE]);
		nulls[KP_RES_GRADE] = (rep->grade == NULL);
		values[KP_RES_GRADE] = rep->grade ? CStringGetTextDatum(rep->grade) : (Datum) 0;
		nulls[KP_RES_RANK] = (rep->rank == 0);
		values[KP_RES_RANK] = Int32GetDatum(rep->rank);
		values[KP_RES_DETAILS] = JsonbPGetDatum(kp_rep_details(&run, rep));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextReset(run.scratch);
	}

	MemoryContextSwitchTo(old);
	SPI_finish();
	return (Datum) 0;
}

/*-------------------------------------------------------------------------
 *
 * kpi.c
 *	  KPI scoring and scorecards: the performance-evaluation pillar.
 *
 * kpi_score() turns an actual value into a score against a target by one
 * of four methods.  compute_scorecards() measures every KPI of a scheme for
 * every rep over a period, scores them, shares out the weight of KPIs a
 * rep has no data for, grades and ranks the reps and stores the result.
 *
 * The measuring is done in one pass per source table: a handful of
 * set-oriented queries grouped by rep (deals, activities, quotas, tasks,
 * CSAT, training, reviews), each run only when a KPI of the scheme needs
 * it, whatever the number of KPIs built on it.  Amounts are converted to
 * the reporting currency here, from an in-memory copy of the dated rates,
 * so that the deal query can stay a plain aggregate.  Custom metrics are
 * functions (p_from date, p_to date) RETURNS TABLE (rep_id bigint, value
 * numeric), resolved by exact signature and called by their quoted,
 * schema-qualified name.
 *
 * All arithmetic is numeric.  The rounding rules (metric values to 4
 * decimals, scores to 2) are part of the documented semantics, and the
 * benchmark's SQL reference (bench/kpi_reference.sql) applies the same
 * operations in the same order, so both give identical results.
 *
 *-------------------------------------------------------------------------
 */
#include "kpi.h"

PG_FUNCTION_INFO_V1(sm_kpi_score);
PG_FUNCTION_INFO_V1(sm_kpi_metrics);
PG_FUNCTION_INFO_V1(sm_kpi_validate);
PG_FUNCTION_INFO_V1(sm_kpi_scheme_validate);

/* ----------------------------------------------------------------------
 * The metric catalogue (its types are in kpi.h)
 * ----------------------------------------------------------------------
 */

/*
 * Keep in step with the kpi_metric_known constraint in kpi.sql and with
 * docs/kpi-scorecards.md.
 */
const MetricInfo kp_metric_info[NUM_METRICS] = {
	{"revenue_won", SRC_DEALS, NUM_SOURCES, "reporting currency", "higher",
		"Credited amount of the deals won in the period (stage outcome won, closed_at in the period), converted to salesmgmt.reporting_currency at the close date.",
	"never: 0 without won deals"},
	{"deals_won", SRC_DEALS, NUM_SOURCES, "deals", "higher",
		"Deals won in the period; a split deal counts as the rep's share of it.",
	"never: 0 without won deals"},
	{"win_rate", SRC_DEALS, NUM_SOURCES, "%", "higher",
		"Won deals in percent of the deals won or lost in the period (credited shares).",
	"no deal won or lost in the period"},
	{"avg_deal_size", SRC_DEALS, NUM_SOURCES, "reporting currency", "higher",
		"revenue_won / deals_won: the share-weighted average amount of the deals won.",
	"no deal won in the period"},
	{"sales_cycle_days", SRC_DEALS, NUM_SOURCES, "days", "lower",
		"Share-weighted average days from created_at to closed_at of the deals won in the period.",
	"no deal won in the period"},
	{"pipeline_created", SRC_DEALS, NUM_SOURCES, "reporting currency", "higher",
		"Credited amount (current amount) of the deals created in the period, in any stage, converted at the creation date.",
	"never: 0 without new deals"},
	{"activities", SRC_ACTIVITIES, NUM_SOURCES, "count", "higher",
		"Calls, e-mails, meetings, visits and demos in the period (notes do not count).",
	"never: 0 without activities"},
	{"meetings", SRC_ACTIVITIES, NUM_SOURCES, "count", "higher",
		"Meetings, visits and demos in the period.",
	"never: 0 without meetings"},
	{"quota_attainment", SRC_DEALS, SRC_QUOTAS, "%", "higher",
		"revenue_won in percent of the rep's quota for the period: quotas overlapping the period prorated by days, converted at the period's last day.",
	"no quota overlaps the period, or it is 0"},
	{"task_completion_rate", SRC_TASKS, NUM_SOURCES, "%", "higher",
		"Done tasks in percent of the tasks due in the period (due_date, else creation date), cancelled tasks excluded.",
	"no task due in the period"},
	{"csat_avg", SRC_CSAT, NUM_SOURCES, "1-5", "higher",
		"Average CSAT (1-5) of the responses received in the period.",
	"no CSAT answer in the period"},
	{"nps", SRC_CSAT, NUM_SOURCES, "-100..100", "higher",
		"Net promoter score: promoters (9-10) minus detractors (0-6) in percent of the NPS answers received in the period.",
	"no NPS answer in the period"},
	{"training_completion", SRC_TRAINING, NUM_SOURCES, "%", "higher",
		"Courses completed by the period's end in percent of the courses expected of the rep: every required course created by then plus the other courses the rep enrolled in by then.",
	"no course expected of the rep"},
	{"attitude_discipline", SRC_REVIEWS, NUM_SOURCES, "1-5", "higher",
		"Average discipline rating of the reviews whose period ends in the period.",
	"no review rating it"},
	{"attitude_teamwork", SRC_REVIEWS, NUM_SOURCES, "1-5", "higher",
		"Average teamwork rating of the reviews whose period ends in the period.",
	"no review rating it"},
	{"attitude_customer_service", SRC_REVIEWS, NUM_SOURCES, "1-5", "higher",
		"Average customer-service rating of the reviews whose period ends in the period.",
	"no review rating it"},
	{"custom", SRC_CUSTOM, NUM_SOURCES, NULL, NULL,
		"Computed by the KPI's metric_function (p_from date, p_to date) RETURNS TABLE (rep_id bigint, value numeric).",
	"the function returns no row or a null value for the rep"},
};

KpiMetric
kp_metric_from_name(const char *name)
{
	int			i;

	for (i = 0; i < NUM_METRICS; i++)
	{
		if (strcmp(kp_metric_info[i].name, name) == 0)
			return (KpiMetric) i;
	}
	return NUM_METRICS;
}

/* ----------------------------------------------------------------------
 * Scoring
 * ----------------------------------------------------------------------
 */

static const char *const method_names[] = {"achievement", "reduction", "threshold", "band"};

static KpiMethod
kp_method_from_name(const char *name)
{
	int			i;

	for (i = 0; i < (int) lengthof(method_names); i++)
	{
		if (strcmp(method_names[i], name) == 0)
			return (KpiMethod) i;
	}
	return METHOD_UNKNOWN;
}

static KpiDirection
kp_direction_from_name(const char *name)
{
	if (strcmp(name, "higher") == 0)
		return DIR_HIGHER;
	if (strcmp(name, "lower") == 0)
		return DIR_LOWER;
	return DIR_UNKNOWN;
}

/* numeric constants, made once per backend in TopMemoryContext */
Numeric		kp_num_zero;
Numeric		kp_num_hundred;
Numeric		kp_num_seconds_per_day;

void
kp_init_constants(void)
{
	MemoryContext old;

	if (kp_num_zero != NULL)
		return;
	old = MemoryContextSwitchTo(TopMemoryContext);
	kp_num_hundred = int64_to_numeric(100);
	kp_num_seconds_per_day = int64_to_numeric(86400);
	kp_num_zero = int64_to_numeric(0);
	MemoryContextSwitchTo(old);
}

static void
kp_check_finite(const DefinitionContext *dc, const char *what, Numeric v)
{
	if (v != NULL && (numeric_is_nan(v) || numeric_is_inf(v)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number, not %s", what,
						sm_numeric_to_cstring(v)),
				 DEF_CONTEXT(dc)));
}

/*
 * The rules a KPI definition follows; the same checks back the table's
 * constraints and refuse bad arguments to kpi_score().
 */
void
kp_check_definition(const DefinitionContext *dc, KpiMethod method,
					KpiDirection direction, Numeric target, Numeric floorval,
					Numeric cap)
{
	kp_check_finite(dc, "target", target);
	kp_check_finite(dc, "floor", floorval);
	kp_check_finite(dc, "cap", cap);

	if (method == METHOD_ACHIEVEMENT && direction != DIR_HIGHER)
		ereport(ERROR,
				(DEF_ERRCODE(dc),
				 errmsg("scoring method achievement is for KPIs where higher is better"),
				 errhint("Score a lower-is-better KPI with reduction, threshold or band."),
				 DEF_CONSTRAINT(dc, "kpi_method_direction"),
				 DEF_CONTEXT(dc)));
	if (method == METHOD_REDUCTION && direction != DIR_LOWER)
		ereport(ERROR,
				(DEF_ERRCODE(dc),
				 errmsg("scoring method reduction is for KPIs where lower is better"),
				 errhint("Score a higher-is-better KPI with achievement, threshold or band."),
				 DEF_CONSTRAINT(dc, "kpi_method_direction"),
				 DEF_CONTEXT(dc)));
	if ((method == METHOD_ACHIEVEMENT || method == METHOD_REDUCTION) &&
		sm_numeric_cmp(target, kp_num_zero) <= 0)
		ereport(ERROR,
				(DEF_ERRCODE(dc),
				 errmsg("target of scoring method %s must be positive",
						method_names[method]),
				 errdetail("The target is %s.", sm_numeric_to_cstring(target)),
				 errhint("These methods divide by the target; use threshold or band for a target of zero or below."),
				 DEF_CONSTRAINT(dc, "kpi_target_positive"),
				 DEF_CONTEXT(dc)));
	if (method == METHOD_BAND)
	{
		if (floorval == NULL)
			ereport(ERROR,
					(DEF_ERRCODE(dc),
					 errmsg("scoring method band needs a floor"),
					 errhint("The floor is the value that scores 0; the target scores 100."),
					 DEF_CONSTRAINT(dc, "kpi_band_floor"),
					 DEF_CONTEXT(dc)));
		if (direction == DIR_HIGHER ? sm_numeric_cmp(floorval, target) >= 0
			: sm_numeric_cmp(floorval, target) <= 0)
			ereport(ERROR,
					(DEF_ERRCODE(dc),
					 errmsg("floor of a band must be %s the target when %s is better",
							direction == DIR_HIGHER ? "below" : "above",
							direction == DIR_HIGHER ? "higher" : "lower"),
					 errdetail("The floor is %s and the target %s.",
							   sm_numeric_to_cstring(floorval),
							   sm_numeric_to_cstring(target)),
					 DEF_CONSTRAINT(dc, "kpi_band_floor"),
					 DEF_CONTEXT(dc)));
	}
	if (sm_numeric_cmp(cap, kp_num_zero) < 0)
		ereport(ERROR,
				(DEF_ERRCODE(dc),
				 errmsg("cap must not be negative"),
				 errdetail("The cap is %s.", sm_numeric_to_cstring(cap)),
				 errhint("The cap is the highest score a KPI can reach, e.g. 100 or 120."),
				 DEF_CONSTRAINT(dc, "kpi_cap_nonnegative"),
				 DEF_CONTEXT(dc)));
}

/*
 * The score of a value, clamped to [0, cap] and rounded to 2 decimals.
 * The definition has been checked.  Formulas multiply before they divide,
 * so that only one division rounds.
 */
Numeric
kp_score_value(Numeric value, Numeric target, KpiMethod method,
			   KpiDirection direction, Numeric floorval, Numeric cap)
{
	Numeric		raw;

	/* a value worse than the floor scores nothing */
	if (floorval != NULL &&
		(direction == DIR_HIGHER ? sm_numeric_cmp(value, floorval) < 0
		 : sm_numeric_cmp(value, floorval) > 0))
		return sm_numeric_round(kp_num_zero, 2);

	switch (method)
	{
		case METHOD_ACHIEVEMENT:
			/* actual / target x 100 */
			raw = sm_numeric_div(sm_numeric_mul(value, kp_num_hundred), target);
			break;
		case METHOD_REDUCTION:
			/* 100 - (actual - target) / target x 100 */
			raw = sm_numeric_sub(kp_num_hundred,
								 sm_numeric_div(sm_numeric_mul(sm_numeric_sub(value, target),
															   kp_num_hundred),
												target));
			break;
		case METHOD_THRESHOLD:
			if (direction == DIR_HIGHER ? sm_numeric_cmp(value, target) >= 0
				: sm_numeric_cmp(value, target) <= 0)
				raw = kp_num_hundred;
			else
				raw = kp_num_zero;
			break;
		case METHOD_BAND:

			/*
			 * (actual - floor) / (target - floor) x 100: for lower-is-better
			 * both differences change sign, so one formula serves both.
			 */
			raw = sm_numeric_div(sm_numeric_mul(sm_numeric_sub(value, floorval),
												kp_num_hundred),
								 sm_numeric_sub(target, floorval));
			break;
		default:
			elog(ERROR, "unexpected scoring method %d", (int) method);
			raw = NULL;			/* keep compiler quiet */
	}
	raw = sm_numeric_max(raw, kp_num_zero);
	raw = sm_numeric_min(raw, cap);
	return sm_numeric_round(raw, 2);
}

KpiMethod
kp_parse_method(const DefinitionContext *dc, const char *name)
{
	KpiMethod	m = kp_method_from_name(name);

	if (m == METHOD_UNKNOWN)
		ereport(ERROR,
				(DEF_ERRCODE(dc),
				 errmsg("unknown scoring method \"%s\"", name),
				 errhint("Use achievement, reduction, threshold or band."),
				 DEF_CONSTRAINT(dc, "kpi_method_valid"),
				 DEF_CONTEXT(dc)));
	return m;
}

KpiDirection
kp_parse_direction(const DefinitionContext *dc, const char *name)
{
	KpiDirection d = kp_direction_from_name(name);

	if (d == DIR_UNKNOWN)
		ereport(ERROR,
				(DEF_ERRCODE(dc),
				 errmsg("unknown direction \"%s\"", name),
				 errhint("Use higher (more is better) or lower (less is better)."),
				 DEF_CONSTRAINT(dc, "kpi_direction_valid"),
				 DEF_CONTEXT(dc)));
	return d;
}

/*
 * kpi_score(p_value, p_target, p_method, p_direction, p_floor, p_cap)
 *
 * Null value: null (no data).  Null target, method, direction or cap: an
 * error, since the score would silently mean nothing.
 */
Datum
sm_kpi_score(PG_FUNCTION_ARGS)
{
	DefinitionContext dc = {NULL, NULL};
	Numeric		value;
	Numeric		target;
	Numeric		floorval;
	Numeric		cap;
	KpiMethod	method;
	KpiDirection direction;

	kp_init_constants();
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("target, method, direction and cap of a KPI score must not be null"),
				 errhint("Pass a null value (not a null target) for a rep without data.")));

	target = PG_GETARG_NUMERIC(1);
	method = kp_parse_method(&dc, text_to_cstring(PG_GETARG_TEXT_PP(2)));
	direction = kp_parse_direction(&dc, text_to_cstring(PG_GETARG_TEXT_PP(3)));
	floorval = PG_ARGISNULL(4) ? NULL : PG_GETARG_NUMERIC(4);
	cap = PG_GETARG_NUMERIC(5);
	kp_check_definition(&dc, method, direction, target, floorval, cap);

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	value = PG_GETARG_NUMERIC(0);
	if (numeric_is_nan(value) || numeric_is_inf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value to score must be a finite number, not %s",
						sm_numeric_to_cstring(value))));

	PG_RETURN_NUMERIC(kp_score_value(value, target, method, direction, floorval, cap));
}

/* the result columns of salesmgmt.kpi_metrics, in order */
typedef enum KpMetricCol
{
	KP_MET_METRIC,
	KP_MET_UNIT,
	KP_MET_DIRECTION,
	KP_MET_DESCRIPTION,
	KP_MET_NO_DATA_WHEN,
	KP_MET_NCOLS
} KpMetricCol;

static const char *const kp_metric_columns[] = {
	"metric", "unit", "direction", "description", "no_data_when"
};

StaticAssertDecl(lengthof(kp_metric_columns) == KP_MET_NCOLS,
				 "every column of kpi_metrics is named");

/*
 * kpi_metrics(): the catalogue above, for people and for tools.
 */
Datum
sm_kpi_metrics(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	sm_check_result_columns(rsinfo->setDesc, kp_metric_columns, KP_MET_NCOLS);
	for (i = 0; i < NUM_METRICS; i++)
	{
		const MetricInfo *m = &kp_metric_info[i];
		Datum		values[KP_MET_NCOLS];
		bool		nulls[KP_MET_NCOLS];

		memset(nulls, 0, sizeof(nulls));
		values[KP_MET_METRIC] = CStringGetTextDatum(m->name);
		if (m->unit)
			values[KP_MET_UNIT] = CStringGetTextDatum(m->unit);
		else
			nulls[KP_MET_UNIT] = true;
		if (m->direction)
			values[KP_MET_DIRECTION] = CStringGetTextDatum(m->direction);
		else
			nulls[KP_MET_DIRECTION] = true;
		values[KP_MET_DESCRIPTION] = CStringGetTextDatum(m->description);
		values[KP_MET_NO_DATA_WHEN] = CStringGetTextDatum(m->no_data);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ----------------------------------------------------------------------
 * Custom metric functions
 * ----------------------------------------------------------------------
 */

/*
 * A metric function runs with the rights of the role that computes the
 * scorecards, an admin or a superuser.  It is trusted only when its owner
 * already has that role's rights (or is a superuser): otherwise whoever
 * owns it, or can replace it, would act as the computing role.  A function
 * in a temporary schema is never trusted: a stored pg_temp_N name resolves
 * to whichever session holds that slot next.  Checked when a KPI is saved
 * (as its writer) and at every computation (as the computing role).
 */
static void
kp_check_metric_function_trusted(Oid fn, const char *kpi_code)
{
	HeapTuple	proc = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	Oid			owner;

	if (!HeapTupleIsValid(proc))
		elog(ERROR, "cache lookup failed for function %u", fn);
	owner = ((Form_pg_proc) GETSTRUCT(proc))->proowner;
	ReleaseSysCache(proc);

	if (isAnyTempNamespace(get_func_namespace(fn)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("metric function %s is in a temporary schema", format_procedure(fn)),
				 errdetail("KPI \"%s\" names it as its metric_function; a temporary schema passes to another session when this one ends.",
						   kpi_code),
				 errhint("Create the metric function in a permanent schema that only trusted roles can create in.")));
	if (!has_privs_of_role(owner, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("metric function %s is owned by role \"%s\", which does not have the rights of role \"%s\"",
						format_procedure(fn), GetUserNameFromId(owner, false),
						GetUserNameFromId(GetUserId(), false)),
				 errdetail("KPI \"%s\" names it as its metric_function, and it would run with the rights of role \"%s\".",
						   kpi_code, GetUserNameFromId(GetUserId(), false)),
				 errhint("Have a superuser or a role with these rights own it (ALTER FUNCTION ... OWNER TO), or use it as its owner.")));
}

/*
 * Resolve a custom metric function by its exact signature (date, date) and
 * check that it returns a set of (bigint, numeric) and may be trusted (see
 * above).  The name is parsed as a possibly qualified, possibly quoted
 * identifier, never run as SQL.
 */
Oid
kp_lookup_metric_function(const char *name, const char *kpi_code)
{
	List	   *names;
	List	   *parts;
	Oid			argtypes[2] = {DATEOID, DATEOID};
	Oid			fn;
	Oid			rettype;
	TupleDesc	tupdesc;
	TypeFuncClass kind;

	/* a syntax check first, for a message that says what is expected */
	if (!SplitIdentifierString(pstrdup(name), '.', &parts) ||
		list_length(parts) < 1 || list_length(parts) > 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("\"%s\" is not a function name", name),
				 errdetail("KPI \"%s\" names it as its metric_function.", kpi_code),
				 errhint("Give the name alone, optionally schema-qualified (e.g. public.my_metric); the arguments are always (date, date).")));
	names = sm_string_to_qualified_name_list(name);
	fn = LookupFuncName(names, 2, argtypes, true);
	if (!OidIsValid(fn))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("metric function %s(date, date) does not exist", name),
				 errdetail("KPI \"%s\" names it as its metric_function.", kpi_code),
				 errhint("Create it as: CREATE FUNCTION %s(p_from date, p_to date) RETURNS TABLE (rep_id bigint, value numeric) ...", name)));

	kind = get_func_result_type(fn, &rettype, &tupdesc);
	if (!get_func_retset(fn) || kind != TYPEFUNC_COMPOSITE || tupdesc->natts != 2 ||
		TupleDescAttr(tupdesc, 0)->atttypid != INT8OID ||
		TupleDescAttr(tupdesc, 1)->atttypid != NUMERICOID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("metric function %s must return TABLE (rep_id bigint, value numeric)",
						format_procedure(fn)),
				 errdetail("KPI \"%s\" names it as its metric_function.", kpi_code),
				 errhint("Redefine the function with exactly these two result columns.")));
	kp_check_metric_function_trusted(fn, kpi_code);
	return fn;
}

/* the function's quoted, schema-qualified name */
char *
kp_metric_function_name(Oid fn)
{
	return quote_qualified_identifier(get_namespace_name(get_func_namespace(fn)),
									  get_func_name(fn));
}

/* ----------------------------------------------------------------------
 * Triggers: KPI definitions and grade bands
 * ----------------------------------------------------------------------
 */

static char *
kp_tuple_text(HeapTuple tuple, TupleDesc desc, const char *column, bool *isnull)
{
	int			attnum = SPI_fnumber(desc, column);
	Datum		d;

	if (attnum <= 0)
		elog(ERROR, "column \"%s\" not found", column);
	d = heap_getattr(tuple, attnum, desc, isnull);
	return *isnull ? NULL : TextDatumGetCString(d);
}

static Numeric
kp_tuple_numeric(HeapTuple tuple, TupleDesc desc, const char *column)
{
	int			attnum = SPI_fnumber(desc, column);
	bool		isnull;
	Datum		d;

	if (attnum <= 0)
		elog(ERROR, "column \"%s\" not found", column);
	d = heap_getattr(tuple, attnum, desc, &isnull);
	return isnull ? NULL : DatumGetNumeric(d);
}

/*
 * BEFORE INSERT OR UPDATE on salesmgmt.kpi: explain what is wrong with a
 * definition, and store a custom metric function under its resolved,
 * schema-qualified name so that later calls do not depend on search_path.
 * Nulls in NOT NULL columns are left to those constraints.
 */
Datum
sm_kpi_validate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	TupleDesc	desc;
	DefinitionContext dc;
	char	   *code;
	char	   *metric_name;
	char	   *function;
	char	   *method_name;
	char	   *direction_name;
	bool		isnull;
	KpiMetric	metric;

	sm_require_before_row_trigger(fcinfo, "salesmgmt._kpi_validate()");
	kp_init_constants();
	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	desc = RelationGetDescr(trigdata->tg_relation);

	code = kp_tuple_text(tuple, desc, "code", &isnull);
	dc.rel = trigdata->tg_relation;
	dc.code = code;
	metric_name = kp_tuple_text(tuple, desc, "metric", &isnull);
	function = kp_tuple_text(tuple, desc, "metric_function", &isnull);
	method_name = kp_tuple_text(tuple, desc, "method", &isnull);
	direction_name = kp_tuple_text(tuple, desc, "direction", &isnull);

	if (metric_name != NULL)
	{
		metric = kp_metric_from_name(metric_name);
		if (metric == NUM_METRICS)
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("unknown KPI metric \"%s\"", metric_name),
					 errhint("Use a built-in metric (SELECT metric FROM salesmgmt.kpi_metrics()) or custom with a metric_function."),
					 errtableconstraint(trigdata->tg_relation, "kpi_metric_known"),
					 DEF_CONTEXT(&dc)));
		if (metric == M_CUSTOM && function == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("a custom KPI needs a metric_function"),
					 errhint("Name a function (p_from date, p_to date) RETURNS TABLE (rep_id bigint, value numeric)."),
					 errtableconstraint(trigdata->tg_relation, "kpi_custom_metric_function"),
					 DEF_CONTEXT(&dc)));
		if (metric != M_CUSTOM && function != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("only a custom KPI has a metric_function"),
					 errdetail("Metric %s is built in.", metric_name),
					 errhint("Set metric to custom, or metric_function to null."),
					 errtableconstraint(trigdata->tg_relation, "kpi_custom_metric_function"),
					 DEF_CONTEXT(&dc)));
		if (metric == M_CUSTOM)
		{
			Oid			fn = kp_lookup_metric_function(function, code ? code : "(new)");
			int			attnum = SPI_fnumber(desc, "metric_function");
			Datum		newval = CStringGetTextDatum(kp_metric_function_name(fn));
			bool		newnull = false;

			tuple = heap_modify_tuple_by_cols(tuple, desc, 1, &attnum, &newval, &newnull);
		}
	}

	if (method_name != NULL && direction_name != NULL)
	{
		KpiMethod	method = kp_parse_method(&dc, method_name);
		KpiDirection direction = kp_parse_direction(&dc, direction_name);
		Numeric		target = kp_tuple_numeric(tuple, desc, "target");
		Numeric		floorval = kp_tuple_numeric(tuple, desc, "floor");
		Numeric		cap = kp_tuple_numeric(tuple, desc, "cap");

		if (target != NULL && cap != NULL)
			kp_check_definition(&dc, method, direction, target, floorval, cap);
	}

	return PointerGetDatum(tuple);
}

static bool
kp_is_blank(const char *s)
{
	for (; *s; s++)
	{
		if (!isspace((unsigned char) *s))
			return false;
	}
	return true;
}

static int
kp_band_cmp_desc(const void *a, const void *b)
{
	const GradeBand *x = (const GradeBand *) a;
	const GradeBand *y = (const GradeBand *) b;

	return sm_numeric_cmp(y->lower, x->lower);
}

/*
 * Parse grade bands {"A": 90, "B": 75, "C": 60, "D": 0} into an array
 * sorted by lower bound, best grade first.  rel is salesmgmt.kpi_scheme
 * when checking a row (23514), NULL otherwise (22023).
 */
GradeBand *
kp_parse_grade_bands(Jsonb *jb, Relation rel, int *nbands)
{
	DefinitionContext dc = {rel, NULL};
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	GradeBand  *bands;
	int			n = 0;
	int			i;
	bool		has_zero = false;

	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_COUNT(jb) == 0)
		ereport(ERROR,
				(DEF_ERRCODE(&dc),
				 errmsg("grade bands must be a non-empty JSON object of grade and lowest score"),
				 errhint("For example {\"A\": 90, \"B\": 75, \"C\": 60, \"D\": 0}."),
				 DEF_CONSTRAINT(&dc, "kpi_scheme_grade_bands_valid")));

	bands = palloc(sizeof(GradeBand) * JB_ROOT_COUNT(jb));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			bands[n].grade = pnstrdup(v.val.string.val, v.val.string.len);
			if (kp_is_blank(bands[n].grade))
				ereport(ERROR,
						(DEF_ERRCODE(&dc),
						 errmsg("grade names must not be blank"),
						 DEF_CONSTRAINT(&dc, "kpi_scheme_grade_bands_valid")));
		}
		else if (tok == WJB_VALUE)
		{
			if (v.type != jbvNumeric || numeric_is_nan(v.val.numeric) ||
				sm_numeric_cmp(v.val.numeric, kp_num_zero) < 0)
				ereport(ERROR,
						(DEF_ERRCODE(&dc),
						 errmsg("lowest score of grade \"%s\" must be a number of at least 0",
								bands[n].grade),
						 errhint("For example {\"A\": 90, \"B\": 75, \"C\": 60, \"D\": 0}."),
						 DEF_CONSTRAINT(&dc, "kpi_scheme_grade_bands_valid")));
			bands[n].lower = v.val.numeric;
			if (sm_numeric_is_zero(v.val.numeric))
				has_zero = true;
			n++;
		}
	}
	qsort(bands, n, sizeof(GradeBand), kp_band_cmp_desc);
	for (i = 1; i < n; i++)
	{
		if (sm_numeric_cmp(bands[i - 1].lower, bands[i].lower) == 0)
			ereport(ERROR,
					(DEF_ERRCODE(&dc),
					 errmsg("grades \"%s\" and \"%s\" start at the same score",
							bands[i - 1].grade, bands[i].grade),
					 errdetail("Both start at %s.", sm_numeric_to_cstring(bands[i].lower)),
					 DEF_CONSTRAINT(&dc, "kpi_scheme_grade_bands_valid")));
	}
	if (!has_zero)
		ereport(ERROR,
				(DEF_ERRCODE(&dc),
				 errmsg("the lowest grade band must start at 0"),
				 errdetail("Without it some scores would get no grade."),
				 errhint("Add a band such as \"D\": 0."),
				 DEF_CONSTRAINT(&dc, "kpi_scheme_grade_bands_valid")));
	*nbands = n;
	return bands;
}

/*
 * BEFORE INSERT OR UPDATE OF grade_bands on salesmgmt.kpi_scheme.
 */
Datum
sm_kpi_scheme_validate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	TupleDesc	desc;
	int			attnum;
	bool		isnull;
	Datum		d;
	int			nbands;

	sm_require_before_row_trigger(fcinfo, "salesmgmt._kpi_scheme_validate()");
	kp_init_constants();
	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	desc = RelationGetDescr(trigdata->tg_relation);
	attnum = SPI_fnumber(desc, "grade_bands");
	if (attnum <= 0)
		elog(ERROR, "column \"grade_bands\" not found");
	d = heap_getattr(tuple, attnum, desc, &isnull);
	if (!isnull)
		(void) kp_parse_grade_bands(DatumGetJsonbP(d), trigdata->tg_relation, &nbands);
	return PointerGetDatum(tuple);
}

/*-------------------------------------------------------------------------
 *
 * kpi.h
 *	  What the two files of the KPI concern share: the metric catalogue,
 *	  scoring methods and directions, KPI definition checks, grade bands.
 *
 *	  kpi.c				kpi_score(), kpi_metrics(), the metric catalogue,
 *						scoring, custom metric functions, the triggers on
 *						KPI definitions and grade bands
 *	  kpi_scorecard.c	compute_scorecards(): measuring, scoring, grading,
 *						ranking and storing the scorecards of a scheme
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_KPI_H
#define SALESMGMT_KPI_H

#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "compat.h"
#include "salesmgmt.h"
#include "core_currency.h"
#include "core_spi.h"
#include "util.h"

/* the queries metrics come from; a scheme runs only those it needs */
typedef enum KpiSource
{
	SRC_DEALS,
	SRC_ACTIVITIES,
	SRC_QUOTAS,
	SRC_TASKS,
	SRC_CSAT,
	SRC_TRAINING,
	SRC_REVIEWS,
	SRC_CUSTOM,
	NUM_SOURCES
} KpiSource;

/* the metric catalogue */
typedef enum KpiMetric
{
	M_REVENUE_WON,
	M_DEALS_WON,
	M_WIN_RATE,
	M_AVG_DEAL_SIZE,
	M_SALES_CYCLE_DAYS,
	M_PIPELINE_CREATED,
	M_ACTIVITIES,
	M_MEETINGS,
	M_QUOTA_ATTAINMENT,
	M_TASK_COMPLETION_RATE,
	M_CSAT_AVG,
	M_NPS,
	M_TRAINING_COMPLETION,
	M_ATTITUDE_DISCIPLINE,
	M_ATTITUDE_TEAMWORK,
	M_ATTITUDE_CUSTOMER_SERVICE,
	M_CUSTOM,
	NUM_METRICS
} KpiMetric;

typedef struct MetricInfo
{
	const char *name;
	KpiSource	source;
	KpiSource	source2;		/* a second source, or NUM_SOURCES */
	const char *unit;
	const char *direction;
	const char *description;
	const char *no_data;
} MetricInfo;

/* scoring methods */
typedef enum KpiMethod
{
	METHOD_ACHIEVEMENT,
	METHOD_REDUCTION,
	METHOD_THRESHOLD,
	METHOD_BAND,
	METHOD_UNKNOWN
} KpiMethod;

/* direction: true when higher is better; false for lower; error otherwise */
typedef enum KpiDirection
{
	DIR_HIGHER,
	DIR_LOWER,
	DIR_UNKNOWN
} KpiDirection;

/*
 * Where a bad KPI definition is reported: a kpi_score() call (22023), or a
 * row of salesmgmt.kpi (23514 naming the constraint that backs the check).
 */
typedef struct DefinitionContext
{
	Relation	rel;			/* salesmgmt.kpi, or NULL for kpi_score() */
	const char *code;			/* KPI code for messages, or NULL */
} DefinitionContext;

/* the parts of a definition error that depend on where it is reported */
#define DEF_ERRCODE(dc) \
	errcode((dc)->rel ? ERRCODE_CHECK_VIOLATION : ERRCODE_INVALID_PARAMETER_VALUE)
#define DEF_CONSTRAINT(dc, name) \
	((dc)->rel ? errtableconstraint((dc)->rel, (name)) : 0)
#define DEF_CONTEXT(dc) \
	((dc)->code ? errcontext("KPI \"%s\"", (dc)->code) : 0)

typedef struct GradeBand
{
	char	   *grade;
	Numeric		lower;			/* lowest score of the grade */
} GradeBand;

/* the metric catalogue (kpi.c) */
extern const MetricInfo kp_metric_info[NUM_METRICS];

/* numeric constants, made by kp_init_constants() */
extern Numeric kp_num_zero;
extern Numeric kp_num_hundred;
extern Numeric kp_num_seconds_per_day;

extern KpiMetric kp_metric_from_name(const char *name);
extern void kp_init_constants(void);
extern void kp_check_definition(const DefinitionContext *dc, KpiMethod method, KpiDirection direction, Numeric target, Numeric floorval, Numeric cap);
extern Numeric kp_score_value(Numeric value, Numeric target, KpiMethod method, KpiDirection direction, Numeric floorval, Numeric cap);
extern KpiMethod kp_parse_method(const DefinitionContext *dc, const char *name);
extern KpiDirection kp_parse_direction(const DefinitionContext *dc, const char *name);
extern Oid kp_lookup_metric_function(const char *name, const char *kpi_code);
extern char *kp_metric_function_name(Oid fn);
extern GradeBand *kp_parse_grade_bands(Jsonb *jb, Relation rel, int *nbands);

#endif							/* SALESMGMT_KPI_H */

/*-------------------------------------------------------------------------
 *
 * pipeline_api.c
 *	  The SQL interface of the pipeline: move_deal and allowed_next_stages.
 *	  Both work through the same cache and rules as the triggers
 *	  (pipeline.c); a move is a plain UPDATE, so every rule applies to it.
 *
 * See docs/pipeline.md.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"

#include "org.h"
#include "pipeline.h"
#include "salesmgmt.h"

/* ----------------------------------------------------------------------
 * SQL interface: move_deal, allowed_next_stages
 * ----------------------------------------------------------------------
 */

/*
 * Reads a deal's pipeline and stage as the caller (row-level security
 * applies: a deal the caller may not see does not exist for them).
 */
static void
sm_lookup_deal(int64 deal_id, int64 *pipeline_id, int64 *stage_id)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	bool		isnull;
	int			ret;

	if (plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("SELECT pipeline_id, stage_id FROM salesmgmt.deal"
									" WHERE deal_id OPERATOR(pg_catalog.=) $1",
									1, argtypes);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		plan = p;
	}
	args[0] = Int64GetDatum(deal_id);
	ret = SPI_execute_plan(plan, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading salesmgmt.deal failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("deal " INT64_FORMAT " does not exist", deal_id),
				 errhint("Check the deal id; a deal you are not allowed to see does not exist for you.")));
	*pipeline_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*stage_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

/* The stage of a pipeline with the given name; SM003 or 42704 if none. */
static SmStage *
sm_stage_by_name(int64 deal_id, SmPipeline *pipeline, const char *name)
{
	HASH_SEQ_STATUS it;
	SmPipeline *other;

	for (int i = 0; i < pipeline->nstages; i++)
		if (strcmp(pipeline->stages[i]->name, name) == 0)
			return pipeline->stages[i];

	/* a stage of that name elsewhere: the caller confused pipelines */
	hash_seq_init(&it, sm_pipelines());
	while ((other = hash_seq_search(&it)) != NULL)
	{
		for (int i = 0; i < other->nstages; i++)
		{
			if (strcmp(other->stages[i]->name, name) != 0)
				continue;
			hash_seq_term(&it);
			ereport(ERROR,
					(errcode(ERRCODE_SM_STAGE_WRONG_PIPELINE),
					 errmsg("stage \"%s\" belongs to pipeline \"%s\", not to pipeline \"%s\" of deal " INT64_FORMAT,
							name, other->name, pipeline->name, deal_id),
					 errhint("Choose one of the stages of pipeline \"%s\": %s.",
							 pipeline->name, sm_stage_list(pipeline))));
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("pipeline \"%s\" of deal " INT64_FORMAT " has no stage \"%s\"",
					pipeline->name, deal_id, name),
			 errhint("Its stages are %s (names are case-sensitive).", sm_stage_list(pipeline))));
	return NULL;				/* keep compiler quiet */
}

static void
sm_check_not_null(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

PG_FUNCTION_INFO_V1(sm_move_deal);

/*
 * move_deal(p_deal_id, p_stage, p_note): moves a deal to the stage of its
 * own pipeline with that name, by a plain UPDATE, so every rule of the
 * triggers applies; the note goes into the history row (through
 * salesmgmt.change_note, set for the duration of the UPDATE only).  A
 * deal already in that stage is returned unchanged.
 */
Datum
sm_move_deal(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	int64		deal_id;
	char	   *stage_name;
	int64		pipeline_id;
	int64		stage_id;
	SmPipeline *pipeline;
	SmStage    *target;
	Oid			argtypes[2] = {INT8OID, INT8OID};
	Datum		args[2];
	int			nestlevel;
	int			ret;
	Datum		result;

	sm_check_not_null(fcinfo, 0, "deal id");
	sm_check_not_null(fcinfo, 1, "stage name");
	deal_id = PG_GETARG_INT64(0);
	stage_name = text_to_cstring(PG_GETARG_TEXT_PP(1));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sm_lookup_deal(deal_id, &pipeline_id, &stage_id);
	sm_org_require_deal_changeable(deal_id);
	sm_config_current();
	pipeline = sm_find_pipeline(pipeline_id);
	if (pipeline == NULL)		/* cannot happen: foreign key */
		elog(ERROR, "pipeline " INT64_FORMAT " does not exist", pipeline_id);
	target = sm_stage_by_name(deal_id, pipeline, stage_name);
	args[0] = Int64GetDatum(deal_id);
	args[1] = Int64GetDatum(target->stage_id);

	if (plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("UPDATE salesmgmt.deal SET stage_id = $2"
									" WHERE deal_id OPERATOR(pg_catalog.=) $1"
									"   AND stage_id OPERATOR(pg_catalog.<>) $2"
									" RETURNING *",
									2, argtypes);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		plan = p;
	}

	/* the note applies to this UPDATE only, as a function's SET would */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("salesmgmt.change_note",
							 PG_ARGISNULL(2) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(2)),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	ret = SPI_execute_plan(plan, args, NULL, false, 0);
	AtEOXact_GUC(true, nestlevel);
	if (ret != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "moving deal " INT64_FORMAT " failed: %s", deal_id,
			 SPI_result_code_string(ret));

	if (SPI_processed == 0)
	{
		/* already there (or deleted meanwhile): return it as it is */
		static SPIPlanPtr same = NULL;

		if (same == NULL)
		{
			SPIPlanPtr	p = SPI_prepare("SELECT * FROM salesmgmt.deal"
										" WHERE deal_id OPERATOR(pg_catalog.=) $1",
										1, argtypes);

			if (p == NULL || SPI_keepplan(p) != 0)
				elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
			same = p;
		}
		ret = SPI_execute_plan(same, args, NULL, true, 1);
		if (ret != SPI_OK_SELECT || SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("deal " INT64_FORMAT " does not exist", deal_id)));
	}
	result = PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc));
	SPI_finish();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(sm_allowed_next_stage_ids);

/*
 * The ids of the stages a deal may move to now: allowed by the pipeline's
 * policy and transitions, open to the current role, and not a step
 * forward while a required task of the current stage is open.  Stage
 * gates and approvals depend on the deal's fields and are checked when
 * the move is made.
 */
Datum
sm_allowed_next_stage_ids(PG_FUNCTION_ARGS)
{
	int64		deal_id;
	int64		pipeline_id;
	int64		stage_id;
	SmStage    *from;
	Datum	   *ids;
	int			n = 0;
	bool		blocked;

	sm_check_not_null(fcinfo, 0, "deal id");
	deal_id = PG_GETARG_INT64(0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sm_lookup_deal(deal_id, &pipeline_id, &stage_id);
	SPI_finish();

	/* open required tasks of the current stage hold forward moves back */
	blocked = sm_process_open_required(deal_id, stage_id) > 0;
	sm_config_current();
	from = sm_find_stage(stage_id);
	if (from == NULL)			/* cannot happen: foreign key */
		elog(ERROR, "stage " INT64_FORMAT " does not exist", stage_id);
	ids = palloc(sizeof(Datum) * Max(1, from->pipeline->nstages));
	for (int i = 0; i < from->pipeline->nstages; i++)
	{
		SmStage    *to = from->pipeline->stages[i];

		if (to != from && sm_move_allowed(from, to) && sm_role_may_enter(to) &&
			!(blocked && sm_move_is_forward(from, to)))
			ids[n++] = Int64GetDatum(to->stage_id);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(ids, n, INT8OID, sizeof(int64),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

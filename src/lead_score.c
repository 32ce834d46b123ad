/*-------------------------------------------------------------------------
 *
 * lead_score.c
 *	  salesmgmt.score_leads(p_as_of): rule-based lead scores with their
 *	  explanation (docs/leads.md#scoring).
 *
 *	  The active rules are compiled once per call (rules.c).  Open leads
 *	  are read in lead_id order through a cursor, a batch at a time; the
 *	  activities of the batch's leads in one query per batch, also in
 *	  lead_id order, so both are merged without a lookup.  Attribute rules
 *	  are matched against the lead tuple, activity rules against each
 *	  activity tuple, worth points * 0.5 ^ (age in days / half-life).  Only
 *	  leads whose score or explanation changed are written, one UPDATE per
 *	  batch from arrays.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "lead.h"
#include "rules.h"
#include "salesmgmt.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_score_leads);

#define SCORE_BATCH 10000

typedef struct ScoreRule
{
	int64		rule_id;
	char	   *name;
	bool		activity;
	Numeric		points;
	double		points_d;
	double		half_life;		/* days; 0 for none */
	SmRule	   *cond;
} ScoreRule;

typedef struct ScoreRun
{
	int			nrules;
	ScoreRule  *rules;
	bool		any_activity;
	TimestampTz as_of;
	/* per lead, reused */
	double	   *act_points;
	int		   *act_count;
} ScoreRun;

static void
load_score_rules(ScoreRun *run)
{
	int			ret = SPI_execute("SELECT rule_id, name, kind = 'activity', condition, points,"
								  "       coalesce(half_life_days, 0)::float8"
								  "  FROM salesmgmt.lead_score_rule WHERE active ORDER BY rule_id",
								  true, 0);

	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	run->nrules = (int) SPI_processed;
	run->rules = palloc0(sizeof(ScoreRule) * Max(run->nrules, 1));
	for (int i = 0; i < run->nrules; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		ScoreRule  *r = &run->rules[i];
		bool		isnull;

		r->rule_id = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
		r->name = TextDatumGetCString(SPI_getbinval(t, d, 2, &isnull));
		r->activity = DatumGetBool(SPI_getbinval(t, d, 3, &isnull));
		/* validated when written; a column dropped since never matches */
		r->cond = sm_rule_compile(DatumGetJsonbPCopy(SPI_getbinval(t, d, 4, &isnull)),
								  InvalidOid, "lead score rule condition");
		r->points = DatumGetNumericCopy(SPI_getbinval(t, d, 5, &isnull));
		r->points_d = sm_numeric_to_double(r->points);
		r->half_life = DatumGetFloat8(SPI_getbinval(t, d, 6, &isnull));
		run->any_activity |= r->activity;
	}
	run->act_points = palloc0(sizeof(double) * Max(run->nrules, 1));
	run->act_count = palloc0(sizeof(int) * Max(run->nrules, 1));
}

/* the points of one activity for an activity rule */
static double
decayed(const ScoreRun *run, const ScoreRule *r, TimestampTz occurred)
{
	double		age_days;

	if (r->half_life <= 0)
		return r->points_d;
	age_days = (double) (run->as_of - occurred) / (double) USECS_PER_DAY;
	if (age_days < 0)
		age_days = 0;
	return r->points_d * pow(0.5, age_days / r->half_life);
}

/* a lead's score and explanation; activity points are in run->act_* */
static Numeric
score_one(ScoreRun *run, HeapTuple lead, TupleDesc desc, Jsonb **explanation)
{
	Numeric		total = sm_numeric_zero();
	JsonbParseState *st = NULL;
	JsonbValue *res;

	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < run->nrules; i++)
	{
		ScoreRule  *r = &run->rules[i];
		Numeric		pts;

		if (r->activity)
		{
			if (run->act_count[i] == 0)
				continue;
			pts = sm_numeric_round(DatumGetNumeric(DirectFunctionCall1(float8_numeric,
																	   Float8GetDatum(run->act_points[i]))), 2);
		}
		else
		{
			if (!sm_rule_match_tuple(r->cond, lead, desc))
				continue;
			pts = r->points;
		}
		total = sm_numeric_add(total, pts);
		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		sm_jsonb_push_key(&st, "rule_id");
		{
			JsonbValue	v;

			v.type = jbvNumeric;
			v.val.numeric = sm_numeric_from_int64(r->rule_id);
			pushJsonbValue(&st, WJB_VALUE, &v);
		}
		sm_jsonb_push_string(&st, "name", r->name);
		sm_jsonb_push_numeric(&st, "points", pts);
		if (r->activity)
			sm_jsonb_push_numeric(&st, "activities", sm_numeric_from_int64(run->act_count[i]));
		pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	}
	res = pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	*explanation = JsonbValueToJsonb(res);
	return sm_numeric_round(total, 2);
}

typedef struct Batch
{
	int			n;
	Datum		ids[SCORE_BATCH];
	Datum		scores[SCORE_BATCH];
	Datum		expls[SCORE_BATCH];
} Batch;

static uint64
write_batch(Batch *b, SPIPlanPtr plan)
{
	Datum		args[3];
	int			ret;

	if (b->n == 0)
		return 0;
	args[0] = PointerGetDatum(construct_array(b->ids, b->n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(construct_array(b->scores, b->n, NUMERICOID, -1, false, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(b->expls, b->n, JSONBOID, -1, false, TYPALIGN_INT));
	ret = SPI_execute_plan(plan, args, NULL, false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	b->n = 0;
	return SPI_processed;
}

Datum
sm_score_leads(PG_FUNCTION_ARGS)
{
	ScoreRun	run;
	Portal		cur;
	SPIPlanPtr	acts_plan = NULL,
				upd_plan;
	Oid			types[3] = {INT8ARRAYOID, NUMERICARRAYOID, JSONBARRAYOID};
	Oid			act_types[2] = {INT8OID, INT8OID};
	Batch	   *batch;
	uint64		changed = 0;
	MemoryContext rowcxt,
				batchcxt,
				old;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the time to score as of must not be null"),
				 errhint("Call salesmgmt.score_leads() to score as of now.")));
	memset(&run, 0, sizeof(run));
	run.as_of = PG_GETARG_TIMESTAMPTZ(0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	load_score_rules(&run);
	batch = palloc(sizeof(Batch));
	batch->n = 0;
	upd_plan = SPI_prepare("UPDATE salesmgmt.lead l SET score = u.score, score_explanation = u.expl"
						   "  FROM unnest($1, $2, $3) AS u(lead_id, score, expl)"
						   " WHERE l.lead_id = u.lead_id", 3, types);
	if (run.any_activity)
		acts_plan = SPI_prepare("SELECT * FROM salesmgmt.activity"
								" WHERE lead_id BETWEEN $1 AND $2 ORDER BY lead_id, activity_id",
								2, act_types);
	cur = SPI_cursor_open_with_args("score_leads",
									"SELECT * FROM salesmgmt.lead"
									" WHERE status IN ('new', 'working', 'nurturing', 'qualified')"
									" ORDER BY lead_id",
									0, NULL, NULL, NULL, true, 0);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "score_leads row", ALLOCSET_DEFAULT_SIZES);
	batchcxt = AllocSetContextCreate(CurrentMemoryContext, "score_leads batch", ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		SPITupleTable *leads;
		TupleDesc	ldesc;
		uint64		nleads;
		SPITupleTable *acts = NULL;
		TupleDesc	adesc = NULL;
		uint64		nacts = 0,
					ai = 0;
		int			a_lead = 0,
					a_when = 0,
					l_id,
					l_score,
					l_expl;

		SPI_cursor_fetch(cur, true, SCORE_BATCH);
		leads = SPI_tuptable;
		nleads = SPI_processed;
		if (nleads == 0)
			break;
		ldesc = leads->tupdesc;
		l_id = SPI_fnumber(ldesc, "lead_id");
		l_score = SPI_fnumber(ldesc, "score");
		l_expl = SPI_fnumber(ldesc, "score_explanation");
		for (int i = 0; i < run.nrules; i++)
			if (!run.rules[i].activity)
				sm_rule_bind(run.rules[i].cond, ldesc);
		if (acts_plan)
		{
			Datum		range[2];
			bool		isnull;

			range[0] = SPI_getbinval(leads->vals[0], ldesc, l_id, &isnull);
			range[1] = SPI_getbinval(leads->vals[nleads - 1], ldesc, l_id, &isnull);
			if (SPI_execute_plan(acts_plan, range, NULL, true, 0) != SPI_OK_SELECT)
				elog(ERROR, "SPI_execute_plan failed");
			acts = SPI_tuptable;
			nacts = SPI_processed;
			adesc = acts->tupdesc;
			a_lead = SPI_fnumber(adesc, "lead_id");
			a_when = SPI_fnumber(adesc, "occurred_at");
			for (int i = 0; i < run.nrules; i++)
				if (run.rules[i].activity)
					sm_rule_bind(run.rules[i].cond, adesc);
		}
		old = MemoryContextSwitchTo(batchcxt);
		for (uint64 li = 0; li < nleads; li++)
		{
			HeapTuple	lt = leads->vals[li];
			bool		isnull;
			int64		lead_id = DatumGetInt64(SPI_getbinval(lt, ldesc, l_id, &isnull));
			Numeric		score;
			Jsonb	   *expl;
			Numeric		cur_score;
			Jsonb	   *cur_expl;

			MemoryContextSwitchTo(rowcxt);
			for (int i = 0; i < run.nrules; i++)
			{
				run.act_points[i] = 0;
				run.act_count[i] = 0;
			}
			/* this lead's activities: the merge advances past smaller ids */
			while (ai < nacts)
			{
				HeapTuple	at = acts->vals[ai];
				int64		al = DatumGetInt64(SPI_getbinval(at, adesc, a_lead, &isnull));
				TimestampTz when;

				if (al > lead_id)
					break;
				ai++;
				if (al < lead_id)
					continue;
				when = DatumGetTimestampTz(SPI_getbinval(at, adesc, a_when, &isnull));
				for (int i = 0; i < run.nrules; i++)
				{
					ScoreRule  *r = &run.rules[i];

					if (r->activity && sm_rule_match_tuple(r->cond, at, adesc))
					{
						run.act_points[i] += decayed(&run, r, when);
						run.act_count[i]++;
					}
				}
			}
			score = score_one(&run, lt, ldesc, &expl);
			cur_score = DatumGetNumeric(SPI_getbinval(lt, ldesc, l_score, &isnull));
			cur_expl = DatumGetJsonbP(SPI_getbinval(lt, ldesc, l_expl, &isnull));
			if (sm_numeric_cmp(score, cur_score) != 0 ||
				compareJsonbContainers(&expl->root, &cur_expl->root) != 0)
			{
				MemoryContextSwitchTo(batchcxt);
				batch->ids[batch->n] = Int64GetDatum(lead_id);
				batch->scores[batch->n] = datumCopy(NumericGetDatum(score), false, -1);
				batch->expls[batch->n] = datumCopy(JsonbPGetDatum(expl), false, -1);
				batch->n++;
			}
			MemoryContextSwitchTo(batchcxt);
			MemoryContextReset(rowcxt);
		}
		MemoryContextSwitchTo(old);
		if (acts)
			SPI_freetuptable(acts);
		SPI_freetuptable(leads);
		changed += write_batch(batch, upd_plan);
		MemoryContextReset(batchcxt);
	}
	SPI_cursor_close(cur);
	SPI_finish();
	PG_RETURN_INT32((int32) changed);
}

/*-------------------------------------------------------------------------
 *
 * lead_score.c
 *	  salesmgmt.score_leads(p_as_of): rule-based lead scores with their
 *	  explanation (docs/leads.md#scoring).
 *
 *	  The active rules are compiled once per call (rules.c).  Open leads
 *	  are read in lead_id order through a cursor, a batch at a time; the
 *	  activities of the batch's leads in one query per batch, also in
 *	  lead_id order, so both are merged without a lookup.  Each row is
 *	  deformed once and every rule of its kind tested on its values:
 *	  attribute rules on the lead, activity rules on each activity, worth
 *	  points * 0.5 ^ (age in days / half-life).  Points are summed in
 *	  cents (int64), exactly as the numeric sum of the rounded parts.  The
 *	  explanation is one JsonbValue tree whose objects list their keys in
 *	  jsonb's order, converted once (pushJsonbValue would sort every
 *	  entry's keys: a tenth of the scoring before).
 *	  Only leads whose score or explanation changed are written, one
 *	  UPDATE per batch from arrays, bounded to the batch's lead_id range
 *	  so that it probes the primary key instead of hashing the table.
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
#include "utils/numeric.h"
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
	int64		cents;			/* points * 100 (numeric(10,2): exact) */
	double		points_d;
	double		half_life;		/* days; 0 for none */
	SmRule	   *cond;
	JsonbValue	jname;			/* the explanation's values */
	JsonbValue	jrule_id;
	JsonbValue	jpoints;		/* attribute rules */
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
	/* a lead's explanation: an entry per rule, LS_NKEYS pairs each */
	JsonbValue *entries;
	JsonbPair  *pairs;
	/* deformed rows, reused */
	Datum	   *lvals;
	bool	   *lnulls;
	Datum	   *avals;
	bool	   *anulls;
} ScoreRun;

/* a jsonb number or string value */
static void
ls_numeric_value(JsonbValue *v, Numeric n)
{
	v->type = jbvNumeric;
	v->val.numeric = n;
}

static void
ls_string_value(JsonbValue *v, const char *s)
{
	v->type = jbvString;
	v->val.string.val = (char *) s;
	v->val.string.len = strlen(s);
}

/*
 * The keys of an explanation entry in the order jsonb stores an object's
 * keys (shorter first, then bytewise): entries are built as JsonbValue
 * trees with their pairs in this order and converted once, without the
 * parse state's sort of every object.
 */
enum
{
	LS_KEY_NAME,
	LS_KEY_POINTS,
	LS_KEY_RULE_ID,
	LS_KEY_ACTIVITIES,
	LS_NKEYS
};
static const char *const ls_key_names[LS_NKEYS] = {"name", "points", "rule_id", "activities"};

/* numeric(10,2) points as cents */
static int64
ls_cents_of(Numeric n)
{
	Datum		hundred = NumericGetDatum(int64_to_numeric(100));
	Datum		m = DirectFunctionCall2(numeric_mul, NumericGetDatum(n), hundred);

	return DatumGetInt64(DirectFunctionCall1(numeric_int8, m));
}

static void
ls_load_rules(ScoreRun *run)
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
		Numeric		points;

		r->rule_id = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
		r->name = TextDatumGetCString(SPI_getbinval(t, d, 2, &isnull));
		r->activity = DatumGetBool(SPI_getbinval(t, d, 3, &isnull));
		/* validated when written; a column dropped since never matches */
		r->cond = sm_rule_compile(DatumGetJsonbPCopy(SPI_getbinval(t, d, 4, &isnull)),
								  InvalidOid, "lead score rule condition");
		points = DatumGetNumeric(SPI_getbinval(t, d, 5, &isnull));
		r->cents = ls_cents_of(points);
		r->points_d = sm_numeric_to_double(points);
		r->half_life = DatumGetFloat8(SPI_getbinval(t, d, 6, &isnull));
		run->any_activity |= r->activity;
		ls_string_value(&r->jname, r->name);
		ls_numeric_value(&r->jrule_id, int64_to_numeric(r->rule_id));
		ls_numeric_value(&r->jpoints, int64_div_fast_to_numeric(r->cents, 2));
	}
	run->entries = palloc(sizeof(JsonbValue) * Max(run->nrules, 1));
	run->pairs = palloc(sizeof(JsonbPair) * LS_NKEYS * Max(run->nrules, 1));
	run->act_points = palloc0(sizeof(double) * Max(run->nrules, 1));
	run->act_count = palloc0(sizeof(int) * Max(run->nrules, 1));
}

/* the points of one activity for an activity rule */
static double
ls_decayed(const ScoreRun *run, const ScoreRule *r, TimestampTz occurred)
{
	double		age_days;

	if (r->half_life <= 0)
		return r->points_d;
	age_days = (double) (run->as_of - occurred) / (double) USECS_PER_DAY;
	if (age_days < 0)
		age_days = 0;
	return r->points_d * pow(0.5, age_days / r->half_life);
}

/*
 * A float sum of points rounded to cents as round(x::numeric, 2) does:
 * the cast keeps 15 significant digits, then the rounding is half away
 * from zero.  Far from a half cent the double rounds the same way; near
 * one (or for huge values) the numeric path decides.
 */
static int64
ls_round_cents(double x)
{
	double		y = x * 100.0;
	double		frac = fabs(y - trunc(y));
	Numeric		n;

	if (fabs(x) < 1e6 && fabs(frac - 0.5) > 1e-6)
		return (int64) llround(y);
	n = DatumGetNumeric(DirectFunctionCall1(float8_numeric, Float8GetDatum(x)));
	return ls_cents_of(sm_numeric_round(n, 2));
}

static void
ls_set_pair(JsonbPair *p, int key, const JsonbValue *value)
{
	ls_string_value(&p->key, ls_key_names[key]);
	p->value = *value;
	p->order = key;
}

/* a lead's score in cents and its explanation; activity points are in run->act_* */
static int64
ls_score_one(ScoreRun *run, Jsonb **explanation)
{
	int64		total = 0;
	int			n = 0;
	JsonbValue	array;

	for (int i = 0; i < run->nrules; i++)
	{
		ScoreRule  *r = &run->rules[i];
		JsonbPair  *pairs = &run->pairs[i * LS_NKEYS];
		JsonbValue *entry = &run->entries[n];
		JsonbValue	v;
		int64		pts;

		if (r->activity)
		{
			if (run->act_count[i] == 0)
				continue;
			pts = ls_round_cents(run->act_points[i]);
			ls_numeric_value(&v, int64_div_fast_to_numeric(pts, 2));
			ls_set_pair(&pairs[LS_KEY_POINTS], LS_KEY_POINTS, &v);
			ls_numeric_value(&v, int64_to_numeric(run->act_count[i]));
			ls_set_pair(&pairs[LS_KEY_ACTIVITIES], LS_KEY_ACTIVITIES, &v);
		}
		else
		{
			if (!sm_rule_match_values(r->cond, run->lvals, run->lnulls))
				continue;
			pts = r->cents;
			ls_set_pair(&pairs[LS_KEY_POINTS], LS_KEY_POINTS, &r->jpoints);
		}
		total += pts;
		ls_set_pair(&pairs[LS_KEY_NAME], LS_KEY_NAME, &r->jname);
		ls_set_pair(&pairs[LS_KEY_RULE_ID], LS_KEY_RULE_ID, &r->jrule_id);
		entry->type = jbvObject;
		entry->val.object.nPairs = r->activity ? 4 : 3;
		entry->val.object.pairs = pairs;
		n++;
	}
	array.type = jbvArray;
	array.val.array.nElems = n;
	array.val.array.elems = run->entries;
	array.val.array.rawScalar = false;
	*explanation = JsonbValueToJsonb(&array);
	return total;
}

/* jsonb equality: the same bytes, or equal by jsonb's comparison */
static bool
ls_jsonb_same(Jsonb *a, Jsonb *b)
{
	if (VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0)
		return true;
	return compareJsonbContainers(&a->root, &b->root) == 0;
}

typedef struct Batch
{
	int			n;
	Datum		ids[SCORE_BATCH];
	Datum		scores[SCORE_BATCH];
	Datum		expls[SCORE_BATCH];
} Batch;

static uint64
ls_write_batch(Batch *b, SPIPlanPtr plan, Datum lo, Datum hi)
{
	Datum		args[5];
	int			ret;

	if (b->n == 0)
		return 0;
	args[0] = PointerGetDatum(construct_array(b->ids, b->n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(construct_array(b->scores, b->n, NUMERICOID, -1, false, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(b->expls, b->n, JSONBOID, -1, false, TYPALIGN_INT));
	args[3] = lo;
	args[4] = hi;
	ret = SPI_execute_plan(plan, args, NULL, false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	b->n = 0;
	return SPI_processed;
}

/*
 * The activities of leads up to lead_id from the batch's activities
 * (ordered by lead_id), *ai the next unread: those of lead_id add their
 * decayed points to the matching activity rules.
 */
static void
ls_merge_activities(ScoreRun *run, SPITupleTable *acts, uint64 nacts, uint64 *ai,
					int a_lead, int a_when, int64 lead_id)
{
	TupleDesc	adesc = acts->tupdesc;

	for (int i = 0; i < run->nrules; i++)
	{
		run->act_points[i] = 0;
		run->act_count[i] = 0;
	}
	while (*ai < nacts)
	{
		HeapTuple	at = acts->vals[*ai];
		bool		isnull;
		int64		al = DatumGetInt64(heap_getattr(at, a_lead, adesc, &isnull));
		TimestampTz when;

		if (al > lead_id)
			break;
		(*ai)++;
		if (al < lead_id)
			continue;
		heap_deform_tuple(at, adesc, run->avals, run->anulls);
		when = DatumGetTimestampTz(run->avals[a_when - 1]);
		for (int i = 0; i < run->nrules; i++)
		{
			ScoreRule  *r = &run->rules[i];

			if (r->activity && sm_rule_match_values(r->cond, run->avals, run->anulls))
			{
				run->act_points[i] += ls_decayed(run, r, when);
				run->act_count[i]++;
			}
		}
	}
}

Datum
sm_score_leads(PG_FUNCTION_ARGS)
{
	ScoreRun	run;
	Portal		cur;
	SPIPlanPtr	acts_plan = NULL,
				upd_plan;
	Oid			types[5] = {INT8ARRAYOID, NUMERICARRAYOID, JSONBARRAYOID, INT8OID, INT8OID};
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
	ls_load_rules(&run);
	batch = palloc(sizeof(Batch));
	batch->n = 0;
	upd_plan = SPI_prepare("UPDATE salesmgmt.lead l SET score = u.score, score_explanation = u.expl"
						   "  FROM unnest($1, $2, $3) AS u(lead_id, score, expl)"
						   " WHERE l.lead_id = u.lead_id AND l.lead_id BETWEEN $4 AND $5", 5, types);
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
		uint64		nacts = 0,
					ai = 0;
		int			a_lead = 0,
					a_when = 0,
					l_id,
					l_score,
					l_expl;
		Datum		range[2];
		bool		isnull;

		SPI_cursor_fetch(cur, true, SCORE_BATCH);
		leads = SPI_tuptable;
		nleads = SPI_processed;
		if (nleads == 0)
			break;
		ldesc = leads->tupdesc;
		l_id = SPI_fnumber(ldesc, "lead_id");
		l_score = SPI_fnumber(ldesc, "score");
		l_expl = SPI_fnumber(ldesc, "score_explanation");
		if (run.lvals == NULL)
		{
			run.lvals = palloc(sizeof(Datum) * ldesc->natts);
			run.lnulls = palloc(sizeof(bool) * ldesc->natts);
		}
		for (int i = 0; i < run.nrules; i++)
			if (!run.rules[i].activity)
				sm_rule_bind(run.rules[i].cond, ldesc);
		range[0] = SPI_getbinval(leads->vals[0], ldesc, l_id, &isnull);
		range[1] = SPI_getbinval(leads->vals[nleads - 1], ldesc, l_id, &isnull);
		if (acts_plan)
		{
			TupleDesc	adesc;

			if (SPI_execute_plan(acts_plan, range, NULL, true, 0) != SPI_OK_SELECT)
				elog(ERROR, "SPI_execute_plan failed");
			acts = SPI_tuptable;
			nacts = SPI_processed;
			adesc = acts->tupdesc;
			a_lead = SPI_fnumber(adesc, "lead_id");
			a_when = SPI_fnumber(adesc, "occurred_at");
			if (run.avals == NULL)
			{
				run.avals = palloc(sizeof(Datum) * adesc->natts);
				run.anulls = palloc(sizeof(bool) * adesc->natts);
			}
			for (int i = 0; i < run.nrules; i++)
				if (run.rules[i].activity)
					sm_rule_bind(run.rules[i].cond, adesc);
		}
		old = MemoryContextSwitchTo(batchcxt);
		for (uint64 li = 0; li < nleads; li++)
		{
			int64		lead_id;
			int64		score;
			Jsonb	   *expl;

			MemoryContextSwitchTo(rowcxt);
			heap_deform_tuple(leads->vals[li], ldesc, run.lvals, run.lnulls);
			lead_id = DatumGetInt64(run.lvals[l_id - 1]);
			if (acts)
				ls_merge_activities(&run, acts, nacts, &ai, a_lead, a_when, lead_id);
			score = ls_score_one(&run, &expl);
			if (sm_numeric_cmp(int64_div_fast_to_numeric(score, 2),
							   DatumGetNumeric(run.lvals[l_score - 1])) != 0 ||
				!ls_jsonb_same(expl, DatumGetJsonbP(run.lvals[l_expl - 1])))
			{
				MemoryContextSwitchTo(batchcxt);
				batch->ids[batch->n] = Int64GetDatum(lead_id);
				batch->scores[batch->n] = NumericGetDatum(int64_div_fast_to_numeric(score, 2));
				batch->expls[batch->n] = datumCopy(JsonbPGetDatum(expl), false, -1);
				batch->n++;
			}
			MemoryContextSwitchTo(batchcxt);
			MemoryContextReset(rowcxt);
		}
		MemoryContextSwitchTo(old);
		if (acts)
			SPI_freetuptable(acts);
		changed += ls_write_batch(batch, upd_plan, range[0], range[1]);
		SPI_freetuptable(leads);
		MemoryContextReset(batchcxt);
	}
	SPI_cursor_close(cur);
	SPI_finish();
	PG_RETURN_INT32((int32) changed);
}

/*-------------------------------------------------------------------------
 *
 * lead_model.c
 *	  The learned lead score: a logistic regression of conversion fitted in
 *	  C (docs/leads.md#the-learned-score).
 *
 *	  salesmgmt.train_lead_model(p_since) reads the closed leads captured
 *	  since p_since (converted = 1, disqualified = 0) with their attributes
 *	  and engagement, builds features (ln(1 + company size), ln(1 +
 *	  activities), has_email, has_phone, and indicators of the frequent
 *	  sources, industries and regions), standardises them on the training
 *	  leads (lead_id mod 5 <> 0), fits by Newton's method (IRLS) with a
 *	  small ridge so that collinear indicators stay solvable, and reports
 *	  the AUC on the held-out fifth (lead_id mod 5 = 0).  Everything is in
 *	  lead_id order and without random numbers: the same data give the same
 *	  model.  salesmgmt.lead_conversion_probability applies the newest one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/numeric.h"

#include "lead.h"
#include "salesmgmt.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_train_lead_model);
PG_FUNCTION_INFO_V1(sm_lead_conversion_probability);

#define MODEL_MAX_CATEGORIES	10	/* per categorical attribute */
#define MODEL_MIN_CATEGORY		10	/* leads a category needs */
#define MODEL_RIDGE				1.0
#define MODEL_MAX_ITER			50
#define MODEL_TOLERANCE			1e-9

/* the raw attributes of a lead, as LEAD_ROW_SQL gives them */
#define LEAD_ROW_SQL \
	"SELECT l.lead_id, l.status = 'converted', l.company_size, l.source, l.industry, l.region," \
	"       l.email IS NOT NULL, l.phone IS NOT NULL," \
	"       (SELECT count(*) FROM salesmgmt.activity a WHERE a.lead_id = l.lead_id)" \
	"  FROM salesmgmt.lead l"

typedef struct LeadRow
{
	int64		lead_id;
	bool		converted;
	bool		size_null;
	double		size;
	char	   *cat[3];			/* source, industry, region (NULL when null) */
	bool		has_email;
	bool		has_phone;
	double		activities;
} LeadRow;

static const char *const cat_names[3] = {"source", "industry", "region"};

typedef enum FeatureKind
{
	F_LOG_SIZE,
	F_LOG_ACTIVITIES,
	F_HAS_EMAIL,
	F_HAS_PHONE,
	F_CATEGORY
} FeatureKind;

typedef struct Feature
{
	FeatureKind kind;
	int			attr;			/* F_CATEGORY: index into cat_names */
	char	   *category;
	double		mean;
	double		sd;
	double		coef;
} Feature;

static const char *const feature_names[] = {
	"log_company_size", "log_activities", "has_email", "has_phone"
};

static void
read_row(HeapTuple t, TupleDesc d, LeadRow *r)
{
	bool		isnull;

	r->lead_id = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
	r->converted = DatumGetBool(SPI_getbinval(t, d, 2, &isnull));
	r->size = DatumGetInt32(SPI_getbinval(t, d, 3, &r->size_null));
	for (int c = 0; c < 3; c++)
		r->cat[c] = SPI_getvalue(t, d, 4 + c);
	r->has_email = DatumGetBool(SPI_getbinval(t, d, 7, &isnull));
	r->has_phone = DatumGetBool(SPI_getbinval(t, d, 8, &isnull));
	r->activities = (double) DatumGetInt64(SPI_getbinval(t, d, 9, &isnull));
}

/* the raw (unstandardised) value of a feature for a lead; NAN if missing */
static double
raw_feature(const Feature *f, const LeadRow *r)
{
	switch (f->kind)
	{
		case F_LOG_SIZE:
			return r->size_null ? NAN : log1p(r->size);
		case F_LOG_ACTIVITIES:
			return log1p(r->activities);
		case F_HAS_EMAIL:
			return r->has_email ? 1 : 0;
		case F_HAS_PHONE:
			return r->has_phone ? 1 : 0;
		case F_CATEGORY:
			return r->cat[f->attr] && strcmp(r->cat[f->attr], f->category) == 0 ? 1 : 0;
	}
	return 0;
}

/* standardised; a missing value is the mean */
static double
std_feature(const Feature *f, const LeadRow *r)
{
	double		x = raw_feature(f, r);

	if (isnan(x) || f->sd <= 0)
		return 0;
	return (x - f->mean) / f->sd;
}

static double
sigmoid(double z)
{
	return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

/* qsort comparator of (name, count) pairs: most frequent first, then by name */
typedef struct CatCount
{
	char	   *value;
	int			count;
} CatCount;

static int
catcount_cmp(const void *a, const void *b)
{
	const CatCount *x = a,
			   *y = b;

	if (x->count != y->count)
		return y->count - x->count;
	return strcmp(x->value, y->value);
}

/* the frequent values of categorical attribute c among the training rows */
static int
frequent_categories(LeadRow *rows, int n, int c, CatCount **out)
{
	CatCount   *cc = palloc0(sizeof(CatCount) * Max(n, 1));
	int			ncc = 0,
				keep = 0;

	for (int i = 0; i < n; i++)
	{
		int			j;

		if (rows[i].lead_id % 5 == 0 || rows[i].cat[c] == NULL)
			continue;
		for (j = 0; j < ncc; j++)
			if (strcmp(cc[j].value, rows[i].cat[c]) == 0)
				break;
		if (j == ncc)
		{
			if (ncc >= 1000)
				continue;		/* free text with many values: the first ones */
			cc[ncc].value = rows[i].cat[c];
			cc[ncc++].count = 0;
		}
		cc[j].count++;
	}
	qsort(cc, ncc, sizeof(CatCount), catcount_cmp);
	while (keep < ncc && keep < MODEL_MAX_CATEGORIES && cc[keep].count >= MODEL_MIN_CATEGORY)
		keep++;
	*out = cc;
	return keep;
}

/* solve (A) x = b in place by Cholesky (A symmetric positive definite, p x p) */
static bool
cholesky_solve(double *A, double *b, int p)
{
	for (int j = 0; j < p; j++)
	{
		double		s = A[j * p + j];

		for (int k = 0; k < j; k++)
			s -= A[j * p + k] * A[j * p + k];
		if (s <= 0)
			return false;
		A[j * p + j] = sqrt(s);
		for (int i = j + 1; i < p; i++)
		{
			double		t = A[i * p + j];

			for (int k = 0; k < j; k++)
				t -= A[i * p + k] * A[j * p + k];
			A[i * p + j] = t / A[j * p + j];
		}
	}
	for (int i = 0; i < p; i++)
	{
		double		t = b[i];

		for (int k = 0; k < i; k++)
			t -= A[i * p + k] * b[k];
		b[i] = t / A[i * p + i];
	}
	for (int i = p - 1; i >= 0; i--)
	{
		double		t = b[i];

		for (int k = i + 1; k < p; k++)
			t -= A[k * p + i] * b[k];
		b[i] = t / A[i * p + i];
	}
	return true;
}

/* area under the ROC curve (Mann-Whitney, ties count half); NAN if one class */
typedef struct Scored
{
	double		p;
	bool		y;
} Scored;

static int
scored_cmp(const void *a, const void *b)
{
	double		x = ((const Scored *) a)->p,
				y = ((const Scored *) b)->p;

	return (x > y) - (x < y);
}

static double
auc(Scored *s, int n)
{
	double		pos = 0,
				neg = 0,
				rank_sum = 0;
	int			i = 0;

	qsort(s, n, sizeof(Scored), scored_cmp);
	while (i < n)
	{
		int			j = i;
		double		avg;

		while (j + 1 < n && s[j + 1].p == s[i].p)
			j++;
		avg = (i + j) / 2.0 + 1;
		for (int k = i; k <= j; k++)
			if (s[k].y)
				rank_sum += avg;
		i = j + 1;
	}
	for (i = 0; i < n; i++)
	{
		if (s[i].y)
			pos++;
		else
			neg++;
	}
	if (pos == 0 || neg == 0)
		return NAN;
	return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

Datum
sm_train_lead_model(PG_FUNCTION_ARGS)
{
	DateADT		since;
	Oid			t = DATEOID;
	Datum		arg;
	int			ret,
				n,
				ntrain = 0,
				ntest = 0,
				pos = 0,
				nf = 0,
				p,
				iter;
	LeadRow    *rows;
	Feature    *feat;
	double	   *X,
			   *beta,
			   *H,
			   *g;
	double		roc;
	Scored	   *test;
	int64		model_id;
	TupleDesc	rdesc;
	Datum		out[5];
	bool		onull[5] = {false, false, false, false, false};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the date to train since must not be null"),
				 errhint("For example salesmgmt.train_lead_model(current_date - 365).")));
	since = PG_GETARG_DATEADT(0);
	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rdesc = BlessTupleDesc(rdesc);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	arg = DateADTGetDatum(since);
	ret = SPI_execute_with_args(LEAD_ROW_SQL
								" WHERE l.status IN ('converted', 'disqualified') AND l.created_at >= $1"
								" ORDER BY l.lead_id", 1, &t, &arg, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	n = (int) SPI_processed;
	rows = palloc0(sizeof(LeadRow) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		read_row(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, &rows[i]);
		if (rows[i].lead_id % 5 == 0)
			ntest++;
		else
		{
			ntrain++;
			pos += rows[i].converted;
		}
	}
	if (ntrain < 10 || pos == 0 || pos == ntrain)
		ereport(ERROR,
				(errcode(ERRCODE_SM_LEAD_MODEL_MISSING),
				 errmsg("not enough closed leads to learn from"),
				 errdetail("%d training leads captured since %s, %d of them converted.",
						   ntrain, DatumGetCString(DirectFunctionCall1(date_out, arg)), pos),
				 errhint("The model needs at least 10 converted or disqualified leads of both outcomes; try an earlier date.")));

	/* features: the fixed ones, then the frequent categories */
	feat = palloc0(sizeof(Feature) * (4 + 3 * MODEL_MAX_CATEGORIES));
	for (int k = 0; k < 4; k++)
		feat[nf++].kind = (FeatureKind) k;
	for (int c = 0; c < 3; c++)
	{
		CatCount   *cc;
		int			keep = frequent_categories(rows, n, c, &cc);

		for (int k = 0; k < keep; k++)
		{
			feat[nf].kind = F_CATEGORY;
			feat[nf].attr = c;
			feat[nf++].category = cc[k].value;
		}
	}
	/* standardisation on the training rows (missing values left out) */
	for (int f = 0; f < nf; f++)
	{
		double		sum = 0,
					sq = 0;
		int			cnt = 0;

		for (int i = 0; i < n; i++)
		{
			double		x;

			if (rows[i].lead_id % 5 == 0)
				continue;
			x = raw_feature(&feat[f], &rows[i]);
			if (isnan(x))
				continue;
			sum += x;
			cnt++;
		}
		feat[f].mean = cnt ? sum / cnt : 0;
		for (int i = 0; i < n; i++)
		{
			double		x;

			if (rows[i].lead_id % 5 == 0)
				continue;
			x = raw_feature(&feat[f], &rows[i]);
			if (!isnan(x))
				sq += (x - feat[f].mean) * (x - feat[f].mean);
		}
		feat[f].sd = cnt > 1 ? sqrt(sq / (cnt - 1)) : 0;
	}
	/* a feature that never varies tells nothing: leave it out */
	{
		int			kept = 0;

		for (int f = 0; f < nf; f++)
			if (feat[f].sd > 0)
				feat[kept++] = feat[f];
		nf = kept;
	}

	/* the design matrix of the training rows, intercept first */
	p = nf + 1;
	X = palloc(sizeof(double) * (Size) ntrain * p);
	{
		int			r = 0;

		for (int i = 0; i < n; i++)
		{
			if (rows[i].lead_id % 5 == 0)
				continue;
			X[(Size) r * p] = 1;
			for (int f = 0; f < nf; f++)
				X[(Size) r * p + 1 + f] = std_feature(&feat[f], &rows[i]);
			r++;
		}
	}

	/* Newton / IRLS with a ridge on the slopes */
	beta = palloc0(sizeof(double) * p);
	H = palloc(sizeof(double) * p * p);
	g = palloc(sizeof(double) * p);
	for (iter = 1; iter <= MODEL_MAX_ITER; iter++)
	{
		int			r = 0;
		double		step = 0;

		memset(H, 0, sizeof(double) * p * p);
		memset(g, 0, sizeof(double) * p);
		for (int i = 0; i < n; i++)
		{
			double	   *x;
			double		z = 0,
						mu,
						w;

			if (rows[i].lead_id % 5 == 0)
				continue;
			x = &X[(Size) r++ * p];
			for (int j = 0; j < p; j++)
				z += x[j] * beta[j];
			mu = sigmoid(z);
			w = Max(mu * (1 - mu), 1e-12);
			for (int j = 0; j < p; j++)
			{
				g[j] += x[j] * ((rows[i].converted ? 1.0 : 0.0) - mu);
				for (int k = 0; k <= j; k++)
					H[j * p + k] += w * x[j] * x[k];
			}
		}
		for (int j = 1; j < p; j++)
		{
			g[j] -= MODEL_RIDGE * beta[j];
			H[j * p + j] += MODEL_RIDGE;
		}
		for (int j = 0; j < p; j++)
			for (int k = j + 1; k < p; k++)
				H[j * p + k] = H[k * p + j];
		if (!cholesky_solve(H, g, p))
			ereport(ERROR,
					(errcode(ERRCODE_SM_LEAD_MODEL_MISSING),
					 errmsg("lead model did not converge"),
					 errhint("Train on more leads.")));
		for (int j = 0; j < p; j++)
		{
			beta[j] += g[j];
			step = Max(step, fabs(g[j]));
		}
		if (step < MODEL_TOLERANCE)
			break;
	}
	iter = Min(iter, MODEL_MAX_ITER);
	for (int f = 0; f < nf; f++)
		feat[f].coef = beta[f + 1];

	/* the AUC on the held-out fifth */
	test = palloc(sizeof(Scored) * Max(ntest, 1));
	{
		int			k = 0;

		for (int i = 0; i < n; i++)
		{
			double		z = beta[0];

			if (rows[i].lead_id % 5 != 0)
				continue;
			for (int f = 0; f < nf; f++)
				z += feat[f].coef * std_feature(&feat[f], &rows[i]);
			test[k].p = sigmoid(z);
			test[k++].y = rows[i].converted;
		}
	}
	roc = auc(test, ntest);

	/* keep it */
	{
		Oid			mt[6] = {DATEOID, INT4OID, INT4OID, NUMERICOID, INT4OID, FLOAT8OID};
		Datum		mv[6];
		char		mn[6] = {' ', ' ', ' ', isnan(roc) ? 'n' : ' ', ' ', ' '};
		bool		isnull;
		Oid			ft[7] = {INT8OID, INT4OID, TEXTOID, TEXTOID, FLOAT8OID, FLOAT8OID, FLOAT8OID};

		mv[0] = arg;
		mv[1] = Int32GetDatum(ntrain);
		mv[2] = Int32GetDatum(ntest);
		mv[3] = isnan(roc) ? (Datum) 0
			: NumericGetDatum(sm_numeric_round(DatumGetNumeric(DirectFunctionCall1(float8_numeric,
																				   Float8GetDatum(roc))), 4));
		mv[4] = Int32GetDatum(iter);
		mv[5] = Float8GetDatum(beta[0]);
		ret = SPI_execute_with_args("INSERT INTO salesmgmt.lead_model (trained_since, n_train, n_test, auc,"
									"                                  iterations, intercept)"
									" VALUES ($1, $2, $3, $4, $5, $6) RETURNING model_id",
									6, mt, mv, mn, false, 1);
		if (ret != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
		model_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		onull[3] = isnan(roc);
		for (int f = 0; f < nf; f++)
		{
			Datum		fv[7];
			char		fn[7] = {' ', ' ', ' ', feat[f].category ? ' ' : 'n', ' ', ' ', ' '};

			fv[0] = Int64GetDatum(model_id);
			fv[1] = Int32GetDatum(f + 1);
			fv[2] = CStringGetTextDatum(feat[f].kind == F_CATEGORY ? cat_names[feat[f].attr]
										: feature_names[feat[f].kind]);
			fv[3] = feat[f].category ? CStringGetTextDatum(feat[f].category) : (Datum) 0;
			fv[4] = Float8GetDatum(feat[f].mean);
			fv[5] = Float8GetDatum(feat[f].sd);
			fv[6] = Float8GetDatum(feat[f].coef);
			ret = SPI_execute_with_args("INSERT INTO salesmgmt.lead_model_feature"
										" (model_id, position, feature, category, mean, sd, coefficient)"
										" VALUES ($1, $2, $3, $4, $5, $6, $7)", 7, ft, fv, fn, false, 0);
			if (ret != SPI_OK_INSERT)
				elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
		}
	}
	SPI_finish();
	out[0] = Int64GetDatum(model_id);
	out[1] = Int32GetDatum(ntrain);
	out[2] = Int32GetDatum(ntest);
	out[4] = Int32GetDatum(nf);
	out[3] = onull[3] ? (Datum) 0
		: NumericGetDatum(sm_numeric_round(DatumGetNumeric(DirectFunctionCall1(float8_numeric,
																			   Float8GetDatum(roc))), 4));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(rdesc, out, onull)));
}

Datum
sm_lead_conversion_probability(PG_FUNCTION_ARGS)
{
	int64		lead_id = PG_GETARG_INT64(0);
	Oid			t = INT8OID;
	Datum		arg = Int64GetDatum(lead_id);
	int			ret,
				nf;
	bool		isnull;
	double		z;
	LeadRow		row;
	int64		model_id;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute("SELECT model_id, intercept FROM salesmgmt.lead_model ORDER BY model_id DESC LIMIT 1",
					  true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SM_LEAD_MODEL_MISSING),
				 errmsg("no lead model has been trained"),
				 errhint("Train one with salesmgmt.train_lead_model(p_since).")));
	model_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	z = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

	ret = SPI_execute_with_args(LEAD_ROW_SQL " WHERE l.lead_id = $1", 1, &t, &arg, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("lead " INT64_FORMAT " does not exist", lead_id)));
	read_row(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, &row);

	arg = Int64GetDatum(model_id);
	ret = SPI_execute_with_args("SELECT feature, category, mean, sd, coefficient"
								"  FROM salesmgmt.lead_model_feature WHERE model_id = $1 ORDER BY position",
								1, &t, &arg, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	nf = (int) SPI_processed;
	for (int i = 0; i < nf; i++)
	{
		HeapTuple	ft = SPI_tuptable->vals[i];
		TupleDesc	fd = SPI_tuptable->tupdesc;
		char	   *name = SPI_getvalue(ft, fd, 1);
		Feature		f;

		memset(&f, 0, sizeof(f));
		f.kind = F_CATEGORY;
		for (int k = 0; k < (int) lengthof(feature_names); k++)
			if (strcmp(name, feature_names[k]) == 0)
				f.kind = (FeatureKind) k;
		for (int c = 0; c < 3; c++)
			if (strcmp(name, cat_names[c]) == 0)
				f.attr = c;
		f.category = SPI_getvalue(ft, fd, 2);
		f.mean = DatumGetFloat8(SPI_getbinval(ft, fd, 3, &isnull));
		f.sd = DatumGetFloat8(SPI_getbinval(ft, fd, 4, &isnull));
		f.coef = DatumGetFloat8(SPI_getbinval(ft, fd, 5, &isnull));
		z += f.coef * std_feature(&f, &row);
	}
	SPI_finish();
	PG_RETURN_FLOAT8(sigmoid(z));
}

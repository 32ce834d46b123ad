/*-------------------------------------------------------------------------
 *
 * commission_tiers.c
 *	  Plans and tier arithmetic: loading and validating a plan's tiers, the
 *	  linear pieces E(x) of a plan period, commission_amount(), and the small
 *	  numeric and SPI helpers of the engine.
 *
 * The run model and the engine's overview are in commission.h and
 * commission.c.
 *
 *-------------------------------------------------------------------------
 */
#include "commission.h"

PG_FUNCTION_INFO_V1(sm_commission_amount);

/* ----------------------------------------------------------------------
 * Small helpers (numeric and SPI helpers are shared: util.h, core_spi.h)
 * ----------------------------------------------------------------------
 */

/* replace *slot by a copy of n in cxt; the old value, owned by the slot
 * (never a shared constant), is freed */
void
cm_set(MemoryContext cxt, Numeric *slot, Numeric n)
{
	if (*slot != NULL && *slot != n)
		pfree(*slot);
	*slot = sm_numeric_copy(cxt, n);
}

char *
cm_date_str(DateADT d)
{
	return DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(d)));
}

static char *
cm_num_str(Numeric n)
{
	return n == NULL ? "null" : sm_numeric_to_cstring(n);
}

TimestampTz
cm_date_ts(DateADT d)
{
	return DatumGetTimestampTz(DirectFunctionCall1(date_timestamptz, DateADTGetDatum(d)));
}

/* the calendar month, quarter or year containing d */
void
cm_plan_period(CmPeriodKind kind, DateADT d, DateADT *start, DateADT *end)
{
	int			y,
				m,
				dd,
				m0,
				len,
				ny,
				nm;

	j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &dd);
	switch (kind)
	{
		case CM_MONTH:
			m0 = m;
			len = 1;
			break;
		case CM_QUARTER:
			m0 = ((m - 1) / 3) * 3 + 1;
			len = 3;
			break;
		default:
			m0 = 1;
			len = 12;
			break;
	}
	ny = y;
	nm = m0 + len;
	if (nm > 12)
	{
		nm -= 12;
		ny++;
	}
	*start = date2j(y, m0, 1) - POSTGRES_EPOCH_JDATE;
	*end = date2j(ny, nm, 1) - POSTGRES_EPOCH_JDATE - 1;
}

/* ----------------------------------------------------------------------
 * Plans and tier arithmetic
 * ----------------------------------------------------------------------
 */

/*
 * The tiers of a plan must start at 0, leave no gap, not overlap, and only
 * the last may be open-ended (tiers sorted by attainment_from).  Shared by
 * the constraint trigger and by every computation, which may run inside the
 * transaction that is still entering tiers.
 */
void
cm_validate_tiers(int64 plan_id, int n, Numeric *from, Numeric *to)
{
	int			i;

	if (n == 0)
		return;
	if (sm_numeric_sign(from[0]) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("commission tiers of plan " INT64_FORMAT " do not start at attainment 0",
						plan_id),
				 errdetail("The lowest tier starts at attainment %s.", cm_num_str(from[0])),
				 errhint("Add a tier from 0, or lower the first tier's attainment_from to 0.")));
	for (i = 1; i < n; i++)
	{
		if (to[i - 1] == NULL || sm_numeric_cmp(to[i - 1], from[i]) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_EXCLUSION_VIOLATION),
					 errmsg("commission tiers of plan " INT64_FORMAT " overlap", plan_id),
					 errdetail("Tier [%s, %s) overlaps tier [%s, %s).",
							   cm_num_str(from[i - 1]), to[i - 1] ? cm_num_str(to[i - 1]) : "open",
							   cm_num_str(from[i]), to[i] ? cm_num_str(to[i]) : "open"),
					 errhint("Make each tier start where the one below it ends.")));
		if (sm_numeric_cmp(to[i - 1], from[i]) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("commission tiers of plan " INT64_FORMAT " leave a gap between attainment %s and %s",
							plan_id, cm_num_str(to[i - 1]), cm_num_str(from[i])),
					 errhint("Make each tier start where the one below it ends.")));
	}
	if (to[n - 1] != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("the highest commission tier of plan " INT64_FORMAT " is not open-ended",
						plan_id),
				 errdetail("It ends at attainment %s; credit above that would earn nothing.",
						   cm_num_str(to[n - 1])),
				 errhint("Set attainment_to of the highest tier to null.")));
}

/* ----------------------------------------------------------------------
 * Rates and tier tables per product family (commission_plan.family_rates)
 * ----------------------------------------------------------------------
 */

#define CM_RATES_HINT \
	"family_rates is an object of product families, each with a rate or a list of tiers, e.g. " \
	"{\"Services\": 0.03, \"Analytics\": [{\"from\": 0, \"to\": 1, \"rate\": 0.05}, {\"from\": 1, \"rate\": 0.08, \"mode\": \"retroactive\"}]}."

static void
cm_rates_error(const char *family, const char *msg)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 family ? errmsg("family_rates of product family \"%s\": %s", family, msg)
			 : errmsg("family_rates: %s", msg),
			 errhint(CM_RATES_HINT)));
}

/* a numeric member of a tier object: NULL when absent or JSON null */
static Numeric
cm_tier_member(JsonbContainer *obj, const char *key, const char *family, bool *present)
{
	JsonbValue	k;
	JsonbValue *v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(obj, JB_FOBJECT, &k);
	*present = v != NULL && v->type != jbvNull;
	if (!*present)
		return NULL;
	if (v->type != jbvNumeric)
		cm_rates_error(family, psprintf("\"%s\" of a tier must be a number", key));
	return v->val.numeric;
}

/*
 * Walk family_rates, checking it (22023 with a hint) and, when p is not
 * NULL, building p's rate tables in the current context.  A family's value
 * is a rate (one tier from 0, open-ended) or tiers: objects with "from",
 * "to" (absent or null: open-ended), "rate" and "mode" (absent or null:
 * the plan's tier_mode), listed by attainment, the first from 0, each
 * starting where the one before ends, only the last open-ended.
 */
static void
cm_walk_family_rates(Jsonb *rates, CmPlan *p, const char *tier_mode)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *family = NULL;
	int			nfam;

	if (!JB_ROOT_IS_OBJECT(rates) || JB_ROOT_IS_SCALAR(rates))
		cm_rates_error(NULL, "must be a JSON object");
	nfam = JB_ROOT_COUNT(rates);
	if (p != NULL)
	{
		p->nrates = 0;
		p->rate_families = palloc(sizeof(char *) * Max(nfam, 1));
		p->rate_tables = palloc0(sizeof(CmPlan) * Max(nfam, 1));
	}
	it = JsonbIteratorInit(&rates->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		CmPlan	   *table = p ? &p->rate_tables[p->nrates] : NULL;

		if (tok == WJB_KEY)
		{
			family = pnstrdup(v.val.string.val, v.val.string.len);
			if (strspn(family, " \t\n\r") == strlen(family))
				cm_rates_error(NULL, "a product family name is blank");
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		if (v.type == jbvNumeric)
		{
			if (numeric_is_nan(v.val.numeric) || sm_numeric_sign(v.val.numeric) < 0)
				cm_rates_error(family, "the rate must be a number of at least 0");
			if (table)
			{
				table->ntiers = 1;
				table->tiers = palloc0(sizeof(CmTier));
				table->tiers[0].from = sm_numeric_const(0);
				table->tiers[0].rate = v.val.numeric;
				table->tiers[0].retro = false;
			}
		}
		else if (v.type == jbvBinary && JsonContainerIsArray(v.val.binary.data))
		{
			JsonbContainer *arr = v.val.binary.data;
			int			n = JsonContainerSize(arr);
			int			i;
			Numeric		prev_to = NULL;

			if (n == 0)
				cm_rates_error(family, "the list of tiers is empty");
			if (table)
			{
				table->ntiers = n;
				table->tiers = palloc0(sizeof(CmTier) * n);
			}
			for (i = 0; i < n; i++)
			{
				JsonbValue *e = getIthJsonbValueFromContainer(arr, i);
				JsonbIterator *eit;
				JsonbValue	ev;
				JsonbIteratorToken etok;
				Numeric		from,
							to,
							rate;
				bool		has_from,
							has_to,
							has_rate,
							retro = tier_mode != NULL && strcmp(tier_mode, "retroactive") == 0;

				if (e->type != jbvBinary || !JsonContainerIsObject(e->val.binary.data))
					cm_rates_error(family, "each tier must be an object");
				eit = JsonbIteratorInit(e->val.binary.data);
				while ((etok = JsonbIteratorNext(&eit, &ev, true)) != WJB_DONE)
				{
					char	   *key;

					if (etok != WJB_KEY)
						continue;
					key = pnstrdup(ev.val.string.val, ev.val.string.len);
					if (strcmp(key, "from") != 0 && strcmp(key, "to") != 0 &&
						strcmp(key, "rate") != 0 && strcmp(key, "mode") != 0)
						cm_rates_error(family, psprintf("unknown key \"%s\" in a tier (a tier has \"from\", \"to\", \"rate\" and \"mode\")", key));
					if (strcmp(key, "mode") == 0)
					{
						JsonbValue	mv;

						etok = JsonbIteratorNext(&eit, &mv, true);
						if (mv.type == jbvNull)
							continue;
						if (mv.type != jbvString ||
							!((mv.val.string.len == 8 && strncmp(mv.val.string.val, "marginal", 8) == 0) ||
							  (mv.val.string.len == 11 && strncmp(mv.val.string.val, "retroactive", 11) == 0)))
							cm_rates_error(family, "\"mode\" of a tier must be \"marginal\" or \"retroactive\"");
						retro = mv.val.string.len == 11;
					}
				}
				from = cm_tier_member(e->val.binary.data, "from", family, &has_from);
				to = cm_tier_member(e->val.binary.data, "to", family, &has_to);
				rate = cm_tier_member(e->val.binary.data, "rate", family, &has_rate);
				if (!has_from || !has_rate)
					cm_rates_error(family, "each tier needs \"from\" and \"rate\"");
				if (numeric_is_nan(rate) || sm_numeric_sign(rate) < 0)
					cm_rates_error(family, "a tier's rate must be a number of at least 0");
				if (numeric_is_nan(from) || (has_to && numeric_is_nan(to)))
					cm_rates_error(family, "a tier's attainments must be numbers");
				if (has_to && sm_numeric_cmp(to, from) <= 0)
					cm_rates_error(family, "a tier's \"to\" must be above its \"from\"");
				if (i == 0 && sm_numeric_sign(from) != 0)
					cm_rates_error(family, "the tiers must start at attainment 0 (list them by attainment)");
				if (i > 0 && (prev_to == NULL || sm_numeric_cmp(prev_to, from) != 0))
					cm_rates_error(family, "the tiers must be listed by attainment, each starting where the one before it ends, only the last open-ended");
				if (i == n - 1 && has_to)
					cm_rates_error(family, "the highest tier must be open-ended (no \"to\")");
				prev_to = to;
				if (table)
				{
					table->tiers[i].from = from;
					table->tiers[i].to = to;
					table->tiers[i].rate = rate;
					table->tiers[i].retro = retro;
				}
			}
		}
		else
			cm_rates_error(family, "the value must be a rate (a number) or a list of tiers");
		if (p != NULL)
			p->rate_families[p->nrates++] = family;
	}
}

void
cm_validate_family_rates(Jsonb *rates)
{
	cm_walk_family_rates(rates, NULL, NULL);
}

/* a plan's family_rates into its rate tables (in the current context) */
void
cm_plan_rate_tables(CmPlan *p, Jsonb *rates, const char *tier_mode)
{
	cm_walk_family_rates(rates, p, tier_mode);
}

/*
 * Load plans and their tiers (all plans, or the one given) into cxt.
 * Returns the number of plans; *plans is sorted by plan_id.  read_only
 * queries see the calling statement's snapshot (STABLE callers); the
 * others a new one that sees the caller's own earlier changes.
 */
/* a plan's family_weights into its arrays (in the current context) */
static void
cm_plan_families(CmPlan *p, Datum weights, bool isnull)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	Jsonb	   *jb;

	p->nfamilies = 0;
	if (isnull)
		return;
	jb = DatumGetJsonbPCopy(weights);
	p->families = palloc(sizeof(char *) * Max(JB_ROOT_COUNT(jb), 1));
	p->weights = palloc(sizeof(Numeric) * Max(JB_ROOT_COUNT(jb), 1));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			p->families[p->nfamilies] = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE && v.type == jbvNumeric)
			p->weights[p->nfamilies++] = v.val.numeric;
	}
}

int
cm_load_plans(MemoryContext cxt, int64 only_plan, bool read_only, CmPlan **plans)
{
	/* a database still at 0.1.0 has no credit measures nor family weights */
	const char *sql = sm_sql_is_current() ?
		"SELECT p.plan_id, p.basis = 'payment', p.period, p.cap, coalesce(p.clawback_days, 0),"
		"       nullif(p.override_rate, 0), t.attainment_from, t.attainment_to, t.rate,"
		"       coalesce(t.mode, p.tier_mode) = 'retroactive', t.tier_id IS NOT NULL,"
		"       p.credit_measure = 'new_arr', p.family_weights, p.tier_mode, p.family_rates"
		"  FROM salesmgmt.commission_plan p"
		"  LEFT JOIN salesmgmt.commission_tier t ON t.plan_id = p.plan_id"
		" WHERE $1 IS NULL OR p.plan_id = $1"
		" ORDER BY p.plan_id, t.attainment_from, t.tier_id" :
		"SELECT p.plan_id, p.basis = 'payment', p.period, p.cap, coalesce(p.clawback_days, 0),"
		"       nullif(p.override_rate, 0), t.attainment_from, t.attainment_to, t.rate,"
		"       coalesce(t.mode, p.tier_mode) = 'retroactive', t.tier_id IS NOT NULL,"
		"       false, NULL::jsonb, p.tier_mode, NULL::jsonb"
		"  FROM salesmgmt.commission_plan p"
		"  LEFT JOIN salesmgmt.commission_tier t ON t.plan_id = p.plan_id"
		" WHERE $1 IS NULL OR p.plan_id = $1"
		" ORDER BY p.plan_id, t.attainment_from, t.tier_id";
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(only_plan)};
	char		nulls[1] = {only_plan == 0 ? 'n' : ' '};
	SPITupleTable *tt;
	uint64		n,
				i,
				first;
	int			nplans = 0;
	CmPlan	   *out;
	MemoryContext old;

	tt = sm_spi_query(sql, 1, types, values, nulls, read_only, SPI_OK_SELECT, &n);
	old = MemoryContextSwitchTo(cxt);
	out = palloc0(sizeof(CmPlan) * Max(n, 1));
	for (i = 0; i < n; i = first)
	{
		CmPlan	   *p = &out[nplans++];
		bool		isnull;
		Datum		weights;
		char	   *period;
		Numeric    *from,
				   *to;
		int			k;

		p->plan_id = sm_spi_int64(tt->vals[i], tt->tupdesc, 1, 0);
		p->payment_basis = DatumGetBool(sm_spi_col(tt, i, 2, &isnull));
		period = TextDatumGetCString(sm_spi_col(tt, i, 3, &isnull));
		p->period = strcmp(period, "month") == 0 ? CM_MONTH :
			strcmp(period, "year") == 0 ? CM_YEAR : CM_QUARTER;
		p->cap = sm_spi_numeric(tt->vals[i], tt->tupdesc, 4);
		p->clawback_days = DatumGetInt32(sm_spi_col(tt, i, 5, &isnull));
		p->override_rate = sm_spi_numeric(tt->vals[i], tt->tupdesc, 6);
		p->new_arr = DatumGetBool(sm_spi_col(tt, i, 12, &isnull));
		weights = sm_spi_col(tt, i, 13, &isnull);
		cm_plan_families(p, weights, isnull);
		weights = sm_spi_col(tt, i, 15, &isnull);
		if (!isnull)
			cm_plan_rate_tables(p, DatumGetJsonbPCopy(weights),
								TextDatumGetCString(sm_spi_col(tt, i, 14, &isnull)));
		for (first = i; first < n && sm_spi_int64(tt->vals[first], tt->tupdesc, 1, 0) == p->plan_id; first++)
			;
		p->ntiers = DatumGetBool(sm_spi_col(tt, i, 11, &isnull)) ? (int) (first - i) : 0;
		p->tiers = palloc0(sizeof(CmTier) * Max(p->ntiers, 1));
		from = palloc(sizeof(Numeric) * Max(p->ntiers, 1));
		to = palloc(sizeof(Numeric) * Max(p->ntiers, 1));
		for (k = 0; k < p->ntiers; k++)
		{
			p->tiers[k].from = from[k] = sm_spi_numeric(tt->vals[i + k], tt->tupdesc, 7);
			p->tiers[k].to = to[k] = sm_spi_numeric(tt->vals[i + k], tt->tupdesc, 8);
			p->tiers[k].rate = sm_spi_numeric(tt->vals[i + k], tt->tupdesc, 9);
			p->tiers[k].retro = DatumGetBool(sm_spi_col(tt, i + k, 10, &isnull));
		}
		cm_validate_tiers(p->plan_id, p->ntiers, from, to);
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);
	*plans = out;
	return nplans;
}

void
cm_tiering_init(CmTiering *t, CmPlan *plan, Numeric quota)
{
	int			k;

	t->plan = plan;
	t->quota = (quota != NULL && sm_numeric_sign(quota) > 0) ? quota : NULL;
	t->nt = plan->ntiers == 0 ? 0 : (t->quota == NULL ? 1 : plan->ntiers);
	t->bound = palloc(sizeof(Numeric) * Max(t->nt, 1));
	t->offset = palloc(sizeof(Numeric) * Max(t->nt, 1));
	if (t->nt == 0)
		return;
	t->bound[0] = sm_numeric_const(0);
	t->offset[0] = sm_numeric_const(0);
	for (k = 1; k < t->nt; k++)
	{
		CmTier	   *tk = &plan->tiers[k];

		t->bound[k] = sm_numeric_mul(tk->from, t->quota);
		if (tk->retro)
			t->offset[k] = sm_numeric_const(0);
		else
		{
			/* E_{k-1}(B_k) - r_k * B_k */
			Numeric		left = sm_numeric_add(t->offset[k - 1],
											  sm_numeric_mul(plan->tiers[k - 1].rate, t->bound[k]));

			t->offset[k] = sm_numeric_sub(left, sm_numeric_mul(tk->rate, t->bound[k]));
		}
	}
}

/* index of the tier credit x falls in (negative credit: the first) */
int
cm_tier_of(CmTiering *t, Numeric x)
{
	int			k;

	for (k = t->nt - 1; k > 0; k--)
		if (sm_numeric_cmp(x, t->bound[k]) >= 0)
			return k;
	return 0;
}

/* E(x) on tier k */
Numeric
cm_earnings(CmTiering *t, int k, Numeric x)
{
	if (t->nt == 0)
		return sm_numeric_const(0);
	return sm_numeric_add(t->offset[k], sm_numeric_mul(t->plan->tiers[k].rate, x));
}

/* what the plan pays for exact earnings e: least(e, cap) rounded to cents */
Numeric
cm_paid(CmPlan *plan, Numeric e)
{
	if (plan->cap != NULL && sm_numeric_cmp(e, plan->cap) > 0)
		e = plan->cap;
	return sm_numeric_round(e, 2);
}

/* E(x) - E_{k-1}(x) at the lower boundary of tier k: the retroactive jump */
static Numeric
cm_catch_up(CmTiering *t, int k)
{
	Numeric		right = cm_earnings(t, k, t->bound[k]);
	Numeric		left = cm_earnings(t, k - 1, t->bound[k]);

	return sm_numeric_sub(right, left);
}

/*
 * The tiers a move of the period's credit from x to y passes through, in
 * the direction of the move: each with the slice of credit in it, what the
 * slice earns, and the catch-up of a boundary crossed into it.  The slices'
 * amounts and catch-ups add up to E(y) - E(x) exactly.
 */
Jsonb *
cm_tiers_json(CmTiering *t, Numeric x, Numeric y, int kx, int ky)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;
	bool		up = ky > kx;
	int			lo_k = up ? kx : ky;
	int			hi_k = up ? ky : kx;
	Numeric		lo = up ? x : y;
	Numeric		hi = up ? y : x;
	int			step = up ? 1 : -1;
	int			j;

	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (j = kx;; j += step)
	{
		CmTier	   *tier = &t->plan->tiers[j];
		Numeric		seg_lo = (j == lo_k) ? lo : t->bound[j];
		Numeric		seg_hi = (j == hi_k) ? hi : t->bound[j + 1];
		Numeric		slice = sm_numeric_sub(seg_hi, seg_lo);

		if (!up)
			slice = sm_numeric_neg(slice);
		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		sm_jsonb_push_numeric(&st, "tier", int64_to_numeric(j + 1));
		sm_jsonb_push_numeric(&st, "from", tier->from);
		sm_jsonb_push_numeric(&st, "to", tier->to);
		sm_jsonb_push_numeric(&st, "rate", tier->rate);
		sm_jsonb_push_string(&st, "mode", tier->retro ? "retroactive" : "marginal");
		sm_jsonb_push_numeric(&st, "credit", slice);
		sm_jsonb_push_numeric(&st, "amount", sm_numeric_mul(tier->rate, slice));
		/* crossing a boundary into tier j (up) or out of it (down) */
		if (up && j > kx && tier->retro)
			sm_jsonb_push_numeric(&st, "catch_up", cm_catch_up(t, j));
		else if (!up && j < kx && t->plan->tiers[j + 1].retro)
			sm_jsonb_push_numeric(&st, "catch_up", sm_numeric_neg(cm_catch_up(t, j + 1)));
		pushJsonbValue(&st, WJB_END_OBJECT, NULL);
		if (j == ky)
			break;
	}
	res = pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * commission_amount(plan, quota, prior_credit, credit): what credit earns
 * on top of prior_credit in a plan period, by the plan's tiers and cap.
 */
Datum
sm_commission_amount(PG_FUNCTION_ARGS)
{
	int64		plan_id;
	Numeric		quota,
				prior,
				credit,
				after;
	CmPlan	   *plans;
	CmTiering	t;
	Numeric		result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("plan, prior credit and credit of commission_amount must not be null"),
				 errhint("Pass 0 as the prior credit at the start of a period; a null quota means no quota.")));
	plan_id = PG_GETARG_INT64(0);
	quota = PG_ARGISNULL(1) ? NULL : PG_GETARG_NUMERIC(1);
	prior = PG_GETARG_NUMERIC(2);
	credit = PG_GETARG_NUMERIC(3);
	if ((quota && numeric_is_nan(quota)) || numeric_is_nan(prior) || numeric_is_nan(credit))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("commission_amount does not accept NaN")));
	if (quota != NULL && sm_numeric_sign(quota) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quota must not be negative"),
				 errdetail("The quota given is %s.", cm_num_str(quota))));

	SPI_connect();
	if (cm_load_plans(CurrentMemoryContext, plan_id, true, &plans) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("commission plan " INT64_FORMAT " does not exist", plan_id),
				 errhint("The plans are in salesmgmt.commission_plan.")));
	cm_tiering_init(&t, &plans[0], quota);
	after = sm_numeric_add(prior, credit);
	result = sm_numeric_sub(cm_paid(&plans[0], cm_earnings(&t, cm_tier_of(&t, after), after)),
							cm_paid(&plans[0], cm_earnings(&t, cm_tier_of(&t, prior), prior)));
	{
		/* the result must outlive SPI_finish */
		Numeric		copy = (Numeric) SPI_palloc(VARSIZE(result));

		memcpy(copy, result, VARSIZE(result));
		result = copy;
	}
	SPI_finish();
	PG_RETURN_NUMERIC(result);
}


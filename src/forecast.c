/*-------------------------------------------------------------------------
 *
 * forecast.c
 *	  Weighted and category forecasts with team rollups, forecasts as they
 *	  stood at a past moment, and Monte Carlo ranges.
 *
 * The fast path.  The deals of the period are streamed from one SPI query
 * into a DestReceiver, so no tuple is materialised, and are added up in
 * exact integer arithmetic: amounts are numeric(18,2), i.e. whole cents;
 * credit shares and probabilities are numeric(5,4), i.e. whole units of
 * 1/10000.  amount x share is therefore an exact integer in units of 1e-6,
 * and amount x share x probability one in units of 1e-10; both are summed
 * in 128 bits, which no realistic data set can overflow (2^127 is about
 * 1.7e38; a row adds at most 1e18 x 1e8).
 *
 * Currencies.  Each deal converts with the rate valid on its period date
 * (closed_at when closed, else the expected close date), with the rules of
 * salesmgmt.convert_amount: the latest rate of the pair valid on or before
 * that day, else the inverse of the reverse pair, else an error naming the
 * currency and the date.  The rates are read once per call.  Every deal is
 * summed into the "slot" of the rate row it converts with (slot 0 is the
 * reporting currency itself), and each slot's exact sum is converted once
 * at the end: since multiplication distributes over addition, that equals
 * converting every deal in numeric and adding the results.
 *
 * Everything is computed in the SPI procedure context, which SPI_finish
 * frees; the per-group numeric work uses a context reset after each
 * output row.
 *
 *-------------------------------------------------------------------------
 */
#include "forecast.h"

PG_FUNCTION_INFO_V1(sm_forecast);

static const char *const fc_group_names[] = {
	"rep", "team", "pipeline", "month", "quarter", "total", "product_family"
};

StaticAssertDecl(lengthof(fc_group_names) == FC_GROUP_FAMILY + 1,
				 "every grouping is named");

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------
 */

static DateADT
fc_timestamptz_date(TimestampTz t)
{
	return DatumGetDateADT(DirectFunctionCall1(timestamptz_date,
											   TimestampTzGetDatum(t)));
}

/* floor division, for month numbers of years before 1 AD */
static int
fc_floor_div(int a, int b)
{
	return (a >= 0) ? a / b : -((-a + b - 1) / b);
}

/* months since year 0 */
static int
fc_month_number(DateADT d)
{
	int			y,
				m,
				day;

	j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &day);
	return y * 12 + (m - 1);
}

static DateADT
fc_month_start(int month_number)
{
	int			y = fc_floor_div(month_number, 12);

	return date2j(y, month_number - y * 12 + 1, 1) - POSTGRES_EPOCH_JDATE;
}

/* the bucket number of a day: months or quarters since year 0 */
int
fc_bucket_number(FcGroupKind kind, DateADT d)
{
	int			m = fc_month_number(d);

	return kind == FC_GROUP_MONTH ? m : fc_floor_div(m, 3);
}

/* the exact value of an INT128 counted in units of "unit" */
Numeric
fc_int128_numeric(INT128 v, Numeric unit)
{
	int64		hi;
	uint64		lo;
	Numeric		n;

#if USE_NATIVE_INT128
	hi = (int64) (v >> 64);
	lo = (uint64) v;
#else
	hi = v.hi;
	lo = v.lo;
#endif
	if ((hi == 0 && lo <= (uint64) PG_INT64_MAX) ||
		(hi == -1 && lo > (uint64) PG_INT64_MAX))
		n = int64_to_numeric((int64) lo);
	else
	{
		/* hi * 2^64 + lo, with lo in two halves so each fits an int64 */
		Numeric		two32 = int64_to_numeric(INT64CONST(4294967296));

		n = sm_numeric_mul(sm_numeric_mul(int64_to_numeric(hi), two32), two32);
		n = sm_numeric_add(n, sm_numeric_mul(int64_to_numeric((int64) (lo >> 32)), two32));
		n = sm_numeric_add(n, int64_to_numeric((int64) (lo & 0xFFFFFFFF)));
	}
	return sm_numeric_mul(n, unit);
}

static bool
fc_int128_is_zero(INT128 v)
{
	return int128_compare(v, int64_to_int128(0)) == 0;
}

/* text datum of a forecast category to FcFigure ("closed" is FC_WON) */
int8
fc_parse_category(Datum d, int64 deal_id)
{
	text	   *t = DatumGetTextPP(d);
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

#define FC_IS(lit) (len == sizeof(lit) - 1 && memcmp(s, lit, len) == 0)
	if (FC_IS("pipeline"))
		return FC_PIPELINE;
	if (FC_IS("best_case"))
		return FC_BEST_CASE;
	if (FC_IS("commit"))
		return FC_COMMIT;
	if (FC_IS("omitted"))
		return FC_OMITTED;
	if (FC_IS("closed"))
		return FC_WON;
#undef FC_IS
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("deal " INT64_FORMAT " has an unknown forecast category \"%.*s\"",
					deal_id, len, s),
			 errhint("Forecast categories are pipeline, best_case, commit, closed and omitted.")));
	return FC_PIPELINE;			/* keep compiler quiet */
}

/*
 * Grow an array of the call.  The deal scan runs inside SPI's executor,
 * whose current memory context is reset after the query, so anything the
 * receiver keeps is allocated in the call's context explicitly.
 */
void *
fc_grow(FcCall *c, void *ptr, Size size)
{
	return ptr ? repalloc_huge(ptr, size) : MemoryContextAllocHuge(c->cxt, size);
}

/* ------------------------------------------------------------------------
 * Groups and sums
 * ------------------------------------------------------------------------
 */

int
fc_add_group(FcCall *c, int64 id, bool id_null, char *name)
{
	FcGroup    *g;

	if (c->ngroups >= c->groups_alloc)
	{
		c->groups_alloc = Max(16, c->groups_alloc * 2);
		c->groups = fc_grow(c, c->groups, sizeof(FcGroup) * c->groups_alloc);
	}
	g = &c->groups[c->ngroups];
	memset(g, 0, sizeof(FcGroup));
	g->id = id;
	g->id_null = id_null;
	g->name = name;
	g->start = c->from;
	g->end = c->to;
	g->last_deal = -1;
	return c->ngroups++;
}

/*
 * The groups a call starts with: every rep, every team plus "no team",
 * every pipeline, every month or quarter of the period, or the total.
 * Reps met later (invisible to the caller) get a group when first seen;
 * group i of the rep grouping is rep i, of the team grouping team i.
 */
void
fc_make_groups(FcCall *c)
{
	int			i;

	switch (c->kind)
	{
		case FC_GROUP_REP:
			for (i = 0; i < c->nreps; i++)
				fc_add_group(c, c->reps[i].id, false, c->reps[i].name);
			break;
		case FC_GROUP_TEAM:
			for (i = 0; i < c->nteams; i++)
				fc_add_group(c, c->teams[i].id, false, c->teams[i].name);
			fc_add_group(c, 0, true, "(no team)");
			break;
		case FC_GROUP_PIPELINE:
			for (i = 0; i < c->npipelines; i++)
				fc_add_group(c, c->pipelines[i].id, false, c->pipelines[i].name);
			break;
		case FC_GROUP_MONTH:
		case FC_GROUP_QUARTER:
			{
				int			first = fc_bucket_number(c->kind, c->from);
				int			last = fc_bucket_number(c->kind, c->to);
				int			b;

				if (last - first + 1 > FC_MAX_BUCKETS)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("a forecast by %s returns at most %d rows",
									fc_group_names[c->kind], FC_MAX_BUCKETS),
							 errdetail("The period from %s to %s has %d.",
									   sm_date_iso_str(c->from), sm_date_iso_str(c->to),
									   last - first + 1),
							 errhint("Forecast a shorter period.")));
				c->month0 = first;
				for (b = first; b <= last; b++)
				{
					int			months = (c->kind == FC_GROUP_MONTH) ? 1 : 3;
					int			m = b * months;
					DateADT		start = fc_month_start(m);
					DateADT		end = fc_month_start(m + months) - 1;
					int			y = fc_floor_div(m, 12);
					int			g;

					if (c->kind == FC_GROUP_MONTH)
						g = fc_add_group(c, (int64) y * 100 + (m - y * 12 + 1), false,
										 psprintf("%04d-%02d", y, m - y * 12 + 1));
					else
						g = fc_add_group(c, (int64) y * 10 + (m - y * 12) / 3 + 1, false,
										 psprintf("%04d-Q%d", y, (m - y * 12) / 3 + 1));
					c->groups[g].start = Max(start, c->from);
					c->groups[g].end = Min(end, c->to);
					c->groups[g].present = true;
				}
			}
			break;
		case FC_GROUP_TOTAL:
			i = fc_add_group(c, 0, true, "Total");
			c->groups[i].present = true;
			break;
		case FC_GROUP_FAMILY:
			/* families get a group when first met (lines or quotas) */
			c->family_map = fc_familymap_create(c->cxt, 16, NULL);
			c->none_group = fc_add_group(c, 0, true, FC_NO_FAMILY_NAME);
			break;
	}
	c->groups_made = true;
}

/* the sums of group g in rate slot "slot" */
static inline FcAcc *
fc_acc(FcCall *c, int g, int slot)
{
	FcAccEntry *e;
	bool		found;

	if (slot == 0)
		return &c->groups[g].acc;
	e = fc_accmap_insert(c->foreign, ((uint64) g << 32) | (uint64) slot, &found);
	if (!found)
		memset(&e->acc, 0, sizeof(FcAcc));
	return &e->acc;
}

/* credit "share" of a deal to group g */
static inline void
fc_credit(FcCall *c, int g, int slot, int figure, int64 cents, int32 share,
		  int32 probability)
{
	FcGroup    *grp = &c->groups[g];
	FcAcc	   *acc = fc_acc(c, g, slot);

	int128_add_int64_mul_int64(&acc->amount[figure], cents, share);
	if (figure != FC_WON)
		int128_add_int64_mul_int64(&acc->weighted, cents,
								   (int64) share * probability);
	if (grp->last_deal != c->deal_seq)
	{
		grp->last_deal = c->deal_seq;
		grp->deal_count++;
	}
	grp->present = true;
}

/* the group of rep r in the team grouping: its team, or "no team" */
static inline int
fc_rep_team_group(FcCall *c, int r)
{
	return c->reps[r].team >= 0 ? c->reps[r].team : c->nteams;
}

/* credit share of a deal to rep r: the rep, or its team and all above */
static inline void
fc_credit_rep(FcCall *c, int r, int slot, int figure, int64 cents,
			  int32 share, int32 probability)
{
	if (c->kind == FC_GROUP_REP)
		fc_credit(c, r, slot, figure, cents, share, probability);
	else
	{
		int			team = c->reps[r].team;
		int			k;

		if (team < 0)
			fc_credit(c, c->nteams, slot, figure, cents, share, probability);
		else
			for (k = 0; k < c->teams[team].nchain; k++)
				fc_credit(c, c->teams[team].chain[k], slot, figure, cents,
						  share, probability);
	}
}

/*
 * product_family grouping: the deal's amount split by its lines' share per
 * family, each part in whole cents (the exact share rounded down, the
 * cents left over to the largest remainders, so the parts add up to the
 * deal).  A deal without lines, or whose lines add up to zero, counts in
 * the "(none)" group.
 */
static void
fc_credit_families(FcCall *c, const FcDeal *d, int slot, int figure, int32 p)
{
	int			first = fc_lookup(c->line_map, d->deal_id);
	int64		total = 0;
	int64		given = 0;
	int			n = 0;
	int			k;
	int64	   *part;
	int64	   *rest;

	for (k = first; k >= 0; k = c->line_next[k])
	{
		total += c->line_cents[k];
		n++;
	}
	if (total <= 0)
	{
		fc_credit(c, c->none_group, slot, figure, d->cents, FC_UNIT, p);
		return;
	}
	part = palloc(sizeof(int64) * n * 2);
	rest = part + n;
	n = 0;
	for (k = first; k >= 0; k = c->line_next[k], n++)
	{
		/* cents x line <= 1e18 x 1e18; the quotient is at most cents */
		int128		num = (int128) d->cents * c->line_cents[k];

		part[n] = (int64) (num / total);
		rest[n] = (int64) (num % total);
		given += part[n];
	}

	/* the cents left over, one each, to the largest remainders first */
	while (given < d->cents)
	{
		int			best = 0;

		for (k = 1; k < n; k++)
			if (rest[k] > rest[best])
				best = k;
		part[best]++;
		rest[best] = -1;
		given++;
	}
	n = 0;
	for (k = first; k >= 0; k = c->line_next[k], n++)
		fc_credit(c, c->line_group[k], slot, figure, part[n], FC_UNIT, p);
	pfree(part);
}

static void
fc_add_open_deal(FcCall *c, int64 deal_id, int64 cents, int32 p)
{
	if (c->nopen >= c->open_alloc)
	{
		c->open_alloc = Max(1024, c->open_alloc * 2);
		c->open_id = fc_grow(c, c->open_id, sizeof(int64) * c->open_alloc);
		c->open_cents = fc_grow(c, c->open_cents, sizeof(int64) * c->open_alloc);
		c->open_p = fc_grow(c, c->open_p, sizeof(int32) * c->open_alloc);
	}
	c->open_id[c->nopen] = deal_id;
	c->open_cents[c->nopen] = cents;
	c->open_p[c->nopen] = p;
	c->nopen++;
}

/*
 * One deal: decide whether and where it counts, and add it up.
 */
void
fc_add_deal(FcCall *c, const FcDeal *d)
{
	int			s = fc_lookup(c->stage_map, d->stage_id);
	FcStage    *stage = s >= 0 ? &c->stages[s] : NULL;
	char		outcome;
	DateADT		day;
	int			figure;
	int32		p = 0;
	int			slot;
	int			g;

	/*
	 * Open, won or lost: by the stage.  A stage deleted since (only
	 * possible as of a past moment) goes by the recorded category.
	 */
	if (stage != NULL)
		outcome = stage->outcome;
	else
		outcome = (d->category == FC_WON) ? 'w' : 'o';
	if (outcome == 'l')
		return;					/* lost deals are no part of a forecast */

	/* the period: closed_at when closed, else the expected close date */
	if (outcome == 'w' && d->has_closed)
		day = fc_timestamptz_date(d->closed_at);
	else if (d->has_expected)
		day = d->expected;
	else
		return;					/* an open deal without a close date */
	if (day < c->from || day > c->to)
		return;

	if (outcome == 'w')
		figure = FC_WON;
	else
	{
		bool		historical = (stage != NULL && stage->pipeline >= 0 &&
								  c->pipelines[stage->pipeline].historical &&
								  stage->learned >= 0);

		if (d->category >= 0)
			figure = d->category;
		else
			figure = stage ? stage->category : FC_PIPELINE;
		/* only an override can mark an open deal "closed": as sure as commit */
		if (figure == FC_WON)
			figure = FC_COMMIT;
		if (d->has_override)
			p = d->override;
		else if (historical)
			p = stage->learned;
		else if (d->has_effective)
			p = d->effective;
		else
			p = stage ? stage->probability : 0;
	}

	slot = fc_rate_slot(c, d->currency, day, d->deal_id);
	c->deal_seq++;

	if (c->simulate)
	{
		/* forecast_range: the part of the deal credited inside the scope */
		int32		share = 0;

		if (c->scope_team < 0)
			share = FC_UNIT;
		else
		{
			int			first = c->need_splits ? fc_lookup(c->split_map, d->deal_id) : -1;

			if (first < 0)
				share = c->reps[fc_rep(c, d->owner)].in_scope ? FC_UNIT : 0;
			else
			{
				int			k;

				for (k = first; k >= 0; k = c->split_next[k])
					if (c->reps[c->split_rep[k]].in_scope)
						share += c->split_share[k];
			}
		}
		if (share == 0)
			return;
		if (figure == FC_WON)
			fc_credit(c, 0, slot, figure, d->cents, share, 0);
		else
		{
			/* a statistic, not money: the credited amount in whole cents */
			double		v = (double) d->cents * share / FC_UNIT * c->factor[slot];

			fc_credit(c, 0, slot, figure, d->cents, share, p);
			fc_add_open_deal(c, d->deal_id, (int64) llround(v), p);
		}
		return;
	}

	switch (c->kind)
	{
		case FC_GROUP_FAMILY:
			fc_credit_families(c, d, slot, figure, p);
			return;
		case FC_GROUP_REP:
		case FC_GROUP_TEAM:
			{
				int			first = fc_lookup(c->split_map, d->deal_id);

				if (first < 0)
					fc_credit_rep(c, fc_rep(c, d->owner), slot, figure, d->cents,
								  FC_UNIT, p);
				else
				{
					int			k;

					for (k = first; k >= 0; k = c->split_next[k])
						fc_credit_rep(c, c->split_rep[k], slot, figure, d->cents,
									  c->split_share[k], p);
				}
			}
			return;
		case FC_GROUP_PIPELINE:
			g = fc_lookup(c->pipeline_map, d->pipeline_id);
			if (g < 0)
			{
				/* a pipeline the caller cannot see */
				g = fc_add_group(c, d->pipeline_id, false, NULL);
				fc_map_insert(c->pipeline_map, d->pipeline_id, g);
			}
			break;
		case FC_GROUP_MONTH:
		case FC_GROUP_QUARTER:
			g = fc_bucket_number(c->kind, day) - c->month0;
			break;
		case FC_GROUP_TOTAL:
		default:
			g = 0;
			break;
	}
	fc_credit(c, g, slot, figure, d->cents, FC_UNIT, p);
}

/* ------------------------------------------------------------------------
 * Setting up a call
 * ------------------------------------------------------------------------
 */

static void
fc_check_currency(FcCall *c)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	values[0] = CStringGetTextDatum(c->target);
	sm_spi_query_dest("SELECT 1 FROM salesmgmt.currency WHERE code = $1::bpchar",
					  1, types, values, NULL);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reporting currency \"%s\" is not a known currency", c->target),
				 errhint("Use a code of salesmgmt.currency (setting salesmgmt.reporting_currency or p_currency), or add the currency there.")));
}

void
fc_init_call(FcCall *c, FunctionCallInfo fcinfo, DateADT from, DateADT to)
{
	int			overflow = 0;

	memset(c, 0, sizeof(FcCall));
	c->scope_team = -1;
	if (from > to)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("forecast period ends before it starts"),
				 errdetail("p_from is %s, p_to is %s.", sm_date_iso_str(from), sm_date_iso_str(to)),
				 errhint("Pass the first day of the period as p_from and the last as p_to.")));
	if (DATE_NOT_FINITE(from) || DATE_NOT_FINITE(to))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("forecast period must have finite bounds"),
				 errhint("Pass real dates as p_from and p_to, not infinity.")));
	c->from = from;
	c->to = to;
	c->from_ts = date2timestamptz_opt_overflow(from, &overflow);
	if (overflow == 0)
		c->to_ts = date2timestamptz_opt_overflow(to + 1, &overflow);
	if (overflow != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("forecast period from %s to %s is out of range",
						sm_date_iso_str(from), sm_date_iso_str(to)),
				 errhint("Forecast periods must lie between 4713 BC and 294276 AD.")));
	c->as_of = GetCurrentTransactionStartTimestamp();
}

void
fc_load_catalog(FcCall *c)
{
	c->cxt = CurrentMemoryContext;
	fc_check_currency(c);
	fc_load_rates(c);
	fc_load_pipelines(c);
	fc_load_stages(c);
	fc_load_teams(c);
	fc_load_reps(c);
	if (c->need_splits)
		fc_load_splits(c);
	c->foreign = fc_accmap_create(CurrentMemoryContext, 64, NULL);
}

void
fc_set_currency(FcCall *c, FunctionCallInfo fcinfo, int argno)
{
	const char *code = sm_currency_reporting();
	char	   *arg = NULL;

	if (argno >= 0 && !PG_ARGISNULL(argno))
	{
		arg = TextDatumGetCString(PG_GETARG_DATUM(argno));
		code = arg;
	}
	if (code == NULL || strlen(code) != 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reporting currency \"%s\" is not a three-letter code",
						code ? code : ""),
				 errhint("Currencies are ISO 4217 codes in upper case, such as \"USD\".")));
	memcpy(c->target, code, 3);
	c->target[3] = '\0';
}

/* ------------------------------------------------------------------------
 * salesmgmt.forecast
 * ------------------------------------------------------------------------
 */

/* the result columns of salesmgmt.forecast, in order */
typedef enum FcCol
{
	FC_COL_GROUP_ID,
	FC_COL_GROUP_NAME,
	FC_COL_CLOSED_WON,
	FC_COL_COMMIT,
	FC_COL_BEST_CASE,
	FC_COL_PIPELINE,
	FC_COL_OMITTED,
	FC_COL_WEIGHTED,
	FC_COL_COMMIT_FORECAST,
	FC_COL_BEST_CASE_FORECAST,
	FC_COL_QUOTA,
	FC_COL_ATTAINMENT,
	FC_COL_GAP,
	FC_COL_DEAL_COUNT,
	FC_COL_PERIOD_START,
	FC_COL_PERIOD_END,
	FC_COL_ADJUSTED_COMMIT,		/* the adjusted figures: FC_NADJUST of them */
	FC_COL_ADJUSTED_BEST_CASE,
	FC_COL_ADJUSTED_PIPELINE,
	FC_COL_ADJUSTED_COMMIT_FORECAST,
	FC_COL_ADJUSTED_BEST_CASE_FORECAST,
	FC_COL_ADJUSTED_GAP,
	FC_COL_CURRENCY,
	FC_NCOLUMNS
} FcCol;

static const char *const fc_forecast_columns[] = {
	"group_id", "group_name", "closed_won", "commit", "best_case", "pipeline",
	"omitted", "weighted", "commit_forecast", "best_case_forecast", "quota",
	"attainment", "gap", "deal_count", "period_start", "period_end",
	"adjusted_commit", "adjusted_best_case", "adjusted_pipeline",
	"adjusted_commit_forecast", "adjusted_best_case_forecast", "adjusted_gap",
	"currency"
};

StaticAssertDecl(lengthof(fc_forecast_columns) == FC_NCOLUMNS,
				 "every column of salesmgmt.forecast is named");
StaticAssertDecl(FC_COL_ADJUSTED_PIPELINE - FC_COL_ADJUSTED_COMMIT + 1 == FC_NADJUST,
				 "one adjusted column per adjusted category");

/* figures of one group in the reporting currency, exact */
void
fc_group_figures(FcCall *c, int g, Numeric *fig, Numeric *weighted,
				 Numeric unit6, Numeric unit10)
{
	FcAcc	   *acc = &c->groups[g].acc;
	int			f;

	for (f = 0; f < FC_NFIGURES; f++)
		fig[f] = fc_int128_numeric(acc->amount[f], unit6);
	*weighted = fc_int128_numeric(acc->weighted, unit10);
}

/* add what every group holds in other currencies, converted */
void
fc_add_foreign(FcCall *c, Numeric (*figs)[FC_NFIGURES + 1], Numeric unit6,
			   Numeric unit10)
{
	fc_accmap_iterator it;
	FcAccEntry *e;

	fc_accmap_start_iterate(c->foreign, &it);
	while ((e = fc_accmap_iterate(c->foreign, &it)) != NULL)
	{
		int			g = (int) (e->key >> 32);
		int			slot = (int) (e->key & 0xFFFFFFFF);
		int			f;

		for (f = 0; f <= FC_NFIGURES; f++)
		{
			INT128		v = (f < FC_NFIGURES) ? e->acc.amount[f] : e->acc.weighted;

			if (fc_int128_is_zero(v))
				continue;
			figs[g][f] = sm_numeric_add(figs[g][f],
										fc_convert(c, fc_int128_numeric(v, f < FC_NFIGURES ? unit6 : unit10),
												   slot));
		}
	}
}

/* product_family rows: families by name (byte order), "(none)" last */
static FcCall *fc_sort_call;

static int
fc_family_cmp(const void *x, const void *y)
{
	int			a = *(const int *) x;
	int			b = *(const int *) y;
	int			none = fc_sort_call->none_group;

	if (a == none || b == none)
		return (a == none) - (b == none);
	return strcmp(fc_sort_call->groups[a].name, fc_sort_call->groups[b].name);
}

static int
fc_parse_group(text *t)
{
	char	   *s = text_to_cstring(t);
	int			k;

	for (k = 0; k < (int) lengthof(fc_group_names); k++)
		if (strcmp(s, fc_group_names[k]) == 0)
			return k;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown forecast grouping \"%s\"", s),
			 errhint("Group by rep, team, pipeline, month, quarter, total or product_family.")));
	return 0;					/* keep compiler quiet */
}

/*
 * salesmgmt.forecast(from, to, group, as_of, currency): loads the
 * catalog, scans the deals into per-group accumulators (exact cents per
 * currency slot), adds quotas and adjustments, converts each slot once and
 * returns one row per group (columns: FcCol).
 */
Datum
sm_forecast(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FcCall		call;
	FcCall	   *c = &call;
	MemoryContext row_cxt;
	MemoryContext old;
	Numeric		unit6,
				unit10,
				zero;
	Numeric		(*figs)[FC_NFIGURES + 1];
	int		   *order;
	int			i;
	int			g;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("forecast period must not be null"),
				 errhint("Pass the first and last day of the period as p_from and p_to.")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("forecast grouping must not be null"),
				 errhint("Group by rep, team, pipeline, month, quarter, total or product_family.")));

	InitMaterializedSRF(fcinfo, 0);
	sm_check_result_columns(rsinfo->setDesc, fc_forecast_columns, FC_NCOLUMNS);
	fc_init_call(c, fcinfo, PG_GETARG_DATEADT(0), PG_GETARG_DATEADT(1));
	c->kind = fc_parse_group(PG_GETARG_TEXT_PP(2));
	if (!PG_ARGISNULL(3))
	{
		c->has_as_of = true;
		c->as_of = PG_GETARG_TIMESTAMPTZ(3);
		if (TIMESTAMP_NOT_FINITE(c->as_of))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("p_as_of must be a finite moment"),
					 errhint("Leave p_as_of null for the forecast as it stands now.")));
	}
	fc_set_currency(c, fcinfo, 4);
	c->need_splits = (c->kind == FC_GROUP_REP || c->kind == FC_GROUP_TEAM);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	fc_load_catalog(c);
	fc_make_groups(c);
	fc_scan_deals(c);

	fc_apply_quotas(c);
	fc_apply_adjustments(c);

	/* exact figures per group: reporting currency, then the other slots */
	unit6 = sm_numeric_from_cstring("0.000001");
	unit10 = sm_numeric_from_cstring("0.0000000001");
	zero = sm_numeric_zero();
	figs = palloc(sizeof(*figs) * Max(c->ngroups, 1));
	for (g = 0; g < c->ngroups; g++)
		fc_group_figures(c, g, figs[g], &figs[g][FC_NFIGURES], unit6, unit10);
	fc_add_foreign(c, figs, unit6, unit10);

	/* rows in group order; product families by name */
	order = palloc(sizeof(int) * Max(c->ngroups, 1));
	for (g = 0; g < c->ngroups; g++)
		order[g] = g;
	if (c->kind == FC_GROUP_FAMILY)
	{
		fc_sort_call = c;
		qsort(order, c->ngroups, sizeof(int), fc_family_cmp);
	}

	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "forecast row",
									ALLOCSET_DEFAULT_SIZES);
	for (i = 0; i < c->ngroups; i++)
	{
		FcGroup    *grp;
		Datum		values[FC_NCOLUMNS];
		bool		nulls[FC_NCOLUMNS];
		Numeric		r[FC_NFIGURES];
		Numeric		weighted,
					commit_fc,
					best_fc,
					quota = NULL;
		int			f;

		g = order[i];
		grp = &c->groups[g];
		if (!grp->present)
			continue;
		old = MemoryContextSwitchTo(row_cxt);
		memset(nulls, 0, sizeof(nulls));

		/* each figure is rounded once from its exact value */
		for (f = 0; f < FC_NFIGURES; f++)
			r[f] = sm_numeric_round(figs[g][f], 2);
		weighted = sm_numeric_round(figs[g][FC_NFIGURES], 2);
		commit_fc = sm_numeric_add(r[FC_WON], r[FC_COMMIT]);
		best_fc = sm_numeric_add(commit_fc, r[FC_BEST_CASE]);

		values[FC_COL_GROUP_ID] = Int64GetDatum(grp->id);
		nulls[FC_COL_GROUP_ID] = grp->id_null;
		values[FC_COL_GROUP_NAME] = grp->name ? CStringGetTextDatum(grp->name) : (Datum) 0;
		nulls[FC_COL_GROUP_NAME] = (grp->name == NULL);
		values[FC_COL_CLOSED_WON] = NumericGetDatum(r[FC_WON]);
		values[FC_COL_COMMIT] = NumericGetDatum(r[FC_COMMIT]);
		values[FC_COL_BEST_CASE] = NumericGetDatum(r[FC_BEST_CASE]);
		values[FC_COL_PIPELINE] = NumericGetDatum(r[FC_PIPELINE]);
		values[FC_COL_OMITTED] = NumericGetDatum(r[FC_OMITTED]);
		values[FC_COL_WEIGHTED] = NumericGetDatum(weighted);
		values[FC_COL_COMMIT_FORECAST] = NumericGetDatum(commit_fc);
		values[FC_COL_BEST_CASE_FORECAST] = NumericGetDatum(best_fc);
		if (grp->quota != NULL)
		{
			quota = sm_numeric_round(grp->quota, 2);
			values[FC_COL_QUOTA] = NumericGetDatum(quota);
			if (sm_numeric_cmp(quota, zero) > 0)
				values[FC_COL_ATTAINMENT] = NumericGetDatum(sm_numeric_round(sm_numeric_div(r[FC_WON], quota), 4));
			else
				nulls[FC_COL_ATTAINMENT] = true;
			values[FC_COL_GAP] = NumericGetDatum(sm_numeric_sub(quota, commit_fc));
		}
		else
			nulls[FC_COL_QUOTA] = nulls[FC_COL_ATTAINMENT] = nulls[FC_COL_GAP] = true;
		values[FC_COL_DEAL_COUNT] = Int64GetDatum(grp->deal_count);
		values[FC_COL_PERIOD_START] = DateADTGetDatum(grp->start);
		values[FC_COL_PERIOD_END] = DateADTGetDatum(grp->end);
		if (c->kind == FC_GROUP_PIPELINE || c->kind == FC_GROUP_FAMILY)
		{
			/* adjustments are made per rep or team, not per pipeline or family */
			for (f = FC_COL_ADJUSTED_COMMIT; f <= FC_COL_ADJUSTED_GAP; f++)
				nulls[f] = true;
		}
		else
		{
			Numeric		adj[FC_NADJUST];
			Numeric		adj_commit_fc,
						adj_best_fc;

			for (f = 0; f < FC_NADJUST; f++)
				adj[f] = sm_numeric_round(grp->adjust[f] == NULL ? r[FC_COMMIT + f]
										  : sm_numeric_add(figs[g][FC_COMMIT + f], grp->adjust[f]),
										  2);
			adj_commit_fc = sm_numeric_add(r[FC_WON], adj[0]);
			adj_best_fc = sm_numeric_add(adj_commit_fc, adj[1]);
			for (f = 0; f < FC_NADJUST; f++)
				values[FC_COL_ADJUSTED_COMMIT + f] = NumericGetDatum(adj[f]);
			values[FC_COL_ADJUSTED_COMMIT_FORECAST] = NumericGetDatum(adj_commit_fc);
			values[FC_COL_ADJUSTED_BEST_CASE_FORECAST] = NumericGetDatum(adj_best_fc);
			if (quota != NULL)
				values[FC_COL_ADJUSTED_GAP] = NumericGetDatum(sm_numeric_sub(quota, adj_commit_fc));
			else
				nulls[FC_COL_ADJUSTED_GAP] = true;
		}
		values[FC_COL_CURRENCY] = DirectFunctionCall3(bpcharin, CStringGetDatum(c->target),
										 ObjectIdGetDatum(InvalidOid), Int32GetDatum(7));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(old);
		MemoryContextReset(row_cxt);
	}

	SPI_finish();
	return (Datum) 0;
}

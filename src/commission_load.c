/*-------------------------------------------------------------------------
 *
 * commission_load.c
 *	  Loading a run's inputs into memory: plans by id, reps and their
 *	  managers, assignments, quotas, draws, exchange rates, SPIFFs, the
 *	  credit of plan periods booked by other runs, and the cursor of
 *	  credited events.
 *
 * The run model and the engine's overview are in commission.h and
 * commission.c.
 *
 *-------------------------------------------------------------------------
 */
#include "commission.h"

CmPlan *
cm_plan_by_id(CmRun *run, int64 plan_id)
{
	int			lo = 0,
				hi = run->nplans - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (run->plans[mid].plan_id == plan_id)
			return &run->plans[mid];
		if (run->plans[mid].plan_id < plan_id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

int
cm_plan_index(CmRun *run, CmPlan *plan)
{
	return (int) (plan - run->plans);
}

CmRep *
cm_rep(CmRun *run, int64 rep_id)
{
	CmRep	   *rep = hash_search(run->reps, &rep_id, HASH_FIND, NULL);

	if (rep == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("rep " INT64_FORMAT " does not exist", rep_id),
				 errdetail("A credited deal, split or commission row refers to it.")));
	return rep;
}

CmPlan *
cm_plan_at(CmRep *rep, DateADT day)
{
	int			i;

	for (i = 0; i < rep->nassign; i++)
		if (rep->assign[i].from <= day && day <= rep->assign[i].to)
			return rep->assign[i].plan;
	return NULL;
}

DateADT
cm_ts_date(TimestampTz ts)
{
	return DatumGetDateADT(DirectFunctionCall1(timestamptz_date, TimestampTzGetDatum(ts)));
}

/* a hash table in cxt keyed by the first keysize bytes of its entries */
HTAB *
cm_hash(const char *name, Size keysize, Size entrysize, long nelem, MemoryContext cxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = cxt;
	return hash_create(name, Max(nelem, 16), &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* ----------------------------------------------------------------------
 * Currency conversion, with salesmgmt.convert_amount's semantics: the
 * latest rate of the pair valid on the day, else division by the latest
 * rate of the reverse pair, else an error naming the pair and the day.
 * ----------------------------------------------------------------------
 */

static CmCurrency *
cm_currency(CmRun *run, const char *code, bool create)
{
	int			i;

	for (i = 0; i < run->ncur; i++)
		if (strcmp(run->cur[i].code, code) == 0)
			return &run->cur[i];
	if (!create)
		return NULL;
	run->cur = repalloc(run->cur, sizeof(CmCurrency) * (run->ncur + 1));
	memset(&run->cur[run->ncur], 0, sizeof(CmCurrency));
	strlcpy(run->cur[run->ncur].code, code, 4);
	return &run->cur[run->ncur++];
}

/* index of the last entry with from <= day, or -1 */
static int
cm_rate_index(DateADT *from, int n, DateADT day)
{
	int			lo = 0,
				hi = n - 1,
				found = -1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (from[mid] <= day)
		{
			found = mid;
			lo = mid + 1;
		}
		else
			hi = mid - 1;
	}
	return found;
}

Numeric
cm_convert(CmRun *run, Numeric amount, const char *code, DateADT day)
{
	CmCurrency *c;
	int			i;

	if (strcmp(code, run->currency) == 0)
		return amount;
	c = cm_currency(run, code, false);
	if (c != NULL)
	{
		if ((i = cm_rate_index(c->direct_from, c->ndirect, day)) >= 0)
			return sm_numeric_mul(amount, c->direct_rate[i]);
		if ((i = cm_rate_index(c->reverse_from, c->nreverse, day)) >= 0)
			return sm_numeric_div(amount, c->reverse_rate[i]);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("no exchange rate from %s to %s on %s", code, run->currency, cm_date_str(day)),
			 errdetail("salesmgmt.currency_rate has no row for this pair (in either direction) valid on or before that date."),
			 errhint("Insert a rate: INSERT INTO salesmgmt.currency_rate (currency, quote_currency, valid_from, rate) VALUES ('%s', '%s', '%s', ...).",
					 code, run->currency, cm_date_str(day))));
	return NULL;				/* keep compiler quiet */
}

void
cm_load_rates(CmRun *run)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(run->currency)};
	SPITupleTable *tt;
	uint64		n,
				i;
	MemoryContext old;

	tt = cm_query("SELECT currency::text, quote_currency::text, valid_from, rate"
				  "  FROM salesmgmt.currency_rate WHERE currency = $1 OR quote_currency = $1"
				  " ORDER BY 1, 2, 3",
				  1, types, values, NULL, false, SPI_OK_SELECT, &n);
	old = MemoryContextSwitchTo(run->run_cxt);
	run->cur = palloc(sizeof(CmCurrency));
	run->ncur = 0;
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		char	   *from = TextDatumGetCString(cm_col(tt, i, 1, &isnull));
		char	   *quote = TextDatumGetCString(cm_col(tt, i, 2, &isnull));
		bool		direct = strcmp(quote, run->currency) == 0;
		CmCurrency *c = cm_currency(run, direct ? from : quote, true);
		int		   *cnt = direct ? &c->ndirect : &c->nreverse;
		DateADT   **days = direct ? &c->direct_from : &c->reverse_from;
		Numeric   **rates = direct ? &c->direct_rate : &c->reverse_rate;

		*days = *cnt == 0 ? palloc(sizeof(DateADT) * n) : *days;
		*rates = *cnt == 0 ? palloc(sizeof(Numeric) * n) : *rates;
		(*days)[*cnt] = DatumGetDateADT(cm_col(tt, i, 3, &isnull));
		(*rates)[*cnt] = cm_col_numeric(tt, i, 4);
		(*cnt)++;
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);
}

/* ----------------------------------------------------------------------
 * Loading the inputs
 * ----------------------------------------------------------------------
 */

void
cm_load_spiffs(CmRun *run)
{
	SPITupleTable *tt;
	uint64		n,
				i;
	MemoryContext old;
	Datum	   *params = NULL;
	int			nparams = 0,
				maxparams = 0;
	StringInfoData sel;

	tt = cm_query("SELECT spiff_id, plan_id, condition, amount, rate,"
				  "       coalesce(valid_from, '-infinity'), coalesce(valid_to, 'infinity')"
				  "  FROM salesmgmt.commission_spiff ORDER BY spiff_id",
				  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	old = MemoryContextSwitchTo(run->run_cxt);
	run->nspiffs = (int) n;
	run->spiffs = palloc0(sizeof(CmSpiff) * Max(n, 1));
	run->plan_nspiffs = palloc0(sizeof(int) * Max(run->nplans, 1));
	run->plan_spiffs = palloc0(sizeof(int *) * Max(run->nplans, 1));

	/*
	 * The match column: for each SPIFF whether to_jsonb(deal) @> condition,
	 * key by key without building the row's JSON: extra by containment,
	 * other columns by equality of their JSON values.  The values are
	 * parameters ($3[k]); the column names come from the catalog check.
	 */
	initStringInfo(&sel);
	appendStringInfoString(&sel, n == 0 ? "NULL::bool[]" : "ARRAY[");
	for (i = 0; i < n; i++)
	{
		CmSpiff    *sp = &run->spiffs[i];
		bool		isnull;
		Jsonb	   *cond;
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *key = NULL;
		int			pi;

		sp->spiff_id = cm_col_int8(tt, i, 1, 0);
		sp->plan = cm_plan_by_id(run, cm_col_int8(tt, i, 2, 0));
		cond = DatumGetJsonbPCopy(cm_col(tt, i, 3, &isnull));
		cm_validate_spiff_condition(cond);
		sp->amount = cm_col_numeric(tt, i, 4);
		sp->rate = cm_col_numeric(tt, i, 5);
		sp->from = DatumGetDateADT(cm_col(tt, i, 6, &isnull));
		sp->to = DatumGetDateADT(cm_col(tt, i, 7, &isnull));

		appendStringInfoString(&sel, i == 0 ? "(true" : ", (true");
		it = JsonbIteratorInit(&cond->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				key = pnstrdup(v.val.string.val, v.val.string.len);
			else if (tok == WJB_VALUE)
			{
				CM_APPEND(run->run_cxt, params, nparams, maxparams);
				params[nparams - 1] = JsonbPGetDatum(JsonbValueToJsonb(&v));
				if (strcmp(key, "extra") == 0)
					appendStringInfo(&sel, " AND d.extra @> $3[%d]", nparams);
				else
					appendStringInfo(&sel, " AND to_jsonb(d.%s) @> $3[%d]", quote_identifier(key), nparams);
			}
		}
		appendStringInfoChar(&sel, ')');
		pi = cm_plan_index(run, sp->plan);
		run->plan_spiffs[pi] = run->plan_nspiffs[pi] == 0
			? palloc(sizeof(int) * n) : run->plan_spiffs[pi];
		run->plan_spiffs[pi][run->plan_nspiffs[pi]++] = (int) i;
	}
	if (n > 0)
		appendStringInfoChar(&sel, ']');
	run->spiff_select = sel.data;
	run->spiff_params = PointerGetDatum(construct_array(params, nparams, JSONBOID, -1, false, TYPALIGN_INT));
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);
}

void
cm_load_reps(CmRun *run)
{
	SPITupleTable *tt;
	uint64		n,
				i;
	HTAB	   *teams;
	typedef struct
	{
		int64		team_id;
		int64		parent;
		int64		manager;
	}			CmTeam;
	HASH_SEQ_STATUS seq;
	CmRep	   *rep;
	MemoryContext old;

	teams = cm_hash("salesmgmt commission teams", sizeof(int64), sizeof(CmTeam), 256, run->tmp_cxt);
	tt = cm_query("SELECT team_id, parent_team_id, manager_rep_id FROM salesmgmt.team",
				  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	for (i = 0; i < n; i++)
	{
		int64		id = cm_col_int8(tt, i, 1, 0);
		CmTeam	   *t = hash_search(teams, &id, HASH_ENTER, NULL);

		t->parent = cm_col_int8(tt, i, 2, 0);
		t->manager = cm_col_int8(tt, i, 3, 0);
	}
	SPI_freetuptable(tt);

	tt = cm_query("SELECT rep_id, team_id FROM salesmgmt.rep",
				  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	run->reps = cm_hash("salesmgmt commission reps", sizeof(int64), sizeof(CmRep), (long) n, run->run_cxt);
	for (i = 0; i < n; i++)
	{
		int64		id = cm_col_int8(tt, i, 1, 0);

		rep = hash_search(run->reps, &id, HASH_ENTER, NULL);
		memset(((char *) rep) + sizeof(int64), 0, sizeof(CmRep) - sizeof(int64));
		rep->team_id = cm_col_int8(tt, i, 2, 0);
	}
	SPI_freetuptable(tt);

	/* managers above each rep, walking up the team tree */
	old = MemoryContextSwitchTo(run->run_cxt);
	hash_seq_init(&seq, run->reps);
	while ((rep = hash_seq_search(&seq)) != NULL)
	{
		int64		team = rep->team_id;
		int			depth = 0;
		CmRep	   *chain[64];

		while (team != 0 && depth++ < 1000)
		{
			CmTeam	   *t = hash_search(teams, &team, HASH_FIND, NULL);

			if (t == NULL)
				break;
			if (t->manager != 0 && t->manager != rep->rep_id)
			{
				CmRep	   *m = hash_search(run->reps, &t->manager, HASH_FIND, NULL);
				int			k;
				bool		seen = false;

				for (k = 0; k < rep->nmanagers; k++)
					seen |= (chain[k] == m);
				if (m != NULL && !seen && rep->nmanagers < (int) lengthof(chain))
					chain[rep->nmanagers++] = m;
			}
			team = t->parent;
		}
		if (rep->nmanagers > 0)
		{
			rep->managers = palloc(sizeof(CmRep *) * rep->nmanagers);
			memcpy(rep->managers, chain, sizeof(CmRep *) * rep->nmanagers);
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(run->tmp_cxt);
}

void
cm_load_assignments(CmRun *run)
{
	SPITupleTable *tt;
	uint64		n,
				i;

	tt = cm_query("SELECT rep_id, plan_id, valid_from, coalesce(valid_to, 'infinity')"
				  "  FROM salesmgmt.commission_assignment ORDER BY rep_id, valid_from",
				  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	for (i = 0; i < n; i++)
	{
		CmRep	   *rep = cm_rep(run, cm_col_int8(tt, i, 1, 0));
		CmAssign   *a;
		bool		isnull;

		CM_APPEND(run->run_cxt, rep->assign, rep->nassign, rep->maxassign);
		a = &rep->assign[rep->nassign - 1];
		a->plan = cm_plan_by_id(run, cm_col_int8(tt, i, 2, 0));
		a->from = DatumGetDateADT(cm_col(tt, i, 3, &isnull));
		a->to = DatumGetDateADT(cm_col(tt, i, 4, &isnull));
		if (a->from <= run->end && a->to >= run->start)
		{
			DateADT		ps,
						pe;

			rep->listed = true;
			if (a->plan->payment_basis)
				run->any_payment = true;
			else
				run->any_booking = true;
			cm_plan_period(a->plan->period, run->start, &ps, &pe);
			if (ps != run->start)
				run->aligned = false;
			cm_plan_period(a->plan->period, run->end, &ps, &pe);
			if (pe != run->end)
				run->aligned = false;
		}
		else if (run->nfinal > 0)
		{
			/* corrections of finalized periods may need any plan's events */
			if (a->plan->payment_basis)
				run->any_payment = true;
			else
				run->any_booking = true;
		}
	}
	SPI_freetuptable(tt);
}

/* quotas, converted to the reporting currency at their first day */
void
cm_load_quotas(CmRun *run)
{
	SPITupleTable *tt;
	uint64		n,
				i;
	MemoryContext old;

	tt = cm_query("SELECT rep_id, period_start, period_end, amount, currency::text"
				  "  FROM salesmgmt.quota WHERE rep_id IS NOT NULL ORDER BY rep_id, period_start",
				  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	old = MemoryContextSwitchTo(run->run_cxt);
	for (i = 0; i < n; i++)
	{
		CmRep	   *rep = cm_rep(run, cm_col_int8(tt, i, 1, 0));
		CmQuota    *q;
		bool		isnull;
		char	   *code;

		if (rep->nassign == 0)
			continue;			/* no plan, no tiers: its quota is not needed */
		CM_APPEND(run->run_cxt, rep->quota, rep->nquota, rep->maxquota);
		q = &rep->quota[rep->nquota - 1];
		q->start = DatumGetDateADT(cm_col(tt, i, 2, &isnull));
		q->end = DatumGetDateADT(cm_col(tt, i, 3, &isnull));
		code = TextDatumGetCString(cm_col(tt, i, 5, &isnull));
		q->amount = cm_convert(run, cm_col_numeric(tt, i, 4), code, q->start);
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);
}

/*
 * The quota of a rep for the days [from, to]: the rep's quota rows that
 * overlap them, each prorated by the days of overlap and rounded to cents.
 * NULL if no row overlaps.
 */
Numeric
cm_quota_for(CmRep *rep, DateADT from, DateADT to)
{
	Numeric		sum = NULL;
	int			i;

	for (i = 0; i < rep->nquota; i++)
	{
		CmQuota    *q = &rep->quota[i];
		int			overlap = Min(q->end, to) - Max(q->start, from) + 1;
		int			days = q->end - q->start + 1;
		Numeric		part;

		if (overlap <= 0)
			continue;
		part = q->amount;
		if (overlap < days)
			part = sm_numeric_div(sm_numeric_mul(part, int64_to_numeric(overlap)),
								  int64_to_numeric(days));
		part = sm_numeric_round(part, 2);
		sum = sum == NULL ? part : sm_numeric_add(sum, part);
	}
	return sum;
}

void
cm_load_draws(CmRun *run)
{
	Oid			types[2] = {DATEOID, DATEOID};
	Datum		values[2] = {DateADTGetDatum(run->start), DateADTGetDatum(run->end)};
	SPITupleTable *tt;
	uint64		n,
				i;
	MemoryContext old = CurrentMemoryContext;

	tt = cm_query("SELECT draw_id, rep_id, amount, recoverable FROM salesmgmt.commission_draw"
				  " WHERE period_end BETWEEN $1 AND $2 ORDER BY rep_id, period_end, draw_id",
				  2, types, values, NULL, false, SPI_OK_SELECT, &n);
	MemoryContextSwitchTo(run->run_cxt);
	for (i = 0; i < n; i++)
	{
		CmRep	   *rep = cm_rep(run, cm_col_int8(tt, i, 2, 0));
		CmDraw	   *d;
		bool		isnull;

		CM_APPEND(run->run_cxt, rep->draws, rep->ndraws, rep->maxdraws);
		d = &rep->draws[rep->ndraws - 1];
		d->draw_id = cm_col_int8(tt, i, 1, 0);
		d->amount = cm_col_numeric(tt, i, 3);
		d->recoverable = DatumGetBool(cm_col(tt, i, 4, &isnull));
		rep->listed = true;
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);

	/* recoverable draws advanced and not yet recovered, by earlier runs */
	tt = cm_query("SELECT rep_id, sum(amount) FROM salesmgmt.commission_line"
				  " WHERE kind = 'draw' AND recoverable GROUP BY rep_id HAVING sum(amount) > 0",
				  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	MemoryContextSwitchTo(run->run_cxt);
	for (i = 0; i < n; i++)
	{
		CmRep	   *rep = cm_rep(run, cm_col_int8(tt, i, 1, 0));

		rep->draw_balance = cm_col_numeric(tt, i, 2);
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);
}

/*
 * Credit of plan periods booked by other runs: what an earlier run of a
 * plan period that this run only partly covers credited (a quarterly plan
 * run monthly), and the credit of finalized plan periods that corrections
 * continue from.
 */
void
cm_load_prior(CmRun *run)
{
	Oid			types[2] = {DATEOID, TIMESTAMPTZOID};
	Datum		values[2] = {DateADTGetDatum(run->start), TimestampTzGetDatum(run->start_ts)};
	SPITupleTable *tt;
	uint64		n,
				i;

	run->prior = cm_hash("salesmgmt commission prior credit", sizeof(CmPriorKey), sizeof(CmPrior),
						 256, run->run_cxt);
	if (run->aligned && run->nfinal == 0)
		return;
	tt = cm_query("SELECT l.rep_id, l.plan_id, l.plan_period_start, sum(l.credit)"
				  "  FROM salesmgmt.commission_line l"
				  " WHERE l.kind IN ('earned', 'adjustment') AND l.spiff_id IS NULL"
				  "   AND l.source_rep_id IS NULL AND l.credit IS NOT NULL"
				  "   AND ((l.plan_period_start < $1 AND l.plan_period_end >= $1 AND l.credited_at < $2)"
				  "        OR EXISTS (SELECT 1 FROM salesmgmt.commission_period f"
				  "                    WHERE f.status = 'final' AND l.credited_at >= f.period_start"
				  "                      AND l.credited_at < f.period_end + 1))"
				  " GROUP BY 1, 2, 3",
				  2, types, values, NULL, false, SPI_OK_SELECT, &n);
	for (i = 0; i < n; i++)
	{
		CmPriorKey	key;
		CmPrior    *p;
		bool		isnull;

		memset(&key, 0, sizeof(key));
		key.rep_id = cm_col_int8(tt, i, 1, 0);
		key.plan_id = cm_col_int8(tt, i, 2, 0);
		key.pstart = DatumGetDateADT(cm_col(tt, i, 3, &isnull));
		p = hash_search(run->prior, &key, HASH_ENTER, NULL);
		p->credit = cm_copy(run->run_cxt, DatumGetNumeric(cm_col(tt, i, 4, &isnull)));
	}
	SPI_freetuptable(tt);
}

/* ----------------------------------------------------------------------
 * Reading credited events
 * ----------------------------------------------------------------------
 */

/*
 * The credited events: won deals (booking) and payments and refunds
 * (payment basis), one row per credited rep (split), with the SPIFF match
 * column.  Either of the period ($1, $2) ordered by rep and time, or of
 * the finalized periods ordered by rep, deal and payment.
 */
static char *
cm_events_sql(CmRun *run, bool finalized)
{
	StringInfoData q;

	initStringInfo(&q);
	if (run->any_booking)
	{
		appendStringInfo(&q,
						 "SELECT coalesce(s.rep_id, d.owner_rep_id), d.deal_id, NULL::int8, d.closed_at,"
						 "       d.closed_at::date, d.amount, d.currency::text, coalesce(s.share, 1::numeric),"
						 "       1, NULL::numeric, %s"
						 "  FROM salesmgmt.deal d"
						 "  JOIN salesmgmt.stage st ON st.stage_id = d.stage_id AND st.outcome = 'won'"
						 "  LEFT JOIN salesmgmt.deal_split s ON s.deal_id = d.deal_id"
						 " WHERE %s",
						 run->spiff_select,
						 finalized ?
						 "EXISTS (SELECT 1 FROM salesmgmt.commission_period f WHERE f.status = 'final'"
						 " AND d.closed_at >= f.period_start AND d.closed_at < f.period_end + 1)" :
						 "d.closed_at >= $1 AND d.closed_at < $2");
	}
	if (run->any_payment)
	{
		if (run->any_booking)
			appendStringInfoString(&q, " UNION ALL ");
		appendStringInfo(&q,
						 "SELECT coalesce(s.rep_id, d.owner_rep_id), p.deal_id, p.payment_id, p.paid_at,"
						 "       p.paid_at::date, p.amount, p.currency::text, coalesce(s.share, 1::numeric),"
						 "       CASE p.kind WHEN 'refund' THEN -1 ELSE 1 END,"
						 "       CASE WHEN d.amount > 0 THEN (CASE WHEN p.currency = d.currency THEN p.amount"
						 "            ELSE salesmgmt.convert_amount(p.amount, p.currency, d.currency, p.paid_at::date)"
						 "            END) / d.amount END, %s"
						 "  FROM salesmgmt.payment p"
						 "  JOIN salesmgmt.deal d ON d.deal_id = p.deal_id"
						 "  LEFT JOIN salesmgmt.deal_split s ON s.deal_id = d.deal_id"
						 " WHERE %s",
						 run->spiff_select,
						 finalized ?
						 "EXISTS (SELECT 1 FROM salesmgmt.commission_period f WHERE f.status = 'final'"
						 " AND p.paid_at >= f.period_start AND p.paid_at < f.period_end + 1)" :
						 "p.paid_at >= $1 AND p.paid_at < $2");
	}
	appendStringInfoString(&q, finalized ? " ORDER BY 1, 2, 3 NULLS FIRST" : " ORDER BY 1, 4, 2, 3 NULLS FIRST");
	return q.data;
}

Portal
cm_events_open(CmRun *run, bool finalized)
{
	Oid			types[3] = {TIMESTAMPTZOID, TIMESTAMPTZOID, JSONBARRAYOID};
	Datum		values[3] = {TimestampTzGetDatum(run->start_ts), TimestampTzGetDatum(run->end_ts),
	run->spiff_params};

	return cm_cursor_open(cm_events_sql(run, finalized), 3, types, values, NULL);
}

/* an event from a deformed events row; data used later is copied into
 * the current context */
void
cm_event_from_row(CmRun *run, Datum *v, bool *isnull, CmEvent *ev)
{
	text	   *cur;
	int			len;

	ev->deal_id = DatumGetInt64(v[1]);
	ev->payment = !isnull[2];
	ev->payment_id = ev->payment ? DatumGetInt64(v[2]) : 0;
	ev->at = DatumGetTimestampTz(v[3]);
	ev->day = DatumGetDateADT(v[4]);
	ev->amount = DatumGetNumeric(v[5]);
	cur = DatumGetTextPP(v[6]);
	len = Min(VARSIZE_ANY_EXHDR(cur), 3);
	memcpy(ev->currency, VARDATA_ANY(cur), len);
	ev->currency[len] = '\0';
	ev->share = DatumGetNumericCopy(v[7]);
	ev->sign = DatumGetInt32(v[8]);
	ev->fraction = isnull[9] ? NULL : DatumGetNumeric(v[9]);
	ev->spiff_match = NULL;
	if (!isnull[10])
	{
		ArrayType  *arr = DatumGetArrayTypeP(v[10]);

		if (ARR_HASNULL(arr) || ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr)) != run->nspiffs)
			elog(ERROR, "unexpected SPIFF match array");
		/* no nulls: the data follow the fixed header */
		ev->spiff_match = (bool *) ((char *) arr + ARR_OVERHEAD_NONULLS(ARR_NDIM(arr)));
	}
}

bool
cm_reader_next(CmReader *r)
{
	if (r->tt != NULL && r->i + 1 < r->n)
		r->i++;
	else
	{
		if (r->tt != NULL)
			SPI_freetuptable(r->tt);
		r->tt = cm_fetch(r->portal, &r->n);
		r->i = 0;
		if (r->n == 0)
		{
			SPI_freetuptable(r->tt);
			r->tt = NULL;
			return false;
		}
	}
	heap_deform_tuple(r->tt->vals[r->i], r->tt->tupdesc, r->v, r->isnull);
	return true;
}


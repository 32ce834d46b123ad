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
#include "org_history.h"
#include "rules.h"

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

/* the rates to and from the reporting currency (core_currency.c converts) */
void
cm_load_rates(CmRun *run)
{
	MemoryContext old = MemoryContextSwitchTo(run->run_cxt);

	/* not read-only, as every query of a run: a new snapshot */
	sm_rates_load(&run->rates, run->currency, DATEVAL_NOBEGIN, DATEVAL_NOEND, false);
	MemoryContextSwitchTo(old);
}

/* ----------------------------------------------------------------------
 * Loading the inputs
 * ----------------------------------------------------------------------
 */

/*
 * Whether a SPIFF condition is of the 0.1.0 form (deal columns equal to
 * scalars, extra containing an object without operators): matched by
 * containment in SQL, as 0.1.0 did, so that the library keeps working on a
 * database not yet updated (rule_matches_row is new in 0.2.0).
 */
static bool
cm_spiff_plain(JsonbContainer *c, bool nested)
{
	JsonbIterator *it = JsonbIteratorInit(c);
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		extra = false;

	while ((tok = JsonbIteratorNext(&it, &v, !nested)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *key = pnstrdup(v.val.string.val, v.val.string.len);

			if (strcmp(key, "all") == 0 || strcmp(key, "any") == 0 || strcmp(key, "not") == 0 ||
				strcmp(key, "in") == 0 || strspn(key, "<>=") == strlen(key))
				return false;
			extra = !nested && strcmp(key, "extra") == 0;
		}
		else if (tok == WJB_VALUE && !nested)
		{
			if (v.type == jbvBinary &&
				(!extra || !JsonContainerIsObject(v.val.binary.data) ||
				 !cm_spiff_plain(v.val.binary.data, true)))
				return false;
		}
	}
	return true;
}

/*
 * The EXISTS tests of a SPIFF condition's product keys (product_family,
 * product_sku, product_id at its top level: the deal has a line of such a
 * product; the value is one or an array of them), appended to sel with
 * their values as parameters.
 */
static void
cm_spiff_product_tests(CmRun *run, Jsonb *cond, StringInfo sel,
					   Datum **params, int *nparams, int *maxparams)
{
	JsonbIterator *it = JsonbIteratorInit(&cond->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	const char *column = NULL;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *key = pnstrdup(v.val.string.val, v.val.string.len);

			column = cm_spiff_product_column(key);
		}
		else if (tok == WJB_VALUE && column != NULL)
		{
			CM_APPEND(run->run_cxt, *params, *nparams, *maxparams);
			(*params)[*nparams - 1] = JsonbPGetDatum(JsonbValueToJsonb(&v));
			appendStringInfo(sel, " AND EXISTS (SELECT 1 FROM salesmgmt.deal_line l"
							 " JOIN salesmgmt.product p ON p.product_id = l.product_id"
							 " WHERE l.deal_id = d.deal_id AND $3[%d] @> to_jsonb(p.%s))",
							 *nparams, column);
		}
	}
}

/*
 * A SPIFF condition without its product keys: what is left is a condition
 * of the rule language on the deal row.
 */
Jsonb *
cm_spiff_without_products(Jsonb *cond)
{
	JsonbParseState *state = NULL;
	JsonbIterator *it = JsonbIteratorInit(&cond->root);
	JsonbValue	v;
	JsonbValue *result = NULL;
	JsonbIteratorToken tok;
	bool		skip = false;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *key = pnstrdup(v.val.string.val, v.val.string.len);

			skip = cm_spiff_product_column(key) != NULL;
			if (!skip)
				result = pushJsonbValue(&state, tok, &v);
		}
		else if (tok == WJB_VALUE)
		{
			if (!skip)
				result = pushJsonbValue(&state, tok, &v);
		}
		else
			result = pushJsonbValue(&state, tok, tok < WJB_BEGIN_ARRAY ? &v : NULL);
	}
	return JsonbValueToJsonb(result);
}

/*
 * A key of a 0.1.0-form SPIFF condition matched in C, if its column's type
 * allows (else false: it stays in SQL).  The column is read from the
 * events row after its CM_EVENT_COLS (run->spiff_cols).
 */
static bool
cm_spiff_add_test(CmRun *run, Oid deal_relid, CmSpiff *sp, const char *key, JsonbValue *v)
{
	AttrNumber	attnum = get_attnum(deal_relid, key);
	CmSpiffTest *t;
	CmTestKind	kind;
	Oid			typid;
	int			col;

	if (attnum <= 0)
		return false;
	typid = get_atttype(deal_relid, attnum);
	switch (typid)
	{
		case JSONBOID:
			kind = CM_TEST_JSONB;
			break;
		case INT2OID:
		case INT4OID:
		case INT8OID:
			kind = CM_TEST_INT;
			break;
		case NUMERICOID:
			kind = CM_TEST_NUMERIC;
			break;
		case BOOLOID:
			kind = CM_TEST_BOOL;
			break;
		case TEXTOID:
		case VARCHAROID:
			kind = CM_TEST_TEXT;
			break;
		default:
			return false;		/* to_jsonb's text forms: left to SQL */
	}
	for (col = 0; col < run->spiff_ncols; col++)
		if (strcmp(run->spiff_cols[col], key) == 0)
			break;
	if (col == CM_SPIFF_MAXCOLS)
		return false;
	if (col == run->spiff_ncols)
		run->spiff_cols[run->spiff_ncols++] = pstrdup(key);

	sp->tests = sp->ntests == 0 ? palloc0(sizeof(CmSpiffTest))
		: repalloc(sp->tests, sizeof(CmSpiffTest) * (sp->ntests + 1));
	t = &sp->tests[sp->ntests++];
	memset(t, 0, sizeof(*t));
	t->col = CM_EVENT_COLS + col;
	t->kind = kind;
	t->typid = typid;
	t->null_is_json = strcmp(key, "extra") != 0;
	t->value = JsonbValueToJsonb(v);
	t->scalar = JsonbExtractScalar(&t->value->root, &t->sv);
	if (t->scalar && t->sv.type == jbvNumeric && kind == CM_TEST_INT &&
		!numeric_is_nan(t->sv.val.numeric) && !numeric_is_inf(t->sv.val.numeric))
	{
		/* integral and within int64: its text is all digits */
		char	   *txt = sm_numeric_to_cstring(t->sv.val.numeric);
		char	   *end;

		errno = 0;
		t->i64 = strtoll(txt, &end, 10);
		t->int_ok = errno == 0 && end != txt && *end == '\0';
	}
	return true;
}

/*
 * Whether a deal column matches a SPIFF test as the SQL it replaces would
 * (jsonb_contains on to_jsonb of the column): a scalar column holds only
 * an equal scalar.
 */
static bool
cm_spiff_test(CmRun *run, CmSpiffTest *t, Datum d, bool isnull)
{
	JsonbValue *sv = &t->sv;

	if (t->kind == CM_TEST_JSONB)
	{
		if (isnull && !t->null_is_json)
			return false;		/* deal.extra is NOT NULL */
		return DatumGetBool(DirectFunctionCall2(jsonb_contains,
												isnull ? JsonbPGetDatum(run->json_null) : d,
												JsonbPGetDatum(t->value)));
	}
	if (!t->scalar)
		return false;
	if (isnull)
		return sv->type == jbvNull;
	switch (t->kind)
	{
		case CM_TEST_INT:
			{
				int64		i = t->typid == INT8OID ? DatumGetInt64(d)
					: t->typid == INT4OID ? DatumGetInt32(d) : DatumGetInt16(d);

				if (t->int_ok)
					return i == t->i64;
				return sv->type == jbvNumeric &&
					sm_numeric_cmp(int64_to_numeric(i), sv->val.numeric) == 0;
			}
		case CM_TEST_NUMERIC:
			{
				Numeric		x = DatumGetNumeric(d);

				if (numeric_is_nan(x) || numeric_is_inf(x))
				{
					char	   *txt = sm_numeric_to_cstring(x);

					return sv->type == jbvString && (size_t) sv->val.string.len == strlen(txt) &&
						memcmp(sv->val.string.val, txt, sv->val.string.len) == 0;
				}
				return sv->type == jbvNumeric && sm_numeric_cmp(x, sv->val.numeric) == 0;
			}
		case CM_TEST_BOOL:
			return sv->type == jbvBool && sv->val.boolean == DatumGetBool(d);
		case CM_TEST_TEXT:
			{
				text	   *txt = DatumGetTextPP(d);

				return sv->type == jbvString && (size_t) sv->val.string.len == VARSIZE_ANY_EXHDR(txt) &&
					memcmp(sv->val.string.val, VARDATA_ANY(txt), sv->val.string.len) == 0;
			}
		case CM_TEST_JSONB:
			break;
	}
	return false;
}

/* whether an event's deal passes the keys of a SPIFF matched in C */
bool
cm_spiff_tests_pass(CmRun *run, CmSpiff *sp, CmEvent *ev)
{
	int			i;

	for (i = 0; i < sp->ntests; i++)
	{
		CmSpiffTest *t = &sp->tests[i];

		if (!cm_spiff_test(run, t, ev->row[t->col], ev->rownull[t->col]))
			return false;
	}
	return true;
}

/*
 * SPIFFs per plan, with their conditions in the rule language (rules.c).
 * A condition in the 0.1.0 form (deal columns equal to values, extra by
 * containment) is matched key by key in C on the deal's columns, which the
 * events query returns after its own; what C does not match goes into the
 * events query's SPIFF match column: one salesmgmt.rule_matches_row call
 * per SPIFF with operators on the deal row, the conditions passed as a
 * jsonb[] parameter (each call compiles its condition once).
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
	Oid			deal_relid = sm_relation_oid("deal");

	tt = sm_spi_query("SELECT spiff_id, plan_id, condition, amount, rate,"
					  "       coalesce(valid_from, '-infinity'), coalesce(valid_to, 'infinity')"
					  "  FROM salesmgmt.commission_spiff ORDER BY spiff_id",
					  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	old = MemoryContextSwitchTo(run->run_cxt);
	run->nspiffs = (int) n;
	run->spiffs = palloc0(sizeof(CmSpiff) * Max(n, 1));
	run->plan_nspiffs = palloc0(sizeof(int) * Max(run->nplans, 1));
	run->plan_spiffs = palloc0(sizeof(int *) * Max(run->nplans, 1));
	run->spiff_cols = palloc0(sizeof(char *) * CM_SPIFF_MAXCOLS);
	run->json_null = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("null")));

	/*
	 * The match column: for each SPIFF whether the deal matches what of its
	 * condition C does not match.  Product keys (product_family,
	 * product_sku, product_id, at the top level) ask for a line of such a
	 * product: an EXISTS over the deal's lines.  The rest is a condition of
	 * the rule language: without operators it is to_jsonb(deal) @>
	 * condition, as in 0.1.0, matched key by key without building the row's
	 * JSON (extra by containment, other columns by equality of their JSON
	 * values: in C for columns of jsonb, integer, numeric, boolean and text
	 * types, else in SQL); with operators rules.c evaluates it on the row.
	 * The values are parameters ($3[k]); the column names come from the
	 * catalog check made when the condition was written.
	 */
	initStringInfo(&sel);
	appendStringInfoString(&sel, "ARRAY[");
	for (i = 0; i < n; i++)
	{
		CmSpiff    *sp = &run->spiffs[i];
		bool		isnull;
		Jsonb	   *cond;
		int			pi;
		int			len;

		sp->spiff_id = sm_spi_int64(tt->vals[i], tt->tupdesc, 1, 0);
		sp->plan = cm_plan_by_id(run, sm_spi_int64(tt->vals[i], tt->tupdesc, 2, 0));
		cond = DatumGetJsonbPCopy(sm_spi_col(tt, i, 3, &isnull));
		/* validated when written (a column dropped since never matches) */
		sm_rule_compile(cm_spiff_without_products(cond), InvalidOid, "SPIFF condition");
		sp->amount = sm_spi_numeric(tt->vals[i], tt->tupdesc, 4);
		sp->rate = sm_spi_numeric(tt->vals[i], tt->tupdesc, 5);
		sp->from = DatumGetDateADT(sm_spi_col(tt, i, 6, &isnull));
		sp->to = DatumGetDateADT(sm_spi_col(tt, i, 7, &isnull));

		appendStringInfoString(&sel, i == 0 ? "(true" : ", (true");
		len = sel.len;
		cm_spiff_product_tests(run, cond, &sel, &params, &nparams, &maxparams);
		cond = cm_spiff_without_products(cond);
		if (cm_spiff_plain(&cond->root, false))
		{
			JsonbIterator *it = JsonbIteratorInit(&cond->root);
			JsonbValue	v;
			JsonbIteratorToken tok;
			char	   *key = NULL;

			while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
			{
				if (tok == WJB_KEY)
					key = pnstrdup(v.val.string.val, v.val.string.len);
				else if (tok == WJB_VALUE && !cm_spiff_add_test(run, deal_relid, sp, key, &v))
				{
					CM_APPEND(run->run_cxt, params, nparams, maxparams);
					params[nparams - 1] = JsonbPGetDatum(JsonbValueToJsonb(&v));
					if (strcmp(key, "extra") == 0)
						appendStringInfo(&sel, " AND d.extra @> $3[%d]", nparams);
					else
						appendStringInfo(&sel, " AND coalesce(to_jsonb(d.%s), 'null') @> $3[%d]",
										 quote_identifier(key), nparams);
				}
			}
		}
		else
		{
			CM_APPEND(run->run_cxt, params, nparams, maxparams);
			params[nparams - 1] = JsonbPGetDatum(cond);
			appendStringInfo(&sel, " AND salesmgmt.rule_matches_row($3[%d], d)", nparams);
		}
		run->spiff_sql |= sel.len > len;
		appendStringInfoChar(&sel, ')');
		pi = cm_plan_index(run, sp->plan);
		run->plan_spiffs[pi] = run->plan_nspiffs[pi] == 0
			? palloc(sizeof(int) * n) : run->plan_spiffs[pi];
		run->plan_spiffs[pi][run->plan_nspiffs[pi]++] = (int) i;
	}
	appendStringInfoChar(&sel, ']');
	/* nothing for SQL to match: no match column */
	run->spiff_select = run->spiff_sql ? sel.data : "NULL::bool[]";
	run->spiff_params = PointerGetDatum(construct_array(params, nparams, JSONBOID, -1, false, TYPALIGN_INT));
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);
}

/*
 * Every rep into the run's hash table, with its managers by day: the
 * managers of the rep's team and of every team above it, nearest first,
 * each once, never the rep itself (overrides go to them).  The
 * organisation comes from the one loader (org_history.c): one epoch per
 * day on which it changed, the last one today's rows.
 */
void
cm_load_reps(CmRun *run)
{
	MemoryContext old = MemoryContextSwitchTo(run->tmp_cxt);
	SmOrg	   *org = sm_org_tree_load(true, false);
	DateADT    *days;
	int			ndays = sm_org_tree_change_days(org, &days);
	CmRep	  **index;
	int			i,
				e;

	MemoryContextSwitchTo(run->run_cxt);
	run->reps = cm_hash("salesmgmt commission reps", sizeof(int64), sizeof(CmRep),
						Max(org->nreps, 1), run->run_cxt);
	index = MemoryContextAlloc(run->tmp_cxt, sizeof(CmRep *) * Max(org->nreps, 1));
	for (i = 0; i < org->nreps; i++)
	{
		CmRep	   *rep = hash_search(run->reps, &org->reps[i].rep_id, HASH_ENTER, NULL);

		memset(((char *) rep) + sizeof(int64), 0, sizeof(CmRep) - sizeof(int64));
		rep->team_id = org->reps[i].cur_team;
		index[i] = rep;
	}

	/* epoch -1: the first versions (only when something changed since) */
	for (e = (ndays > 0 ? -1 : ndays - 1); e < ndays; e++)
	{
		DateADT		from = e < 0 ? DATEVAL_NOBEGIN : days[e];

		sm_org_tree_at(org, e < ndays - 1, from);
		for (i = 0; i < org->nreps; i++)
		{
			CmRep	   *rep = index[i];
			CmEpoch    *last = rep->nepochs > 0 ? &rep->epochs[rep->nepochs - 1] : NULL;
			int64		ids[64];
			CmRep	   *chain[64];
			int			n = sm_org_tree_managers(org, i, ids, (int) lengthof(ids));
			int			k;

			for (k = 0; k < n; k++)
				chain[k] = hash_search(run->reps, &ids[k], HASH_FIND, NULL);
			if (last != NULL && last->nmanagers == n &&
				(n == 0 || memcmp(last->managers, chain, sizeof(CmRep *) * n) == 0))
				continue;
			rep->epochs = rep->nepochs == 0 ? palloc(sizeof(CmEpoch))
				: repalloc(rep->epochs, sizeof(CmEpoch) * (rep->nepochs + 1));
			last = &rep->epochs[rep->nepochs++];
			last->from = rep->nepochs == 1 ? DATEVAL_NOBEGIN : from;
			last->nmanagers = n;
			last->managers = n > 0 ? palloc(sizeof(CmRep *) * n) : NULL;
			if (n > 0)
				memcpy(last->managers, chain, sizeof(CmRep *) * n);
		}
	}
	for (i = 0; i < org->nreps; i++)
	{
		CmRep	   *rep = index[i];

		rep->nmanagers = rep->epochs[rep->nepochs - 1].nmanagers;
		rep->managers = rep->epochs[rep->nepochs - 1].managers;
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(run->tmp_cxt);
}

/* the managers above rep on day: those of the epoch holding it */
int
cm_managers_at(CmRep *rep, DateADT day, CmRep ***managers)
{
	int			e = rep->nepochs - 1;

	while (e > 0 && rep->epochs[e].from > day)
		e--;
	if (e < 0)
	{
		*managers = rep->managers;
		return rep->nmanagers;
	}
	*managers = rep->epochs[e].managers;
	return rep->epochs[e].nmanagers;
}

/* every rep's plan assignments, by valid_from (plan_at looks them up) */
void
cm_load_assignments(CmRun *run)
{
	SPITupleTable *tt;
	uint64		n,
				i;

	tt = sm_spi_query("SELECT rep_id, plan_id, valid_from, coalesce(valid_to, 'infinity')"
					  "  FROM salesmgmt.commission_assignment ORDER BY rep_id, valid_from",
					  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	for (i = 0; i < n; i++)
	{
		CmRep	   *rep = cm_rep(run, sm_spi_int64(tt->vals[i], tt->tupdesc, 1, 0));
		CmAssign   *a;
		bool		isnull;

		CM_APPEND(run->run_cxt, rep->assign, rep->nassign, rep->maxassign);
		a = &rep->assign[rep->nassign - 1];
		a->plan = cm_plan_by_id(run, sm_spi_int64(tt->vals[i], tt->tupdesc, 2, 0));
		a->from = DatumGetDateADT(sm_spi_col(tt, i, 3, &isnull));
		a->to = DatumGetDateADT(sm_spi_col(tt, i, 4, &isnull));
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

/*
 * quotas, converted to the reporting currency at their first day; the
 * quota of a period that is over as it was at its end (quota_of_record,
 * src/quota_as_of.sql: a quota changed or deleted after its period does
 * not change a rerun of that period's commissions).  Only the
 * all-products targets count: a product family's quota is a part of the
 * rep's target, measured by quota_attainment and forecast per family, and
 * adding it would count the same sales twice in the attainment that picks
 * the tier.
 */
void
cm_load_quotas(CmRun *run)
{
	SPITupleTable *tt;
	uint64		n,
				i;
	MemoryContext old;

	tt = sm_spi_query(sm_sql_is_current() ?
					  psprintf("SELECT rep_id, period_start, period_end, amount, currency::text, measure = 'new_arr'"
							   "  FROM salesmgmt.%s"
							   " WHERE rep_id IS NOT NULL AND product_family IS NULL"
							   " ORDER BY rep_id, period_start",
							   sm_quota_of_record_present() ? "quota_of_record" : "quota") :
					  "SELECT rep_id, period_start, period_end, amount, currency::text, false"
					  "  FROM salesmgmt.quota WHERE rep_id IS NOT NULL ORDER BY rep_id, period_start",
					  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	old = MemoryContextSwitchTo(run->run_cxt);
	for (i = 0; i < n; i++)
	{
		CmRep	   *rep = cm_rep(run, sm_spi_int64(tt->vals[i], tt->tupdesc, 1, 0));
		CmQuota    *q;
		bool		isnull;
		char	   *code;

		if (rep->nassign == 0)
			continue;			/* no plan, no tiers: its quota is not needed */
		CM_APPEND(run->run_cxt, rep->quota, rep->nquota, rep->maxquota);
		q = &rep->quota[rep->nquota - 1];
		q->start = DatumGetDateADT(sm_spi_col(tt, i, 2, &isnull));
		q->end = DatumGetDateADT(sm_spi_col(tt, i, 3, &isnull));
		code = TextDatumGetCString(sm_spi_col(tt, i, 5, &isnull));
		q->amount = sm_rates_convert(&run->rates, sm_spi_numeric(tt->vals[i], tt->tupdesc, 4), code, q->start);
		q->new_arr = DatumGetBool(sm_spi_col(tt, i, 6, &isnull));
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);
}

/*
 * The quota of a rep for the days [from, to]: the rep's quota rows of the
 * plan's measure (booked or new ARR) that overlap them, each prorated by
 * the days of overlap and rounded to cents.  NULL if no row overlaps.
 */
Numeric
cm_quota_for(CmRep *rep, DateADT from, DateADT to, bool new_arr)
{
	Numeric		sum = NULL;
	int			i;

	for (i = 0; i < rep->nquota; i++)
	{
		CmQuota    *q = &rep->quota[i];
		int			overlap = Min(q->end, to) - Max(q->start, from) + 1;
		int			days = q->end - q->start + 1;
		Numeric		part;

		if (overlap <= 0 || q->new_arr != new_arr)
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

/* the draws of the period per rep, and each rep's outstanding recoverable
 * draw balance from earlier periods */
void
cm_load_draws(CmRun *run)
{
	Oid			types[2] = {DATEOID, DATEOID};
	Datum		values[2] = {DateADTGetDatum(run->start), DateADTGetDatum(run->end)};
	SPITupleTable *tt;
	uint64		n,
				i;
	MemoryContext old = CurrentMemoryContext;

	tt = sm_spi_query("SELECT draw_id, rep_id, amount, recoverable FROM salesmgmt.commission_draw"
					  " WHERE period_end BETWEEN $1 AND $2 ORDER BY rep_id, period_end, draw_id",
					  2, types, values, NULL, false, SPI_OK_SELECT, &n);
	MemoryContextSwitchTo(run->run_cxt);
	for (i = 0; i < n; i++)
	{
		CmRep	   *rep = cm_rep(run, sm_spi_int64(tt->vals[i], tt->tupdesc, 2, 0));
		CmDraw	   *d;
		bool		isnull;

		CM_APPEND(run->run_cxt, rep->draws, rep->ndraws, rep->maxdraws);
		d = &rep->draws[rep->ndraws - 1];
		d->draw_id = sm_spi_int64(tt->vals[i], tt->tupdesc, 1, 0);
		d->amount = sm_spi_numeric(tt->vals[i], tt->tupdesc, 3);
		d->recoverable = DatumGetBool(sm_spi_col(tt, i, 4, &isnull));
		rep->listed = true;
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);

	/* recoverable draws advanced and not yet recovered, by earlier runs */
	tt = sm_spi_query("SELECT rep_id, sum(amount) FROM salesmgmt.commission_line"
					  " WHERE kind = 'draw' AND recoverable GROUP BY rep_id HAVING sum(amount) > 0",
					  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	MemoryContextSwitchTo(run->run_cxt);
	for (i = 0; i < n; i++)
	{
		CmRep	   *rep = cm_rep(run, sm_spi_int64(tt->vals[i], tt->tupdesc, 1, 0));

		rep->draw_balance = sm_spi_numeric(tt->vals[i], tt->tupdesc, 2);
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
	tt = sm_spi_query("SELECT l.rep_id, l.plan_id, l.plan_period_start, sum(l.credit),"
					  "       coalesce(sum(l.earned_after - l.earned_before), 0)"
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
		key.rep_id = sm_spi_int64(tt->vals[i], tt->tupdesc, 1, 0);
		key.plan_id = sm_spi_int64(tt->vals[i], tt->tupdesc, 2, 0);
		key.pstart = DatumGetDateADT(sm_spi_col(tt, i, 3, &isnull));
		p = hash_search(run->prior, &key, HASH_ENTER, NULL);
		p->credit = sm_numeric_copy(run->run_cxt, DatumGetNumeric(sm_spi_col(tt, i, 4, &isnull)));
		p->earned = sm_numeric_copy(run->run_cxt, DatumGetNumeric(sm_spi_col(tt, i, 5, &isnull)));
	}
	SPI_freetuptable(tt);
}

/* ----------------------------------------------------------------------
 * Reading credited events
 * ----------------------------------------------------------------------
 */

/* the line amounts of deal d by product family, a jsonb object */
#define CM_LINES_BY_FAMILY \
	"(SELECT jsonb_object_agg(x.family, x.amount) FROM (SELECT p.family, sum(l.line_amount) AS amount" \
	" FROM salesmgmt.deal_line l JOIN salesmgmt.product p ON p.product_id = l.product_id" \
	" WHERE l.deal_id = d.deal_id GROUP BY p.family) x)"

/*
 * Whether a rep has a plan of a basis (with an override, if asked) assigned
 * during the period.
 */
static bool
cm_rep_has_basis(CmRun *run, CmRep *rep, bool payment_basis, bool override)
{
	int			i;

	for (i = 0; i < rep->nassign; i++)
	{
		CmAssign   *a = &rep->assign[i];

		if (a->from <= run->end && a->to >= run->start &&
			a->plan->payment_basis == payment_basis &&
			(!override || a->plan->override_rate != NULL))
			return true;
	}
	return false;
}

/*
 * The reps whose events of a basis (payment basis: payments and refunds,
 * else won deals) can give a line in the period: those with a plan of that
 * basis, or with a manager (on any day) whose plan of that basis has an
 * override.  An int8[] of them, or NULL when every rep is one (nothing to
 * leave out); *none says that no rep is.  The other reps' events give no
 * line (cm_credit_event), so the query need not read, sort and return them:
 * most payments are of reps on booking-basis plans.
 */
static Datum
cm_event_reps(CmRun *run, bool payment_basis, bool *none)
{
	HASH_SEQ_STATUS seq;
	CmRep	   *rep;
	long		total = hash_get_num_entries(run->reps);
	Datum	   *ids = palloc(sizeof(Datum) * Max(total, 1));
	int			n = 0;

	hash_seq_init(&seq, run->reps);
	while ((rep = hash_seq_search(&seq)) != NULL)
	{
		bool		needed = cm_rep_has_basis(run, rep, payment_basis, false);
		int			e,
					m;

		for (e = 0; !needed && e < rep->nepochs; e++)
			for (m = 0; !needed && m < rep->epochs[e].nmanagers; m++)
				needed = cm_rep_has_basis(run, rep->epochs[e].managers[m], payment_basis, true);
		if (needed)
			ids[n++] = Int64GetDatum(rep->rep_id);
	}
	*none = n == 0;
	if (n == total)
		return (Datum) 0;
	return PointerGetDatum(construct_array(ids, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * The credited events: won deals (booking) and payments and refunds
 * (payment basis), one row per credited rep (split), with the SPIFF match
 * column and the deal columns the SPIFF tests read.  Either of the period
 * ($1, $2) ordered by rep and time, only of the reps in $4 (won deals) and
 * $5 (payments) when those are not null, or of the finalized periods
 * ordered by rep, deal and payment.
 */
static char *
cm_events_sql(CmRun *run, bool finalized, bool booking, bool payment, bool by_rep[2])
{
	StringInfoData q;
	StringInfoData cols;
	int			i;

	initStringInfo(&cols);
	for (i = 0; i < run->spiff_ncols; i++)
		appendStringInfo(&cols, ", d.%s", quote_identifier(run->spiff_cols[i]));
	initStringInfo(&q);
	if (booking)
	{
		appendStringInfo(&q,
						 "SELECT coalesce(s.rep_id, d.owner_rep_id), d.deal_id, NULL::int8, d.closed_at,"
						 "       d.closed_at::date, d.amount, d.currency::text, coalesce(s.share, 1::numeric),"
						 "       1, NULL::numeric, %s, %s, %s%s"
						 "  FROM salesmgmt.deal d"
						 "  JOIN salesmgmt.stage st ON st.stage_id = d.stage_id AND st.outcome = 'won'"
						 "  LEFT JOIN salesmgmt.deal_split s ON s.deal_id = d.deal_id"
						 " WHERE %s%s",
						 run->spiff_select,
						 run->any_new_arr ? "salesmgmt.deal_new_arr(d.deal_id)" : "NULL::numeric",
						 run->any_family ? CM_LINES_BY_FAMILY : "NULL::jsonb",
						 cols.data,
						 finalized ?
						 "EXISTS (SELECT 1 FROM salesmgmt.commission_period f WHERE f.status = 'final'"
						 " AND d.closed_at >= f.period_start AND d.closed_at < f.period_end + 1)" :
						 "d.closed_at >= $1 AND d.closed_at < $2",
						 by_rep[0] ? " AND coalesce(s.rep_id, d.owner_rep_id) = ANY ($4)" : "");
	}
	if (payment)
	{
		if (booking)
			appendStringInfoString(&q, " UNION ALL ");
		appendStringInfo(&q,
						 "SELECT coalesce(s.rep_id, d.owner_rep_id), p.deal_id, p.payment_id, p.paid_at,"
						 "       p.paid_at::date, p.amount, p.currency::text, coalesce(s.share, 1::numeric),"
						 "       CASE p.kind WHEN 'refund' THEN -1 ELSE 1 END,"
						 "       CASE WHEN d.amount > 0 THEN (CASE WHEN p.currency = d.currency THEN p.amount"
						 "            ELSE salesmgmt.convert_amount(p.amount, p.currency, d.currency, p.paid_at::date)"
						 "            END) / d.amount END, %s, NULL::numeric, %s%s"
						 "  FROM salesmgmt.payment p"
						 "  JOIN salesmgmt.deal d ON d.deal_id = p.deal_id"
						 "  LEFT JOIN salesmgmt.deal_split s ON s.deal_id = d.deal_id"
						 " WHERE %s%s",
						 run->spiff_select,
						 run->any_family ? CM_LINES_BY_FAMILY : "NULL::jsonb",
						 cols.data,
						 finalized ?
						 "EXISTS (SELECT 1 FROM salesmgmt.commission_period f WHERE f.status = 'final'"
						 " AND p.paid_at >= f.period_start AND p.paid_at < f.period_end + 1)" :
						 "p.paid_at >= $1 AND p.paid_at < $2",
						 by_rep[1] ? " AND coalesce(s.rep_id, d.owner_rep_id) = ANY ($5)" : "");
	}
	appendStringInfoString(&q, finalized ? " ORDER BY 1, 2, 3 NULLS FIRST" : " ORDER BY 1, 4, 2, 3 NULLS FIRST");
	return q.data;
}

/*
 * The events cursor, or NULL when no rep's events of the period can give a
 * line.  Corrections (finalized) read every event of the finalized
 * periods.
 */
Portal
cm_events_open(CmRun *run, bool finalized)
{
	Oid			types[5] = {TIMESTAMPTZOID, TIMESTAMPTZOID, JSONBARRAYOID, INT8ARRAYOID, INT8ARRAYOID};
	Datum		values[5] = {TimestampTzGetDatum(run->start_ts), TimestampTzGetDatum(run->end_ts),
	run->spiff_params, (Datum) 0, (Datum) 0};
	char		nulls[6] = "   nn";
	bool		booking = run->any_booking,
				payment = run->any_payment,
				by_rep[2] = {false, false};

	if (!finalized)
	{
		for (int b = 0; b < 2; b++)
		{
			bool		none;

			values[3 + b] = cm_event_reps(run, b == 1, &none);
			by_rep[b] = values[3 + b] != (Datum) 0;
			nulls[3 + b] = by_rep[b] ? ' ' : 'n';
			if (none)
			{
				if (b == 0)
					booking = false;
				else
					payment = false;
			}
		}
		if (!booking && !payment)
			return NULL;
	}
	return sm_spi_cursor_open(cm_events_sql(run, finalized, booking, payment, by_rep), 5, types, values, nulls);
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
	ev->arr = isnull[11] ? NULL : DatumGetNumeric(v[11]);
	ev->lines = isnull[12] ? NULL : DatumGetJsonbP(v[12]);
	ev->split = NULL;
	ev->row = v;
	ev->rownull = isnull;
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
		r->tt = sm_spi_cursor_fetch(r->portal, CM_FETCH, &r->n);
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


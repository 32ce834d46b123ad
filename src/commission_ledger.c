/*-------------------------------------------------------------------------
 *
 * commission_ledger.c
 *	  The ledger writer (lines written in batches the way COPY writes) and
 *	  the lines of credit: tier states per rep and plan period, earned,
 *	  SPIFF and override lines.
 *
 * The run model and the engine's overview are in commission.h and
 * commission.c.
 *
 *-------------------------------------------------------------------------
 */
#include "commission.h"
#include "compat.h"
#include "utils/json.h"

static const char *const cm_kind_names[CK_NKINDS] = {
	"earned", "spiff", "override", "clawback", "draw", "adjustment"
};


static const char *const cm_reason_names[CR_NREASONS] = {
	NULL, "late", "changed", "moved", "removed", "lost", "reopened", "deleted",
	"refund", "advance", "guarantee", "recovery", "churned"
};


static const struct
{
	const char *name;
	Oid			type;
}			cm_cols[LC_NCOLS] = {
	{"rep_id", INT8OID},
	{"kind", TEXTOID},
	{"deal_id", INT8OID},
	{"payment_id", INT8OID},
	{"plan_id", INT8OID},
	{"spiff_id", INT8OID},
	{"draw_id", INT8OID},
	{"source_rep_id", INT8OID},
	{"credited_at", TIMESTAMPTZOID},
	{"plan_period_start", DATEOID},
	{"plan_period_end", DATEOID},
	{"share", NUMERICOID},
	{"credit", NUMERICOID},
	{"quota", NUMERICOID},
	{"attainment_before", NUMERICOID},
	{"attainment_after", NUMERICOID},
	{"tier", INT4OID},
	{"rate", NUMERICOID},
	{"tiers", JSONBOID},
	{"earned_before", NUMERICOID},
	{"earned_after", NUMERICOID},
	{"capped", BOOLOID},
	{"base", NUMERICOID},
	{"recoverable", BOOLOID},
	{"reversed_at", TIMESTAMPTZOID},
	{"amount", NUMERICOID},
	{"reason", TEXTOID},
	{"subscription_id", INT8OID},
	{"families", JSONBOID},
};

/* ----------------------------------------------------------------------
 * Writing lines.  A run writes millions of lines, so they are written the
 * way COPY writes rows, by the batch writer of src/core_bulk.c: a batch
 * of slots goes to table_multi_insert, then the batch's index entries are
 * made, index by index in key order, after the table's NOT NULL and CHECK
 * constraints were checked.  Columns the run does not set get their
 * defaults (line_id, status, created_at).  Row-level security and
 * privileges are checked once, as the role running the function; INSERT
 * triggers on the ledger are refused rather than silently skipped.
 * ----------------------------------------------------------------------
 */

/*
 * Open the ledger for batched inserts: check privileges and row-level
 * security once as the calling role, refuse INSERT triggers, map the
 * run's columns to the table's, and prepare the defaults of the others.
 */
void
cm_init_writer(CmRun *run)
{
	MemoryContext old = MemoryContextSwitchTo(run->run_cxt);
	Oid			relid = sm_relation_oid("commission_line");
	CmWriter   *w = &run->writer;
	Relation	rel;
	TupleDesc	desc;
	TriggerDesc *trig;
	AclResult	aclresult;
	int			c;
	bool		set[MaxHeapAttributeNumber];

	rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, RelationGetRelationName(rel));
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("run_commissions cannot write salesmgmt.commission_line under row-level security"),
				 errhint("The function must be owned by a role that bypasses row-level security, as the extension's owner does.")));
	trig = rel->trigdesc;
	if (trig != NULL && (trig->trig_insert_before_row || trig->trig_insert_after_row ||
						 trig->trig_insert_instead_row || trig->trig_insert_before_statement ||
						 trig->trig_insert_after_statement))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("salesmgmt.commission_line must not have INSERT triggers"),
				 errdetail("run_commissions writes the ledger in bulk, without firing them."),
				 errhint("React to runs with triggers on salesmgmt.commission_period, or read the lines after the run.")));

	memset(set, 0, sizeof(set));
	for (c = 0; c < LC_NCOLS; c++)
	{
		w->attno[c] = get_attnum(relid, cm_cols[c].name) - 1;
		/* a database still at 0.1.0 lacks the columns of 0.2.0 */
		if (w->attno[c] < 0 && c >= LC_SUBSCRIPTION && !sm_sql_is_current())
			continue;
		if (w->attno[c] < 0)
			elog(ERROR, "column \"%s\" of salesmgmt.commission_line not found", cm_cols[c].name);
		w->typmod[c] = TupleDescAttr(desc, w->attno[c])->atttypmod;
		set[w->attno[c]] = true;
	}
	w->period_start = get_attnum(relid, "period_start") - 1;
	w->period_end = get_attnum(relid, "period_end") - 1;
	w->currency = get_attnum(relid, "currency") - 1;
	set[w->period_start] = set[w->period_end] = set[w->currency] = true;
	w->currency_datum = DirectFunctionCall3(bpcharin, CStringGetDatum(run->currency),
											ObjectIdGetDatum(InvalidOid),
											Int32GetDatum(TupleDescAttr(desc, w->currency)->atttypmod));
	sm_bulk_open(&w->bulk, rel, set, CM_FLUSH_AT * 2);

	for (c = 0; c < CK_NKINDS; c++)
		run->kind_text[c] = CStringGetTextDatum(cm_kind_names[c]);
	for (c = 1; c < CR_NREASONS; c++)
		run->reason_text[c] = CStringGetTextDatum(cm_reason_names[c]);
	MemoryContextSwitchTo(old);
}

/*
 * Write the batch: the defaults of the columns the run does not set (the
 * line_id in the order of the batch), the table's constraints, the heap in
 * one table_multi_insert, then the index entries.
 */
void
cm_flush(CmRun *run)
{
	CmWriter   *w = &run->writer;
	MemoryContext caller = CurrentMemoryContext;

	if (w->bulk.nused == 0)
		return;
	MemoryContextSwitchTo(run->line_cxt);
	run->nlines += w->bulk.nused;
	sm_bulk_write(&w->bulk);
	sm_bulk_clear(&w->bulk);
	MemoryContextReset(run->line_cxt);
	MemoryContextSwitchTo(caller);
}

void
cm_close_writer(CmRun *run)
{
	cm_flush(run);
	sm_bulk_close(&run->writer.bulk);
}

/* a line into the next slot of the batch; datums must live in line_cxt or
 * longer */
static void
cm_write(CmRun *run, Datum *v, bool *n)
{
	CmWriter   *w = &run->writer;
	TupleTableSlot *slot;
	int			c,
				a;

	slot = sm_bulk_next_slot(&w->bulk);
	for (c = 0; c < LC_NCOLS; c++)
	{
		a = w->attno[c];
		if (a < 0)
			continue;			/* not in a database at 0.1.0 */
		slot->tts_isnull[a] = n[c];
		slot->tts_values[a] = v[c];
		/* numeric(p,s) columns: what an INSERT's assignment cast would do */
		if (!n[c] && w->typmod[c] >= 0 && cm_cols[c].type == NUMERICOID)
			slot->tts_values[a] = DirectFunctionCall2(numeric, v[c], Int32GetDatum(w->typmod[c]));
	}
	slot->tts_values[w->period_start] = DateADTGetDatum(run->start);
	slot->tts_isnull[w->period_start] = false;
	slot->tts_values[w->period_end] = DateADTGetDatum(run->end);
	slot->tts_isnull[w->period_end] = false;
	slot->tts_values[w->currency] = w->currency_datum;
	slot->tts_isnull[w->currency] = false;
	/* the defaults (line_id) are set when the batch is written, in order */
	ExecStoreVirtualTuple(slot);
}

/* note a line about a watched (refunded) deal, for refund clawbacks */
static void
cm_record(CmRun *run, CmRep *rep, CmPlan *plan, CmKind kind, Datum *v, bool *n, Numeric amount)
{
	int64		deal_id = DatumGetInt64(v[LC_DEAL]);
	CmWatch    *w = hash_search(run->watch, &deal_id, HASH_FIND, NULL);
	CmComponent comp = !n[LC_SPIFF] ? CM_COMP_SPIFF : !n[LC_SOURCE] ? CM_COMP_OVERRIDE : CM_COMP_OWN;
	int64		aux = comp == CM_COMP_SPIFF ? DatumGetInt64(v[LC_SPIFF]) :
		comp == CM_COMP_OVERRIDE ? DatumGetInt64(v[LC_SOURCE]) : 0;
	CmComp	   *c = NULL;
	int			i;
	MemoryContext old;

	if (w == NULL || plan == NULL || plan->payment_basis)
		return;
	old = MemoryContextSwitchTo(run->run_cxt);
	for (i = 0; i < w->ncomps; i++)
		if (w->comps[i].rep_id == rep->rep_id && w->comps[i].comp == comp && w->comps[i].aux == aux)
			c = &w->comps[i];
	if (c == NULL)
	{
		CM_APPEND(run->run_cxt, w->comps, w->ncomps, w->maxcomps);
		c = &w->comps[w->ncomps - 1];
		memset(c, 0, sizeof(*c));
		c->rep_id = rep->rep_id;
		c->comp = comp;
		c->aux = aux;
	}
	c->plan = plan;
	if (!n[LC_CREDITED_AT] && DatumGetTimestampTz(v[LC_CREDITED_AT]) > c->at)
		c->at = DatumGetTimestampTz(v[LC_CREDITED_AT]);
	sm_numeric_accum(run->run_cxt, &c->amount_net, amount);
	if (kind != CK_CLAWBACK)
		sm_numeric_accum(run->run_cxt, &c->amount_gross, amount);
	if (comp == CM_COMP_OWN && !n[LC_CREDIT])
	{
		sm_numeric_accum(run->run_cxt, &c->credit_net, DatumGetNumeric(v[LC_CREDIT]));
		if (kind != CK_CLAWBACK)
			sm_numeric_accum(run->run_cxt, &c->credit_gross, DatumGetNumeric(v[LC_CREDIT]));
	}
	MemoryContextSwitchTo(old);
}

/*
 * Add a line to the buffer.  Every datum must live in line_cxt or longer;
 * the rep, kind and amount are set here.
 */
void
cm_emit(CmRun *run, CmRep *rep, CmPlan *plan, CmKind kind, Datum *v, bool *n, Numeric amount)
{
	CmSum		sum;

	v[LC_REP] = Int64GetDatum(rep->rep_id);
	n[LC_REP] = false;
	v[LC_KIND] = run->kind_text[kind];
	n[LC_KIND] = false;
	v[LC_AMOUNT] = NumericGetDatum(amount);
	n[LC_AMOUNT] = false;
	if (plan != NULL)
	{
		v[LC_PLAN] = Int64GetDatum(plan->plan_id);
		n[LC_PLAN] = false;
	}
	cm_write(run, v, n);

	switch (kind)
	{
		case CK_EARNED:
			sum = CS_EARNED;
			break;
		case CK_SPIFF:
			sum = CS_SPIFFS;
			break;
		case CK_OVERRIDE:
			sum = CS_OVERRIDES;
			break;
		case CK_CLAWBACK:
			sum = CS_CLAWBACKS;
			break;
		case CK_ADJUSTMENT:
			sum = CS_ADJUSTMENTS;
			break;
		default:
			sum = sm_numeric_sign(amount) >= 0 ? CS_DRAWS : CS_RECOVERY;
			break;
	}
	sm_numeric_accum(run->run_cxt, &rep->sums[sum], amount);
	rep->listed = true;
	if (run->recording && !n[LC_DEAL] && kind != CK_DRAW)
		cm_record(run, rep, plan, kind, v, n, amount);
}

void
cm_line_init(Datum *v, bool *n)
{
	int			c;

	for (c = 0; c < LC_NCOLS; c++)
	{
		v[c] = (Datum) 0;
		n[c] = true;
	}
}

/* the columns that say which credited event a line is about */
void
cm_line_event(Datum *v, bool *n, CmEvent *ev)
{
	CM_SET(v, n, LC_DEAL, Int64GetDatum(ev->deal_id));
	if (ev->payment_id != 0)
		CM_SET(v, n, LC_PAYMENT, Int64GetDatum(ev->payment_id));
	CM_SET(v, n, LC_CREDITED_AT, TimestampTzGetDatum(ev->at));
	if (ev->share != NULL)
		CM_SET(v, n, LC_SHARE, NumericGetDatum(ev->share));
}

/* ----------------------------------------------------------------------
 * Tier states and the lines of credit
 * ----------------------------------------------------------------------
 */

CmState *
cm_state(CmRun *run, CmRep *rep, CmPlan *plan, DateADT day)
{
	DateADT		ps,
				pe;
	CmState    *st;
	CmPriorKey	key;
	CmPrior    *prior;
	MemoryContext old;
	int			k;

	cm_plan_period(plan->period, day, &ps, &pe);
	for (st = rep->states; st != NULL; st = st->next)
		if (st->plan == plan && st->pstart == ps)
			return st;

	old = MemoryContextSwitchTo(run->rep_cxt);
	st = palloc0(sizeof(CmState));
	st->plan = plan;
	st->pstart = ps;
	st->pend = pe;
	st->quota = cm_quota_for(rep, ps, pe, plan->new_arr);
	cm_tiering_init(&st->t, plan, st->quota);
	memset(&key, 0, sizeof(key));
	key.rep_id = rep->rep_id;
	key.plan_id = plan->plan_id;
	key.pstart = ps;
	prior = hash_search(run->prior, &key, HASH_FIND, NULL);
	/* the running values are owned by the state: cm_set frees them */
	st->credit = sm_numeric_copy(run->rep_cxt, prior ? prior->credit : sm_numeric_const(0));
	k = cm_tier_of(&st->t, st->credit);
	if (plan->nrates == 0)
		st->earned = sm_numeric_copy(run->rep_cxt, cm_earnings(&st->t, k, st->credit));
	else
	{
		/* by family, earnings depend on the families' order: the ledger's */
		st->earned = sm_numeric_copy(run->rep_cxt, prior ? prior->earned : sm_numeric_const(0));
		st->ft = palloc(sizeof(CmTiering) * plan->nrates);
		for (k = 0; k < plan->nrates; k++)
			cm_tiering_init(&st->ft[k], &plan->rate_tables[k], st->quota);
	}
	st->paid = sm_numeric_copy(run->rep_cxt, cm_paid(plan, st->earned));
	st->att = st->t.quota ? sm_numeric_round(sm_numeric_div(st->credit, st->t.quota), 4) : NULL;
	st->next = rep->states;
	rep->states = st;
	MemoryContextSwitchTo(old);
	return st;
}

static Numeric cm_family_earnings(CmState *st, CmEvent *ev, Numeric delta, Numeric x, Numeric y,
								  Jsonb **split);

/*
 * Move the credit of a plan period by delta and write the line: earned
 * for a credited event, adjustment for a correction.  Runs in line_cxt.
 */
void
cm_credit_line(CmRun *run, CmRep *rep, CmState *st, CmEvent *ev, Numeric delta,
			   CmKind kind, CmReason reason)
{
	CmPlan	   *plan = st->plan;
	CmTiering  *t = &st->t;
	Datum		v[LC_NCOLS];
	bool		n[LC_NCOLS];
	Numeric		after = sm_numeric_add(st->credit, delta);
	int			kb = cm_tier_of(t, st->credit);
	int			ka = cm_tier_of(t, after);
	bool		by_family = plan->nrates > 0 && ev->nfam > 0;
	Jsonb	   *split = ev->split;
	Numeric		earned = by_family ? cm_family_earnings(st, ev, delta, st->credit, after, &split)
		: plan->nrates > 0 ? sm_numeric_add(st->earned, sm_numeric_sub(cm_earnings(t, ka, after),
																	   cm_earnings(t, kb, st->credit)))
		: cm_earnings(t, ka, after);
	Numeric		paid = cm_paid(plan, earned);
	Numeric		amount = sm_numeric_sub(paid, st->paid);
	Numeric		att = t->quota ? sm_numeric_round(sm_numeric_div(after, t->quota), 4) : NULL;

	cm_line_init(v, n);
	cm_line_event(v, n, ev);
	CM_SET(v, n, LC_PP_START, DateADTGetDatum(st->pstart));
	CM_SET(v, n, LC_PP_END, DateADTGetDatum(st->pend));
	CM_SET(v, n, LC_CREDIT, NumericGetDatum(delta));
	if (split != NULL)
		CM_SET(v, n, LC_FAMILIES, JsonbPGetDatum(split));
	if (st->quota)
		CM_SET(v, n, LC_QUOTA, NumericGetDatum(sm_numeric_copy(run->line_cxt, st->quota)));
	if (att)
	{
		CM_SET(v, n, LC_ATT_BEFORE, NumericGetDatum(sm_numeric_copy(run->line_cxt, st->att)));
		CM_SET(v, n, LC_ATT_AFTER, NumericGetDatum(att));
	}
	if (t->nt > 0)
	{
		CM_SET(v, n, LC_TIER, Int32GetDatum(ka + 1));
		CM_SET(v, n, LC_RATE, NumericGetDatum(plan->tiers[ka].rate));
		/* by family, the families column holds each family's tiers */
		if (ka != kb && !by_family)
			CM_SET(v, n, LC_TIERS, JsonbPGetDatum(cm_tiers_json(t, st->credit, after, kb, ka)));
	}
	CM_SET(v, n, LC_EARNED_BEFORE, NumericGetDatum(sm_numeric_copy(run->line_cxt, st->earned)));
	CM_SET(v, n, LC_EARNED_AFTER, NumericGetDatum(earned));
	CM_SET(v, n, LC_CAPPED, BoolGetDatum(plan->cap != NULL && sm_numeric_cmp(earned, plan->cap) > 0));
	if (reason != CR_NONE)
		CM_SET(v, n, LC_REASON, run->reason_text[reason]);
	cm_emit(run, rep, plan, kind, v, n, amount);

	cm_set(run->rep_cxt, &st->credit, after);
	cm_set(run->rep_cxt, &st->earned, earned);
	cm_set(run->rep_cxt, &st->paid, paid);
	if (att)
		cm_set(run->rep_cxt, &st->att, att);
}

/* credit of an event: amount times share, in the reporting currency */
Numeric
cm_event_credit(CmRun *run, CmEvent *ev)
{
	Numeric		x = sm_rates_convert(&run->rates, sm_numeric_mul(ev->amount, ev->share), ev->currency, ev->day);

	return ev->sign < 0 ? sm_numeric_neg(x) : x;
}

/* a family's weight on a plan: its family_weights entry, else 1 */
static Numeric
cm_family_weight(CmPlan *plan, const char *family)
{
	int			k;

	for (k = 0; k < plan->nfamilies; k++)
		if (strcmp(plan->families[k], family) == 0)
			return plan->weights[k];
	return sm_numeric_const(1);
}

/*
 * On a plan with family_rates: the families of a deal's lines with their
 * line amounts, weights and weighted amounts (the same split the family
 * weights use) and the rate table each earns by (-1: the plan's tiers).
 * A deal whose lines add up to zero has no split (nfam 0).
 */
void
cm_event_families(CmPlan *plan, CmEvent *ev)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *family = NULL;
	int			max = Max(JB_ROOT_COUNT(ev->lines), 1);

	ev->nfam = 0;
	ev->fam = palloc(sizeof(char *) * max);
	ev->fam_amount = palloc(sizeof(Numeric) * max);
	ev->fam_weight = palloc(sizeof(Numeric) * max);
	ev->fam_weighted = palloc(sizeof(Numeric) * max);
	ev->fam_table = palloc(sizeof(int) * max);
	ev->fam_total = sm_numeric_const(0);
	it = JsonbIteratorInit(&ev->lines->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			family = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE && v.type == jbvNumeric)
		{
			int			f = ev->nfam++;
			int			k;

			ev->fam[f] = family;
			ev->fam_amount[f] = v.val.numeric;
			ev->fam_weight[f] = cm_family_weight(plan, family);
			ev->fam_weighted[f] = sm_numeric_mul(v.val.numeric, ev->fam_weight[f]);
			ev->fam_table[f] = -1;
			for (k = 0; k < plan->nrates; k++)
				if (strcmp(plan->rate_families[k], family) == 0)
					ev->fam_table[f] = k;
			ev->fam_total = sm_numeric_add(ev->fam_total, ev->fam_weighted[f]);
		}
	}
	if (sm_numeric_sign(ev->fam_total) == 0)
		ev->nfam = 0;
}

/*
 * The exact earnings of a line on a plan with family_rates that moves the
 * period's credit from x to y: each family of the deal owns its part of the
 * move (weighted amount / weighted total) and earns it by its own table, or
 * by the plan's tiers when the plan names no rate for it:
 *		part_f * (E_f(y) - E_f(x))
 * E_f being the table's earnings function at the rep's attainment (the
 * plan period's credit over quota, as for the plan's tiers).  Sets *split
 * to the families column explaining it.
 */
static Numeric
cm_family_earnings(CmState *st, CmEvent *ev, Numeric delta, Numeric x, Numeric y, Jsonb **split)
{
	JsonbParseState *ps = NULL;
	Numeric		total = sm_numeric_const(0);
	int			f;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	for (f = 0; f < ev->nfam; f++)
	{
		CmTiering  *t = ev->fam_table[f] >= 0 ? &st->ft[ev->fam_table[f]] : &st->t;
		int			kx = cm_tier_of(t, x);
		int			ky = cm_tier_of(t, y);
		Numeric		move = sm_numeric_sub(cm_earnings(t, ky, y), cm_earnings(t, kx, x));
		Numeric		e = sm_numeric_div(sm_numeric_mul(move, ev->fam_weighted[f]), ev->fam_total);

		total = sm_numeric_add(total, e);
		sm_jsonb_push_key(&ps, ev->fam[f]);
		pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
		sm_jsonb_push_numeric(&ps, "amount", ev->fam_amount[f]);
		sm_jsonb_push_numeric(&ps, "weight", ev->fam_weight[f]);
		sm_jsonb_push_numeric(&ps, "credit",
							  sm_numeric_div(sm_numeric_mul(delta, ev->fam_weighted[f]), ev->fam_total));
		sm_jsonb_push_string(&ps, "table", ev->fam_table[f] >= 0 ? "family" : "plan");
		if (t->nt > 0)
		{
			if (kx != ky)
				sm_jsonb_push_numeric(&ps, "tier_before", int64_to_numeric(kx + 1));
			sm_jsonb_push_numeric(&ps, "tier", int64_to_numeric(ky + 1));
			sm_jsonb_push_numeric(&ps, "rate", t->plan->tiers[ky].rate);
		}
		sm_jsonb_push_numeric(&ps, "earned", e);
		pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	}
	*split = JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL));
	return sm_numeric_add(st->earned, total);
}

/*
 * What an event credits on a plan: on a new-ARR plan a won deal credits
 * its new ARR instead of its amount; on a plan with family weights, a deal
 * with lines credits the weighted sum of its line amounts by family (the
 * amount times weighted / total, exactly the weighted sum when the amount
 * is the lines' total), and the split is kept for the line.
 */
void
cm_event_measure(CmPlan *plan, CmEvent *ev)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	StringInfoData split;
	Numeric		total = sm_numeric_const(0),
				weighted = sm_numeric_const(0);
	char	   *family = NULL;

	if (plan->new_arr && !ev->payment)
		ev->amount = ev->arr != NULL ? ev->arr : sm_numeric_const(0);
	ev->split = NULL;
	ev->nfam = 0;
	if ((plan->nfamilies == 0 && plan->nrates == 0) || ev->lines == NULL)
		return;
	if (plan->nrates > 0)
		cm_event_families(plan, ev);
	if (plan->nfamilies == 0)
		return;
	initStringInfo(&split);
	appendStringInfoChar(&split, '{');
	it = JsonbIteratorInit(&ev->lines->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			family = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE && v.type == jbvNumeric)
		{
			Numeric		w = cm_family_weight(plan, family);
			total = sm_numeric_add(total, v.val.numeric);
			weighted = sm_numeric_add(weighted, sm_numeric_mul(v.val.numeric, w));
			if (split.len > 1)
				appendStringInfoString(&split, ", ");
			escape_json(&split, family);
			appendStringInfo(&split, ": {\"amount\": %s, \"weight\": %s}",
							 sm_numeric_to_cstring(v.val.numeric), sm_numeric_to_cstring(w));
		}
	}
	appendStringInfoChar(&split, '}');
	if (sm_numeric_sign(total) == 0)
		return;
	ev->split = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(split.data)));
	if (!ev->payment && sm_numeric_cmp(ev->amount, total) == 0)
		ev->amount = weighted;
	else
		ev->amount = sm_numeric_div(sm_numeric_mul(ev->amount, weighted), total);
}

/*
 * What a SPIFF pays on an event, or NULL if it does not apply.  Flat
 * SPIFFs pay amount times share (on payment basis also times the part of
 * the deal the payment is), rate SPIFFs rate times credit.
 */
Numeric
cm_spiff_amount(CmSpiff *sp, CmEvent *ev, Numeric credit, Numeric *base, Numeric *rate)
{
	if (sp->rate != NULL)
	{
		*base = credit;
		*rate = sp->rate;
	}
	else
	{
		*base = sp->amount;
		*rate = ev->share;
		if (ev->payment)
		{
			if (ev->fraction == NULL)
				return NULL;
			*rate = sm_numeric_mul(*rate, ev->fraction);
			if (ev->sign < 0)
				*rate = sm_numeric_neg(*rate);
		}
	}
	return sm_numeric_round(sm_numeric_mul(*base, *rate), 2);
}

bool
cm_spiff_applies(CmRun *run, int idx, CmEvent *ev)
{
	CmSpiff    *sp = &run->spiffs[idx];

	if (sp->from > ev->day || ev->day > sp->to)
		return false;
	/* what of its condition SQL matches (if any), then what C matches */
	if (run->spiff_sql && (ev->spiff_match == NULL || !ev->spiff_match[idx]))
		return false;
	return cm_spiff_tests_pass(run, sp, ev);
}

/* overrides of the managers above rep on the event's day on credit (kind
 * override, or adjustment when the credit is a correction) */
void
cm_overrides(CmRun *run, CmRep *rep, CmEvent *ev, Numeric *credit, CmKind kind, CmReason reason)
{
	int			i;
	CmRep	  **managers;
	int			nmanagers = cm_managers_at(rep, ev->day, &managers);

	for (i = 0; i < nmanagers; i++)
	{
		CmRep	   *m = managers[i];
		CmPlan	   *mp = cm_plan_at(m, ev->day);
		Datum		v[LC_NCOLS];
		bool		n[LC_NCOLS];
		Numeric		amount;
		DateADT		ps,
					pe;

		if (mp == NULL || mp->override_rate == NULL || mp->payment_basis != ev->payment)
			continue;
		if (*credit == NULL)
			*credit = cm_event_credit(run, ev);
		amount = sm_numeric_round(sm_numeric_mul(*credit, mp->override_rate), 2);
		if (sm_numeric_sign(amount) == 0)
			continue;
		cm_line_init(v, n);
		cm_line_event(v, n, ev);
		cm_plan_period(mp->period, ev->day, &ps, &pe);
		CM_SET(v, n, LC_PP_START, DateADTGetDatum(ps));
		CM_SET(v, n, LC_PP_END, DateADTGetDatum(pe));
		CM_SET(v, n, LC_SOURCE, Int64GetDatum(rep->rep_id));
		CM_SET(v, n, LC_BASE, NumericGetDatum(*credit));
		CM_SET(v, n, LC_RATE, NumericGetDatum(mp->override_rate));
		if (reason != CR_NONE)
			CM_SET(v, n, LC_REASON, run->reason_text[reason]);
		cm_emit(run, m, mp, kind, v, n, amount);
	}
}

/* a credited event of the period: earned line, SPIFFs, overrides */
void
cm_credit_event(CmRun *run, CmRep *rep, CmEvent *ev)
{
	CmPlan	   *plan = cm_plan_at(rep, ev->day);
	Numeric		credit = NULL;

	if (plan != NULL && plan->payment_basis == ev->payment)
	{
		int			pi = cm_plan_index(run, plan);
		int			i;

		cm_event_measure(plan, ev);
		credit = cm_event_credit(run, ev);
		cm_credit_line(run, rep, cm_state(run, rep, plan, ev->day), ev, credit, CK_EARNED, CR_NONE);
		sm_numeric_accum(run->run_cxt, &rep->sums[CS_CREDIT], credit);
		for (i = 0; i < run->plan_nspiffs[pi]; i++)
		{
			int			idx = run->plan_spiffs[pi][i];
			Numeric		base,
						rate,
						amount;
			Datum		v[LC_NCOLS];
			bool		n[LC_NCOLS];

			if (!cm_spiff_applies(run, idx, ev))
				continue;
			amount = cm_spiff_amount(&run->spiffs[idx], ev, credit, &base, &rate);
			if (amount == NULL || sm_numeric_sign(amount) == 0)
				continue;
			cm_line_init(v, n);
			cm_line_event(v, n, ev);
			CM_SET(v, n, LC_SPIFF, Int64GetDatum(run->spiffs[idx].spiff_id));
			CM_SET(v, n, LC_BASE, NumericGetDatum(base));
			CM_SET(v, n, LC_RATE, NumericGetDatum(rate));
			cm_emit(run, rep, plan, CK_SPIFF, v, n, amount);
		}
	}
	cm_overrides(run, rep, ev, &credit, CK_OVERRIDE, CR_NONE);
}


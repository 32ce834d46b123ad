/*-------------------------------------------------------------------------
 *
 * commission_corrections.c
 *	  Corrections of finalized periods (adjustments and clawbacks), refunds
 *	  on booking basis, and draws.
 *
 * The run model and the engine's overview are in commission.h and
 * commission.c.
 *
 *-------------------------------------------------------------------------
 */
#include "commission.h"

/* ----------------------------------------------------------------------
 * Corrections of finalized periods
 *
 * What is due now for the events of finalized periods (recomputed from
 * today's deals, splits and payments) is merged, in (rep, deal, payment)
 * order, with what the ledger booked for them.  Per rep and deal:
 *	- a booking-basis deal that is no longer won (reopened, lost, deleted)
 *	  has everything booked on it clawed back, if that happened within the
 *	  plan's clawback window of the win;
 *	- otherwise a change of the rep's credit becomes an adjustment through
 *	  the tiers of the original plan period (reason late, changed, moved or
 *	  removed), with overrides for the managers of the event's day on the
 *	  change (org_history.c), and a change of a SPIFF's amount becomes a
 *	  SPIFF adjustment.
 * ----------------------------------------------------------------------
 */

/* what the ledger booked for one component of a (rep, deal, payment) */
typedef struct CmBooked
{
	CmComponent comp;
	int64		aux;			/* SPIFF: spiff_id; override: source_rep_id */
	CmPlan	   *plan;
	Numeric		credit;
	Numeric		credit_due;		/* credit but refund and churn clawbacks */
	Numeric		amount;
	TimestampTz at;
} CmBooked;

typedef struct CmDue
{
	bool		present;
	CmPlan	   *plan;
	CmEvent		ev;
	Numeric		credit;
	int			nspiffs;
	int64	   *spiff_id;
	Numeric    *spiff_amount;
	Jsonb	   *lines;			/* plans with family_rates: a copy of the
								 * deal's line amounts by family, or NULL */
} CmDue;

static void
cm_add_corr(CmRun *run, CmRep *rep, CmCorr *c)
{
	CM_APPEND(run->run_cxt, rep->corr, rep->ncorr, rep->maxcorr);
	rep->corr[rep->ncorr - 1] = *c;
}

/* a due row of a finalized period: what the rep is owed for it today */
static void
cm_due_from_row(CmRun *run, CmReader *r, CmDue *due)
{
	CmRep	   *rep = cm_rep(run, DatumGetInt64(r->v[0]));
	CmPlan	   *plan;
	int			pi,
				i;

	memset(due, 0, sizeof(*due));
	cm_event_from_row(run, r->v, r->isnull, &due->ev);
	plan = cm_plan_at(rep, due->ev.day);
	if (plan == NULL || plan->payment_basis != due->ev.payment)
		return;
	due->present = true;
	due->plan = plan;
	cm_event_measure(plan, &due->ev);
	due->credit = cm_event_credit(run, &due->ev);
	pi = cm_plan_index(run, plan);
	due->spiff_id = palloc(sizeof(int64) * Max(run->plan_nspiffs[pi], 1));
	due->spiff_amount = palloc(sizeof(Numeric) * Max(run->plan_nspiffs[pi], 1));
	for (i = 0; i < run->plan_nspiffs[pi]; i++)
	{
		int			idx = run->plan_spiffs[pi][i];
		Numeric		base,
					rate,
					amount;

		if (!cm_spiff_applies(run, idx, &due->ev))
			continue;
		amount = cm_spiff_amount(&run->spiffs[idx], &due->ev, due->credit, &base, &rate);
		if (amount == NULL)
			continue;
		due->spiff_id[due->nspiffs] = run->spiffs[idx].spiff_id;
		due->spiff_amount[due->nspiffs++] = amount;
	}
	/* by family, a credit correction earns by the deal's split */
	if (plan->nrates > 0 && due->ev.lines != NULL)
		due->lines = DatumGetJsonbP(datumCopy(JsonbPGetDatum(due->ev.lines), false, -1));
	/* the event's numerics point into the cursor's rows: keep copies */
	due->ev.amount = NULL;
	due->ev.fraction = NULL;
	due->ev.spiff_match = NULL;
	due->ev.arr = NULL;
	due->ev.lines = NULL;
	due->ev.split = NULL;
	due->ev.nfam = 0;
}

/* the rep's own booked component of a key, or NULL */
static CmBooked *
cm_booked_own(CmBooked *booked, int nbooked)
{
	CmBooked   *own = NULL;
	int			i;

	for (i = 0; i < nbooked; i++)
		if (booked[i].comp == CM_COMP_OWN)
			own = &booked[i];
	return own;
}

/*
 * A correction of the key (deal, payment), dated when the credit is due
 * now, else when the own component was booked.
 */
static void
cm_corr_init(CmCorr *c, int64 deal_id, int64 pay, CmDue *due, CmBooked *own)
{
	memset(c, 0, sizeof(*c));
	c->deal_id = deal_id;
	c->payment_id = pay;
	c->payment = pay != 0;
	if (due == NULL)
		return;
	c->at = due->present ? due->ev.at : own ? own->at : 0;
	c->day = due->present ? due->ev.day : cm_ts_date(c->at);
}

/*
 * Booking basis, the deal fell through (outcome lost, reopened, or the deal
 * deleted): claw back every booked component whose win lies within its
 * plan's clawback window of the fall.
 */
static void
cm_correct_clawbacks(CmRun *run, CmRep *rep, int64 deal_id, CmBooked *booked, int nbooked,
					 const char *outcome, TimestampTz unwon_at)
{
	CmReason	reason = outcome == NULL ? CR_DELETED :
		strcmp(outcome, "lost") == 0 ? CR_LOST : CR_REOPENED;
	CmCorr		c;
	int			i;

	cm_corr_init(&c, deal_id, 0, NULL, NULL);
	for (i = 0; i < nbooked; i++)
	{
		CmBooked   *b = &booked[i];
		int32		days = b->plan ? b->plan->clawback_days : 0;

		if (days <= 0 || (sm_numeric_sign(b->amount) == 0 &&
						  (b->comp != CM_COMP_OWN || sm_numeric_sign(b->credit) == 0)))
			continue;
		if (unwon_at < b->at || unwon_at > b->at + (int64) days * USECS_PER_DAY)
			continue;
		c.what = CM_CORR_LINE;
		c.kind = CK_CLAWBACK;
		c.reason = reason;
		c.at = b->at;
		c.day = cm_ts_date(b->at);
		c.plan = b->plan;
		c.spiff_id = b->comp == CM_COMP_SPIFF ? b->aux : 0;
		c.source_rep_id = b->comp == CM_COMP_OVERRIDE ? b->aux : 0;
		c.credit = b->comp == CM_COMP_OWN ? sm_numeric_neg(b->credit) : NULL;
		c.base = sm_numeric_copy(run->run_cxt, b->amount);
		c.rate = sm_numeric_const(1);
		c.amount = sm_numeric_neg(b->amount);
		c.reversed_at = unwon_at;
		cm_add_corr(run, rep, &c);
	}
}

/* the rep's own credit: what is due against what was booked */
static void
cm_correct_own_credit(CmRun *run, CmRep *rep, int64 deal_id, int64 pay, CmDue *due,
					  CmBooked *booked, int nbooked)
{
	CmBooked   *own = cm_booked_own(booked, nbooked);
	Numeric		due_credit = due->present ? due->credit : sm_numeric_const(0);
	Numeric		delta = sm_numeric_sub(due_credit, own ? own->credit_due : sm_numeric_const(0));
	CmCorr		c;

	if (sm_numeric_sign(delta) == 0)
		return;
	cm_corr_init(&c, deal_id, pay, due, own);
	c.reason = own == NULL ? CR_LATE : !due->present ? (pay ? CR_REMOVED : CR_MOVED) : CR_CHANGED;
	c.what = CM_CORR_CREDIT;
	c.plan = due->present ? due->plan : own->plan;
	c.share = due->present ? sm_numeric_copy(run->run_cxt, due->ev.share) : NULL;
	c.delta = sm_numeric_copy(run->run_cxt, delta);
	if (due->present && due->lines != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(run->run_cxt);

		c.lines = DatumGetJsonbP(datumCopy(JsonbPGetDatum(due->lines), false, -1));
		MemoryContextSwitchTo(old);
	}
	if (c.plan != NULL)
		cm_add_corr(run, rep, &c);
}

/* SPIFFs: what is due against what was booked, SPIFF by SPIFF */
static void
cm_correct_spiffs(CmRun *run, CmRep *rep, int64 deal_id, int64 pay, CmDue *due,
				  CmBooked *booked, int nbooked)
{
	CmCorr		c;
	int			i,
				j;

	/* dated as the own credit's correction, with which they sort */
	cm_corr_init(&c, deal_id, pay, due, cm_booked_own(booked, nbooked));
	c.what = CM_CORR_LINE;
	c.kind = CK_ADJUSTMENT;
	for (i = 0; i < due->nspiffs + nbooked; i++)
	{
		int64		spiff_id;
		Numeric		due_amount = sm_numeric_const(0);
		Numeric		booked_amount = sm_numeric_const(0);
		CmPlan	   *plan = NULL;
		bool		in_due = false,
					in_booked = false;
		Numeric		delta;

		if (i < due->nspiffs)
			spiff_id = due->spiff_id[i];
		else if (booked[i - due->nspiffs].comp == CM_COMP_SPIFF)
		{
			spiff_id = booked[i - due->nspiffs].aux;
			/* handled with the due SPIFF already? */
			for (j = 0; j < due->nspiffs; j++)
				if (due->spiff_id[j] == spiff_id)
					break;
			if (j < due->nspiffs)
				continue;
		}
		else
			continue;
		for (j = 0; j < due->nspiffs; j++)
			if (due->spiff_id[j] == spiff_id)
			{
				due_amount = due->spiff_amount[j];
				plan = due->plan;
				in_due = true;
			}
		for (j = 0; j < nbooked; j++)
			if (booked[j].comp == CM_COMP_SPIFF && booked[j].aux == spiff_id)
			{
				booked_amount = booked[j].amount;
				plan = plan ? plan : booked[j].plan;
				in_booked = true;
			}
		delta = sm_numeric_sub(due_amount, booked_amount);
		if (sm_numeric_sign(delta) == 0)
			continue;
		c.reason = !in_booked ? CR_LATE : !in_due ? (pay ? CR_REMOVED : CR_MOVED) : CR_CHANGED;
		c.plan = plan;
		c.spiff_id = spiff_id;
		c.base = sm_numeric_copy(run->run_cxt, delta);
		c.rate = sm_numeric_const(1);
		c.amount = c.base;
		cm_add_corr(run, rep, &c);
	}
}

/*
 * The corrections of one (rep, deal, payment) key of finalized periods:
 * due is what the rep is owed for it today, booked what the ledger booked
 * per component, outcome and unwon_at the deal's state now.
 */
static void
cm_correct_key(CmRun *run, CmRep *rep, int64 deal_id, int64 pay, CmDue *due,
			   CmBooked *booked, int nbooked, const char *outcome, TimestampTz unwon_at)
{
	MemoryContext old = MemoryContextSwitchTo(run->run_cxt);
	bool		won = outcome != NULL && strcmp(outcome, "won") == 0;

	if (pay == 0 && !won && nbooked > 0)
		cm_correct_clawbacks(run, rep, deal_id, booked, nbooked, outcome, unwon_at);
	else
	{
		cm_correct_own_credit(run, rep, deal_id, pay, due, booked, nbooked);
		cm_correct_spiffs(run, rep, deal_id, pay, due, booked, nbooked);
	}
	MemoryContextSwitchTo(old);
}

/*
 * What the ledger booked on each (rep, deal, payment) of finalized periods,
 * by component.  credit_due leaves out refund and churn clawbacks: they
 * take back part of what was paid without changing what the deal credits
 * (its amount or new ARR), so a correction must not pay it again; a deal
 * that falls through reverses the whole credit left (credit).
 */
static const char *cm_booked_sql =
"SELECT b.rep_id, b.deal_id, b.pay_key, b.comp, b.aux, b.plan_id, b.credit, b.amount,"
"       b.credited_at, st.outcome,"
"       CASE WHEN st.outcome IS DISTINCT FROM 'won' THEN coalesce("
"           (SELECT min(h.changed_at) FROM salesmgmt.deal_stage_history h"
"              JOIN salesmgmt.stage hs ON hs.stage_id = h.to_stage_id"
"             WHERE h.deal_id = b.deal_id AND h.changed_at > b.credited_at AND hs.outcome <> 'won'),"
"           d.stage_entered_at, now()) END, b.credit_due"
"  FROM (SELECT l.rep_id, l.deal_id,"
"               CASE WHEN pl.basis = 'payment' THEN l.payment_id END AS pay_key,"
"               CASE WHEN l.spiff_id IS NOT NULL THEN 1 WHEN l.source_rep_id IS NOT NULL THEN 2 ELSE 0 END AS comp,"
"               coalesce(l.spiff_id, l.source_rep_id, 0) AS aux,"
"               max(l.plan_id) AS plan_id, sum(coalesce(l.credit, 0)) AS credit,"
"               coalesce(sum(l.credit) FILTER (WHERE l.reason IS NULL OR l.reason NOT IN ('refund', 'churned')), 0)"
"                 AS credit_due,"
"               sum(l.amount) AS amount, max(l.credited_at) AS credited_at"
"          FROM salesmgmt.commission_line l"
"          LEFT JOIN salesmgmt.commission_plan pl ON pl.plan_id = l.plan_id"
"         WHERE l.deal_id IS NOT NULL AND l.kind <> 'draw'"
"           AND EXISTS (SELECT 1 FROM salesmgmt.commission_period f WHERE f.status = 'final'"
"                        AND l.credited_at >= f.period_start AND l.credited_at < f.period_end + 1)"
"         GROUP BY 1, 2, 3, 4, 5) b"
"  LEFT JOIN salesmgmt.deal d ON d.deal_id = b.deal_id"
"  LEFT JOIN salesmgmt.stage st ON st.stage_id = d.stage_id"
" ORDER BY b.rep_id, b.deal_id, b.pay_key NULLS FIRST";

/* (rep, deal, payment) of a reader's row; payment 0 when null */
static void
cm_reader_key(CmReader *r, int64 *key)
{
	key[0] = DatumGetInt64(r->v[0]);
	key[1] = DatumGetInt64(r->v[1]);
	key[2] = r->isnull[2] ? 0 : DatumGetInt64(r->v[2]);
}

static int
cm_key_cmp(int64 *a, int64 *b)
{
	int			i;

	for (i = 0; i < 3; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

static int
cm_corr_cmp(const void *a, const void *b)
{
	const CmCorr *x = a;
	const CmCorr *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	if (x->deal_id != y->deal_id)
		return x->deal_id < y->deal_id ? -1 : 1;
	if (x->payment_id != y->payment_id)
		return x->payment_id < y->payment_id ? -1 : 1;
	return (int) x->what - (int) y->what;
}

/*
 * Merge what is due now for the events of finalized periods (one cursor)
 * with what the ledger booked for them (another), both in (rep, deal,
 * payment) order, and hand each key to cm_correct_key; then sort each
 * rep's corrections by time for cm_apply_corrections.
 */
void
cm_corrections(CmRun *run)
{
	CmReader	due,
				bk;
	bool		has_due,
				has_bk;
	HASH_SEQ_STATUS seq;
	CmRep	   *rep;
	int			maxbooked = 16;
	CmBooked   *booked = MemoryContextAlloc(run->run_cxt, sizeof(CmBooked) * maxbooked);

	memset(&due, 0, sizeof(due));
	memset(&bk, 0, sizeof(bk));
	due.portal = cm_events_open(run, true);
	bk.portal = sm_spi_cursor_open(cm_booked_sql, 0, NULL, NULL, NULL);
	MemoryContextSwitchTo(run->tmp_cxt);
	has_due = cm_reader_next(&due);
	has_bk = cm_reader_next(&bk);
	while (has_due || has_bk)
	{
		int64		key[3],
					k2[3];
		CmDue		d;
		int			nbooked = 0;
		char	   *outcome = NULL;
		TimestampTz unwon_at = 0;

		CHECK_FOR_INTERRUPTS();
		if (has_due)
			cm_reader_key(&due, key);
		if (has_bk)
		{
			cm_reader_key(&bk, k2);
			if (!has_due || cm_key_cmp(k2, key) < 0)
				memcpy(key, k2, sizeof(key));
		}
		memset(&d, 0, sizeof(d));
		while (has_due && (cm_reader_key(&due, k2), cm_key_cmp(k2, key) == 0))
		{
			cm_due_from_row(run, &due, &d);
			has_due = cm_reader_next(&due);
		}
		while (has_bk && (cm_reader_key(&bk, k2), cm_key_cmp(k2, key) == 0))
		{
			CmBooked   *b;

			if (nbooked == maxbooked)
			{
				maxbooked *= 2;
				booked = repalloc(booked, sizeof(CmBooked) * maxbooked);
			}
			b = &booked[nbooked++];
			b->comp = (CmComponent) DatumGetInt32(bk.v[3]);
			b->aux = DatumGetInt64(bk.v[4]);
			b->plan = bk.isnull[5] ? NULL : cm_plan_by_id(run, DatumGetInt64(bk.v[5]));
			b->credit = DatumGetNumericCopy(bk.v[6]);
			b->credit_due = DatumGetNumericCopy(bk.v[11]);
			b->amount = DatumGetNumericCopy(bk.v[7]);
			b->at = DatumGetTimestampTz(bk.v[8]);
			outcome = bk.isnull[9] ? NULL : TextDatumGetCString(bk.v[9]);
			unwon_at = bk.isnull[10] ? 0 : DatumGetTimestampTz(bk.v[10]);
			has_bk = cm_reader_next(&bk);
		}
		if (nbooked == 0)
			outcome = "won";	/* due rows are of won deals or payments */
		if (d.present || nbooked > 0)
			cm_correct_key(run, cm_rep(run, key[0]), key[1], key[2], &d,
						   booked, nbooked, outcome, unwon_at);
		MemoryContextReset(run->tmp_cxt);
	}
	SPI_cursor_close(due.portal);
	SPI_cursor_close(bk.portal);
	MemoryContextSwitchTo(run->line_cxt);

	/* each rep's corrections in time order, to merge with its events */
	hash_seq_init(&seq, run->reps);
	while ((rep = hash_seq_search(&seq)) != NULL)
		if (rep->ncorr > 1)
			qsort(rep->corr, rep->ncorr, sizeof(CmCorr), cm_corr_cmp);
}

/* apply a rep's corrections up to time until (all of them if !limited) */
void
cm_apply_corrections(CmRun *run, CmRep *rep, bool limited, TimestampTz until)
{
	while (rep->corr_next < rep->ncorr)
	{
		CmCorr	   *c = &rep->corr[rep->corr_next];
		CmEvent		ev;

		if (limited && c->at > until)
			break;
		if (!limited && run->writer.bulk.nused >= CM_FLUSH_AT)
			cm_flush(run);
		memset(&ev, 0, sizeof(ev));
		ev.deal_id = c->deal_id;
		ev.payment_id = c->payment_id;
		ev.payment = c->payment;
		ev.at = c->at;
		ev.day = c->day;
		ev.share = c->share;
		if (c->what == CM_CORR_CREDIT)
		{
			Numeric		delta = c->delta;

			/* on a plan with family_rates, by the deal's split */
			ev.lines = c->lines;
			if (ev.lines != NULL)
				cm_event_families(c->plan, &ev);

			cm_credit_line(run, rep, cm_state(run, rep, c->plan, c->day), &ev, delta,
						   CK_ADJUSTMENT, c->reason);
			cm_overrides(run, rep, &ev, &delta, CK_ADJUSTMENT, c->reason);
		}
		else
		{
			Datum		v[LC_NCOLS];
			bool		n[LC_NCOLS];

			cm_line_init(v, n);
			cm_line_event(v, n, &ev);
			if (c->spiff_id != 0)
				CM_SET(v, n, LC_SPIFF, Int64GetDatum(c->spiff_id));
			if (c->source_rep_id != 0)
				CM_SET(v, n, LC_SOURCE, Int64GetDatum(c->source_rep_id));
			if (c->credit != NULL)
				CM_SET(v, n, LC_CREDIT, NumericGetDatum(c->credit));
			CM_SET(v, n, LC_BASE, NumericGetDatum(c->base));
			CM_SET(v, n, LC_RATE, NumericGetDatum(c->rate));
			CM_SET(v, n, LC_REASON, run->reason_text[c->reason]);
			if (c->kind == CK_CLAWBACK)
				CM_SET(v, n, LC_REVERSED_AT, TimestampTzGetDatum(c->reversed_at));
			cm_emit(run, rep, c->plan, c->kind, v, n, c->amount);
		}
		rep->corr_next++;
	}
}

void
cm_finish_rep(CmRun *run, CmRep *rep)
{
	cm_apply_corrections(run, rep, false, 0);
	rep->states = NULL;
	rep->done = true;
	MemoryContextReset(run->rep_cxt);
}

/* ----------------------------------------------------------------------
 * Refunds on booking basis: within the clawback window of the win, a
 * refund claws back its fraction of what was paid on the deal (each
 * component: own commission, SPIFFs, overrides), never more than is left.
 * ----------------------------------------------------------------------
 */

/* refunds of the period, as fraction of their deal's amount */
#define CM_WATCH_REFUNDS \
	"SELECT p.deal_id, p.payment_id, p.paid_at," \
	"       CASE WHEN d.amount > 0 THEN (CASE WHEN p.currency = d.currency THEN p.amount" \
	"            ELSE salesmgmt.convert_amount(p.amount, p.currency, d.currency, p.paid_at::date)" \
	"            END) / d.amount END, 0::int8" \
	"  FROM salesmgmt.payment p JOIN salesmgmt.deal d ON d.deal_id = p.deal_id" \
	" WHERE p.kind = 'refund' AND p.paid_at >= $1 AND p.paid_at < $2"

static const char *cm_watch_sql = CM_WATCH_REFUNDS " ORDER BY 1, 3, 2";

/*
 * ... and the subscriptions that churned during the period (cancelled from
 * a day in it, or their renewal lost with the term ending the day before),
 * once per deal that credited new ARR into them, as the fraction of the
 * deal's new ARR that the subscription brought.
 */
static const char *cm_watch_churn_sql = CM_WATCH_REFUNDS
	" UNION ALL "
	"SELECT c.deal_id, 0::int8, c.at, least(c.arr / t.arr, 1), c.subscription_id"
	"  FROM (SELECT DISTINCT ON (v.deal_id, ch.subscription_id) v.deal_id, ch.subscription_id, ch.at,"
	"               salesmgmt.deal_new_arr(v.deal_id, NULL, ch.subscription_id) AS arr"
	"          FROM (SELECT cv.subscription_id, cv.valid_from::timestamptz AS at"
	"                  FROM salesmgmt.subscription_version cv"
	"                 WHERE cv.kind = 'cancellation' AND cv.valid_from >= $1 AND cv.valid_from < $2"
	"                UNION ALL"
	"                SELECT r.subscription_id, (r.term_end + 1)::timestamptz"
	"                  FROM salesmgmt.subscription_renewal r"
	"                 WHERE r.outcome = 'lost' AND r.term_end + 1 >= $1 AND r.term_end + 1 < $2) ch"
	"          JOIN salesmgmt.subscription_version v ON v.subscription_id = ch.subscription_id"
	"         WHERE v.deal_id IS NOT NULL AND v.kind IN ('new', 'expansion', 'contraction')"
	"         ORDER BY v.deal_id, ch.subscription_id, ch.at) c"
	"  CROSS JOIN LATERAL (SELECT salesmgmt.deal_new_arr(c.deal_id) AS arr) t"
	" WHERE c.arr > 0 AND t.arr > 0"
	" ORDER BY 1, 3, 2, 5";

/* what runs paid on watched deals, by rep and component */
#define CM_WATCH_COMPS(subs) \
	"SELECT l.rep_id, l.deal_id," \
	"       CASE WHEN l.spiff_id IS NOT NULL THEN 1 WHEN l.source_rep_id IS NOT NULL THEN 2 ELSE 0 END," \
	"       coalesce(l.spiff_id, l.source_rep_id, 0), max(l.plan_id)," \
	"       sum(coalesce(l.credit, 0))," \
	"       coalesce(sum(l.credit) FILTER (WHERE l.kind <> 'clawback'), 0)," \
	"       sum(l.amount), coalesce(sum(l.amount) FILTER (WHERE l.kind <> 'clawback'), 0)," \
	"       max(l.credited_at)," \
	"       array_agg(l.payment_id) FILTER (WHERE l.kind = 'clawback' AND l.reason = 'refund')," \
	subs \
	"  FROM salesmgmt.commission_line l" \
	" WHERE l.deal_id = ANY ($1) AND l.kind <> 'draw'" \
	" GROUP BY 1, 2, 3, 4"

static const char *cm_watch_comps_sql = CM_WATCH_COMPS("NULL::int8[]");
static const char *cm_watch_comps_churn_sql =
	CM_WATCH_COMPS("array_agg(l.subscription_id) FILTER (WHERE l.kind = 'clawback' AND l.reason = 'churned')");

/* the elements of an int8[] (nulls as 0) into a new array; their count */
static int
cm_int8_array(Datum arr, int64 **out)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				k;

	deconstruct_array(DatumGetArrayTypeP(arr), INT8OID, 8, FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &elems, &nulls, &n);
	*out = palloc(sizeof(int64) * Max(n, 1));
	for (k = 0; k < n; k++)
		(*out)[k] = nulls[k] ? 0 : DatumGetInt64(elems[k]);
	return n;
}

/*
 * The deals refunded during the period (booking basis): their refunds,
 * and what each rep was paid on them by component (from the ledger), so
 * that cm_refunds can claw back the refunded part.
 */
void
cm_load_watch(CmRun *run)
{
	Oid			types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[2] = {TimestampTzGetDatum(run->start_ts), TimestampTzGetDatum(run->end_ts)};
	SPITupleTable *tt;
	uint64		n,
				i;
	Datum	   *ids;
	int			nids = 0;
	Oid			atypes[1] = {INT8ARRAYOID};
	Datum		avalues[1];
	MemoryContext old = CurrentMemoryContext;

	/* refunds, then (new-ARR plans) churned subscriptions: "refunds" of
	 * their part of the deal's new ARR, without a payment */
	tt = sm_spi_query(run->any_new_arr ? cm_watch_churn_sql : cm_watch_sql,
					  2, types, values, NULL, false, SPI_OK_SELECT, &n);
	if (n == 0)
	{
		SPI_freetuptable(tt);
		return;
	}
	run->watch = cm_hash("salesmgmt commission refunds", sizeof(int64), sizeof(CmWatch), (long) n, run->run_cxt);
	MemoryContextSwitchTo(run->run_cxt);
	ids = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
	{
		int64		deal_id = sm_spi_int64(tt->vals[i], tt->tupdesc, 1, 0);
		bool		found,
					isnull;
		CmWatch    *w = hash_search(run->watch, &deal_id, HASH_ENTER, &found);
		CmRefund   *r;

		if (!found)
		{
			memset(((char *) w) + sizeof(int64), 0, sizeof(CmWatch) - sizeof(int64));
			ids[nids++] = Int64GetDatum(deal_id);
		}
		CM_APPEND(run->run_cxt, w->refunds, w->nrefunds, w->maxrefunds);
		r = &w->refunds[w->nrefunds - 1];
		r->payment_id = sm_spi_int64(tt->vals[i], tt->tupdesc, 2, 0);
		r->at = DatumGetTimestampTz(sm_spi_col(tt, i, 3, &isnull));
		r->fraction = sm_spi_numeric(tt->vals[i], tt->tupdesc, 4);
		r->subscription_id = sm_spi_int64(tt->vals[i], tt->tupdesc, 5, 0);
	}
	avalues[0] = PointerGetDatum(construct_array(ids, nids, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);

	/* what other runs paid on these deals (churns: with new-ARR plans,
	 * which a database at 0.1.0 cannot have) */
	tt = sm_spi_query(run->any_new_arr ? cm_watch_comps_churn_sql : cm_watch_comps_sql,
					  1, atypes, avalues, NULL, false, SPI_OK_SELECT, &n);
	MemoryContextSwitchTo(run->run_cxt);
	for (i = 0; i < n; i++)
	{
		int64		deal_id = sm_spi_int64(tt->vals[i], tt->tupdesc, 2, 0);
		CmWatch    *w = hash_search(run->watch, &deal_id, HASH_FIND, NULL);
		CmComp	   *c;
		bool		isnull;
		Datum		clawed;

		CM_APPEND(run->run_cxt, w->comps, w->ncomps, w->maxcomps);
		c = &w->comps[w->ncomps - 1];
		memset(c, 0, sizeof(*c));
		c->rep_id = sm_spi_int64(tt->vals[i], tt->tupdesc, 1, 0);
		c->comp = (CmComponent) DatumGetInt32(sm_spi_col(tt, i, 3, &isnull));
		c->aux = sm_spi_int64(tt->vals[i], tt->tupdesc, 4, 0);
		c->plan = cm_plan_by_id(run, sm_spi_int64(tt->vals[i], tt->tupdesc, 5, 0));
		c->credit_net = sm_spi_numeric(tt->vals[i], tt->tupdesc, 6);
		c->credit_gross = sm_spi_numeric(tt->vals[i], tt->tupdesc, 7);
		c->amount_net = sm_spi_numeric(tt->vals[i], tt->tupdesc, 8);
		c->amount_gross = sm_spi_numeric(tt->vals[i], tt->tupdesc, 9);
		c->at = DatumGetTimestampTz(sm_spi_col(tt, i, 10, &isnull));
		clawed = sm_spi_col(tt, i, 11, &isnull);
		if (!isnull)
			c->nclawed = cm_int8_array(clawed, &c->clawed);
		clawed = sm_spi_col(tt, i, 12, &isnull);
		if (!isnull)
			c->nclawed_subs = cm_int8_array(clawed, &c->clawed_subs);
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);
	run->recording = true;
}

/*
 * A churn claws back what was paid on new ARR: the own commission and
 * SPIFFs of a rep on a new-ARR plan, and the overrides on such a rep's
 * credit of the deal.
 */
static bool
cm_churn_claws(CmWatch *w, CmComp *c)
{
	int			j;

	if (c->comp != CM_COMP_OVERRIDE)
		return c->plan->new_arr;
	for (j = 0; j < w->ncomps; j++)
		if (w->comps[j].comp == CM_COMP_OWN && w->comps[j].rep_id == c->aux &&
			w->comps[j].plan != NULL && w->comps[j].plan->new_arr)
			return true;
	return false;
}

/*
 * Claw back, per refund of a watched deal within the clawback window of
 * its win, the refunded fraction of every component paid on the deal that
 * an earlier refund has not clawed back yet; per churned subscription of a
 * deal credited as new ARR, its part of the deal's new ARR likewise.
 */
void
cm_refunds(CmRun *run)
{
	HASH_SEQ_STATUS seq;
	CmWatch    *w;

	if (run->watch == NULL)
		return;
	run->recording = false;
	hash_seq_init(&seq, run->watch);
	while ((w = hash_seq_search(&seq)) != NULL)
	{
		int			i,
					j,
					k;

		for (i = 0; i < w->nrefunds; i++)
		{
			CmRefund   *r = &w->refunds[i];

			if (r->fraction == NULL)
				continue;
			if (run->writer.bulk.nused >= CM_FLUSH_AT)
				cm_flush(run);
			for (j = 0; j < w->ncomps; j++)
			{
				CmComp	   *c = &w->comps[j];
				Numeric		net = c->amount_net ? c->amount_net : sm_numeric_const(0);
				Numeric		base,
							rate,
							claw,
							credit = NULL;
				Datum		v[LC_NCOLS];
				bool		n[LC_NCOLS];
				bool		done = false;
				CmEvent		ev;

				if (c->plan == NULL || c->plan->payment_basis || c->plan->clawback_days <= 0)
					continue;
				if (r->at < c->at || r->at > c->at + (int64) c->plan->clawback_days * USECS_PER_DAY)
					continue;
				if (r->subscription_id != 0 && !cm_churn_claws(w, c))
					continue;
				for (k = 0; k < c->nclawed && r->subscription_id == 0; k++)
					done |= (c->clawed[k] == r->payment_id);
				for (k = 0; k < c->nclawed_subs && r->subscription_id != 0; k++)
					done |= (c->clawed_subs[k] == r->subscription_id);
				if (done || sm_numeric_sign(net) <= 0)
					continue;
				base = c->amount_gross ? c->amount_gross : sm_numeric_const(0);
				rate = r->fraction;
				claw = sm_numeric_round(sm_numeric_mul(base, rate), 2);
				if (sm_numeric_cmp(claw, net) > 0)
				{
					claw = net;
					/* a copy: cm_set below frees amount_net before the batch is written */
					base = sm_numeric_copy(run->line_cxt, net);
					rate = sm_numeric_const(1);
				}
				if (c->comp == CM_COMP_OWN && c->credit_gross != NULL)
				{
					credit = sm_numeric_mul(c->credit_gross, r->fraction);
					if (c->credit_net && sm_numeric_cmp(credit, c->credit_net) > 0)
						credit = c->credit_net;
				}
				if (sm_numeric_sign(claw) == 0)
					continue;
				memset(&ev, 0, sizeof(ev));
				ev.deal_id = w->deal_id;
				ev.payment_id = r->payment_id;
				ev.at = c->at;
				cm_line_init(v, n);
				cm_line_event(v, n, &ev);
				if (c->comp == CM_COMP_SPIFF)
					CM_SET(v, n, LC_SPIFF, Int64GetDatum(c->aux));
				if (c->comp == CM_COMP_OVERRIDE)
					CM_SET(v, n, LC_SOURCE, Int64GetDatum(c->aux));
				if (credit != NULL)
					CM_SET(v, n, LC_CREDIT, NumericGetDatum(sm_numeric_neg(credit)));
				CM_SET(v, n, LC_BASE, NumericGetDatum(base));
				CM_SET(v, n, LC_RATE, NumericGetDatum(rate));
				CM_SET(v, n, LC_REASON, run->reason_text[r->subscription_id != 0 ? CR_CHURNED : CR_REFUND]);
				if (r->subscription_id != 0)
					CM_SET(v, n, LC_SUBSCRIPTION, Int64GetDatum(r->subscription_id));
				CM_SET(v, n, LC_REVERSED_AT, TimestampTzGetDatum(r->at));
				cm_emit(run, cm_rep(run, c->rep_id), c->plan, CK_CLAWBACK, v, n, sm_numeric_neg(claw));
				cm_set(run->run_cxt, &c->amount_net, sm_numeric_sub(net, claw));
				if (credit != NULL)
					cm_set(run->run_cxt, &c->credit_net, sm_numeric_sub(c->credit_net, credit));
			}
		}
	}
}

/* ----------------------------------------------------------------------
 * Draws.  A recoverable draw is advanced (a draw line) and, with what is
 * still outstanding from earlier periods, recovered from the period's
 * earnings (a negative draw line, never more than the earnings).  A
 * non-recoverable draw tops the earnings up to its amount.
 * ----------------------------------------------------------------------
 */

static void
cm_draw_line(CmRun *run, CmRep *rep, int64 draw_id, bool recoverable, CmReason reason,
			 Numeric base, Numeric amount)
{
	Datum		v[LC_NCOLS];
	bool		n[LC_NCOLS];

	cm_line_init(v, n);
	if (draw_id != 0)
		CM_SET(v, n, LC_DRAW, Int64GetDatum(draw_id));
	CM_SET(v, n, LC_RECOVERABLE, BoolGetDatum(recoverable));
	if (base != NULL)
		CM_SET(v, n, LC_BASE, NumericGetDatum(base));
	CM_SET(v, n, LC_REASON, run->reason_text[reason]);
	cm_emit(run, rep, NULL, CK_DRAW, v, n, amount);
}

Numeric
cm_sum(CmRep *rep, CmSum s)
{
	return rep->sums[s] ? rep->sums[s] : sm_numeric_const(0);
}

/*
 * Settle draws per rep: a recoverable draw is advanced and recovered from
 * what the rep earns; non-recoverable draws top the earnings up to their
 * guarantee.
 */
void
cm_draws(CmRun *run)
{
	HASH_SEQ_STATUS seq;
	CmRep	   *rep;

	hash_seq_init(&seq, run->reps);
	while ((rep = hash_seq_search(&seq)) != NULL)
	{
		Numeric		earnings,
					balance,
					guarantee,
					topup;
		int			i;

		if (rep->ndraws == 0 && rep->draw_balance == NULL)
			continue;
		if (run->writer.bulk.nused >= CM_FLUSH_AT)
			cm_flush(run);
		earnings = cm_sum(rep, CS_EARNED);
		earnings = sm_numeric_add(earnings, cm_sum(rep, CS_SPIFFS));
		earnings = sm_numeric_add(earnings, cm_sum(rep, CS_OVERRIDES));
		earnings = sm_numeric_add(earnings, cm_sum(rep, CS_ADJUSTMENTS));
		earnings = sm_numeric_add(earnings, cm_sum(rep, CS_CLAWBACKS));
		balance = rep->draw_balance ? rep->draw_balance : sm_numeric_const(0);
		guarantee = sm_numeric_const(0);
		for (i = 0; i < rep->ndraws; i++)
		{
			CmDraw	   *d = &rep->draws[i];

			if (d->recoverable)
			{
				cm_draw_line(run, rep, d->draw_id, true, CR_ADVANCE, NULL, d->amount);
				balance = sm_numeric_add(balance, d->amount);
			}
			else
				guarantee = sm_numeric_add(guarantee, d->amount);
		}
		if (sm_numeric_sign(earnings) > 0 && sm_numeric_sign(balance) > 0)
			cm_draw_line(run, rep, 0, true, CR_RECOVERY, earnings,
						 sm_numeric_neg(sm_numeric_min(balance, earnings)));
		/* top up to the guarantee: guarantee - earnings, within [0, guarantee] */
		topup = sm_numeric_sub(guarantee, sm_numeric_max(sm_numeric_const(0), sm_numeric_min(earnings, guarantee)));
		for (i = 0; i < rep->ndraws && sm_numeric_sign(topup) > 0; i++)
		{
			CmDraw	   *d = &rep->draws[i];
			Numeric		part;

			if (d->recoverable)
				continue;
			part = sm_numeric_min(d->amount, topup);
			cm_draw_line(run, rep, d->draw_id, false, CR_GUARANTEE, earnings, part);
			topup = sm_numeric_sub(topup, part);
		}
	}
}


/*-------------------------------------------------------------------------
 *
 * subscription.c
 *	  Recurring revenue: the trigger that turns won deals into
 *	  subscriptions, and the month-end MRR series behind the views
 *	  mrr_movements and net_revenue_retention.
 *
 * The data model is in subscription.sql: a subscription and its dated,
 * append-only versions.  The MRR of a subscription on day D is the mrr of
 * its latest version with valid_from <= D when that version is active and
 * D is not after its end_date, else 0.  In the reporting currency each
 * version's mrr is converted with the rate of its valid_from day and
 * rounded to the cent, so a subscription's reporting MRR changes only when
 * a version says so: exchange-rate moves never show as expansion or
 * churn, and every figure below is a whole number of cents (int64), which
 * is why the movements reconcile exactly.
 *
 * Movements are per account, between month ends: an account with no MRR
 * at the start of the month and some at its end is new (reactivation if
 * it had MRR at an earlier month end), one with MRR at the start and none
 * at the end churned, otherwise the difference is expansion or
 * contraction.  So starting + new + expansion + contraction + churned +
 * reactivation = ending, to the cent, every month.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/hsearch.h"
#include "utils/datetime.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "core_currency.h"
#include "core_spi.h"
#include "pipeline.h"
#include "salesmgmt.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_subscription_deal_closed);
PG_FUNCTION_INFO_V1(sm_mrr_movements);
PG_FUNCTION_INFO_V1(sm_account_mrr);

/* ----------------------------------------------------------------------
 * Won and lost deals
 * ----------------------------------------------------------------------
 */

/* a won renewal deal: each open renewal it covers extends (or reactivates) */
#define SB_RENEWAL_WON_SQL \
	"WITH won AS (UPDATE salesmgmt.subscription_renewal r SET outcome = 'won', decided_at = now()" \
	"             WHERE r.deal_id = $1 AND r.outcome = 'open'" \
	"             RETURNING r.subscription_id, r.term_end)" \
	" INSERT INTO salesmgmt.subscription_version (subscription_id, valid_from, kind, quantity, mrr," \
	"                                             end_date, status, deal_id, reason)" \
	" SELECT s.subscription_id," \
	"        greatest($2::date, (SELECT max(v.valid_from) FROM salesmgmt.subscription_version v" \
	"                            WHERE v.subscription_id = s.subscription_id))," \
	"        CASE WHEN s.status = 'active' THEN 'renewal' ELSE 'reactivation' END," \
	"        s.quantity, s.mrr," \
	"        CASE WHEN s.status = 'active'" \
	"             THEN greatest((w.term_end + make_interval(months => s.term_months))::date, $2::date)" \
	"             ELSE ($2::date + make_interval(months => s.term_months))::date - 1 END," \
	"        'active', $1, 'renewal won'" \
	" FROM won w JOIN salesmgmt.subscription s ON s.subscription_id = w.subscription_id" \
	" WHERE s.status <> 'active' OR s.end_date = w.term_end" \
	" ORDER BY s.subscription_id"

#define SB_RENEWAL_LOST_SQL \
	"UPDATE salesmgmt.subscription_renewal r SET outcome = 'lost', decided_at = now()" \
	" WHERE r.deal_id = $1 AND r.outcome = 'open'"

/* the recurring lines of a deal, with the account's subscription of the
 * product in the deal's currency if it has one active on the close date */
#define SB_LINES_SQL \
	"SELECT l.quantity, round(l.line_amount / l.term_months, 4), l.term_months," \
	"       (SELECT s.subscription_id FROM salesmgmt.subscription s" \
	"         WHERE s.account_id = d.account_id AND s.product_id = l.product_id" \
	"           AND s.currency = d.currency AND s.status = 'active'" \
	"           AND (s.end_date IS NULL OR s.end_date >= $2::date)" \
	"         ORDER BY s.subscription_id LIMIT 1)," \
	"       l.product_id" \
	" FROM salesmgmt.deal_line l JOIN salesmgmt.deal d ON d.deal_id = l.deal_id" \
	" WHERE l.deal_id = $1 AND l.term_months IS NOT NULL" \
	" ORDER BY l.position NULLS LAST, l.line_id"

#define SB_CREATE_SQL \
	"INSERT INTO salesmgmt.subscription (account_id, product_id, deal_id, quantity, mrr, currency," \
	"                                    term_months, start_date, end_date)" \
	" SELECT d.account_id, $2, d.deal_id, $3, $4, d.currency, $5, $6::date," \
	"        ($6::date + make_interval(months => $5))::date - 1" \
	" FROM salesmgmt.deal d WHERE d.deal_id = $1"

#define SB_ADD_ON_SQL \
	"INSERT INTO salesmgmt.subscription_version (subscription_id, valid_from, kind, quantity, mrr," \
	"                                            end_date, status, deal_id, reason)" \
	" SELECT s.subscription_id," \
	"        greatest($6::date, (SELECT max(v.valid_from) FROM salesmgmt.subscription_version v" \
	"                            WHERE v.subscription_id = s.subscription_id))," \
	"        'expansion', s.quantity + $3, s.mrr + $4, s.end_date, 'active', $1, 'add-on deal'" \
	" FROM salesmgmt.subscription s WHERE s.subscription_id = $2"

/* the plans of the queries above, kept for the backend's life: a bulk
 * UPDATE closing many deals fires the trigger once per deal */
static SPIPlanPtr sb_renewal_won_plan;
static SPIPlanPtr sb_renewal_lost_plan;
static SPIPlanPtr sb_lines_plan;
static SPIPlanPtr sb_create_plan;
static SPIPlanPtr sb_add_on_plan;

/* The recurring lines of a won deal: new subscriptions, or add-ons. */
static void
sb_lines_won(int64 deal_id, Datum closed_at)
{
	Oid			types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[2];
	Oid			wtypes[6] = {INT8OID, INT8OID, NUMERICOID, NUMERICOID, INT4OID, TIMESTAMPTZOID};
	Datum		wvalues[6];
	SPITupleTable *tt;
	uint64		n;

	values[0] = Int64GetDatum(deal_id);
	values[1] = closed_at;
	tt = sm_spi_query_kept(&sb_lines_plan, SB_LINES_SQL, 2, types, values, NULL, false,
						   SPI_OK_SELECT, &n);
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		bool		no_sub;
		Datum		sub = sm_spi_col(tt, i, 4, &no_sub);

		wvalues[0] = Int64GetDatum(deal_id);
		wvalues[2] = sm_spi_col(tt, i, 1, &isnull);
		wvalues[3] = sm_spi_col(tt, i, 2, &isnull);
		wvalues[4] = sm_spi_col(tt, i, 3, &isnull);
		wvalues[5] = closed_at;
		if (no_sub)
		{
			wvalues[1] = sm_spi_col(tt, i, 5, &isnull);
			(void) sm_spi_query_kept(&sb_create_plan, SB_CREATE_SQL, 6, wtypes, wvalues, NULL,
									 false, SPI_OK_INSERT, NULL);
		}
		else
		{
			wvalues[1] = sub;
			(void) sm_spi_query_kept(&sb_add_on_plan, SB_ADD_ON_SQL, 6, wtypes, wvalues, NULL,
									 false, SPI_OK_INSERT, NULL);
		}
	}
}

/*
 * AFTER UPDATE ROW on deal, when closed_at becomes set (the WHEN clause):
 * a won deal's recurring lines become subscriptions or add to the
 * account's existing ones from the close date, a won renewal deal extends
 * what it covers, a lost one marks its renewals lost (the subscriptions
 * then end at their term end).  Reopened and re-won deals act again.
 */
Datum
sm_subscription_deal_closed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	td;
	HeapTuple	newtup;
	int			deal_att;
	int			stage_att;
	int			closed_att;
	bool		isnull;
	int64		deal_id;
	Datum		closed_at;
	Oid			types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[2];
	SmStage    *stage;
	SmOutcome	outcome;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_subscription_deal_closed must be fired AFTER UPDATE FOR EACH ROW")));
	newtup = trigdata->tg_newtuple;
	td = RelationGetDescr(trigdata->tg_relation);
	deal_att = SPI_fnumber(td, "deal_id");
	stage_att = SPI_fnumber(td, "stage_id");
	closed_att = SPI_fnumber(td, "closed_at");
	if (deal_att <= 0 || stage_att <= 0 || closed_att <= 0)
		elog(ERROR, "salesmgmt.deal lacks deal_id, stage_id or closed_at");
	closed_at = heap_getattr(newtup, closed_att, td, &isnull);
	if (isnull)
		return PointerGetDatum(NULL);
	deal_id = DatumGetInt64(heap_getattr(newtup, deal_att, td, &isnull));

	/* the stage's outcome from the pipeline cache (pipeline.c), not a query */
	sm_config_current();
	stage = sm_find_stage(DatumGetInt64(heap_getattr(newtup, stage_att, td, &isnull)));
	outcome = stage ? stage->outcome : SM_OUTCOME_OPEN;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	values[0] = Int64GetDatum(deal_id);
	values[1] = closed_at;
	if (outcome == SM_OUTCOME_WON)
	{
		(void) sm_spi_query_kept(&sb_renewal_won_plan, SB_RENEWAL_WON_SQL, 2, types, values,
								 NULL, false, SPI_OK_INSERT, NULL);
		sb_lines_won(deal_id, closed_at);
	}
	else if (outcome == SM_OUTCOME_LOST)
		(void) sm_spi_query_kept(&sb_renewal_lost_plan, SB_RENEWAL_LOST_SQL, 1, types, values,
								 NULL, false, SPI_OK_UPDATE, NULL);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* ----------------------------------------------------------------------
 * Month-end MRR
 * ----------------------------------------------------------------------
 */

/* one version of the subscription being read */
typedef struct SbVersion
{
	int64		account_id;
	int64		subscription_id;
	int32		version;
	DateADT		valid_from;
	DateADT		end_date;		/* DATEVAL_NOEND for evergreen */
	bool		active;
	int64		cents;			/* reporting MRR in cents */
} SbVersion;

/* the whole computation: months, the account being summed, the results */
typedef struct SbSeries
{
	int			nmonths;
	DateADT    *month_start;
	DateADT    *month_end;
	int			first_month;	/* year * 12 + month - 1 of the first month */
	int64	   *acc;			/* the current account's MRR per month end, as
								 * differences (nmonths + 1 of them) */
	int64	   *totals;			/* SB_NMOVE per month (movements) */
	ReturnSetInfo *rsinfo;		/* account_mrr: rows go here at once */
	DateADT		out_from;		/* months output: [out_from, out_to] */
	DateADT		out_to;
} SbSeries;

/* the result columns of salesmgmt.mrr_movements_between, in order */
typedef enum SbCol
{
	SB_COL_MONTH,
	SB_COL_STARTING,
	SB_COL_NEW,
	SB_COL_EXPANSION,
	SB_COL_CONTRACTION,
	SB_COL_CHURNED,
	SB_COL_REACTIVATION,
	SB_COL_ENDING,
	SB_COL_ACCOUNTS,
	SB_NCOLUMNS
} SbCol;

#define SB_NMOVE (SB_NCOLUMNS - 1)	/* the figures after month */

static const char *const sb_movement_columns[] = {
	"month", "starting_mrr", "new_mrr", "expansion_mrr", "contraction_mrr",
	"churned_mrr", "reactivation_mrr", "ending_mrr", "accounts"
};

StaticAssertDecl(lengthof(sb_movement_columns) == SB_NCOLUMNS,
				 "every column of salesmgmt.mrr_movements_between is named");

/* the result columns of salesmgmt.account_mrr */
typedef enum SbAccCol
{
	SB_ACC_ACCOUNT_ID,
	SB_ACC_MONTH,
	SB_ACC_MRR,
	SB_ACC_NCOLUMNS
} SbAccCol;

static const char *const sb_account_columns[] = {"account_id", "month", "mrr"};

StaticAssertDecl(lengthof(sb_account_columns) == SB_ACC_NCOLUMNS,
				 "every column of salesmgmt.account_mrr is named");

/* read in any order: grouped in memory (sb_group_versions) */
#define SB_VERSIONS_SQL \
	"SELECT v.account_id, v.subscription_id, v.valid_from, v.end_date, v.status = 'active'," \
	"       v.mrr, v.currency, v.version" \
	" FROM salesmgmt.subscription_version v"

/* subscription, valid_from, version */
static int
sb_version_cmp(const void *a, const void *b)
{
	const SbVersion *x = (const SbVersion *) a;
	const SbVersion *y = (const SbVersion *) b;

	if (x->subscription_id != y->subscription_id)
		return x->subscription_id < y->subscription_id ? -1 : 1;
	if (x->valid_from != y->valid_from)
		return x->valid_from < y->valid_from ? -1 : 1;
	return x->version < y->version ? -1 : x->version > y->version;
}

/*
 * The MRR of a version in cents of the reporting currency: converted at
 * the rate of its first day and rounded half away from zero, as round(x, 2)
 * does; in the reporting currency itself without numeric arithmetic.
 */
typedef struct SbRateCache
{
	SmRates    *rates;
	int64	   *scaled;			/* per rate: rate * 10^10, or -1 when unknown or too large */
} SbRateCache;

static int64
sb_version_cents(SbRateCache *rc, Datum mrr, Datum currency, DateADT day)
{
	SmRates    *rates = rc->rates;
	BpChar	   *code = DatumGetBpCharPP(currency);
	const SmRate *r;
	Numeric		n;
	int64		m4;

	m4 = sm_numeric_scaled_int64(mrr, 4);
	if (VARSIZE_ANY_EXHDR(code) >= 3 && memcmp(VARDATA_ANY(code), rates->target, 3) == 0)
		return (m4 + (m4 >= 0 ? 50 : -50)) / 100;
	r = sm_rates_lookup(rates, VARDATA_ANY(code), day);
	if (r != NULL && !r->divide)
	{
		int			i = r - rates->rates;

		if (rc->scaled[i] == 0)
		{
			/* rate * 10^10 as an int64, once per rate (numeric(24,10)) */
			Numeric		x = sm_numeric_mul(r->rate, sm_numeric_from_cstring("10000000000"));

			rc->scaled[i] = sm_numeric_cmp(x, sm_numeric_from_int64(PG_INT64_MAX)) < 0
				? DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(sm_numeric_round(x, 0)))) : -1;
		}
#ifdef HAVE_INT128
		if (rc->scaled[i] > 0)
		{
			/* mrr * rate exactly, at scale 4 + 10; rounded half away from zero to cents */
			int128		p = (int128) m4 * rc->scaled[i];
			const int64 unit = INT64CONST(1000000000000);

			p += p >= 0 ? unit / 2 : -(unit / 2);
			return (int64) (p / unit);
		}
#endif
	}
	n = sm_rates_convert(rates, DatumGetNumeric(mrr), VARDATA_ANY(code), day);
	return sm_numeric_scaled_int64(NumericGetDatum(sm_numeric_round(n, 2)), 2);
}

static DateADT
sb_month_first(DateADT day)
{
	int			y,
				m,
				d;

	j2date(day + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	return date2j(y, m, 1) - POSTGRES_EPOCH_JDATE;
}

static DateADT
sb_month_next(DateADT first)
{
	int			y,
				m,
				d;

	j2date(first + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	if (++m > 12)
	{
		m = 1;
		y++;
	}
	return date2j(y, m, 1) - POSTGRES_EPOCH_JDATE;
}

static Datum
sb_cents_datum(int64 cents)
{
	return NumericGetDatum(int64_div_fast_to_numeric(cents, 2));
}

/* index of the month holding day in the series (may lie outside it) */
static int
sb_month_index(const SbSeries *s, DateADT day)
{
	int			y,
				m,
				d;

	j2date(day + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	return y * 12 + m - 1 - s->first_month;
}

/*
 * Adds a subscription's month-end MRR to the account's, as differences:
 * a version counts at the ends of the months from the one holding its
 * valid_from to the one before the next version's, and not after its
 * end_date; s->acc[m] - s->acc[m - 1] summed up to m is the MRR at the end
 * of month m (sb_account_done).  So the cost is per version, not per month.
 */
static void
sb_add_subscription(SbSeries *s, const SbVersion *v, int nv)
{
	for (int k = 0; k < nv; k++)
	{
		int			from;
		int			to;

		if (!v[k].active || v[k].cents == 0)
			continue;
		from = Max(sb_month_index(s, v[k].valid_from), 0);
		to = k + 1 < nv ? Min(sb_month_index(s, v[k + 1].valid_from), s->nmonths) : s->nmonths;
		if (v[k].end_date != DATEVAL_NOEND)
		{
			/* month ends on or before the end date */
			int			last = sb_month_index(s, v[k].end_date);

			if (v[k].end_date + 1 == sb_month_first(v[k].end_date + 1))
				last++;
			to = Min(to, last);
		}
		if (from < to)
		{
			s->acc[from] += v[k].cents;
			s->acc[to] -= v[k].cents;
		}
	}
}

/* Classifies the account's month ends into the movements; resets it. */
static void
sb_account_done(SbSeries *s, int64 account_id)
{
	bool		ever = false;
	int64		prev = 0;
	int64		e = 0;

	for (int m = 0; m < s->nmonths; m++)
	{
		int64	   *t = s->totals + (size_t) m * SB_NMOVE;

		e += s->acc[m];
		t[SB_COL_STARTING - 1] += prev;
		t[SB_COL_ENDING - 1] += e;
		if (prev == 0 && e > 0)
			t[(ever ? SB_COL_REACTIVATION : SB_COL_NEW) - 1] += e;
		else if (prev > 0 && e == 0)
			t[SB_COL_CHURNED - 1] -= prev;
		else if (e > prev)
			t[SB_COL_EXPANSION - 1] += e - prev;
		else if (e < prev)
			t[SB_COL_CONTRACTION - 1] += e - prev;
		if (e > 0)
			t[SB_COL_ACCOUNTS - 1]++;
		if (s->rsinfo != NULL && (e != 0 || prev != 0) &&
			s->month_start[m] >= s->out_from && s->month_start[m] <= s->out_to)
		{
			Datum		values[SB_ACC_NCOLUMNS];
			bool		nulls[SB_ACC_NCOLUMNS] = {false};

			values[SB_ACC_ACCOUNT_ID] = Int64GetDatum(account_id);
			values[SB_ACC_MONTH] = DateADTGetDatum(s->month_start[m]);
			values[SB_ACC_MRR] = sb_cents_datum(e);
			tuplestore_putvalues(s->rsinfo->setResult, s->rsinfo->setDesc, values, nulls);
		}
		ever = ever || e > 0;
		prev = e;
	}
	memset(s->acc, 0, sizeof(int64) * (s->nmonths + 1));
}

/*
 * The versions grouped by subscription, each subscription's in order of
 * valid_from and version.  Subscription ids are dense (an identity), so a
 * counting sort places them in one pass, and the few versions of each are
 * put in order by insertion; ids too sparse for that are sorted.
 */
static SbVersion *
sb_group_versions(SbVersion *v, int64 nv)
{
	int64		lo;
	int64		hi;
	int64	   *pos;
	SbVersion  *w;

	if (nv < 2)
		return v;
	lo = hi = v[0].subscription_id;
	for (int64 i = 1; i < nv; i++)
	{
		lo = Min(lo, v[i].subscription_id);
		hi = Max(hi, v[i].subscription_id);
	}
	if (hi - lo > 4 * nv + 1024)
	{
		qsort(v, nv, sizeof(SbVersion), sb_version_cmp);
		return v;
	}
	pos = palloc_extended(sizeof(int64) * (hi - lo + 2), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (int64 i = 0; i < nv; i++)
		pos[v[i].subscription_id - lo + 1]++;
	for (int64 b = 1; b <= hi - lo + 1; b++)
		pos[b] += pos[b - 1];
	w = palloc_extended(sizeof(SbVersion) * nv, MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < nv; i++)
		w[pos[v[i].subscription_id - lo]++] = v[i];
	for (int64 i = 1; i < nv; i++)
	{
		SbVersion	x = w[i];
		int64		j = i;

		while (j > 0 && sb_version_cmp(&w[j - 1], &x) > 0)
		{
			w[j] = w[j - 1];
			j--;
		}
		w[j] = x;
	}
	pfree(pos);
	return w;
}

/* the month-end MRR of one account, found by its id */
typedef struct SbAccount
{
	int64		account_id;
	int64	   *acc;
} SbAccount;

/* the versions as the executor produces them: no SPI copy of each row */
typedef struct SbReceiver
{
	DestReceiver pub;
	SbRateCache rates;
	SbVersion  *v;
	int64		nv;
	int64		cap;
} SbReceiver;

static bool
sb_receive(TupleTableSlot *slot, DestReceiver *self)
{
	SbReceiver *r = (SbReceiver *) self;
	SbVersion  *x;

	slot_getallattrs(slot);
	if (r->nv == r->cap)
	{
		r->cap *= 2;
		r->v = repalloc_huge(r->v, sizeof(SbVersion) * r->cap);
	}
	x = &r->v[r->nv++];
	x->account_id = DatumGetInt64(slot->tts_values[0]);
	x->subscription_id = DatumGetInt64(slot->tts_values[1]);
	x->valid_from = DatumGetDateADT(slot->tts_values[2]);
	x->end_date = slot->tts_isnull[3] ? DATEVAL_NOEND : DatumGetDateADT(slot->tts_values[3]);
	x->active = DatumGetBool(slot->tts_values[4]);
	x->version = DatumGetInt32(slot->tts_values[7]);
	x->cents = sb_version_cents(&r->rates, slot->tts_values[5], slot->tts_values[6], x->valid_from);
	return true;
}

static void
sb_receiver_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
sb_receiver_noop(DestReceiver *self)
{
}

/*
 * Reads every version once, in account and subscription order, and sums
 * the month ends of [from, to] (the months from the first version's on,
 * so new and reactivation are told apart) per account.  p_from / p_to
 * null: from the first version's month, to the current month.
 */
static void
sb_compute(FunctionCallInfo fcinfo, SbSeries *s)
{
	MemoryContext cxt = CurrentMemoryContext;
	SmRates		rates;
	SPITupleTable *tt;
	uint64		n;
	DateADT		first;
	DateADT		m;
	SbReceiver	recv;
	SbVersion  *v;
	int64		nv = 0;
	int64		vcap = 1024;
	MemoryContext old;

	if (!PG_ARGISNULL(0) && !PG_ARGISNULL(1) && PG_GETARG_DATEADT(1) < PG_GETARG_DATEADT(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("p_to must not lie before p_from"),
				 errhint("Give the first and the last month of the range, in that order.")));
	if ((!PG_ARGISNULL(0) && DATE_NOT_FINITE(PG_GETARG_DATEADT(0))) ||
		(!PG_ARGISNULL(1) && DATE_NOT_FINITE(PG_GETARG_DATEADT(1))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("p_from and p_to must be finite dates"),
				 errhint("Leave them null for the whole history.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	tt = sm_spi_query("SELECT min(valid_from), current_date FROM salesmgmt.subscription_version",
					  0, NULL, NULL, NULL, true, SPI_OK_SELECT, &n);
	{
		bool		isnull;
		DateADT		today = DatumGetDateADT(sm_spi_col(tt, 0, 2, &isnull));
		Datum		d = sm_spi_col(tt, 0, 1, &isnull);
		DateADT		oldest = isnull ? today : DatumGetDateADT(d);

		s->out_from = sb_month_first(PG_ARGISNULL(0) ? oldest : PG_GETARG_DATEADT(0));
		s->out_to = sb_month_first(PG_ARGISNULL(1) ? today : PG_GETARG_DATEADT(1));
		first = Min(sb_month_first(oldest), s->out_from);
	}
	if (s->out_to < s->out_from)
		s->out_to = s->out_from;
	if (s->out_to - first > 100 * 366)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the months from %s to %s span more than 100 years",
						sm_date_iso_str(first), sm_date_iso_str(s->out_to)),
				 errhint("Give a later p_from or an earlier p_to.")));

	old = MemoryContextSwitchTo(cxt);
	s->nmonths = 0;
	for (m = first; m <= s->out_to; m = sb_month_next(m))
		s->nmonths++;
	s->month_start = palloc(sizeof(DateADT) * s->nmonths);
	s->month_end = palloc(sizeof(DateADT) * s->nmonths);
	s->acc = palloc0(sizeof(int64) * (s->nmonths + 1));
	{
		int			y,
					mo,
					d;

		j2date(first + POSTGRES_EPOCH_JDATE, &y, &mo, &d);
		s->first_month = y * 12 + mo - 1;
	}
	s->totals = palloc0(sizeof(int64) * s->nmonths * SB_NMOVE);
	m = first;
	for (int i = 0; i < s->nmonths; i++)
	{
		s->month_start[i] = m;
		m = sb_month_next(m);
		s->month_end[i] = m - 1;
	}
	v = palloc(sizeof(SbVersion) * vcap);
	sm_rates_load(&rates, sm_currency_reporting(), DATEVAL_NOBEGIN, DATEVAL_NOEND, true);
	MemoryContextSwitchTo(old);

	memset(&recv, 0, sizeof(recv));
	recv.pub.receiveSlot = sb_receive;
	recv.pub.rStartup = sb_receiver_startup;
	recv.pub.rShutdown = sb_receiver_noop;
	recv.pub.rDestroy = sb_receiver_noop;
	recv.pub.mydest = DestNone;
	recv.rates.rates = &rates;
	recv.rates.scaled = palloc0(sizeof(int64) * Max(rates.nrates, 1));
	recv.v = v;
	recv.cap = vcap;
	old = MemoryContextSwitchTo(cxt);
	sm_spi_query_dest(SB_VERSIONS_SQL, 0, NULL, NULL, &recv.pub);
	MemoryContextSwitchTo(old);
	v = recv.v;
	nv = recv.nv;
	v = sb_group_versions(v, nv);

	/* each subscription adds to its account's month ends; then each account */
	{
		HASHCTL		ctl;
		HTAB	   *accounts;
		HASH_SEQ_STATUS seq;
		SbAccount  *a = NULL;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(SbAccount);
		ctl.hcxt = cxt;
		accounts = hash_create("salesmgmt mrr accounts", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		for (int64 i = 0, first_of_sub = 0; i <= nv; i++)
		{
			if (i < nv && v[i].subscription_id == v[first_of_sub].subscription_id)
				continue;
			if (i > 0)
			{
				int64		id = v[first_of_sub].account_id;
				bool		found;

				if (a == NULL || a->account_id != id)
				{
					a = hash_search(accounts, &id, HASH_ENTER, &found);
					if (!found)
						a->acc = MemoryContextAllocZero(cxt, sizeof(int64) * (s->nmonths + 1));
				}
				s->acc = a->acc;
				sb_add_subscription(s, v + first_of_sub, i - first_of_sub);
			}
			first_of_sub = i;
		}
		hash_seq_init(&seq, accounts);
		while ((a = hash_seq_search(&seq)) != NULL)
		{
			s->acc = a->acc;
			sb_account_done(s, a->account_id);
		}
	}
	SPI_finish();
}

/*
 * salesmgmt.mrr_movements_between(p_from date, p_to date): per month of
 * the range, the MRR movements in the reporting currency (columns SbCol).
 */
Datum
sm_mrr_movements(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SbSeries	s;

	InitMaterializedSRF(fcinfo, 0);
	sm_check_result_columns(rsinfo->setDesc, sb_movement_columns, SB_NCOLUMNS);
	memset(&s, 0, sizeof(s));
	sb_compute(fcinfo, &s);
	for (int m = 0; m < s.nmonths; m++)
	{
		Datum		values[SB_NCOLUMNS];
		bool		nulls[SB_NCOLUMNS] = {false};
		int64	   *t = s.totals + (size_t) m * SB_NMOVE;

		if (s.month_start[m] < s.out_from)
			continue;
		values[SB_COL_MONTH] = DateADTGetDatum(s.month_start[m]);
		for (int c = SB_COL_STARTING; c < SB_COL_ACCOUNTS; c++)
			values[c] = sb_cents_datum(t[c - 1]);
		values[SB_COL_ACCOUNTS] = Int64GetDatum(t[SB_COL_ACCOUNTS - 1]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * salesmgmt.account_mrr(p_from date, p_to date): the month-end MRR of each
 * account in the reporting currency, for the months where it or the month
 * before is not zero (columns SbAccCol).
 */
Datum
sm_account_mrr(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SbSeries	s;

	InitMaterializedSRF(fcinfo, 0);
	sm_check_result_columns(rsinfo->setDesc, sb_account_columns, SB_ACC_NCOLUMNS);
	memset(&s, 0, sizeof(s));
	s.rsinfo = rsinfo;
	sb_compute(fcinfo, &s);
	return (Datum) 0;
}

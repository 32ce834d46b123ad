/*-------------------------------------------------------------------------
 *
 * core_currency.c
 *	  Exchange rates and currency conversion (see core_currency.h), and the
 *	  SQL functions salesmgmt.convert_amount and salesmgmt.reporting_currency.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "salesmgmt.h"
#include "core_currency.h"
#include "core_spi.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_convert_amount);
PG_FUNCTION_INFO_V1(sm_reporting_currency_sql);

const char *
sm_currency_reporting(void)
{
	return sm_reporting_currency != NULL ? sm_reporting_currency : SM_DEFAULT_CURRENCY;
}

/* a char(3) datum of a code */
static Datum
cur_bpchar(const char *code)
{
	return DirectFunctionCall3(bpcharin, CStringGetDatum(code),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/* a code of at most three characters, terminated */
static void
cur_code(char *dst, const char *code)
{
	int			len = strnlen(code, 3);

	memcpy(dst, code, len);
	dst[len] = '\0';
}

void
sm_currency_no_rate(const char *from, const char *to, DateADT day, int64 deal_id, bool iso)
{
	char		f[4],
				t[4];
	char	   *d = iso ? sm_date_iso_str(day)
		: DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(day)));

	cur_code(f, from);
	cur_code(t, to);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("no exchange rate from %s to %s on %s", f, t, d),
			 deal_id != 0 ?
			 errdetail("Deal " INT64_FORMAT " is in %s and converts on that day; salesmgmt.currency_rate has no row for this pair (in either direction) valid on or before it.",
					   deal_id, f) :
			 errdetail("salesmgmt.currency_rate has no row for this pair (in either direction) valid on or before that date."),
			 errhint("Insert a rate: INSERT INTO salesmgmt.currency_rate (currency, quote_currency, valid_from, rate) VALUES ('%s', '%s', '%s', ...).",
					 f, t, d)));
	pg_unreachable();
}

/* the pair of code, or NULL */
static SmRatePair *
cur_pair(SmRates *rates, const char *code)
{
	int			i;

	if (rates->last != NULL && memcmp(rates->last->code, code, 3) == 0)
		return rates->last;
	for (i = 0; i < rates->npairs; i++)
		if (memcmp(rates->pairs[i].code, code, 3) == 0)
			return rates->last = &rates->pairs[i];
	return NULL;
}

/* the rates to and from target, in one query (see core_currency.h) */
void
sm_rates_load(SmRates *rates, const char *target, DateADT from, DateADT to, bool read_only)
{
	static const char *const all_sql =
		"SELECT r.currency::text, r.quote_currency::text, r.valid_from, r.rate"
		"  FROM salesmgmt.currency_rate r"
		" WHERE r.currency = $1 OR r.quote_currency = $1"
		" ORDER BY 1, 2, 3";
	static const char *const window_sql =
		"SELECT r.currency::text, r.quote_currency::text, r.valid_from, r.rate"
		"  FROM salesmgmt.currency_rate r"
		" WHERE (r.currency = $1 OR r.quote_currency = $1)"
		"   AND r.valid_from > $2 AND r.valid_from <= $3"
		" UNION ALL "
		"(SELECT DISTINCT ON (r.currency, r.quote_currency)"
		"        r.currency::text, r.quote_currency::text, r.valid_from, r.rate"
		"   FROM salesmgmt.currency_rate r"
		"  WHERE (r.currency = $1 OR r.quote_currency = $1) AND r.valid_from <= $2"
		"  ORDER BY r.currency, r.quote_currency, r.valid_from DESC)"
		" ORDER BY 1, 2, 3";
	bool		window = !DATE_NOT_FINITE(from) && !DATE_NOT_FINITE(to);
	Oid			types[3] = {BPCHAROID, DATEOID, DATEOID};
	Datum		values[3];
	SPITupleTable *tt;
	uint64		n,
				i;

	memset(rates, 0, sizeof(SmRates));
	cur_code(rates->target, target);
	values[0] = cur_bpchar(rates->target);
	values[1] = DateADTGetDatum(from);
	values[2] = DateADTGetDatum(to);
	tt = sm_spi_query(window ? window_sql : all_sql, window ? 3 : 1, types, values, NULL,
					  read_only, SPI_OK_SELECT, &n);
	rates->rates = palloc(sizeof(SmRate) * Max(n, 1));
	rates->pairs = palloc(sizeof(SmRatePair) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = tt->vals[i];
		char	   *base = SPI_getvalue(tup, tt->tupdesc, 1);
		char	   *quote = SPI_getvalue(tup, tt->tupdesc, 2);
		bool		direct = strcmp(quote, rates->target) == 0;
		const char *code = direct ? base : quote;
		SmRate	   *r = &rates->rates[rates->nrates];
		SmRatePair *p = cur_pair(rates, code);
		bool		isnull;

		if (p == NULL)
		{
			p = &rates->pairs[rates->npairs++];
			memset(p, 0, sizeof(SmRatePair));
			cur_code(p->code, code);
			rates->last = p;
		}
		/* the rows of one pair and direction come in a run, by valid_from */
		if (direct && p->ndirect++ == 0)
			p->direct = rates->nrates;
		else if (!direct && p->nreverse++ == 0)
			p->reverse = rates->nrates;
		r->valid_from = DatumGetDateADT(SPI_getbinval(tup, tt->tupdesc, 3, &isnull));
		r->rate = sm_spi_numeric(tup, tt->tupdesc, 4);
		r->divide = !direct;
		rates->nrates++;
	}
	rates->last = NULL;
	SPI_freetuptable(tt);
}

/* the last of n rates (by valid_from) valid on day, or NULL */
static const SmRate *
cur_rate_on(const SmRate *list, int n, DateADT day)
{
	int			lo = 0,
				hi = n;

	/* first entry with valid_from > day */
	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (list[mid].valid_from <= day)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 ? &list[lo - 1] : NULL;
}

const SmRate *
sm_rates_lookup(SmRates *rates, const char *code, DateADT day)
{
	SmRatePair *p = cur_pair(rates, code);
	const SmRate *r;

	if (p == NULL)
		return NULL;
	if ((r = cur_rate_on(rates->rates + p->direct, p->ndirect, day)) != NULL)
		return r;
	return cur_rate_on(rates->rates + p->reverse, p->nreverse, day);
}

Numeric
sm_rate_apply(const SmRate *rate, Numeric amount)
{
	return rate->divide ? sm_numeric_div(amount, rate->rate)
		: sm_numeric_mul(amount, rate->rate);
}

Numeric
sm_rates_convert(SmRates *rates, Numeric amount, const char *code, DateADT day)
{
	const SmRate *r;

	if (amount == NULL || memcmp(code, rates->target, 3) == 0)
		return amount;
	r = sm_rates_lookup(rates, code, day);
	if (r == NULL)
		sm_currency_no_rate(code, rates->target, day, 0, false);
	return sm_rate_apply(r, amount);
}

/*
 * salesmgmt.convert_amount(p_amount numeric, p_from char(3), p_to char(3),
 * p_on date): one amount, the rate read from the table.  The plan of the
 * lookup is kept for the backend's life.
 */
Datum
sm_convert_amount(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	MemoryContext cxt = CurrentMemoryContext;
	Numeric		amount;
	Datum		values[3];
	SmRate		rate = {0};
	bool		found = false;
	int			pass;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("currencies and date of a conversion must not be null")));
	amount = PG_GETARG_NUMERIC(0);
	if (DatumGetBool(DirectFunctionCall2Coll(bpchareq, DEFAULT_COLLATION_OID,
											 PG_GETARG_DATUM(1), PG_GETARG_DATUM(2))))
		PG_RETURN_NUMERIC(amount);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (plan == NULL)
	{
		Oid			types[3] = {BPCHAROID, BPCHAROID, DATEOID};

		plan = sm_spi_prepare_kept("SELECT r.rate FROM salesmgmt.currency_rate r"
								   " WHERE r.currency = $1 AND r.quote_currency = $2"
								   "   AND r.valid_from <= $3"
								   " ORDER BY r.valid_from DESC LIMIT 1",
								   3, types);
	}
	/* the pair, else the reverse pair (divided by, not a rounded inverse) */
	for (pass = 0; pass < 2 && !found; pass++)
	{
		int			rc;

		values[0] = PG_GETARG_DATUM(pass == 0 ? 1 : 2);
		values[1] = PG_GETARG_DATUM(pass == 0 ? 2 : 1);
		values[2] = PG_GETARG_DATUM(3);
		rc = SPI_execute_plan(plan, values, NULL, true, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
		if (SPI_processed > 0)
		{
			MemoryContext spi = MemoryContextSwitchTo(cxt);

			rate.rate = sm_spi_numeric(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			rate.divide = pass == 1;
			found = true;
			MemoryContextSwitchTo(spi);
		}
	}
	SPI_finish();
	if (!found)
		sm_currency_no_rate(TextDatumGetCString(PG_GETARG_DATUM(1)),
							TextDatumGetCString(PG_GETARG_DATUM(2)),
							PG_GETARG_DATEADT(3), 0, false);
	PG_RETURN_NUMERIC(sm_rate_apply(&rate, amount));
}

/* salesmgmt.reporting_currency(): the setting, whose default is defined
 * once, in salesmgmt.h */
Datum
sm_reporting_currency_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(cur_bpchar(sm_currency_reporting()));
}

/*-------------------------------------------------------------------------
 *
 * util.c
 *	  Helpers shared by the salesmgmt concerns.
 *
 * Numeric arithmetic goes through the server's numeric functions with
 * DirectFunctionCall, so every amount keeps its exact decimal value; the
 * wrappers only make call sites readable.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "access/tupdesc.h"

#include "salesmgmt.h"
#include "util.h"

Numeric
sm_numeric_add(Numeric a, Numeric b)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_add,
											   NumericGetDatum(a),
											   NumericGetDatum(b)));
}

Numeric
sm_numeric_sub(Numeric a, Numeric b)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_sub,
											   NumericGetDatum(a),
											   NumericGetDatum(b)));
}

Numeric
sm_numeric_mul(Numeric a, Numeric b)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_mul,
											   NumericGetDatum(a),
											   NumericGetDatum(b)));
}

/* division; the caller makes sure b is not zero */
Numeric
sm_numeric_div(Numeric a, Numeric b)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_div,
											   NumericGetDatum(a),
											   NumericGetDatum(b)));
}

Numeric
sm_numeric_min(Numeric a, Numeric b)
{
	return sm_numeric_cmp(a, b) <= 0 ? a : b;
}

Numeric
sm_numeric_max(Numeric a, Numeric b)
{
	return sm_numeric_cmp(a, b) >= 0 ? a : b;
}

/* round half away from zero, as numeric's round() does */
Numeric
sm_numeric_round(Numeric a, int scale)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_round,
											   NumericGetDatum(a),
											   Int32GetDatum(scale)));
}

int
sm_numeric_cmp(Numeric a, Numeric b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp,
											 NumericGetDatum(a),
											 NumericGetDatum(b)));
}

bool
sm_numeric_is_zero(Numeric a)
{
	return sm_numeric_cmp(a, sm_numeric_zero()) == 0;
}

Numeric
sm_numeric_zero(void)
{
	return int64_to_numeric(0);
}

Numeric
sm_numeric_from_int64(int64 v)
{
	return int64_to_numeric(v);
}

Numeric
sm_numeric_from_cstring(const char *s)
{
	return DatumGetNumeric(DirectFunctionCall3(numeric_in,
											   CStringGetDatum(s),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

char *
sm_numeric_to_cstring(Numeric a)
{
	return DatumGetCString(DirectFunctionCall1(numeric_out,
											   NumericGetDatum(a)));
}

/*
 * For statistics only (Monte Carlo sampling, scores shown as ratios):
 * never use the result for money.
 */
double
sm_numeric_to_double(Numeric a)
{
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
											  NumericGetDatum(a)));
}

/*
 * The exact value of a numeric datum times 10^scale (0 <= scale <= 8) as
 * an int64: an amount of numeric(18,2) in cents with scale 2, a
 * probability of numeric(5,4) in 1/10000 with scale 4.  Errors if the
 * value has more decimals than that or does not fit.
 *
 * This runs once per row of the heavy scans, so the common case avoids
 * numeric arithmetic (and any allocation): it reads numeric's stored form,
 * the on-disk format that pg_upgrade keeps stable.  After the varlena
 * header comes a 16-bit header; in the short form (top bits 10) it holds
 * the sign (0x2000), the display scale (bits 0x1F80) and the weight in
 * base-10000 digits (0x003F, sign 0x0040), followed by the base-10000
 * digits, most significant first, trailing zero digits stripped.  Any
 * other form (long, NaN, infinity) takes the arithmetic path.
 */
int64
sm_numeric_scaled_int64(Datum d, int scale)
{
	static const int64 pow10[19] = {
		INT64CONST(1), INT64CONST(10), INT64CONST(100), INT64CONST(1000),
		INT64CONST(10000), INT64CONST(100000), INT64CONST(1000000),
		INT64CONST(10000000), INT64CONST(100000000), INT64CONST(1000000000),
		INT64CONST(10000000000), INT64CONST(100000000000),
		INT64CONST(1000000000000), INT64CONST(10000000000000),
		INT64CONST(100000000000000), INT64CONST(1000000000000000),
		INT64CONST(10000000000000000), INT64CONST(100000000000000000),
		INT64CONST(1000000000000000000)
	};
	struct varlena *v = PG_DETOAST_DATUM_PACKED(d);
	const char *data = VARDATA_ANY(v);
	int			len = VARSIZE_ANY_EXHDR(v);
	uint16		header;

	Assert(scale >= 0 && scale <= 8);
	if (len >= (int) sizeof(uint16))
	{
		memcpy(&header, data, sizeof(uint16));
		if ((header & 0xC000) == 0x8000 &&
			((header & 0x1F80) >> 7) <= scale)
		{
			int			weight = (header & 0x0040) ? (int) (header & 0x003F) - 64
				: (int) (header & 0x003F);
			int			ndigits = (len - (int) sizeof(uint16)) / (int) sizeof(int16);
			int64		result = 0;
			bool		ok = true;
			int			i;

			for (i = 0; i < ndigits && ok; i++)
			{
				int16		digit;
				int			exp10 = 4 * (weight - i) + scale;

				memcpy(&digit, data + sizeof(uint16) + i * sizeof(int16), sizeof(int16));
				if (exp10 < 0)
				{
					/* a digit below the scale: only its zero decimals fit */
					if (exp10 < -4 || digit % pow10[-exp10] != 0)
						ok = false;
					else
						result += digit / pow10[-exp10];
				}
				else if (exp10 > 18 ||
						 digit > PG_INT64_MAX / pow10[exp10] ||
						 pg_add_s64_overflow(result, digit * pow10[exp10], &result))
					ok = false;
			}
			if (ok)
				return (header & 0x2000) ? -result : result;
		}
	}

	/* every other form, and errors, through numeric arithmetic */
	{
		Numeric		n = DatumGetNumeric(d);
		Numeric		scaled = sm_numeric_mul(n, int64_to_numeric(pow10[scale]));

		if (sm_numeric_cmp(scaled, sm_numeric_round(scaled, 0)) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("value %s has more than %d decimals",
							sm_numeric_to_cstring(n), scale)));
		return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(scaled)));
	}
}

Numeric
sm_numeric_neg(Numeric a)
{
	return DatumGetNumeric(DirectFunctionCall1(numeric_uminus, NumericGetDatum(a)));
}

/* -1, 0 or 1 */
int
sm_numeric_sign(Numeric a)
{
	return sm_numeric_cmp(a, sm_numeric_const(0));
}

Numeric
sm_numeric_const(int value)
{
	static Numeric consts[2] = {NULL, NULL};

	Assert(value == 0 || value == 1);
	if (consts[value] == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		consts[value] = int64_to_numeric(value);
		MemoryContextSwitchTo(old);
	}
	return consts[value];
}

Numeric
sm_numeric_copy(MemoryContext cxt, Numeric n)
{
	Numeric		copy;

	if (n == NULL)
		return NULL;
	copy = (Numeric) MemoryContextAlloc(cxt, VARSIZE(n));
	memcpy(copy, n, VARSIZE(n));
	return copy;
}

/*
 * *slot += n, the sum kept in cxt; the previous sum, owned by the slot
 * (never a shared constant), is freed.  A NULL n adds nothing; a NULL
 * *slot starts at n.
 */
void
sm_numeric_accum(MemoryContext cxt, Numeric *slot, Numeric n)
{
	MemoryContext old;
	Numeric		sum;

	if (n == NULL)
		return;
	old = MemoryContextSwitchTo(cxt);
	sum = (*slot == NULL) ? sm_numeric_copy(cxt, n) : sm_numeric_add(*slot, n);
	if (*slot != NULL)
		pfree(*slot);
	*slot = sum;
	MemoryContextSwitchTo(old);
}

ArrayType *
sm_make_array(Datum *elems, bool *nulls, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return construct_md_array(elems, nulls, 1, dims, lbs, elemtype, typlen, typbyval, typalign);
}

/* a date in ISO form whatever DateStyle says, so that hints can be pasted */
char *
sm_date_iso_str(DateADT d)
{
	int			y,
				m,
				day;

	if (DATE_NOT_FINITE(d))
		return DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(d)));
	j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &day);
	if (y <= 0)
		return psprintf("%04d-%02d-%02d BC", 1 - y, m, day);
	return psprintf("%04d-%02d-%02d", y, m, day);
}

/* push an object key */
void
sm_jsonb_push_key(JsonbParseState **state, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
}

/* push "key": n, or "key": null when n is NULL */
void
sm_jsonb_push_numeric(JsonbParseState **state, const char *key, Numeric n)
{
	JsonbValue	v;

	sm_jsonb_push_key(state, key);
	if (n == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvNumeric;
		v.val.numeric = n;
	}
	pushJsonbValue(state, WJB_VALUE, &v);
}

/* push "key": "s" */
void
sm_jsonb_push_string(JsonbParseState **state, const char *key, const char *s)
{
	JsonbValue	v;

	sm_jsonb_push_key(state, key);
	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = strlen(s);
	pushJsonbValue(state, WJB_VALUE, &v);
}

/*
 * The result columns of a set-returning function as its C code fills them
 * (names, in order) must be those of its RETURNS TABLE: an install script
 * that disagrees with the library is an error, never rows in the wrong
 * columns.
 */
void
sm_check_result_columns(TupleDesc desc, const char *const *names, int n)
{
	int			i;

	for (i = 0; i < n && i < desc->natts; i++)
		if (strcmp(NameStr(TupleDescAttr(desc, i)->attname), names[i]) != 0)
			break;
	if (i < n || desc->natts != n)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("result columns of the function do not match the salesmgmt library"),
				 errdetail("Column %d is \"%s\" in SQL, \"%s\" in C.", i + 1,
						   i < desc->natts ? NameStr(TupleDescAttr(desc, i)->attname) : "",
						   i < n ? names[i] : ""),
				 errhint("Install script and library are from different versions: ALTER EXTENSION salesmgmt UPDATE, or install the matching library.")));
}

Oid
sm_schema_oid(void)
{
	return get_namespace_oid(SALESMGMT_SCHEMA, false);
}

Oid
sm_relation_oid(const char *relname)
{
	return sm_relation_oid_in(sm_schema_oid(), relname);
}

/* a relation of the extension, its schema's oid already at hand */
Oid
sm_relation_oid_in(Oid nsp, const char *relname)
{
	Oid			relid = get_relname_relid(relname, nsp);

	if (!OidIsValid(relid) && !sm_sql_is_current())
		sm_require_sql_version(sm_library_version(), psprintf("relation salesmgmt.%s", relname));
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist",
						SALESMGMT_SCHEMA, relname),
				 errhint("The salesmgmt extension is incomplete or damaged: run ALTER EXTENSION salesmgmt UPDATE, or DROP EXTENSION and CREATE EXTENSION.")));
	return relid;
}

/*
 * Raise unless called as a BEFORE INSERT OR UPDATE row trigger; name is the
 * function's SQL name, for the message.
 */
void
sm_require_before_row_trigger(FunctionCallInfo fcinfo, const char *name)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be called as a BEFORE INSERT OR UPDATE row trigger", name)));
}

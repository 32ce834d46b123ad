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
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

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

Oid
sm_schema_oid(void)
{
	return get_namespace_oid(SALESMGMT_SCHEMA, false);
}

Oid
sm_relation_oid(const char *relname)
{
	Oid			relid = get_relname_relid(relname, sm_schema_oid());

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist",
						SALESMGMT_SCHEMA, relname),
				 errhint("The salesmgmt extension may be damaged; reinstall it with DROP EXTENSION and CREATE EXTENSION.")));
	return relid;
}

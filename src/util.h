/*-------------------------------------------------------------------------
 *
 * util.h
 *	  Helpers shared by the salesmgmt concerns: exact numeric arithmetic
 *	  (money is never floating point), jsonb and array building, and
 *	  lookups of the extension's own catalog objects.  SPI helpers are in
 *	  core_spi.h, currency conversion in core_currency.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_UTIL_H
#define SALESMGMT_UTIL_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

/* numeric arithmetic through the server's own numeric functions */
extern Numeric sm_numeric_add(Numeric a, Numeric b);
extern Numeric sm_numeric_sub(Numeric a, Numeric b);
extern Numeric sm_numeric_mul(Numeric a, Numeric b);
extern Numeric sm_numeric_div(Numeric a, Numeric b);
extern Numeric sm_numeric_min(Numeric a, Numeric b);
extern Numeric sm_numeric_max(Numeric a, Numeric b);
extern Numeric sm_numeric_round(Numeric a, int scale);
extern int	sm_numeric_cmp(Numeric a, Numeric b);
extern bool sm_numeric_is_zero(Numeric a);
extern Numeric sm_numeric_zero(void);
extern Numeric sm_numeric_from_int64(int64 v);
extern Numeric sm_numeric_from_cstring(const char *s);
extern char *sm_numeric_to_cstring(Numeric a);
extern double sm_numeric_to_double(Numeric a);
extern int64 sm_numeric_scaled_int64(Datum d, int scale);
extern Numeric sm_numeric_neg(Numeric a);
extern int	sm_numeric_sign(Numeric a);

/* the numerics 0 and 1, made once per backend: shared, never to be freed */
extern Numeric sm_numeric_const(int value);

/* sums kept in a memory context that outlives per-row scratch */
extern Numeric sm_numeric_copy(MemoryContext cxt, Numeric n);	/* NULL stays NULL */
extern void sm_numeric_accum(MemoryContext cxt, Numeric *slot, Numeric n);

/* a one-dimensional SQL array of n datums (nulls may be NULL) */
extern ArrayType *sm_make_array(Datum *elems, bool *nulls, int n, Oid elemtype);

/* dates in messages: ISO whatever DateStyle says */
extern char *sm_date_iso_str(DateADT d);

/* building jsonb explanations (ledger lines, scorecard details) */
extern void sm_jsonb_push_key(JsonbParseState **state, const char *key);
extern void sm_jsonb_push_numeric(JsonbParseState **state, const char *key, Numeric n);
extern void sm_jsonb_push_string(JsonbParseState **state, const char *key, const char *s);

/* set-returning functions: the columns C fills are those SQL declares */
extern void sm_check_result_columns(TupleDesc desc, const char *const *names, int n);

/* the extension's schema and relations */
extern Oid	sm_schema_oid(void);
extern Oid	sm_relation_oid(const char *relname);
extern Oid	sm_relation_oid_in(Oid nsp, const char *relname);	/* nsp: sm_schema_oid() */

/* trigger functions */
extern void sm_require_before_row_trigger(FunctionCallInfo fcinfo, const char *name);

/*
 * the version of the extension's SQL objects in this database against this
 * library's (version.c): C code that needs objects of a later release
 * than the database has calls sm_require_sql_version (55000, hint: ALTER
 * EXTENSION salesmgmt UPDATE); background workers wait while
 * sm_worker_sql_ready is false
 */
extern const char *sm_library_version(void);
extern const char *sm_installed_version(void);
extern int	sm_version_cmp(const char *a, const char *b);
extern bool sm_sql_is_current(void);
extern void sm_require_sql_version(const char *since, const char *what);
extern bool sm_worker_sql_ready(const char *worker);

#endif							/* SALESMGMT_UTIL_H */

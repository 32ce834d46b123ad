/*-------------------------------------------------------------------------
 *
 * core_spi.c
 *	  The SPI helpers every concern uses (see core_spi.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/params.h"
#include "utils/snapmgr.h"

#include "core_spi.h"

/*
 * The end of every helper: an unexpected result is an error naming the
 * query; else the row count into *n (when n is not NULL), and the caller's
 * memory context current again.
 */
static SPITupleTable *
spi_result(MemoryContext caller, const char *call, int rc, int expected,
		   const char *sql, uint64 *n)
{
	if (rc != expected)
		elog(ERROR, "%s failed (%s) for \"%s\"", call, SPI_result_code_string(rc), sql);
	if (n)
		*n = SPI_processed;
	MemoryContextSwitchTo(caller);
	return SPI_tuptable;
}

/* a plan, or an error naming the query */
static SPIPlanPtr
spi_prepare(const char *sql, int nargs, const Oid *types)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, (Oid *) types);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed (%s) for \"%s\"",
			 SPI_result_code_string(SPI_result), sql);
	return plan;
}

SPITupleTable *
sm_spi_query(const char *sql, int nargs, const Oid *types, Datum *values, const char *nulls,
			 bool read_only, int expected, uint64 *n)
{
	MemoryContext old = CurrentMemoryContext;
	int			rc = SPI_execute_with_args(sql, nargs, (Oid *) types, values, nulls,
										   read_only, 0);

	return spi_result(old, "SPI_execute_with_args", rc, expected, sql, n);
}

SPITupleTable *
sm_spi_query_latest(const char *sql, int nargs, const Oid *types, Datum *values, const char *nulls,
					uint64 *n)
{
	MemoryContext old = CurrentMemoryContext;
	SPIPlanPtr	plan = spi_prepare(sql, nargs, types);
	int			rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
										  InvalidSnapshot, true, false, 0);

	SPI_freeplan(plan);
	return spi_result(old, "SPI_execute_snapshot", rc, SPI_OK_SELECT, sql, n);
}

SPIPlanPtr
sm_spi_prepare_kept(const char *sql, int nargs, const Oid *types)
{
	SPIPlanPtr	plan = spi_prepare(sql, nargs, types);

	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed for \"%s\"", sql);
	return plan;
}

SPITupleTable *
sm_spi_query_kept(SPIPlanPtr *plan, const char *sql, int nargs, const Oid *types, Datum *values,
				  const char *nulls, bool read_only, int expected, uint64 *n)
{
	MemoryContext old = CurrentMemoryContext;
	int			rc;

	if (*plan == NULL)
		*plan = sm_spi_prepare_kept(sql, nargs, types);
	rc = SPI_execute_plan(*plan, values, nulls, read_only, 0);
	return spi_result(old, "SPI_execute_plan", rc, expected, sql, n);
}

void
sm_spi_query_dest(const char *sql, int nargs, const Oid *types, Datum *values, DestReceiver *dest)
{
	MemoryContext old = CurrentMemoryContext;
	SPIPlanPtr	plan;
	ParamListInfo params;
	SPIExecuteOptions options;
	int			rc;
	int			i;

	plan = spi_prepare(sql, nargs, types);
	params = makeParamList(nargs);
	for (i = 0; i < nargs; i++)
	{
		params->params[i].value = values[i];
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = types[i];
	}
	params->numParams = nargs;
	memset(&options, 0, sizeof(options));
	/*
	 * No list at all without parameters: Citus 13.2's executor copies the
	 * list (copyParamList gives NULL for an empty one) and then reads the
	 * copy, which crashed the backend on a Citus coordinator.
	 */
	options.params = nargs > 0 ? params : NULL;
	options.read_only = true;
	options.dest = dest;
	rc = SPI_execute_plan_extended(plan, &options);
	/* SPI reports a SELECT into a DestNone receiver as a utility command */
	if (rc != SPI_OK_SELECT && !(dest != NULL && rc == SPI_OK_UTILITY))
		elog(ERROR, "SPI_execute_plan_extended failed (%s) for \"%s\"",
			 SPI_result_code_string(rc), sql);
	SPI_freeplan(plan);
	MemoryContextSwitchTo(old);
}

Portal
sm_spi_cursor_open(const char *sql, int nargs, const Oid *types, Datum *values, const char *nulls)
{
	MemoryContext old = CurrentMemoryContext;
	Portal		portal;

	/* not read-only: a new snapshot that sees the caller's own changes */
	portal = SPI_cursor_open_with_args(NULL, sql, nargs, (Oid *) types, values, nulls, false, 0);
	if (portal == NULL)
		elog(ERROR, "could not open cursor for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	MemoryContextSwitchTo(old);
	return portal;
}

SPITupleTable *
sm_spi_cursor_fetch(Portal portal, long count, uint64 *n)
{
	MemoryContext old = CurrentMemoryContext;
	SPITupleTable *tt;

	SPI_cursor_fetch(portal, true, count);
	tt = SPI_tuptable;
	*n = SPI_processed;
	MemoryContextSwitchTo(old);
	return tt;
}

int64
sm_spi_int64(HeapTuple tuple, TupleDesc desc, int col, int64 if_null)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	return isnull ? if_null : DatumGetInt64(d);
}

Numeric
sm_spi_numeric(HeapTuple tuple, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	return isnull ? NULL : DatumGetNumericCopy(d);
}

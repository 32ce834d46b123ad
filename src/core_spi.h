/*-------------------------------------------------------------------------
 *
 * core_spi.h
 *	  The SPI helpers every concern uses: queries with parameters, queries
 *	  on the latest snapshot, cursors, queries whose rows stream to a
 *	  DestReceiver, and reading columns of result rows.
 *
 * Every helper leaves the caller's memory context current (SPI itself
 * leaves its procedure context current), and turns an unexpected SPI
 * result into an internal error naming the query.  The caller connects
 * (SPI_connect) and finishes (SPI_finish).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_CORE_SPI_H
#define SALESMGMT_CORE_SPI_H

#include "postgres.h"

#include "executor/spi.h"
#include "tcop/dest.h"
#include "utils/numeric.h"

/*
 * Run sql with parameters; the result must be expected (SPI_OK_SELECT,
 * ...).  Returns SPI_tuptable and, when n is not NULL, the row count.
 * read_only: the calling statement's snapshot; otherwise a new one that
 * sees the caller's own earlier changes.
 */
extern SPITupleTable *sm_spi_query(const char *sql, int nargs, const Oid *types, Datum *values,
								   const char *nulls, bool read_only, int expected,
								   uint64 *n);

/* a read-only SELECT on the latest snapshot: sees rows that concurrent
 * transactions committed after ours started (as unique checks do) */
extern SPITupleTable *sm_spi_query_latest(const char *sql, int nargs, const Oid *types,
										  Datum *values, const char *nulls, uint64 *n);

/* a plan prepared once and kept for the backend's life (SPI_keepplan) */
extern SPIPlanPtr sm_spi_prepare_kept(const char *sql, int nargs, const Oid *types);

/*
 * sm_spi_query on a plan kept in *plan: prepared (and kept) on the first
 * call, so a trigger fired for every row of a bulk statement parses and
 * plans its queries once per backend instead of once per row.
 */
extern SPITupleTable *sm_spi_query_kept(SPIPlanPtr *plan, const char *sql, int nargs,
										const Oid *types, Datum *values, const char *nulls,
										bool read_only, int expected, uint64 *n);

/*
 * A read-only SELECT (no null parameters) whose rows go to dest one by
 * one as the executor produces them; with dest NULL, to SPI_tuptable.
 */
extern void sm_spi_query_dest(const char *sql, int nargs, const Oid *types, Datum *values,
							  DestReceiver *dest);

/* a cursor on a new snapshot (sees the caller's own changes), and the
 * next count rows of it */
extern Portal sm_spi_cursor_open(const char *sql, int nargs, const Oid *types, Datum *values,
								 const char *nulls);
extern SPITupleTable *sm_spi_cursor_fetch(Portal portal, long count, uint64 *n);

/* columns of a result row (col is 1-based) */
static inline Datum
sm_spi_col(SPITupleTable *tt, uint64 row, int col, bool *isnull)
{
	return SPI_getbinval(tt->vals[row], tt->tupdesc, col, isnull);
}

extern int64 sm_spi_int64(HeapTuple tuple, TupleDesc desc, int col, int64 if_null);
extern Numeric sm_spi_numeric(HeapTuple tuple, TupleDesc desc, int col);	/* a copy; NULL for null */

#endif							/* SALESMGMT_CORE_SPI_H */

/*-------------------------------------------------------------------------
 *
 * core_bulk.h
 *	  Writing rows into a table by hand, in batches, the way COPY writes
 *	  them (src/core_bulk.c): the commission ledger and the follow-up
 *	  reminders.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_CORE_BULK_H
#define SALESMGMT_CORE_BULK_H

#include "postgres.h"

#include "access/heapam.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "utils/rel.h"
#include "utils/sortsupport.h"

typedef struct SmBulkWriter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	BulkInsertState bistate;
	MemoryContext cxt;			/* the writer's own state and slots */
	TupleDesc	desc;			/* the slots' (a copy of the table's) */
	TupleTableSlot **slots;
	int			nused;
	int			maxslots;
	ExprState **defaults;		/* per table column the caller does not set */
	SortSupportData **index_order;	/* per index: the order of its keys (NULL:
									 * none), or NULL: ExecInsertIndexTuples */
} SmBulkWriter;

extern void sm_bulk_open(SmBulkWriter *w, Relation rel, const bool *set, int batch);
extern TupleTableSlot *sm_bulk_next_slot(SmBulkWriter *w);
extern void sm_bulk_write(SmBulkWriter *w);
extern void sm_bulk_clear(SmBulkWriter *w);
extern void sm_bulk_close(SmBulkWriter *w);

#endif							/* SALESMGMT_CORE_BULK_H */

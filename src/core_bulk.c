/*-------------------------------------------------------------------------
 *
 * core_bulk.c
 *	  Writing rows into a table by hand, in batches, the way COPY writes
 *	  them: a batch of slots goes to table_multi_insert after the table's
 *	  NOT NULL and CHECK constraints were checked, then the index entries
 *	  of the batch are inserted index by index, each index's in its key
 *	  order.  Columns the caller does not set get their defaults (an
 *	  identity in the order of the batch).
 *
 *	  What the writer does not do is the caller's to do or to refuse:
 *	  privileges, row-level security, triggers (foreign keys included).
 *	  The commission ledger refuses INSERT triggers; the follow-up
 *	  reminders (process_followup_write.c) write in bulk only when the
 *	  table's triggers are the extension's own and do what they do.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "compat.h"
#include "core_bulk.h"

/* the sort order of one index's keys: NULL when not a btree (no sort) */
static SortSupport
sm_bulk_index_order(Relation index, MemoryContext cxt)
{
	int			nkeys = IndexRelationGetNumberOfKeyAttributes(index);
	SortSupport ssup;
	int			k;

	if (index->rd_rel->relam != BTREE_AM_OID)
		return NULL;
	ssup = MemoryContextAllocZero(cxt, sizeof(SortSupportData) * nkeys);
	for (k = 0; k < nkeys; k++)
	{
		Oid			type = index->rd_opcintype[k];
		Oid			lt = get_opfamily_member(index->rd_opfamily[k], type, type, BTLessStrategyNumber);

		if (!OidIsValid(lt))
			return NULL;
		ssup[k].ssup_cxt = cxt;
		ssup[k].ssup_collation = index->rd_indcollation[k];
		ssup[k].ssup_nulls_first = false;
		PrepareSortSupportFromOrderingOp(lt, &ssup[k]);
	}
	return ssup;
}

/*
 * Open rel (locked RowExclusiveLock by the caller; the writer closes it)
 * for batched inserts: set[attnum - 1] is true for the columns the caller
 * fills, the others get their defaults; batch is a first guess of the
 * batch size (the slots grow as needed).  The writer's state lives in the
 * current memory context.
 */
void
sm_bulk_open(SmBulkWriter *w, Relation rel, const bool *set, int batch)
{
	memset(w, 0, sizeof(*w));
	w->cxt = CurrentMemoryContext;
	w->rel = rel;
	w->rri = sm_open_insert_target(rel, &w->estate);
	w->bistate = GetBulkInsertState();

	/*
	 * Index entries go in index by index, in key order (sm_bulk_write),
	 * unless an index needs what only ExecInsertIndexTuples does: deferred
	 * uniqueness or exclusion constraints.
	 */
	w->index_order = palloc0(sizeof(SortSupport) * Max(w->rri->ri_NumIndices, 1));
	for (int c = 0; c < w->rri->ri_NumIndices; c++)
	{
		Relation	index = w->rri->ri_IndexRelationDescs[c];

		if (index->rd_index->indisexclusion || !index->rd_index->indimmediate)
		{
			w->index_order = NULL;
			break;
		}
		w->index_order[c] = sm_bulk_index_order(index, w->cxt);
	}
	w->defaults = sm_column_defaults(rel, set);
	w->maxslots = Max(batch, 1);
	w->slots = palloc0(sizeof(TupleTableSlot *) * w->maxslots);
}

/*
 * The next slot of the batch, empty and with every column null: the caller
 * sets the columns it fills (datums that live until the batch is written
 * and cleared) and stores it with ExecStoreVirtualTuple.
 */
TupleTableSlot *
sm_bulk_next_slot(SmBulkWriter *w)
{
	TupleTableSlot *slot;

	if (w->nused >= w->maxslots)
	{
		MemoryContext old = MemoryContextSwitchTo(w->cxt);

		w->slots = repalloc(w->slots, sizeof(TupleTableSlot *) * w->maxslots * 2);
		memset(w->slots + w->maxslots, 0, sizeof(TupleTableSlot *) * w->maxslots);
		w->maxslots *= 2;
		MemoryContextSwitchTo(old);
	}
	if (w->slots[w->nused] == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(w->cxt);

		/*
		 * On a copy of the descriptor, not reference-counted: a pinned one
		 * is remembered by the resource owner once per slot, and thousands
		 * of slots made the remembering and forgetting quadratic.
		 */
		if (w->desc == NULL)
			w->desc = CreateTupleDescCopy(RelationGetDescr(w->rel));
		w->slots[w->nused] = MakeSingleTupleTableSlot(w->desc, table_slot_callbacks(w->rel));
		MemoryContextSwitchTo(old);
	}
	slot = w->slots[w->nused++];
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
	return slot;
}

/*
 * The index entries of a batch are inserted index by index, each index's
 * in its key order: entries inserted in key order descend to the same or
 * neighbouring pages one after the other, which are then in cache,
 * instead of all over the index.  Which order entries are inserted in
 * changes nothing in the index.
 */
typedef struct SmBulkEntry
{
	TupleTableSlot *slot;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
} SmBulkEntry;

typedef struct SmBulkEntryOrder
{
	int			nkeys;
	SortSupport ssup;
} SmBulkEntryOrder;

static int
sm_bulk_entry_cmp(const void *a, const void *b, void *arg)
{
	const SmBulkEntry *x = *(const SmBulkEntry *const *) a;
	const SmBulkEntry *y = *(const SmBulkEntry *const *) b;
	SmBulkEntryOrder *o = arg;
	int			k,
				c;

	for (k = 0; k < o->nkeys; k++)
	{
		c = ApplySortComparator(x->values[k], x->isnull[k], y->values[k], y->isnull[k], &o->ssup[k]);
		if (c != 0)
			return c;
	}
	/* entries are in the order of their heap tuples: keep it among equals */
	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Insert the index entries of the batch's rows, just written to the heap
 * (as ExecInsertIndexTuples does for a table with immediate unique
 * indexes, no exclusion constraints, no ON CONFLICT): index by index, the
 * entries of partial indexes only for rows that satisfy the predicate.
 */
static void
sm_bulk_insert_index_entries(SmBulkWriter *w)
{
	ResultRelInfo *rri = w->rri;
	ExprContext *econtext = GetPerTupleExprContext(w->estate);
	SmBulkEntry **entries = palloc(sizeof(SmBulkEntry *) * w->nused);
	SmBulkEntry *buf = palloc(sizeof(SmBulkEntry) * w->nused);
	int			i,
				j;

	for (i = 0; i < rri->ri_NumIndices; i++)
	{
		Relation	index = rri->ri_IndexRelationDescs[i];
		IndexInfo  *info = rri->ri_IndexRelationInfo[i];
		ExprState  *pred = NULL;
		SmBulkEntryOrder order;
		int			n = 0;

		if (index == NULL || !info->ii_ReadyForInserts)
			continue;
		if (info->ii_Predicate != NIL)
		{
			if (info->ii_PredicateState == NULL)
				info->ii_PredicateState = ExecPrepareQual(info->ii_Predicate, w->estate);
			pred = info->ii_PredicateState;
		}
		for (j = 0; j < w->nused; j++)
		{
			TupleTableSlot *slot = w->slots[j];

			econtext->ecxt_scantuple = slot;
			if (pred != NULL && !ExecQual(pred, econtext))
				continue;
			buf[n].slot = slot;
			FormIndexDatum(info, slot, w->estate, buf[n].values, buf[n].isnull);
			entries[n] = &buf[n];
			n++;
		}
		order.nkeys = IndexRelationGetNumberOfKeyAttributes(index);
		order.ssup = w->index_order[i];
		if (order.ssup != NULL)
			qsort_arg(entries, n, sizeof(SmBulkEntry *), sm_bulk_entry_cmp, &order);
		for (j = 0; j < n; j++)
			index_insert(index, entries[j]->values, entries[j]->isnull, &entries[j]->slot->tts_tid,
						 w->rel, index->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
						 false, info);
	}
	econtext->ecxt_scantuple = NULL;
	pfree(entries);
	pfree(buf);
}

/*
 * Write the batch: the defaults of the columns the caller does not set (an
 * identity in the order of the batch), the table's constraints, the heap
 * in one table_multi_insert, then the index entries.  The slots keep their
 * values (the defaults included) until sm_bulk_clear; what is evaluated
 * is allocated in the current memory context.
 */
void
sm_bulk_write(SmBulkWriter *w)
{
	ExprContext *econtext = GetPerTupleExprContext(w->estate);
	int			i,
				a;

	if (w->nused == 0)
		return;
	for (i = 0; i < w->nused; i++)
	{
		TupleTableSlot *slot = w->slots[i];

		for (a = 0; a < slot->tts_tupleDescriptor->natts; a++)
			if (w->defaults[a] != NULL)
				slot->tts_values[a] = ExecEvalExpr(w->defaults[a], econtext, &slot->tts_isnull[a]);
	}
	w->estate->es_output_cid = GetCurrentCommandId(true);
	if (w->rel->rd_att->constr != NULL)
		for (i = 0; i < w->nused; i++)
			ExecConstraints(w->rri, w->slots[i], w->estate);
	table_multi_insert(w->rel, w->slots, w->nused, w->estate->es_output_cid, 0, w->bistate);
	if (w->rri->ri_NumIndices > 0 && w->index_order != NULL)
		sm_bulk_insert_index_entries(w);
	else if (w->rri->ri_NumIndices > 0)
		for (i = 0; i < w->nused; i++)
			sm_insert_index_tuples(w->rri, w->slots[i], w->estate);
}

/* empty the batch (after sm_bulk_write) */
void
sm_bulk_clear(SmBulkWriter *w)
{
	for (int i = 0; i < w->nused; i++)
		ExecClearTuple(w->slots[i]);
	ResetPerTupleExprContext(w->estate);
	w->nused = 0;
}

/* write what is left, release the writer and close the table */
void
sm_bulk_close(SmBulkWriter *w)
{
	sm_bulk_write(w);
	sm_bulk_clear(w);
	FreeBulkInsertState(w->bistate);
	ExecCloseIndices(w->rri);
	for (int i = 0; i < w->maxslots; i++)
		if (w->slots[i] != NULL)
			ExecDropSingleTupleTableSlot(w->slots[i]);
	if (w->desc != NULL)
		FreeTupleDesc(w->desc);
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
}

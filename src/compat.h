/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every difference between the PostgreSQL major versions salesmgmt
 *	  builds against (15, 16, 17, 18), in one place.  Concern files use
 *	  these names and never test PG_VERSION_NUM themselves.
 *
 * 16 is not tested (no Debian suite ships it); its branches follow the
 * server headers and release notes of 16.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_COMPAT_H
#define SALESMGMT_COMPAT_H

#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "catalog/dependency.h"
#include "common/base64.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "nodes/bitmapset.h"
#include "nodes/pg_list.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#include "varatt.h"				/* VARDATA_ANY and friends: out of postgres.h in 18 */
#endif

#if PG_VERSION_NUM < 150000
#error "salesmgmt needs PostgreSQL 15 or later"
#endif

/*
 * The local transaction id of this backend: a field of PGPROC up to 16,
 * of PGPROC.vxid from 17 on.
 */
#if PG_VERSION_NUM >= 170000
#define SM_MY_LXID	(MyProc->vxid.lxid)
#else
#define SM_MY_LXID	(MyProc->lxid)
#endif

/*
 * Insert the index entries of a heap tuple just inserted (no ON CONFLICT,
 * no deferred uniqueness): 16 added the onlySummarizing argument.
 */
static inline void
sm_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	list_free(ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL, false));
#else
	list_free(ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL));
#endif
}

/*
 * A qualified name parsed into a list of names; 16 added soft error
 * reporting (NULL: errors are thrown).
 */
#if PG_VERSION_NUM >= 160000
#define sm_string_to_qualified_name_list(s)	stringToQualifiedNameList((s), NULL)
#else
#define sm_string_to_qualified_name_list(s)	stringToQualifiedNameList(s)
#endif

/*
 * Memory for a setting's "extra" (a check hook's parsed value): the GUC
 * machinery frees it with free() up to 15, with guc_free() from 16 on.
 */
#if PG_VERSION_NUM >= 160000
#define sm_guc_malloc(size)	guc_malloc(LOG, (size))
#define sm_guc_free(ptr)	guc_free(ptr)
#else
#define sm_guc_malloc(size)	malloc(size)
#define sm_guc_free(ptr)	free(ptr)
#endif

/*
 * A function that never returns: 18 replaced pg_attribute_noreturn(), an
 * attribute after the declaration, by pg_noreturn, a specifier before it.
 */
#if PG_VERSION_NUM >= 180000
#define sm_noreturn_before	pg_noreturn
#define sm_noreturn_after
#else
#define sm_noreturn_before
#define sm_noreturn_after	pg_attribute_noreturn()
#endif

/* Whether a role owns a relation: 16 made the owner checks generic. */
#if PG_VERSION_NUM >= 160000
#define sm_relation_ownercheck(relid, roleid)	object_ownercheck(RelationRelationId, (relid), (roleid))
#else
#define sm_relation_ownercheck(relid, roleid)	pg_class_ownercheck((relid), (roleid))
#endif

/* The sequence of an identity column: 17 takes the relation, opened. */
static inline Oid
sm_identity_sequence(Oid relid, AttrNumber attnum, bool missing_ok)
{
#if PG_VERSION_NUM >= 170000
	Relation	rel = relation_open(relid, AccessShareLock);
	Oid			seq = getIdentitySequence(rel, attnum, missing_ok);

	relation_close(rel, AccessShareLock);
	return seq;
#else
	return getIdentitySequence(relid, attnum, missing_ok);
#endif
}

/* An index scan: 18 added the instrumentation of EXPLAIN (none here). */
#if PG_VERSION_NUM >= 180000
#define sm_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), NULL, (nkeys), (norderbys))
#else
#define sm_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), (nkeys), (norderbys))
#endif

/*
 * A wait event set that lives as long as the process: 17 made wait event
 * sets resource-owner tracked (none: allocated in TopMemoryContext).
 */
#if PG_VERSION_NUM >= 170000
#define sm_create_wait_event_set(nevents)	CreateWaitEventSet(NULL, (nevents))
#else
#define sm_create_wait_event_set(nevents)	CreateWaitEventSet(TopMemoryContext, (nevents))
#endif

/* base64 of bytes: 18 takes and gives uint8 instead of char. */
#if PG_VERSION_NUM >= 180000
#define sm_b64_encode(src, len, dst, dstlen) \
	pg_b64_encode((const uint8 *) (src), (len), (dst), (dstlen))
#define sm_b64_decode(src, len, dst, dstlen) \
	pg_b64_decode((src), (len), (uint8 *) (dst), (dstlen))
#else
#define sm_b64_encode(src, len, dst, dstlen) \
	pg_b64_encode((const char *) (src), (len), (dst), (dstlen))
#define sm_b64_decode(src, len, dst, dstlen) \
	pg_b64_decode((src), (len), (char *) (dst), (dstlen))
#endif

/*
 * The range table of an executor state that inserts into one relation by
 * hand (rte, range table index 1): 16 moved permissions out of the range
 * table entry (RTEPermissionInfo), 18 added the unpruned relations.
 */
static inline void
sm_init_range_table(EState *estate, RangeTblEntry *rte)
{
#if PG_VERSION_NUM >= 160000
	List	   *perminfos = NIL;

	addRTEPermissionInfo(&perminfos, rte);
#endif
#if PG_VERSION_NUM >= 180000
	ExecInitRangeTable(estate, list_make1(rte), perminfos, bms_make_singleton(1));
#elif PG_VERSION_NUM >= 160000
	ExecInitRangeTable(estate, list_make1(rte), perminfos);
#else
	ExecInitRangeTable(estate, list_make1(rte));
#endif
}

/*
 * An executor state and result relation for inserting into rel by hand, in
 * bulk, with its indexes open (the commission ledger and the change log):
 * the caller inserts with table_multi_insert or table_tuple_insert, then
 * closes the indexes and frees the state.
 */
static inline ResultRelInfo *
sm_open_insert_target(Relation rel, EState **estate)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	ResultRelInfo *rri = makeNode(ResultRelInfo);

	*estate = CreateExecutorState();
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	sm_init_range_table(*estate, rte);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	return rri;
}

/*
 * The defaults of the columns of rel that an insert by hand does not set
 * (set[attnum - 1] false), ready to evaluate per row: natts expression
 * states, NULL where the caller sets the column, it is dropped or it has
 * no default.
 */
static inline ExprState **
sm_column_defaults(Relation rel, const bool *set)
{
	TupleDesc	desc = RelationGetDescr(rel);
	ExprState **defaults = palloc0(sizeof(ExprState *) * desc->natts);

	for (int a = 0; a < desc->natts; a++)
	{
		Node	   *expr;

		if (set[a] || TupleDescAttr(desc, a)->attisdropped)
			continue;
		expr = build_column_default(rel, a + 1);
		if (expr != NULL)
			defaults[a] = ExecInitExpr(expression_planner((Expr *) expr), NULL);
	}
	return defaults;
}

#endif							/* SALESMGMT_COMPAT_H */

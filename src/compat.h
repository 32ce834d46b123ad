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

#include "access/relation.h"
#include "catalog/dependency.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "nodes/bitmapset.h"
#include "nodes/pg_list.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/regproc.h"
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
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

#endif							/* SALESMGMT_COMPAT_H */

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

#include "executor/executor.h"
#include "nodes/pg_list.h"
#include "storage/proc.h"

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

#endif							/* SALESMGMT_COMPAT_H */

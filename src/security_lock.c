/*-------------------------------------------------------------------------
 *
 * security_lock.c
 *	  LOCK TABLE on the extension's tables: only for roles that may change
 *	  every row's columns.
 *
 * PostgreSQL 15 lets any role with table-level UPDATE, DELETE or TRUNCATE
 * lock a table in any mode.  Reps and managers keep DELETE on activity,
 * deal_split and sales_task (their own rows, under row-level security), and
 * with it could lock those tables in ACCESS EXCLUSIVE mode and stop every
 * session that reads or writes them.  No application needs a rep to lock
 * a whole table, so a lock stronger than ROW EXCLUSIVE (the mode ordinary
 * INSERT, UPDATE and DELETE take) on a table of schema salesmgmt also
 * needs table-level UPDATE or TRUNCATE (admins, the owner, superusers; on
 * PostgreSQL 17 also MAINTAIN).
 *
 * The check lives in a ProcessUtility hook, installed when the library is
 * loaded: from shared_preload_libraries (as the webhook worker needs) it
 * holds for every session; a library loaded on first use holds only from
 * then on in that session (docs/security.md says so).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lockdefs.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"

#include "salesmgmt.h"

/* PostgreSQL 17's MAINTAIN (pg_maintain) is meant for such locks too */
#ifdef ACL_MAINTAIN
#define SM_LOCK_ANY_MODE_PRIVILEGES (ACL_UPDATE | ACL_TRUNCATE | ACL_MAINTAIN)
#else
#define SM_LOCK_ANY_MODE_PRIVILEGES (ACL_UPDATE | ACL_TRUNCATE)
#endif

static ProcessUtility_hook_type prev_process_utility = NULL;

static const char *const lock_mode_names[] = {
	"", "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE",
	"SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"
};

static void
check_lock_table(LockStmt *stmt)
{
	Oid			schema;
	ListCell   *lc;

	if (stmt->mode <= RowExclusiveLock)
		return;
	schema = get_namespace_oid(SALESMGMT_SCHEMA, true);
	if (!OidIsValid(schema))
		return;
	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = lfirst_node(RangeVar, lc);
		Oid			relid = RangeVarGetRelid(rv, NoLock, true);

		/* unknown relations are left to LOCK TABLE's own error */
		if (!OidIsValid(relid) || get_rel_namespace(relid) != schema)
			continue;
		if (pg_class_aclcheck(relid, GetUserId(), SM_LOCK_ANY_MODE_PRIVILEGES) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to lock table salesmgmt.%s in %s mode",
							get_rel_name(relid), lock_mode_names[stmt->mode]),
					 errdetail("A lock stronger than ROW EXCLUSIVE on a table of salesmgmt needs table-level UPDATE or TRUNCATE: it would stop every other session using the table."),
					 errhint("Lock the rows you change instead (SELECT ... FOR UPDATE), or ask an admin.")));
	}
}

static void
sm_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				   ProcessUtilityContext context, ParamListInfo params,
				   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (IsA(pstmt->utilityStmt, LockStmt))
		check_lock_table((LockStmt *) pstmt->utilityStmt);

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

void
sm_security_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = sm_process_utility;
}

/*-------------------------------------------------------------------------
 *
 * version.c
 *	  The version of the extension's SQL objects in this database against
 *	  the version of this library.
 *
 * DBAs upgrade the package (a new salesmgmt.so, loaded by every backend
 * from then on) and then run ALTER EXTENSION salesmgmt UPDATE database by
 * database.  In between, a database still has the previous release's
 * tables and functions while the new library runs.  C code that needs
 * objects of a later release than the database has calls
 * sm_require_sql_version(), which raises a clear error with the hint to
 * update; the webhook worker asks sm_sql_is_current() and waits.
 *
 * The installed version is read from pg_extension once per transaction
 * (ALTER EXTENSION ... UPDATE commits before other sessions see it; a
 * session that updates and calls in the same transaction is seen by the
 * command counter check below).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "compat.h"
#include "salesmgmt.h"
#include "util.h"

/* the version of the SQL objects this library was built with (Makefile) */
#ifndef SM_LIBRARY_VERSION
#error "SM_LIBRARY_VERSION must be defined (see the Makefile)"
#endif

/* per-backend cache: valid for one transaction and command */
static LocalTransactionId cached_lxid = InvalidLocalTransactionId;
static CommandId cached_cid = InvalidCommandId;
static char cached_version[NAMEDATALEN];
static bool cached_present;

const char *
sm_library_version(void)
{
	return SM_LIBRARY_VERSION;
}

/*
 * The extversion of salesmgmt in this database, or NULL when the extension
 * is not installed.  Needs a transaction.
 */
const char *
sm_installed_version(void)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;

	if (cached_lxid == SM_MY_LXID && cached_cid == GetCurrentCommandId(false))
		return cached_present ? cached_version : NULL;

	cached_present = false;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("salesmgmt"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion, RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			text_to_cstring_buffer(DatumGetTextPP(d), cached_version, sizeof(cached_version));
			cached_present = true;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	cached_lxid = SM_MY_LXID;
	cached_cid = GetCurrentCommandId(false);
	return cached_present ? cached_version : NULL;
}

/*
 * Compare two versions "X.Y.Z" part by part as numbers (a missing part
 * counts as 0): negative, 0 or positive like strcmp.
 */
int
sm_version_cmp(const char *a, const char *b)
{
	while (*a || *b)
	{
		long		x = strtol(a, (char **) &a, 10);
		long		y = strtol(b, (char **) &b, 10);

		if (x != y)
			return x < y ? -1 : 1;
		if (*a == '.')
			a++;
		else if (*a)
			break;				/* not a number: compare what follows as text */
		if (*b == '.')
			b++;
		else if (*b)
			break;
	}
	return strcmp(a, b);
}

/*
 * True when this database's salesmgmt SQL is at least at the library's
 * version.  Inside the extension's own script (CREATE or ALTER EXTENSION)
 * the objects are being brought to a version: true.
 */
bool
sm_sql_is_current(void)
{
	const char *v;

	if (creating_extension)
		return true;
	v = sm_installed_version();
	return v != NULL && sm_version_cmp(v, SM_LIBRARY_VERSION) >= 0;
}

/*
 * Raise 55000 unless this database's salesmgmt SQL is at least version
 * `since`; `what` names the caller for the message.
 */
void
sm_require_sql_version(const char *since, const char *what)
{
	const char *v;

	if (creating_extension)
		return;
	v = sm_installed_version();
	if (v != NULL && sm_version_cmp(v, since) >= 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s needs salesmgmt %s in this database, which has %s",
					what, since, v ? v : "no salesmgmt extension"),
			 errdetail("The server runs the salesmgmt library %s; the extension's SQL objects in database \"%s\" are older.",
					   SM_LIBRARY_VERSION, get_database_name(MyDatabaseId)),
			 errhint("Run ALTER EXTENSION salesmgmt UPDATE in this database.")));
}

/*
 * For a background worker's loop: true when the SQL is current; otherwise
 * logs once that `worker` waits for the update (and once that it goes on
 * when the update came) and returns false.  Needs a transaction.
 */
bool
sm_worker_sql_ready(const char *worker)
{
	static bool waiting = false;
	bool		ready = sm_sql_is_current();

	if (!ready && !waiting)
	{
		const char *v = sm_installed_version();

		ereport(LOG,
				(errmsg("%s waits for ALTER EXTENSION salesmgmt UPDATE in database \"%s\"",
						worker, get_database_name(MyDatabaseId)),
				 errdetail("The database has salesmgmt %s; the library is %s.",
						   v ? v : "(not installed)", SM_LIBRARY_VERSION)));
		waiting = true;
	}
	else if (ready && waiting)
	{
		ereport(LOG,
				(errmsg("%s goes on: database \"%s\" has salesmgmt %s",
						worker, get_database_name(MyDatabaseId), sm_installed_version())));
		waiting = false;
	}
	return ready;
}

/*-------------------------------------------------------------------------
 *
 * webhook_worker.c
 *	  The webhook delivery worker: a background worker per database that
 *	  claims due deliveries from the outbox, sends them with libcurl's multi
 *	  interface and records every outcome.  This file owns the worker's
 *	  settings, its shared memory (how a commit wakes it), its registration
 *	  and its main loop; the phases are in webhook_store.c (the outbox
 *	  queries) and webhook_send.c (HTTP, and the one wait).
 *
 * The cycle, and why it is shaped so:
 *
 *	  claim   one short transaction marks up to a window of due deliveries
 *			  in flight (FOR UPDATE SKIP LOCKED, so concurrent claimers take
 *			  disjoint rows) with a lease, and commits before anything is
 *			  sent: no transaction, lock or snapshot is held across HTTP.
 *	  send	  at most salesmgmt.webhook_concurrency requests run at once over
 *			  kept-alive connections; each is signed just before it starts,
 *			  so its webhook-timestamp is fresh however long it waited.
 *	  record  completed requests are written in groups, each group one
 *			  transaction (deliveries updated, attempts appended).
 *
 * Claims refill the window while earlier requests are still running, so
 * the receiver is kept busy.  If the worker dies between claim and record
 * (crash, kill, immediate shutdown) its rows stay in flight: a starting
 * worker sends back to pending every in-flight row whose claimer is not a
 * live process, and any worker does so for leases that expired, so every
 * committed event is delivered at least once.  The recording of an outcome
 * only applies to the claim it belongs to (same attempt number, still in
 * flight), so a late outcome never overwrites a newer claim.
 *
 * Errors inside a cycle are logged and the worker goes on: the requests
 * in progress are abandoned and their rows released for another attempt.
 *
 * Every wait includes the postmaster's death (WL_EXIT_ON_PM_DEATH): with
 * requests in flight the wait is webhook_send.c's, on the curl sockets,
 * the latch and the postmaster together; idle it is WaitLatch.  On a hot
 * standby the worker waits quietly for the promotion: it reads nothing
 * and writes nothing until recovery has ended.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <unistd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "compat.h"
#include "salesmgmt.h"
#include "util.h"
#include "webhook_deliver.h"
#include "webhook_sign.h"

PG_FUNCTION_INFO_V1(sm_webhook_worker_start);
PG_FUNCTION_INFO_V1(sm_webhook_wake);

#define RECORD_DELAY_MS		20		/* longest an outcome waits to be written */
#define POLL_MS				10		/* longest network wait while requests run */
#define MAINTENANCE_MS		5000	/* lease sweep interval */
#define PURGE_MS			60000	/* retention purge interval at most */
#define NO_SHMEM_POLL_MS	1000	/* polling when commits cannot wake us */
#define IDLE_MS				10000	/* longest sleep when nothing is due */
#define STANDBY_POLL_MS		1000	/* how often a standby looks for its promotion */
#define CLAIM_GAP_MS		5		/* after a claim that drained the queue */

SmWebhookQueues sm_webhook_q;

static int	my_slot = -1;

/* The main loop's state; file-level so that it survives an error longjmp */
static struct
{
	bool		have_ext;		/* the extension exists in our database */
	bool		claim_more;		/* there may be due rows to claim */
	bool		release_mine;	/* our own in-flight rows are orphans */
	TimestampTz drained_at;		/* the last claim took every due row; 0: no */
	TimestampTz next_maintenance;
	TimestampTz next_purge;
	TimestampTz next_ext_check;
}			st = {false, true, true, 0, 0, 0, 0};

/* ---------------------------------------------------------------------
 * Settings
 * --------------------------------------------------------------------- */

char	   *sm_webhook_database = NULL;
int			sm_webhook_connect_timeout_ms = 5000;
int			sm_webhook_timeout_ms = 15000;
int			sm_webhook_concurrency = 16;
int			sm_webhook_retention_s = 7 * 24 * 3600;
static char *sm_webhook_retry_schedule = NULL;

int			sm_webhook_retry_count = 0;
int64		sm_webhook_retry_ms[SM_WEBHOOK_MAX_RETRIES];

#define SM_WEBHOOK_DEFAULT_SCHEDULE "5s,5min,30min,2h,5h,10h,14h,20h,24h"

typedef struct RetrySchedule
{
	int			count;
	int64		ms[SM_WEBHOOK_MAX_RETRIES];
} RetrySchedule;

/*
 * The schedule is a comma-separated list of delays, each a whole number
 * with a unit (ms, s, min, h, d), e.g. "5s,5min,2h".  Parsed by hand:
 * a check hook must not throw, which rules out calling interval_in.
 */
static bool
check_retry_schedule(char **newval, void **extra, GucSource source)
{
	RetrySchedule *rs;
	const char *p = *newval;

	/* the GUC machinery frees extra (compat.h) */
	rs = (RetrySchedule *) sm_guc_malloc(sizeof(RetrySchedule));
	if (rs == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		return false;
	}
	rs->count = 0;

	while (*p)
	{
		int64		n = 0;
		int64		unit;
		const char *start;

		while (*p == ' ')
			p++;
		if (!isdigit((unsigned char) *p))
		{
			GUC_check_errdetail("Each delay is a whole number followed by a unit (ms, s, min, h or d), e.g. \"5s,5min,2h\".");
			sm_guc_free(rs);
			return false;
		}
		while (isdigit((unsigned char) *p))
		{
			n = n * 10 + (*p++ - '0');
			if (n > INT64CONST(1000000000))
			{
				GUC_check_errdetail("A delay may be at most 1000000000 units.");
				sm_guc_free(rs);
				return false;
			}
		}
		while (*p == ' ')
			p++;
		start = p;
		while (isalpha((unsigned char) *p))
			p++;
		if (p - start == 2 && strncmp(start, "ms", 2) == 0)
			unit = 1;
		else if (p - start == 1 && *start == 's')
			unit = 1000;
		else if (p - start == 3 && strncmp(start, "min", 3) == 0)
			unit = 60 * 1000;
		else if (p - start == 1 && *start == 'h')
			unit = 3600 * 1000;
		else if (p - start == 1 && *start == 'd')
			unit = 24 * 3600 * 1000;
		else
		{
			GUC_check_errdetail("Unknown unit \"%.*s\": use ms, s, min, h or d.", (int) (p - start), start);
			sm_guc_free(rs);
			return false;
		}
		if (rs->count >= SM_WEBHOOK_MAX_RETRIES)
		{
			GUC_check_errdetail("At most %d retry delays are allowed.", SM_WEBHOOK_MAX_RETRIES);
			sm_guc_free(rs);
			return false;
		}
		rs->ms[rs->count++] = n * unit;
		while (*p == ' ')
			p++;
		if (*p == ',')
			p++;
		else if (*p != '\0')
		{
			GUC_check_errdetail("Separate the delays with commas.");
			sm_guc_free(rs);
			return false;
		}
	}
	*extra = rs;
	return true;
}

static void
assign_retry_schedule(const char *newval, void *extra)
{
	RetrySchedule *rs = (RetrySchedule *) extra;

	sm_webhook_retry_count = rs->count;
	memcpy(sm_webhook_retry_ms, rs->ms, sizeof(int64) * rs->count);
}

/* ---------------------------------------------------------------------
 * Shared memory and the wake-up at commit
 * --------------------------------------------------------------------- */

/*
 * One slot per running worker, so that a committing backend can set the
 * latch of its database's worker.  Present only when the library is in
 * shared_preload_libraries.
 */
typedef struct SmWebhookWorkerSlot
{
	Oid			dboid;			/* InvalidOid: slot free */
	pid_t		pid;
	Latch	   *latch;
} SmWebhookWorkerSlot;

typedef struct SmWebhookShared
{
	slock_t		mutex;
	SmWebhookWorkerSlot slots[SM_WEBHOOK_MAX_WORKERS];
} SmWebhookShared;

static SmWebhookShared *sm_webhook_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
sm_webhook_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(SmWebhookShared)));
}

static void
sm_webhook_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	sm_webhook_shared = ShmemInitStruct("salesmgmt webhook workers",
										sizeof(SmWebhookShared), &found);
	if (!found)
	{
		memset(sm_webhook_shared, 0, sizeof(SmWebhookShared));
		SpinLockInit(&sm_webhook_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

static bool wake_at_commit = false;
static bool xact_callback_registered = false;

/* Set the latch of the worker of this database, if one runs. */
static void
wake_worker(void)
{
	Latch	   *latch = NULL;
	int			i;

	if (sm_webhook_shared == NULL)
		return;					/* not preloaded: the worker polls */
	SpinLockAcquire(&sm_webhook_shared->mutex);
	for (i = 0; i < SM_WEBHOOK_MAX_WORKERS; i++)
	{
		if (sm_webhook_shared->slots[i].dboid == MyDatabaseId)
		{
			latch = sm_webhook_shared->slots[i].latch;
			break;
		}
	}
	SpinLockRelease(&sm_webhook_shared->mutex);

	/*
	 * The latch lives in the worker's PGPROC, which stays mapped after the
	 * worker exits; setting a stale one only causes a spurious wake-up.
	 */
	if (latch != NULL)
		SetLatch(latch);
}

static void
webhook_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_at_commit)
				wake_worker();
			wake_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			wake_at_commit = false;
			break;
		default:
			break;
	}
}

void
sm_webhook_wake_at_commit(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(webhook_xact_callback, NULL);
		xact_callback_registered = true;
	}
	wake_at_commit = true;
}

Datum
sm_webhook_wake(PG_FUNCTION_ARGS)
{
	sm_webhook_wake_at_commit();
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * Module initialisation
 * --------------------------------------------------------------------- */

static void register_static_worker(void);

/* Called from _PG_init: the settings, and with preloading the shared
 * memory and the worker of salesmgmt.webhook_database. */
void
sm_webhook_init(void)
{
	DefineCustomStringVariable("salesmgmt.webhook_database",
							   "Database the webhook worker started with the server connects to.",
							   "Used when salesmgmt is in shared_preload_libraries; other databases start "
							   "their worker with salesmgmt.webhook_worker_start().",
							   &sm_webhook_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("salesmgmt.webhook_retry_schedule",
							   "Delays between the attempts of a failing webhook delivery.",
							   "Comma-separated delays with units ms, s, min, h or d; after the last one "
							   "fails the delivery is dead.  Each delay gets up to 10% of random jitter.",
							   &sm_webhook_retry_schedule,
							   SM_WEBHOOK_DEFAULT_SCHEDULE,
							   PGC_SIGHUP,
							   0,
							   check_retry_schedule, assign_retry_schedule, NULL);
	DefineCustomIntVariable("salesmgmt.webhook_connect_timeout",
							"Time allowed to connect to a webhook receiver.",
							NULL,
							&sm_webhook_connect_timeout_ms,
							5000, 100, 300000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("salesmgmt.webhook_timeout",
							"Time allowed for a whole webhook request, connection included.",
							NULL,
							&sm_webhook_timeout_ms,
							15000, 100, 600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("salesmgmt.webhook_concurrency",
							"Webhook requests the worker has in flight at once.",
							"Also the number of kept-alive connections per receiver host.",
							&sm_webhook_concurrency,
							16, 1, 256,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("salesmgmt.webhook_retention",
							"How long delivered webhook deliveries and their attempts are kept.",
							"The worker purges older ones in small batches; 0 keeps them forever.  "
							"Failed and dead deliveries are never purged.",
							&sm_webhook_retention_s,
							7 * 24 * 3600, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("salesmgmt.webhook_allow_private_networks",
							 "Allows webhook deliveries to loopback, private, link-local and other non-public addresses.",
							 "Off by default so that an endpoint URL cannot reach services inside the network.",
							 &sm_webhook_allow_private_networks,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = sm_webhook_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = sm_webhook_shmem_startup;
		register_static_worker();
	}
}

/* ---------------------------------------------------------------------
 * Shared-memory slot: how committing backends find our latch
 * --------------------------------------------------------------------- */

static void
release_slot(int code, Datum arg)
{
	if (sm_webhook_shared == NULL || my_slot < 0)
		return;
	SpinLockAcquire(&sm_webhook_shared->mutex);
	if (sm_webhook_shared->slots[my_slot].pid == MyProcPid)
	{
		sm_webhook_shared->slots[my_slot].dboid = InvalidOid;
		sm_webhook_shared->slots[my_slot].pid = 0;
		sm_webhook_shared->slots[my_slot].latch = NULL;
	}
	SpinLockRelease(&sm_webhook_shared->mutex);
	my_slot = -1;
}

/*
 * Take this database's slot; false if another live worker holds it (then
 * this one is redundant and exits).
 */
static bool
take_slot(void)
{
	int			free_slot = -1;
	bool		ok = true;

	if (sm_webhook_shared == NULL)
		return true;
	SpinLockAcquire(&sm_webhook_shared->mutex);
	for (int i = 0; i < SM_WEBHOOK_MAX_WORKERS; i++)
	{
		SmWebhookWorkerSlot *s = &sm_webhook_shared->slots[i];

		if (s->dboid == MyDatabaseId)
		{
			if (s->pid != MyProcPid && s->pid != 0 && kill(s->pid, 0) == 0)
				ok = false;
			else
				free_slot = i;	/* its holder is gone: take it over */
			break;
		}
		if (s->dboid == InvalidOid && free_slot < 0)
			free_slot = i;
	}
	if (ok && free_slot >= 0)
	{
		sm_webhook_shared->slots[free_slot].dboid = MyDatabaseId;
		sm_webhook_shared->slots[free_slot].pid = MyProcPid;
		sm_webhook_shared->slots[free_slot].latch = MyLatch;
		my_slot = free_slot;
	}
	SpinLockRelease(&sm_webhook_shared->mutex);

	if (ok && my_slot < 0)
		ereport(LOG,
				(errmsg("salesmgmt webhook worker: all %d wake-up slots are taken; polling instead",
						SM_WEBHOOK_MAX_WORKERS)));
	if (my_slot >= 0)
		before_shmem_exit(release_slot, (Datum) 0);
	return ok;
}

/* ---------------------------------------------------------------------
 * Main loop
 * --------------------------------------------------------------------- */

/*
 * Milliseconds before the next claim may run, 0: now.  While transactions
 * commit events at a steady rate, every commit sets the latch; a claim at
 * every wake-up would be a transaction (and the look for the next due
 * row another) for one or two rows.  After a claim that took every due
 * row, the next waits CLAIM_GAP_MS for the rows committed meanwhile, so
 * one claim takes them together, at a cost of a few milliseconds of
 * latency.  A claim that filled the window leaves no gap: the backlog is
 * claimed as fast as the window empties.
 */
static long
claim_wait_ms(TimestampTz now)
{
	TimestampTz at;

	if (st.drained_at == 0)
		return 0;
	at = st.drained_at + CLAIM_GAP_MS * INT64CONST(1000);
	return now >= at ? 0 : Max(1, (at - now + 999) / 1000);
}

void
sm_webhook_worker_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	SmWebhookQueues *q = &sm_webhook_q;
	volatile bool standby_logged = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	if (OidIsValid(dboid))
		BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	else
		BackgroundWorkerInitializeConnection(sm_webhook_database, NULL, 0);
	pgstat_report_appname(SM_WEBHOOK_WORKER_TYPE);

	if (!take_slot())
	{
		ereport(LOG,
				(errmsg("salesmgmt webhook worker for database %u exits: another one runs already",
						MyDatabaseId)));
		proc_exit(0);
	}

	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		elog(FATAL, "could not initialise libcurl");
	memset(q, 0, sizeof(*q));
	q->worker_cxt = AllocSetContextCreate(TopMemoryContext, "webhook worker", ALLOCSET_DEFAULT_SIZES);
	q->cycle_cxt = AllocSetContextCreate(TopMemoryContext, "webhook cycle", ALLOCSET_DEFAULT_SIZES);
	q->done = MemoryContextAlloc(TopMemoryContext, SM_WEBHOOK_DONE_CAP * sizeof(SmWebhookJob *));
	q->queue = MemoryContextAlloc(TopMemoryContext, SM_WEBHOOK_MAX_WINDOW * sizeof(SmWebhookJob *));

	/*
	 * The worker runs as a superuser: resolve every name in pg_catalog
	 * first and never in a schema other users can create objects in.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * Every statement of the worker finds its rows through an index (the
	 * queue index, a primary key, event_id), whatever the statistics say.
	 * After the outbox was emptied (a purge, a TRUNCATE) and analyzed, the
	 * statistics say it is empty until autovacuum analyzes it again, up
	 * to a minute later (autovacuum_naptime) however fast it fills; plans
	 * made meanwhile (the kept ones are remade at every invalidation)
	 * scanned the whole table at every claim, and with events committed
	 * at 1,000 a second the backlog grew until the next analyze
	 * (bench/webhook.sh: 1,410 pending after 4.5 s, gone within a second
	 * of the autoanalyze).  So the worker's session plans no sequential
	 * or bitmap scan where an index serves.
	 */
	SetConfigOption("enable_seqscan", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("enable_bitmapscan", "off", PGC_SUSET, PGC_S_OVERRIDE);

	ereport(LOG, (errmsg("salesmgmt webhook worker started")));

	while (!ShutdownRequestPending)
	{
		TimestampTz now;
		bool		woken = MyLatch->is_set;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (st.have_ext)
				sm_webhook_send_setup();
		}

		/*
		 * A hot standby holds the outbox (it is WAL-logged) but must not
		 * write it: wait quietly, touching nothing, until the promotion.
		 */
		if (RecoveryInProgress())
		{
			if (!standby_logged)
				ereport(LOG,
						(errmsg("salesmgmt webhook worker waits: the server is a standby"),
						 errdetail("Deliveries start when it is promoted.")));
			standby_logged = true;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 STANDBY_POLL_MS, PG_WAIT_EXTENSION);
			continue;
		}
		if (standby_logged)
		{
			ereport(LOG, (errmsg("salesmgmt webhook worker: the server was promoted, deliveries start")));
			standby_logged = false;
			st.release_mine = true;
			st.next_ext_check = 0;
		}

		if (woken)
			st.claim_more = true;
		now = GetCurrentTimestamp();

		PG_TRY();
		{
			if (!st.have_ext && now >= st.next_ext_check)
			{
				st.have_ext = sm_webhook_extension_present();
				st.next_ext_check = now + IDLE_MS * INT64CONST(1000);
				if (st.have_ext)
				{
					sm_webhook_send_setup();
					sm_webhook_release_leases(st.release_mine);
					st.release_mine = false;
					st.next_maintenance = now + MAINTENANCE_MS * INT64CONST(1000);
					st.claim_more = true;
				}
			}

			if (st.have_ext)
			{
				if (now >= st.next_maintenance)
				{
					sm_webhook_release_leases(false);
					st.next_maintenance = now + MAINTENANCE_MS * INT64CONST(1000);
				}
				if (now >= st.next_purge && q->n_active == 0)
				{
					sm_webhook_purge();
					/* a short retention is purged more often than a long one */
					st.next_purge = now + Min((int64) PURGE_MS,
											  Max((int64) 1000, sm_webhook_retention_s * INT64CONST(500))) * INT64CONST(1000);
				}

				/*
				 * Refill the window when it is half empty.  Finished
				 * requests waiting to be recorded do not count: counted,
				 * they kept the window full until the whole claim was sent
				 * and recorded, so the receiver sat idle during every
				 * record and claim; they are bounded by the sender instead
				 * (it starts nothing while four record groups wait).
				 */
				if (q->due_at != 0 && now >= q->due_at)
					st.claim_more = true;
				if (st.claim_more && claim_wait_ms(now) == 0 &&
					(q->queue_len - q->queue_head) + q->n_active <= sm_webhook_window_size() / 2)
				{
					int			want = sm_webhook_window_size() - (q->queue_len - q->queue_head) - q->n_active;

					if (sm_webhook_claim(want) < want)
					{
						TimestampTz sweep = sm_webhook_sweep_due();

						/* drained: sleep until the next due row or a wake-up */
						st.claim_more = false;
						st.drained_at = now;
						q->due_at = sm_webhook_next_due();
						if (q->due_at != 0 && q->due_at <= GetCurrentTimestamp())
							q->due_at = GetCurrentTimestamp() + 1000 * INT64CONST(1000);
						/* a claim from the floor: wake for the sweep */
						if (sweep != 0 && (q->due_at == 0 || sweep < q->due_at))
							q->due_at = sweep;
					}
					else
					{
						st.drained_at = 0;
						q->due_at = 0;
					}
				}

				sm_webhook_start_queued();
				if (q->n_active > 0)
				{
					long		timeout = POLL_MS;
					long		gap = st.claim_more ? claim_wait_ms(GetCurrentTimestamp()) : 0;

					pgstat_report_activity(STATE_RUNNING, "sending webhook deliveries");
					/* back in time for a claim waiting for its gap */
					if (gap > 0)
						timeout = Min(timeout, gap);
					if (q->n_done >= SM_WEBHOOK_RECORD_GROUP)
						timeout = 0;
					sm_webhook_send_wait(timeout);
					sm_webhook_start_queued();
				}

				now = GetCurrentTimestamp();
				if (q->n_done >= SM_WEBHOOK_RECORD_GROUP ||
					(q->n_done > 0 && (q->n_active == 0 ||
									   now - q->first_done_at >= RECORD_DELAY_MS * INT64CONST(1000))))
				{
					sm_webhook_record_outcomes();
					sm_webhook_start_queued();
				}
			}
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(TopMemoryContext);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			sm_webhook_abandon_all();
			sm_webhook_claim_sweep_next();
			st.have_ext = false;
			st.release_mine = true;
			st.next_ext_check = GetCurrentTimestamp() + 1000 * INT64CONST(1000);
		}
		PG_END_TRY();
		MemoryContextReset(q->cycle_cxt);

		/* nothing running, a claim to make soon: wait for it, latch or not */
		if (q->n_active == 0 && q->n_done == 0 && (q->queue_len - q->queue_head) == 0 &&
			st.have_ext && st.claim_more)
		{
			long		gap = claim_wait_ms(GetCurrentTimestamp());

			if (gap > 0)
				(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, gap, PG_WAIT_EXTENSION);
		}
		/* nothing running: sleep until woken, due, or maintenance */
		else if (q->n_active == 0 && q->n_done == 0 && (q->queue_len - q->queue_head) == 0)
		{
			long		timeout = IDLE_MS;
			int			rc;

			now = GetCurrentTimestamp();
			if (!st.have_ext)
				timeout = Max(1, (st.next_ext_check - now) / 1000);
			else
			{
				if (q->due_at != 0)
					timeout = Min(timeout, Max(1, (q->due_at - now) / 1000));
				timeout = Min(timeout, Max(1, (st.next_maintenance - now) / 1000));
				if (sm_webhook_shared == NULL || my_slot < 0)
					timeout = Min(timeout, NO_SHMEM_POLL_MS);
			}
			pgstat_report_activity(STATE_IDLE, NULL);
			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						   timeout, PG_WAIT_EXTENSION);

			/*
			 * A timeout means something may be due (a retry, the poll when
			 * commits cannot wake us): look.  A latch wake-up is seen at the
			 * top of the loop.
			 */
			if (rc & WL_TIMEOUT)
				st.claim_more = true;
		}
	}

	ereport(LOG, (errmsg("salesmgmt webhook worker stopping")));
	proc_exit(0);
}

/* ---------------------------------------------------------------------
 * Registration
 * --------------------------------------------------------------------- */

static void
fill_worker(BackgroundWorker *w, const char *name)
{
	memset(w, 0, sizeof(*w));
	w->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w->bgw_start_time = BgWorkerStart_ConsistentState;	/* waits on a standby */
	w->bgw_restart_time = 10;
	strlcpy(w->bgw_library_name, "salesmgmt", BGW_MAXLEN);
	strlcpy(w->bgw_function_name, "sm_webhook_worker_main", BGW_MAXLEN);
	strlcpy(w->bgw_name, name, BGW_MAXLEN);
	strlcpy(w->bgw_type, SM_WEBHOOK_WORKER_TYPE, BGW_MAXLEN);
}

static void
register_static_worker(void)
{
	BackgroundWorker w;

	fill_worker(&w, SM_WEBHOOK_WORKER_TYPE);
	w.bgw_main_arg = ObjectIdGetDatum(InvalidOid);
	RegisterBackgroundWorker(&w);
}

/*
 * salesmgmt.webhook_worker_start(): the pid of this database's worker,
 * started now unless one runs.
 */
Datum
sm_webhook_worker_start(PG_FUNCTION_ARGS)
{
	BackgroundWorker w;
	BackgroundWorkerHandle *handle;
	pid_t		pid = 0;
	BgwHandleStatus status;
	int			rc;

	sm_require_sql_version(sm_library_version(), "salesmgmt.webhook_worker_start()");

	/* one worker per database */
	SPI_connect();
	{
		Datum		args[2] = {CStringGetTextDatum(SM_WEBHOOK_WORKER_TYPE), ObjectIdGetDatum(MyDatabaseId)};
		Oid			types[2] = {TEXTOID, OIDOID};

		rc = SPI_execute_with_args("SELECT pid FROM pg_catalog.pg_stat_activity"
								   " WHERE backend_type = $1 AND datid = $2 LIMIT 1",
								   2, types, args, NULL, true, 1);
		if (rc == SPI_OK_SELECT && SPI_processed == 1)
		{
			bool		isnull;

			pid = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		}
	}
	SPI_finish();
	if (pid != 0)
		PG_RETURN_INT32(pid);

	fill_worker(&w, psprintf("%s for database %u", SM_WEBHOOK_WORKER_TYPE, MyDatabaseId));
	w.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
	w.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&w, &handle))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start the webhook worker: no background worker slot is free"),
				 errhint("Raise max_worker_processes (a restart is needed) or stop other background workers.")));
	status = WaitForBackgroundWorkerStartup(handle, &pid);
	if (status != BGWH_STARTED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not start the webhook worker"),
				 errhint("See the server log for the reason.")));
	PG_RETURN_INT32(pid);
}

/*-------------------------------------------------------------------------
 *
 * webhook_worker.c
 *	  The webhook delivery worker: a background worker per database that
 *	  claims due deliveries from the outbox, sends them with libcurl's multi
 *	  interface and records every outcome.
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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <unistd.h>

#include <curl/curl.h>

#include "access/xact.h"
#include "lib/ilist.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "salesmgmt.h"
#include "util.h"
#include "webhook.h"

PG_FUNCTION_INFO_V1(sm_webhook_worker_start);

#define RESPONSE_KEEP		256		/* bytes of a response body recorded */
#define RECORD_GROUP		256		/* outcomes written per transaction at most */
#define RECORD_DELAY_MS		20		/* longest an outcome waits to be written */
#define POLL_MS				10		/* longest curl wait while requests run */
#define MAINTENANCE_MS		5000	/* lease sweep interval */
#define PURGE_MS			60000	/* retention purge interval at most */
#define PURGE_BATCH			1000	/* rows purged per transaction */
#define PURGE_ROUNDS		10		/* purge transactions per interval at most */
#define NO_SHMEM_POLL_MS	1000	/* polling when commits cannot wake us */
#define IDLE_MS				10000	/* longest sleep when nothing is due */

/* One claimed delivery, from claim to recorded outcome */
typedef struct Job
{
	struct Batch *batch;
	dlist_node	active_node;	/* in active_jobs while being sent */
	int64		delivery_id;
	int32		attempt;
	int32		retry_step;
	int64		endpoint_id;
	char	   *event_id;
	char	   *url;
	char	   *secret;
	char	   *payload;

	/* while sending */
	CURL	   *easy;
	struct curl_slist *headers;
	char		errbuf[CURL_ERROR_SIZE];
	const char *refused_why;	/* set by the address guard */
	char		refused_addr[INET6_ADDRSTRLEN];
	char		response[RESPONSE_KEEP + 1];
	int			response_len;
	TimestampTz started_at;

	/* outcome */
	TimestampTz finished_at;
	int64		duration_us;
	long		status;			/* 0: no response */
	char	   *error;			/* NULL: success */
	int64		retry_after_s;	/* from Retry-After, 0 if none */
} Job;

/* The jobs of one claim share a memory context, freed when all are done */
typedef struct Batch
{
	MemoryContext cxt;
	int			remaining;
} Batch;

static CURLM *multi = NULL;
static ResourceOwner worker_owner = NULL;
static MemoryContext worker_cxt = NULL;
static MemoryContext cycle_cxt = NULL;

/* jobs claimed, not started: queue[queue_head .. queue_len) */
#define MAX_WINDOW			4096
static Job **queue = NULL;
static int	queue_head = 0;
static int	queue_len = 0;

/* jobs being sent */
static dlist_head active_jobs = DLIST_STATIC_INIT(active_jobs);
static int	n_active = 0;

/* jobs finished, outcome not yet recorded */
#define DONE_CAP			(RECORD_GROUP * 4 + 256)
static Job **done = NULL;
static int	n_done = 0;
static TimestampTz first_done_at = 0;

static int	my_slot = -1;

/* The main loop's state; file-level so that it survives an error longjmp */
static struct
{
	bool		have_ext;		/* the extension exists in our database */
	bool		claim_more;		/* there may be due rows to claim */
	bool		release_mine;	/* our own in-flight rows are orphans */
	TimestampTz due_at;			/* next due row when drained, 0 if none */
	TimestampTz next_maintenance;
	TimestampTz next_purge;
	TimestampTz next_ext_check;
}			st = {false, true, true, 0, 0, 0, 0};

/* ---------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

static int
window_size(void)
{
	return Min(sm_webhook_concurrency * 16, MAX_WINDOW);
}

/*
 * The lease covers the wait in the window and the request itself: a row
 * may wait for every row claimed before it to be sent, concurrency at a
 * time, each taking up to the total timeout.
 */
static double
lease_seconds(void)
{
	return (double) sm_webhook_timeout_ms / 1000.0 *
		(window_size() / sm_webhook_concurrency + 2) + 30.0;
}

static void
start_xact(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
end_xact(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
}

/*
 * Keep what came from the network printable ASCII, so it is valid text
 * in any server encoding.
 */
static void
sanitize(char *s)
{
	if (s == NULL)
		return;
	for (; *s; s++)
		if ((unsigned char) *s < 0x20 || (unsigned char) *s > 0x7e)
			*s = (*s == '\n' || *s == '\t') ? ' ' : '?';
}

static Datum
make_array(Datum *values, bool *nulls, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs,
											  elemtype, typlen, typbyval, typalign));
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
 * Sending
 * --------------------------------------------------------------------- */

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	Job		   *job = (Job *) userdata;
	size_t		n = size * nmemb;
	size_t		room = RESPONSE_KEEP - job->response_len;

	if (room > 0)
	{
		size_t		k = Min(n, room);

		memcpy(job->response + job->response_len, ptr, k);
		job->response_len += k;
		job->response[job->response_len] = '\0';
	}
	return n;					/* the rest is read and dropped */
}

/*
 * The address guard: called by libcurl for every connection it opens, with
 * the address it resolved, so what is checked is what is connected to.
 */
static curl_socket_t
opensocket_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	Job		   *job = (Job *) clientp;
	const char *why;

	if (!sm_webhook_allow_private_networks &&
		sm_webhook_address_refused(&address->addr, &why))
	{
		job->refused_why = why;
		if (address->family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *) &address->addr)->sin_addr,
					  job->refused_addr, sizeof(job->refused_addr));
		else if (address->family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &address->addr)->sin6_addr,
					  job->refused_addr, sizeof(job->refused_addr));
		else
			strlcpy(job->refused_addr, "?", sizeof(job->refused_addr));
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype, address->protocol);
}

static CURL *
new_easy(void)
{
	CURL	   *easy = curl_easy_init();

	if (easy == NULL)
		elog(ERROR, "could not create a libcurl handle");
	return easy;
}

#define SETOPT(h, opt, val) \
	do { \
		if (curl_easy_setopt((h), (opt), (val)) != CURLE_OK) \
			elog(ERROR, "could not set libcurl option %s", #opt); \
	} while (0)

static void
start_job(Job *job)
{
	StringInfoData hdr;
	int64		ts;
	CURL	   *easy;
	ResourceOwner save_owner = CurrentResourceOwner;

	job->started_at = GetCurrentTimestamp();
	ts = (int64) time(NULL);

	initStringInfo(&hdr);
	appendStringInfoString(&hdr, "webhook-signature: ");
	CurrentResourceOwner = worker_owner;
	PG_TRY();
	{
		sm_webhook_signature(job->secret, job->event_id, ts, job->payload,
							 strlen(job->payload), &hdr);
	}
	PG_FINALLY();
	{
		CurrentResourceOwner = save_owner;
	}
	PG_END_TRY();

	easy = new_easy();
	job->easy = easy;
	job->headers = curl_slist_append(NULL, "Content-Type: application/json");
	job->headers = curl_slist_append(job->headers, "Expect:");
	job->headers = curl_slist_append(job->headers, psprintf("webhook-id: %s", job->event_id));
	job->headers = curl_slist_append(job->headers, psprintf("webhook-timestamp: " INT64_FORMAT, ts));
	job->headers = curl_slist_append(job->headers, hdr.data);
	if (job->headers == NULL)
		elog(ERROR, "out of memory building webhook headers");
	pfree(hdr.data);

	SETOPT(easy, CURLOPT_URL, job->url);
	SETOPT(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(easy, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(easy, CURLOPT_PROXY, "");	/* no proxy from the environment */
	SETOPT(easy, CURLOPT_NOSIGNAL, 1L);
	SETOPT(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) sm_webhook_connect_timeout_ms);
	SETOPT(easy, CURLOPT_TIMEOUT_MS, (long) sm_webhook_timeout_ms);
	SETOPT(easy, CURLOPT_USERAGENT, "salesmgmt-webhooks/1");
	SETOPT(easy, CURLOPT_POST, 1L);
	SETOPT(easy, CURLOPT_POSTFIELDS, job->payload);
	SETOPT(easy, CURLOPT_POSTFIELDSIZE, (long) strlen(job->payload));
	SETOPT(easy, CURLOPT_HTTPHEADER, job->headers);
	SETOPT(easy, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
	SETOPT(easy, CURLOPT_OPENSOCKETDATA, job);
	SETOPT(easy, CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(easy, CURLOPT_WRITEDATA, job);
	SETOPT(easy, CURLOPT_ERRORBUFFER, job->errbuf);
	SETOPT(easy, CURLOPT_PRIVATE, job);
	if (curl_multi_add_handle(multi, easy) != CURLM_OK)
		elog(ERROR, "could not start a webhook request");
	dlist_push_tail(&active_jobs, &job->active_node);
	n_active++;
}

static void
release_easy(Job *job)
{
	if (job->easy)
	{
		curl_multi_remove_handle(multi, job->easy);
		curl_easy_cleanup(job->easy);
		job->easy = NULL;
	}
	if (job->headers)
	{
		curl_slist_free_all(job->headers);
		job->headers = NULL;
	}
}

/* Judge a finished request; the job then waits to be recorded. */
static void
finish_job(Job *job, CURLcode code)
{
	MemoryContext old = MemoryContextSwitchTo(job->batch->cxt);
	curl_off_t	total_us = 0;
	curl_off_t	retry_after = 0;

	job->finished_at = GetCurrentTimestamp();
	curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &job->status);
	if (curl_easy_getinfo(job->easy, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK && total_us > 0)
		job->duration_us = total_us;
	else
		job->duration_us = job->finished_at - job->started_at;
	if (curl_easy_getinfo(job->easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK)
		job->retry_after_s = retry_after;

	if (code != CURLE_OK)
	{
		job->status = 0;
		if (job->refused_why)
			job->error = psprintf("refused to connect to %s, %s (salesmgmt.webhook_allow_private_networks is off)",
								  job->refused_addr, job->refused_why);
		else if (code == CURLE_OPERATION_TIMEDOUT)
			job->error = psprintf("timed out: %s", job->errbuf[0] ? job->errbuf : curl_easy_strerror(code));
		else
			job->error = pstrdup(job->errbuf[0] ? job->errbuf : curl_easy_strerror(code));
	}
	else if (job->status >= 200 && job->status <= 299)
		job->error = NULL;
	else if (job->status >= 300 && job->status <= 399)
	{
		char	   *location = NULL;

		curl_easy_getinfo(job->easy, CURLINFO_REDIRECT_URL, &location);
		job->error = psprintf("HTTP %ld: redirect to %s not followed",
							  job->status, location ? location : "(no Location)");
	}
	else if (job->status == 410)
		job->error = pstrdup("HTTP 410 Gone: endpoint disabled");
	else
		job->error = psprintf("HTTP %ld", job->status);

	sanitize(job->error);
	sanitize(job->response);
	MemoryContextSwitchTo(old);
	release_easy(job);
	dlist_delete(&job->active_node);
	n_active--;
	if (n_done == 0)
		first_done_at = job->finished_at;
	done[n_done++] = job;
}

static void
drain_curl(void)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		Job		   *job;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &job);
		finish_job(job, msg->data.result);
	}
}

/* Start queued jobs while there is room. */
static void
start_queued(void)
{
	while (n_active < sm_webhook_concurrency && queue_head < queue_len &&
		   n_done + n_active < RECORD_GROUP * 4)
		start_job(queue[queue_head++]);
	if (queue_head == queue_len)
		queue_head = queue_len = 0;
}

/* ---------------------------------------------------------------------
 * Database work
 * --------------------------------------------------------------------- */

/*
 * Claim up to n due deliveries; returns how many.  Runs in its own
 * transaction, committed before any of them is sent.
 */
static int
claim(int n)
{
	Datum		args[2];
	Oid			types[2] = {INT4OID, FLOAT8OID};
	int			rc;
	int			got;
	Batch	   *batch;
	MemoryContext old;

	pgstat_report_activity(STATE_RUNNING, "claiming webhook deliveries");
	start_xact();
	args[0] = Int32GetDatum(n);
	args[1] = Float8GetDatum(lease_seconds());
	rc = SPI_execute_with_args("SELECT * FROM salesmgmt._webhook_claim($1, pg_catalog.make_interval(secs => $2))",
							   2, types, args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "claiming webhook deliveries failed: %s", SPI_result_code_string(rc));
	got = (int) SPI_processed;

	if (got > 0)
	{
		MemoryContext bcxt = AllocSetContextCreate(worker_cxt, "webhook batch",
												   ALLOCSET_DEFAULT_SIZES);

		old = MemoryContextSwitchTo(bcxt);
		batch = palloc(sizeof(Batch));
		batch->cxt = bcxt;
		batch->remaining = got;
		Assert(queue_len + got <= MAX_WINDOW);
		for (int i = 0; i < got; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			TupleDesc	d = SPI_tuptable->tupdesc;
			Job		   *job = palloc0(sizeof(Job));
			bool		isnull;

			job->batch = batch;
			job->delivery_id = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
			job->attempt = DatumGetInt32(SPI_getbinval(t, d, 2, &isnull));
			job->retry_step = DatumGetInt32(SPI_getbinval(t, d, 3, &isnull));
			job->endpoint_id = DatumGetInt64(SPI_getbinval(t, d, 4, &isnull));
			job->event_id = SPI_getvalue(t, d, 5);
			job->url = SPI_getvalue(t, d, 6);
			job->secret = SPI_getvalue(t, d, 7);
			job->payload = SPI_getvalue(t, d, 8);
			queue[queue_len++] = job;
		}
		MemoryContextSwitchTo(old);
	}
	end_xact();
	return got;
}

/* Move the unstarted jobs to the front of the queue before a claim. */
static void
compact_queue(void)
{
	if (queue_head > 0)
	{
		memmove(queue, queue + queue_head, (queue_len - queue_head) * sizeof(Job *));
		queue_len -= queue_head;
		queue_head = 0;
	}
}

/* When the next pending or failed delivery is due (0 if none). */
static TimestampTz
next_due(void)
{
	TimestampTz due = 0;
	bool		isnull;
	int			rc;

	start_xact();
	rc = SPI_execute("SELECT pg_catalog.min(next_attempt_at) FROM salesmgmt.webhook_delivery"
					 " WHERE state IN ('pending', 'failed')", true, 1);
	if (rc == SPI_OK_SELECT && SPI_processed == 1)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull && !TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(d)))
			due = DatumGetTimestampTz(d);
	}
	end_xact();
	return due;
}

/* Delay before retry number step, with up to 10% jitter, in ms. */
static int64
retry_delay_ms(int step)
{
	int64		ms = sm_webhook_retry_ms[step];

	return ms + (int64) (pg_prng_double(&pg_global_prng_state) * 0.1 * ms);
}

/* Write the outcomes of the finished jobs, one transaction. */
static void
record_outcomes(void)
{
	int			n = Min(n_done, RECORD_GROUP);
	Datum	   *ids,
			   *attempts,
			   *states,
			   *statuses,
			   *errors,
			   *next_at,
			   *steps,
			   *started,
			   *finished,
			   *durations,
			   *responses,
			   *endpoints;
	bool	   *status_null,
			   *error_null,
			   *next_null,
			   *resp_null;
	Datum		args[12];
	Oid			types[12] = {INT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, INT4ARRAYOID,
							 TEXTARRAYOID, TIMESTAMPTZARRAYOID, INT4ARRAYOID,
							 TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID,
							 TEXTARRAYOID, INT8ARRAYOID};
	Datum	   *gone;
	int			n_gone = 0;
	MemoryContext old;
	int			rc;

	pgstat_report_activity(STATE_RUNNING, "recording webhook outcomes");
	old = MemoryContextSwitchTo(cycle_cxt);
	ids = palloc(n * sizeof(Datum));
	attempts = palloc(n * sizeof(Datum));
	states = palloc(n * sizeof(Datum));
	statuses = palloc(n * sizeof(Datum));
	errors = palloc(n * sizeof(Datum));
	next_at = palloc(n * sizeof(Datum));
	steps = palloc(n * sizeof(Datum));
	started = palloc(n * sizeof(Datum));
	finished = palloc(n * sizeof(Datum));
	durations = palloc(n * sizeof(Datum));
	responses = palloc(n * sizeof(Datum));
	endpoints = palloc(n * sizeof(Datum));
	status_null = palloc(n * sizeof(bool));
	error_null = palloc(n * sizeof(bool));
	next_null = palloc(n * sizeof(bool));
	resp_null = palloc(n * sizeof(bool));
	gone = palloc(n * sizeof(Datum));

	for (int i = 0; i < n; i++)
	{
		Job		   *job = done[i];
		const char *state;
		int			step = job->retry_step;

		next_null[i] = true;
		next_at[i] = (Datum) 0;
		if (job->error == NULL)
			state = "delivered";
		else if (job->status == 410)
		{
			state = "dead";
			gone[n_gone++] = Int64GetDatum(job->endpoint_id);
		}
		else if (step >= sm_webhook_retry_count)
			state = "dead";
		else
		{
			int64		delay = retry_delay_ms(step);

			/* honour Retry-After: never sooner than the receiver asked */
			if (job->retry_after_s > 0)
				delay = Max(delay, Min(job->retry_after_s, 86400) * 1000);
			state = "failed";
			next_at[i] = TimestampTzGetDatum(job->finished_at + delay * 1000);
			if (st.due_at == 0 || DatumGetTimestampTz(next_at[i]) < st.due_at)
				st.due_at = DatumGetTimestampTz(next_at[i]);
			next_null[i] = false;
			step++;
		}
		ids[i] = Int64GetDatum(job->delivery_id);
		attempts[i] = Int32GetDatum(job->attempt);
		states[i] = CStringGetTextDatum(state);
		status_null[i] = job->status == 0;
		statuses[i] = Int32GetDatum((int32) job->status);
		error_null[i] = job->error == NULL;
		errors[i] = job->error ? CStringGetTextDatum(job->error) : (Datum) 0;
		steps[i] = Int32GetDatum(step);
		started[i] = TimestampTzGetDatum(job->started_at);
		finished[i] = TimestampTzGetDatum(job->finished_at);
		durations[i] = Int64GetDatum(job->duration_us);
		resp_null[i] = job->response_len == 0;
		responses[i] = job->response_len ? CStringGetTextDatum(job->response) : (Datum) 0;
		endpoints[i] = Int64GetDatum(job->endpoint_id);
	}
	MemoryContextSwitchTo(old);

	start_xact();
	old = MemoryContextSwitchTo(cycle_cxt);
	args[0] = make_array(ids, NULL, n, INT8OID);
	args[1] = make_array(attempts, NULL, n, INT4OID);
	args[2] = make_array(states, NULL, n, TEXTOID);
	args[3] = make_array(statuses, status_null, n, INT4OID);
	args[4] = make_array(errors, error_null, n, TEXTOID);
	args[5] = make_array(next_at, next_null, n, TIMESTAMPTZOID);
	args[6] = make_array(steps, NULL, n, INT4OID);
	args[7] = make_array(started, NULL, n, TIMESTAMPTZOID);
	args[8] = make_array(finished, NULL, n, TIMESTAMPTZOID);
	args[9] = make_array(durations, NULL, n, INT8OID);
	args[10] = make_array(responses, resp_null, n, TEXTOID);
	args[11] = make_array(endpoints, NULL, n, INT8OID);
	MemoryContextSwitchTo(old);

	/*
	 * A failed delivery of an endpoint that became inactive meanwhile is
	 * held (infinity) like the endpoint's other waiting deliveries.
	 */
	rc = SPI_execute_with_args(
							   "WITH o AS ("
							   "  SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
							   "       pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6),"
							   "       pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($9),"
							   "       pg_catalog.unnest($10), pg_catalog.unnest($11), pg_catalog.unnest($12))"
							   "    AS o(delivery_id, attempt, state, status, error, next_at, retry_step,"
							   "         started_at, finished_at, duration_us, response, endpoint_id)"
							   "), upd AS ("
							   "  UPDATE salesmgmt.webhook_delivery d"
							   "     SET state = o.state, last_status = o.status, last_error = o.error,"
							   "         retry_step = o.retry_step, claimed_by = NULL,"
							   "         delivered_at = CASE WHEN o.state = 'delivered' THEN o.finished_at END,"
							   "         next_attempt_at = CASE WHEN o.next_at IS NULL THEN d.next_attempt_at"
							   "              WHEN EXISTS (SELECT 1 FROM salesmgmt.webhook_endpoint e"
							   "                            WHERE e.endpoint_id = d.endpoint_id AND e.active) THEN o.next_at"
							   "              ELSE 'infinity' END"
							   "    FROM o"
							   "   WHERE d.delivery_id = o.delivery_id AND d.attempts = o.attempt"
							   "     AND d.state = 'in_flight'"
							   ")"
							   " INSERT INTO salesmgmt.webhook_attempt"
							   "   (delivery_id, attempt, endpoint_id, started_at, duration, status, error, response)"
							   " SELECT o.delivery_id, o.attempt, o.endpoint_id, o.started_at,"
							   "        o.duration_us * interval '1 microsecond', o.status, o.error, o.response"
							   "   FROM o"
							   " ON CONFLICT (delivery_id, attempt) DO UPDATE"
							   "   SET duration = excluded.duration, status = excluded.status,"
							   "       error = excluded.error, response = excluded.response",
							   12, types, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "recording webhook outcomes failed: %s", SPI_result_code_string(rc));

	/* 410 Gone: the receiver says the endpoint no longer exists */
	if (n_gone > 0)
	{
		Datum		a[1];
		Oid			t[1] = {INT8ARRAYOID};

		old = MemoryContextSwitchTo(cycle_cxt);
		a[0] = make_array(gone, NULL, n_gone, INT8OID);
		MemoryContextSwitchTo(old);
		rc = SPI_execute_with_args("UPDATE salesmgmt.webhook_endpoint"
								   "   SET active = false, disabled_at = now(),"
								   "       disabled_reason = 'the receiver answered 410 Gone'"
								   " WHERE endpoint_id = ANY ($1) AND active"
								   " RETURNING endpoint_id",
								   1, t, a, NULL, false, 0);
		if (rc != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "disabling webhook endpoints failed: %s", SPI_result_code_string(rc));
		for (uint64 i = 0; i < SPI_processed; i++)
			ereport(LOG,
					(errmsg("salesmgmt webhook endpoint %s disabled: the receiver answered 410 Gone",
							SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1))));
	}
	end_xact();

	/* free what is done */
	for (int i = 0; i < n; i++)
	{
		Batch	   *b = done[i]->batch;

		if (--b->remaining == 0)
			MemoryContextDelete(b->cxt);
	}
	memmove(done, done + n, (n_done - n) * sizeof(Job *));
	n_done -= n;
	if (n_done > 0)
		first_done_at = GetCurrentTimestamp();
}

/*
 * Send back to pending the in-flight rows nobody is working on: leases
 * that expired, rows whose claimer is no longer a live process, and, when
 * mine is true (at start, after an error), this worker's own.  Their last
 * attempt is recorded with an unknown outcome.
 */
static void
release_leases(bool mine)
{
	Datum		args[2];
	Oid			types[2] = {INT4OID, BOOLOID};
	int			rc;

	start_xact();
	args[0] = Int32GetDatum(MyProcPid);
	args[1] = BoolGetDatum(mine);
	rc = SPI_execute_with_args(
							   "WITH r AS ("
							   "  UPDATE salesmgmt.webhook_delivery d"
							   "     SET state = 'pending', claimed_by = NULL,"
							   "         last_error = 'outcome unknown: the worker stopped or its lease expired during the attempt',"
							   "         next_attempt_at = CASE WHEN EXISTS (SELECT 1 FROM salesmgmt.webhook_endpoint e"
							   "              WHERE e.endpoint_id = d.endpoint_id AND e.active) THEN now() ELSE 'infinity' END"
							   "   WHERE d.state = 'in_flight'"
							   "     AND (d.next_attempt_at <= now()"
							   "          OR ($2 AND d.claimed_by = $1)"
							   "          OR (d.claimed_by IS DISTINCT FROM $1 AND NOT EXISTS"
							   "               (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = d.claimed_by)))"
							   "  RETURNING d.delivery_id, d.attempts, d.endpoint_id)"
							   " INSERT INTO salesmgmt.webhook_attempt (delivery_id, attempt, endpoint_id, started_at, error)"
							   " SELECT r.delivery_id, r.attempts, r.endpoint_id, now(),"
							   "        'outcome unknown: the worker stopped or its lease expired during the attempt'"
							   "   FROM r"
							   " ON CONFLICT (delivery_id, attempt) DO NOTHING",
							   2, types, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "releasing webhook leases failed: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0)
		ereport(LOG,
				(errmsg("salesmgmt webhook worker sent %llu in-flight deliveries back to pending",
						(unsigned long long) SPI_processed)));
	end_xact();
}

/* Delete delivered deliveries older than the retention, in small batches. */
static void
purge(void)
{
	Datum		args[1];
	Oid			types[1] = {INT4OID};

	if (sm_webhook_retention_s <= 0)
		return;
	pgstat_report_activity(STATE_RUNNING, "purging delivered webhook deliveries");
	for (int round = 0; round < PURGE_ROUNDS; round++)
	{
		int			rc;
		uint64		deleted;

		start_xact();
		args[0] = Int32GetDatum(sm_webhook_retention_s);
		rc = SPI_execute_with_args(
								   "WITH gone AS ("
								   "  DELETE FROM salesmgmt.webhook_delivery d WHERE d.delivery_id IN ("
								   "    SELECT x.delivery_id FROM salesmgmt.webhook_delivery x"
								   "     WHERE x.state = 'delivered'"
								   "       AND x.delivered_at < now() - $1 * interval '1 second'"
								   "     ORDER BY x.delivery_id LIMIT " CppAsString2(PURGE_BATCH) ")"
								   "  RETURNING d.delivery_id, d.event_id"
								   "), ev AS ("
								   "  DELETE FROM salesmgmt.webhook_event e"
								   "   WHERE e.event_id IN (SELECT g.event_id FROM gone g)"
								   "     AND NOT EXISTS (SELECT 1 FROM salesmgmt.webhook_delivery o"
								   "                      WHERE o.event_id = e.event_id"
								   "                        AND o.delivery_id NOT IN (SELECT g.delivery_id FROM gone g))"
								   ")"
								   " SELECT pg_catalog.count(*) FROM gone",
								   1, types, args, NULL, false, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "purging webhook deliveries failed: %s", SPI_result_code_string(rc));
		{
			bool		isnull;

			deleted = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		}
		end_xact();
		if (deleted < PURGE_BATCH)
			break;
	}
}

static bool
extension_present(void)
{
	bool		present;

	StartTransactionCommand();
	present = OidIsValid(get_extension_oid("salesmgmt", true)) &&
		sm_worker_sql_ready("salesmgmt webhook worker");
	CommitTransactionCommand();
	return present;
}

/*
 * Abandon everything in progress after an error: requests are stopped,
 * jobs forgotten; their rows stay in flight until release_leases.
 */
static void
abandon_all(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &active_jobs)
	{
		Job		   *job = dlist_container(Job, active_node, iter.cur);

		release_easy(job);
		dlist_delete(&job->active_node);
	}
	n_active = 0;
	queue_head = queue_len = 0;
	n_done = 0;
	MemoryContextReset(worker_cxt);	/* every batch */
}

static void
setup_multi(void)
{
	if (multi == NULL)
	{
		multi = curl_multi_init();
		if (multi == NULL)
			elog(ERROR, "could not create a libcurl multi handle");
	}
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) sm_webhook_concurrency);
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) sm_webhook_concurrency);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) sm_webhook_concurrency * 2);
}

/* ---------------------------------------------------------------------
 * Main loop
 * --------------------------------------------------------------------- */

void
sm_webhook_worker_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);

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
	worker_owner = ResourceOwnerCreate(NULL, "salesmgmt webhook worker");
	worker_cxt = AllocSetContextCreate(TopMemoryContext, "webhook worker", ALLOCSET_DEFAULT_SIZES);
	cycle_cxt = AllocSetContextCreate(TopMemoryContext, "webhook cycle", ALLOCSET_DEFAULT_SIZES);
	done = MemoryContextAlloc(TopMemoryContext, DONE_CAP * sizeof(Job *));
	queue = MemoryContextAlloc(TopMemoryContext, MAX_WINDOW * sizeof(Job *));

	/*
	 * The worker runs as a superuser: resolve every name in pg_catalog
	 * first and never in a schema other users can create objects in.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);

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
			if (multi)
				setup_multi();
		}
		if (woken)
			st.claim_more = true;
		now = GetCurrentTimestamp();

		PG_TRY();
		{
			if (!st.have_ext && now >= st.next_ext_check)
			{
				st.have_ext = extension_present();
				st.next_ext_check = now + IDLE_MS * INT64CONST(1000);
				if (st.have_ext)
				{
					setup_multi();
					release_leases(st.release_mine);
					st.release_mine = false;
					st.next_maintenance = now + MAINTENANCE_MS * INT64CONST(1000);
					st.claim_more = true;
				}
			}

			if (st.have_ext)
			{
				if (now >= st.next_maintenance)
				{
					release_leases(false);
					st.next_maintenance = now + MAINTENANCE_MS * INT64CONST(1000);
				}
				if (now >= st.next_purge && n_active == 0)
				{
					purge();
					/* a short retention is purged more often than a long one */
					st.next_purge = now + Min((int64) PURGE_MS,
											  Max((int64) 1000, sm_webhook_retention_s * INT64CONST(500))) * INT64CONST(1000);
				}

				/* refill the window when it is half empty */
				if (st.due_at != 0 && now >= st.due_at)
					st.claim_more = true;
				if (st.claim_more && (queue_len - queue_head) + n_active + n_done <= window_size() / 2)
				{
					int			want = window_size() - (queue_len - queue_head) - n_active;

					compact_queue();
					if (claim(want) < want)
					{
						/* drained: sleep until the next due row or a wake-up */
						st.claim_more = false;
						st.due_at = next_due();
						if (st.due_at != 0 && st.due_at <= GetCurrentTimestamp())
							st.due_at = GetCurrentTimestamp() + 1000 * INT64CONST(1000);
					}
					else
						st.due_at = 0;
				}

				start_queued();
				if (n_active > 0)
				{
					int			running;
					int			numfds;

					pgstat_report_activity(STATE_RUNNING, "sending webhook deliveries");
					curl_multi_perform(multi, &running);
					drain_curl();
					start_queued();
					if (n_active > 0 && n_done < RECORD_GROUP)
					{
						curl_multi_poll(multi, NULL, 0, POLL_MS, &numfds);
						curl_multi_perform(multi, &running);
						drain_curl();
					}
				}

				now = GetCurrentTimestamp();
				if (n_done >= RECORD_GROUP ||
					(n_done > 0 && (n_active == 0 ||
									now - first_done_at >= RECORD_DELAY_MS * INT64CONST(1000))))
				{
					record_outcomes();
					start_queued();
				}
			}
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(TopMemoryContext);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			abandon_all();
			st.have_ext = false;
			st.release_mine = true;
			st.next_ext_check = GetCurrentTimestamp() + 1000 * INT64CONST(1000);
		}
		PG_END_TRY();
		MemoryContextReset(cycle_cxt);

		/* nothing running: sleep until woken, due, or maintenance */
		if (n_active == 0 && n_done == 0 && (queue_len - queue_head) == 0 &&
			!(st.have_ext && st.claim_more))
		{
			long		timeout = IDLE_MS;
			int			rc;

			now = GetCurrentTimestamp();
			if (!st.have_ext)
				timeout = Max(1, (st.next_ext_check - now) / 1000);
			else
			{
				if (st.due_at != 0)
					timeout = Min(timeout, Max(1, (st.due_at - now) / 1000));
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
	w->bgw_start_time = BgWorkerStart_RecoveryFinished;
	w->bgw_restart_time = 10;
	strlcpy(w->bgw_library_name, "salesmgmt", BGW_MAXLEN);
	strlcpy(w->bgw_function_name, "sm_webhook_worker_main", BGW_MAXLEN);
	strlcpy(w->bgw_name, name, BGW_MAXLEN);
	strlcpy(w->bgw_type, SM_WEBHOOK_WORKER_TYPE, BGW_MAXLEN);
}

void
sm_webhook_register_static_worker(void)
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

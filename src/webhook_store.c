/*-------------------------------------------------------------------------
 *
 * webhook_store.c
 *	  The webhook worker's outbox queries: claiming due deliveries,
 *	  recording outcomes and attempts, releasing leases, purging.  Each is
 *	  one short transaction of its own; none is open while HTTP runs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/pg_prng.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "util.h"
#include "webhook_deliver.h"

#define PURGE_SCAN			5000	/* deliveries looked at per purge transaction */
#define PURGE_ROUNDS		20		/* purge transactions per call at most */

int
sm_webhook_window_size(void)
{
	return Min(sm_webhook_concurrency * 16, SM_WEBHOOK_MAX_WINDOW);
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
		(sm_webhook_window_size() / sm_webhook_concurrency + 2) + 30.0;
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

/* The attempts of a group of outcomes, as the record statements read them */
#define RECORD_ATTEMPT_ROWS \
	"ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($12)," \
	"  pg_catalog.unnest($8), pg_catalog.unnest($10), pg_catalog.unnest($4)," \
	"  pg_catalog.unnest($5), pg_catalog.unnest($11))" \
	" AS o(delivery_id, attempt, endpoint_id, started_at, duration_us, status, error, response)"
#define RECORD_ATTEMPT_COLUMNS \
	"o.delivery_id, o.attempt, o.endpoint_id, o.started_at," \
	" o.duration_us * interval '1 microsecond', o.status, o.error, o.response"

static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr record_plan = NULL;
static SPIPlanPtr record_late_plan = NULL;

/*
 * Run a statement prepared once for the worker's life with a generic plan
 * (parsing and planning it for every group cost more than running it; the
 * plan cache replans it after DDL on the tables it reads), and check that
 * it did what was expected (SPI_OK_*); what names it in the error.
 */
static void
run_kept(SPIPlanPtr *slot, const char *sql, Oid *types, int nargs, Datum *args,
		 int expected, const char *what)
{
	int			rc;

	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "preparing the statement for %s failed: %s", what,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "keeping the statement for %s failed", what);
		*slot = plan;
	}
	rc = SPI_execute_plan(*slot, args, NULL, false, 0);
	if (rc != expected)
		elog(ERROR, "%s failed: %s", what, SPI_result_code_string(rc));
}

/* Move the unstarted jobs to the front of the queue before a claim. */
static void
compact_queue(SmWebhookQueues *q)
{
	if (q->queue_head > 0)
	{
		memmove(q->queue, q->queue + q->queue_head, (q->queue_len - q->queue_head) * sizeof(SmWebhookJob *));
		q->queue_len -= q->queue_head;
		q->queue_head = 0;
	}
}

static char *
value_or_empty(HeapTuple t, TupleDesc d, int col)
{
	char	   *v = SPI_getvalue(t, d, col);

	return v ? v : "";
}

/*
 * Where the claim's scan of the queue index starts.
 *
 * A delivered row leaves the queue index only when vacuum removes its old
 * version's entry; until then a scan visits that entry's heap tuple, finds
 * it dead and marks the entry dead in the index, so the next scan skips
 * it.  That mark needs the tuple dead to every snapshot: while any
 * snapshot older than the deliveries is held (an autovacuum ANALYZE of
 * salesmgmt.deal, a report, pg_dump), no entry can be marked, and every
 * claim and every look for the next due row started at the oldest entry
 * and visited the heap tuple of every delivery made since the snapshot
 * was taken: 2,686 buffers per claim after 10 s of a held snapshot at 300
 * deliveries a second, 38 a second after it ended.  At 2,000 a second a
 * one-second ANALYZE made the claims so slow that the backlog grew to
 * thousands (bench/webhook.sh: commit-to-delivery p99 2.2 s, p50 14 ms).
 *
 * So a claim scans only entries at or after a floor: every row a claim
 * can still find due is at or after the floor, except rows it skipped
 * because they were locked, rows of a transaction that had written
 * nothing yet when the floor was set and wrote later, and rows someone
 * moved into the past by hand.  A sweep, a claim from the beginning of the
 * index, finds those within SWEEP_MS: at least every SWEEP_MS while the
 * worker claims, at the first claim after an idle second, and the worker
 * wakes for one after a claim from the floor took every due row.
 *
 * The floor after a claim that took every due row it saw: a row such a
 * claim did not see was committed after its snapshot, by a transaction
 * that either was running with a transaction id when the claim looked at
 * pg_stat_activity just before taking its snapshot (its next_attempt_at is
 * at least the oldest xact_start seen then) or wrote later (the sweep's);
 * a row made due by the worker itself (a retry, a released lease) is due
 * later than the look.  Transactions that have written nothing are left
 * out: those are what hold snapshots for seconds (ANALYZE, reports,
 * pg_dump).  FLOOR_MARGIN_MS covers a transaction caught between taking
 * its start time and showing it.  After a claim that filled the window,
 * the floor is at most the next_attempt_at of the last row it took.
 */
#define SWEEP_MS			1000
#define FLOOR_MARGIN_MS		50

static TimestampTz claim_floor = DT_NOBEGIN;
static TimestampTz next_sweep_at = 0;
static bool last_claim_swept = false;
static SPIPlanPtr look_plan = NULL;

/* When the worker must claim again for a sweep; 0: the last claim was one */
TimestampTz
sm_webhook_sweep_due(void)
{
	return last_claim_swept ? 0 : next_sweep_at;
}

/* Claim from the beginning of the queue index at the next claim. */
void
sm_webhook_claim_sweep_next(void)
{
	claim_floor = DT_NOBEGIN;
	next_sweep_at = 0;
}

/*
 * The floor the next claim may use if this one takes every due row it
 * sees: the oldest start of a transaction running now, or now, less the
 * margin.  Runs before the claim's own statement, so before its snapshot.
 */
static TimestampTz
look_for_floor(void)
{
	Datum		arg = ObjectIdGetDatum(MyDatabaseId);
	Oid			type = OIDOID;
	bool		isnull;
	TimestampTz floor;

	run_kept(&look_plan,
			 "SELECT LEAST(pg_catalog.clock_timestamp(), pg_catalog.min(a.xact_start))"
			 "  FROM pg_catalog.pg_stat_activity a"
			 " WHERE a.datid = $1 AND a.pid <> pg_catalog.pg_backend_pid()"
			 "   AND a.backend_xid IS NOT NULL",
			 &type, 1, &arg, SPI_OK_SELECT, "looking for the oldest running transaction");
	floor = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull)
		return DT_NOBEGIN;
	return floor - FLOOR_MARGIN_MS * INT64CONST(1000);
}

/*
 * Claim up to n due deliveries; returns how many.  Runs in its own
 * transaction, committed before any of them is sent.
 */
int
sm_webhook_claim(int n)
{
	Datum		args[3];
	Oid			types[3] = {INT4OID, FLOAT8OID, TIMESTAMPTZOID};
	int			got;
	SmWebhookBatch *batch;
	MemoryContext old;
	SmWebhookQueues *q = &sm_webhook_q;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz floor = claim_floor;
	TimestampTz next_floor;
	TimestampTz last_due = DT_NOBEGIN;

	compact_queue(q);
	pgstat_report_activity(STATE_RUNNING, "claiming webhook deliveries");
	last_claim_swept = now >= next_sweep_at;
	if (last_claim_swept)
	{
		floor = DT_NOBEGIN;
		next_sweep_at = now + SWEEP_MS * INT64CONST(1000);
	}
	start_xact();
	next_floor = look_for_floor();
	args[0] = Int32GetDatum(n);
	args[1] = Float8GetDatum(lease_seconds());
	args[2] = TimestampTzGetDatum(floor);

	/*
	 * The statement of salesmgmt._webhook_claim (src/webhook.sql: keep the
	 * two equal; the isolation spec webhook-claim exercises the function),
	 * run directly with a kept plan: a SQL function is parsed and planned
	 * again at every call.  The endpoint is joined for its URL, secret and
	 * cap.  The claim changes no indexed column: a HOT update.  $3 is the
	 * floor (above; the SQL function scans from the beginning).
	 */
	run_kept(&claim_plan,
									"UPDATE salesmgmt.webhook_delivery d"
									"   SET state = 'in_flight', attempts = d.attempts + 1,"
									"       lease_expires_at = now() + $2 * interval '1 second',"
									"       claimed_by = pg_catalog.pg_backend_pid()"
									"  FROM salesmgmt.webhook_endpoint ep"
									" WHERE ep.endpoint_id = d.endpoint_id"
									"   AND d.delivery_id = ANY (ARRAY("
									"       SELECT q.delivery_id"
									"         FROM salesmgmt.webhook_delivery q"
									"        WHERE q.delivered_at IS NULL AND q.next_attempt_at <= now()"
									"          AND q.next_attempt_at >= $3"
									"          AND q.state IN ('pending', 'failed')"
									"          AND EXISTS (SELECT 1 FROM salesmgmt.webhook_endpoint e"
									"                       WHERE e.endpoint_id = q.endpoint_id AND e.active)"
									"        ORDER BY q.next_attempt_at"
									"        LIMIT $1"
									"          FOR UPDATE OF q SKIP LOCKED))"
									" RETURNING d.delivery_id, d.attempts, d.retry_step, d.endpoint_id, d.event_id,"
									"           ep.url, ep.secret,"
									"           (SELECT ev.payload::text FROM salesmgmt.webhook_event ev"
									"             WHERE ev.event_id = d.event_id),"
									"           ep.max_in_flight, d.next_attempt_at",
									types, 3, args, SPI_OK_UPDATE_RETURNING, "claiming webhook deliveries");
	got = (int) SPI_processed;

	if (got > 0)
	{
		MemoryContext bcxt = AllocSetContextCreate(q->worker_cxt, "webhook batch",
												   ALLOCSET_DEFAULT_SIZES);

		old = MemoryContextSwitchTo(bcxt);
		batch = palloc(sizeof(SmWebhookBatch));
		batch->cxt = bcxt;
		batch->remaining = got;
		Assert(q->queue_len + got <= SM_WEBHOOK_MAX_WINDOW);
		for (int i = 0; i < got; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			TupleDesc	d = SPI_tuptable->tupdesc;
			SmWebhookJob *job = palloc0(sizeof(SmWebhookJob));
			bool		isnull;

			job->batch = batch;
			job->delivery_id = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
			job->attempt = DatumGetInt32(SPI_getbinval(t, d, 2, &isnull));
			job->retry_step = DatumGetInt32(SPI_getbinval(t, d, 3, &isnull));
			job->endpoint_id = DatumGetInt64(SPI_getbinval(t, d, 4, &isnull));
			job->event_id = SPI_getvalue(t, d, 5);
			/* (an endpoint or event deleted meanwhile: the request fails) */
			job->url = value_or_empty(t, d, 6);
			job->secret = value_or_empty(t, d, 7);
			job->payload = value_or_empty(t, d, 8);
			job->payload_len = strlen(job->payload);
			{
				Datum		cap = SPI_getbinval(t, d, 9, &isnull);

				job->max_in_flight = isnull ? 0 : DatumGetInt32(cap);
			}
			last_due = Max(last_due, DatumGetTimestampTz(SPI_getbinval(t, d, 10, &isnull)));
			q->queue[q->queue_len++] = job;
		}
		MemoryContextSwitchTo(old);
	}

	/*
	 * A claim that took every due row it saw: the floor of the look.  One
	 * that filled the window took, in next_attempt_at order, every row it
	 * could lock up to the last it took: the next starts there at the
	 * latest.
	 */
	claim_floor = got < n ? next_floor : Min(next_floor, Max(floor, last_due));
	end_xact();
	return got;
}

/* When the next pending or failed delivery is due (0 if none). */
TimestampTz
sm_webhook_next_due(void)
{
	TimestampTz due = 0;
	bool		isnull;
	int			rc;

	Datum		arg = TimestampTzGetDatum(claim_floor);
	Oid			type = TIMESTAMPTZOID;

	/* (from the floor, as the claim: rows before it are the sweep's) */
	start_xact();
	rc = SPI_execute_with_args("SELECT pg_catalog.min(next_attempt_at) FROM salesmgmt.webhook_delivery"
							   " WHERE delivered_at IS NULL AND next_attempt_at >= $1"
							   "   AND state IN ('pending', 'failed')", 1, &type, &arg, NULL, true, 1);
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

/* A delivery's attempt, as the record statement returns the ones it updated */
typedef struct UpdatedKey
{
	int64		delivery_id;
	int32		attempt;
} UpdatedKey;

static int
updated_key_cmp(const void *a, const void *b)
{
	const UpdatedKey *x = a;
	const UpdatedKey *y = b;

	if (x->delivery_id != y->delivery_id)
		return x->delivery_id < y->delivery_id ? -1 : 1;
	return x->attempt < y->attempt ? -1 : x->attempt > y->attempt ? 1 : 0;
}

/* The columns of salesmgmt.webhook_attempt, in the order write_attempts fills them */
static const char *const attempt_columns[] = {
	"delivery_id", "attempt", "endpoint_id", "started_at", "duration", "status", "error", "response"
};
#define ATTEMPT_NCOLS lengthof(attempt_columns)

/*
 * Whether the attempts can be written the way COPY writes rows (below):
 * the table has exactly its columns, no INSERT trigger, no row-level
 * security that applies to the worker, and only indexes that
 * ExecInsertIndexTuples checks at once.  attno[c] is set to the column
 * number (from 0) of attempt_columns[c].
 */
static bool
attempts_bulk_ok(Relation rel, ResultRelInfo *rri, int *attno)
{
	TupleDesc	desc = RelationGetDescr(rel);
	TriggerDesc *trig = rel->trigdesc;
	int			live = 0;

	if (trig != NULL && (trig->trig_insert_before_row || trig->trig_insert_after_row ||
						 trig->trig_insert_instead_row || trig->trig_insert_before_statement ||
						 trig->trig_insert_after_statement))
		return false;
	if (check_enable_rls(RelationGetRelid(rel), InvalidOid, true) == RLS_ENABLED)
		return false;
	for (int i = 0; i < rri->ri_NumIndices; i++)
	{
		Form_pg_index index = rri->ri_IndexRelationDescs[i]->rd_index;

		if (index->indisexclusion || !index->indimmediate)
			return false;
	}
	for (int c = 0; c < (int) ATTEMPT_NCOLS; c++)
		attno[c] = -1;
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);
		int			c;

		if (att->attisdropped)
			continue;
		live++;
		for (c = 0; c < (int) ATTEMPT_NCOLS; c++)
			if (strcmp(NameStr(att->attname), attempt_columns[c]) == 0)
				break;
		if (c == (int) ATTEMPT_NCOLS)
			return false;		/* a column of someone else's */
		attno[c] = a;
	}
	return live == (int) ATTEMPT_NCOLS;
}

static SPIPlanPtr attempts_sql_plan = NULL;

/*
 * Append the attempts of the outcomes whose deliveries the record
 * statement updated (tt: their delivery_id and attempt, n_updated rows).
 *
 * The rows are written the way COPY writes them: one table_multi_insert
 * (one WAL record per heap page instead of one per row), then each row's
 * index entries, after the table's constraints were checked.  The worker
 * is the table's only writer besides the lease release and a late
 * outcome, which use SQL; if someone added an INSERT trigger or a column,
 * the attempts go through SQL too (args: the record statement's twelve
 * arrays).
 */
static void
write_attempts(SmWebhookJob **jobs, int n, SPITupleTable *tt, int n_updated,
			   const Oid *record_types, Datum *args)
{
	UpdatedKey *keys = palloc(n_updated * sizeof(UpdatedKey));
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	int			attno[ATTEMPT_NCOLS];
	TupleTableSlot **slots;
	int			k = 0;

	for (int i = 0; i < n_updated; i++)
	{
		bool		isnull;

		keys[i].delivery_id = DatumGetInt64(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
		keys[i].attempt = DatumGetInt32(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull));
	}

	rel = table_open(sm_relation_oid("webhook_attempt"), RowExclusiveLock);
	rri = sm_open_insert_target(rel, &estate);
	if (!attempts_bulk_ok(rel, rri, attno))
	{
		Datum		a[14];
		Oid			t[14];
		Datum	   *ids = palloc(n_updated * sizeof(Datum));
		Datum	   *nums = palloc(n_updated * sizeof(Datum));

		ExecCloseIndices(rri);
		FreeExecutorState(estate);
		table_close(rel, NoLock);
		for (int i = 0; i < n_updated; i++)
		{
			ids[i] = Int64GetDatum(keys[i].delivery_id);
			nums[i] = Int32GetDatum(keys[i].attempt);
		}
		memcpy(a, args, 12 * sizeof(Datum));
		memcpy(t, record_types, 12 * sizeof(Oid));
		a[12] = PointerGetDatum(sm_make_array(ids, NULL, n_updated, INT8OID));
		a[13] = PointerGetDatum(sm_make_array(nums, NULL, n_updated, INT4OID));
		t[12] = INT8ARRAYOID;
		t[13] = INT4ARRAYOID;
		run_kept(&attempts_sql_plan,
				 "INSERT INTO salesmgmt.webhook_attempt"
				 "   (delivery_id, attempt, endpoint_id, started_at, duration, status, error, response)"
				 " SELECT " RECORD_ATTEMPT_COLUMNS
				 "   FROM " RECORD_ATTEMPT_ROWS
				 "  WHERE (o.delivery_id, o.attempt) IN"
				 "        (SELECT u.delivery_id, u.attempt"
				 "           FROM ROWS FROM (pg_catalog.unnest($13), pg_catalog.unnest($14)) AS u(delivery_id, attempt))",
				 t, 14, a, SPI_OK_INSERT, "recording webhook attempts");
		return;
	}

	qsort(keys, n_updated, sizeof(UpdatedKey), updated_key_cmp);
	slots = palloc(n_updated * sizeof(TupleTableSlot *));
	for (int i = 0; i < n && k < n_updated; i++)
	{
		SmWebhookJob *job = jobs[i];
		UpdatedKey	key = {job->delivery_id, job->attempt};
		TupleTableSlot *slot;
		Interval   *duration;
		Datum	   *v;
		bool	   *isnull;

		if (bsearch(&key, keys, n_updated, sizeof(UpdatedKey), updated_key_cmp) == NULL)
			continue;			/* too late: the late statement records it */
		slot = slots[k++] = table_slot_create(rel, NULL);
		v = slot->tts_values;
		isnull = slot->tts_isnull;
		memset(isnull, true, slot->tts_tupleDescriptor->natts * sizeof(bool));
		duration = palloc0(sizeof(Interval));
		duration->time = job->duration_us;
		v[attno[0]] = Int64GetDatum(job->delivery_id);
		v[attno[1]] = Int32GetDatum(job->attempt);
		v[attno[2]] = Int64GetDatum(job->endpoint_id);
		v[attno[3]] = TimestampTzGetDatum(job->started_at);
		v[attno[4]] = IntervalPGetDatum(duration);
		isnull[attno[0]] = isnull[attno[1]] = isnull[attno[2]] = isnull[attno[3]] = isnull[attno[4]] = false;
		if (job->status != 0)
		{
			v[attno[5]] = Int32GetDatum((int32) job->status);
			isnull[attno[5]] = false;
		}
		if (job->error != NULL)
		{
			v[attno[6]] = CStringGetTextDatum(job->error);
			isnull[attno[6]] = false;
		}
		if (job->response_len > 0)
		{
			v[attno[7]] = CStringGetTextDatum(job->response);
			isnull[attno[7]] = false;
		}
		ExecStoreVirtualTuple(slot);
	}

	estate->es_output_cid = GetCurrentCommandId(true);
	if (rel->rd_att->constr != NULL)
		for (int i = 0; i < k; i++)
			ExecConstraints(rri, slots[i], estate);
	table_multi_insert(rel, slots, k, estate->es_output_cid, 0, NULL);
	for (int i = 0; i < k; i++)
	{
		if (rri->ri_NumIndices > 0)
			sm_insert_index_tuples(rri, slots[i], estate);
		ExecDropSingleTupleTableSlot(slots[i]);
	}
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
}

/* Write the outcomes of the finished jobs, one transaction. */
void
sm_webhook_record_outcomes(void)
{
	SmWebhookQueues *q = &sm_webhook_q;
	int			n = Min(q->n_done, SM_WEBHOOK_RECORD_GROUP);
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
	int			n_updated;

	pgstat_report_activity(STATE_RUNNING, "recording webhook outcomes");
	old = MemoryContextSwitchTo(q->cycle_cxt);
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
		SmWebhookJob *job = q->done[i];
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
			if (q->due_at == 0 || DatumGetTimestampTz(next_at[i]) < q->due_at)
				q->due_at = DatumGetTimestampTz(next_at[i]);
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
	old = MemoryContextSwitchTo(q->cycle_cxt);
	args[0] = PointerGetDatum(sm_make_array(ids, NULL, n, INT8OID));
	args[1] = PointerGetDatum(sm_make_array(attempts, NULL, n, INT4OID));
	args[2] = PointerGetDatum(sm_make_array(states, NULL, n, TEXTOID));
	args[3] = PointerGetDatum(sm_make_array(statuses, status_null, n, INT4OID));
	args[4] = PointerGetDatum(sm_make_array(errors, error_null, n, TEXTOID));
	args[5] = PointerGetDatum(sm_make_array(next_at, next_null, n, TIMESTAMPTZOID));
	args[6] = PointerGetDatum(sm_make_array(steps, NULL, n, INT4OID));
	args[7] = PointerGetDatum(sm_make_array(started, NULL, n, TIMESTAMPTZOID));
	args[8] = PointerGetDatum(sm_make_array(finished, NULL, n, TIMESTAMPTZOID));
	args[9] = PointerGetDatum(sm_make_array(durations, NULL, n, INT8OID));
	args[10] = PointerGetDatum(sm_make_array(responses, resp_null, n, TEXTOID));
	args[11] = PointerGetDatum(sm_make_array(endpoints, NULL, n, INT8OID));
	MemoryContextSwitchTo(old);

	/*
	 * One statement updates the deliveries, each found by primary key (the
	 * UPDATE's FROM rows are copied whole for rechecks, so they carry only
	 * the columns it needs), and returns which it updated; their attempts
	 * are then appended in bulk (write_attempts).  A failed delivery of an
	 * endpoint that became inactive meanwhile is held (infinity) like the
	 * endpoint's other waiting deliveries; a dead one is due at infinity
	 * too, out of the claim's index scan.
	 *
	 * The plan is generic and kept: a nested loop over the outcomes that
	 * probes the primary key, whatever the statistics say.  The in-flight
	 * check names o so that it stays a filter of that probe: as a condition
	 * on d alone it is estimated from statistics in which no row is ever
	 * in flight, and that estimate once made the planner rescan the
	 * outcomes for every delivery (quadratic: 95 ms for 256 outcomes).
	 */
	run_kept(&record_plan,
			 "UPDATE salesmgmt.webhook_delivery d"
			 "   SET state = o.state, last_status = o.status, last_error = o.error,"
			 "       retry_step = o.retry_step, claimed_by = NULL, lease_expires_at = NULL,"
			 "       delivered_at = CASE WHEN o.state = 'delivered' THEN o.finished_at END,"
			 "       next_attempt_at = CASE WHEN o.state = 'dead' THEN 'infinity'"
			 "            WHEN o.next_at IS NULL THEN d.next_attempt_at"
			 "            WHEN EXISTS (SELECT 1 FROM salesmgmt.webhook_endpoint e"
			 "                          WHERE e.endpoint_id = d.endpoint_id AND e.active) THEN o.next_at"
			 "            ELSE 'infinity' END"
			 "  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
			 "       pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6),"
			 "       pg_catalog.unnest($7), pg_catalog.unnest($9))"
			 "    AS o(delivery_id, attempt, state, status, error, next_at, retry_step, finished_at)"
			 " WHERE d.delivery_id = o.delivery_id AND d.attempts = o.attempt"
			 "   AND (d.state = 'in_flight' OR o.state IS NULL)"
			 " RETURNING d.delivery_id, d.attempts",
			 types, 9, args, SPI_OK_UPDATE_RETURNING, "recording webhook outcomes");
	n_updated = (int) SPI_processed;
	if (n_updated > 0)
		write_attempts(q->done, n, SPI_tuptable, n_updated, types, args);

	/*
	 * Outcomes that came too late (the lease expired or the row was sent
	 * back to pending meanwhile, which recorded the attempt as unknown):
	 * the attempt gets its real outcome.  Rare, so a second statement
	 * rather than a speculative insertion for every attempt.
	 */
	if (n_updated < n)
	{
		run_kept(&record_late_plan,
				 "INSERT INTO salesmgmt.webhook_attempt"
				 "   (delivery_id, attempt, endpoint_id, started_at, duration, status, error, response)"
				 " SELECT " RECORD_ATTEMPT_COLUMNS
				 "   FROM " RECORD_ATTEMPT_ROWS
				 " ON CONFLICT (delivery_id, attempt) DO UPDATE"
				 "   SET duration = excluded.duration, status = excluded.status,"
				 "       error = excluded.error, response = excluded.response",
				 types, 12, args, SPI_OK_INSERT, "recording late webhook outcomes");
	}

	/* 410 Gone: the receiver says the endpoint no longer exists */
	if (n_gone > 0)
	{
		Datum		a[1];
		Oid			t[1] = {INT8ARRAYOID};

		old = MemoryContextSwitchTo(q->cycle_cxt);
		a[0] = PointerGetDatum(sm_make_array(gone, NULL, n_gone, INT8OID));
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
		SmWebhookBatch *b = q->done[i]->batch;

		if (--b->remaining == 0)
			MemoryContextDelete(b->cxt);
	}
	memmove(q->done, q->done + n, (q->n_done - n) * sizeof(SmWebhookJob *));
	q->n_done -= n;
	if (q->n_done > 0)
		q->first_done_at = GetCurrentTimestamp();
}

/*
 * Send back to pending the in-flight rows nobody is working on: leases
 * that expired, rows whose claimer is no longer a live webhook worker
 * (after a crash or a failover its pid may belong to another process
 * now), and, when mine is true (at start, after an error), this worker's
 * own.  Their last attempt is recorded with an unknown outcome.  A row is
 * claimed only when due, so every in-flight row is in the queue index
 * below now().
 */
void
sm_webhook_release_leases(bool mine)
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
							   "     SET state = 'pending', claimed_by = NULL, lease_expires_at = NULL,"
							   "         last_error = 'outcome unknown: the worker stopped or its lease expired during the attempt',"
							   "         next_attempt_at = CASE WHEN EXISTS (SELECT 1 FROM salesmgmt.webhook_endpoint e"
							   "              WHERE e.endpoint_id = d.endpoint_id AND e.active) THEN now() ELSE 'infinity' END"
							   "   WHERE d.delivered_at IS NULL AND d.next_attempt_at <= now()"
							   "     AND d.state = 'in_flight'"
							   "     AND (d.lease_expires_at <= now()"
							   "          OR ($2 AND d.claimed_by = $1)"
							   "          OR (d.claimed_by IS DISTINCT FROM $1 AND NOT EXISTS"
							   "               (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = d.claimed_by"
							   "                   AND a.backend_type = '" SM_WEBHOOK_WORKER_TYPE "')))"
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

/*
 * Delete delivered deliveries older than the retention, and the events
 * left without deliveries.
 *
 * Each round looks at the next PURGE_SCAN deliveries in delivery_id order
 * after a cursor kept for the worker's life, deletes those that qualify,
 * and moves the cursor past them; at the end of the table the cursor goes
 * back to the start.  So a round costs the same whatever the table holds:
 * the purge it replaces looked for its 1,000 rows with a filter over all
 * delivered rows, a scan of the whole table while none was old enough
 * (every purge of the first week) and, planned as a nested loop on fresh
 * statistics, quadratic in the delivered rows.  The candidates and the
 * deleted rows are passed as arrays (an InitPlan evaluated once, rows
 * found by primary key), whatever the statistics say; the events are
 * deleted by a second statement, which sees the deliveries' deletion.
 */
static int64 purge_cursor = 0;

void
sm_webhook_purge(void)
{
	Datum		args[2];
	Oid			types[2] = {INT4OID, INT8OID};

	if (sm_webhook_retention_s <= 0)
		return;
	pgstat_report_activity(STATE_RUNNING, "purging delivered webhook deliveries");
	for (int round = 0; round < PURGE_ROUNDS; round++)
	{
		int			rc;
		int64		scanned;
		bool		isnull;
		Datum		events;

		start_xact();
		args[0] = Int32GetDatum(sm_webhook_retention_s);
		args[1] = Int64GetDatum(purge_cursor);
		rc = SPI_execute_with_args(
								   "WITH scan AS ("
								   "  SELECT x.delivery_id,"
								   "         x.state = 'delivered' AND x.delivered_at < now() - $1 * interval '1 second' AS old"
								   "    FROM salesmgmt.webhook_delivery x"
								   "   WHERE x.delivery_id > $2"
								   "   ORDER BY x.delivery_id LIMIT " CppAsString2(PURGE_SCAN)
								   "), gone AS ("
								   "  DELETE FROM salesmgmt.webhook_delivery d"
								   "   WHERE d.delivery_id = ANY (ARRAY(SELECT s.delivery_id FROM scan s WHERE s.old))"
								   "  RETURNING d.event_id"
								   ")"
								   " SELECT (SELECT pg_catalog.count(*) FROM scan),"
								   "        (SELECT pg_catalog.max(s.delivery_id) FROM scan s),"
								   "        ARRAY(SELECT DISTINCT g.event_id FROM gone g)",
								   2, types, args, NULL, false, 0);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "purging webhook deliveries failed: %s", SPI_result_code_string(rc));
		scanned = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (scanned < PURGE_SCAN)
			purge_cursor = 0;	/* the end of the table: start again */
		else
			purge_cursor = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		events = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
		if (!isnull && ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(events)),
									  ARR_DIMS(DatumGetArrayTypeP(events))) > 0)
		{
			/* (an array made by ARRAY() is not toasted: no copy above) */
			Oid			t[1] = {UUIDARRAYOID};

			rc = SPI_execute_with_args("DELETE FROM salesmgmt.webhook_event e"
									   " WHERE e.event_id = ANY ($1)"
									   "   AND NOT EXISTS (SELECT 1 FROM salesmgmt.webhook_delivery o"
									   "                    WHERE o.event_id = e.event_id)",
									   1, t, &events, NULL, false, 0);
			if (rc != SPI_OK_DELETE)
				elog(ERROR, "purging webhook events failed: %s", SPI_result_code_string(rc));
		}
		end_xact();
		if (purge_cursor == 0)
			break;
	}
}

/*
 * Whether the extension exists in our database with the SQL objects of
 * this library's version (the worker waits for ALTER EXTENSION salesmgmt
 * UPDATE otherwise).
 */
bool
sm_webhook_extension_present(void)
{
	bool		present;

	StartTransactionCommand();
	present = OidIsValid(get_extension_oid("salesmgmt", true)) &&
		sm_worker_sql_ready(SM_WEBHOOK_WORKER_TYPE);
	CommitTransactionCommand();
	return present;
}

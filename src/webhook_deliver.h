/*-------------------------------------------------------------------------
 *
 * webhook_deliver.h
 *	  Internal to the webhook worker: the jobs a claim makes, the queues
 *	  they move through, and the phases that move them.
 *
 *	  webhook_store.c   claim -> queue; done -> recorded (the outbox queries)
 *	  webhook_send.c    queue -> in flight -> done (libcurl), and the one
 *	                    wait on the curl sockets, the latch and the
 *	                    postmaster's death
 *	  webhook_worker.c  settings, shared memory, the main loop
 *
 *-------------------------------------------------------------------------
 */
#ifndef SM_WEBHOOK_DELIVER_H
#define SM_WEBHOOK_DELIVER_H

#include "postgres.h"

#include <arpa/inet.h>

#include <curl/curl.h>

#include "lib/ilist.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "webhook_worker.h"

/* Workers that can run at once (one per database) */
#define SM_WEBHOOK_MAX_WORKERS	16

/* Longest retry schedule accepted by salesmgmt.webhook_retry_schedule */
#define SM_WEBHOOK_MAX_RETRIES	32

#define SM_WEBHOOK_RESPONSE_KEEP	256 /* bytes of a response body recorded */
#define SM_WEBHOOK_RECORD_GROUP		256 /* outcomes written per transaction */
#define SM_WEBHOOK_MAX_WINDOW		4096	/* jobs claimed and not recorded */
#define SM_WEBHOOK_DONE_CAP			(SM_WEBHOOK_RECORD_GROUP * 4 + 256)
#define SM_WEBHOOK_N_HEADERS		5	/* headers of a request */

/* Settings (webhook_worker.c; the address guard's is in webhook_sign.c) */
extern char *sm_webhook_database;
extern int	sm_webhook_connect_timeout_ms;
extern int	sm_webhook_timeout_ms;
extern int	sm_webhook_concurrency;
extern int	sm_webhook_retention_s;
extern int	sm_webhook_retry_count;
extern int64 sm_webhook_retry_ms[SM_WEBHOOK_MAX_RETRIES];

/* One claimed delivery, from claim to recorded outcome */
typedef struct SmWebhookJob
{
	struct SmWebhookBatch *batch;
	dlist_node	active_node;	/* in the sender's list while being sent */
	int64		delivery_id;
	int32		attempt;
	int32		retry_step;
	int64		endpoint_id;
	char	   *event_id;
	char	   *url;
	char	   *secret;
	char	   *payload;
	int			payload_len;
	int32		max_in_flight;	/* the endpoint's cap, 0: none */

	/* while sending */
	CURL	   *easy;
	struct curl_slist hdr_nodes[SM_WEBHOOK_N_HEADERS];	/* the header list */
	char		hdr_id[64];
	char		hdr_ts[48];
	char		hdr_sig[80];
	char		errbuf[CURL_ERROR_SIZE];
	const char *refused_why;	/* set by the address guard */
	char		refused_addr[INET6_ADDRSTRLEN];
	char		response[SM_WEBHOOK_RESPONSE_KEEP + 1];
	int			response_len;
	TimestampTz started_at;

	/* outcome */
	TimestampTz finished_at;
	int64		duration_us;
	long		status;			/* 0: no response */
	char	   *error;			/* NULL: success */
	int64		retry_after_s;	/* from Retry-After, 0 if none */
} SmWebhookJob;

/* The jobs of one claim share a memory context, freed when all are done */
typedef struct SmWebhookBatch
{
	MemoryContext cxt;
	int			remaining;
} SmWebhookBatch;

/* Where the jobs are; one instance, in webhook_worker.c */
typedef struct SmWebhookQueues
{
	SmWebhookJob **queue;		/* claimed, not started: [head, len) */
	int			queue_head;
	int			queue_len;
	int			n_active;		/* being sent */
	SmWebhookJob **done;		/* finished, outcome not yet recorded */
	int			n_done;
	TimestampTz first_done_at;
	TimestampTz due_at;			/* earliest retry recorded, 0 if none */
	MemoryContext worker_cxt;	/* parent of the batches */
	MemoryContext cycle_cxt;	/* reset after every cycle */
} SmWebhookQueues;

extern SmWebhookQueues sm_webhook_q;

/* webhook_store.c */
extern int	sm_webhook_window_size(void);
extern int	sm_webhook_claim(int n);
extern void sm_webhook_claim_sweep_next(void);
extern TimestampTz sm_webhook_sweep_due(void);
extern TimestampTz sm_webhook_next_due(void);
extern void sm_webhook_record_outcomes(void);
extern void sm_webhook_release_leases(bool mine);
extern void sm_webhook_purge(void);
extern bool sm_webhook_extension_present(void);

/* webhook_send.c */
extern void sm_webhook_send_setup(void);
extern void sm_webhook_start_queued(void);
extern void sm_webhook_send_wait(long timeout_ms);
extern void sm_webhook_abandon_all(void);

#endif							/* SM_WEBHOOK_DELIVER_H */

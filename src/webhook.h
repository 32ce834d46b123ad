/*-------------------------------------------------------------------------
 *
 * webhook.h
 *	  Declarations shared by the webhook outbox (webhook.c) and the
 *	  delivery worker (webhook_worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SM_WEBHOOK_H
#define SM_WEBHOOK_H

#include "postgres.h"

#include <sys/socket.h>

#include "lib/stringinfo.h"
#include "storage/latch.h"
#include "storage/spin.h"

/* bgw_type of the worker, also its backend_type in pg_stat_activity */
#define SM_WEBHOOK_WORKER_TYPE	"salesmgmt webhook worker"

/* Workers that can run at once (one per database) */
#define SM_WEBHOOK_MAX_WORKERS	16

/* Longest retry schedule accepted by salesmgmt.webhook_retry_schedule */
#define SM_WEBHOOK_MAX_RETRIES	32

/* Settings (webhook.c) */
extern char *sm_webhook_database;
extern int	sm_webhook_connect_timeout_ms;
extern int	sm_webhook_timeout_ms;
extern int	sm_webhook_concurrency;
extern int	sm_webhook_retention_s;
extern bool sm_webhook_allow_private_networks;

/* The retry schedule in milliseconds, parsed from its setting */
extern int	sm_webhook_retry_count;
extern int64 sm_webhook_retry_ms[SM_WEBHOOK_MAX_RETRIES];

/*
 * Shared memory: one slot per running worker, so that a committing backend
 * can set the latch of its database's worker.  Present only when the
 * library is in shared_preload_libraries.
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

extern SmWebhookShared *sm_webhook_shared;

/* webhook.c */
extern void sm_webhook_signature(const char *secret, const char *msg_id,
								 int64 timestamp, const char *body, size_t bodylen,
								 StringInfo out);
extern bool sm_webhook_address_refused(const struct sockaddr *sa, const char **why);

/* webhook_events.c */
extern bool sm_webhook_type_matches(const char *pattern, const char *type);

/* webhook_worker.c */
extern void sm_webhook_register_static_worker(void);
extern PGDLLEXPORT void sm_webhook_worker_main(Datum main_arg);

#endif							/* SM_WEBHOOK_H */

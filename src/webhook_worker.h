/*-------------------------------------------------------------------------
 *
 * webhook_worker.h
 *	  The webhook delivery worker as the rest of the extension sees it: its
 *	  initialisation (settings, shared memory, registration; called from
 *	  _PG_init) and the wake-up at commit the outbox writers ask for.
 *
 * The worker's own parts (webhook_worker.c: settings, shared memory, main
 * loop; webhook_send.c: HTTP; webhook_store.c: the outbox queries) share
 * webhook_deliver.h.  Include graph, one direction only:
 *
 *	  webhook.c (deal trigger)     -> webhook.h, webhook_worker.h
 *	  webhook_endpoint.c           -> webhook_sign.h
 *	  webhook_worker/send/store.c  -> webhook_deliver.h -> webhook_worker.h,
 *	                                  webhook_sign.h
 *	  webhook_sign.c               -> webhook_sign.h (leaf)
 *
 *-------------------------------------------------------------------------
 */
#ifndef SM_WEBHOOK_WORKER_H
#define SM_WEBHOOK_WORKER_H

#include "postgres.h"

#include "fmgr.h"

/* bgw_type of the worker, also its backend_type in pg_stat_activity */
#define SM_WEBHOOK_WORKER_TYPE	"salesmgmt webhook worker"

/* Wake this database's worker when the current transaction commits */
extern void sm_webhook_wake_at_commit(void);

extern PGDLLEXPORT void sm_webhook_worker_main(Datum main_arg);

#endif							/* SM_WEBHOOK_WORKER_H */

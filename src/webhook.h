/*-------------------------------------------------------------------------
 *
 * webhook.h
 *	  The outbox side of webhooks: what the deal trigger (webhook.c) and
 *	  the event registry helpers (webhook_events.c) share.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SM_WEBHOOK_H
#define SM_WEBHOOK_H

#include "postgres.h"

/* webhook_events.c */
extern bool sm_webhook_type_matches(const char *pattern, const char *type);

#endif							/* SM_WEBHOOK_H */

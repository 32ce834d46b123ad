/*-------------------------------------------------------------------------
 *
 * webhook_sign.h
 *	  Standard Webhooks secrets and signatures, and the address guard: the
 *	  leaf of the webhook files (webhook_sign.c depends on no other
 *	  salesmgmt file but salesmgmt.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SM_WEBHOOK_SIGN_H
#define SM_WEBHOOK_SIGN_H

#include "postgres.h"

#include <sys/socket.h>

#define SM_WEBHOOK_SECRET_MIN_BYTES	24
#define SM_WEBHOOK_SECRET_MAX_BYTES	64

/* "v1," + base64 of a SHA-256 HMAC + the terminating zero */
#define SM_WEBHOOK_SIGNATURE_LEN	48

/* salesmgmt.webhook_allow_private_networks (defined by the worker's init) */
extern bool sm_webhook_allow_private_networks;

extern int	sm_webhook_secret_key(const char *secret, uint8 *key);
extern void sm_webhook_signature_into(const char *secret, const char *msg_id,
									  int64 timestamp, const char *body, size_t bodylen,
									  char *out, size_t outlen);
extern void sm_webhook_signature_kept(const char *secret, const char *msg_id,
									  int64 timestamp, const char *body, size_t bodylen,
									  char *out, size_t outlen);
extern bool sm_webhook_address_refused(const struct sockaddr *sa, const char **why);

#endif							/* SM_WEBHOOK_SIGN_H */

/*-------------------------------------------------------------------------
 *
 * webhook.c
 *	  Webhooks on deal events: settings, the transactional outbox (the deal
 *	  trigger), endpoint validation, Standard Webhooks signatures, the
 *	  address guard, and waking the delivery worker at commit.
 *
 * The deal trigger runs in the transaction that changes the deal: it
 * writes one salesmgmt.webhook_event row and one salesmgmt.webhook_delivery
 * row per active endpoint subscribed to the event type, so what a rolled
 * back transaction did is never sent and what a committed one did is never
 * lost.  It keeps the list of active endpoints and the outcome of every
 * stage in a per-session cache, and writes the outbox rows directly into
 * the tables and their indexes, so a deal change costs two or three heap
 * inserts and their index entries, and nothing when no endpoint listens.
 *
 * The worker that sends the deliveries is in webhook_worker.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <curl/curl.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "common/base64.h"
#include "common/hmac.h"
#include "common/jsonapi.h"
#include "common/sha2.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "salesmgmt.h"
#include "webhook.h"

PG_FUNCTION_INFO_V1(sm_webhook_generate_secret);
PG_FUNCTION_INFO_V1(sm_webhook_sign);
PG_FUNCTION_INFO_V1(sm_webhook_new_event_id);
PG_FUNCTION_INFO_V1(sm_webhook_endpoint_check);
PG_FUNCTION_INFO_V1(sm_webhook_cache_invalidate);
PG_FUNCTION_INFO_V1(sm_webhook_enqueue);
PG_FUNCTION_INFO_V1(sm_webhook_wake);
PG_FUNCTION_INFO_V1(sm_webhook_refuse_private_literal);

/* ---------------------------------------------------------------------
 * Settings
 * --------------------------------------------------------------------- */

char	   *sm_webhook_database = NULL;
int			sm_webhook_connect_timeout_ms = 5000;
int			sm_webhook_timeout_ms = 15000;
int			sm_webhook_concurrency = 16;
int			sm_webhook_retention_s = 7 * 24 * 3600;
bool		sm_webhook_allow_private_networks = false;
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

	/* the GUC machinery frees extra with free() */
	rs = (RetrySchedule *) malloc(sizeof(RetrySchedule));
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
			free(rs);
			return false;
		}
		while (isdigit((unsigned char) *p))
		{
			n = n * 10 + (*p++ - '0');
			if (n > INT64CONST(1000000000))
			{
				GUC_check_errdetail("A delay may be at most 1000000000 units.");
				free(rs);
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
			free(rs);
			return false;
		}
		if (rs->count >= SM_WEBHOOK_MAX_RETRIES)
		{
			GUC_check_errdetail("At most %d retry delays are allowed.", SM_WEBHOOK_MAX_RETRIES);
			free(rs);
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
			free(rs);
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

SmWebhookShared *sm_webhook_shared = NULL;

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

static void
wake_worker_at_commit(void)
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
	wake_worker_at_commit();
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * Module initialisation
 * --------------------------------------------------------------------- */

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
		sm_webhook_register_static_worker();
	}
}

/* ---------------------------------------------------------------------
 * Secrets and signatures (Standard Webhooks)
 * --------------------------------------------------------------------- */

#define SECRET_PREFIX		"whsec_"
#define SECRET_PREFIX_LEN	6
#define SECRET_MIN_BYTES	24
#define SECRET_MAX_BYTES	64
#define SECRET_NEW_BYTES	32

Datum
sm_webhook_generate_secret(PG_FUNCTION_ARGS)
{
	uint8		raw[SECRET_NEW_BYTES];
	char		enc[SECRET_PREFIX_LEN + 64];
	int			len;

	if (!pg_strong_random(raw, sizeof(raw)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random webhook secret")));
	memcpy(enc, SECRET_PREFIX, SECRET_PREFIX_LEN);
	len = pg_b64_encode((const char *) raw, sizeof(raw),
						enc + SECRET_PREFIX_LEN, sizeof(enc) - SECRET_PREFIX_LEN);
	if (len < 0)
		elog(ERROR, "could not encode a webhook secret");
	PG_RETURN_TEXT_P(cstring_to_text_with_len(enc, SECRET_PREFIX_LEN + len));
}

/*
 * Decode a "whsec_" secret into its key bytes; returns the key length, or
 * -1 if the secret is not of that form.  key must hold SECRET_MAX_BYTES.
 */
static int
secret_key(const char *secret, uint8 *key)
{
	size_t		len = strlen(secret);
	int			declen;
	char		buf[128];

	if (len <= SECRET_PREFIX_LEN || strncmp(secret, SECRET_PREFIX, SECRET_PREFIX_LEN) != 0)
		return -1;
	len -= SECRET_PREFIX_LEN;
	if (pg_b64_dec_len((int) len) > (int) sizeof(buf))
		return -1;
	declen = pg_b64_decode(secret + SECRET_PREFIX_LEN, (int) len, buf, sizeof(buf));
	if (declen < SECRET_MIN_BYTES || declen > SECRET_MAX_BYTES)
		return -1;
	memcpy(key, buf, declen);
	return declen;
}

/*
 * Append "v1,<base64 of HMAC-SHA256(key, msg_id.timestamp.body)>" to out.
 *
 * The HMAC context is tracked by the current resource owner (OpenSSL
 * builds), so a caller outside a transaction must provide one.
 */
void
sm_webhook_signature(const char *secret, const char *msg_id, int64 timestamp,
					 const char *body, size_t bodylen, StringInfo out)
{
	uint8		key[SECRET_MAX_BYTES];
	int			keylen;
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char		ts[32];
	pg_hmac_ctx *ctx;
	int			enclen;

	keylen = secret_key(secret, key);
	if (keylen < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook secret is not of the form \"whsec_\" followed by base64"),
				 errhint("A secret is \"whsec_\" and the base64 encoding of %d to %d bytes, "
						 "as salesmgmt.webhook_generate_secret() makes.",
						 SECRET_MIN_BYTES, SECRET_MAX_BYTES)));
	snprintf(ts, sizeof(ts), INT64_FORMAT, timestamp);

	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL)
		elog(ERROR, "could not create an HMAC context");
	if (pg_hmac_init(ctx, key, keylen) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) msg_id, strlen(msg_id)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) ".", 1) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) ts, strlen(ts)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) ".", 1) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) body, bodylen) < 0 ||
		pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
	{
		const char *err = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		elog(ERROR, "could not compute a webhook signature: %s", err);
	}
	pg_hmac_free(ctx);
	explicit_bzero(key, sizeof(key));

	appendStringInfoString(out, "v1,");
	enlargeStringInfo(out, pg_b64_enc_len(sizeof(mac)) + 1);
	enclen = pg_b64_encode((const char *) mac, sizeof(mac),
						   out->data + out->len, out->maxlen - out->len);
	if (enclen < 0)
		elog(ERROR, "could not encode a webhook signature");
	out->len += enclen;
	out->data[out->len] = '\0';
}

Datum
sm_webhook_sign(PG_FUNCTION_ARGS)
{
	char	   *secret = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *msg_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int64		ts = PG_GETARG_INT64(2);
	text	   *body = PG_GETARG_TEXT_PP(3);
	StringInfoData out;

	initStringInfo(&out);
	sm_webhook_signature(secret, msg_id, ts, VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body), &out);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/* ---------------------------------------------------------------------
 * The address guard
 * --------------------------------------------------------------------- */

static bool
ipv4_refused(uint32 a, const char **why)
{
#define IN4(net, bits) ((a >> (32 - (bits))) == ((uint32) (net) >> (32 - (bits))))
	if (IN4(0x00000000, 8))
		*why = "a \"this network\" address (0.0.0.0/8)";
	else if (IN4(0x7F000000, 8))
		*why = "a loopback address";
	else if (IN4(0x0A000000, 8) || IN4(0xAC100000, 12) || IN4(0xC0A80000, 16))
		*why = "a private address (RFC 1918)";
	else if (IN4(0x64400000, 10))
		*why = "a carrier-grade NAT address (100.64.0.0/10)";
	else if (IN4(0xA9FE0000, 16))
		*why = "a link-local address";
	else if (IN4(0xC0000000, 24))
		*why = "an IETF protocol assignment address (192.0.0.0/24)";
	else if (IN4(0xC0000200, 24) || IN4(0xC6336400, 24) || IN4(0xCB007100, 24))
		*why = "a documentation address";
	else if (IN4(0xC6120000, 15))
		*why = "a benchmarking address (198.18.0.0/15)";
	else if (IN4(0xE0000000, 4))
		*why = "a multicast address";
	else if (IN4(0xF0000000, 4))
		*why = "a reserved or broadcast address";
	else
		return false;
	return true;
#undef IN4
}

/*
 * Whether an address is one that webhook deliveries must not connect to
 * unless salesmgmt.webhook_allow_private_networks is on; *why names the
 * kind of address, with its article ("a loopback address").  Applied to the address libcurl is about to connect
 * to, after name resolution, so a name that resolves to an internal
 * address is caught too.
 */
bool
sm_webhook_address_refused(const struct sockaddr *sa, const char **why)
{
	if (sa->sa_family == AF_INET)
	{
		const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;

		return ipv4_refused(ntohl(sin->sin_addr.s_addr), why);
	}
	else if (sa->sa_family == AF_INET6)
	{
		const uint8 *b = ((const struct sockaddr_in6 *) sa)->sin6_addr.s6_addr;
		static const uint8 zero[16] = {0};
		uint32		v4;

		if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1))
			*why = b[15] ? "a loopback address" : "an unspecified address";
		else if (memcmp(b, zero, 10) == 0 && b[10] == 0xff && b[11] == 0xff)
			*why = "an IPv4-mapped IPv6 address";
		else if (memcmp(b, zero, 12) == 0)
			*why = "an IPv4-compatible IPv6 address";
		else if ((b[0] & 0xfe) == 0xfc)
			*why = "a unique-local address";
		else if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
			*why = "a link-local address";
		else if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
			*why = "a site-local address";
		else if (b[0] == 0xff)
			*why = "a multicast address";
		else if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
			*why = "a documentation address";
		else if (b[0] == 0x01 && memcmp(b + 1, zero, 7) == 0)
			*why = "a discard-only address";
		else if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b &&
				 memcmp(b + 4, zero, 8) == 0)
		{
			/* NAT64: judge the embedded IPv4 address */
			v4 = ((uint32) b[12] << 24) | ((uint32) b[13] << 16) | ((uint32) b[14] << 8) | b[15];
			return ipv4_refused(v4, why);
		}
		else if (b[0] == 0x20 && b[1] == 0x02)
		{
			/* 6to4: judge the embedded IPv4 address */
			v4 = ((uint32) b[2] << 24) | ((uint32) b[3] << 16) | ((uint32) b[4] << 8) | b[5];
			return ipv4_refused(v4, why);
		}
		else
			return false;
		return true;
	}
	*why = "an address of an unsupported family";
	return true;
}

/* ---------------------------------------------------------------------
 * Endpoint validation
 * --------------------------------------------------------------------- */

#define URL_MAX_LEN 2048

/*
 * Check a webhook URL; returns NULL if it is acceptable, else why not.
 * If host is not NULL, the URL's host is returned there (palloc'd).
 */
static const char *
url_problem(const char *url, char **host)
{
	CURLU	   *u;
	CURLUcode	rc;
	char	   *part = NULL;
	const char *problem = NULL;

	if (strlen(url) > URL_MAX_LEN)
		return psprintf("it is longer than %d characters", URL_MAX_LEN);
	for (const char *p = url; *p; p++)
		if ((unsigned char) *p <= ' ' || *p == 0x7f)
			return "it contains spaces or control characters";

	u = curl_url();
	if (u == NULL)
		elog(ERROR, "out of memory parsing a URL");
	rc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (rc != CURLUE_OK)
	{
		problem = psprintf("%s", curl_url_strerror(rc));
		goto done;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &part, 0) != CURLUE_OK ||
		(pg_strcasecmp(part, "http") != 0 && pg_strcasecmp(part, "https") != 0))
	{
		problem = "only http and https URLs are allowed";
		goto done;
	}
	curl_free(part);
	part = NULL;
	if (curl_url_get(u, CURLUPART_USER, &part, 0) != CURLUE_NO_USER ||
		curl_url_get(u, CURLUPART_PASSWORD, &part, 0) != CURLUE_NO_PASSWORD)
	{
		problem = "it contains a user name or password";
		goto done;
	}
	if (curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) != CURLUE_NO_FRAGMENT)
	{
		problem = "it has a fragment (#...), which would not be sent";
		goto done;
	}
	if (curl_url_get(u, CURLUPART_HOST, &part, 0) != CURLUE_OK || part[0] == '\0')
	{
		problem = "it has no host";
		goto done;
	}
	if (host)
		*host = pstrdup(part);
done:
	if (part)
		curl_free(part);
	curl_url_cleanup(u);
	return problem;
}

static const char *const event_type_names[] = {
	"deal.created", "deal.updated", "deal.stage_changed", "deal.won",
	"deal.lost", "deal.reopened", "deal.deleted"
};
#define N_EVENT_TYPES lengthof(event_type_names)
#define ALL_EVENT_TYPES ((uint32) ((1 << N_EVENT_TYPES) - 1))

typedef enum
{
	EV_CREATED, EV_UPDATED, EV_STAGE_CHANGED, EV_WON, EV_LOST, EV_REOPENED, EV_DELETED
} SmEventType;

/* Attribute number of a column, or 0 when the table has none of that name */
static int
attnum_or_zero(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i + 1;
	}
	return 0;
}

static int
attnum_of(TupleDesc desc, const char *name)
{
	int			a = attnum_or_zero(desc, name);

	if (a == 0)
		elog(ERROR, "column \"%s\" not found", name);
	return a;
}

/*
 * BEFORE INSERT OR UPDATE on salesmgmt.webhook_endpoint: every way of
 * writing an endpoint (create_webhook, plain INSERT/UPDATE, a restore) goes
 * through the same checks.  Literal private addresses are refused only by
 * create_webhook, so that a restore does not depend on the setting.
 */
Datum
sm_webhook_endpoint_check(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	tuple;
	Datum	   *values;
	bool	   *nulls;
	bool	   *repl;
	int			a_url,
				a_secret,
				a_types,
				a_active,
				a_reason,
				a_disabled_at;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_webhook_endpoint_check must be a BEFORE ROW trigger")));

	desc = RelationGetDescr(td->tg_relation);
	tuple = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	values = palloc(desc->natts * sizeof(Datum));
	nulls = palloc(desc->natts * sizeof(bool));
	repl = palloc0(desc->natts * sizeof(bool));
	heap_deform_tuple(tuple, desc, values, nulls);

	a_url = attnum_of(desc, "url") - 1;
	a_secret = attnum_of(desc, "secret") - 1;
	a_types = attnum_of(desc, "event_types") - 1;
	a_active = attnum_of(desc, "active") - 1;
	a_reason = attnum_of(desc, "disabled_reason") - 1;
	a_disabled_at = attnum_of(desc, "disabled_at") - 1;

	if (!nulls[a_url])
	{
		char	   *url = TextDatumGetCString(values[a_url]);
		const char *problem = url_problem(url, NULL);

		if (problem)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid webhook URL \"%s\"", url),
					 errdetail("The URL is refused because %s.", problem),
					 errhint("Give an http:// or https:// URL such as https://hooks.example.com/salesmgmt, without user name, password or fragment.")));
	}

	if (!nulls[a_secret])
	{
		char	   *secret = TextDatumGetCString(values[a_secret]);
		uint8		key[SECRET_MAX_BYTES];

		/* never echo the secret in a message */
		if (secret_key(secret, key) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid webhook secret"),
					 errdetail("A secret is \"whsec_\" followed by the base64 encoding of %d to %d bytes.",
							   SECRET_MIN_BYTES, SECRET_MAX_BYTES),
					 errhint("Leave the secret out (null) to have one generated.")));
		explicit_bzero(key, sizeof(key));
	}

	if (!nulls[a_types])
	{
		ArrayType  *arr = DatumGetArrayTypeP(values[a_types]);
		Datum	   *elems;
		bool	   *elnulls;
		int			n;

		if (ARR_NDIM(arr) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("webhook event types must be a one-dimensional array")));
		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elnulls, &n);
		if (n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("webhook event types must not be empty"),
					 errhint("Use null to receive every event type.")));
		for (int i = 0; i < n; i++)
		{
			if (elnulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("webhook event types must not contain null")));
			/* whether it is registered: _webhook_subscription_check */
		}
	}

	/* an inactive endpoint says why; an active one has no reason */
	if (!nulls[a_active] && !DatumGetBool(values[a_active]))
	{
		if (nulls[a_reason])
		{
			values[a_reason] = CStringGetTextDatum(psprintf("deactivated by %s",
															GetUserNameFromId(GetUserId(), false)));
			nulls[a_reason] = false;
			repl[a_reason] = true;
		}
		if (nulls[a_disabled_at])
		{
			values[a_disabled_at] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
			nulls[a_disabled_at] = false;
			repl[a_disabled_at] = true;
		}
	}
	else
	{
		nulls[a_reason] = nulls[a_disabled_at] = true;
		repl[a_reason] = repl[a_disabled_at] = true;
	}

	return PointerGetDatum(heap_modify_tuple(tuple, desc, values, nulls, repl));
}

Datum
sm_webhook_refuse_private_literal(PG_FUNCTION_ARGS)
{
	char	   *url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *host = NULL;
	const char *problem;
	struct sockaddr_storage ss;
	const char *why;
	size_t		len;

	problem = url_problem(url, &host);
	if (problem || sm_webhook_allow_private_networks)
		PG_RETURN_VOID();

	memset(&ss, 0, sizeof(ss));
	len = strlen(host);
	if (len > 2 && host[0] == '[' && host[len - 1] == ']')
	{
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;

		host[len - 1] = '\0';
		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			PG_RETURN_VOID();
	}
	else
	{
		struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;

		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			PG_RETURN_VOID();	/* a name: checked when connecting */
	}
	if (sm_webhook_address_refused((struct sockaddr *) &ss, &why))
		ereport(ERROR,
				(errcode(ERRCODE_SM_WEBHOOK_ADDRESS_REFUSED),
				 errmsg("webhook URL \"%s\" points to %s", url, why),
				 errdetail("Deliveries to loopback, private, link-local and other non-public addresses are refused."),
				 errhint("A superuser can allow them with salesmgmt.webhook_allow_private_networks = on.")));
	PG_RETURN_VOID();
}
/* ---------------------------------------------------------------------
 * Per-session caches: active endpoints, stage outcomes, outbox relations
 *
 * The deal trigger runs for every deal change, so it reads nothing it
 * can remember.  What it remembers is dropped on any relcache
 * invalidation of the endpoint, stage or outbox tables: statement
 * triggers on salesmgmt.webhook_endpoint and salesmgmt.stage send one for
 * every change of their rows (sm_webhook_cache_invalidate), and DDL sends
 * them anyway.  Invalidations are taken in at every transaction start and
 * lock acquisition, so another session's committed change is seen by the
 * next transaction, and this session's own change by its next statement.
 * --------------------------------------------------------------------- */

typedef struct EndpointEntry
{
	int64		endpoint_id;
	uint32		types;			/* bit i: event_type_names[i] */
} EndpointEntry;

typedef struct StageEntry
{
	int64		stage_id;
	char		outcome;		/* 'o'pen, 'w'on, 'l'ost */
} StageEntry;

typedef struct OutboxCache
{
	bool		valid;
	Oid			endpoint_relid;
	Oid			stage_relid;
	Oid			event_relid;
	Oid			delivery_relid;
	Oid			event_seq_index;	/* unique (deal_id, sequence) */
	Oid			delivery_id_seq;	/* identity sequence of delivery_id */
	EndpointEntry *endpoints;
	int			n_endpoints;
	StageEntry *stages;			/* sorted by stage_id */
	int			n_stages;
	MemoryContext cxt;
} OutboxCache;

static OutboxCache cache = {false};
static bool relcache_callback_registered = false;

static void
outbox_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == cache.endpoint_relid ||
		relid == cache.stage_relid || relid == cache.event_relid ||
		relid == cache.delivery_relid)
		cache.valid = false;
}

/* AFTER ... FOR EACH STATEMENT on the endpoint and stage tables */
Datum
sm_webhook_cache_invalidate(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_webhook_cache_invalidate must be called as a trigger")));
	CacheInvalidateRelcache(td->tg_relation);
	return PointerGetDatum(NULL);
}

static int
stage_cmp(const void *a, const void *b)
{
	int64		x = ((const StageEntry *) a)->stage_id;
	int64		y = ((const StageEntry *) b)->stage_id;

	return (x > y) - (x < y);
}

static Oid
schema_relid(Oid nsp, const char *name)
{
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist", SALESMGMT_SCHEMA, name),
				 errhint("The salesmgmt extension is incomplete; ALTER EXTENSION salesmgmt UPDATE or recreate it.")));
	return relid;
}

/*
 * Rebuild the cache.  Tables are read with the latest snapshot, not the
 * transaction's: a repeatable-read transaction must not keep a list that
 * misses endpoints committed after it started once the invalidation that
 * announced them has been consumed.
 */
static void
load_cache(void)
{
	Oid			nsp = get_namespace_oid(SALESMGMT_SCHEMA, false);
	Relation	ep_rel;
	Relation	st_rel;
	TupleDesc	desc;
	TableScanDesc scan;
	Snapshot	snap;
	HeapTuple	tup;
	MemoryContext old;
	int			a_id,
				a_types,
				a_active,
				a_outcome;
	int			cap;

	if (!relcache_callback_registered)
	{
		CacheRegisterRelcacheCallback(outbox_relcache_callback, (Datum) 0);
		relcache_callback_registered = true;
	}
	if (cache.cxt == NULL)
		cache.cxt = AllocSetContextCreate(CacheMemoryContext, "salesmgmt webhook cache",
										  ALLOCSET_SMALL_SIZES);

	/*
	 * Open (and lock) the tables first: that takes in pending invalidations.
	 * Mark the cache valid before reading, so an invalidation arriving later
	 * makes the next call reload.
	 */
	ep_rel = table_open(schema_relid(nsp, "webhook_endpoint"), AccessShareLock);
	st_rel = table_open(schema_relid(nsp, "stage"), AccessShareLock);
	MemoryContextReset(cache.cxt);
	cache.endpoint_relid = RelationGetRelid(ep_rel);
	cache.stage_relid = RelationGetRelid(st_rel);
	cache.event_relid = schema_relid(nsp, "webhook_event");
	cache.delivery_relid = schema_relid(nsp, "webhook_delivery");
	cache.event_seq_index = schema_relid(nsp, "webhook_event_deal_sequence");
	cache.delivery_id_seq = sm_identity_sequence(cache.delivery_relid,
												get_attnum(cache.delivery_relid, "delivery_id"),
												false);
	cache.n_endpoints = 0;
	cache.n_stages = 0;
	cache.valid = true;

	old = MemoryContextSwitchTo(cache.cxt);
	snap = RegisterSnapshot(GetLatestSnapshot());

	/* active endpoints and the event types they receive */
	desc = RelationGetDescr(ep_rel);
	a_id = attnum_of(desc, "endpoint_id");
	a_types = attnum_of(desc, "event_types");
	a_active = attnum_of(desc, "active");
	cap = 8;
	cache.endpoints = palloc(cap * sizeof(EndpointEntry));
	scan = table_beginscan(ep_rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d;
		uint32		types = 0;

		d = heap_getattr(tup, a_active, desc, &isnull);
		if (isnull || !DatumGetBool(d))
			continue;
		d = heap_getattr(tup, a_types, desc, &isnull);
		if (isnull)
			types = ALL_EVENT_TYPES;
		else
		{
			Datum	   *elems;
			bool	   *elnulls;
			int			ne;

			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &elnulls, &ne);
			for (int i = 0; i < ne; i++)
			{
				char	   *pattern = elnulls[i] ? NULL : TextDatumGetCString(elems[i]);

				for (int k = 0; pattern && k < (int) N_EVENT_TYPES; k++)
					if (sm_webhook_type_matches(pattern, event_type_names[k]))
						types |= 1 << k;
			}
		}
		if (cache.n_endpoints == cap)
		{
			cap *= 2;
			cache.endpoints = repalloc(cache.endpoints, cap * sizeof(EndpointEntry));
		}
		cache.endpoints[cache.n_endpoints].endpoint_id =
			DatumGetInt64(heap_getattr(tup, a_id, desc, &isnull));
		cache.endpoints[cache.n_endpoints].types = types;
		cache.n_endpoints++;
	}
	table_endscan(scan);

	/* the outcome of every stage */
	desc = RelationGetDescr(st_rel);
	a_id = attnum_of(desc, "stage_id");
	a_outcome = attnum_of(desc, "outcome");
	cap = 16;
	cache.stages = palloc(cap * sizeof(StageEntry));
	scan = table_beginscan(st_rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, a_outcome, desc, &isnull);

		if (cache.n_stages == cap)
		{
			cap *= 2;
			cache.stages = repalloc(cache.stages, cap * sizeof(StageEntry));
		}
		cache.stages[cache.n_stages].stage_id = DatumGetInt64(heap_getattr(tup, a_id, desc, &isnull));
		cache.stages[cache.n_stages].outcome = isnull ? 'o' : VARDATA_ANY(DatumGetTextPP(d))[0];
		cache.n_stages++;
	}
	table_endscan(scan);
	qsort(cache.stages, cache.n_stages, sizeof(StageEntry), stage_cmp);

	UnregisterSnapshot(snap);
	MemoryContextSwitchTo(old);
	table_close(st_rel, AccessShareLock);
	table_close(ep_rel, AccessShareLock);
}

static char
stage_outcome(int64 stage_id)
{
	StageEntry	key = {stage_id, 0};
	StageEntry *e = bsearch(&key, cache.stages, cache.n_stages, sizeof(StageEntry), stage_cmp);

	return e ? e->outcome : 'o';
}

/* ---------------------------------------------------------------------
 * The deal trigger: the outbox
 * --------------------------------------------------------------------- */

/*
 * Append the JSON for one value, rendered the way row_to_json renders the
 * same column, so "previous" and "deal" agree.
 */
static void
append_json_value(StringInfo buf, Datum value, bool isnull, Oid typid)
{
	Oid			outfn;
	bool		varlena;
	char	   *s;

	if (isnull)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	typid = getBaseType(typid);
	switch (typid)
	{
		case BOOLOID:
			appendStringInfoString(buf, DatumGetBool(value) ? "true" : "false");
			return;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			{
				char		dt[MAXDATELEN + 1];

				JsonEncodeDateTime(dt, value, typid, NULL);
				appendStringInfo(buf, "\"%s\"", dt);
				return;
			}
		default:
			break;
	}
	getTypeOutputInfo(typid, &outfn, &varlena);
	s = OidOutputFunctionCall(outfn, value);
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			/* NaN and infinities are not JSON numbers */
			if (IsValidJsonNumber(s, strlen(s)))
				appendStringInfoString(buf, s);
			else
				escape_json(buf, s);
			break;
		case JSONOID:
		case JSONBOID:
			appendStringInfoString(buf, s);
			break;
		default:
			escape_json(buf, s);
			break;
	}
	pfree(s);
}

/* Outcome ('open', 'won', 'lost') of two stages, looked up in one query. */

/*
 * Insert a row into one of the outbox tables, with its indexes, without
 * the executor: no plan, no permission or row-security check (the trigger
 * writes on the system's behalf, whoever changed the deal) and no CHECK
 * constraints (the values are made here and are valid by construction).
 * Unique indexes are still enforced.
 */
static void
outbox_insert(Relation rel, Datum *values, bool *nulls)
{
	EState	   *estate = CreateExecutorState();
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	TupleTableSlot *slot;

	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel), &TTSOpsHeapTuple);
	ExecStoreHeapTuple(heap_form_tuple(RelationGetDescr(rel), values, nulls), slot, true);
	table_tuple_insert(rel, slot, GetCurrentCommandId(true), 0, NULL);
	if (rri->ri_NumIndices > 0)
		sm_insert_index_tuples(rri, slot, estate);
	ExecDropSingleTupleTableSlot(slot);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
}

/*
 * The next sequence number of a deal's events: one more than the highest
 * so far, read from the unique (deal_id, sequence) index with the latest
 * snapshot.  Two transactions cannot race here: both would hold the
 * deal's row lock (UPDATE, DELETE) or the deal is new (INSERT); and the
 * unique index would refuse a duplicate anyway.
 */
static int64
next_sequence(Relation event_rel, int64 deal_id)
{
	Relation	idx = index_open(cache.event_seq_index, AccessShareLock);
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
	IndexScanDesc scan;
	ScanKeyData key;
	TupleTableSlot *slot = table_slot_create(event_rel, NULL);
	int64		seq = 0;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(deal_id));
	scan = index_beginscan(event_rel, idx, snap, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	if (index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, attnum_of(RelationGetDescr(event_rel), "sequence"), &isnull);

		if (!isnull)
			seq = DatumGetInt64(d);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snap);
	index_close(idx, AccessShareLock);
	return seq + 1;
}

/*
 * A version 7 UUID (RFC 9562): 48 bits of Unix time in milliseconds, then
 * random bits.  Ids made one after the other sort together, so the
 * indexes on event_id grow at their right edge instead of taking random
 * insertions all over, and event ids sort by time.
 */
static pg_uuid_t *
time_ordered_uuid(void)
{
	pg_uuid_t  *uuid = palloc(UUID_LEN);
	uint64		ms = (uint64) (GetCurrentTimestamp() / 1000 +
							   (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * (uint64) 86400000);

	if (!pg_strong_random(uuid->data + 6, UUID_LEN - 6))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random event id")));
	for (int i = 0; i < 6; i++)
		uuid->data[i] = (uint8) (ms >> (40 - 8 * i));
	uuid->data[6] = (uuid->data[6] & 0x0f) | 0x70;
	uuid->data[8] = (uuid->data[8] & 0x3f) | 0x80;
	return uuid;
}

Datum
sm_webhook_new_event_id(PG_FUNCTION_ARGS)
{
	PG_RETURN_UUID_P(time_ordered_uuid());
}

/* Set the column called name in a values/nulls pair of rel's shape */
static void
set_col(TupleDesc desc, Datum *values, bool *nulls, const char *name, Datum value)
{
	int			a = attnum_of(desc, name) - 1;

	values[a] = value;
	nulls[a] = false;
}

/* Columns whose change alone is a deal.updated event */
static const char *const updated_columns[] = {
	"amount", "currency", "expected_close_date", "owner_rep_id", "probability", "forecast_category"
};

/*
 * AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW on salesmgmt.deal.
 *
 * One change of a deal is one event, the most specific that applies: a
 * move into a won stage is deal.won (not also deal.stage_changed), into a
 * lost stage deal.lost, out of a won or lost stage into an open one
 * deal.reopened, any other stage move deal.stage_changed; a change of
 * amount, currency, close date, owner, probability or forecast category
 * without a stage move deal.updated.  Changes to other columns only (name,
 * extra, ...) send nothing.  Nothing is written when no active endpoint
 * subscribes to the event type.
 */
Datum
sm_webhook_enqueue(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	newtup;
	HeapTuple	oldtup = NULL;
	SmEventType type;
	StringInfoData body;
	int64	   *targets;
	int			n_targets = 0;
	int64		deal_id;
	int64		sequence;
	bool		isnull;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	char		ts[MAXDATELEN + 1];
	int			utc = 0;
	bool	   *changed = NULL;
	pg_uuid_t  *event_id;
	Relation	event_rel;
	Relation	delivery_rel;
	TupleDesc	edesc;
	Datum	   *values;
	bool	   *nulls;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_webhook_enqueue must be an AFTER ROW trigger")));

	if (!cache.valid)
		load_cache();
	if (cache.n_endpoints == 0)
		return PointerGetDatum(NULL);	/* nobody listens: write nothing */

	rel = td->tg_relation;
	desc = RelationGetDescr(rel);

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		newtup = td->tg_trigtuple;
		type = EV_CREATED;
	}
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		newtup = td->tg_trigtuple;
		type = EV_DELETED;
	}
	else
	{
		int			a_stage = attnum_of(desc, "stage_id");
		int			a_updated = attnum_of(desc, "updated_at");

		oldtup = td->tg_trigtuple;
		newtup = td->tg_newtuple;
		changed = palloc0(desc->natts * sizeof(bool));
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			bool		onull,
						nnull;
			Datum		o,
						n;

			if (att->attisdropped || i + 1 == a_updated)
				continue;
			o = heap_getattr(oldtup, i + 1, desc, &onull);
			n = heap_getattr(newtup, i + 1, desc, &nnull);
			if (onull != nnull ||
				(!onull && !datumIsEqual(o, n, att->attbyval, att->attlen)))
				changed[i] = true;
		}
		if (changed[a_stage - 1])
		{
			char		old_outcome = stage_outcome(DatumGetInt64(heap_getattr(oldtup, a_stage, desc, &isnull)));
			char		new_outcome = stage_outcome(DatumGetInt64(heap_getattr(newtup, a_stage, desc, &isnull)));

			if (new_outcome == 'w' && old_outcome != 'w')
				type = EV_WON;
			else if (new_outcome == 'l' && old_outcome != 'l')
				type = EV_LOST;
			else if (new_outcome == 'o' && old_outcome != 'o')
				type = EV_REOPENED;
			else
				type = EV_STAGE_CHANGED;
		}
		else
		{
			bool		any = false;

			for (int i = 0; i < (int) lengthof(updated_columns); i++)
				if (changed[attnum_of(desc, updated_columns[i]) - 1])
					any = true;
			if (!any)
				return PointerGetDatum(NULL);
			type = EV_UPDATED;
		}
	}

	/* the subscribed endpoints */
	targets = palloc(cache.n_endpoints * sizeof(int64));
	for (int i = 0; i < cache.n_endpoints; i++)
		if (cache.endpoints[i].types & (1 << type))
			targets[n_targets++] = cache.endpoints[i].endpoint_id;
	if (n_targets == 0)
		return PointerGetDatum(NULL);

	deal_id = DatumGetInt64(heap_getattr(newtup, attnum_of(desc, "deal_id"), desc, &isnull));
	event_rel = table_open(cache.event_relid, RowExclusiveLock);
	delivery_rel = table_open(cache.delivery_relid, RowExclusiveLock);
	sequence = next_sequence(event_rel, deal_id);

	/* the body: exactly what is stored, sent and signed */
	initStringInfo(&body);
	appendStringInfo(&body, "{\"type\": \"%s\", \"timestamp\": \"%s\", \"data\": {\"deal\": ",
					 event_type_names[type],
					 JsonEncodeDateTime(ts, TimestampTzGetDatum(now), TIMESTAMPTZOID, &utc));
	{
		text	   *j = DatumGetTextPP(DirectFunctionCall1(row_to_json,
														   heap_copy_tuple_as_datum(newtup, desc)));

		appendBinaryStringInfo(&body, VARDATA_ANY(j), VARSIZE_ANY_EXHDR(j));
	}
	appendStringInfoString(&body, ", \"previous\": {");
	if (changed)
	{
		bool		first = true;

		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			Datum		o;
			bool		onull;

			if (!changed[i])
				continue;
			o = heap_getattr(oldtup, i + 1, desc, &onull);
			if (!first)
				appendStringInfoString(&body, ", ");
			first = false;
			escape_json(&body, NameStr(att->attname));
			appendStringInfoString(&body, ": ");
			append_json_value(&body, o, onull, att->atttypid);
		}
	}
	appendStringInfo(&body, "}, \"sequence\": " INT64_FORMAT "}}", sequence);

	/* the event */
	event_id = time_ordered_uuid();
	edesc = RelationGetDescr(event_rel);
	values = palloc0(edesc->natts * sizeof(Datum));
	nulls = palloc(edesc->natts * sizeof(bool));
	memset(nulls, true, edesc->natts * sizeof(bool));
	set_col(edesc, values, nulls, "event_id", UUIDPGetDatum(event_id));
	set_col(edesc, values, nulls, "event_type", CStringGetTextDatum(event_type_names[type]));
	set_col(edesc, values, nulls, "deal_id", Int64GetDatum(deal_id));
	set_col(edesc, values, nulls, "sequence", Int64GetDatum(sequence));
	set_col(edesc, values, nulls, "payload",
			PointerGetDatum(cstring_to_text_with_len(body.data, body.len)));
	set_col(edesc, values, nulls, "occurred_at", TimestampTzGetDatum(now));
	/* the subject columns came with 0.2.0: the library also serves 0.1.0 */
	if (attnum_or_zero(edesc, "subject_id") > 0)
	{
		set_col(edesc, values, nulls, "subject_type", CStringGetTextDatum("deal"));
		set_col(edesc, values, nulls, "subject_id", Int64GetDatum(deal_id));
	}
	outbox_insert(event_rel, values, nulls);

	/* one delivery per subscribed endpoint */
	edesc = RelationGetDescr(delivery_rel);
	values = palloc0(edesc->natts * sizeof(Datum));
	nulls = palloc(edesc->natts * sizeof(bool));
	for (int i = 0; i < n_targets; i++)
	{
		memset(nulls, true, edesc->natts * sizeof(bool));
		set_col(edesc, values, nulls, "delivery_id",
				Int64GetDatum(nextval_internal(cache.delivery_id_seq, false)));
		set_col(edesc, values, nulls, "event_id", UUIDPGetDatum(event_id));
		set_col(edesc, values, nulls, "endpoint_id", Int64GetDatum(targets[i]));
		set_col(edesc, values, nulls, "state", CStringGetTextDatum("pending"));
		set_col(edesc, values, nulls, "attempts", Int32GetDatum(0));
		set_col(edesc, values, nulls, "retry_step", Int32GetDatum(0));
		set_col(edesc, values, nulls, "next_attempt_at", TimestampTzGetDatum(now));
		set_col(edesc, values, nulls, "created_at", TimestampTzGetDatum(now));
		outbox_insert(delivery_rel, values, nulls);
	}

	table_close(delivery_rel, NoLock);
	table_close(event_rel, NoLock);

	wake_worker_at_commit();
	return PointerGetDatum(NULL);
}

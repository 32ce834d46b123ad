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
 * lost.  Its per-session list of active endpoints is dropped whenever any
 * session changes the endpoint table (a relcache invalidation sent by a
 * statement trigger on it), so the common case, deal changes while the
 * endpoints stay as they are, costs no catalog or table access at all
 * beyond the one INSERT that writes the event and its deliveries.
 *
 * The worker that sends the deliveries is in webhook_worker.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <curl/curl.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/base64.h"
#include "common/hmac.h"
#include "common/jsonapi.h"
#include "common/sha2.h"
#include "executor/spi.h"
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
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "salesmgmt.h"
#include "webhook.h"

PG_FUNCTION_INFO_V1(sm_webhook_generate_secret);
PG_FUNCTION_INFO_V1(sm_webhook_sign);
PG_FUNCTION_INFO_V1(sm_webhook_endpoint_check);
PG_FUNCTION_INFO_V1(sm_webhook_endpoints_changed);
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
		*why = "\"this network\" address (0.0.0.0/8)";
	else if (IN4(0x7F000000, 8))
		*why = "loopback address";
	else if (IN4(0x0A000000, 8) || IN4(0xAC100000, 12) || IN4(0xC0A80000, 16))
		*why = "private address (RFC 1918)";
	else if (IN4(0x64400000, 10))
		*why = "carrier-grade NAT address (100.64.0.0/10)";
	else if (IN4(0xA9FE0000, 16))
		*why = "link-local address";
	else if (IN4(0xC0000000, 24))
		*why = "IETF protocol assignment address (192.0.0.0/24)";
	else if (IN4(0xC0000200, 24) || IN4(0xC6336400, 24) || IN4(0xCB007100, 24))
		*why = "documentation address";
	else if (IN4(0xC6120000, 15))
		*why = "benchmarking address (198.18.0.0/15)";
	else if (IN4(0xE0000000, 4))
		*why = "multicast address";
	else if (IN4(0xF0000000, 4))
		*why = "reserved or broadcast address";
	else
		return false;
	return true;
#undef IN4
}

/*
 * Whether an address is one that webhook deliveries must not connect to
 * unless salesmgmt.webhook_allow_private_networks is on; *why names the
 * kind of address.  Applied to the address libcurl is about to connect
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
			*why = b[15] ? "loopback address" : "unspecified address";
		else if (memcmp(b, zero, 10) == 0 && b[10] == 0xff && b[11] == 0xff)
			*why = "IPv4-mapped IPv6 address";
		else if (memcmp(b, zero, 12) == 0)
			*why = "IPv4-compatible IPv6 address";
		else if ((b[0] & 0xfe) == 0xfc)
			*why = "unique-local address";
		else if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
			*why = "link-local address";
		else if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
			*why = "site-local address";
		else if (b[0] == 0xff)
			*why = "multicast address";
		else if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
			*why = "documentation address";
		else if (b[0] == 0x01 && memcmp(b + 1, zero, 7) == 0)
			*why = "discard-only address";
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
	*why = "address of an unsupported family";
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

static int
event_type_index(const char *name)
{
	for (int i = 0; i < (int) N_EVENT_TYPES; i++)
		if (strcmp(name, event_type_names[i]) == 0)
			return i;
	return -1;
}

static int
attnum_of(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i + 1;
	}
	elog(ERROR, "column \"%s\" not found", name);
	return 0;					/* keep compiler quiet */
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
		elog(ERROR, "sm_webhook_endpoint_check must be a BEFORE ROW trigger");

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
			char	   *name;

			if (elnulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("webhook event types must not contain null")));
			name = TextDatumGetCString(elems[i]);
			if (event_type_index(name) < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown webhook event type \"%s\"", name),
						 errhint("Event types are deal.created, deal.updated, deal.stage_changed, deal.won, "
								 "deal.lost, deal.reopened and deal.deleted.")));
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
				 errmsg("webhook URL \"%s\" points to a %s", url, why),
				 errdetail("Deliveries to loopback, private, link-local and other non-public addresses are refused."),
				 errhint("A superuser can allow them with salesmgmt.webhook_allow_private_networks = on.")));
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * The per-session list of active endpoints
 * --------------------------------------------------------------------- */

typedef struct EndpointEntry
{
	int64		endpoint_id;
	uint32		types;			/* bit i: event_type_names[i] */
} EndpointEntry;

static EndpointEntry *endpoints = NULL;
static int	n_endpoints = 0;
static bool endpoints_valid = false;
static bool relcache_callback_registered = false;

/*
 * Any change to the endpoint table invalidates its relcache entry (the
 * statement trigger below asks for that), and with it this list.  A
 * relation id of InvalidOid means "all relations" (cache reset).  The
 * list is small and rebuilt on the next deal change, so every relation
 * whose name is not known cheaply also invalidates it.
 */
static Oid	endpoint_relid = InvalidOid;

static void
endpoints_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == endpoint_relid)
		endpoints_valid = false;
}

Datum
sm_webhook_endpoints_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "sm_webhook_endpoints_changed must be called as a trigger");
	CacheInvalidateRelcache(td->tg_relation);
	return PointerGetDatum(NULL);
}

/*
 * Read the active endpoints with the latest snapshot, not the
 * transaction's: a repeatable-read transaction must not keep a list that
 * misses endpoints committed after it started once the invalidation that
 * announced them has been consumed.
 */
static void
load_endpoints(void)
{
	Oid			nsp = get_namespace_oid(SALESMGMT_SCHEMA, false);
	Oid			relid = get_relname_relid("webhook_endpoint", nsp);
	Relation	rel;
	TupleDesc	desc;
	TableScanDesc scan;
	Snapshot	snap;
	HeapTuple	tup;
	int			a_id,
				a_types,
				a_active;
	int			cap = 8;
	EndpointEntry *list;
	int			n = 0;

	if (!relcache_callback_registered)
	{
		CacheRegisterRelcacheCallback(endpoints_relcache_callback, (Datum) 0);
		relcache_callback_registered = true;
	}
	if (!OidIsValid(relid))
		elog(ERROR, "table salesmgmt.webhook_endpoint does not exist");

	/* opening the table takes in pending invalidations; then mark valid */
	rel = table_open(relid, AccessShareLock);
	endpoint_relid = relid;
	endpoints_valid = true;

	desc = RelationGetDescr(rel);
	a_id = attnum_of(desc, "endpoint_id");
	a_types = attnum_of(desc, "event_types");
	a_active = attnum_of(desc, "active");

	list = MemoryContextAlloc(TopMemoryContext, cap * sizeof(EndpointEntry));
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snap, 0, NULL);
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
				int			k;

				if (elnulls[i])
					continue;
				k = event_type_index(TextDatumGetCString(elems[i]));
				if (k >= 0)
					types |= 1 << k;
			}
		}
		if (n == cap)
		{
			cap *= 2;
			list = repalloc(list, cap * sizeof(EndpointEntry));
		}
		list[n].endpoint_id = DatumGetInt64(heap_getattr(tup, a_id, desc, &isnull));
		list[n].types = types;
		n++;
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);

	if (endpoints)
		pfree(endpoints);
	endpoints = list;
	n_endpoints = n;
}

/* ---------------------------------------------------------------------
 * The deal trigger: the outbox
 * --------------------------------------------------------------------- */

static SPIPlanPtr enqueue_plan = NULL;
static SPIPlanPtr stage_plan = NULL;

/*
 * Every name in these statements is schema-qualified, operators included:
 * they run as the owner of the deal table whatever the search_path of
 * the session that changed the deal.
 */
static const char *const enqueue_sql =
"WITH ev AS ("
"  INSERT INTO salesmgmt.webhook_event (event_type, deal_id, sequence, payload, occurred_at)"
"  SELECT $1, $2, s.n, pg_catalog.concat($3, s.n, '}}')::pg_catalog.json, $4"
"    FROM (SELECT COALESCE(pg_catalog.max(e.sequence), 0) OPERATOR(pg_catalog.+) 1 AS n"
"            FROM salesmgmt.webhook_event e WHERE e.deal_id OPERATOR(pg_catalog.=) $2) s"
"  RETURNING event_id)"
" INSERT INTO salesmgmt.webhook_delivery (event_id, endpoint_id, created_at)"
" SELECT ev.event_id, u.id, $4 FROM ev, pg_catalog.unnest($5::pg_catalog.int8[]) AS u(id)";

static const char *const stage_sql =
"SELECT s.stage_id, s.outcome FROM salesmgmt.stage s"
" WHERE s.stage_id OPERATOR(pg_catalog.=) $1 OR s.stage_id OPERATOR(pg_catalog.=) $2";

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
static void
stage_outcomes(int64 old_stage, int64 new_stage, char *old_outcome, char *new_outcome)
{
	Datum		args[2];
	int			rc;

	if (stage_plan == NULL)
	{
		Oid			types[2] = {INT8OID, INT8OID};
		SPIPlanPtr	p = SPI_prepare(stage_sql, 2, types);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		stage_plan = p;
	}
	args[0] = Int64GetDatum(old_stage);
	args[1] = Int64GetDatum(new_stage);
	rc = SPI_execute_plan(stage_plan, args, NULL, true, 2);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	*old_outcome = *new_outcome = 'o';
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		char	   *outcome = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

		if (id == old_stage)
			*old_outcome = outcome[0];
		if (id == new_stage)
			*new_outcome = outcome[0];
	}
}

/* Columns whose change alone is a deal.updated event */
static const char *const updated_columns[] = {
	"amount", "currency", "expected_close_date", "owner_rep_id", "probability", "forecast_category"
};

/*
 * AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW on salesmgmt.deal.
 *
 * One change of a deal is one event, the most specific that applies: a
 * move into a won stage is deal.won (not also deal.stage_changed), out of
 * a won or lost stage into an open one deal.reopened, between open stages
 * deal.stage_changed; a change of amount, currency, close date, owner,
 * probability or forecast category without a stage move deal.updated.
 * Changes to other columns only (name, notes in extra, ...) send nothing.
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
	Datum	   *ids;
	int			nids = 0;
	int64		deal_id;
	bool		isnull;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	char		ts[MAXDATELEN + 1];
	int			utc = 0;
	Oid			save_userid;
	int			save_sec;
	int			rc;
	Datum		args[5];
	Datum		row;
	bool	   *changed = NULL;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "sm_webhook_enqueue must be an AFTER ROW trigger");

	if (!endpoints_valid)
		load_endpoints();
	if (n_endpoints == 0)
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
		bool		any_tracked = false;

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
			char		old_outcome,
						new_outcome;

			SPI_connect();
			GetUserIdAndSecContext(&save_userid, &save_sec);
			SetUserIdAndSecContext(rel->rd_rel->relowner,
								   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
			stage_outcomes(DatumGetInt64(heap_getattr(oldtup, a_stage, desc, &isnull)),
						   DatumGetInt64(heap_getattr(newtup, a_stage, desc, &isnull)),
						   &old_outcome, &new_outcome);
			SetUserIdAndSecContext(save_userid, save_sec);
			SPI_finish();

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
			for (int i = 0; i < (int) lengthof(updated_columns); i++)
				if (changed[attnum_of(desc, updated_columns[i]) - 1])
					any_tracked = true;
			if (!any_tracked)
				return PointerGetDatum(NULL);
			type = EV_UPDATED;
		}
	}

	/* the subscribed endpoints */
	ids = palloc(n_endpoints * sizeof(Datum));
	for (int i = 0; i < n_endpoints; i++)
		if (endpoints[i].types & (1 << type))
			ids[nids++] = Int64GetDatum(endpoints[i].endpoint_id);
	if (nids == 0)
		return PointerGetDatum(NULL);

	deal_id = DatumGetInt64(heap_getattr(newtup, attnum_of(desc, "deal_id"), desc, &isnull));

	/*
	 * The body up to the sequence number, which the INSERT computes and
	 * appends with the closing braces.
	 */
	initStringInfo(&body);
	appendStringInfo(&body, "{\"type\": \"%s\", \"timestamp\": \"%s\", \"data\": {\"deal\": ",
					 event_type_names[type],
					 JsonEncodeDateTime(ts, TimestampTzGetDatum(now), TIMESTAMPTZOID, &utc));
	row = heap_copy_tuple_as_datum(newtup, desc);
	{
		text	   *j = DatumGetTextPP(DirectFunctionCall1(row_to_json, row));

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
	appendStringInfoString(&body, "}, \"sequence\": ");

	args[0] = CStringGetTextDatum(event_type_names[type]);
	args[1] = Int64GetDatum(deal_id);
	args[2] = PointerGetDatum(cstring_to_text_with_len(body.data, body.len));
	args[3] = TimestampTzGetDatum(now);
	args[4] = PointerGetDatum(construct_array(ids, nids, INT8OID, sizeof(int64),
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

	SPI_connect();
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(rel->rd_rel->relowner,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	if (enqueue_plan == NULL)
	{
		Oid			types[5] = {TEXTOID, INT8OID, TEXTOID, TIMESTAMPTZOID, INT8ARRAYOID};
		SPIPlanPtr	p = SPI_prepare(enqueue_sql, 5, types);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		enqueue_plan = p;
	}
	rc = SPI_execute_plan(enqueue_plan, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	SetUserIdAndSecContext(save_userid, save_sec);
	SPI_finish();

	wake_worker_at_commit();
	return PointerGetDatum(NULL);
}

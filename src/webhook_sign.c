/*-------------------------------------------------------------------------
 *
 * webhook_sign.c
 *	  Standard Webhooks secrets and signatures, and the address guard that
 *	  keeps deliveries away from loopback, private and other non-public
 *	  addresses.  A leaf: used by endpoint validation (webhook_endpoint.c)
 *	  and by the worker (webhook_send.c), it uses neither.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "common/base64.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "compat.h"
#include "webhook_sign.h"

PG_FUNCTION_INFO_V1(sm_webhook_generate_secret);
PG_FUNCTION_INFO_V1(sm_webhook_sign);

bool		sm_webhook_allow_private_networks = false;

/* ---------------------------------------------------------------------
 * Secrets and signatures (Standard Webhooks)
 * --------------------------------------------------------------------- */

#define SECRET_PREFIX		"whsec_"
#define SECRET_PREFIX_LEN	6
#define SECRET_MIN_BYTES	SM_WEBHOOK_SECRET_MIN_BYTES
#define SECRET_MAX_BYTES	SM_WEBHOOK_SECRET_MAX_BYTES
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
	len = sm_b64_encode(raw, sizeof(raw),
						enc + SECRET_PREFIX_LEN, sizeof(enc) - SECRET_PREFIX_LEN);
	if (len < 0)
		elog(ERROR, "could not encode a webhook secret");
	PG_RETURN_TEXT_P(cstring_to_text_with_len(enc, SECRET_PREFIX_LEN + len));
}

/*
 * Decode a "whsec_" secret into its key bytes; returns the key length, or
 * -1 if the secret is not of that form.  key must hold SECRET_MAX_BYTES.
 */
int
sm_webhook_secret_key(const char *secret, uint8 *key)
{
	size_t		len = strlen(secret);
	int			declen;
	char		buf[128];

	if (len <= SECRET_PREFIX_LEN || strncmp(secret, SECRET_PREFIX, SECRET_PREFIX_LEN) != 0)
		return -1;
	len -= SECRET_PREFIX_LEN;
	if (pg_b64_dec_len((int) len) > (int) sizeof(buf))
		return -1;
	declen = sm_b64_decode(secret + SECRET_PREFIX_LEN, (int) len, buf, sizeof(buf));
	if (declen < SECRET_MIN_BYTES || declen > SECRET_MAX_BYTES)
		return -1;
	memcpy(key, buf, declen);
	return declen;
}

/*
 * sm_webhook_secret_key, or an error naming the form a secret has; also
 * when the caller cannot keep a secret that long (fits false).
 */
static int
secret_key_or_error(const char *secret, uint8 *key, bool fits)
{
	int			keylen = sm_webhook_secret_key(secret, key);

	if (keylen < 0 || !fits)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook secret is not of the form \"whsec_\" followed by base64"),
				 errhint("A secret is \"whsec_\" and the base64 encoding of %d to %d bytes, "
						 "as salesmgmt.webhook_generate_secret() makes.",
						 SECRET_MIN_BYTES, SECRET_MAX_BYTES)));
	return keylen;
}

/*
 * Write "v1,<base64 of HMAC-SHA256(key, msg_id.timestamp.body)>" and a
 * terminating zero into out, which holds outlen bytes (at least
 * SM_WEBHOOK_SIGNATURE_LEN): no allocation but the HMAC context's.
 *
 * The HMAC context is tracked by the current resource owner (OpenSSL
 * builds), so a caller outside a transaction must provide one.
 */
void
sm_webhook_signature_into(const char *secret, const char *msg_id, int64 timestamp,
						  const char *body, size_t bodylen, char *out, size_t outlen)
{
	uint8		key[SECRET_MAX_BYTES];
	int			keylen;
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char		ts[32];
	pg_hmac_ctx *ctx;
	int			enclen;

	keylen = secret_key_or_error(secret, key, true);
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

	if (outlen < SM_WEBHOOK_SIGNATURE_LEN)
		elog(ERROR, "webhook signature buffer too small");
	memcpy(out, "v1,", 3);
	enclen = sm_b64_encode(mac, sizeof(mac), out + 3, (int) outlen - 4);
	if (enclen < 0)
		elog(ERROR, "could not encode a webhook signature");
	out[3 + enclen] = '\0';
}

/* ---------------------------------------------------------------------
 * Signing keys kept for the worker's life
 *
 * An HMAC made from scratch for every request costs a context allocation
 * (tracked by a resource owner), a look-up of SHA-256 in OpenSSL's
 * provider tables, the secret's base64 decoding and the hashing of the
 * key's inner and outer pads.  The worker signs tens of thousands of
 * requests a second with a handful of secrets, so it keeps one OpenSSL
 * HMAC context per secret, keyed once: signing a request then re-starts
 * that context from its keyed state (EVP_MAC_init without a key) and
 * hashes the message.  Few endpoints: a small array searched by secret,
 * the oldest entry replaced when it is full.  The SQL function
 * webhook_sign() keeps the one-off path (pg_hmac), so tests that compare
 * the two compare independent implementations.
 * --------------------------------------------------------------------- */

#define SIGNER_SLOTS	32

typedef struct Signer
{
	char		secret[SECRET_PREFIX_LEN + 96]; /* "" when the slot is free */
	EVP_MAC_CTX *ctx;			/* keyed with the secret */
} Signer;

static Signer signers[SIGNER_SLOTS];
static int	signer_next = 0;	/* the slot replaced next when all are taken */
static EVP_MAC *hmac_algorithm = NULL;

static EVP_MAC_CTX *
signer_for(const char *secret)
{
	uint8		key[SECRET_MAX_BYTES];
	int			keylen;
	OSSL_PARAM	params[2];
	Signer	   *s;

	for (int i = 0; i < SIGNER_SLOTS; i++)
		if (signers[i].ctx != NULL && strcmp(signers[i].secret, secret) == 0)
			return signers[i].ctx;

	keylen = secret_key_or_error(secret, key, strlen(secret) < sizeof(signers[0].secret));
	if (hmac_algorithm == NULL &&
		(hmac_algorithm = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL)) == NULL)
		elog(ERROR, "could not fetch OpenSSL's HMAC");

	s = &signers[signer_next];
	signer_next = (signer_next + 1) % SIGNER_SLOTS;
	if (s->ctx != NULL)
		EVP_MAC_CTX_free(s->ctx);
	s->secret[0] = '\0';
	s->ctx = EVP_MAC_CTX_new(hmac_algorithm);
	if (s->ctx == NULL)
		elog(ERROR, "could not create an HMAC context");
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(s->ctx, key, keylen, params) != 1)
	{
		explicit_bzero(key, sizeof(key));
		EVP_MAC_CTX_free(s->ctx);
		s->ctx = NULL;
		elog(ERROR, "could not key an HMAC context");
	}
	explicit_bzero(key, sizeof(key));
	strlcpy(s->secret, secret, sizeof(s->secret));
	return s->ctx;
}

/*
 * Like sm_webhook_signature_into, with the secret's keyed HMAC context
 * kept for the next request: no allocation once the secret was seen.
 * Needs no resource owner.
 */
void
sm_webhook_signature_kept(const char *secret, const char *msg_id, int64 timestamp,
						  const char *body, size_t bodylen, char *out, size_t outlen)
{
	EVP_MAC_CTX *ctx = signer_for(secret);
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	size_t		maclen = 0;
	char		ts[32];
	int			tslen;
	int			enclen;

	if (outlen < SM_WEBHOOK_SIGNATURE_LEN)
		elog(ERROR, "webhook signature buffer too small");
	tslen = snprintf(ts, sizeof(ts), INT64_FORMAT, timestamp);
	if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1 ||
		EVP_MAC_update(ctx, (const uint8 *) msg_id, strlen(msg_id)) != 1 ||
		EVP_MAC_update(ctx, (const uint8 *) ".", 1) != 1 ||
		EVP_MAC_update(ctx, (const uint8 *) ts, tslen) != 1 ||
		EVP_MAC_update(ctx, (const uint8 *) ".", 1) != 1 ||
		EVP_MAC_update(ctx, (const uint8 *) body, bodylen) != 1 ||
		EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) != 1 ||
		maclen != sizeof(mac))
		elog(ERROR, "could not compute a webhook signature");
	memcpy(out, "v1,", 3);
	enclen = sm_b64_encode(mac, sizeof(mac), out + 3, (int) outlen - 4);
	if (enclen < 0)
		elog(ERROR, "could not encode a webhook signature");
	out[3 + enclen] = '\0';
}

Datum
sm_webhook_sign(PG_FUNCTION_ARGS)
{
	char	   *secret = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *msg_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int64		ts = PG_GETARG_INT64(2);
	text	   *body = PG_GETARG_TEXT_PP(3);
	char		out[SM_WEBHOOK_SIGNATURE_LEN];

	sm_webhook_signature_into(secret, msg_id, ts, VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body),
							  out, sizeof(out));
	PG_RETURN_TEXT_P(cstring_to_text(out));
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

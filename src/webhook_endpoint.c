/*-------------------------------------------------------------------------
 *
 * webhook_endpoint.c
 *	  Validation of webhook endpoints: the URL, the secret and the form of
 *	  the event types (whether they are registered is checked in SQL, by
 *	  salesmgmt._webhook_subscription_check), and the refusal of literal
 *	  non-public addresses at creation.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <curl/curl.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "salesmgmt.h"
#include "webhook_sign.h"

PG_FUNCTION_INFO_V1(sm_webhook_endpoint_check);
PG_FUNCTION_INFO_V1(sm_webhook_refuse_private_literal);

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

/* Index (from 0) of a column of the endpoint table */
static int
column_index(TupleDesc desc, const char *name)
{
	int			a = SPI_fnumber(desc, name);

	if (a <= 0)
		elog(ERROR, "column \"%s\" not found", name);
	return a - 1;
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

	a_url = column_index(desc, "url");
	a_secret = column_index(desc, "secret");
	a_types = column_index(desc, "event_types");
	a_active = column_index(desc, "active");
	a_reason = column_index(desc, "disabled_reason");
	a_disabled_at = column_index(desc, "disabled_at");

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
		uint8		key[SM_WEBHOOK_SECRET_MAX_BYTES];

		/* never echo the secret in a message */
		if (sm_webhook_secret_key(secret, key) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid webhook secret"),
					 errdetail("A secret is \"whsec_\" followed by the base64 encoding of %d to %d bytes.",
							   SM_WEBHOOK_SECRET_MIN_BYTES, SM_WEBHOOK_SECRET_MAX_BYTES),
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

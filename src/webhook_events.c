/*-------------------------------------------------------------------------
 *
 * webhook_events.c
 *	  Event types and subscriptions: the wildcard rule the deal trigger
 *	  applies to endpoints' event_types, and the helper that marks the
 *	  event types the extension's scripts register.
 *
 * salesmgmt.emit_event itself is SQL (src/webhook_events.sql): the other
 * concerns' events are rare next to deal changes, which keep their C path.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/extension.h"
#include "fmgr.h"

#include "webhook.h"

PG_FUNCTION_INFO_V1(sm_webhook_in_extension_script);

/*
 * Whether a subscription entry covers an event type: the type itself,
 * "prefix.*" for every type that starts with "prefix.", or "*".  The same
 * rule as salesmgmt._webhook_subscribes in SQL.
 */
bool
sm_webhook_type_matches(const char *pattern, const char *type)
{
	size_t		len = strlen(pattern);

	if (strcmp(pattern, "*") == 0)
		return true;
	if (len >= 2 && pattern[len - 2] == '.' && pattern[len - 1] == '*')
		return strncmp(pattern, type, len - 1) == 0;
	return strcmp(pattern, type) == 0;
}

/* salesmgmt._in_extension_script(): true inside CREATE/ALTER EXTENSION */
Datum
sm_webhook_in_extension_script(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(creating_extension);
}

/*-------------------------------------------------------------------------
 *
 * dedup.c
 *	  The setting of the duplicate check, salesmgmt.duplicate_check, and
 *	  what it says for one entity (docs/history.md).  The search for
 *	  duplicates and the merges are SQL (src/history.sql): they are set
 *	  queries over pg_trgm indexes and the catalog's foreign keys.
 *
 * The setting is one mode for every entity ("off", "warn", "refuse") or
 * a list of entity=mode pairs ("account=refuse, lead=warn"); an entity
 * the list does not name is not checked.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "salesmgmt.h"
#include "compat.h"

PG_FUNCTION_INFO_V1(sm_duplicate_mode);

static char *dd_setting = NULL;

static const char *const dd_entities[] = {"account", "contact", "lead"};
static const char *const dd_modes[] = {"off", "warn", "refuse"};

#define DD_NENTITIES lengthof(dd_entities)

/* the index of a mode named by the len bytes at s, or -1 */
static int
dd_mode(const char *s, int len)
{
	for (int m = 0; m < (int) lengthof(dd_modes); m++)
		if ((int) strlen(dd_modes[m]) == len && pg_strncasecmp(s, dd_modes[m], len) == 0)
			return m;
	return -1;
}

static int
dd_entity(const char *s, int len)
{
	for (int e = 0; e < (int) DD_NENTITIES; e++)
		if ((int) strlen(dd_entities[e]) == len && pg_strncasecmp(s, dd_entities[e], len) == 0)
			return e;
	return -1;
}

/*
 * Parse the setting into modes[entity]; false with *bad pointing at the
 * offending part when it is not valid.
 */
static bool
dd_parse(const char *value, int *modes, const char **bad)
{
	const char *p = value;

	for (int e = 0; e < (int) DD_NENTITIES; e++)
		modes[e] = 0;
	while (*p == ' ')
		p++;
	if (strchr(p, '=') == NULL)
	{
		int			len = strlen(p);
		int			m;

		while (len > 0 && p[len - 1] == ' ')
			len--;
		m = dd_mode(p, len);
		if (m < 0)
		{
			*bad = p;
			return false;
		}
		for (int e = 0; e < (int) DD_NENTITIES; e++)
			modes[e] = m;
		return true;
	}
	while (*p != '\0')
	{
		const char *eq;
		const char *end;
		const char *k;
		int			klen,
					e,
					m;

		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		k = p;
		eq = strchr(p, '=');
		if (eq == NULL)
		{
			*bad = k;
			return false;
		}
		klen = eq - k;
		while (klen > 0 && k[klen - 1] == ' ')
			klen--;
		p = eq + 1;
		while (*p == ' ')
			p++;
		end = p;
		while (*end != '\0' && *end != ',' && *end != ' ')
			end++;
		e = dd_entity(k, klen);
		m = dd_mode(p, end - p);
		if (e < 0 || m < 0)
		{
			*bad = k;
			return false;
		}
		modes[e] = m;
		p = end;
	}
	return true;
}

static bool
dd_check_setting(char **newval, void **extra, GucSource source)
{
	int			modes[DD_NENTITIES];
	const char *bad = NULL;

	if (*newval == NULL || dd_parse(*newval, modes, &bad))
		return true;
	GUC_check_errdetail("Expected off, warn or refuse, or a list such as \"account=refuse, lead=warn\" of the entities account, contact and lead; \"%s\" is neither.",
						bad);
	return false;
}

void
sm_dedup_init(void)
{
	DefineCustomStringVariable("salesmgmt.duplicate_check",
							   "What an insert or update of a likely duplicate account, contact or lead does: off, warn or refuse.",
							   "One mode for every entity, or a list such as \"account=refuse, lead=warn\" (entities not named are off).",
							   &dd_setting,
							   "off",
							   PGC_USERSET,
							   0,
							   dd_check_setting, NULL, NULL);
}

/* salesmgmt._duplicate_mode(p_entity text): off, warn or refuse */
Datum
sm_duplicate_mode(PG_FUNCTION_ARGS)
{
	char	   *entity = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			modes[DD_NENTITIES];
	const char *bad = NULL;
	int			e = dd_entity(entity, strlen(entity));

	if (e < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown entity \"%s\" for duplicate checks", entity),
				 errhint("Use account, contact or lead.")));
	if (dd_setting == NULL || !dd_parse(dd_setting, modes, &bad))
		PG_RETURN_TEXT_P(cstring_to_text("off"));
	PG_RETURN_TEXT_P(cstring_to_text(dd_modes[modes[e]]));
}

/*-------------------------------------------------------------------------
 *
 * salesmgmt.c
 *	  Module entry point: settings shared by several concerns, and the
 *	  per-concern initialisation calls.
 *
 * The library works when merely loaded on first use (CREATE EXTENSION,
 * a function call), and also from shared_preload_libraries, which is
 * needed for the webhook background worker and makes the LOCK TABLE check
 * (security_lock.c) hold from a session's start.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "salesmgmt.h"

PG_MODULE_MAGIC;

char	   *sm_reporting_currency = NULL;

void		_PG_init(void);

/*
 * A currency code must look like ISO 4217 (three upper-case letters);
 * whether it is a known code is checked against salesmgmt.currency where
 * it is used, since GUC check hooks cannot read tables safely.
 */
static bool
check_currency_code(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;

	if (v == NULL || strlen(v) != 3 ||
		!(v[0] >= 'A' && v[0] <= 'Z') ||
		!(v[1] >= 'A' && v[1] <= 'Z') ||
		!(v[2] >= 'A' && v[2] <= 'Z'))
	{
		GUC_check_errdetail("A currency is a three-letter ISO 4217 code in upper case, such as \"USD\" or \"EUR\".");
		return false;
	}
	return true;
}

void
_PG_init(void)
{
	DefineCustomStringVariable("salesmgmt.reporting_currency",
							   "Currency that forecasts, commissions and reports convert amounts to.",
							   "An ISO 4217 code; conversions use the dated rates in salesmgmt.currency_rate.",
							   &sm_reporting_currency,
							   SM_DEFAULT_CURRENCY,
							   PGC_USERSET,
							   0,
							   check_currency_code, NULL, NULL);

	/* per-concern initialisation (settings, workers) goes here */
	sm_pipeline_init();
	sm_webhook_init();
	sm_security_init();
	sm_change_log_init();
	sm_dedup_init();
	sm_org_parallel_init();

	MarkGUCPrefixReserved("salesmgmt");
}

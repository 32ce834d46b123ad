/*-------------------------------------------------------------------------
 *
 * salesmgmt.h
 *	  Shared declarations of the salesmgmt extension.
 *
 * Module map (docs/architecture.md tells the whole story).  Three layers:
 * the shared core, the concerns (one C file or a few, their SQL beside
 * them in src/<concern>.sql), and the webhook worker.
 *
 *	Core, used by every concern:
 *	  salesmgmt.c		module entry point: _PG_init, the shared settings
 *						(salesmgmt.reporting_currency), per-concern init calls
 *	  util.c/.h			exact numeric arithmetic, jsonb and array building,
 *						dates in messages, result-column checks, lookups of the
 *						extension's schema and relations
 *	  core_spi.c/.h		SPI helpers: queries, latest-snapshot queries,
 *						streaming to a DestReceiver, cursors, column readers
 *	  core_currency.c/.h exchange rates and conversion, the one implementation
 *						(also SQL's convert_amount and reporting_currency())
 *	  rules.c/.h		the rule language: jsonb conditions compiled once and
 *						evaluated on jsonb or tuples (docs/rules.md)
 *	  version.c			the version of the SQL objects in this database
 *						against this library's (declared in util.h)
 *	  compat.h			differences between PostgreSQL major versions
 *	  org.c/.h			the cached organisation: team tree, reps and what each
 *						role sees of them (security_org.sql's predicates)
 *	  org_history.c/.h	the one loader of the team tree, today's or as of a
 *						day (the effective-dated organisation, org_history.sql)
 *	  core.sql			the CRM data model (currencies and rates, teams, reps,
 *						accounts, pipelines, deals, payments, activities,
 *						quotas) and the shared SQL building blocks
 *						(reporting_currency(), reporting_rate, team_closure)
 *
 *	Concerns:
 *	  pipeline.c		stage transitions, stage gates, deal history (triggers)
 *	  pipeline_api.c	move_deal, allowed_next_stages
 *	  process.c			stage tasks and approvals, hooked into the pipeline
 *						triggers; follow-up rules and sales plans in process.sql
 *	  forecast*.c		weighted/category forecasts, Monte Carlo ranges; the
 *						model of a call in forecast.h (see there);
 *						forecast_dist.c the mergeable distribution type
 *	  commission*.c		commission plans, tiers, ledger; the run model in
 *						commission.h, one file per phase (see there)
 *	  kpi*.c			KPI scoring (kpi.c) and scorecards (kpi_scorecard.c),
 *						kpi.h between them
 *	  analytics.sql		BI views (win rates, velocity, coverage, attainment,
 *						customers, satisfaction, cohorts) and the feedback
 *						loop; plain SQL, no C
 *	  lead_*.c			leads: routing by assignment rules, status moves,
 *						rule scoring, the learned conversion model, and
 *						lead_visible.c the leads' visibility predicate
 *	  product.c			deal line items: checks, prices, the deal amount
 *	  product_analysis.c	association rules between product families
 *	  subscription.c	won recurring lines become subscriptions; MRR
 *						movements (subscription.sql: versions, renewals)
 *	  history.c			the field-level audit trail: the generic statement
 *						trigger writing change_log, its guard and purge
 *	  dedup.c			the salesmgmt.duplicate_check setting (duplicates
 *						and merges are SQL: dedup.sql)
 *	  training.c		the measured effect of a course: difference in
 *						differences with a seeded bootstrap interval
 *	  security*.sql		roles, grants, row-level security policies;
 *						security_references.c and security_lock.c close the
 *						holes of docs/security.md (references, LOCK TABLE)
 *
 *	Worker:
 *	  webhook*.c		events, outbox, signing, libcurl delivery worker
 *
 * Error codes that applications are expected to catch live in class SM
 * and are all declared here, so that docs/errors.md has one source.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_H
#define SALESMGMT_H

#include "postgres.h"

#define SALESMGMT_SCHEMA "salesmgmt"

/* SQLSTATEs of class SM (see docs/errors.md) */
#define ERRCODE_SM_INVALID_TRANSITION		MAKE_SQLSTATE('S','M','0','0','1')
#define ERRCODE_SM_STAGE_GATE_UNMET			MAKE_SQLSTATE('S','M','0','0','2')
#define ERRCODE_SM_STAGE_WRONG_PIPELINE		MAKE_SQLSTATE('S','M','0','0','3')
#define ERRCODE_SM_STAGE_ROLE_DENIED		MAKE_SQLSTATE('S','M','0','0','4')
#define ERRCODE_SM_PERIOD_FINALIZED			MAKE_SQLSTATE('S','M','0','1','0')
#define ERRCODE_SM_KPI_SCHEME_INCOMPLETE	MAKE_SQLSTATE('S','M','0','3','0')
#define ERRCODE_SM_KPI_METRIC_RESULT		MAKE_SQLSTATE('S','M','0','3','1')
#define ERRCODE_SM_WEBHOOK_DELIVERY_STATE	MAKE_SQLSTATE('S','M','0','4','0')
#define ERRCODE_SM_WEBHOOK_ENDPOINT_INACTIVE	MAKE_SQLSTATE('S','M','0','4','1')
#define ERRCODE_SM_WEBHOOK_ADDRESS_REFUSED	MAKE_SQLSTATE('S','M','0','4','2')
/* feedback workflow (raised by src/analytics.sql, PL/pgSQL) */
#define ERRCODE_SM_FEEDBACK_STATUS_BACKWARD	MAKE_SQLSTATE('S','M','0','5','0')
#define ERRCODE_SM_FEEDBACK_RESOLVED		MAKE_SQLSTATE('S','M','0','5','1')
/* sales process: stage tasks, approvals (process.c) */
#define ERRCODE_SM_STAGE_TASKS_OPEN			MAKE_SQLSTATE('S','M','0','7','0')
/* raised by process_approval.sql (PL/pgSQL), called from process.c */
#define ERRCODE_SM_APPROVAL_REQUIRED		MAKE_SQLSTATE('S','M','0','7','1')
#define ERRCODE_SM_APPROVAL_PENDING			MAKE_SQLSTATE('S','M','0','7','2')

/* leads (src/lead*.c, src/lead.sql) */
#define ERRCODE_SM_LEAD_STATUS_MOVE			MAKE_SQLSTATE('S','M','0','6','0')
#define ERRCODE_SM_LEAD_CONVERTED			MAKE_SQLSTATE('S','M','0','6','1')
#define ERRCODE_SM_LEAD_POOL_LIMIT			MAKE_SQLSTATE('S','M','0','6','2')
#define ERRCODE_SM_LEAD_POOL_FORBIDDEN		MAKE_SQLSTATE('S','M','0','6','3')
#define ERRCODE_SM_LEAD_NOT_IN_POOL			MAKE_SQLSTATE('S','M','0','6','4')
#define ERRCODE_SM_LEAD_MODEL_MISSING		MAKE_SQLSTATE('S','M','0','6','5')

/* products, price books and quotes (product.c, product.sql) */
#define ERRCODE_SM_PRODUCT_NOT_PRICED		MAKE_SQLSTATE('S','M','0','8','0')
#define ERRCODE_SM_PRODUCT_INACTIVE			MAKE_SQLSTATE('S','M','0','8','1')
#define ERRCODE_SM_DEAL_CLOSED				MAKE_SQLSTATE('S','M','0','8','2')
#define ERRCODE_SM_AMOUNT_FROM_LINES		MAKE_SQLSTATE('S','M','0','8','3')
#define ERRCODE_SM_LINE_OUT_OF_RANGE		MAKE_SQLSTATE('S','M','0','8','4')
#define ERRCODE_SM_QUOTE_STATE				MAKE_SQLSTATE('S','M','0','8','5')
#define ERRCODE_SM_QUOTE_ALREADY_ACCEPTED	MAKE_SQLSTATE('S','M','0','8','6')
#define ERRCODE_SM_NO_PRICE_BOOK			MAKE_SQLSTATE('S','M','0','8','7')

/* targeted training (training.c, training.sql) */
#define ERRCODE_SM_COURSE_WITHOUT_KPI		MAKE_SQLSTATE('S','M','1','1','0')
/* subscriptions (subscription.c, subscription.sql): SM090-SM099 */
#define ERRCODE_SM_TERM_NOT_RECURRING		MAKE_SQLSTATE('S','M','0','9','0')
#define ERRCODE_SM_SUBSCRIPTION_STATE		MAKE_SQLSTATE('S','M','0','9','1')
#define ERRCODE_SM_SUBSCRIPTION_DATE		MAKE_SQLSTATE('S','M','0','9','2')
#define ERRCODE_SM_NO_RENEWAL_PIPELINE		MAKE_SQLSTATE('S','M','0','9','3')
#define ERRCODE_SM_SUBSCRIPTION_APPEND_ONLY	MAKE_SQLSTATE('S','M','0','9','4')
#define ERRCODE_SM_RENEWAL_NO_OWNER			MAKE_SQLSTATE('S','M','0','9','5')
/* history and duplicates (history.c, dedup.c, history.sql) */
#define ERRCODE_SM_LIKELY_DUPLICATE			MAKE_SQLSTATE('S','M','1','0','0')
#define ERRCODE_SM_MERGE_FORBIDDEN			MAKE_SQLSTATE('S','M','1','0','1')
/* history (SM100-109; SM100-104 left to duplicates and the change log) */
#define ERRCODE_SM_HISTORY_WINDOW			MAKE_SQLSTATE('S','M','1','0','5')
#define ERRCODE_SM_HISTORY_NOT_PAST			MAKE_SQLSTATE('S','M','1','0','6')
/* scale-out: forecast distributions (forecast_dist.c) */
#define ERRCODE_SM_FORECAST_DIST_MISMATCH	MAKE_SQLSTATE('S','M','1','2','0')
/* scale-out: salesmgmt.distribute() (scaleout.sql, raised from PL/pgSQL) */
#define ERRCODE_SM_CITUS_MISSING			MAKE_SQLSTATE('S','M','1','2','1')
#define ERRCODE_SM_CITUS_NOT_COORDINATOR	MAKE_SQLSTATE('S','M','1','2','2')
#define ERRCODE_SM_CITUS_WORKER_DDL			MAKE_SQLSTATE('S','M','1','2','3')

/* the reporting currency when salesmgmt.reporting_currency is not set */
#define SM_DEFAULT_CURRENCY "USD"

/* Settings shared by several concerns (defined in salesmgmt.c) */
extern char *sm_reporting_currency;

/*
 * Per-concern initialisation, called from _PG_init before the "salesmgmt"
 * GUC prefix is reserved.  A concern that defines settings, shared memory
 * or a background worker declares its init function here.
 */
extern void sm_pipeline_init(void);
extern void sm_webhook_init(void);	/* webhook_worker.c */
extern void sm_security_init(void);	/* security_lock.c */
extern void sm_change_log_init(void);	/* history.c */
extern void sm_dedup_init(void);	/* dedup.c */
extern void sm_org_parallel_init(void);	/* org_parallel.c */

#endif							/* SALESMGMT_H */

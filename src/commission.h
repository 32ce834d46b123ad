/*-------------------------------------------------------------------------
 *
 * commission.h
 *	  The run model of the commission engine, shared by its files:
 *
 *	  commission.c				entry points: run_commissions, finalize_commissions,
 *								discard_commissions (and the engine's overview)
 *	  commission_tiers.c		plans, tiers, the tier arithmetic, commission_amount()
 *	  commission_checks.c		triggers on plans, tiers, assignments, draws, SPIFFs,
 *								the ledger
 *	  commission_load.c			loading a run's inputs and reading credited events
 *	  commission_ledger.c		the ledger writer and the lines of credit
 *	  commission_corrections.c	corrections of finalized periods, refunds, draws
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_COMMISSION_H
#define SALESMGMT_COMMISSION_H

#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/sortsupport.h"
#include "utils/timestamp.h"

#include "salesmgmt.h"
#include "compat.h"
#include "core_bulk.h"
#include "core_currency.h"
#include "core_spi.h"
#include "org_history.h"
#include "util.h"

/* rows fetched per cursor round trip; lines per table_multi_insert batch
 * (more than COPY's 1,000: the index entries of a batch are inserted in
 * key order, and a larger batch puts more of them on the same pages) */
#define CM_FETCH		10000
#define CM_FLUSH_AT		4000

/* true while the engine itself changes draft lines and periods (commission.c) */
extern bool cm_engine_active;



typedef enum CmPeriodKind
{
	CM_MONTH,
	CM_QUARTER,
	CM_YEAR
} CmPeriodKind;


typedef struct CmTier
{
	Numeric		from;			/* attainment, inclusive */
	Numeric		to;				/* exclusive; NULL for the open-ended top */
	Numeric		rate;
	bool		retro;
} CmTier;

typedef struct CmPlan
{
	int64		plan_id;
	bool		payment_basis;
	CmPeriodKind period;
	Numeric		cap;			/* NULL: no cap */
	int32		clawback_days;	/* 0: no clawbacks */
	Numeric		override_rate;	/* NULL: no override */
	bool		new_arr;		/* credits the deal's new ARR, not its amount */
	int			nfamilies;		/* family_weights: families named, */
	char	  **families;		/* their names */
	Numeric    *weights;		/* and weights */
	int			ntiers;
	CmTier	   *tiers;
	int			nrates;			/* family_rates: families with their own */
	char	  **rate_families;	/* rate or tier table, their names */
	struct CmPlan *rate_tables;	/* and tables (only ntiers, tiers set) */
} CmPlan;


/*
 * The tier arithmetic of one plan period: boundaries in credit and the
 * offsets of the linear pieces (see the file header).
 */
typedef struct CmTiering
{
	CmPlan	   *plan;
	Numeric		quota;			/* NULL: no (or zero) quota */
	int			nt;				/* tiers in use: 0 (plan has none), 1 without
								 * quota, else plan->ntiers */
	Numeric    *bound;			/* B_k */
	Numeric    *offset;			/* a_k */
} CmTiering;


/* ----------------------------------------------------------------------
 * run_commissions: the in-memory model
 * ----------------------------------------------------------------------
 */

typedef enum CmKind
{
	CK_EARNED,
	CK_SPIFF,
	CK_OVERRIDE,
	CK_CLAWBACK,
	CK_DRAW,
	CK_ADJUSTMENT,
	CK_NKINDS
} CmKind;

typedef enum CmReason
{
	CR_NONE,
	CR_LATE,					/* adjustment: credited event first seen after
								 * its period was finalized */
	CR_CHANGED,					/* adjustment: its credit changed (split,
								 * amount, rate) */
	CR_MOVED,					/* adjustment: the deal is now won in another
								 * period */
	CR_REMOVED,					/* adjustment: the payment no longer exists */
	CR_LOST,					/* clawbacks */
	CR_REOPENED,
	CR_DELETED,
	CR_REFUND,
	CR_ADVANCE,					/* draws */
	CR_GUARANTEE,
	CR_RECOVERY,
	CR_CHURNED,					/* clawback: a subscription of a new-ARR deal
								 * churned */
	CR_NREASONS
} CmReason;

/* per-rep sums, in the order of the result columns after quota/attainment */
typedef enum CmSum
{
	CS_CREDIT,
	CS_EARNED,
	CS_SPIFFS,
	CS_OVERRIDES,
	CS_ADJUSTMENTS,
	CS_CLAWBACKS,
	CS_DRAWS,
	CS_RECOVERY,
	CS_NSUMS
} CmSum;

/* the columns of a line that run_commissions sets */
typedef enum CmCol
{
	LC_REP, LC_KIND, LC_DEAL, LC_PAYMENT, LC_PLAN, LC_SPIFF, LC_DRAW, LC_SOURCE,
	LC_CREDITED_AT, LC_PP_START, LC_PP_END, LC_SHARE, LC_CREDIT, LC_QUOTA,
	LC_ATT_BEFORE, LC_ATT_AFTER, LC_TIER, LC_RATE, LC_TIERS, LC_EARNED_BEFORE,
	LC_EARNED_AFTER, LC_CAPPED, LC_BASE, LC_RECOVERABLE, LC_REVERSED_AT, LC_AMOUNT, LC_REASON,
	LC_SUBSCRIPTION, LC_FAMILIES,
	LC_NCOLS
} CmCol;


/*
 * How a key of a SPIFF condition in the 0.1.0 form (a deal column equal to
 * a value: coalesce(to_jsonb(d.column), 'null') @> value, or d.extra @>
 * value) is matched in C on the column as the events query returns it.
 */
typedef enum CmTestKind
{
	CM_TEST_JSONB,				/* a jsonb column: containment */
	CM_TEST_INT,				/* int2, int4, int8: a JSON number */
	CM_TEST_NUMERIC,			/* numeric: a number (NaN, Infinity: a string) */
	CM_TEST_BOOL,
	CM_TEST_TEXT				/* text, varchar: a JSON string */
} CmTestKind;

typedef struct CmSpiffTest
{
	int			col;			/* the column's position in the events row */
	CmTestKind	kind;
	Oid			typid;
	bool		null_is_json;	/* a null column is JSON null (all columns but
								 * extra, which is not coalesced) */
	Jsonb	   *value;			/* what the condition gives */
	bool		scalar;			/* value is a scalar, */
	JsonbValue	sv;				/* this one */
	bool		int_ok;			/* an integral number within int64, */
	int64		i64;			/* this one */
} CmSpiffTest;

typedef struct CmSpiff
{
	int64		spiff_id;
	CmPlan	   *plan;
	Numeric		amount;			/* flat per deal, or NULL */
	Numeric		rate;			/* rate on credit, or NULL */
	DateADT		from;
	DateADT		to;
	int			ntests;			/* keys matched in C (the rest, if any, in */
	CmSpiffTest *tests;			/* the events query's SPIFF match column) */
} CmSpiff;

typedef struct CmAssign
{
	DateADT		from;
	DateADT		to;
	CmPlan	   *plan;
} CmAssign;

typedef struct CmQuota
{
	DateADT		start;
	DateADT		end;
	Numeric		amount;			/* in the reporting currency */
	bool		new_arr;		/* a quota of new ARR (quota.measure) */
} CmQuota;

typedef struct CmDraw
{
	int64		draw_id;
	Numeric		amount;
	bool		recoverable;
} CmDraw;

/* a credited event: a won deal, a payment or refund, or a correction */
typedef struct CmEvent
{
	int64		deal_id;
	int64		payment_id;		/* 0 for a won deal */
	bool		payment;		/* payment-basis event */
	TimestampTz at;
	DateADT		day;
	Numeric		amount;			/* deal or payment amount, own currency */
	char		currency[4];
	Numeric		share;
	int			sign;			/* -1 for refunds */
	Numeric		fraction;		/* payments: share of the deal amount */
	bool	   *spiff_match;	/* per run SPIFF, or NULL */
	Datum	   *row;			/* the events row (SPIFF tests read the deal */
	bool	   *rownull;		/* columns at its end), while it is current */
	Numeric		arr;			/* won deals: new ARR in currency, or NULL */
	Jsonb	   *lines;			/* deals with lines, when a plan weighs
								 * families: line amount by family, or NULL */
	Jsonb	   *split;			/* the split of the credit by family (the
								 * line's families column), or NULL */
	int			nfam;			/* plans with family_rates: the families of */
	char	  **fam;			/* the deal's lines, their line amounts, */
	Numeric    *fam_amount;		/* weights, weighted amounts, */
	Numeric    *fam_weight;
	Numeric    *fam_weighted;
	int		   *fam_table;		/* index in plan->rate_tables or -1 */
	Numeric		fam_total;		/* sum of fam_weighted (> 0 when nfam > 0) */
} CmEvent;

/*
 * The components of what a rep is paid on a deal: own credit through the
 * tiers, a SPIFF, an override on a rep below.  The values are those the
 * ledger queries compute (CASE ... THEN 1 ... 2 ELSE 0) from a line's
 * spiff_id and source_rep_id.
 */
typedef enum CmComponent
{
	CM_COMP_OWN = 0,
	CM_COMP_SPIFF = 1,
	CM_COMP_OVERRIDE = 2
} CmComponent;

/* the two kinds of correction of a finalized period */
typedef enum CmCorrKind
{
	CM_CORR_CREDIT,				/* a change of the rep's own credit, through the
								 * tiers of the original plan period (fields
								 * share, delta) */
	CM_CORR_LINE				/* a ready line: clawback or SPIFF adjustment
								 * (fields kind ... reversed_at) */
} CmCorrKind;

/* an adjustment or clawback a rep gets for a finalized period */
typedef struct CmCorr
{
	CmCorrKind	what;			/* credit corrections sort first */
	TimestampTz at;
	DateADT		day;
	int64		deal_id;
	int64		payment_id;
	bool		payment;
	CmPlan	   *plan;
	CmReason	reason;
	Numeric		share;
	Numeric		delta;			/* credit: change of credit */
	CmKind		kind;			/* line: */
	int64		spiff_id;
	int64		source_rep_id;
	Numeric		credit;
	Numeric		base;
	Numeric		rate;
	Numeric		amount;
	TimestampTz reversed_at;	/* clawbacks */
	Jsonb	   *lines;			/* credit on a plan with family_rates: the
								 * deal's line amounts by family, or NULL */
} CmCorr;

/* tier state of one rep, plan and plan period */
typedef struct CmState
{
	struct CmState *next;
	CmPlan	   *plan;
	DateADT		pstart;
	DateADT		pend;
	CmTiering	t;
	Numeric		quota;			/* as shown on lines; NULL without quota rows */
	Numeric		credit;			/* credit of the period so far */
	Numeric		earned;			/* E(credit), exact */
	Numeric		paid;			/* round(least(earned, cap), 2) */
	Numeric		att;			/* credit / quota for display, or NULL */
	CmTiering  *ft;				/* per plan->rate_tables, or NULL */
} CmState;

/* from a day on (until the next epoch), the managers above a rep */
typedef struct CmEpoch
{
	DateADT		from;
	int			nmanagers;
	struct CmRep **managers;
} CmEpoch;

typedef struct CmRep
{
	int64		rep_id;			/* hash key */
	int64		team_id;
	int			nassign,
				maxassign;
	CmAssign   *assign;
	int			nquota,
				maxquota;
	CmQuota    *quota;
	int			nmanagers;
	struct CmRep **managers;	/* nearest first, each once, never self */
	int			nepochs;		/* the managers by day (org_history.c), */
	struct CmEpoch *epochs;		/* by from; managers is the latest's */
	int			ndraws,
				maxdraws;
	CmDraw	   *draws;
	Numeric		draw_balance;	/* recoverable draws outstanding before */
	int			ncorr,
				maxcorr,
				corr_next;
	CmCorr	   *corr;
	CmState    *states;			/* in rep_cxt while the rep is processed */
	bool		done;
	bool		listed;
	Numeric		sums[CS_NSUMS];
} CmRep;

typedef struct CmPriorKey
{
	int64		rep_id;
	int64		plan_id;
	DateADT		pstart;
} CmPriorKey;

typedef struct CmPrior
{
	CmPriorKey	key;
	Numeric		credit;
	Numeric		earned;			/* exact earnings of those lines */
} CmPrior;

/* what a rep has been paid on a deal, by component (own credit, one SPIFF,
 * override on one rep below) */
typedef struct CmComp
{
	int64		rep_id;
	CmComponent comp;
	int64		aux;			/* SPIFF: spiff_id; override: source_rep_id */
	CmPlan	   *plan;
	Numeric		credit_net;
	Numeric		credit_gross;	/* before clawbacks */
	Numeric		amount_net;
	Numeric		amount_gross;
	TimestampTz at;
	int			nclawed;
	int64	   *clawed;			/* refunds already clawed back */
	int			nclawed_subs;
	int64	   *clawed_subs;	/* churned subscriptions already clawed back */
} CmComp;

typedef struct CmRefund
{
	int64		payment_id;		/* 0 for a churn */
	int64		subscription_id;	/* the subscription that churned, or 0 */
	TimestampTz at;
	Numeric		fraction;		/* refund / deal amount (churn: the
								 * subscription's part of the deal's new
								 * ARR), or NULL */
} CmRefund;

/* a deal refunded during the period (booking-basis clawbacks) */
typedef struct CmWatch
{
	int64		deal_id;		/* hash key */
	int			nrefunds,
				maxrefunds;
	CmRefund   *refunds;
	int			ncomps,
				maxcomps;
	CmComp	   *comps;
} CmWatch;

typedef struct CmWriter
{
	SmBulkWriter bulk;			/* the ledger, written in batches */
	AttrNumber	attno[LC_NCOLS];	/* 0-based positions in the table */
	int32		typmod[LC_NCOLS];
	AttrNumber	period_start;
	AttrNumber	period_end;
	AttrNumber	currency;
	Datum		currency_datum;
} CmWriter;

typedef struct CmRun
{
	MemoryContext run_cxt;		/* the whole run */
	MemoryContext rep_cxt;		/* the rep being processed */
	MemoryContext line_cxt;		/* lines not yet written */
	MemoryContext tmp_cxt;		/* scratch */
	DateADT		start;
	DateADT		end;
	TimestampTz start_ts;		/* start 00:00 */
	TimestampTz end_ts;			/* the day after end, 00:00 */
	char		currency[4];
	int			nplans;
	CmPlan	   *plans;
	int		   *plan_nspiffs;
	int		  **plan_spiffs;	/* per plan: indexes into spiffs */
	int			nspiffs;
	CmSpiff    *spiffs;
	Datum		spiff_params;	/* jsonb[] of the values the conditions name */
	char	   *spiff_select;	/* the SQL of the SPIFF match column */
	bool		spiff_sql;		/* a SPIFF has a part matched in SQL */
	int			spiff_ncols;	/* deal columns the SPIFF tests read, */
	char	  **spiff_cols;		/* after the CM_EVENT_COLS of an events row */
	Jsonb	   *json_null;		/* 'null'::jsonb */
	bool		any_booking;
	bool		any_payment;
	bool		any_new_arr;	/* a plan credits new ARR */
	bool		any_family;		/* a plan weighs product families */
	bool		aligned;		/* the period is made of whole plan periods */
	SmRates		rates;			/* to and from the reporting currency */
	HTAB	   *reps;
	int			nfinal;
	DateADT    *final_start;
	DateADT    *final_end;
	HTAB	   *prior;
	HTAB	   *watch;
	bool		recording;		/* note lines of watched deals */
	CmWriter	writer;
	Datum		kind_text[CK_NKINDS];
	Datum		reason_text[CR_NREASONS];
	uint64		nlines;
} CmRun;

/* grow a (count, max, array) triple held in cxt by one */
#define CM_APPEND(cxt, arr, n, max) \
	do { \
		if ((n) >= (max)) \
		{ \
			(max) = (max) == 0 ? 4 : (max) * 2; \
			(arr) = (arr) == NULL ? MemoryContextAllocZero((cxt), sizeof(*(arr)) * (max)) \
				: repalloc((arr), sizeof(*(arr)) * (max)); \
		} \
		(n)++; \
	} while (0)


#define CM_SET(v, n, col, datum) ((v)[col] = (datum), (n)[col] = false)


#define CM_EVENT_COLS 13
/* at most so many deal columns matched in C after them (more: in SQL) */
#define CM_SPIFF_MAXCOLS 16


/* a reader of a cursor, one deformed row at a time */
typedef struct CmReader
{
	Portal		portal;
	SPITupleTable *tt;
	uint64		n;
	uint64		i;
	Datum		v[CM_EVENT_COLS + CM_SPIFF_MAXCOLS];
	bool		isnull[CM_EVENT_COLS + CM_SPIFF_MAXCOLS];
} CmReader;



/* commission_tiers.c: numeric and SPI helpers, plans and tiers */
extern void cm_set(MemoryContext cxt, Numeric *slot, Numeric n);
extern char *cm_date_str(DateADT d);
extern TimestampTz cm_date_ts(DateADT d);
extern void cm_plan_period(CmPeriodKind kind, DateADT d, DateADT *start, DateADT *end);
extern void cm_validate_tiers(int64 plan_id, int n, Numeric *from, Numeric *to);
extern int cm_load_plans(MemoryContext cxt, int64 only_plan, bool read_only, CmPlan **plans);
extern void cm_tiering_init(CmTiering *t, CmPlan *plan, Numeric quota);
extern int cm_tier_of(CmTiering *t, Numeric x);
extern Numeric cm_earnings(CmTiering *t, int k, Numeric x);
extern Numeric cm_paid(CmPlan *plan, Numeric e);
extern Jsonb *cm_tiers_json(CmTiering *t, Numeric x, Numeric y, int kx, int ky);
extern void cm_plan_rate_tables(CmPlan *p, Jsonb *rates, const char *tier_mode);
extern void cm_validate_family_rates(Jsonb *rates);

/* commission_checks.c: triggers and checks */
extern char *cm_range_str(DateADT from, DateADT to);
extern void cm_validate_spiff_condition(Jsonb *cond);
extern const char *cm_spiff_product_column(const char *key);
extern Jsonb *cm_spiff_without_products(Jsonb *cond);

/* commission_load.c: loading */
extern CmPlan *cm_plan_by_id(CmRun *run, int64 plan_id);
extern int cm_plan_index(CmRun *run, CmPlan *plan);
extern CmRep *cm_rep(CmRun *run, int64 rep_id);
extern CmPlan *cm_plan_at(CmRep *rep, DateADT day);
extern DateADT cm_ts_date(TimestampTz ts);
extern HTAB *cm_hash(const char *name, Size keysize, Size entrysize, long nelem, MemoryContext cxt);
extern void cm_load_rates(CmRun *run);
extern void cm_load_spiffs(CmRun *run);
extern bool cm_spiff_tests_pass(CmRun *run, CmSpiff *sp, CmEvent *ev);
extern void cm_load_reps(CmRun *run);
extern int	cm_managers_at(CmRep *rep, DateADT day, CmRep ***managers);
extern void cm_load_assignments(CmRun *run);
extern void cm_load_quotas(CmRun *run);
extern Numeric cm_quota_for(CmRep *rep, DateADT from, DateADT to, bool new_arr);
extern void cm_load_draws(CmRun *run);
extern void cm_load_prior(CmRun *run);
extern Portal cm_events_open(CmRun *run, bool finalized);
extern void cm_event_from_row(CmRun *run, Datum *v, bool *isnull, CmEvent *ev);
extern bool cm_reader_next(CmReader *r);

/* commission_ledger.c: the ledger writer and lines of credit */
extern void cm_init_writer(CmRun *run);
extern void cm_flush(CmRun *run);
extern void cm_close_writer(CmRun *run);
extern void cm_emit(CmRun *run, CmRep *rep, CmPlan *plan, CmKind kind, Datum *v, bool *n, Numeric amount);
extern void cm_line_init(Datum *v, bool *n);
extern void cm_line_event(Datum *v, bool *n, CmEvent *ev);
extern CmState *cm_state(CmRun *run, CmRep *rep, CmPlan *plan, DateADT day);
extern void cm_credit_line(CmRun *run, CmRep *rep, CmState *st, CmEvent *ev, Numeric delta,
			   CmKind kind, CmReason reason);
extern Numeric cm_event_credit(CmRun *run, CmEvent *ev);
extern void cm_event_measure(CmPlan *plan, CmEvent *ev);
extern void cm_event_families(CmPlan *plan, CmEvent *ev);
extern Numeric cm_spiff_amount(CmSpiff *sp, CmEvent *ev, Numeric credit, Numeric *base, Numeric *rate);
extern bool cm_spiff_applies(CmRun *run, int idx, CmEvent *ev);
extern void cm_overrides(CmRun *run, CmRep *rep, CmEvent *ev, Numeric *credit, CmKind kind, CmReason reason);
extern void cm_credit_event(CmRun *run, CmRep *rep, CmEvent *ev);

/* commission_corrections.c: corrections, refunds, draws */
extern void cm_corrections(CmRun *run);
extern void cm_apply_corrections(CmRun *run, CmRep *rep, bool limited, TimestampTz until);
extern void cm_finish_rep(CmRun *run, CmRep *rep);
extern void cm_load_watch(CmRun *run);
extern void cm_refunds(CmRun *run);
extern Numeric cm_sum(CmRep *rep, CmSum s);
extern void cm_draws(CmRun *run);

#endif							/* SALESMGMT_COMMISSION_H */

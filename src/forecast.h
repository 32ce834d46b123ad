/*-------------------------------------------------------------------------
 *
 * forecast.h
 *	  The model of one forecast call, shared by the forecast files:
 *
 *	  forecast.c			groups and sums, setting up a call, salesmgmt.forecast
 *						(and the overview of the fast path and the currencies)
 *	  forecast_load.c	reading the catalog (rates, pipelines, stages, teams,
 *						reps, splits), the deals, quotas and adjustments
 *	  forecast_range.c	salesmgmt.forecast_range, the Monte Carlo range
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_FORECAST_H
#define SALESMGMT_FORECAST_H

#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/int128.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "salesmgmt.h"
#include "core_currency.h"
#include "core_spi.h"
#include "org_history.h"
#include "util.h"


/* shares and probabilities are numeric(5,4): whole units of 1/10000 */
#define FC_UNIT			10000

/* most simulations forecast_range accepts (8 bytes of memory each) */
#define FC_MAX_SIMULATIONS	10000000

/* most month or quarter rows one forecast may return */
#define FC_MAX_BUCKETS		100000

/* the forecast categories an amount can fall in */
typedef enum FcFigure
{
	FC_WON = 0,					/* closed won */
	FC_COMMIT,
	FC_BEST_CASE,
	FC_PIPELINE,
	FC_OMITTED,
	FC_NFIGURES
} FcFigure;

/* adjustable categories, in the order of FcFigure from FC_COMMIT */
#define FC_NADJUST	3

typedef enum FcGroupKind
{
	FC_GROUP_REP,
	FC_GROUP_TEAM,
	FC_GROUP_PIPELINE,
	FC_GROUP_MONTH,
	FC_GROUP_QUARTER,
	FC_GROUP_TOTAL,
	FC_GROUP_FAMILY				/* product family, by the deals' line shares */
} FcGroupKind;

/* the group of the deals without lines in the product_family grouping */
#define FC_NO_FAMILY_NAME	"(none)"


/* int64 id -> array index */
typedef struct FcIdEntry
{
	int64		key;
	int32		index;
	char		status;
} FcIdEntry;

#define SH_PREFIX		fc_idmap
#define SH_ELEMENT_TYPE	FcIdEntry
#define SH_KEY_TYPE		int64
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	murmurhash32((uint32) ((uint64) (k) ^ ((uint64) (k) >> 32)))
#define SH_EQUAL(tb, a, b)	((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * Exact sums of one group in one rate slot: amount x share per category
 * (units of 1e-6) and amount x share x probability of the open deals
 * (units of 1e-10).
 */
typedef struct FcAcc
{
	INT128		amount[FC_NFIGURES];
	INT128		weighted;
} FcAcc;

/* sums of a group in a foreign-currency slot, keyed (group << 32 | slot) */
typedef struct FcAccEntry
{
	uint64		key;
	char		status;
	FcAcc		acc;
} FcAccEntry;

#define SH_PREFIX		fc_accmap
#define SH_ELEMENT_TYPE	FcAccEntry
#define SH_KEY_TYPE		uint64
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	murmurhash32((uint32) ((k) ^ ((k) >> 32)))
#define SH_EQUAL(tb, a, b)	((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* product family name -> group index (product_family grouping) */
typedef struct FcFamilyEntry
{
	const char *key;
	int32		index;
	char		status;
} FcFamilyEntry;

#define SH_PREFIX		fc_familymap
#define SH_ELEMENT_TYPE	FcFamilyEntry
#define SH_KEY_TYPE		const char *
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	hash_bytes((const unsigned char *) (k), strlen(k))
#define SH_EQUAL(tb, a, b)	(strcmp((a), (b)) == 0)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct FcStage
{
	int64		id;
	int			pipeline;		/* index into pipelines, -1 if unknown */
	char		outcome;		/* 'o'pen, 'w'on, 'l'ost */
	int32		probability;	/* configured, 1/10000 */
	int32		learned;		/* from win_rates, -1 when none */
	int8		category;		/* FcFigure */
} FcStage;

typedef struct FcPipeline
{
	int64		id;
	char	   *name;
	bool		historical;
} FcPipeline;

typedef struct FcTeam
{
	int64		id;
	int64		parent_id;
	bool		has_parent;
	char	   *name;
	int			parent;			/* index, -1 for a root */
	int		   *chain;			/* itself and every team above it */
	int			nchain;
} FcTeam;

typedef struct FcRep
{
	int64		id;
	char	   *name;
	int			team;			/* index, -1 without a (visible) team */
	bool		in_scope;		/* forecast_range: below the chosen team */
} FcRep;

/* a result row in the making */
typedef struct FcGroup
{
	int64		id;
	bool		id_null;
	char	   *name;
	DateADT		start;
	DateADT		end;
	bool		present;		/* has a deal, a quota or an adjustment */
	int64		deal_count;
	int64		last_deal;		/* sequence number of the last deal counted */
	FcAcc		acc;			/* sums in the reporting currency */
	Numeric		quota;			/* NULL when no quota applies */
	Numeric		adjust[FC_NADJUST];	/* NULL when none */
} FcGroup;

/* a quota or an adjustment row, converted */
typedef struct FcTarget
{
	int			rep;			/* index or -1 */
	int			team;			/* index or -1 */
	int			bucket;			/* month/quarter containing its period, or -1 */
	int			category;		/* adjustments: FcFigure */
	int			family;			/* quotas: FC_TARGET_ALL_PRODUCTS, the family's
								 * group (product_family grouping), else
								 * FC_TARGET_SOME_FAMILY */
	Numeric		amount;
} FcTarget;

#define FC_TARGET_ALL_PRODUCTS	(-1)
#define FC_TARGET_SOME_FAMILY	(-2)

/* the state of one deal, from salesmgmt.deal or rebuilt from history */
typedef struct FcDeal
{
	int64		deal_id;
	int64		owner;
	int64		pipeline_id;
	int64		stage_id;
	int64		cents;
	char		currency[4];
	bool		has_expected;
	DateADT		expected;
	bool		has_closed;
	TimestampTz closed_at;
	bool		has_override;	/* per-deal probability override */
	int32		override;
	int8		category;		/* override (current) or effective (as of), -1 */
	bool		has_effective;	/* as of: the recorded effective probability */
	int32		effective;
} FcDeal;

/* everything one call works with */
typedef struct FcCall
{
	MemoryContext cxt;			/* SPI's procedure context, for the call */
	DateADT		from;
	DateADT		to;
	TimestampTz from_ts;		/* from, midnight in the session's zone */
	TimestampTz to_ts;			/* the day after to, midnight */
	bool		has_as_of;
	TimestampTz as_of;
	FcGroupKind kind;
	char		target[4];		/* reporting currency */

	/*
	 * Exchange rates.  Amounts are summed per conversion slot and converted
	 * once: slot 0 is the reporting currency itself, slot i + 1 converts
	 * with rates.rates[i].  factor[slot] is the rate as a double (1/rate
	 * for a reverse pair), for simulations only.
	 */
	SmRates		rates;
	double	   *factor;

	/* catalog of the sales organisation */
	FcStage    *stages;
	int			nstages;
	fc_idmap_hash *stage_map;
	FcPipeline *pipelines;
	int			npipelines;
	fc_idmap_hash *pipeline_map;
	FcTeam	   *teams;
	int			nteams;
	fc_idmap_hash *team_map;
	SmOrg	   *org;			/* the organisation of the day (org_history.c) */
	int		   *team_order;		/* deepest teams first */
	FcRep	   *reps;
	int			nreps;
	int			reps_alloc;
	fc_idmap_hash *rep_map;

	/* credit splits: deal -> its first row; rows chained by split_next */
	bool		need_splits;
	fc_idmap_hash *split_map;
	int		   *split_next;
	int		   *split_rep;
	int32	   *split_share;
	int			nsplits;
	int			splits_alloc;

	/*
	 * product_family grouping: each deal's lines summed per family (deal ->
	 * its first (deal, family) row; rows chained by line_next), the family
	 * groups by name, and the group of the deals without lines
	 */
	fc_idmap_hash *line_map;
	int		   *line_next;
	int		   *line_group;
	int64	   *line_cents;
	int			nlines;
	int			lines_alloc;
	fc_familymap_hash *family_map;
	int			none_group;

	/* result rows */
	FcGroup    *groups;
	int			ngroups;
	int			groups_alloc;
	bool		groups_made;
	fc_accmap_hash *foreign;
	int64		deal_seq;
	int			month0;			/* month/quarter number of the first bucket */

	/* forecast_range: the open deals of the scope */
	bool		simulate;
	int			scope_team;		/* -1: everyone */
	int64	   *open_id;
	int64	   *open_cents;		/* credited amount, reporting currency */
	int32	   *open_p;
	int			nopen;
	int			open_alloc;
} FcCall;

/*
 * Queries whose rows are many go to a DestReceiver that handles each row
 * as the executor produces it, instead of SPI_tuptable.
 */
typedef struct FcReceiver
{
	DestReceiver pub;
	FcCall	   *call;
	/* as of: the deal being rebuilt from its history rows */
	bool		pending;
	FcDeal		deal;
} FcReceiver;


/* forecast.c */
extern int fc_bucket_number(FcGroupKind kind, DateADT d);
extern Numeric fc_int128_numeric(INT128 v, Numeric unit);
extern int8 fc_parse_category(Datum d, int64 deal_id);
extern void *fc_grow(FcCall *c, void *ptr, Size size);
extern int fc_add_group(FcCall *c, int64 id, bool id_null, char *name);
extern void fc_make_groups(FcCall *c);
extern void fc_add_deal(FcCall *c, const FcDeal *d);
extern void fc_init_call(FcCall *c, FunctionCallInfo fcinfo, DateADT from, DateADT to);
extern void fc_load_catalog(FcCall *c);
extern void fc_set_currency(FcCall *c, FunctionCallInfo fcinfo, int argno);
extern void fc_group_figures(FcCall *c, int g, Numeric *fig, Numeric *weighted, Numeric unit6, Numeric unit10);
extern void fc_add_foreign(FcCall *c, Numeric (*figs)[FC_NFIGURES + 1], Numeric unit6, Numeric unit10);

/* forecast_load.c */
extern void fc_load_rates(FcCall *c);
extern int fc_rate_slot(FcCall *c, const char *code, DateADT d, int64 deal_id);
extern Numeric fc_convert(FcCall *c, Numeric amount, int slot);
extern int fc_lookup(fc_idmap_hash *map, int64 id);
extern void fc_map_insert(fc_idmap_hash *map, int64 id, int index);
extern void fc_load_pipelines(FcCall *c);
extern void fc_load_stages(FcCall *c);
extern void fc_load_teams(FcCall *c);
extern void fc_load_reps(FcCall *c);
extern int fc_rep(FcCall *c, int64 id);
extern void fc_load_splits(FcCall *c);
extern int fc_family_group(FcCall *c, const char *family);
extern void fc_scan_deals(FcCall *c);
extern void fc_apply_quotas(FcCall *c);
extern void fc_apply_adjustments(FcCall *c);

#endif							/* SALESMGMT_FORECAST_H */

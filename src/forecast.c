/*-------------------------------------------------------------------------
 *
 * forecast.c
 *	  Weighted and category forecasts with team rollups, forecasts as they
 *	  stood at a past moment, and Monte Carlo ranges.
 *
 * The fast path.  The deals of the period are streamed from one SPI query
 * into a DestReceiver, so no tuple is materialised, and are added up in
 * exact integer arithmetic: amounts are numeric(18,2), i.e. whole cents;
 * credit shares and probabilities are numeric(5,4), i.e. whole units of
 * 1/10000.  amount x share is therefore an exact integer in units of 1e-6,
 * and amount x share x probability one in units of 1e-10; both are summed
 * in 128 bits, which no realistic data set can overflow (2^127 is about
 * 1.7e38; a row adds at most 1e18 x 1e8).
 *
 * Currencies.  Each deal converts with the rate valid on its period date
 * (closed_at when closed, else the expected close date), with the rules of
 * salesmgmt.convert_amount: the latest rate of the pair valid on or before
 * that day, else the inverse of the reverse pair, else an error naming the
 * currency and the date.  The rates are read once per call.  Every deal is
 * summed into the "slot" of the rate row it converts with (slot 0 is the
 * reporting currency itself), and each slot's exact sum is converted once
 * at the end: since multiplication distributes over addition, that equals
 * converting every deal in numeric and adding the results.
 *
 * Everything is computed in the SPI procedure context, which SPI_finish
 * frees; the per-group numeric work uses a context reset after each
 * output row.
 *
 *-------------------------------------------------------------------------
 */
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
#include "util.h"

PG_FUNCTION_INFO_V1(sm_forecast);
PG_FUNCTION_INFO_V1(sm_forecast_range);

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
	FC_GROUP_TOTAL
} FcGroupKind;

static const char *const fc_group_names[] = {
	"rep", "team", "pipeline", "month", "quarter", "total"
};

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
	Numeric		amount;
} FcTarget;

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

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------
 */

static DateADT
fc_timestamptz_date(TimestampTz t)
{
	return DatumGetDateADT(DirectFunctionCall1(timestamptz_date,
											   TimestampTzGetDatum(t)));
}

/* floor division, for month numbers of years before 1 AD */
static int
fc_floor_div(int a, int b)
{
	return (a >= 0) ? a / b : -((-a + b - 1) / b);
}

/* months since year 0 */
static int
fc_month_number(DateADT d)
{
	int			y,
				m,
				day;

	j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &day);
	return y * 12 + (m - 1);
}

static DateADT
fc_month_start(int month_number)
{
	int			y = fc_floor_div(month_number, 12);

	return date2j(y, month_number - y * 12 + 1, 1) - POSTGRES_EPOCH_JDATE;
}

/* the bucket number of a day: months or quarters since year 0 */
static int
fc_bucket_number(FcGroupKind kind, DateADT d)
{
	int			m = fc_month_number(d);

	return kind == FC_GROUP_MONTH ? m : fc_floor_div(m, 3);
}

/* the exact value of an INT128 counted in units of "unit" */
static Numeric
fc_int128_numeric(INT128 v, Numeric unit)
{
	int64		hi;
	uint64		lo;
	Numeric		n;

#if USE_NATIVE_INT128
	hi = (int64) (v >> 64);
	lo = (uint64) v;
#else
	hi = v.hi;
	lo = v.lo;
#endif
	if ((hi == 0 && lo <= (uint64) PG_INT64_MAX) ||
		(hi == -1 && lo > (uint64) PG_INT64_MAX))
		n = int64_to_numeric((int64) lo);
	else
	{
		/* hi * 2^64 + lo, with lo in two halves so each fits an int64 */
		Numeric		two32 = int64_to_numeric(INT64CONST(4294967296));

		n = sm_numeric_mul(sm_numeric_mul(int64_to_numeric(hi), two32), two32);
		n = sm_numeric_add(n, sm_numeric_mul(int64_to_numeric((int64) (lo >> 32)), two32));
		n = sm_numeric_add(n, int64_to_numeric((int64) (lo & 0xFFFFFFFF)));
	}
	return sm_numeric_mul(n, unit);
}

static bool
fc_int128_is_zero(INT128 v)
{
	return int128_compare(v, int64_to_int128(0)) == 0;
}

/* text datum of a forecast category to FcFigure ("closed" is FC_WON) */
static int8
fc_parse_category(Datum d, int64 deal_id)
{
	text	   *t = DatumGetTextPP(d);
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

#define FC_IS(lit) (len == sizeof(lit) - 1 && memcmp(s, lit, len) == 0)
	if (FC_IS("pipeline"))
		return FC_PIPELINE;
	if (FC_IS("best_case"))
		return FC_BEST_CASE;
	if (FC_IS("commit"))
		return FC_COMMIT;
	if (FC_IS("omitted"))
		return FC_OMITTED;
	if (FC_IS("closed"))
		return FC_WON;
#undef FC_IS
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("deal " INT64_FORMAT " has an unknown forecast category \"%.*s\"",
					deal_id, len, s),
			 errhint("Forecast categories are pipeline, best_case, commit, closed and omitted.")));
	return FC_PIPELINE;			/* keep compiler quiet */
}

/*
 * Grow an array of the call.  The deal scan runs inside SPI's executor,
 * whose current memory context is reset after the query, so anything the
 * receiver keeps is allocated in the call's context explicitly.
 */
static void *
fc_grow(FcCall *c, void *ptr, Size size)
{
	return ptr ? repalloc_huge(ptr, size) : MemoryContextAllocHuge(c->cxt, size);
}

/* ------------------------------------------------------------------------
 * SPI
 * ------------------------------------------------------------------------
 */

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

static void
fc_receiver_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
fc_receiver_shutdown(DestReceiver *self)
{
}

static void
fc_receiver_destroy(DestReceiver *self)
{
}

static void
fc_stream(FcCall *c, FcReceiver *r, bool (*receive) (TupleTableSlot *, DestReceiver *),
		  const char *sql, int nargs, Oid *types, Datum *values)
{
	memset(r, 0, sizeof(FcReceiver));
	r->pub.receiveSlot = receive;
	r->pub.rStartup = fc_receiver_startup;
	r->pub.rShutdown = fc_receiver_shutdown;
	r->pub.rDestroy = fc_receiver_destroy;
	r->pub.mydest = DestNone;
	r->call = c;
	sm_spi_query_dest(sql, nargs, types, values, &r->pub);
}

/* ------------------------------------------------------------------------
 * Exchange rates
 * ------------------------------------------------------------------------
 */

/*
 * Every conversion of a call happens on a day in [from, to] (period dates
 * of deals, first days of quota and adjustment periods), so the rates
 * needed are those that start in that range plus, per pair, the last one
 * before it.
 */
static void
fc_load_rates(FcCall *c)
{
	int			i;

	sm_rates_load(&c->rates, c->target, c->from, c->to, true);
	c->factor = palloc(sizeof(double) * (c->rates.nrates + 1));
	c->factor[0] = 1.0;
	for (i = 0; i < c->rates.nrates; i++)
	{
		double		rate = sm_numeric_to_double(c->rates.rates[i].rate);

		c->factor[i + 1] = c->rates.rates[i].divide ? 1.0 / rate : rate;
	}
}

/*
 * The slot that converts an amount in "code" on day d into the reporting
 * currency.  deal_id, when not 0, names the deal in the error.
 */
static int
fc_rate_slot(FcCall *c, const char *code, DateADT d, int64 deal_id)
{
	const SmRate *r;

	if (memcmp(code, c->target, 3) == 0)
		return 0;
	r = sm_rates_lookup(&c->rates, code, d);
	if (r == NULL)
		sm_currency_no_rate(code, c->target, d, deal_id, true);
	return 1 + (int) (r - c->rates.rates);
}

static Numeric
fc_convert(FcCall *c, Numeric amount, int slot)
{
	if (slot == 0)
		return amount;
	return sm_rate_apply(&c->rates.rates[slot - 1], amount);
}

/* ------------------------------------------------------------------------
 * The sales organisation: pipelines, stages, teams, reps, splits
 * ------------------------------------------------------------------------
 */

static int
fc_lookup(fc_idmap_hash *map, int64 id)
{
	FcIdEntry  *e = fc_idmap_lookup(map, id);

	return e ? e->index : -1;
}

static void
fc_map_insert(fc_idmap_hash *map, int64 id, int index)
{
	bool		found;
	FcIdEntry  *e = fc_idmap_insert(map, id, &found);

	e->index = index;
}

static void
fc_load_pipelines(FcCall *c)
{
	uint64		i;

	sm_spi_query_dest("SELECT p.pipeline_id, p.name, p.probability_source = 'historical'"
					  "  FROM salesmgmt.pipeline p ORDER BY p.pipeline_id",
					  0, NULL, NULL, NULL);
	c->npipelines = (int) SPI_processed;
	c->pipelines = palloc0(sizeof(FcPipeline) * Max(c->npipelines, 1));
	c->pipeline_map = fc_idmap_create(CurrentMemoryContext, Max(c->npipelines, 8), NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		c->pipelines[i].id = sm_spi_int64(tup, desc, 1, 0);
		c->pipelines[i].name = SPI_getvalue(tup, desc, 2);
		c->pipelines[i].historical = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		fc_map_insert(c->pipeline_map, c->pipelines[i].id, (int) i);
	}
}

/*
 * Stages and their probabilities and categories; for pipelines that
 * forecast with learned probabilities, the win rate of each stage from
 * salesmgmt.win_rates (as of the forecast's moment).
 */
static void
fc_load_stages(FcCall *c)
{
	uint64		i;
	int			p;

	sm_spi_query_dest("SELECT s.stage_id, s.pipeline_id, s.outcome, s.probability, s.forecast_category"
					  "  FROM salesmgmt.stage s",
					  0, NULL, NULL, NULL);
	c->nstages = (int) SPI_processed;
	c->stages = palloc0(sizeof(FcStage) * Max(c->nstages, 1));
	c->stage_map = fc_idmap_create(CurrentMemoryContext, Max(c->nstages, 8), NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		FcStage    *s = &c->stages[i];
		bool		isnull;
		char	   *outcome = SPI_getvalue(tup, desc, 3);

		s->id = sm_spi_int64(tup, desc, 1, 0);
		s->pipeline = fc_lookup(c->pipeline_map, sm_spi_int64(tup, desc, 2, 0));
		s->outcome = outcome[0];
		s->probability = (int32) sm_numeric_scaled_int64(SPI_getbinval(tup, desc, 4, &isnull), 4);
		s->learned = -1;
		s->category = (s->outcome == 'o') ?
			fc_parse_category(SPI_getbinval(tup, desc, 5, &isnull), 0) : FC_WON;
		fc_map_insert(c->stage_map, s->id, (int) i);
	}

	/*
	 * Pipelines that forecast with learned probabilities: the win rates of
	 * the history known at the forecast's moment.  A stage no closed deal
	 * ever entered keeps its configured probability.
	 */
	for (p = 0; p < c->npipelines; p++)
	{
		Oid			types[2] = {INT8OID, TIMESTAMPTZOID};
		Datum		values[2];

		if (!c->pipelines[p].historical)
			continue;
		values[0] = Int64GetDatum(c->pipelines[p].id);
		values[1] = TimestampTzGetDatum(c->has_as_of ? c->as_of : GetCurrentTransactionStartTimestamp());
		sm_spi_query_dest("SELECT w.stage_id, w.probability"
						  "  FROM salesmgmt.win_rates($1, NULL, $2) w"
						  " WHERE w.probability IS NOT NULL AND w.outcome = 'open'",
						  2, types, values, NULL);
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int			s = fc_lookup(c->stage_map, sm_spi_int64(tup, desc, 1, 0));

			if (s >= 0)
				c->stages[s].learned = (int32) sm_numeric_scaled_int64(SPI_getbinval(tup, desc, 2, &isnull), 4);
		}
	}
}

/*
 * The team tree: teams by id, each with its parent (a cycle is an error),
 * and the teams deepest first, the order in which figures roll up.
 */
static void
fc_load_teams(FcCall *c)
{
	uint64		i;
	int			t;

	sm_spi_query_dest("SELECT t.team_id, t.parent_team_id, t.name FROM salesmgmt.team t"
					  " ORDER BY t.team_id",
					  0, NULL, NULL, NULL);
	c->nteams = (int) SPI_processed;
	c->teams = palloc0(sizeof(FcTeam) * Max(c->nteams, 1));
	c->team_map = fc_idmap_create(CurrentMemoryContext, Max(c->nteams, 8), NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		FcTeam	   *team = &c->teams[i];
		bool		isnull;
		Datum		parent;

		team->id = sm_spi_int64(tup, desc, 1, 0);
		parent = SPI_getbinval(tup, desc, 2, &isnull);
		team->has_parent = !isnull;
		team->parent_id = isnull ? 0 : DatumGetInt64(parent);
		team->name = SPI_getvalue(tup, desc, 3);
		fc_map_insert(c->team_map, team->id, (int) i);
	}

	/*
	 * Each team's chain: itself, its parent, ... up to a root.  A parent
	 * the caller cannot see ends the chain.  The team_no_cycle trigger keeps
	 * the tree acyclic, but two concurrent moves could still close a loop;
	 * that must not hang the forecast.
	 */
	for (t = 0; t < c->nteams; t++)
		c->teams[t].parent = c->teams[t].has_parent ?
			fc_lookup(c->team_map, c->teams[t].parent_id) : -1;
	for (t = 0; t < c->nteams; t++)
	{
		FcTeam	   *team = &c->teams[t];
		int			n = 0;
		int			cur;

		team->chain = palloc(sizeof(int) * (c->nteams + 1));
		for (cur = t; cur >= 0; cur = c->teams[cur].parent)
		{
			if (n >= c->nteams)
				ereport(ERROR,
						(errcode(ERRCODE_CHECK_VIOLATION),
						 errmsg("the team tree has a cycle through team " INT64_FORMAT,
								team->id),
						 errhint("Give one of the teams on the cycle another parent_team_id.")));
			team->chain[n++] = cur;
		}
		team->nchain = n;
	}

	/* deepest first: a counting sort by depth */
	c->team_order = palloc(sizeof(int) * Max(c->nteams, 1));
	{
		int			pos = 0;
		int			depth = 0;

		for (t = 0; t < c->nteams; t++)
			depth = Max(depth, c->teams[t].nchain);
		for (; depth >= 1; depth--)
			for (t = 0; t < c->nteams; t++)
				if (c->teams[t].nchain == depth)
					c->team_order[pos++] = t;
	}
}

static int	fc_add_group(FcCall *c, int64 id, bool id_null, char *name);

static int
fc_add_rep(FcCall *c, int64 id, char *name, int team)
{
	if (c->nreps >= c->reps_alloc)
	{
		c->reps_alloc = Max(16, c->reps_alloc * 2);
		c->reps = fc_grow(c, c->reps, sizeof(FcRep) * c->reps_alloc);
	}
	c->reps[c->nreps].id = id;
	c->reps[c->nreps].name = name;
	c->reps[c->nreps].team = team;
	c->reps[c->nreps].in_scope = false;
	fc_map_insert(c->rep_map, id, c->nreps);

	/* in the rep grouping, group i is rep i */
	if (c->kind == FC_GROUP_REP && c->groups_made)
		fc_add_group(c, id, false, name);
	return c->nreps++;
}

static void
fc_load_reps(FcCall *c)
{
	uint64		i;

	sm_spi_query_dest("SELECT r.rep_id, r.team_id, r.name FROM salesmgmt.rep r ORDER BY r.rep_id",
					  0, NULL, NULL, NULL);
	c->rep_map = fc_idmap_create(CurrentMemoryContext, Max(SPI_processed, 8), NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		team = SPI_getbinval(tup, desc, 2, &isnull);

		fc_add_rep(c, sm_spi_int64(tup, desc, 1, 0), SPI_getvalue(tup, desc, 3),
				   isnull ? -1 : fc_lookup(c->team_map, DatumGetInt64(team)));
	}
}

/* the index of a rep, adding one the caller cannot see (its name unknown) */
static int
fc_rep(FcCall *c, int64 id)
{
	int			r = fc_lookup(c->rep_map, id);

	return r >= 0 ? r : fc_add_rep(c, id, NULL, -1);
}

/* one deal_split row: pushed on its deal's list */
static bool
fc_receive_split(TupleTableSlot *slot, DestReceiver *self)
{
	FcCall	   *c = ((FcReceiver *) self)->call;
	FcIdEntry  *head;
	bool		found;
	int			k;

	slot_getallattrs(slot);
	if (c->nsplits >= c->splits_alloc)
	{
		c->splits_alloc = Max(1024, c->splits_alloc * 2);
		c->split_next = fc_grow(c, c->split_next, sizeof(int) * c->splits_alloc);
		c->split_rep = fc_grow(c, c->split_rep, sizeof(int) * c->splits_alloc);
		c->split_share = fc_grow(c, c->split_share, sizeof(int32) * c->splits_alloc);
	}
	k = c->nsplits++;
	c->split_rep[k] = fc_rep(c, DatumGetInt64(slot->tts_values[1]));
	c->split_share[k] = (int32) sm_numeric_scaled_int64(slot->tts_values[2], 4);
	head = fc_idmap_insert(c->split_map, DatumGetInt64(slot->tts_values[0]), &found);
	c->split_next[k] = found ? head->index : -1;
	head->index = k;
	return true;
}

static void
fc_load_splits(FcCall *c)
{
	FcReceiver	r;

	c->split_map = fc_idmap_create(c->cxt, 1024, NULL);
	fc_stream(c, &r, fc_receive_split,
			  "SELECT s.deal_id, s.rep_id, s.share FROM salesmgmt.deal_split s",
			  0, NULL, NULL);
}

/* ------------------------------------------------------------------------
 * Groups and sums
 * ------------------------------------------------------------------------
 */

static int
fc_add_group(FcCall *c, int64 id, bool id_null, char *name)
{
	FcGroup    *g;

	if (c->ngroups >= c->groups_alloc)
	{
		c->groups_alloc = Max(16, c->groups_alloc * 2);
		c->groups = fc_grow(c, c->groups, sizeof(FcGroup) * c->groups_alloc);
	}
	g = &c->groups[c->ngroups];
	memset(g, 0, sizeof(FcGroup));
	g->id = id;
	g->id_null = id_null;
	g->name = name;
	g->start = c->from;
	g->end = c->to;
	g->last_deal = -1;
	return c->ngroups++;
}

/*
 * The groups a call starts with: every rep, every team plus "no team",
 * every pipeline, every month or quarter of the period, or the total.
 * Reps met later (invisible to the caller) get a group when first seen;
 * group i of the rep grouping is rep i, of the team grouping team i.
 */
static void
fc_make_groups(FcCall *c)
{
	int			i;

	switch (c->kind)
	{
		case FC_GROUP_REP:
			for (i = 0; i < c->nreps; i++)
				fc_add_group(c, c->reps[i].id, false, c->reps[i].name);
			break;
		case FC_GROUP_TEAM:
			for (i = 0; i < c->nteams; i++)
				fc_add_group(c, c->teams[i].id, false, c->teams[i].name);
			fc_add_group(c, 0, true, "(no team)");
			break;
		case FC_GROUP_PIPELINE:
			for (i = 0; i < c->npipelines; i++)
				fc_add_group(c, c->pipelines[i].id, false, c->pipelines[i].name);
			break;
		case FC_GROUP_MONTH:
		case FC_GROUP_QUARTER:
			{
				int			first = fc_bucket_number(c->kind, c->from);
				int			last = fc_bucket_number(c->kind, c->to);
				int			b;

				if (last - first + 1 > FC_MAX_BUCKETS)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("a forecast by %s returns at most %d rows",
									fc_group_names[c->kind], FC_MAX_BUCKETS),
							 errdetail("The period from %s to %s has %d.",
									   sm_date_iso_str(c->from), sm_date_iso_str(c->to),
									   last - first + 1),
							 errhint("Forecast a shorter period.")));
				c->month0 = first;
				for (b = first; b <= last; b++)
				{
					int			months = (c->kind == FC_GROUP_MONTH) ? 1 : 3;
					int			m = b * months;
					DateADT		start = fc_month_start(m);
					DateADT		end = fc_month_start(m + months) - 1;
					int			y = fc_floor_div(m, 12);
					int			g;

					if (c->kind == FC_GROUP_MONTH)
						g = fc_add_group(c, (int64) y * 100 + (m - y * 12 + 1), false,
										 psprintf("%04d-%02d", y, m - y * 12 + 1));
					else
						g = fc_add_group(c, (int64) y * 10 + (m - y * 12) / 3 + 1, false,
										 psprintf("%04d-Q%d", y, (m - y * 12) / 3 + 1));
					c->groups[g].start = Max(start, c->from);
					c->groups[g].end = Min(end, c->to);
					c->groups[g].present = true;
				}
			}
			break;
		case FC_GROUP_TOTAL:
			i = fc_add_group(c, 0, true, "Total");
			c->groups[i].present = true;
			break;
	}
	c->groups_made = true;
}

/* the sums of group g in rate slot "slot" */
static inline FcAcc *
fc_acc(FcCall *c, int g, int slot)
{
	FcAccEntry *e;
	bool		found;

	if (slot == 0)
		return &c->groups[g].acc;
	e = fc_accmap_insert(c->foreign, ((uint64) g << 32) | (uint64) slot, &found);
	if (!found)
		memset(&e->acc, 0, sizeof(FcAcc));
	return &e->acc;
}

/* credit "share" of a deal to group g */
static inline void
fc_credit(FcCall *c, int g, int slot, int figure, int64 cents, int32 share,
		  int32 probability)
{
	FcGroup    *grp = &c->groups[g];
	FcAcc	   *acc = fc_acc(c, g, slot);

	int128_add_int64_mul_int64(&acc->amount[figure], cents, share);
	if (figure != FC_WON)
		int128_add_int64_mul_int64(&acc->weighted, cents,
								   (int64) share * probability);
	if (grp->last_deal != c->deal_seq)
	{
		grp->last_deal = c->deal_seq;
		grp->deal_count++;
	}
	grp->present = true;
}

/* the group of rep r in the team grouping: its team, or "no team" */
static inline int
fc_rep_team_group(FcCall *c, int r)
{
	return c->reps[r].team >= 0 ? c->reps[r].team : c->nteams;
}

/* credit share of a deal to rep r: the rep, or its team and all above */
static inline void
fc_credit_rep(FcCall *c, int r, int slot, int figure, int64 cents,
			  int32 share, int32 probability)
{
	if (c->kind == FC_GROUP_REP)
		fc_credit(c, r, slot, figure, cents, share, probability);
	else
	{
		int			team = c->reps[r].team;
		int			k;

		if (team < 0)
			fc_credit(c, c->nteams, slot, figure, cents, share, probability);
		else
			for (k = 0; k < c->teams[team].nchain; k++)
				fc_credit(c, c->teams[team].chain[k], slot, figure, cents,
						  share, probability);
	}
}

static void
fc_add_open_deal(FcCall *c, int64 deal_id, int64 cents, int32 p)
{
	if (c->nopen >= c->open_alloc)
	{
		c->open_alloc = Max(1024, c->open_alloc * 2);
		c->open_id = fc_grow(c, c->open_id, sizeof(int64) * c->open_alloc);
		c->open_cents = fc_grow(c, c->open_cents, sizeof(int64) * c->open_alloc);
		c->open_p = fc_grow(c, c->open_p, sizeof(int32) * c->open_alloc);
	}
	c->open_id[c->nopen] = deal_id;
	c->open_cents[c->nopen] = cents;
	c->open_p[c->nopen] = p;
	c->nopen++;
}

/*
 * One deal: decide whether and where it counts, and add it up.
 */
static void
fc_add_deal(FcCall *c, const FcDeal *d)
{
	int			s = fc_lookup(c->stage_map, d->stage_id);
	FcStage    *stage = s >= 0 ? &c->stages[s] : NULL;
	char		outcome;
	DateADT		day;
	int			figure;
	int32		p = 0;
	int			slot;
	int			g;

	/*
	 * Open, won or lost: by the stage.  A stage deleted since (only
	 * possible as of a past moment) goes by the recorded category.
	 */
	if (stage != NULL)
		outcome = stage->outcome;
	else
		outcome = (d->category == FC_WON) ? 'w' : 'o';
	if (outcome == 'l')
		return;					/* lost deals are no part of a forecast */

	/* the period: closed_at when closed, else the expected close date */
	if (outcome == 'w' && d->has_closed)
		day = fc_timestamptz_date(d->closed_at);
	else if (d->has_expected)
		day = d->expected;
	else
		return;					/* an open deal without a close date */
	if (day < c->from || day > c->to)
		return;

	if (outcome == 'w')
		figure = FC_WON;
	else
	{
		bool		historical = (stage != NULL && stage->pipeline >= 0 &&
								  c->pipelines[stage->pipeline].historical &&
								  stage->learned >= 0);

		if (d->category >= 0)
			figure = d->category;
		else
			figure = stage ? stage->category : FC_PIPELINE;
		/* only an override can mark an open deal "closed": as sure as commit */
		if (figure == FC_WON)
			figure = FC_COMMIT;
		if (d->has_override)
			p = d->override;
		else if (historical)
			p = stage->learned;
		else if (d->has_effective)
			p = d->effective;
		else
			p = stage ? stage->probability : 0;
	}

	slot = fc_rate_slot(c, d->currency, day, d->deal_id);
	c->deal_seq++;

	if (c->simulate)
	{
		/* forecast_range: the part of the deal credited inside the scope */
		int32		share = 0;

		if (c->scope_team < 0)
			share = FC_UNIT;
		else
		{
			int			first = c->need_splits ? fc_lookup(c->split_map, d->deal_id) : -1;

			if (first < 0)
				share = c->reps[fc_rep(c, d->owner)].in_scope ? FC_UNIT : 0;
			else
			{
				int			k;

				for (k = first; k >= 0; k = c->split_next[k])
					if (c->reps[c->split_rep[k]].in_scope)
						share += c->split_share[k];
			}
		}
		if (share == 0)
			return;
		if (figure == FC_WON)
			fc_credit(c, 0, slot, figure, d->cents, share, 0);
		else
		{
			/* a statistic, not money: the credited amount in whole cents */
			double		v = (double) d->cents * share / FC_UNIT * c->factor[slot];

			fc_credit(c, 0, slot, figure, d->cents, share, p);
			fc_add_open_deal(c, d->deal_id, (int64) llround(v), p);
		}
		return;
	}

	switch (c->kind)
	{
		case FC_GROUP_REP:
		case FC_GROUP_TEAM:
			{
				int			first = fc_lookup(c->split_map, d->deal_id);

				if (first < 0)
					fc_credit_rep(c, fc_rep(c, d->owner), slot, figure, d->cents,
								  FC_UNIT, p);
				else
				{
					int			k;

					for (k = first; k >= 0; k = c->split_next[k])
						fc_credit_rep(c, c->split_rep[k], slot, figure, d->cents,
									  c->split_share[k], p);
				}
			}
			return;
		case FC_GROUP_PIPELINE:
			g = fc_lookup(c->pipeline_map, d->pipeline_id);
			if (g < 0)
			{
				/* a pipeline the caller cannot see */
				g = fc_add_group(c, d->pipeline_id, false, NULL);
				fc_map_insert(c->pipeline_map, d->pipeline_id, g);
			}
			break;
		case FC_GROUP_MONTH:
		case FC_GROUP_QUARTER:
			g = fc_bucket_number(c->kind, day) - c->month0;
			break;
		case FC_GROUP_TOTAL:
		default:
			g = 0;
			break;
	}
	fc_credit(c, g, slot, figure, d->cents, FC_UNIT, p);
}

/* ------------------------------------------------------------------------
 * Reading the deals: current state, or rebuilt from the history
 * ------------------------------------------------------------------------
 */

static void
fc_copy_currency(char *dst, Datum d)
{
	BpChar	   *b = DatumGetBpCharPP(d);

	memset(dst, ' ', 3);
	memcpy(dst, VARDATA_ANY(b), Min(3, VARSIZE_ANY_EXHDR(b)));
	dst[3] = '\0';
}

/*
 * Current state, one row per deal:
 *	 deal_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
 *	 expected_close_date, closed_at, probability, forecast_category
 */
static bool
fc_receive_deal(TupleTableSlot *slot, DestReceiver *self)
{
	FcReceiver *r = (FcReceiver *) self;
	Datum	   *v;
	bool	   *n;
	FcDeal		d;

	slot_getallattrs(slot);
	v = slot->tts_values;
	n = slot->tts_isnull;
	d.deal_id = DatumGetInt64(v[0]);
	d.owner = DatumGetInt64(v[1]);
	d.pipeline_id = DatumGetInt64(v[2]);
	d.stage_id = DatumGetInt64(v[3]);
	d.cents = sm_numeric_scaled_int64(v[4], 2);
	fc_copy_currency(d.currency, v[5]);
	d.has_expected = !n[6];
	d.expected = n[6] ? 0 : DatumGetDateADT(v[6]);
	d.has_closed = !n[7];
	d.closed_at = n[7] ? 0 : DatumGetTimestampTz(v[7]);
	d.has_override = !n[8];
	d.override = n[8] ? 0 : (int32) sm_numeric_scaled_int64(v[8], 4);
	d.category = n[9] ? -1 : fc_parse_category(v[9], d.deal_id);
	d.has_effective = false;
	d.effective = 0;
	fc_add_deal(r->call, &d);
	return true;
}

/*
 * As of a moment, the history rows of each deal in order:
 *	 deal_id, owner_rep_id, pipeline_id, to_stage_id, new_amount, currency,
 *	 new_expected_close_date, changed_at, probability, forecast_category,
 *	 effective_probability, effective_category, from_stage_id
 * A deal's state is its last row; it closed when it last changed stage.
 */
static bool
fc_receive_history(TupleTableSlot *slot, DestReceiver *self)
{
	FcReceiver *r = (FcReceiver *) self;
	FcDeal	   *d = &r->deal;
	Datum	   *v;
	bool	   *n;
	int64		deal_id;
	bool		stage_change;

	slot_getallattrs(slot);
	v = slot->tts_values;
	n = slot->tts_isnull;
	deal_id = DatumGetInt64(v[0]);
	if (r->pending && deal_id != d->deal_id)
		fc_add_deal(r->call, d);
	stage_change = n[12] || DatumGetInt64(v[12]) != DatumGetInt64(v[3]);
	if (!r->pending || deal_id != d->deal_id)
	{
		memset(d, 0, sizeof(FcDeal));
		stage_change = true;
	}
	r->pending = true;
	d->deal_id = deal_id;
	d->owner = DatumGetInt64(v[1]);
	d->pipeline_id = DatumGetInt64(v[2]);
	d->stage_id = DatumGetInt64(v[3]);
	d->cents = sm_numeric_scaled_int64(v[4], 2);
	fc_copy_currency(d->currency, v[5]);
	d->has_expected = !n[6];
	d->expected = n[6] ? 0 : DatumGetDateADT(v[6]);
	if (stage_change)
	{
		d->has_closed = true;
		d->closed_at = DatumGetTimestampTz(v[7]);
	}
	d->has_override = !n[8];
	d->override = n[8] ? 0 : (int32) sm_numeric_scaled_int64(v[8], 4);
	d->has_effective = !n[10];
	d->effective = n[10] ? 0 : (int32) sm_numeric_scaled_int64(v[10], 4);
	d->category = n[11] ? -1 : fc_parse_category(v[11], deal_id);
	return true;
}

/*
 * Stream the deals of the period into the accumulators: today's deals, or
 * with p_as_of each deal rebuilt from its history rows as it stood then.
 */
static void
fc_scan_deals(FcCall *c)
{
	FcReceiver	r;
	Oid			types[5] = {DATEOID, DATEOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[5];

	values[0] = DateADTGetDatum(c->from);
	values[1] = DateADTGetDatum(c->to);
	values[2] = TimestampTzGetDatum(c->from_ts);
	values[3] = TimestampTzGetDatum(c->to_ts);
	values[4] = TimestampTzGetDatum(c->as_of);

	/*
	 * Both queries select a superset of the deals of the period through
	 * the indexes on the close dates; fc_add_deal applies the exact rule.
	 */
	if (!c->has_as_of)
		fc_stream(c, &r, fc_receive_deal,
				  "SELECT d.deal_id, d.owner_rep_id, d.pipeline_id, d.stage_id,"
				  "       d.amount, d.currency, d.expected_close_date,"
				  "       d.closed_at, d.probability, d.forecast_category"
				  "  FROM salesmgmt.deal d"
				  " WHERE d.expected_close_date BETWEEN $1 AND $2"
				  "    OR (d.closed_at >= $3 AND d.closed_at < $4)",
				  4, types, values);
	else
	{
		fc_stream(c, &r, fc_receive_history,
				  "SELECT h.deal_id, h.owner_rep_id, h.pipeline_id, h.to_stage_id,"
				  "       h.new_amount, h.currency, h.new_expected_close_date,"
				  "       h.changed_at, h.probability, h.forecast_category,"
				  "       h.effective_probability, h.effective_category,"
				  "       h.from_stage_id"
				  "  FROM salesmgmt.deal_stage_history h"
				  " WHERE h.changed_at <= $5"
				  "   AND h.deal_id IN (SELECT x.deal_id FROM salesmgmt.deal_stage_history x"
				  "                      WHERE x.changed_at <= $5"
				  "                        AND (x.new_expected_close_date BETWEEN $1 AND $2"
				  "                             OR (x.changed_at >= $3 AND x.changed_at < $4)))"
				  " ORDER BY h.deal_id, h.history_id",
				  5, types, values);
		if (r.pending)
			fc_add_deal(c, &r.deal);
	}
}

/* ------------------------------------------------------------------------
 * Quotas and adjustments
 * ------------------------------------------------------------------------
 */

/* the month/quarter bucket that holds all of [start, end], or -1 */
static int
fc_target_bucket(FcCall *c, DateADT start, DateADT end)
{
	int			b;

	if (c->kind != FC_GROUP_MONTH && c->kind != FC_GROUP_QUARTER)
		return -1;
	b = fc_bucket_number(c->kind, start);
	return b == fc_bucket_number(c->kind, end) ? b - c->month0 : -1;
}

/*
 * Quota or adjustment rows whose period lies within [from, to], converted
 * with the rate of their first day.
 */
static FcTarget *
fc_load_targets(FcCall *c, bool adjustments, int *ntargets)
{
	Oid			types[3] = {DATEOID, DATEOID, TIMESTAMPTZOID};
	Datum		values[3];
	FcTarget   *targets;
	uint64		i;

	values[0] = DateADTGetDatum(c->from);
	values[1] = DateADTGetDatum(c->to);
	values[2] = TimestampTzGetDatum(c->as_of);
	if (!adjustments)
		sm_spi_query_dest("SELECT q.rep_id, q.team_id, q.period_start, q.period_end, q.amount,"
						  "       q.currency, NULL::text"
						  "  FROM salesmgmt.quota q"
						  " WHERE q.period_start >= $1 AND q.period_end <= $2",
						  2, types, values, NULL);
	else
		sm_spi_query_dest("SELECT a.rep_id, a.team_id, a.period_start, a.period_end, a.amount,"
						  "       a.currency, a.category"
						  "  FROM salesmgmt.forecast_adjustment a"
						  " WHERE a.period_start >= $1 AND a.period_end <= $2"
						  "   AND a.created_at <= $3",
						  3, types, values, NULL);

	targets = palloc(sizeof(FcTarget) * Max(SPI_processed, 1));
	*ntargets = (int) SPI_processed;
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		FcTarget   *t = &targets[i];
		bool		isnull;
		Datum		d;
		DateADT		start,
					end;
		char		currency[4];

		d = SPI_getbinval(tup, desc, 1, &isnull);
		t->rep = isnull ? -1 : fc_rep(c, DatumGetInt64(d));
		d = SPI_getbinval(tup, desc, 2, &isnull);
		t->team = isnull ? -1 : fc_lookup(c->team_map, DatumGetInt64(d));
		start = DatumGetDateADT(SPI_getbinval(tup, desc, 3, &isnull));
		end = DatumGetDateADT(SPI_getbinval(tup, desc, 4, &isnull));
		t->bucket = fc_target_bucket(c, start, end);
		fc_copy_currency(currency, SPI_getbinval(tup, desc, 6, &isnull));
		t->amount = fc_convert(c, DatumGetNumericCopy(SPI_getbinval(tup, desc, 5, &isnull)),
							   fc_rate_slot(c, currency, start, 0));
		d = SPI_getbinval(tup, desc, 7, &isnull);
		t->category = isnull ? FC_WON : fc_parse_category(d, 0);
	}
	return targets;
}

static Numeric
fc_add_opt(Numeric sum, Numeric n)
{
	if (n == NULL)
		return sum;
	return sum == NULL ? n : sm_numeric_add(sum, n);
}

/*
 * Quotas of one bucket (-2: every row) by the rule documented in
 * docs/forecasting.md: a rep's quota is the sum of its rows; a team's is
 * the sum of its own rows if it has any, else of its reps' and sub-teams'
 * quotas; the organisation's is the sum of the top-level teams' and of the
 * reps without a team.  NULL wherever no row applies.
 */
static Numeric
fc_quotas(FcCall *c, FcTarget *rows, int nrows, int bucket,
		  Numeric *rep_q, Numeric *team_q, Numeric *noteam_q)
{
	Numeric    *team_own = palloc0(sizeof(Numeric) * Max(c->nteams, 1));
	Numeric    *below = palloc0(sizeof(Numeric) * Max(c->nteams, 1));
	int		   *order = c->team_order;
	Numeric		total = NULL;
	int			i;

	memset(rep_q, 0, sizeof(Numeric) * c->nreps);
	*noteam_q = NULL;
	for (i = 0; i < nrows; i++)
	{
		if (bucket != -2 && rows[i].bucket != bucket)
			continue;
		if (rows[i].rep >= 0)
			rep_q[rows[i].rep] = fc_add_opt(rep_q[rows[i].rep], rows[i].amount);
		else if (rows[i].team >= 0)
			team_own[rows[i].team] = fc_add_opt(team_own[rows[i].team], rows[i].amount);
	}
	for (i = 0; i < c->nreps; i++)
	{
		if (c->reps[i].team >= 0)
			below[c->reps[i].team] = fc_add_opt(below[c->reps[i].team], rep_q[i]);
		else
			*noteam_q = fc_add_opt(*noteam_q, rep_q[i]);
	}

	/* children before parents */
	for (i = 0; i < c->nteams; i++)
	{
		int			t = order[i];

		team_q[t] = team_own[t] != NULL ? team_own[t] : below[t];
		if (c->teams[t].parent >= 0)
			below[c->teams[t].parent] = fc_add_opt(below[c->teams[t].parent], team_q[t]);
		else
			total = fc_add_opt(total, team_q[t]);
	}
	return fc_add_opt(total, *noteam_q);
}

/* the quota of every group: per rep, per team (with sub-teams), per month
 * or quarter, or in total; none per pipeline */
static void
fc_apply_quotas(FcCall *c)
{
	int			nrows;
	FcTarget   *rows;
	Numeric    *rep_q;
	Numeric    *team_q;
	Numeric		noteam_q;
	int			i;

	if (c->kind == FC_GROUP_PIPELINE)
		return;					/* quotas are not set per pipeline */
	rows = fc_load_targets(c, false, &nrows);
	rep_q = palloc(sizeof(Numeric) * Max(c->nreps, 1));
	team_q = palloc0(sizeof(Numeric) * Max(c->nteams, 1));

	switch (c->kind)
	{
		case FC_GROUP_REP:
			fc_quotas(c, rows, nrows, -2, rep_q, team_q, &noteam_q);
			for (i = 0; i < c->nreps; i++)
				c->groups[i].quota = rep_q[i];
			break;
		case FC_GROUP_TEAM:
			fc_quotas(c, rows, nrows, -2, rep_q, team_q, &noteam_q);
			for (i = 0; i < c->nteams; i++)
				c->groups[i].quota = team_q[i];
			c->groups[c->nteams].quota = noteam_q;
			break;
		case FC_GROUP_MONTH:
		case FC_GROUP_QUARTER:
			for (i = 0; i < c->ngroups; i++)
				c->groups[i].quota = fc_quotas(c, rows, nrows, i, rep_q, team_q, &noteam_q);
			break;
		case FC_GROUP_TOTAL:
			c->groups[0].quota = fc_quotas(c, rows, nrows, -2, rep_q, team_q, &noteam_q);
			break;
		case FC_GROUP_PIPELINE:
			break;
	}
	for (i = 0; i < c->ngroups; i++)
		if (c->groups[i].quota != NULL)
			c->groups[i].present = true;
}

static void
fc_adjust_group(FcCall *c, int g, const FcTarget *t)
{
	int			k = t->category - FC_COMMIT;

	c->groups[g].adjust[k] = fc_add_opt(c->groups[g].adjust[k], t->amount);
	c->groups[g].present = true;
}

/*
 * A rep's adjustment counts for the rep and every team above it, a team's
 * for the team and every team above it, every adjustment for the total
 * and for the month or quarter that holds its period.
 */
static void
fc_apply_adjustments(FcCall *c)
{
	int			nrows;
	FcTarget   *rows;
	int			i,
				k;

	if (c->kind == FC_GROUP_PIPELINE)
		return;
	rows = fc_load_targets(c, true, &nrows);
	for (i = 0; i < nrows; i++)
	{
		FcTarget   *t = &rows[i];

		switch (c->kind)
		{
			case FC_GROUP_REP:
				if (t->rep >= 0)
					fc_adjust_group(c, t->rep, t);
				break;
			case FC_GROUP_TEAM:
				{
					int			team = t->rep >= 0 ? c->reps[t->rep].team : t->team;

					if (team < 0)
					{
						if (t->rep >= 0)
							fc_adjust_group(c, c->nteams, t);
						break;
					}
					for (k = 0; k < c->teams[team].nchain; k++)
						fc_adjust_group(c, c->teams[team].chain[k], t);
				}
				break;
			case FC_GROUP_MONTH:
			case FC_GROUP_QUARTER:
				if (t->bucket >= 0)
					fc_adjust_group(c, t->bucket, t);
				break;
			case FC_GROUP_TOTAL:
				fc_adjust_group(c, 0, t);
				break;
			case FC_GROUP_PIPELINE:
				break;
		}
	}
}

/* ------------------------------------------------------------------------
 * Setting up a call
 * ------------------------------------------------------------------------
 */

static void
fc_check_currency(FcCall *c)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	values[0] = CStringGetTextDatum(c->target);
	sm_spi_query_dest("SELECT 1 FROM salesmgmt.currency WHERE code = $1::bpchar",
					  1, types, values, NULL);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reporting currency \"%s\" is not a known currency", c->target),
				 errhint("Use a code of salesmgmt.currency (setting salesmgmt.reporting_currency or p_currency), or add the currency there.")));
}

static void
fc_init_call(FcCall *c, FunctionCallInfo fcinfo, DateADT from, DateADT to)
{
	int			overflow = 0;

	memset(c, 0, sizeof(FcCall));
	c->scope_team = -1;
	if (from > to)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("forecast period ends before it starts"),
				 errdetail("p_from is %s, p_to is %s.", sm_date_iso_str(from), sm_date_iso_str(to)),
				 errhint("Pass the first day of the period as p_from and the last as p_to.")));
	if (DATE_NOT_FINITE(from) || DATE_NOT_FINITE(to))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("forecast period must have finite bounds"),
				 errhint("Pass real dates as p_from and p_to, not infinity.")));
	c->from = from;
	c->to = to;
	c->from_ts = date2timestamptz_opt_overflow(from, &overflow);
	if (overflow == 0)
		c->to_ts = date2timestamptz_opt_overflow(to + 1, &overflow);
	if (overflow != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("forecast period from %s to %s is out of range",
						sm_date_iso_str(from), sm_date_iso_str(to)),
				 errhint("Forecast periods must lie between 4713 BC and 294276 AD.")));
	c->as_of = GetCurrentTransactionStartTimestamp();
}

static void
fc_load_catalog(FcCall *c)
{
	c->cxt = CurrentMemoryContext;
	fc_check_currency(c);
	fc_load_rates(c);
	fc_load_pipelines(c);
	fc_load_stages(c);
	fc_load_teams(c);
	fc_load_reps(c);
	if (c->need_splits)
		fc_load_splits(c);
	c->foreign = fc_accmap_create(CurrentMemoryContext, 64, NULL);
}

static void
fc_set_currency(FcCall *c, FunctionCallInfo fcinfo, int argno)
{
	const char *code = sm_currency_reporting();
	char	   *arg = NULL;

	if (argno >= 0 && !PG_ARGISNULL(argno))
	{
		arg = TextDatumGetCString(PG_GETARG_DATUM(argno));
		code = arg;
	}
	if (code == NULL || strlen(code) != 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reporting currency \"%s\" is not a three-letter code",
						code ? code : ""),
				 errhint("Currencies are ISO 4217 codes in upper case, such as \"USD\".")));
	memcpy(c->target, code, 3);
	c->target[3] = '\0';
}

/* ------------------------------------------------------------------------
 * salesmgmt.forecast
 * ------------------------------------------------------------------------
 */

/* the result columns of salesmgmt.forecast, in order */
typedef enum FcCol
{
	FC_COL_GROUP_ID,
	FC_COL_GROUP_NAME,
	FC_COL_CLOSED_WON,
	FC_COL_COMMIT,
	FC_COL_BEST_CASE,
	FC_COL_PIPELINE,
	FC_COL_OMITTED,
	FC_COL_WEIGHTED,
	FC_COL_COMMIT_FORECAST,
	FC_COL_BEST_CASE_FORECAST,
	FC_COL_QUOTA,
	FC_COL_ATTAINMENT,
	FC_COL_GAP,
	FC_COL_DEAL_COUNT,
	FC_COL_PERIOD_START,
	FC_COL_PERIOD_END,
	FC_COL_ADJUSTED_COMMIT,		/* the adjusted figures: FC_NADJUST of them */
	FC_COL_ADJUSTED_BEST_CASE,
	FC_COL_ADJUSTED_PIPELINE,
	FC_COL_ADJUSTED_COMMIT_FORECAST,
	FC_COL_ADJUSTED_BEST_CASE_FORECAST,
	FC_COL_ADJUSTED_GAP,
	FC_COL_CURRENCY,
	FC_NCOLUMNS
} FcCol;

static const char *const fc_forecast_columns[] = {
	"group_id", "group_name", "closed_won", "commit", "best_case", "pipeline",
	"omitted", "weighted", "commit_forecast", "best_case_forecast", "quota",
	"attainment", "gap", "deal_count", "period_start", "period_end",
	"adjusted_commit", "adjusted_best_case", "adjusted_pipeline",
	"adjusted_commit_forecast", "adjusted_best_case_forecast", "adjusted_gap",
	"currency"
};

StaticAssertDecl(lengthof(fc_forecast_columns) == FC_NCOLUMNS,
				 "every column of salesmgmt.forecast is named");
StaticAssertDecl(FC_COL_ADJUSTED_PIPELINE - FC_COL_ADJUSTED_COMMIT + 1 == FC_NADJUST,
				 "one adjusted column per adjusted category");

/* figures of one group in the reporting currency, exact */
static void
fc_group_figures(FcCall *c, int g, Numeric *fig, Numeric *weighted,
				 Numeric unit6, Numeric unit10)
{
	FcAcc	   *acc = &c->groups[g].acc;
	int			f;

	for (f = 0; f < FC_NFIGURES; f++)
		fig[f] = fc_int128_numeric(acc->amount[f], unit6);
	*weighted = fc_int128_numeric(acc->weighted, unit10);
}

/* add what every group holds in other currencies, converted */
static void
fc_add_foreign(FcCall *c, Numeric (*figs)[FC_NFIGURES + 1], Numeric unit6,
			   Numeric unit10)
{
	fc_accmap_iterator it;
	FcAccEntry *e;

	fc_accmap_start_iterate(c->foreign, &it);
	while ((e = fc_accmap_iterate(c->foreign, &it)) != NULL)
	{
		int			g = (int) (e->key >> 32);
		int			slot = (int) (e->key & 0xFFFFFFFF);
		int			f;

		for (f = 0; f <= FC_NFIGURES; f++)
		{
			INT128		v = (f < FC_NFIGURES) ? e->acc.amount[f] : e->acc.weighted;

			if (fc_int128_is_zero(v))
				continue;
			figs[g][f] = sm_numeric_add(figs[g][f],
										fc_convert(c, fc_int128_numeric(v, f < FC_NFIGURES ? unit6 : unit10),
												   slot));
		}
	}
}

static int
fc_parse_group(text *t)
{
	char	   *s = text_to_cstring(t);
	int			k;

	for (k = 0; k < (int) lengthof(fc_group_names); k++)
		if (strcmp(s, fc_group_names[k]) == 0)
			return k;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown forecast grouping \"%s\"", s),
			 errhint("Group by rep, team, pipeline, month, quarter or total.")));
	return 0;					/* keep compiler quiet */
}

/*
 * salesmgmt.forecast(from, to, group, as_of, currency): loads the
 * catalog, scans the deals into per-group accumulators (exact cents per
 * currency slot), adds quotas and adjustments, converts each slot once and
 * returns one row per group (columns: FcCol).
 */
Datum
sm_forecast(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FcCall		call;
	FcCall	   *c = &call;
	MemoryContext row_cxt;
	MemoryContext old;
	Numeric		unit6,
				unit10,
				zero;
	Numeric		(*figs)[FC_NFIGURES + 1];
	int			g;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("forecast period must not be null"),
				 errhint("Pass the first and last day of the period as p_from and p_to.")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("forecast grouping must not be null"),
				 errhint("Group by rep, team, pipeline, month, quarter or total.")));

	InitMaterializedSRF(fcinfo, 0);
	sm_check_result_columns(rsinfo->setDesc, fc_forecast_columns, FC_NCOLUMNS);
	fc_init_call(c, fcinfo, PG_GETARG_DATEADT(0), PG_GETARG_DATEADT(1));
	c->kind = fc_parse_group(PG_GETARG_TEXT_PP(2));
	if (!PG_ARGISNULL(3))
	{
		c->has_as_of = true;
		c->as_of = PG_GETARG_TIMESTAMPTZ(3);
		if (TIMESTAMP_NOT_FINITE(c->as_of))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("p_as_of must be a finite moment"),
					 errhint("Leave p_as_of null for the forecast as it stands now.")));
	}
	fc_set_currency(c, fcinfo, 4);
	c->need_splits = (c->kind == FC_GROUP_REP || c->kind == FC_GROUP_TEAM);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	fc_load_catalog(c);
	fc_make_groups(c);
	fc_scan_deals(c);

	fc_apply_quotas(c);
	fc_apply_adjustments(c);

	/* exact figures per group: reporting currency, then the other slots */
	unit6 = sm_numeric_from_cstring("0.000001");
	unit10 = sm_numeric_from_cstring("0.0000000001");
	zero = sm_numeric_zero();
	figs = palloc(sizeof(*figs) * Max(c->ngroups, 1));
	for (g = 0; g < c->ngroups; g++)
		fc_group_figures(c, g, figs[g], &figs[g][FC_NFIGURES], unit6, unit10);
	fc_add_foreign(c, figs, unit6, unit10);

	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "forecast row",
									ALLOCSET_DEFAULT_SIZES);
	for (g = 0; g < c->ngroups; g++)
	{
		FcGroup    *grp = &c->groups[g];
		Datum		values[FC_NCOLUMNS];
		bool		nulls[FC_NCOLUMNS];
		Numeric		r[FC_NFIGURES];
		Numeric		weighted,
					commit_fc,
					best_fc,
					quota = NULL;
		int			f;

		if (!grp->present)
			continue;
		old = MemoryContextSwitchTo(row_cxt);
		memset(nulls, 0, sizeof(nulls));

		/* each figure is rounded once from its exact value */
		for (f = 0; f < FC_NFIGURES; f++)
			r[f] = sm_numeric_round(figs[g][f], 2);
		weighted = sm_numeric_round(figs[g][FC_NFIGURES], 2);
		commit_fc = sm_numeric_add(r[FC_WON], r[FC_COMMIT]);
		best_fc = sm_numeric_add(commit_fc, r[FC_BEST_CASE]);

		values[FC_COL_GROUP_ID] = Int64GetDatum(grp->id);
		nulls[FC_COL_GROUP_ID] = grp->id_null;
		values[FC_COL_GROUP_NAME] = grp->name ? CStringGetTextDatum(grp->name) : (Datum) 0;
		nulls[FC_COL_GROUP_NAME] = (grp->name == NULL);
		values[FC_COL_CLOSED_WON] = NumericGetDatum(r[FC_WON]);
		values[FC_COL_COMMIT] = NumericGetDatum(r[FC_COMMIT]);
		values[FC_COL_BEST_CASE] = NumericGetDatum(r[FC_BEST_CASE]);
		values[FC_COL_PIPELINE] = NumericGetDatum(r[FC_PIPELINE]);
		values[FC_COL_OMITTED] = NumericGetDatum(r[FC_OMITTED]);
		values[FC_COL_WEIGHTED] = NumericGetDatum(weighted);
		values[FC_COL_COMMIT_FORECAST] = NumericGetDatum(commit_fc);
		values[FC_COL_BEST_CASE_FORECAST] = NumericGetDatum(best_fc);
		if (grp->quota != NULL)
		{
			quota = sm_numeric_round(grp->quota, 2);
			values[FC_COL_QUOTA] = NumericGetDatum(quota);
			if (sm_numeric_cmp(quota, zero) > 0)
				values[FC_COL_ATTAINMENT] = NumericGetDatum(sm_numeric_round(sm_numeric_div(r[FC_WON], quota), 4));
			else
				nulls[FC_COL_ATTAINMENT] = true;
			values[FC_COL_GAP] = NumericGetDatum(sm_numeric_sub(quota, commit_fc));
		}
		else
			nulls[FC_COL_QUOTA] = nulls[FC_COL_ATTAINMENT] = nulls[FC_COL_GAP] = true;
		values[FC_COL_DEAL_COUNT] = Int64GetDatum(grp->deal_count);
		values[FC_COL_PERIOD_START] = DateADTGetDatum(grp->start);
		values[FC_COL_PERIOD_END] = DateADTGetDatum(grp->end);
		if (c->kind == FC_GROUP_PIPELINE)
		{
			/* adjustments are made per rep or team, not per pipeline */
			for (f = FC_COL_ADJUSTED_COMMIT; f <= FC_COL_ADJUSTED_GAP; f++)
				nulls[f] = true;
		}
		else
		{
			Numeric		adj[FC_NADJUST];
			Numeric		adj_commit_fc,
						adj_best_fc;

			for (f = 0; f < FC_NADJUST; f++)
				adj[f] = sm_numeric_round(grp->adjust[f] == NULL ? r[FC_COMMIT + f]
										  : sm_numeric_add(figs[g][FC_COMMIT + f], grp->adjust[f]),
										  2);
			adj_commit_fc = sm_numeric_add(r[FC_WON], adj[0]);
			adj_best_fc = sm_numeric_add(adj_commit_fc, adj[1]);
			for (f = 0; f < FC_NADJUST; f++)
				values[FC_COL_ADJUSTED_COMMIT + f] = NumericGetDatum(adj[f]);
			values[FC_COL_ADJUSTED_COMMIT_FORECAST] = NumericGetDatum(adj_commit_fc);
			values[FC_COL_ADJUSTED_BEST_CASE_FORECAST] = NumericGetDatum(adj_best_fc);
			if (quota != NULL)
				values[FC_COL_ADJUSTED_GAP] = NumericGetDatum(sm_numeric_sub(quota, adj_commit_fc));
			else
				nulls[FC_COL_ADJUSTED_GAP] = true;
		}
		values[FC_COL_CURRENCY] = DirectFunctionCall3(bpcharin, CStringGetDatum(c->target),
										 ObjectIdGetDatum(InvalidOid), Int32GetDatum(7));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(old);
		MemoryContextReset(row_cxt);
	}

	SPI_finish();
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * salesmgmt.forecast_range
 * ------------------------------------------------------------------------
 */

/* the result columns of salesmgmt.forecast_range, in order */
typedef enum FrCol
{
	FR_COL_MEAN,
	FR_COL_STDDEV,
	FR_COL_P10,
	FR_COL_P50,
	FR_COL_P90,
	FR_COL_MIN,
	FR_COL_MAX,
	FR_COL_SIMULATIONS,
	FR_COL_CLOSED_WON,
	FR_COL_OPEN_DEALS,
	FR_COL_EXPECTED,
	FR_COL_EXPECTED_STDDEV,
	FR_COL_CURRENCY,
	FR_NCOLUMNS
} FrCol;

static const char *const fc_range_columns[] = {
	"mean", "stddev", "p10", "p50", "p90", "min", "max", "simulations",
	"closed_won", "open_deals", "expected", "expected_stddev", "currency"
};

StaticAssertDecl(lengthof(fc_range_columns) == FR_NCOLUMNS,
				 "every column of salesmgmt.forecast_range is named");

/* order the open deals by deal_id, so that the draws do not depend on
 * the order the scan happened to return them in */
typedef struct FcOpenDeal
{
	int64		id;
	int64		cents;
	int32		p;
} FcOpenDeal;

static int
fc_open_cmp(const void *a, const void *b)
{
	int64		x = ((const FcOpenDeal *) a)->id;
	int64		y = ((const FcOpenDeal *) b)->id;

	return (x > y) - (x < y);
}

static int
fc_int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* the q-quantile of n sorted values, interpolated like percentile_cont */
static double
fc_quantile(const int64 *sorted, int n, double q)
{
	double		pos = q * (n - 1);
	int			lo = (int) floor(pos);
	int			hi = Min(lo + 1, n - 1);

	return sorted[lo] + (pos - lo) * (double) (sorted[hi] - sorted[lo]);
}

static Datum
fc_money_datum(double v)
{
	return NumericGetDatum(sm_numeric_round(DatumGetNumeric(DirectFunctionCall1(float8_numeric,
																				Float8GetDatum(v))),
											2));
}

/*
 * Simulate: in each run every open deal is won with its probability.  The
 * draws are branch-free: a 64-bit random number gives two independent
 * 32-bit uniforms u, and a deal of probability p (in 1/10000) is won when
 * u < round(p * 2^32 / 10000), which is exact for p = 0 and p = 1 and
 * within 2^-33 of p otherwise.  Deals of probability 0 or 1 need no draw.
 */
static void
fc_simulate(const FcOpenDeal *deals, int n, int nsim, uint64 seed, int64 *totals)
{
	int64	   *cents = palloc(sizeof(int64) * Max(n, 1));
	uint64	   *threshold = palloc(sizeof(uint64) * Max(n, 1));
	int64		certain = 0;
	int			m = 0;
	int			i,
				s;
	pg_prng_state prng;

	for (i = 0; i < n; i++)
	{
		if (deals[i].p <= 0)
			continue;
		if (deals[i].p >= FC_UNIT)
		{
			certain += deals[i].cents;
			continue;
		}
		cents[m] = deals[i].cents;
		threshold[m] = (((uint64) deals[i].p << 32) + FC_UNIT / 2) / FC_UNIT;
		m++;
	}

	pg_prng_seed(&prng, seed);
	for (s = 0; s < nsim; s++)
	{
		int64		t = certain;

		CHECK_FOR_INTERRUPTS();
		for (i = 0; i + 1 < m; i += 2)
		{
			uint64		r = pg_prng_uint64(&prng);

			t += cents[i] & -(int64) ((r & 0xFFFFFFFF) < threshold[i]);
			t += cents[i + 1] & -(int64) ((r >> 32) < threshold[i + 1]);
		}
		if (i < m)
		{
			uint64		r = pg_prng_uint64(&prng);

			t += cents[i] & -(int64) ((r & 0xFFFFFFFF) < threshold[i]);
		}
		totals[s] = t;
	}
	pfree(cents);
	pfree(threshold);
}

/*
 * salesmgmt.forecast_range(from, to, team, simulations, seed): the
 * closed-won revenue plus a Monte Carlo simulation of the open deals, each
 * won with its effective probability; returns one row (columns: FrCol).
 */
Datum
sm_forecast_range(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FcCall		call;
	FcCall	   *c = &call;
	int			nsim;
	int64		seed;
	FcOpenDeal *deals;
	int64	   *totals;
	Numeric		fig[FC_NFIGURES];
	Numeric		weighted;
	Numeric		(*figs)[FC_NFIGURES + 1];
	Numeric		won_exact;
	double		won,
				mean,
				var = 0,
				exact_var = 0;
	INT128		sum = int64_to_int128(0);
	Datum		values[FR_NCOLUMNS];
	bool		nulls[FR_NCOLUMNS];
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("forecast period must not be null"),
				 errhint("Pass the first and last day of the period as p_from and p_to.")));
	if (PG_ARGISNULL(3) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("number of simulations and seed must not be null"),
				 errhint("Leave them out to simulate 10000 times with seed 0.")));
	nsim = PG_GETARG_INT32(3);
	seed = PG_GETARG_INT64(4);
	if (nsim < 1 || nsim > FC_MAX_SIMULATIONS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of simulations must be between 1 and %d, not %d",
						FC_MAX_SIMULATIONS, nsim),
				 errhint("10000 simulations give percentiles to about 1%% of the spread.")));

	InitMaterializedSRF(fcinfo, 0);
	sm_check_result_columns(rsinfo->setDesc, fc_range_columns, FR_NCOLUMNS);
	fc_init_call(c, fcinfo, PG_GETARG_DATEADT(0), PG_GETARG_DATEADT(1));
	fc_set_currency(c, fcinfo, -1);
	c->kind = FC_GROUP_TOTAL;
	c->simulate = true;
	c->need_splits = !PG_ARGISNULL(2);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	fc_load_catalog(c);
	if (!PG_ARGISNULL(2))
	{
		int64		team_id = PG_GETARG_INT64(2);
		int			r;

		c->scope_team = fc_lookup(c->team_map, team_id);
		if (c->scope_team < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("team " INT64_FORMAT " does not exist", team_id),
					 errhint("See SELECT team_id, name FROM salesmgmt.team; pass NULL for everyone.")));
		/* the reps below the team, now that the team is known */
		for (r = 0; r < c->nreps; r++)
		{
			int			team = c->reps[r].team;
			int			k;

			if (team < 0)
				continue;
			for (k = 0; k < c->teams[team].nchain; k++)
				if (c->teams[team].chain[k] == c->scope_team)
					c->reps[r].in_scope = true;
		}
	}
	fc_make_groups(c);
	fc_scan_deals(c);

	/* the exact closed-won revenue and expected value */
	figs = palloc(sizeof(*figs));
	fc_group_figures(c, 0, figs[0], &figs[0][FC_NFIGURES],
					 sm_numeric_from_cstring("0.000001"),
					 sm_numeric_from_cstring("0.0000000001"));
	fc_add_foreign(c, figs, sm_numeric_from_cstring("0.000001"),
				   sm_numeric_from_cstring("0.0000000001"));
	for (i = 0; i < FC_NFIGURES; i++)
		fig[i] = figs[0][i];
	weighted = figs[0][FC_NFIGURES];
	won_exact = fig[FC_WON];
	won = sm_numeric_to_double(won_exact);

	/* simulate over the open deals in deal_id order */
	deals = palloc_extended(sizeof(FcOpenDeal) * Max(c->nopen, 1), MCXT_ALLOC_HUGE);
	for (i = 0; i < c->nopen; i++)
	{
		double		v = (double) c->open_cents[i];
		double		p = (double) c->open_p[i] / FC_UNIT;

		deals[i].id = c->open_id[i];
		deals[i].cents = c->open_cents[i];
		deals[i].p = c->open_p[i];
		exact_var += v * v * p * (1 - p);
	}
	qsort(deals, c->nopen, sizeof(FcOpenDeal), fc_open_cmp);
	totals = palloc_extended(sizeof(int64) * nsim, MCXT_ALLOC_HUGE);
	fc_simulate(deals, c->nopen, nsim, (uint64) seed, totals);

	for (i = 0; i < nsim; i++)
		int128_add_int64(&sum, totals[i]);
	mean = sm_numeric_to_double(fc_int128_numeric(sum, int64_to_numeric(1))) / nsim;
	for (i = 0; i < nsim; i++)
		var += ((double) totals[i] - mean) * ((double) totals[i] - mean);
	var = (nsim > 1) ? var / (nsim - 1) : 0;
	qsort(totals, nsim, sizeof(int64), fc_int64_cmp);

	memset(nulls, 0, sizeof(nulls));
	values[FR_COL_MEAN] = fc_money_datum(won + mean / 100);
	values[FR_COL_STDDEV] = fc_money_datum(sqrt(var) / 100);
	values[FR_COL_P10] = fc_money_datum(won + fc_quantile(totals, nsim, 0.1) / 100);
	values[FR_COL_P50] = fc_money_datum(won + fc_quantile(totals, nsim, 0.5) / 100);
	values[FR_COL_P90] = fc_money_datum(won + fc_quantile(totals, nsim, 0.9) / 100);
	values[FR_COL_MIN] = fc_money_datum(won + (double) totals[0] / 100);
	values[FR_COL_MAX] = fc_money_datum(won + (double) totals[nsim - 1] / 100);
	values[FR_COL_SIMULATIONS] = Int32GetDatum(nsim);
	values[FR_COL_CLOSED_WON] = NumericGetDatum(sm_numeric_round(won_exact, 2));
	values[FR_COL_OPEN_DEALS] = Int64GetDatum(c->nopen);
	values[FR_COL_EXPECTED] = NumericGetDatum(sm_numeric_round(sm_numeric_add(won_exact, weighted), 2));
	values[FR_COL_EXPECTED_STDDEV] = fc_money_datum(sqrt(exact_var) / 100);
	values[FR_COL_CURRENCY] = DirectFunctionCall3(bpcharin, CStringGetDatum(c->target),
									 ObjectIdGetDatum(InvalidOid), Int32GetDatum(7));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);

	SPI_finish();
	return (Datum) 0;
}

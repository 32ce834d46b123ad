/*-------------------------------------------------------------------------
 *
 * forecast_dist.h
 *	  salesmgmt.forecast_dist: the state of a Monte Carlo forecast as a
 *	  value that merges (forecast_dist.c), shared with forecast_range.c.
 *
 * A value holds, for each simulation i, the total in cents of the deals
 * won in simulation i.  Whether deal d is won in simulation i depends only
 * on (seed, d, i) and the deal's probability, never on which other deals
 * were added before, so states built over disjoint sets of deals (parallel
 * workers, partitions, shards) add up element by element to exactly the
 * state one process would build over all of them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_FORECAST_DIST_H
#define SALESMGMT_FORECAST_DIST_H

#include "postgres.h"

#include "utils/numeric.h"

#include "compat.h"

/* version of the stored layout below */
#define FD_LAYOUT_VERSION	1

/* most simulations a value holds (8 bytes each) */
#define FD_MAX_SIMULATIONS	10000000

typedef struct ForecastDist
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	int32		version;		/* FD_LAYOUT_VERSION */
	int32		nsim;			/* simulations, >= 1 */
	int32		reserved;		/* zero */
	int64		seed;
	int64		ndeals;			/* deals added up in the totals */
	int64		totals[FLEXIBLE_ARRAY_MEMBER];	/* per simulation, in cents */
} ForecastDist;

#define FD_HEADER_SIZE		offsetof(ForecastDist, totals)
#define FD_SIZE(nsim)		(FD_HEADER_SIZE + sizeof(int64) * (Size) (nsim))

/* the probability p (0..1) as a threshold on 32-bit uniforms: round(p 2^32) */
#define FD_THRESHOLD_ONE	(UINT64CONST(1) << 32)

extern ForecastDist *fd_make(int32 nsim, int64 seed);
extern void fd_add_deal(ForecastDist *fd, int64 deal_id, int64 cents, uint64 threshold);
extern bool fd_add_deals_slice(int64 *totals, int64 seed, int from, int to, int n,
							   const int64 *deal_ids, const int64 *cents,
							   const uint64 *thresholds);
sm_noreturn_before extern void fd_overflow(void) sm_noreturn_after;
extern Numeric fd_mean_units(const ForecastDist *fd);
extern double fd_stddev_cents(const ForecastDist *fd);
extern int64 *fd_sorted(const ForecastDist *fd);
extern double fd_quantile(const int64 *sorted, int n, double q);
extern Datum fd_money(double cents, Numeric offset);

#endif							/* SALESMGMT_FORECAST_DIST_H */

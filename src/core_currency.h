/*-------------------------------------------------------------------------
 *
 * core_currency.h
 *	  Exchange rates and currency conversion, the one implementation that
 *	  forecasts, commissions, scorecards and SQL's salesmgmt.convert_amount
 *	  share.
 *
 * The rule: an amount in currency C converts into currency T on day D with
 * the latest rate of the pair (C, T) valid on D, multiplied; else with the
 * latest rate of the reverse pair (T, C) valid on D, divided (never a
 * rounded inverse); else it is an error naming the pair and the day
 * (SQLSTATE 22023), never zero.
 *
 * A computation that converts many amounts loads the rates to and from
 * its target currency once (sm_rates_load) and looks them up in memory.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_CORE_CURRENCY_H
#define SALESMGMT_CORE_CURRENCY_H

#include "postgres.h"

#include "utils/date.h"
#include "utils/numeric.h"

#include "compat.h"

/* one row of salesmgmt.currency_rate, as a conversion into the target */
typedef struct SmRate
{
	DateADT		valid_from;
	Numeric		rate;
	bool		divide;			/* a rate of the reverse pair */
} SmRate;

/* the rates between one currency and the target: ranges of SmRates.rates */
typedef struct SmRatePair
{
	char		code[4];
	int			direct;			/* code -> target, by valid_from */
	int			ndirect;
	int			reverse;		/* target -> code, by valid_from */
	int			nreverse;
} SmRatePair;

/* the rates to and from one target currency, loaded once per computation */
typedef struct SmRates
{
	char		target[4];
	int			nrates;
	SmRate	   *rates;			/* in load order: currency, quote, valid_from */
	int			npairs;
	SmRatePair *pairs;
	SmRatePair *last;			/* the pair of the previous lookup */
} SmRates;

/* the reporting currency: the setting, or SM_DEFAULT_CURRENCY */
extern const char *sm_currency_reporting(void);

/*
 * Load the rates to and from target into the current memory context.
 * With finite from and to, only what converts days in [from, to] is read
 * (the rates starting in it and each pair's last one before it); with
 * DATEVAL_NOBEGIN / DATEVAL_NOEND every rate.  read_only as for
 * SPI_execute (true: the calling statement's snapshot).  Needs SPI.
 */
extern void sm_rates_load(SmRates *rates, const char *target, DateADT from, DateADT to,
						  bool read_only);

/* the rate that converts code into the target on day, or NULL (code is a
 * three-letter code, not necessarily terminated) */
extern const SmRate *sm_rates_lookup(SmRates *rates, const char *code, DateADT day);

/* amount converted with one rate */
extern Numeric sm_rate_apply(const SmRate *rate, Numeric amount);

/* amount (NULL stays NULL) in code converted into the target on day */
extern Numeric sm_rates_convert(SmRates *rates, Numeric amount, const char *code, DateADT day);

/*
 * The error of a missing rate, the same words everywhere.  deal_id, when
 * not 0, names the deal whose amount needed the rate.  The day is shown in
 * ISO form when iso, else as DateStyle says.
 */
sm_noreturn_before extern void sm_currency_no_rate(const char *from, const char *to, DateADT day,
								int64 deal_id, bool iso) sm_noreturn_after;

#endif							/* SALESMGMT_CORE_CURRENCY_H */

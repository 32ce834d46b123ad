/*-------------------------------------------------------------------------
 *
 * commission.c
 *	  The commission engine: tier arithmetic, run_commissions with its
 *	  corrections of finalized periods, and the triggers that guard plans,
 *	  assignments, draws and the ledger.
 *
 * Tier arithmetic.  For a plan, a quota q and the credit x a rep has
 * accumulated in a plan period, E(x) is the exact tier commission of the
 * period.  Tier k covers credits [B_k, B_k+1) with B_k = from_k * q, and on
 * it E is linear: E(x) = a_k + r_k * x, where a_1 = 0 and
 *		retroactive tier:	a_k = 0 (all credit of the period earns r_k)
 *		marginal tier:		a_k = E_{k-1}(B_k) - r_k * B_k (new credit earns r_k)
 * so a line that takes the period's credit from x to x' earns
 * E(x') - E(x), catch-ups of retroactive tiers included, whatever the mix of
 * modes.  Rounding is cumulative: a line pays
 *		round(least(E(x'), cap), 2) - round(least(E(x), cap), 2)
 * so the lines of a period add up to its exact commission rounded once, and
 * no cent is lost or invented by rounding many small lines.  Without a quota
 * (none, or zero) the first tier's rate applies to all credit.
 *
 * run_commissions(start, end) works in a few set-oriented passes:
 *	1. lock the commission periods, check the period, replace its drafts;
 *	2. load plans, tiers, SPIFFs, assignments, the team tree, exchange rates,
 *	   quotas and draws into memory (hash tables by rep);
 *	3. if periods are finalized: merge (in rep, deal order) what finalized
 *	   events are due now with what the ledger booked for them, giving
 *	   adjustment and clawback items per rep;
 *	4. stream the period's credit events ordered by rep and time through one
 *	   cursor, merging each rep's adjustment items in time order, and emit
 *	   earned, SPIFF and override lines, written in batches the way COPY
 *	   writes (table_multi_insert, then the index entries);
 *	5. claw back refunds, settle draws, and return one row per rep.
 *
 * Concurrency.  Every run, finalization and discard takes SHARE ROW
 * EXCLUSIVE on salesmgmt.commission_period, so they run one at a time and
 * each sees the lines the previous one committed (READ COMMITTED takes a
 * new snapshot per query).  Assignment and draw triggers take SHARE on it,
 * so they cannot slip past a concurrent finalization.
 *
 *-------------------------------------------------------------------------
 */
#include "commission.h"

PG_FUNCTION_INFO_V1(sm_run_commissions);
PG_FUNCTION_INFO_V1(sm_finalize_commissions);
PG_FUNCTION_INFO_V1(sm_discard_commissions);

/*
 * True while run_commissions, finalize_commissions or discard_commissions
 * works: only then may draft lines and periods change.
 */
bool		cm_engine_active = false;

/* ----------------------------------------------------------------------
 * run_commissions, finalize_commissions, discard_commissions
 * ----------------------------------------------------------------------
 */

static void
cm_period_args(FunctionCallInfo fcinfo, DateADT *start, DateADT *end)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("start and end of a commission period must not be null")));
	*start = PG_GETARG_DATEADT(0);
	*end = PG_GETARG_DATEADT(1);
	if (DATE_NOT_FINITE(*start) || DATE_NOT_FINITE(*end))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a commission period must have finite dates")));
	if (*end < *start)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("commission period ends before it starts"),
				 errdetail("The period starts on %s and ends on %s.", cm_date_str(*start), cm_date_str(*end)),
				 errhint("Pass the first and the last day of the period (both inclusive).")));
}

static char *
cm_outer_user(void)
{
	return GetUserNameFromId(GetOuterUserId(), false);
}

/*
 * Check the period against those already run (none may overlap it with
 * other bounds; a finalized one never runs again), note the finalized
 * periods, and register the run.
 */
static void
cm_register_period(CmRun *run)
{
	SPITupleTable *tt;
	uint64		n,
				i;
	Oid			types[4] = {DATEOID, DATEOID, TEXTOID, TEXTOID};
	Datum		values[4];

	tt = sm_spi_query("SELECT period_start, period_end, status = 'final', currency::text"
					  "  FROM salesmgmt.commission_period ORDER BY period_start",
					  0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
	run->final_start = MemoryContextAlloc(run->run_cxt, sizeof(DateADT) * Max(n, 1));
	run->final_end = MemoryContextAlloc(run->run_cxt, sizeof(DateADT) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		DateADT		ps = DatumGetDateADT(sm_spi_col(tt, i, 1, &isnull));
		DateADT		pe = DatumGetDateADT(sm_spi_col(tt, i, 2, &isnull));
		bool		final = DatumGetBool(sm_spi_col(tt, i, 3, &isnull));
		char	   *currency = TextDatumGetCString(sm_spi_col(tt, i, 4, &isnull));
		bool		overlaps = ps <= run->end && pe >= run->start;
		bool		same = ps == run->start && pe == run->end;

		if (overlaps && final)
			ereport(ERROR,
					(errcode(ERRCODE_SM_PERIOD_FINALIZED),
					 same ? errmsg("commission period %s is finalized", cm_range_str(ps, pe))
					 : errmsg("commission period %s overlaps the finalized period %s",
							  cm_range_str(run->start, run->end), cm_range_str(ps, pe)),
					 errdetail("Lines of a finalized period are final and never change."),
					 errhint("Corrections go into the open period: change the deal, split or payment and run the next open period; it adds adjustment and clawback lines.")));
		if (overlaps && !same)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("commission period %s overlaps the open period %s",
							cm_range_str(run->start, run->end), cm_range_str(ps, pe)),
					 errhint("Run exactly that period again, or forget it first with salesmgmt.discard_commissions('%s', '%s').",
							 cm_date_str(ps), cm_date_str(pe))));
		if (strcmp(currency, run->currency) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("commission periods were run in %s, not in the reporting currency %s",
							currency, run->currency),
					 errdetail("Credits and amounts of a ledger must be in one currency."),
					 errhint("SET salesmgmt.reporting_currency = '%s' to run commissions.", currency)));
		if (final)
		{
			run->final_start[run->nfinal] = ps;
			run->final_end[run->nfinal++] = pe;
		}
	}
	SPI_freetuptable(tt);

	values[0] = DateADTGetDatum(run->start);
	values[1] = DateADTGetDatum(run->end);
	values[2] = CStringGetTextDatum(run->currency);
	values[3] = CStringGetTextDatum(cm_outer_user());
	sm_spi_query("INSERT INTO salesmgmt.commission_period AS p"
				 "       (period_start, period_end, currency, runs, last_run_at, last_run_by)"
				 " VALUES ($1, $2, $3, 1, now(), $4)"
				 " ON CONFLICT (period_start) DO UPDATE"
				 "   SET runs = p.runs + 1, last_run_at = now(), last_run_by = $4",
				 4, types, values, NULL, false, SPI_OK_INSERT, NULL);
	sm_spi_query("DELETE FROM salesmgmt.commission_line WHERE period_start = $1 AND period_end = $2",
				 2, types, values, NULL, false, SPI_OK_DELETE, NULL);
}

static int
cm_rep_ptr_cmp(const void *a, const void *b)
{
	int64		x = (*(CmRep *const *) a)->rep_id;
	int64		y = (*(CmRep *const *) b)->rep_id;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * The result columns of run_commissions, in order: the sums of CmSum from
 * CS_EARNED on are the columns from CM_RES_EARNED on.
 */
typedef enum CmResCol
{
	CM_RES_REP_ID,
	CM_RES_CREDIT,
	CM_RES_QUOTA,
	CM_RES_ATTAINMENT,
	CM_RES_EARNED,
	CM_RES_SPIFFS,
	CM_RES_OVERRIDES,
	CM_RES_ADJUSTMENTS,
	CM_RES_CLAWBACKS,
	CM_RES_DRAWS,
	CM_RES_DRAW_RECOVERY,
	CM_RES_PAYOUT,
	CM_RES_NCOLS
} CmResCol;

static const char *const cm_result_columns[] = {
	"rep_id", "credit", "quota", "attainment", "earned", "spiffs", "overrides",
	"adjustments", "clawbacks", "draws", "draw_recovery", "payout"
};

StaticAssertDecl(lengthof(cm_result_columns) == CM_RES_NCOLS,
				 "every column of run_commissions is named");
StaticAssertDecl(CM_RES_EARNED + (CS_NSUMS - CS_EARNED) == CM_RES_PAYOUT,
				 "one column per sum of a rep, then the payout");

/* one result row per rep that got a line or a sum, by rep_id: credit,
 * quota and attainment of the period, the sums by kind and the payout */
static void
cm_results(CmRun *run, ReturnSetInfo *rsinfo)
{
	HASH_SEQ_STATUS seq;
	CmRep	   *rep;
	CmRep	  **listed;
	int			nlisted = 0,
				i;

	listed = palloc(sizeof(CmRep *) * Max(hash_get_num_entries(run->reps), 1));
	hash_seq_init(&seq, run->reps);
	while ((rep = hash_seq_search(&seq)) != NULL)
		if (rep->listed)
			listed[nlisted++] = rep;
	qsort(listed, nlisted, sizeof(CmRep *), cm_rep_ptr_cmp);
	for (i = 0; i < nlisted; i++)
	{
		Datum		values[CM_RES_NCOLS];
		bool		nulls[CM_RES_NCOLS];
		Numeric		quota,
					credit,
					payout = sm_numeric_const(0);
		CmPlan	   *plan;
		int			s;

		rep = listed[i];
		memset(nulls, 0, sizeof(nulls));
		credit = cm_sum(rep, CS_CREDIT);
		plan = cm_plan_at(rep, run->end);
		if (plan == NULL)
			plan = cm_plan_at(rep, run->start);
		/* the quota of the measure the rep's plan credits */
		quota = cm_quota_for(rep, run->start, run->end, plan != NULL && plan->new_arr);
		values[CM_RES_REP_ID] = Int64GetDatum(rep->rep_id);
		values[CM_RES_CREDIT] = NumericGetDatum(credit);
		nulls[CM_RES_QUOTA] = quota == NULL;
		values[CM_RES_QUOTA] = nulls[CM_RES_QUOTA] ? (Datum) 0 : NumericGetDatum(quota);
		nulls[CM_RES_ATTAINMENT] = quota == NULL || sm_numeric_sign(quota) <= 0;
		values[CM_RES_ATTAINMENT] = nulls[CM_RES_ATTAINMENT] ? (Datum) 0 :
			NumericGetDatum(sm_numeric_round(sm_numeric_div(credit, quota), 4));
		for (s = CS_EARNED; s < CS_NSUMS; s++)
		{
			Numeric		x = sm_numeric_round(cm_sum(rep, s), 2);

			values[CM_RES_EARNED + s - CS_EARNED] = NumericGetDatum(x);
			payout = sm_numeric_add(payout, x);
		}
		values[CM_RES_PAYOUT] = NumericGetDatum(payout);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * The passes of a run (see the file header): register the period, load
 * the inputs, compute the corrections of finalized periods, stream the
 * period's credited events rep by rep merging each rep's corrections in
 * time order, then refunds, draws and the result rows.
 */
static void
cm_run(CmRun *run, ReturnSetInfo *rsinfo)
{
	CmRep	   *rep;
	HASH_SEQ_STATUS seq;

	LockRelationOid(sm_relation_oid("commission_period"), ShareRowExclusiveLock);
	cm_register_period(run);

	run->nplans = cm_load_plans(run->run_cxt, 0, false, &run->plans);
	for (int i = 0; i < run->nplans; i++)
	{
		run->any_new_arr |= run->plans[i].new_arr;
		run->any_family |= run->plans[i].nfamilies > 0 || run->plans[i].nrates > 0;
	}
	cm_load_reps(run);
	cm_load_spiffs(run);
	cm_load_assignments(run);
	cm_load_rates(run);
	cm_load_quotas(run);
	cm_load_draws(run);
	cm_load_prior(run);
	cm_init_writer(run);

	if (run->nfinal > 0 && (run->any_booking || run->any_payment))
		cm_corrections(run);
	if (run->any_booking)
		cm_load_watch(run);

	/* the period's credited events, rep by rep in time order */
	if (run->any_booking || run->any_payment)
	{
		CmReader	r;
		CmRep	   *cur = NULL;

		memset(&r, 0, sizeof(r));
		r.portal = cm_events_open(run, false);
		MemoryContextSwitchTo(run->line_cxt);
		while (r.portal != NULL)
		{
			CmEvent		ev;
			int64		rep_id;

			CHECK_FOR_INTERRUPTS();
			if (run->writer.bulk.nused >= CM_FLUSH_AT)
				cm_flush(run);
			if (!cm_reader_next(&r))
				break;
			MemoryContextSwitchTo(run->line_cxt);
			rep_id = DatumGetInt64(r.v[0]);
			if (cur == NULL || cur->rep_id != rep_id)
			{
				if (cur != NULL)
					cm_finish_rep(run, cur);
				cur = cm_rep(run, rep_id);
			}
			cm_event_from_row(run, r.v, r.isnull, &ev);
			cm_apply_corrections(run, cur, true, ev.at);
			cm_credit_event(run, cur, &ev);
		}
		if (cur != NULL)
			cm_finish_rep(run, cur);
		if (r.portal != NULL)
			SPI_cursor_close(r.portal);
	}
	MemoryContextSwitchTo(run->line_cxt);

	/* reps with corrections and no events in the period */
	hash_seq_init(&seq, run->reps);
	while ((rep = hash_seq_search(&seq)) != NULL)
		if (!rep->done && rep->ncorr > 0)
			cm_finish_rep(run, rep);

	cm_refunds(run);
	cm_draws(run);
	cm_close_writer(run);
	MemoryContextSwitchTo(run->tmp_cxt);
	cm_results(run, rsinfo);
}

/*
 * run_commissions(start, end): checks the period and the isolation level,
 * sets up the run's memory contexts, and runs cm_run with the engine flag
 * set (the ledger guard lets only the engine change draft lines).
 */
Datum
sm_run_commissions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext caller = CurrentMemoryContext;
	CmRun	   *run;
	DateADT		start,
				end;

	cm_period_args(fcinfo, &start, &end);
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("run_commissions must run in a READ COMMITTED transaction"),
				 errdetail("Under REPEATABLE READ or SERIALIZABLE it could not see the lines of a concurrent run it waited for, and could book a correction twice."),
				 errhint("Run it in its own transaction, or use SET TRANSACTION ISOLATION LEVEL READ COMMITTED.")));
	InitMaterializedSRF(fcinfo, 0);
	sm_check_result_columns(rsinfo->setDesc, cm_result_columns, CM_RES_NCOLS);

	run = MemoryContextAllocZero(CurTransactionContext, sizeof(CmRun));
	run->run_cxt = AllocSetContextCreate(CurTransactionContext, "salesmgmt commission run",
										 ALLOCSET_DEFAULT_SIZES);
	run->rep_cxt = AllocSetContextCreate(run->run_cxt, "salesmgmt commission rep", ALLOCSET_DEFAULT_SIZES);
	run->line_cxt = AllocSetContextCreate(run->run_cxt, "salesmgmt commission lines", ALLOCSET_DEFAULT_SIZES);
	run->tmp_cxt = AllocSetContextCreate(run->run_cxt, "salesmgmt commission scratch", ALLOCSET_DEFAULT_SIZES);
	run->start = start;
	run->end = end;
	run->start_ts = cm_date_ts(start);
	run->end_ts = cm_date_ts(end + 1);
	run->aligned = true;
	strlcpy(run->currency, sm_currency_reporting(), sizeof(run->currency));

	SPI_connect();
	cm_engine_active = true;
	PG_TRY();
	{
		cm_run(run, rsinfo);
	}
	PG_FINALLY();
	{
		cm_engine_active = false;
	}
	PG_END_TRY();
	SPI_finish();
	MemoryContextSwitchTo(caller);
	MemoryContextDelete(run->run_cxt);
	pfree(run);
	return (Datum) 0;
}

/*
 * The registered period [start, end] under the SHARE ROW EXCLUSIVE lock,
 * refusing a final one (SM010), one never run, or other bounds.
 */
static void
cm_open_period(DateADT start, DateADT end, const char *verb)
{
	Oid			types[2] = {DATEOID, DATEOID};
	Datum		values[2] = {DateADTGetDatum(start), DateADTGetDatum(end)};
	SPITupleTable *tt;
	uint64		n;
	bool		isnull;
	DateADT		ps,
				pe;

	LockRelationOid(sm_relation_oid("commission_period"), ShareRowExclusiveLock);
	tt = sm_spi_query("SELECT period_start, period_end, status = 'final' FROM salesmgmt.commission_period"
					  " WHERE period_start <= $2 AND period_end >= $1 ORDER BY period_start LIMIT 1",
					  2, types, values, NULL, false, SPI_OK_SELECT, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("commission period %s has not been run", cm_range_str(start, end)),
				 errhint("Run salesmgmt.run_commissions('%s', '%s') first.",
						 cm_date_str(start), cm_date_str(end))));
	ps = DatumGetDateADT(sm_spi_col(tt, 0, 1, &isnull));
	pe = DatumGetDateADT(sm_spi_col(tt, 0, 2, &isnull));
	if (DatumGetBool(sm_spi_col(tt, 0, 3, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_SM_PERIOD_FINALIZED),
				 ps == start && pe == end
				 ? errmsg("commission period %s is already finalized", cm_range_str(ps, pe))
				 : errmsg("commission period %s overlaps the finalized period %s",
						  cm_range_str(start, end), cm_range_str(ps, pe)),
				 errhint("Finalized periods never change; corrections go into the open period.")));
	if (ps != start || pe != end)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("commission period %s is not the period that was run, %s",
						cm_range_str(start, end), cm_range_str(ps, pe)),
				 errhint("%s exactly %s.", verb, cm_range_str(ps, pe))));
	SPI_freetuptable(tt);
}

Datum
sm_finalize_commissions(PG_FUNCTION_ARGS)
{
	DateADT		start,
				end;
	Oid			types[3] = {DATEOID, DATEOID, TEXTOID};
	Datum		values[3];
	uint64		n = 0;

	cm_period_args(fcinfo, &start, &end);
	values[0] = DateADTGetDatum(start);
	values[1] = DateADTGetDatum(end);
	values[2] = CStringGetTextDatum(cm_outer_user());
	SPI_connect();
	cm_open_period(start, end, "Finalize");
	cm_engine_active = true;
	PG_TRY();
	{
		sm_spi_query("UPDATE salesmgmt.commission_period SET status = 'final', finalized_at = now(),"
					 "       finalized_by = $3 WHERE period_start = $1",
					 3, types, values, NULL, false, SPI_OK_UPDATE, NULL);
		sm_spi_query("UPDATE salesmgmt.commission_line SET status = 'final'"
					 " WHERE period_start = $1 AND period_end = $2 AND status = 'draft'",
					 2, types, values, NULL, false, SPI_OK_UPDATE, &n);
	}
	PG_FINALLY();
	{
		cm_engine_active = false;
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_INT64((int64) n);
}

Datum
sm_discard_commissions(PG_FUNCTION_ARGS)
{
	DateADT		start,
				end;
	Oid			types[2] = {DATEOID, DATEOID};
	Datum		values[2];
	uint64		n = 0;

	cm_period_args(fcinfo, &start, &end);
	values[0] = DateADTGetDatum(start);
	values[1] = DateADTGetDatum(end);
	SPI_connect();
	cm_open_period(start, end, "Discard");
	cm_engine_active = true;
	PG_TRY();
	{
		sm_spi_query("DELETE FROM salesmgmt.commission_line WHERE period_start = $1 AND period_end = $2",
					 2, types, values, NULL, false, SPI_OK_DELETE, &n);
		sm_spi_query("DELETE FROM salesmgmt.commission_period WHERE period_start = $1",
					 1, types, values, NULL, false, SPI_OK_DELETE, NULL);
	}
	PG_FINALLY();
	{
		cm_engine_active = false;
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_INT64((int64) n);
}


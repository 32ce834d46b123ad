/*-------------------------------------------------------------------------
 *
 * commission_checks.c
 *	  The triggers that guard plans, tiers, assignments, draws, SPIFFs and
 *	  the ledger (constraint checks and finalized-period guards).
 *
 * The run model and the engine's overview are in commission.h and
 * commission.c.
 *
 *-------------------------------------------------------------------------
 */
#include "commission.h"
#include "rules.h"

PG_FUNCTION_INFO_V1(sm_commission_tier_check);
PG_FUNCTION_INFO_V1(sm_commission_assignment_check);
PG_FUNCTION_INFO_V1(sm_commission_draw_check);
PG_FUNCTION_INFO_V1(sm_commission_spiff_check);
PG_FUNCTION_INFO_V1(sm_commission_plan_check);
PG_FUNCTION_INFO_V1(sm_commission_plan_rates_check);
PG_FUNCTION_INFO_V1(sm_commission_ledger_guard);

/* ----------------------------------------------------------------------
 * Triggers
 * ----------------------------------------------------------------------
 */

static TriggerData *
cm_trigger_data(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" was not called by trigger manager", name)));
	return (TriggerData *) fcinfo->context;
}

static Datum
cm_tuple_get(TriggerData *td, HeapTuple tuple, const char *col, bool *isnull)
{
	TupleDesc	desc = td->tg_relation->rd_att;
	int			attno = SPI_fnumber(desc, col);

	if (attno <= 0)
		elog(ERROR, "column \"%s\" of \"%s\" not found", col,
			 RelationGetRelationName(td->tg_relation));
	return heap_getattr(tuple, attno, desc, isnull);
}

/* is column col (of a varlena type) the same in both tuples? */
static bool
cm_tuple_same(TriggerData *td, HeapTuple a, HeapTuple b, const char *col)
{
	bool		na,
				nb;
	Datum		da = cm_tuple_get(td, a, col, &na);
	Datum		db = cm_tuple_get(td, b, col, &nb);

	if (na || nb)
		return na == nb;
	return datumIsEqual(da, db, false, -1);
}

static int64
cm_tuple_int8(TriggerData *td, HeapTuple tuple, const char *col)
{
	bool		isnull;
	Datum		d = cm_tuple_get(td, tuple, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

static DateADT
cm_tuple_date(TriggerData *td, HeapTuple tuple, const char *col, DateADT if_null)
{
	bool		isnull;
	Datum		d = cm_tuple_get(td, tuple, col, &isnull);

	return isnull ? if_null : DatumGetDateADT(d);
}

/*
 * The finalized commission period that the days [from, to] touch, if any.
 * Takes SHARE on commission_period first, so that a finalization in
 * progress is waited for, and reads with the latest snapshot, so that one
 * committed meanwhile is seen.  SPI must be connected.
 */
static bool
cm_finalized_period_in(DateADT from, DateADT to, DateADT *pstart, DateADT *pend)
{
	Oid			types[2] = {DATEOID, DATEOID};
	Datum		values[2] = {DateADTGetDatum(from), DateADTGetDatum(to)};
	SPITupleTable *tt;
	uint64		n;
	bool		isnull;

	LockRelationOid(sm_relation_oid("commission_period"), ShareLock);
	tt = sm_spi_query_latest("SELECT period_start, period_end FROM salesmgmt.commission_period"
							 " WHERE status = 'final' AND period_start <= $2 AND period_end >= $1"
							 " ORDER BY period_start LIMIT 1",
							 2, types, values, NULL, &n);
	if (n == 0)
		return false;
	*pstart = DatumGetDateADT(sm_spi_col(tt, 0, 1, &isnull));
	*pend = DatumGetDateADT(sm_spi_col(tt, 0, 2, &isnull));
	return true;
}

char *
cm_range_str(DateADT from, DateADT to)
{
	return psprintf("%s to %s", cm_date_str(from),
					DATE_IS_NOEND(to) ? "open end" : cm_date_str(to));
}

/*
 * Tiers: the constraint trigger checks, at commit, the whole plan the row
 * belongs to, under a row lock on the plan so that two transactions adding
 * tiers to the same plan are checked one after the other.
 */
static void
cm_check_plan_tiers(int64 plan_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(plan_id)};
	SPITupleTable *tt;
	uint64		n,
				i;
	Numeric    *from,
			   *to;

	sm_spi_query("SELECT 1 FROM salesmgmt.commission_plan WHERE plan_id = $1 FOR NO KEY UPDATE",
				 1, types, values, NULL, false, SPI_OK_SELECT, &n);
	if (n == 0)
		return;					/* the plan is being deleted with its tiers */
	tt = sm_spi_query_latest("SELECT attainment_from, attainment_to FROM salesmgmt.commission_tier"
							 " WHERE plan_id = $1 ORDER BY attainment_from, tier_id",
							 1, types, values, NULL, &n);
	from = palloc(sizeof(Numeric) * Max(n, 1));
	to = palloc(sizeof(Numeric) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		from[i] = sm_spi_numeric(tt->vals[i], tt->tupdesc, 1);
		to[i] = sm_spi_numeric(tt->vals[i], tt->tupdesc, 2);
	}
	cm_validate_tiers(plan_id, (int) n, from, to);
}

Datum
sm_commission_tier_check(PG_FUNCTION_ARGS)
{
	TriggerData *td = cm_trigger_data(fcinfo, "commission_tier_check");
	int64		new_plan = 0,
				old_plan = 0;

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		new_plan = cm_tuple_int8(td, TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple,
								 "plan_id");
	if (TRIGGER_FIRED_BY_DELETE(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		old_plan = cm_tuple_int8(td, td->tg_trigtuple, "plan_id");

	SPI_connect();
	if (new_plan != 0)
		cm_check_plan_tiers(new_plan);
	if (old_plan != 0 && old_plan != new_plan)
		cm_check_plan_tiers(old_plan);
	SPI_finish();
	return PointerGetDatum(NULL);
}

typedef struct CmAssignRow
{
	int64		id;
	int64		rep_id;
	int64		plan_id;
	DateADT		from;
	DateADT		to;				/* DATEVAL_NOEND while it lasts */
} CmAssignRow;

static CmAssignRow
cm_assign_row(TriggerData *td, HeapTuple tuple)
{
	CmAssignRow r;

	r.id = cm_tuple_int8(td, tuple, "assignment_id");
	r.rep_id = cm_tuple_int8(td, tuple, "rep_id");
	r.plan_id = cm_tuple_int8(td, tuple, "plan_id");
	r.from = cm_tuple_date(td, tuple, "valid_from", DATEVAL_NOBEGIN);
	r.to = cm_tuple_date(td, tuple, "valid_to", DATEVAL_NOEND);
	return r;
}

static void
cm_assignment_not_finalized(CmAssignRow *r, DateADT from, DateADT to)
{
	DateADT		ps,
				pe;

	if (from > to)
		return;
	if (cm_finalized_period_in(from, to, &ps, &pe))
		ereport(ERROR,
				(errcode(ERRCODE_SM_PERIOD_FINALIZED),
				 errmsg("assignment of rep " INT64_FORMAT " to plan " INT64_FORMAT " touches the finalized commission period %s",
						r->rep_id, r->plan_id, cm_range_str(ps, pe)),
				 errdetail("The change affects the days %s.", cm_range_str(from, to)),
				 errhint("Finalized periods never change: change the assignment only from %s on; corrections go into the open period.",
						 cm_date_str(pe + 1))));
}

/*
 * Assignments of a rep must not overlap.  Without btree_gist there is no
 * exclusion constraint, so the check locks the rep's row (FOR NO KEY
 * UPDATE: concurrent assignment changes of the same rep queue up, foreign
 * key checks on the rep do not) and reads with the latest snapshot, which
 * sees an assignment a concurrent transaction committed meanwhile.
 */
Datum
sm_commission_assignment_check(PG_FUNCTION_ARGS)
{
	TriggerData *td = cm_trigger_data(fcinfo, "commission_assignment_check");
	bool		has_new = !TRIGGER_FIRED_BY_DELETE(td->tg_event);
	bool		has_old = !TRIGGER_FIRED_BY_INSERT(td->tg_event);
	CmAssignRow nr = {0},
				orow = {0};

	if (has_new)
		nr = cm_assign_row(td, TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);
	if (has_old)
		orow = cm_assign_row(td, td->tg_trigtuple);

	SPI_connect();
	if (has_new)
	{
		Oid			types[4] = {INT8OID, INT8OID, DATEOID, DATEOID};
		Datum		values[4] = {Int64GetDatum(nr.rep_id), Int64GetDatum(nr.id),
		DateADTGetDatum(nr.from), DateADTGetDatum(nr.to)};
		SPITupleTable *tt;
		uint64		n;

		sm_spi_query("SELECT 1 FROM salesmgmt.rep WHERE rep_id = $1 FOR NO KEY UPDATE",
					 1, types, values, NULL, false, SPI_OK_SELECT, &n);
		tt = sm_spi_query_latest("SELECT assignment_id, plan_id, valid_from, coalesce(valid_to, 'infinity')"
								 "  FROM salesmgmt.commission_assignment"
								 " WHERE rep_id = $1 AND assignment_id <> $2"
								 "   AND valid_from <= $4 AND coalesce(valid_to, 'infinity') >= $3"
								 " ORDER BY valid_from LIMIT 1",
								 4, types, values, NULL, &n);
		if (n > 0)
		{
			bool		isnull;

			ereport(ERROR,
					(errcode(ERRCODE_EXCLUSION_VIOLATION),
					 errmsg("commission assignments of rep " INT64_FORMAT " overlap", nr.rep_id),
					 errdetail("Plan " INT64_FORMAT " from %s overlaps plan " INT64_FORMAT " from %s.",
							   nr.plan_id, cm_range_str(nr.from, nr.to),
							   sm_spi_int64(tt->vals[0], tt->tupdesc, 2, 0),
							   cm_range_str(DatumGetDateADT(sm_spi_col(tt, 0, 3, &isnull)),
											DatumGetDateADT(sm_spi_col(tt, 0, 4, &isnull)))),
					 errhint("A rep is paid on one plan at a time: end the other assignment (valid_to) the day before this one starts.")));
		}
	}

	/* the days whose plan changes must not lie in a finalized period */
	if (!has_old)
		cm_assignment_not_finalized(&nr, nr.from, nr.to);
	else if (!has_new)
		cm_assignment_not_finalized(&orow, orow.from, orow.to);
	else if (nr.rep_id != orow.rep_id || nr.plan_id != orow.plan_id ||
			 nr.to < orow.from || orow.to < nr.from)
	{
		cm_assignment_not_finalized(&orow, orow.from, orow.to);
		cm_assignment_not_finalized(&nr, nr.from, nr.to);
	}
	else
	{
		/* same rep and plan, overlapping ranges: only the difference */
		if (nr.from != orow.from)
			cm_assignment_not_finalized(&nr, Min(nr.from, orow.from), Max(nr.from, orow.from) - 1);
		if (nr.to != orow.to)
			cm_assignment_not_finalized(&nr, Min(nr.to, orow.to) + 1, Max(nr.to, orow.to));
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* A draw is settled by the run containing its last day. */
Datum
sm_commission_draw_check(PG_FUNCTION_ARGS)
{
	TriggerData *td = cm_trigger_data(fcinfo, "commission_draw_check");
	HeapTuple	tuples[2];
	int			ntuples = 0,
				i;

	if (!TRIGGER_FIRED_BY_INSERT(td->tg_event))
		tuples[ntuples++] = td->tg_trigtuple;
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		tuples[ntuples++] = td->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		tuples[ntuples++] = td->tg_newtuple;

	SPI_connect();
	for (i = 0; i < ntuples; i++)
	{
		DateADT		day = cm_tuple_date(td, tuples[i], "period_end", DATEVAL_NOEND);
		DateADT		ps,
					pe;

		if (cm_finalized_period_in(day, day, &ps, &pe))
			ereport(ERROR,
					(errcode(ERRCODE_SM_PERIOD_FINALIZED),
					 errmsg("draw of rep " INT64_FORMAT " is settled in the finalized commission period %s",
							cm_tuple_int8(td, tuples[i], "rep_id"), cm_range_str(ps, pe)),
					 errdetail("A draw is settled by the commission period that contains its period_end, %s.",
							   cm_date_str(day)),
					 errhint("Finalized periods never change: give the draw a period that ends in an open period.")));
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* is any final commission line about this plan (or SPIFF)?  Connects SPI. */
static bool
cm_final_lines_exist(const char *column, int64 id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};
	uint64		n;
	char	   *sql = psprintf("SELECT 1 FROM salesmgmt.commission_line"
							   " WHERE %s = $1 AND status = 'final' LIMIT 1",
							   quote_identifier(column));

	SPI_connect();
	sm_spi_query(sql, 1, types, values, NULL, false, SPI_OK_SELECT, &n);
	SPI_finish();
	return n > 0;
}

/*
 * A SPIFF condition is a condition of the rule language (rules.c,
 * docs/rules.md) on the deal's columns: compiling it against
 * salesmgmt.deal refuses a key that is no column, an unknown operator or
 * an operand of the wrong type (22023), else a typo would silently never
 * match.  A SPIFF that final lines paid stays.
 */
void
cm_validate_spiff_condition(Jsonb *cond)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	/*
	 * The product keys at the top level: one value or an array of them (a
	 * condition that is not an object has none, and rules.c refuses it).
	 */
	it = JsonbIteratorInit(&cond->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE && cm_spiff_product_column(key) != NULL &&
				 (v.type == jbvBinary ? !JsonContainerIsArray(v.val.binary.data)
				  : (v.type != jbvString && v.type != jbvNumeric)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("SPIFF condition on \"%s\" must be a string, a number or an array of them", key),
					 errhint("For example {\"product_family\": \"Analytics\"} or {\"product_sku\": [\"AN-1\", \"AN-2\"]}: a deal with a line of any of them qualifies.")));
	}
	/* the rest is a condition of the rule language on the deal */
	sm_rule_compile(cm_spiff_without_products(cond), sm_relation_oid("deal"), "SPIFF condition");
}

/*
 * The product column a SPIFF condition key names (a deal qualifies when it
 * has a line of such a product), or NULL for a deal column.
 */
const char *
cm_spiff_product_column(const char *key)
{
	if (strcmp(key, "product_family") == 0)
		return "family";
	if (strcmp(key, "product_sku") == 0)
		return "sku";
	if (strcmp(key, "product_id") == 0)
		return "product_id";
	return NULL;
}

Datum
sm_commission_spiff_check(PG_FUNCTION_ARGS)
{
	TriggerData *td = cm_trigger_data(fcinfo, "commission_spiff_check");

	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		int64		spiff_id = cm_tuple_int8(td, td->tg_trigtuple, "spiff_id");

		if (cm_final_lines_exist("spiff_id", spiff_id))
			ereport(ERROR,
					(errcode(ERRCODE_SM_PERIOD_FINALIZED),
					 errmsg("SPIFF " INT64_FORMAT " was paid in a finalized commission period", spiff_id),
					 errhint("End it instead: set valid_to.")));
		return PointerGetDatum(td->tg_trigtuple);
	}
	else
	{
		HeapTuple	tuple = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
		bool		isnull;
		Datum		cond = cm_tuple_get(td, tuple, "condition", &isnull);

		if (!isnull)
			cm_validate_spiff_condition(DatumGetJsonbP(cond));
		return PointerGetDatum(tuple);
	}
}

/*
 * The basis, period, credit measure and family weights of a plan decide
 * which events its final lines credited, what, and how corrections are
 * matched to them: they cannot change once the plan paid final lines.
 * Rates, tiers and caps may change; they apply to periods run afterwards.
 */
Datum
sm_commission_plan_check(PG_FUNCTION_ARGS)
{
	TriggerData *td = cm_trigger_data(fcinfo, "commission_plan_check");
	HeapTuple	oldt = td->tg_trigtuple;
	HeapTuple	newt = td->tg_newtuple;
	bool		n1,
				n2;

	if (!TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		return PointerGetDatum(oldt);
	if (cm_tuple_int8(td, oldt, "plan_id") != cm_tuple_int8(td, newt, "plan_id") ||
		!datumIsEqual(cm_tuple_get(td, oldt, "basis", &n1), cm_tuple_get(td, newt, "basis", &n2), false, -1) ||
		!datumIsEqual(cm_tuple_get(td, oldt, "period", &n1), cm_tuple_get(td, newt, "period", &n2), false, -1))
	{
		int64		plan_id = cm_tuple_int8(td, oldt, "plan_id");

		if (cm_final_lines_exist("plan_id", plan_id))
			ereport(ERROR,
					(errcode(ERRCODE_SM_PERIOD_FINALIZED),
					 errmsg("basis and period of commission plan " INT64_FORMAT " cannot change: it paid final commission lines",
							plan_id),
					 errhint("Create a new plan and assign reps to it from the next open period.")));
	}
	/* the measure and the family weights decide the credit of final lines
	 * as much (corrections would re-rate them); a database still at 0.1.0
	 * has neither */
	if (sm_sql_is_current() &&
		(!cm_tuple_same(td, oldt, newt, "credit_measure") || !cm_tuple_same(td, oldt, newt, "family_weights")) &&
		cm_final_lines_exist("plan_id", cm_tuple_int8(td, oldt, "plan_id")))
		ereport(ERROR,
				(errcode(ERRCODE_SM_PERIOD_FINALIZED),
				 errmsg("credit measure and family weights of commission plan " INT64_FORMAT " cannot change: it paid final commission lines",
						cm_tuple_int8(td, oldt, "plan_id")),
				 errhint("Create a new plan with them and assign reps to it from the next open period.")));
	return PointerGetDatum(newt);
}

/*
 * family_rates of a plan: an object of product families, each with a rate
 * or a tier table of the plan's shape (22023 with a hint otherwise).  Both
 * family_rates and family_weights may be set: the weights decide a
 * family's credit (and so attainment), the rates what that credit earns.
 * Changing them is like changing tiers: allowed, for periods run later.
 */
Datum
sm_commission_plan_rates_check(PG_FUNCTION_ARGS)
{
	TriggerData *td = cm_trigger_data(fcinfo, "commission_plan_rates_check");
	HeapTuple	tuple = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	bool		isnull;
	Datum		rates = cm_tuple_get(td, tuple, "family_rates", &isnull);

	if (!isnull)
		cm_validate_family_rates(DatumGetJsonbP(rates));
	return PointerGetDatum(tuple);
}

/*
 * The ledger's tables, commission_line and commission_period: rows of a
 * finalized period never change (SM010), and the others change only
 * through run_commissions, finalize_commissions and discard_commissions.
 * INSERT is not guarded: pg_restore loads the ledger with COPY.
 */
Datum
sm_commission_ledger_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = cm_trigger_data(fcinfo, "commission_ledger_guard");
	const char *relname = RelationGetRelationName(td->tg_relation);
	bool		is_line = strcmp(relname, "commission_line") == 0;
	bool		isnull;

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		uint64		n;

		SPI_connect();
		sm_spi_query(psprintf("SELECT 1 FROM salesmgmt.%s WHERE status = 'final' LIMIT 1",
							  quote_identifier(relname)),
					 0, NULL, NULL, NULL, false, SPI_OK_SELECT, &n);
		SPI_finish();
		if (n > 0)
			ereport(ERROR,
					(errcode(ERRCODE_SM_PERIOD_FINALIZED),
					 errmsg("salesmgmt.%s holds rows of finalized periods and cannot be truncated", relname),
					 errhint("Finalized periods are kept for good; forget open ones with salesmgmt.discard_commissions.")));
		return PointerGetDatum(NULL);
	}

	if (strcmp(TextDatumGetCString(cm_tuple_get(td, td->tg_trigtuple, "status", &isnull)), "final") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SM_PERIOD_FINALIZED),
				 is_line ?
				 errmsg("commission line " INT64_FORMAT " is final",
						cm_tuple_int8(td, td->tg_trigtuple, "line_id")) :
				 errmsg("commission period %s is finalized",
						cm_range_str(cm_tuple_date(td, td->tg_trigtuple, "period_start", 0),
									 cm_tuple_date(td, td->tg_trigtuple, "period_end", 0))),
				 errdetail("Finalized periods and their lines are never updated or deleted."),
				 errhint("Corrections go into the open period: change the deal, split or payment and run that period; it adds adjustment or clawback lines.")));
	if (!cm_engine_active)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("commission %s are maintained by salesmgmt.run_commissions, finalize_commissions and discard_commissions",
						is_line ? "lines" : "periods"),
				 errhint("Change plans, deals or splits and run the period again, or forget it with salesmgmt.discard_commissions.")));
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);
}


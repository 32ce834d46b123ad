/*-------------------------------------------------------------------------
 *
 * org_deal_owner.c
 *	  The deal's owner carried on the rows that hang off deals.
 *
 * payment and activity carry deal_owner_rep_id, a copy of their deal's
 * owner_rep_id, so that their row-level security policies decide from the
 * row itself (salesmgmt.deal_visible(deal_id, deal_owner_rep_id): the
 * owner is visible, or a credit split shares the deal) instead of looking
 * the deal's owner up per row.  Three triggers keep the copy exact:
 *
 *	  - sm_deal_owner_copy, BEFORE INSERT OR UPDATE of a child row (its
 *		deal or the copy changed): reads the deal's owner FOR KEY SHARE, the
 *		lock the foreign key takes anyway (a child does not hold up a stage
 *		move of its deal, nor wait for one).
 *	  - sm_deal_owner_lock, BEFORE UPDATE of a deal whose owner changes:
 *		locks the deal FOR UPDATE, which conflicts with FOR KEY SHARE.  A
 *		reassignment therefore waits for the children being written, and a
 *		child written during a reassignment waits for it and then reads the
 *		new owner (READ COMMITTED; REPEATABLE READ gets a serialization
 *		failure).
 *	  - sm_deal_owner_cascade, AFTER UPDATE of a deal whose owner changed:
 *		the deal's payments and activities follow in the same transaction,
 *		on the newest snapshot (children committed while the reassignment
 *		waited are among them, whatever the isolation level), so every
 *		snapshot sees children that agree with their deal.
 *
 * Both run as the table's owner: the caller's own policies and column
 * privileges must not hide the deal or the children.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "core_spi.h"
#include "org_internal.h"
#include "salesmgmt.h"

/* the tables that carry the copy, and their statements */
#define DEAL_OWNER_CHILDREN 2
static const char *const deal_owner_updates[DEAL_OWNER_CHILDREN] = {
	"UPDATE salesmgmt.payment SET deal_owner_rep_id = $2"
	" WHERE deal_id OPERATOR(pg_catalog.=) $1 AND deal_owner_rep_id IS DISTINCT FROM $2",
	"UPDATE salesmgmt.activity SET deal_owner_rep_id = $2"
	" WHERE deal_id OPERATOR(pg_catalog.=) $1 AND deal_owner_rep_id IS DISTINCT FROM $2",
};

/*
 * The deal whose children the cascade is updating right now, and its new
 * owner: a child of that deal that carries that owner has nothing to look
 * up (the cascade holds the deal's row lock).  An error ends the cascade
 * and clears it.
 */
static bool deal_owner_cascading = false;
static int64 deal_owner_cascading_deal;
static int64 deal_owner_cascading_owner;

typedef struct DealOwnerAs
{
	Oid			save_user;
	int			save_sec;
} DealOwnerAs;

/* connect to SPI as the owner of the trigger's table */
static void
deal_owner_begin(DealOwnerAs *as, Relation rel)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&as->save_user, &as->save_sec);
	SetUserIdAndSecContext(rel->rd_rel->relowner,
						   as->save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
}

static void
deal_owner_end(DealOwnerAs *as)
{
	SetUserIdAndSecContext(as->save_user, as->save_sec);
	SPI_finish();
}

static TriggerData *
deal_owner_trigger(FunctionCallInfo fcinfo, const char *name, bool before)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		TRIGGER_FIRED_BEFORE(td->tg_event) != before ||
		!(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s() must be fired %s INSERT or UPDATE for each row", name,
						before ? "BEFORE" : "AFTER")));
	return td;
}

static int
deal_owner_column(Relation rel, const char *column)
{
	int			col = SPI_fnumber(RelationGetDescr(rel), column);

	if (col <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table \"%s\" has no column \"%s\"", RelationGetRelationName(rel), column),
				 errhint("The deal owner triggers belong on tables with deal_id and deal_owner_rep_id.")));
	return col;
}

/*
 * BEFORE INSERT OR UPDATE of payment, activity: deal_owner_rep_id := the
 * owner of the row's deal (null without a deal; a deal that does not
 * exist is left to the foreign key to refuse).
 */
PG_FUNCTION_INFO_V1(sm_deal_owner_copy);
Datum
sm_deal_owner_copy(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	TriggerData *td = deal_owner_trigger(fcinfo, "salesmgmt._deal_owner_copy", true);
	Relation	rel = td->tg_relation;
	HeapTuple	tup = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	int			deal_col = deal_owner_column(rel, "deal_id");
	int			owner_col = deal_owner_column(rel, "deal_owner_rep_id");
	bool		isnull;
	Datum		deal = heap_getattr(tup, deal_col, RelationGetDescr(rel), &isnull);
	Datum		owner = (Datum) 0;
	bool		owner_null = true;

	if (!isnull && deal_owner_cascading && DatumGetInt64(deal) == deal_owner_cascading_deal)
	{
		bool		carried_null;
		Datum		carried = heap_getattr(tup, owner_col, RelationGetDescr(rel), &carried_null);

		if (!carried_null && DatumGetInt64(carried) == deal_owner_cascading_owner)
			return PointerGetDatum(tup);
	}
	if (!isnull)
	{
		DealOwnerAs as;
		Oid			type = INT8OID;
		int			rc;

		deal_owner_begin(&as, rel);
		if (plan == NULL)
			plan = sm_spi_prepare_kept("SELECT owner_rep_id FROM salesmgmt.deal"
									   " WHERE deal_id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE", 1, &type);
		rc = SPI_execute_plan(plan, &deal, NULL, false, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "deal owner look-up failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 1)
			owner = Int64GetDatum(sm_spi_int64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, 0));
		owner_null = SPI_processed != 1;
		deal_owner_end(&as);
	}
	return PointerGetDatum(heap_modify_tuple_by_cols(tup, RelationGetDescr(rel), 1, &owner_col,
													 &owner, &owner_null));
}

/*
 * BEFORE UPDATE of deal (owner changes): lock the deal FOR UPDATE, so that
 * children being written (FOR KEY SHARE) finish first and children written
 * from now on wait for the new owner.
 */
PG_FUNCTION_INFO_V1(sm_deal_owner_lock);
Datum
sm_deal_owner_lock(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	TriggerData *td = deal_owner_trigger(fcinfo, "salesmgmt._deal_owner_lock", true);
	Relation	rel = td->tg_relation;
	Oid			type = INT8OID;
	bool		isnull;
	Datum		deal;
	DealOwnerAs as;

	if (!TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("salesmgmt._deal_owner_lock() must be fired BEFORE UPDATE for each row")));
	deal = heap_getattr(td->tg_trigtuple, deal_owner_column(rel, "deal_id"), RelationGetDescr(rel), &isnull);
	if (!isnull)
	{
		deal_owner_begin(&as, rel);
		if (plan == NULL)
			plan = sm_spi_prepare_kept("SELECT 1 FROM salesmgmt.deal"
									   " WHERE deal_id OPERATOR(pg_catalog.=) $1 FOR UPDATE", 1, &type);
		if (SPI_execute_plan(plan, &deal, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "deal owner lock failed");
		deal_owner_end(&as);
	}
	return PointerGetDatum(td->tg_newtuple);
}

/*
 * AFTER UPDATE of deal (owner changed): its payments and activities take
 * the new owner.
 */
PG_FUNCTION_INFO_V1(sm_deal_owner_cascade);
Datum
sm_deal_owner_cascade(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plans[DEAL_OWNER_CHILDREN];
	TriggerData *td = deal_owner_trigger(fcinfo, "salesmgmt._deal_owner_cascade", false);
	Relation	rel = td->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	bool		isnull;
	DealOwnerAs as;

	args[0] = heap_getattr(td->tg_newtuple, deal_owner_column(rel, "deal_id"), desc, &isnull);
	args[1] = heap_getattr(td->tg_newtuple, deal_owner_column(rel, "owner_rep_id"), desc, &isnull);
	if (isnull)
		nulls[1] = 'n';
	deal_owner_begin(&as, rel);
	PG_TRY();
	{
		deal_owner_cascading = nulls[1] != 'n';
		deal_owner_cascading_deal = DatumGetInt64(args[0]);
		deal_owner_cascading_owner = DatumGetInt64(args[1]);
		for (int i = 0; i < DEAL_OWNER_CHILDREN; i++)
		{
			int			rc;

			if (plans[i] == NULL)
				plans[i] = sm_spi_prepare_kept(deal_owner_updates[i], 2, types);
			rc = SPI_execute_snapshot(plans[i], args, nulls, GetLatestSnapshot(), InvalidSnapshot,
									  false, false, 0);
			if (rc != SPI_OK_UPDATE)
				elog(ERROR, "deal owner cascade failed: %s", SPI_result_code_string(rc));
		}
	}
	PG_FINALLY();
	{
		deal_owner_cascading = false;
	}
	PG_END_TRY();
	deal_owner_end(&as);
	return PointerGetDatum(NULL);
}

/*
 * The read policy of activity in one call per row: done by a visible rep,
 * about a deal the role sees (on the carried owner), or, not about a deal,
 * with an account a visible rep owns.  The same as
 *	 rep_visible(rep_id) OR deal_visible(deal_id, deal_owner_rep_id)
 *	 OR (deal_id IS NULL AND account_changeable(account_id))
 * (a null argument makes its term false, as the STRICT predicates' null
 * does in a policy), tried in that order, but one function call where the
 * expression made three for each row it does not show: a scan's cost is
 * mostly calls.  The role's view is looked up once for the row, not once
 * per term.  Not STRICT: nulls are part of the answer.
 */
PG_FUNCTION_INFO_V1(sm_activity_visible);
Datum
sm_activity_visible(PG_FUNCTION_ARGS)
{
	RoleView   *v = sm_org_view(GetUserId());
	bool		admin = v->access == SM_ACCESS_ADMIN;

	if (!PG_ARGISNULL(0) && (admin || idset_has(v->reps, PG_GETARG_INT64(0))))
		PG_RETURN_BOOL(true);
	if (!PG_ARGISNULL(1))
		PG_RETURN_BOOL(!PG_ARGISNULL(2) &&
					   (admin || idset_has(v->reps, PG_GETARG_INT64(2)) ||
						(v->access != SM_ACCESS_NONE && sm_org_view_split(v, PG_GETARG_INT64(1)))));
	PG_RETURN_BOOL(!PG_ARGISNULL(3) && sm_org_view_account(v, true, PG_GETARG_INT64(3)));
}

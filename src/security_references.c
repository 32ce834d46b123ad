/*-------------------------------------------------------------------------
 *
 * security_references.c
 *	  The rows a rep or manager refers to in activities and sales tasks
 *	  (salesmgmt._check_references(), see src/security_references.sql).
 *
 * Foreign keys check that a referenced row exists, as the table's owner and
 * whatever the writer may see; row-level security checks the new row's own
 * columns.  Neither stops a rep from filing an activity under a colleague's
 * deal or pairing a deal with another customer's account.  This trigger
 * reads each referenced deal, account and contact as the writer, under the
 * writer's own row-level security (it runs with the caller's rights, as
 * every C function not declared SECURITY DEFINER), so "visible" means
 * exactly what the read policies say.  A row the writer cannot see and a row
 * that does not exist get the same error: the check reveals nothing.  Then
 * the references must agree: the deal's account and the contact's account
 * are the row's account.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/rel.h"

#include "salesmgmt.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_check_references);

/* the references checked; a table has some of these columns */
typedef enum RefKind
{
	REF_DEAL,
	REF_ACCOUNT,
	REF_CONTACT,
	REF_LEAD,
	NUM_REFS
} RefKind;

typedef struct RefInfo
{
	const char *column;
	const char *name;			/* "deal" */
	const char *noun;			/* "a deal" */
	const char *hint;
	const char *sql;			/* $1: the id; returns the row's account or
								 * null */
} RefInfo;

static const RefInfo refs[NUM_REFS] = {
	{"deal_id", "deal", "a deal",
		"Refer only to deals you own, your team's, or deals shared with you by a credit split.",
	"SELECT d.account_id FROM salesmgmt.deal d WHERE d.deal_id = $1"},
	{"account_id", "account", "an account",
		"Refer only to accounts you (or your team) own, or the accounts of deals you see.",
	"SELECT a.account_id FROM salesmgmt.account a WHERE a.account_id = $1"},
	{"contact_id", "contact", "a contact",
		"Refer only to contacts of accounts you see.",
	"SELECT c.account_id FROM salesmgmt.contact c WHERE c.contact_id = $1"},
	/* prepared only for a table that has lead_id (the leads concern) */
	{"lead_id", "lead", "a lead",
		"Refer only to leads assigned to you (or your team).",
	"SELECT NULL::bigint FROM salesmgmt.lead l WHERE l.lead_id = $1"},
};

/* kept for the backend's life; the plan cache replans for another role */
static SPIPlanPtr ref_plans[NUM_REFS];

/*
 * The account of the referenced row as the writer sees it; false when the
 * writer does not see the row (or it does not exist).
 */
static bool
visible_account(RefKind kind, int64 id, int64 *account)
{
	Datum		arg = Int64GetDatum(id);
	Datum		d;
	bool		isnull;
	int			rc;

	if (ref_plans[kind] == NULL)
	{
		Oid			argtype = INT8OID;
		SPIPlanPtr	p = SPI_prepare(refs[kind].sql, 1, &argtype);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_keepplan failed");
		ref_plans[kind] = p;
	}
	rc = SPI_execute_plan(ref_plans[kind], &arg, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the referenced %s failed: %s", refs[kind].column,
			 SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return false;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*account = isnull ? 0 : DatumGetInt64(d);
	return true;
}

/*
 * The reference columns of a row: attnum (0 when the table has none), and
 * the id when not null.
 */
static void
read_refs(HeapTuple tuple, TupleDesc desc, int *attnums, int64 *ids, bool *present)
{
	int			k;

	for (k = 0; k < NUM_REFS; k++)
	{
		bool		isnull = true;

		attnums[k] = SPI_fnumber(desc, refs[k].column);
		if (attnums[k] > 0)
		{
			Datum		d = heap_getattr(tuple, attnums[k], desc, &isnull);

			if (!isnull)
				ids[k] = DatumGetInt64(d);
		}
		else
			attnums[k] = 0;
		present[k] = !isnull;
	}
}

/*
 * BEFORE INSERT OR UPDATE row trigger on a table with some of deal_id,
 * account_id, contact_id and lead_id.  An UPDATE is checked only when it
 * changes one of them (so a note on an activity whose deal has since gone
 * to another rep can still be edited), whatever columns it names.  Admins
 * (and superusers) are not checked: imports and corrections; the
 * triggers' WHEN clause spares them the call.
 */
Datum
sm_check_references(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	HeapTuple	tuple;
	TupleDesc	desc;
	Oid			admin;
	int64		ids[NUM_REFS];
	bool		present[NUM_REFS];
	int64		accounts[NUM_REFS];
	int			attnums[NUM_REFS];
	int			k;

	sm_require_before_row_trigger(fcinfo, "salesmgmt._check_references()");
	rel = trigdata->tg_relation;
	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;

	admin = get_role_oid("salesmgmt_admin", true);
	if (OidIsValid(admin) && has_privs_of_role(GetUserId(), admin))
		return PointerGetDatum(tuple);

	desc = RelationGetDescr(rel);
	read_refs(tuple, desc, attnums, ids, present);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		int			old_attnums[NUM_REFS];
		int64		old_ids[NUM_REFS];
		bool		old_present[NUM_REFS];
		bool		changed = false;

		read_refs(trigdata->tg_trigtuple, desc, old_attnums, old_ids, old_present);
		for (k = 0; k < NUM_REFS; k++)
			if (present[k] != old_present[k] || (present[k] && ids[k] != old_ids[k]))
				changed = true;
		if (!changed)
			return PointerGetDatum(tuple);
	}

	/* visible, as the writer */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (k = 0; k < NUM_REFS; k++)
	{
		if (present[k] && !visible_account((RefKind) k, ids[k], &accounts[k]))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("%s refers to %s " INT64_FORMAT ", which is not %s you can see",
							RelationGetRelationName(rel), refs[k].name,
							ids[k], refs[k].noun),
					 errhint("%s", refs[k].hint),
					 errtablecol(rel, attnums[k])));
	}
	SPI_finish();

	/* one customer per row */
	if (present[REF_DEAL] && present[REF_ACCOUNT] && accounts[REF_DEAL] != ids[REF_ACCOUNT])
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("%s refers to deal " INT64_FORMAT " and account " INT64_FORMAT
						", but the deal is with account " INT64_FORMAT,
						RelationGetRelationName(rel), ids[REF_DEAL], ids[REF_ACCOUNT],
						accounts[REF_DEAL]),
				 errhint("Use the deal's own account, or leave deal_id null."),
				 errtable(rel)));
	if (present[REF_CONTACT] && (present[REF_ACCOUNT] || present[REF_DEAL]))
	{
		int64		account = present[REF_ACCOUNT] ? ids[REF_ACCOUNT] : accounts[REF_DEAL];

		if (accounts[REF_CONTACT] != account)
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("%s refers to contact " INT64_FORMAT " of account " INT64_FORMAT
							", but to account " INT64_FORMAT,
							RelationGetRelationName(rel), ids[REF_CONTACT],
							accounts[REF_CONTACT], account),
					 errhint("Use a contact of the row's account, or leave contact_id null."),
					 errtable(rel)));
	}
	return PointerGetDatum(tuple);
}

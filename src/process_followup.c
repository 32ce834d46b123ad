/*-------------------------------------------------------------------------
 *
 * process_followup.c
 *	  salesmgmt._follow_up_quiet(p_rule, p_as_of): the items a follow-up
 *	  rule finds quiet as of a time (docs/process.md#follow-up-discipline),
 *	  the search that salesmgmt.run_follow_up_rules starts every rule with.
 *
 *	  One query per rule reads the rule's items (open deals, owned
 *	  accounts, owned open leads) with when each went quiet: for
 *	  no_activity the item's last activity comes from one grouped pass over
 *	  activity joined to the items (a hash join at scale), never one probe
 *	  per item; for overdue it is the due date.  Items quiet for less than
 *	  remind_after_days are left out by the query.  The rows come through a
 *	  cursor, a batch at a time; each is deformed once and the rule's
 *	  condition is tested on its values in C (rules.c, as lead scoring
 *	  does), without SQL per row and without building a composite datum per
 *	  row as rule_matches_row(condition, row) needs.  Row-level security
 *	  applies as to any query of the caller.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "rules.h"
#include "salesmgmt.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_follow_up_quiet);

#define FOLLOWUP_BATCH 10000

/* result columns of salesmgmt._follow_up_quiet, in order */
typedef enum FollowUpQuietCol
{
	FQ_SUBJECT_ID,
	FQ_OWNER_REP_ID,
	FQ_TITLE,
	FQ_ACCOUNT_ID,
	FQ_QUIET_SINCE,
	FQ_NCOLS
} FollowUpQuietCol;

static const char *const fq_col_names[FQ_NCOLS] = {
	"subject_id", "owner_rep_id", "title", "account_id", "quiet_since"
};

/* what the query of each subject reads */
typedef struct FollowUpSubject
{
	const char *subject;
	const char *from;			/* the items, aliased x */
	const char *id;				/* x's key, also activity's column */
	const char *title;
	const char *account;
	const char *where;			/* which items a rule considers */
	const char *since_quiet;	/* no_activity (la.last: last activity) */
	const char *since_due;		/* overdue */
} FollowUpSubject;

static const FollowUpSubject fq_subjects[] = {
	{"deal",
		"salesmgmt.deal x JOIN salesmgmt.stage s ON s.stage_id = x.stage_id AND s.outcome = 'open'",
		"deal_id", "x.name", "x.account_id", "true",
		"greatest(la.last, x.created_at)", "x.next_step_due::timestamptz"},
	{"lead", "salesmgmt.lead x",
		"lead_id", "x.name || coalesce(' (' || x.company || ')', '')", "NULL::bigint",
		"x.owner_rep_id IS NOT NULL AND x.status IN ('new', 'working', 'nurturing', 'qualified')",
		"greatest(la.last, x.assigned_at, x.created_at)", "x.next_follow_up::timestamptz"},
	{"account", "salesmgmt.account x",
		"account_id", "x.name", "x.account_id", "x.owner_rep_id IS NOT NULL",
		"greatest(la.last, x.created_at)", "x.next_follow_up::timestamptz"},
};

/* a column of the rule row that the table declares NOT NULL */
static Datum
fq_rule_attr(HeapTupleHeader rule, const char *name)
{
	bool		isnull;
	Datum		d = GetAttributeByName(rule, name, &isnull);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("follow-up rule has no %s", name),
				 errhint("Pass a row of salesmgmt.follow_up_rule.")));
	return d;
}

/*
 * The query of a subject and trigger: the item's columns (x.*, which the
 * condition is tested on) followed by the five result columns.
 * $1 = as-of time, $2 = remind_after_days.
 */
static char *
fq_query(const FollowUpSubject *s, bool no_activity)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfo(&q,
					 "SELECT x.*, x.%s AS sm_fq_id, x.owner_rep_id AS sm_fq_owner,"
					 " %s AS sm_fq_title, %s AS sm_fq_account, q.since AS sm_fq_since"
					 " FROM %s",
					 s->id, s->title, s->account, s->from);
	if (no_activity)
		appendStringInfo(&q,
						 " LEFT JOIN (SELECT a.%s AS id, max(a.occurred_at) AS last"
						 " FROM salesmgmt.activity a"
						 " WHERE a.%s IS NOT NULL AND a.occurred_at <= $1"
						 " GROUP BY a.%s) la ON la.id = x.%s",
						 s->id, s->id, s->id, s->id);
	appendStringInfo(&q,
					 " CROSS JOIN LATERAL (SELECT %s AS since) q"
					 " WHERE %s AND q.since IS NOT NULL"
					 " AND q.since <= $1 - pg_catalog.make_interval(days => $2)",
					 no_activity ? s->since_quiet : s->since_due, s->where);
	return q.data;
}

Datum
sm_follow_up_quiet(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HeapTupleHeader rule;
	const FollowUpSubject *subj = NULL;
	char	   *subject;
	char	   *trigger_on;
	Jsonb	   *cond;
	SmRule	   *compiled;
	bool		all;
	Datum		args[2];
	Oid			argtypes[2] = {TIMESTAMPTZOID, INT4OID};
	Portal		portal;
	MemoryContext rowcxt;
	Datum	   *vals = NULL;
	bool	   *nulls = NULL;

	InitMaterializedSRF(fcinfo, 0);
	sm_check_result_columns(rsinfo->setDesc, fq_col_names, FQ_NCOLS);
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("follow-up rule must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as-of time must not be null")));
	rule = PG_GETARG_HEAPTUPLEHEADER(0);
	args[0] = PG_GETARG_DATUM(1);

	subject = TextDatumGetCString(fq_rule_attr(rule, "subject"));
	trigger_on = TextDatumGetCString(fq_rule_attr(rule, "trigger_on"));
	args[1] = fq_rule_attr(rule, "remind_after_days");
	cond = DatumGetJsonbPCopy(fq_rule_attr(rule, "condition"));
	for (int i = 0; i < (int) lengthof(fq_subjects); i++)
		if (strcmp(fq_subjects[i].subject, subject) == 0)
			subj = &fq_subjects[i];
	if (subj == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("follow-up rule subject \"%s\" is not deal, account or lead", subject)));

	/* validated against the subject's table, as when the rule was written */
	compiled = sm_rule_compile(cond, sm_relation_oid(subj->subject), "follow-up rule condition");
	all = sm_rule_matches_all(compiled);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "follow-up rows", ALLOCSET_DEFAULT_SIZES);
	portal = SPI_cursor_open_with_args(NULL, fq_query(subj, strcmp(trigger_on, "overdue") != 0),
									   2, argtypes, args, NULL, true, 0);
	if (portal == NULL)
		elog(ERROR, "could not open the follow-up cursor: %s", SPI_result_code_string(SPI_result));
	for (;;)
	{
		SPITupleTable *tt;
		TupleDesc	desc;
		uint64		n;
		int			first;

		SPI_cursor_fetch(portal, true, FOLLOWUP_BATCH);
		tt = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;
		desc = tt->tupdesc;
		/* the five result columns follow the item's own */
		first = desc->natts - FQ_NCOLS;
		if (vals == NULL)
		{
			/* SPI's procedure context: gone at SPI_finish */
			vals = palloc(sizeof(Datum) * desc->natts);
			nulls = palloc(sizeof(bool) * desc->natts);
		}
		if (!all)
			sm_rule_bind(compiled, desc);
		for (uint64 i = 0; i < n; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(rowcxt);

			heap_deform_tuple(tt->vals[i], desc, vals, nulls);
			if (all || sm_rule_match_values(compiled, vals, nulls))
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
									 vals + first, nulls + first);
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
		}
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	return (Datum) 0;
}

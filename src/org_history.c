/*-------------------------------------------------------------------------
 *
 * org_history.c
 *	  The one loader of the team tree: today's, or as of a day from the
 *	  versions in salesmgmt.team_history and salesmgmt.rep_team_history.
 *	  Commissions (a manager's override goes to the manager of the event's
 *	  day), forecasts (p_as_of) and scorecards (past periods) read the
 *	  organisation through it; salesmgmt.org_as_of shows what they see.
 *
 * The version of a team or rep at a day is its first version that ends
 * after the day: the one holding the day, or, before the first version
 * or in a gap a back-fill left, the next one.  A team or rep without
 * versions keeps its row's values.  Versions are kept by the triggers of
 * src/org_history.sql, so the latest versions equal the rows, and a call
 * without a day reads only the rows (the state of the organisation
 * before versions existed).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/date.h"
#include "utils/timestamp.h"

#include "core_spi.h"
#include "org_history.h"
#include "salesmgmt.h"
#include "util.h"

static int
oh_cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

static int
oh_cmp_date(const void *a, const void *b)
{
	DateADT		x = *(const DateADT *) a;
	DateADT		y = *(const DateADT *) b;

	return (x > y) - (x < y);
}

DateADT
sm_org_day_of(TimestampTz ts)
{
	return DatumGetDateADT(DirectFunctionCall1(timestamptz_date, TimestampTzGetDatum(ts)));
}

/* binary search of an array of structs sorted by their leading int64 id */
static int
oh_find(const void *base, int n, size_t size, int64 id)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int64		key = *(const int64 *) ((const char *) base + size * mid);

		if (key == id)
			return mid;
		if (key < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

int
sm_org_tree_team(SmOrg *org, int64 team_id)
{
	return oh_find(org->teams, org->nteams, sizeof(SmOrgTeam), team_id);
}

int
sm_org_tree_rep(SmOrg *org, int64 rep_id)
{
	return oh_find(org->reps, org->nreps, sizeof(SmOrgRep), rep_id);
}

/*
 * The versions of one table (subject, a, b, from, to ordered by subject
 * and from), attached to the teams or reps they belong to.  Versions of
 * a subject that no longer exists (or that the caller does not see) are
 * skipped.
 */
static void
oh_load_versions(SmOrg *org, bool teams, bool read_only)
{
	SPITupleTable *tt;
	uint64		n,
				i;

	tt = sm_spi_query(teams
					  ? "SELECT h.team_id, h.parent_team_id, h.manager_rep_id, h.valid_from, h.valid_to"
					  "  FROM salesmgmt.team_history h ORDER BY h.team_id, h.valid_from"
					  : "SELECT h.rep_id, h.team_id, NULL::bigint, h.valid_from, h.valid_to"
					  "  FROM salesmgmt.rep_team_history h ORDER BY h.rep_id, h.valid_from",
					  0, NULL, NULL, NULL, read_only, SPI_OK_SELECT, &n);
	for (i = 0; i < n;)
	{
		int64		subject = sm_spi_int64(tt->vals[i], tt->tupdesc, 1, 0);
		int			idx = teams ? sm_org_tree_team(org, subject) : sm_org_tree_rep(org, subject);
		uint64		j = i;
		SmOrgVersion *v;
		int			k = 0;

		while (j < n && sm_spi_int64(tt->vals[j], tt->tupdesc, 1, 0) == subject)
			j++;
		if (idx >= 0)
		{
			v = palloc(sizeof(SmOrgVersion) * (j - i));
			for (; i < j; i++, k++)
			{
				bool		isnull;

				v[k].a = sm_spi_int64(tt->vals[i], tt->tupdesc, 2, 0);
				v[k].b = sm_spi_int64(tt->vals[i], tt->tupdesc, 3, 0);
				v[k].from = DatumGetDateADT(sm_spi_col(tt, i, 4, &isnull));
				v[k].to = DatumGetDateADT(sm_spi_col(tt, i, 5, &isnull));
			}
			if (teams)
			{
				org->teams[idx].versions = v;
				org->teams[idx].nversions = k;
			}
			else
			{
				org->reps[idx].versions = v;
				org->reps[idx].nversions = k;
			}
		}
		i = j;
	}
	SPI_freetuptable(tt);
}

/*
 * Do the versions exist?  Not in a database still at 0.1.0 whose library
 * is already 0.2.0 (before ALTER EXTENSION salesmgmt UPDATE): there the
 * readers answer with today's rows, as 0.1.0 did.
 */
bool
sm_org_history_present(void)
{
	return OidIsValid(get_relname_relid("deal_deletion", sm_schema_oid()));
}

bool
sm_quota_of_record_present(void)
{
	return OidIsValid(get_relname_relid("quota_of_record", sm_schema_oid()));
}

SmOrg *
sm_org_tree_load(bool with_history, bool read_only)
{
	SmOrg	   *org = palloc0(sizeof(SmOrg));
	SPITupleTable *tt;
	uint64		n,
				i;

	tt = sm_spi_query("SELECT t.team_id, t.parent_team_id, t.manager_rep_id, t.name"
					  "  FROM salesmgmt.team t ORDER BY t.team_id",
					  0, NULL, NULL, NULL, read_only, SPI_OK_SELECT, &n);
	org->nteams = (int) n;
	org->teams = palloc0(sizeof(SmOrgTeam) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		SmOrgTeam  *t = &org->teams[i];

		t->team_id = sm_spi_int64(tt->vals[i], tt->tupdesc, 1, 0);
		t->parent_id = t->cur_parent = sm_spi_int64(tt->vals[i], tt->tupdesc, 2, 0);
		t->manager_id = t->cur_manager = sm_spi_int64(tt->vals[i], tt->tupdesc, 3, 0);
		t->name = SPI_getvalue(tt->vals[i], tt->tupdesc, 4);
	}
	SPI_freetuptable(tt);

	tt = sm_spi_query("SELECT r.rep_id, r.team_id, r.name FROM salesmgmt.rep r ORDER BY r.rep_id",
					  0, NULL, NULL, NULL, read_only, SPI_OK_SELECT, &n);
	org->nreps = (int) n;
	org->reps = palloc0(sizeof(SmOrgRep) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		SmOrgRep   *r = &org->reps[i];

		r->rep_id = sm_spi_int64(tt->vals[i], tt->tupdesc, 1, 0);
		r->team_id = r->cur_team = sm_spi_int64(tt->vals[i], tt->tupdesc, 2, 0);
		r->name = SPI_getvalue(tt->vals[i], tt->tupdesc, 3);
	}
	SPI_freetuptable(tt);

	if (with_history && sm_org_history_present())
	{
		oh_load_versions(org, true, read_only);
		oh_load_versions(org, false, read_only);
		org->with_history = true;
	}
	return org;
}

SmOrg *
sm_org_tree_load_at(bool has_day, DateADT day)
{
	SmOrg	   *org = sm_org_tree_load(has_day, true);

	if (has_day)
		sm_org_tree_at(org, true, day);
	return org;
}

/* the version of a subject at day: the first that ends after it */
static SmOrgVersion *
oh_version_at(SmOrgVersion *v, int n, DateADT day)
{
	int			lo = 0,
				hi = n;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (v[mid].to > day)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo < n ? &v[lo] : NULL;
}

void
sm_org_tree_at(SmOrg *org, bool has_day, DateADT day)
{
	int			i;

	for (i = 0; i < org->nteams; i++)
	{
		SmOrgTeam  *t = &org->teams[i];
		SmOrgVersion *v = has_day ? oh_version_at(t->versions, t->nversions, day) : NULL;

		t->parent_id = v ? v->a : t->cur_parent;
		t->manager_id = v ? v->b : t->cur_manager;
	}
	for (i = 0; i < org->nreps; i++)
	{
		SmOrgRep   *r = &org->reps[i];
		SmOrgVersion *v = has_day ? oh_version_at(r->versions, r->nversions, day) : NULL;

		r->team_id = v ? v->a : r->cur_team;
	}
}

int
sm_org_tree_change_days(SmOrg *org, DateADT **days)
{
	int			n = 0,
				max = 16,
				i,
				k,
				out;
	DateADT    *d = palloc(sizeof(DateADT) * max);

	for (i = 0; i < org->nteams + org->nreps; i++)
	{
		SmOrgVersion *v = i < org->nteams ? org->teams[i].versions : org->reps[i - org->nteams].versions;
		int			nv = i < org->nteams ? org->teams[i].nversions : org->reps[i - org->nteams].nversions;

		for (k = 0; k < nv; k++)
		{
			if (DATE_NOT_FINITE(v[k].to))
				continue;
			if (n >= max)
			{
				max *= 2;
				d = repalloc(d, sizeof(DateADT) * max);
			}
			d[n++] = v[k].to;
		}
	}
	qsort(d, n, sizeof(DateADT), oh_cmp_date);
	for (i = 0, out = 0; i < n; i++)
		if (out == 0 || d[out - 1] != d[i])
			d[out++] = d[i];
	*days = d;
	return out;
}

int
sm_org_tree_managers(SmOrg *org, int r, int64 *ids, int max)
{
	SmOrgRep   *rep = &org->reps[r];
	int64		team = rep->team_id;
	int			depth = 0;
	int			n = 0;

	/* a cycle (a back-filled past can hold one) ends the walk */
	while (team != 0 && depth++ <= org->nteams)
	{
		int			t = sm_org_tree_team(org, team);
		int64		m;
		int			k;
		bool		seen = false;

		if (t < 0)
			break;
		m = org->teams[t].manager_id;
		if (m != 0 && m != rep->rep_id && sm_org_tree_rep(org, m) >= 0)
		{
			for (k = 0; k < n; k++)
				seen |= (ids[k] == m);
			if (!seen && n < max)
				ids[n++] = m;
		}
		team = org->teams[t].parent_id;
	}
	return n;
}

int
sm_org_tree_subtree_reps(SmOrg *org, int64 team_id, int64 **ids)
{
	int64	   *out = palloc(sizeof(int64) * Max(org->nreps, 1));
	int			n = 0,
				i;

	for (i = 0; i < org->nreps; i++)
	{
		int64		team = org->reps[i].team_id;
		int			depth = 0;

		while (team != 0 && depth++ <= org->nteams)
		{
			int			t;

			if (team == team_id)
			{
				out[n++] = org->reps[i].rep_id;
				break;
			}
			t = sm_org_tree_team(org, team);
			if (t < 0)
				break;
			team = org->teams[t].parent_id;
		}
	}
	qsort(out, n, sizeof(int64), oh_cmp_int64);
	*ids = out;
	return n;
}

/* ------------------------------------------------------------------------
 * salesmgmt.org_as_of(p_day): what the readers see of a day
 * ------------------------------------------------------------------------
 */
typedef enum OhCol
{
	OH_REP_ID,
	OH_TEAM_ID,
	OH_MANAGERS,
	OH_NCOLUMNS
} OhCol;

static const char *const oh_columns[] = {"rep_id", "team_id", "managers"};

StaticAssertDecl(lengthof(oh_columns) == OH_NCOLUMNS, "org_as_of columns");

PG_FUNCTION_INFO_V1(sm_org_as_of);
Datum
sm_org_as_of(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	SmOrg	   *org;
	int64	   *chain;
	Datum	   *elems;
	int			i;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("p_day must not be null"),
				 errhint("Give a day, or leave the argument out for today.")));
	InitMaterializedSRF(fcinfo, 0);
	sm_check_result_columns(rsinfo->setDesc, oh_columns, OH_NCOLUMNS);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	org = sm_org_tree_load_at(true, PG_GETARG_DATEADT(0));
	chain = palloc(sizeof(int64) * Max(org->nteams, 1));
	elems = palloc(sizeof(Datum) * Max(org->nteams, 1));
	for (i = 0; i < org->nreps; i++)
	{
		Datum		v[OH_NCOLUMNS];
		bool		nulls[OH_NCOLUMNS] = {false};
		int			n = sm_org_tree_managers(org, i, chain, org->nteams);
		int			k;

		for (k = 0; k < n; k++)
			elems[k] = Int64GetDatum(chain[k]);
		v[OH_REP_ID] = Int64GetDatum(org->reps[i].rep_id);
		v[OH_TEAM_ID] = Int64GetDatum(org->reps[i].team_id);
		nulls[OH_TEAM_ID] = org->reps[i].team_id == 0;
		v[OH_MANAGERS] = PointerGetDatum(sm_make_array(elems, NULL, n, INT8OID));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
	}
	MemoryContextSwitchTo(old);
	SPI_finish();
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * salesmgmt._team_member_spans(): for every team, each span of days a rep
 * was in its subtree (the team or a team below it), from the versions.
 * Computed once per statement: quota_rep, quota_attainment and
 * target_pacing join it to credit a team quota with the reps of each day.
 * ------------------------------------------------------------------------
 */
typedef enum OhSpanCol
{
	OHS_TEAM_ID,
	OHS_REP_ID,
	OHS_FROM_DAY,
	OHS_TO_DAY,
	OHS_NCOLUMNS
} OhSpanCol;

static const char *const ohs_columns[] = {"team_id", "rep_id", "from_day", "to_day"};

StaticAssertDecl(lengthof(ohs_columns) == OHS_NCOLUMNS, "_team_member_spans columns");

/* an open span of a rep: a team of its chain since a day */
typedef struct OhOpen
{
	int64		team_id;
	DateADT		from;
} OhOpen;

static void
oh_span_put(ReturnSetInfo *rsinfo, int64 team_id, int64 rep_id, DateADT from, DateADT to)
{
	Datum		v[OHS_NCOLUMNS];
	bool		nulls[OHS_NCOLUMNS] = {false};

	v[OHS_TEAM_ID] = Int64GetDatum(team_id);
	v[OHS_REP_ID] = Int64GetDatum(rep_id);
	v[OHS_FROM_DAY] = DateADTGetDatum(from);
	v[OHS_TO_DAY] = DateADTGetDatum(to);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
}

/* the teams of rep index r's chain (its team, then the parents), each once */
static int
oh_chain(SmOrg *org, int r, int64 *chain)
{
	int64		team = org->reps[r].team_id;
	int			n = 0;

	/* a cycle (a back-filled past can hold one) ends the walk */
	while (team != 0 && n <= org->nteams)
	{
		int			t = sm_org_tree_team(org, team);
		int			k;

		for (k = 0; k < n; k++)
			if (chain[k] == team)
				return n;
		chain[n++] = team;
		if (t < 0)
			break;
		team = org->teams[t].parent_id;
	}
	return n;
}

PG_FUNCTION_INFO_V1(sm_team_member_spans);
Datum
sm_team_member_spans(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	SmOrg	   *org;
	DateADT    *days = NULL;
	int			ndays = 0,
				d,
				r,
				width;
	OhOpen	  **spans;
	int		   *nopen;
	int		   *cap;
	int64	   *chain;

	InitMaterializedSRF(fcinfo, 0);
	sm_check_result_columns(rsinfo->setDesc, ohs_columns, OHS_NCOLUMNS);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	/* without the versions (0.1.0 objects): today's tree for every day */
	org = sm_org_tree_load(true, true);
	if (org->with_history)
		ndays = sm_org_tree_change_days(org, &days);

	width = org->nteams + 1;
	spans = palloc0(sizeof(OhOpen *) * Max(org->nreps, 1));
	nopen = palloc0(sizeof(int) * Max(org->nreps, 1));
	cap = palloc0(sizeof(int) * Max(org->nreps, 1));
	chain = palloc(sizeof(int64) * width);

	/* day -1: the first versions, then each day the organisation changed */
	for (d = -1; d < ndays; d++)
	{
		DateADT		day = d < 0 ? DATEVAL_NOBEGIN : days[d];

		sm_org_tree_at(org, org->with_history, day);
		for (r = 0; r < org->nreps; r++)
		{
			int			n = oh_chain(org, r, chain);
			OhOpen	   *o;
			int			i,
						k,
						kept = 0;

			if (nopen[r] + n > cap[r])
			{
				cap[r] = nopen[r] + n + 4;
				spans[r] = spans[r] ? repalloc(spans[r], sizeof(OhOpen) * cap[r])
					: palloc(sizeof(OhOpen) * cap[r]);
			}
			o = spans[r];

			/* spans of teams no longer in the chain end the day before */
			for (i = 0; i < nopen[r]; i++)
			{
				bool		still = false;

				for (k = 0; k < n && !still; k++)
					still = (chain[k] == o[i].team_id);
				if (still)
					o[kept++] = o[i];
				else
					oh_span_put(rsinfo, o[i].team_id, org->reps[r].rep_id, o[i].from, day);
			}
			nopen[r] = kept;
			/* teams new in the chain spans a span */
			for (k = 0; k < n; k++)
			{
				bool		known = false;

				for (i = 0; i < nopen[r] && !known; i++)
					known = (o[i].team_id == chain[k]);
				if (!known)
				{
					o[nopen[r]].team_id = chain[k];
					o[nopen[r]].from = day;
					nopen[r]++;
				}
			}
		}
	}
	for (r = 0; r < org->nreps; r++)
	{
		int			i;

		for (i = 0; i < nopen[r]; i++)
			oh_span_put(rsinfo, spans[r][i].team_id, org->reps[r].rep_id,
						spans[r][i].from, DATEVAL_NOEND);
	}
	MemoryContextSwitchTo(old);
	SPI_finish();
	return (Datum) 0;
}

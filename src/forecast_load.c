/*-------------------------------------------------------------------------
 *
 * forecast_load.c
 *	  Reading what a forecast call needs: exchange rates, pipelines, stages
 *	  (with learned win rates), the team tree, reps, credit splits, the deals
 *	  of the period (streamed, or rebuilt from the history as of a moment),
 *	  quotas and adjustments.
 *
 * The model of a call is in forecast.h, the overview in forecast.c.
 *
 *-------------------------------------------------------------------------
 */
#include "forecast.h"
#include "utils/lsyscache.h"

/* ------------------------------------------------------------------------
 * SPI
 * ------------------------------------------------------------------------
 */


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
void
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
int
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

Numeric
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

int
fc_lookup(fc_idmap_hash *map, int64 id)
{
	FcIdEntry  *e = fc_idmap_lookup(map, id);

	return e ? e->index : -1;
}

void
fc_map_insert(fc_idmap_hash *map, int64 id, int index)
{
	bool		found;
	FcIdEntry  *e = fc_idmap_insert(map, id, &found);

	e->index = index;
}

void
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
void
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
void
fc_load_teams(FcCall *c)
{
	int			i;
	int			t;

	/* the organisation of the forecast's day (org_history.c) */
	c->org = sm_org_tree_load_at(c->has_as_of, c->has_as_of ? sm_org_day_of(c->as_of) : 0);
	c->nteams = c->org->nteams;
	c->teams = palloc0(sizeof(FcTeam) * Max(c->nteams, 1));
	c->team_map = fc_idmap_create(CurrentMemoryContext, Max(c->nteams, 8), NULL);
	for (i = 0; i < c->nteams; i++)
	{
		FcTeam	   *team = &c->teams[i];
		SmOrgTeam  *ot = &c->org->teams[i];

		team->id = ot->team_id;
		team->has_parent = ot->parent_id != 0;
		team->parent_id = ot->parent_id;
		team->name = ot->name;
		fc_map_insert(c->team_map, team->id, i);
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

void
fc_load_reps(FcCall *c)
{
	int			i;

	c->rep_map = fc_idmap_create(CurrentMemoryContext, Max(c->org->nreps, 8), NULL);
	for (i = 0; i < c->org->nreps; i++)
	{
		SmOrgRep   *r = &c->org->reps[i];

		fc_add_rep(c, r->rep_id, r->name,
				   r->team_id == 0 ? -1 : fc_lookup(c->team_map, r->team_id));
	}
}

/* the index of a rep, adding one the caller cannot see (its name unknown) */
int
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

void
fc_load_splits(FcCall *c)
{
	FcReceiver	r;

	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		values[1];

	c->split_map = fc_idmap_create(c->cxt, 1024, NULL);
	if (!c->has_as_of || !sm_org_history_present())
		fc_stream(c, &r, fc_receive_split,
				  "SELECT s.deal_id, s.rep_id, s.share FROM salesmgmt.deal_split s",
				  0, NULL, NULL);
	else
	{
		/*
		 * The splits of each deal at the moment: its versions holding it,
		 * or, before the deal's first version, its first splits.
		 */
		values[0] = TimestampTzGetDatum(c->as_of);
		fc_stream(c, &r, fc_receive_split,
				  "SELECT h.deal_id, h.rep_id, h.share"
				  "  FROM (SELECT h.*, min(h.valid_from) OVER (PARTITION BY h.deal_id) AS first"
				  "          FROM salesmgmt.deal_split_history h WHERE h.valid_to > $1) h"
				  " WHERE h.valid_from <= greatest($1, h.first)",
				  1, types, values);
	}
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

/* ------------------------------------------------------------------------
 * Product families: the deals' lines per family
 * ------------------------------------------------------------------------
 */

/* the group of a product family, made when first met */
int
fc_family_group(FcCall *c, const char *family)
{
	FcFamilyEntry *e;
	bool		found;

	e = fc_familymap_lookup(c->family_map, family);
	if (e != NULL)
		return e->index;
	family = MemoryContextStrdup(c->cxt, family);
	e = fc_familymap_insert(c->family_map, family, &found);
	e->index = fc_add_group(c, 0, true, (char *) family);
	return e->index;
}

/* one (deal, family, sum of line amounts) row: pushed on its deal's list */
static bool
fc_receive_line(TupleTableSlot *slot, DestReceiver *self)
{
	FcCall	   *c = ((FcReceiver *) self)->call;
	FcIdEntry  *head;
	bool		found;
	int			k;

	slot_getallattrs(slot);
	if (c->nlines >= c->lines_alloc)
	{
		c->lines_alloc = Max(1024, c->lines_alloc * 2);
		c->line_next = fc_grow(c, c->line_next, sizeof(int) * c->lines_alloc);
		c->line_group = fc_grow(c, c->line_group, sizeof(int) * c->lines_alloc);
		c->line_cents = fc_grow(c, c->line_cents, sizeof(int64) * c->lines_alloc);
	}
	k = c->nlines++;
	c->line_group[k] = fc_family_group(c, TextDatumGetCString(slot->tts_values[1]));
	c->line_cents[k] = sm_numeric_scaled_int64(slot->tts_values[2], 2);
	head = fc_idmap_insert(c->line_map, DatumGetInt64(slot->tts_values[0]), &found);
	c->line_next[k] = found ? head->index : -1;
	head->index = k;
	return true;
}

/*
 * The line amounts of every deal of the period (a superset, like the deal
 * scan) per product family, in one query.  Lines have no history: as of a
 * past moment the deal's amount then is split by the shares of its lines
 * now.
 */
static void
fc_load_lines(FcCall *c, int nargs, Oid *types, Datum *values)
{
	FcReceiver	r;

	c->line_map = fc_idmap_create(c->cxt, 1024, NULL);
	fc_stream(c, &r, fc_receive_line,
			  psprintf("SELECT l.deal_id, p.family, sum(l.line_amount)"
					   "  FROM salesmgmt.deal_line l"
					   "  JOIN salesmgmt.product p ON p.product_id = l.product_id"
					   " WHERE l.deal_id IN (%s)"
					   " GROUP BY l.deal_id, p.family"
					   " ORDER BY l.deal_id, p.family COLLATE \"C\" DESC",
					   !c->has_as_of
					   ? "SELECT d.deal_id FROM salesmgmt.deal d"
					   "  WHERE d.expected_close_date BETWEEN $1 AND $2"
					   "     OR (d.closed_at >= $3 AND d.closed_at < $4)"
					   : "SELECT x.deal_id FROM salesmgmt.deal_stage_history x"
					   "  WHERE x.changed_at <= $5"
					   "    AND (x.new_expected_close_date BETWEEN $1 AND $2"
					   "         OR (x.changed_at >= $3 AND x.changed_at < $4))"),
			  nargs, types, values);
}

/*
 * Stream the deals of the period into the accumulators: today's deals, or
 * with p_as_of each deal rebuilt from its history rows as it stood then.
 */
void
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
	if (c->kind == FC_GROUP_FAMILY)
	{
		if (!OidIsValid(get_relname_relid("deal_line", sm_schema_oid())))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("a forecast by product_family needs salesmgmt 0.2.0"),
					 errdetail("The database's salesmgmt objects have no deal lines (salesmgmt.deal_line)."),
					 errhint("Run ALTER EXTENSION salesmgmt UPDATE.")));
		fc_load_lines(c, c->has_as_of ? 5 : 4, types, values);
	}

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
		/* deals deleted by the moment are left out (not on 0.1.0 objects) */
		fc_stream(c, &r, fc_receive_history,
				  psprintf("SELECT h.deal_id, h.owner_rep_id, h.pipeline_id, h.to_stage_id,"
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
				  "%s ORDER BY h.deal_id, h.history_id",
				  sm_org_history_present()
				  ? "   AND NOT EXISTS (SELECT 1 FROM salesmgmt.deal_deletion z"
				  "                    WHERE z.deal_id = h.deal_id AND z.deleted_at <= $5)"
				  : ""),
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
	if (!adjustments && (!c->has_as_of || !sm_org_history_present()))
	{
		/*
		 * quota.product_family and quota.measure are new in 0.2.0: none on
		 * 0.1.0 objects.  The forecast is of booked amounts: quotas of new
		 * ARR are another target.
		 */
		bool		current = get_attnum(sm_relation_oid("quota"), "measure") != InvalidAttrNumber;

		sm_spi_query_dest(psprintf("SELECT q.rep_id, q.team_id, q.period_start, q.period_end, q.amount,"
								   "       q.currency, NULL::text, %s"
								   "  FROM salesmgmt.quota q"
								   " WHERE q.period_start >= $1 AND q.period_end <= $2%s",
								   current ? "q.product_family" : "NULL::text",
								   current ? " AND q.measure = 'booked'" : ""),
						  2, types, values, NULL);
	}
	else if (!adjustments)
		/* each quota as it was: its first version ending after the moment */
		sm_spi_query_dest("SELECT q.rep_id, q.team_id, q.period_start, q.period_end, q.amount,"
						  "       q.currency, NULL::text, q.product_family"
						  "  FROM (SELECT DISTINCT ON (h.quota_id) h.*"
						  "          FROM salesmgmt.quota_history h WHERE h.valid_to > $3"
						  "         ORDER BY h.quota_id, h.valid_from) q"
						  " WHERE q.period_start >= $1 AND q.period_end <= $2"
						  "   AND q.measure = 'booked'",
						  3, types, values, NULL);
	else
		sm_spi_query_dest("SELECT a.rep_id, a.team_id, a.period_start, a.period_end, a.amount,"
						  "       a.currency, a.category, NULL::text"
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
		d = SPI_getbinval(tup, desc, 8, &isnull);
		if (isnull)
			t->family = FC_TARGET_ALL_PRODUCTS;
		else if (c->kind == FC_GROUP_FAMILY)
			t->family = fc_family_group(c, TextDatumGetCString(d));
		else
			t->family = FC_TARGET_SOME_FAMILY;
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
 * Quotas of one bucket (-2: every row) and one family (the family's group,
 * or FC_TARGET_ALL_PRODUCTS) by the rule documented in
 * docs/forecasting.md: a rep's quota is the sum of its rows; a team's is
 * the sum of its own rows if it has any, else of its reps' and sub-teams'
 * quotas; the organisation's is the sum of the top-level teams' and of the
 * reps without a team.  NULL wherever no row applies.
 */
static Numeric
fc_quotas(FcCall *c, FcTarget *rows, int nrows, int bucket, int family,
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
		if ((bucket != -2 && rows[i].bucket != bucket) || rows[i].family != family)
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
void
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
			fc_quotas(c, rows, nrows, -2, FC_TARGET_ALL_PRODUCTS, rep_q, team_q, &noteam_q);
			for (i = 0; i < c->nreps; i++)
				c->groups[i].quota = rep_q[i];
			break;
		case FC_GROUP_TEAM:
			fc_quotas(c, rows, nrows, -2, FC_TARGET_ALL_PRODUCTS, rep_q, team_q, &noteam_q);
			for (i = 0; i < c->nteams; i++)
				c->groups[i].quota = team_q[i];
			c->groups[c->nteams].quota = noteam_q;
			break;
		case FC_GROUP_MONTH:
		case FC_GROUP_QUARTER:
			for (i = 0; i < c->ngroups; i++)
				c->groups[i].quota = fc_quotas(c, rows, nrows, i, FC_TARGET_ALL_PRODUCTS, rep_q, team_q, &noteam_q);
			break;
		case FC_GROUP_TOTAL:
			c->groups[0].quota = fc_quotas(c, rows, nrows, -2, FC_TARGET_ALL_PRODUCTS, rep_q, team_q, &noteam_q);
			break;
		case FC_GROUP_FAMILY:
			/* each family's target of the organisation; none for no lines */
			for (i = 0; i < c->ngroups; i++)
				if (i != c->none_group)
					c->groups[i].quota = fc_quotas(c, rows, nrows, -2, i, rep_q, team_q, &noteam_q);
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
void
fc_apply_adjustments(FcCall *c)
{
	int			nrows;
	FcTarget   *rows;
	int			i,
				k;

	if (c->kind == FC_GROUP_PIPELINE || c->kind == FC_GROUP_FAMILY)
		return;					/* adjustments are per rep or team */
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
			case FC_GROUP_FAMILY:
				break;
		}
	}
}

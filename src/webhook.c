/*-------------------------------------------------------------------------
 *
 * webhook.c
 *	  Webhooks on deal events: the transactional outbox written by the
 *	  deal trigger.
 *
 * The deal trigger runs in the transaction that changes the deal: it
 * writes one salesmgmt.webhook_event row and one salesmgmt.webhook_delivery
 * row per active endpoint subscribed to the event type, so what a rolled
 * back transaction did is never sent and what a committed one did is never
 * lost.  It keeps the list of active endpoints and the outcome of every
 * stage in a per-session cache, and writes the outbox rows directly into
 * the tables and their indexes, so a deal change costs two or three heap
 * inserts and their index entries, and nothing when no endpoint listens.
 *
 * Endpoint validation is in webhook_endpoint.c, signatures in
 * webhook_sign.c, the worker that sends the deliveries in
 * webhook_worker.c (which this file asks only to be woken at commit).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "common/jsonapi.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "salesmgmt.h"
#include "webhook.h"
#include "webhook_worker.h"

PG_FUNCTION_INFO_V1(sm_webhook_new_event_id);
PG_FUNCTION_INFO_V1(sm_webhook_cache_invalidate);
PG_FUNCTION_INFO_V1(sm_webhook_enqueue);

static const char *const event_type_names[] = {
	"deal.created", "deal.updated", "deal.stage_changed", "deal.won",
	"deal.lost", "deal.reopened", "deal.deleted"
};
#define N_EVENT_TYPES lengthof(event_type_names)
#define ALL_EVENT_TYPES ((uint32) ((1 << N_EVENT_TYPES) - 1))

typedef enum
{
	EV_CREATED, EV_UPDATED, EV_STAGE_CHANGED, EV_WON, EV_LOST, EV_REOPENED, EV_DELETED
} SmEventType;

/* Attribute number of a column, or 0 when the table has none of that name */
static int
attnum_or_zero(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i + 1;
	}
	return 0;
}

static int
attnum_of(TupleDesc desc, const char *name)
{
	int			a = attnum_or_zero(desc, name);

	if (a == 0)
		elog(ERROR, "column \"%s\" not found", name);
	return a;
}

/* ---------------------------------------------------------------------
 * Per-session caches: active endpoints, stage outcomes, outbox relations
 *
 * The deal trigger runs for every deal change, so it reads nothing it
 * can remember.  What it remembers is dropped on any relcache
 * invalidation of the endpoint, stage or outbox tables: statement
 * triggers on salesmgmt.webhook_endpoint and salesmgmt.stage send one for
 * every change of their rows (sm_webhook_cache_invalidate), and DDL sends
 * them anyway.  Invalidations are taken in at every transaction start and
 * lock acquisition, so another session's committed change is seen by the
 * next transaction, and this session's own change by its next statement.
 * --------------------------------------------------------------------- */

typedef struct EndpointEntry
{
	int64		endpoint_id;
	uint32		types;			/* bit i: event_type_names[i] */
} EndpointEntry;

typedef struct StageEntry
{
	int64		stage_id;
	char		outcome;		/* 'o'pen, 'w'on, 'l'ost */
} StageEntry;

typedef struct OutboxCache
{
	bool		valid;
	Oid			endpoint_relid;
	Oid			stage_relid;
	Oid			event_relid;
	Oid			delivery_relid;
	Oid			event_seq_index;	/* unique (deal_id, sequence) */
	Oid			delivery_id_seq;	/* identity sequence of delivery_id */
	EndpointEntry *endpoints;
	int			n_endpoints;
	StageEntry *stages;			/* sorted by stage_id */
	int			n_stages;
	MemoryContext cxt;
} OutboxCache;

static OutboxCache cache = {false};
static bool relcache_callback_registered = false;

static void
outbox_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == cache.endpoint_relid ||
		relid == cache.stage_relid || relid == cache.event_relid ||
		relid == cache.delivery_relid)
		cache.valid = false;
}

/* AFTER ... FOR EACH STATEMENT on the endpoint and stage tables */
Datum
sm_webhook_cache_invalidate(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_webhook_cache_invalidate must be called as a trigger")));
	CacheInvalidateRelcache(td->tg_relation);
	return PointerGetDatum(NULL);
}

static int
stage_cmp(const void *a, const void *b)
{
	int64		x = ((const StageEntry *) a)->stage_id;
	int64		y = ((const StageEntry *) b)->stage_id;

	return (x > y) - (x < y);
}

static Oid
schema_relid(Oid nsp, const char *name)
{
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist", SALESMGMT_SCHEMA, name),
				 errhint("The salesmgmt extension is incomplete; ALTER EXTENSION salesmgmt UPDATE or recreate it.")));
	return relid;
}

/*
 * Rebuild the cache.  Tables are read with the latest snapshot, not the
 * transaction's: a repeatable-read transaction must not keep a list that
 * misses endpoints committed after it started once the invalidation that
 * announced them has been consumed.
 */
static void
load_cache(void)
{
	Oid			nsp = get_namespace_oid(SALESMGMT_SCHEMA, false);
	Relation	ep_rel;
	Relation	st_rel;
	TupleDesc	desc;
	TableScanDesc scan;
	Snapshot	snap;
	HeapTuple	tup;
	MemoryContext old;
	int			a_id,
				a_types,
				a_active,
				a_outcome;
	int			cap;

	if (!relcache_callback_registered)
	{
		CacheRegisterRelcacheCallback(outbox_relcache_callback, (Datum) 0);
		relcache_callback_registered = true;
	}
	if (cache.cxt == NULL)
		cache.cxt = AllocSetContextCreate(CacheMemoryContext, "salesmgmt webhook cache",
										  ALLOCSET_SMALL_SIZES);

	/*
	 * Open (and lock) the tables first: that takes in pending invalidations.
	 * Mark the cache valid before reading, so an invalidation arriving later
	 * makes the next call reload.
	 */
	ep_rel = table_open(schema_relid(nsp, "webhook_endpoint"), AccessShareLock);
	st_rel = table_open(schema_relid(nsp, "stage"), AccessShareLock);
	MemoryContextReset(cache.cxt);
	cache.endpoint_relid = RelationGetRelid(ep_rel);
	cache.stage_relid = RelationGetRelid(st_rel);
	cache.event_relid = schema_relid(nsp, "webhook_event");
	cache.delivery_relid = schema_relid(nsp, "webhook_delivery");
	cache.event_seq_index = schema_relid(nsp, "webhook_event_deal_sequence");
	cache.delivery_id_seq = sm_identity_sequence(cache.delivery_relid,
												get_attnum(cache.delivery_relid, "delivery_id"),
												false);
	cache.n_endpoints = 0;
	cache.n_stages = 0;
	cache.valid = true;

	old = MemoryContextSwitchTo(cache.cxt);
	snap = RegisterSnapshot(GetLatestSnapshot());

	/* active endpoints and the event types they receive */
	desc = RelationGetDescr(ep_rel);
	a_id = attnum_of(desc, "endpoint_id");
	a_types = attnum_of(desc, "event_types");
	a_active = attnum_of(desc, "active");
	cap = 8;
	cache.endpoints = palloc(cap * sizeof(EndpointEntry));
	scan = table_beginscan(ep_rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d;
		uint32		types = 0;

		d = heap_getattr(tup, a_active, desc, &isnull);
		if (isnull || !DatumGetBool(d))
			continue;
		d = heap_getattr(tup, a_types, desc, &isnull);
		if (isnull)
			types = ALL_EVENT_TYPES;
		else
		{
			Datum	   *elems;
			bool	   *elnulls;
			int			ne;

			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &elnulls, &ne);
			for (int i = 0; i < ne; i++)
			{
				char	   *pattern = elnulls[i] ? NULL : TextDatumGetCString(elems[i]);

				for (int k = 0; pattern && k < (int) N_EVENT_TYPES; k++)
					if (sm_webhook_type_matches(pattern, event_type_names[k]))
						types |= 1 << k;
			}
		}
		if (cache.n_endpoints == cap)
		{
			cap *= 2;
			cache.endpoints = repalloc(cache.endpoints, cap * sizeof(EndpointEntry));
		}
		cache.endpoints[cache.n_endpoints].endpoint_id =
			DatumGetInt64(heap_getattr(tup, a_id, desc, &isnull));
		cache.endpoints[cache.n_endpoints].types = types;
		cache.n_endpoints++;
	}
	table_endscan(scan);

	/* the outcome of every stage */
	desc = RelationGetDescr(st_rel);
	a_id = attnum_of(desc, "stage_id");
	a_outcome = attnum_of(desc, "outcome");
	cap = 16;
	cache.stages = palloc(cap * sizeof(StageEntry));
	scan = table_beginscan(st_rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, a_outcome, desc, &isnull);

		if (cache.n_stages == cap)
		{
			cap *= 2;
			cache.stages = repalloc(cache.stages, cap * sizeof(StageEntry));
		}
		cache.stages[cache.n_stages].stage_id = DatumGetInt64(heap_getattr(tup, a_id, desc, &isnull));
		cache.stages[cache.n_stages].outcome = isnull ? 'o' : VARDATA_ANY(DatumGetTextPP(d))[0];
		cache.n_stages++;
	}
	table_endscan(scan);
	qsort(cache.stages, cache.n_stages, sizeof(StageEntry), stage_cmp);

	UnregisterSnapshot(snap);
	MemoryContextSwitchTo(old);
	table_close(st_rel, AccessShareLock);
	table_close(ep_rel, AccessShareLock);
}

static char
stage_outcome(int64 stage_id)
{
	StageEntry	key = {stage_id, 0};
	StageEntry *e = bsearch(&key, cache.stages, cache.n_stages, sizeof(StageEntry), stage_cmp);

	return e ? e->outcome : 'o';
}

/* ---------------------------------------------------------------------
 * The deal trigger: the outbox
 * --------------------------------------------------------------------- */

/*
 * Append the JSON for one value, rendered the way row_to_json renders the
 * same column, so "previous" and "deal" agree.
 */
static void
append_json_value(StringInfo buf, Datum value, bool isnull, Oid typid)
{
	Oid			outfn;
	bool		varlena;
	char	   *s;

	if (isnull)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	typid = getBaseType(typid);
	switch (typid)
	{
		case BOOLOID:
			appendStringInfoString(buf, DatumGetBool(value) ? "true" : "false");
			return;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			{
				char		dt[MAXDATELEN + 1];

				JsonEncodeDateTime(dt, value, typid, NULL);
				appendStringInfo(buf, "\"%s\"", dt);
				return;
			}
		default:
			break;
	}
	getTypeOutputInfo(typid, &outfn, &varlena);
	s = OidOutputFunctionCall(outfn, value);
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			/* NaN and infinities are not JSON numbers */
			if (IsValidJsonNumber(s, strlen(s)))
				appendStringInfoString(buf, s);
			else
				escape_json(buf, s);
			break;
		case JSONOID:
		case JSONBOID:
			appendStringInfoString(buf, s);
			break;
		default:
			escape_json(buf, s);
			break;
	}
	pfree(s);
}

/* Outcome ('open', 'won', 'lost') of two stages, looked up in one query. */

/*
 * Insert a row into one of the outbox tables, with its indexes, without
 * the executor: no plan, no permission or row-security check (the trigger
 * writes on the system's behalf, whoever changed the deal) and no CHECK
 * constraints (the values are made here and are valid by construction).
 * Unique indexes are still enforced.
 */
static void
outbox_insert(Relation rel, Datum *values, bool *nulls)
{
	EState	   *estate = CreateExecutorState();
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	TupleTableSlot *slot;

	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel), &TTSOpsHeapTuple);
	ExecStoreHeapTuple(heap_form_tuple(RelationGetDescr(rel), values, nulls), slot, true);
	table_tuple_insert(rel, slot, GetCurrentCommandId(true), 0, NULL);
	if (rri->ri_NumIndices > 0)
		sm_insert_index_tuples(rri, slot, estate);
	ExecDropSingleTupleTableSlot(slot);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
}

/*
 * The next sequence number of a deal's events: one more than the highest
 * so far, read from the unique (deal_id, sequence) index with the latest
 * snapshot.  Two transactions cannot race here: both would hold the
 * deal's row lock (UPDATE, DELETE) or the deal is new (INSERT); and the
 * unique index would refuse a duplicate anyway.
 */
static int64
next_sequence(Relation event_rel, int64 deal_id)
{
	Relation	idx = index_open(cache.event_seq_index, AccessShareLock);
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
	IndexScanDesc scan;
	ScanKeyData key;
	TupleTableSlot *slot = table_slot_create(event_rel, NULL);
	int64		seq = 0;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(deal_id));
	scan = sm_index_beginscan(event_rel, idx, snap, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	if (index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, attnum_of(RelationGetDescr(event_rel), "sequence"), &isnull);

		if (!isnull)
			seq = DatumGetInt64(d);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snap);
	index_close(idx, AccessShareLock);
	return seq + 1;
}

/*
 * A version 7 UUID (RFC 9562): 48 bits of Unix time in milliseconds, then
 * random bits.  Ids made one after the other sort together, so the
 * indexes on event_id grow at their right edge instead of taking random
 * insertions all over, and event ids sort by time.
 */
#define RANDOM_POOL_BYTES	1020	/* 102 event ids' random bits */

static uint8 random_pool[RANDOM_POOL_BYTES];
static int	random_pool_left = 0;

/*
 * The random bits come from pg_strong_random, read a pool at a time: one
 * call per event cost about as much as the rest of the event id's making
 * and the row's JSON together (22,000 instructions).  The pool belongs to
 * the backend that filled it (the postmaster never makes an event, so no
 * forked child inherits a filled pool).
 */
static pg_uuid_t *
time_ordered_uuid(void)
{
	pg_uuid_t  *uuid = palloc(UUID_LEN);
	uint64		ms = (uint64) (GetCurrentTimestamp() / 1000 +
							   (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * (uint64) 86400000);

	if (random_pool_left < UUID_LEN - 6)
	{
		if (!pg_strong_random(random_pool, sizeof(random_pool)))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate a random event id")));
		random_pool_left = sizeof(random_pool);
	}
	random_pool_left -= UUID_LEN - 6;
	memcpy(uuid->data + 6, random_pool + random_pool_left, UUID_LEN - 6);
	explicit_bzero(random_pool + random_pool_left, UUID_LEN - 6);
	for (int i = 0; i < 6; i++)
		uuid->data[i] = (uint8) (ms >> (40 - 8 * i));
	uuid->data[6] = (uuid->data[6] & 0x0f) | 0x70;
	uuid->data[8] = (uuid->data[8] & 0x3f) | 0x80;
	return uuid;
}

Datum
sm_webhook_new_event_id(PG_FUNCTION_ARGS)
{
	PG_RETURN_UUID_P(time_ordered_uuid());
}

/* Set the column called name in a values/nulls pair of rel's shape */
static void
set_col(TupleDesc desc, Datum *values, bool *nulls, const char *name, Datum value)
{
	int			a = attnum_of(desc, name) - 1;

	values[a] = value;
	nulls[a] = false;
}

/* Columns whose change alone is a deal.updated event */
static const char *const updated_columns[] = {
	"amount", "currency", "expected_close_date", "owner_rep_id", "probability", "forecast_category"
};

/*
 * AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW on salesmgmt.deal.
 *
 * One change of a deal is one event, the most specific that applies: a
 * move into a won stage is deal.won (not also deal.stage_changed), into a
 * lost stage deal.lost, out of a won or lost stage into an open one
 * deal.reopened, any other stage move deal.stage_changed; a change of
 * amount, currency, close date, owner, probability or forecast category
 * without a stage move deal.updated.  Changes to other columns only (name,
 * extra, ...) send nothing.  Nothing is written when no active endpoint
 * subscribes to the event type.
 */
Datum
sm_webhook_enqueue(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	newtup;
	HeapTuple	oldtup = NULL;
	SmEventType type;
	StringInfoData body;
	int64	   *targets;
	int			n_targets = 0;
	int64		deal_id;
	int64		sequence;
	bool		isnull;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	char		ts[MAXDATELEN + 1];
	int			utc = 0;
	bool	   *changed = NULL;
	Datum	   *ovals = NULL;	/* the old row's columns (UPDATE) */
	bool	   *onulls = NULL;
	pg_uuid_t  *event_id;
	Relation	event_rel;
	Relation	delivery_rel;
	TupleDesc	edesc;
	Datum	   *values;
	bool	   *nulls;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_webhook_enqueue must be an AFTER ROW trigger")));

	if (!cache.valid)
		load_cache();
	if (cache.n_endpoints == 0)
		return PointerGetDatum(NULL);	/* nobody listens: write nothing */

	rel = td->tg_relation;
	desc = RelationGetDescr(rel);

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		newtup = td->tg_trigtuple;
		type = EV_CREATED;
	}
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		newtup = td->tg_trigtuple;
		type = EV_DELETED;
	}
	else
	{
		int			a_stage = attnum_of(desc, "stage_id");
		int			a_updated = attnum_of(desc, "updated_at");

		Datum	   *nvals;
		bool	   *nnulls;

		oldtup = td->tg_trigtuple;
		newtup = td->tg_newtuple;
		changed = palloc0(desc->natts * sizeof(bool));

		/*
		 * Both rows taken apart once: heap_getattr per column walks the
		 * row again for every column after the first variable-width one.
		 */
		ovals = palloc(desc->natts * sizeof(Datum));
		onulls = palloc(desc->natts * sizeof(bool));
		nvals = palloc(desc->natts * sizeof(Datum));
		nnulls = palloc(desc->natts * sizeof(bool));
		heap_deform_tuple(oldtup, desc, ovals, onulls);
		heap_deform_tuple(newtup, desc, nvals, nnulls);
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (att->attisdropped || i + 1 == a_updated)
				continue;
			if (onulls[i] != nnulls[i] ||
				(!onulls[i] && !datumIsEqual(ovals[i], nvals[i], att->attbyval, att->attlen)))
				changed[i] = true;
		}
		if (changed[a_stage - 1])
		{
			char		old_outcome = stage_outcome(DatumGetInt64(ovals[a_stage - 1]));
			char		new_outcome = stage_outcome(DatumGetInt64(nvals[a_stage - 1]));

			if (new_outcome == 'w' && old_outcome != 'w')
				type = EV_WON;
			else if (new_outcome == 'l' && old_outcome != 'l')
				type = EV_LOST;
			else if (new_outcome == 'o' && old_outcome != 'o')
				type = EV_REOPENED;
			else
				type = EV_STAGE_CHANGED;
		}
		else
		{
			bool		any = false;

			for (int i = 0; i < (int) lengthof(updated_columns); i++)
				if (changed[attnum_of(desc, updated_columns[i]) - 1])
					any = true;
			if (!any)
				return PointerGetDatum(NULL);
			type = EV_UPDATED;
		}
	}

	/* the subscribed endpoints */
	targets = palloc(cache.n_endpoints * sizeof(int64));
	for (int i = 0; i < cache.n_endpoints; i++)
		if (cache.endpoints[i].types & (1 << type))
			targets[n_targets++] = cache.endpoints[i].endpoint_id;
	if (n_targets == 0)
		return PointerGetDatum(NULL);

	deal_id = DatumGetInt64(heap_getattr(newtup, attnum_of(desc, "deal_id"), desc, &isnull));
	event_rel = table_open(cache.event_relid, RowExclusiveLock);
	delivery_rel = table_open(cache.delivery_relid, RowExclusiveLock);
	sequence = next_sequence(event_rel, deal_id);

	/* the body: exactly what is stored, sent and signed */
	initStringInfo(&body);
	appendStringInfo(&body, "{\"type\": \"%s\", \"timestamp\": \"%s\", \"data\": {\"deal\": ",
					 event_type_names[type],
					 JsonEncodeDateTime(ts, TimestampTzGetDatum(now), TIMESTAMPTZOID, &utc));
	{
		text	   *j = DatumGetTextPP(DirectFunctionCall1(row_to_json,
														   heap_copy_tuple_as_datum(newtup, desc)));

		appendBinaryStringInfo(&body, VARDATA_ANY(j), VARSIZE_ANY_EXHDR(j));
	}
	appendStringInfoString(&body, ", \"previous\": {");
	if (changed)
	{
		bool		first = true;

		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!changed[i])
				continue;
			if (!first)
				appendStringInfoString(&body, ", ");
			first = false;
			escape_json(&body, NameStr(att->attname));
			appendStringInfoString(&body, ": ");
			append_json_value(&body, ovals[i], onulls[i], att->atttypid);
		}
	}
	appendStringInfo(&body, "}, \"sequence\": " INT64_FORMAT "}}", sequence);

	/* the event */
	event_id = time_ordered_uuid();
	edesc = RelationGetDescr(event_rel);
	values = palloc0(edesc->natts * sizeof(Datum));
	nulls = palloc(edesc->natts * sizeof(bool));
	memset(nulls, true, edesc->natts * sizeof(bool));
	set_col(edesc, values, nulls, "event_id", UUIDPGetDatum(event_id));
	set_col(edesc, values, nulls, "event_type", CStringGetTextDatum(event_type_names[type]));
	set_col(edesc, values, nulls, "deal_id", Int64GetDatum(deal_id));
	set_col(edesc, values, nulls, "sequence", Int64GetDatum(sequence));
	set_col(edesc, values, nulls, "payload",
			PointerGetDatum(cstring_to_text_with_len(body.data, body.len)));
	set_col(edesc, values, nulls, "occurred_at", TimestampTzGetDatum(now));
	/* the subject columns came with 0.2.0: the library also serves 0.1.0 */
	if (attnum_or_zero(edesc, "subject_id") > 0)
	{
		set_col(edesc, values, nulls, "subject_type", CStringGetTextDatum("deal"));
		set_col(edesc, values, nulls, "subject_id", Int64GetDatum(deal_id));
	}
	outbox_insert(event_rel, values, nulls);

	/* one delivery per subscribed endpoint */
	edesc = RelationGetDescr(delivery_rel);
	values = palloc0(edesc->natts * sizeof(Datum));
	nulls = palloc(edesc->natts * sizeof(bool));
	for (int i = 0; i < n_targets; i++)
	{
		memset(nulls, true, edesc->natts * sizeof(bool));
		set_col(edesc, values, nulls, "delivery_id",
				Int64GetDatum(nextval_internal(cache.delivery_id_seq, false)));
		set_col(edesc, values, nulls, "event_id", UUIDPGetDatum(event_id));
		set_col(edesc, values, nulls, "endpoint_id", Int64GetDatum(targets[i]));
		set_col(edesc, values, nulls, "state", CStringGetTextDatum("pending"));
		set_col(edesc, values, nulls, "attempts", Int32GetDatum(0));
		set_col(edesc, values, nulls, "retry_step", Int32GetDatum(0));
		set_col(edesc, values, nulls, "next_attempt_at", TimestampTzGetDatum(now));
		set_col(edesc, values, nulls, "created_at", TimestampTzGetDatum(now));
		outbox_insert(delivery_rel, values, nulls);
	}

	table_close(delivery_rel, NoLock);
	table_close(event_rel, NoLock);

	sm_webhook_wake_at_commit();
	return PointerGetDatum(NULL);
}

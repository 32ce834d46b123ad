/*-------------------------------------------------------------------------
 *
 * product_analysis.c
 *	  What customers buy together: association rules between product
 *	  families over the accounts' won deals (salesmgmt.product_affinity).
 *
 * The product -> family map and the won stages are read first (small), so
 * the big part carries integers only.  Then each won deal line sets its
 * family's bit in its account's family mask (one bit per family, words of
 * 64).  Finally per account every pair of its families is counted once:
 * accounts have few families, so that is linear in the accounts.
 *
 * The big part is a hash join done by hand: the won deals (deal -> account
 * number, in an open-addressing hash) from one sequential scan of
 * salesmgmt.deal, then one sequential scan of salesmgmt.deal_line that
 * looks each line's deal up.  Both scans read the heap directly
 * (table_beginscan, deforming only the leading columns they need, under
 * the query's snapshot): no executor, no SPI tuple, no text.  Where
 * row-level security applies to the caller on either table, or the caller
 * lacks SELECT on one, the rows come from the equivalent SQL join instead
 * (through a DestReceiver, into the same masks), so policies and
 * privileges are those of a plain query.
 *
 * For a rule A => B over N accounts with at least one won line:
 *	  support	 = n(A and B) / N
 *	  confidence = n(A and B) / n(A)
 *	  lift		 = confidence / (n(B) / N) = n(A and B) * N / (n(A) * n(B))
 * all exact numeric, rounded to 4 decimals.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "salesmgmt.h"
#include "core_spi.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_product_affinity);

/* int64 id -> int32 number */
typedef struct SmAffEntry
{
	int64		key;
	int32		value;
	char		status;
} SmAffEntry;

#define SH_PREFIX		sm_affmap
#define SH_ELEMENT_TYPE	SmAffEntry
#define SH_KEY_TYPE		int64
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	murmurhash32((uint32) ((uint64) (k) ^ ((uint64) (k) >> 32)))
#define SH_EQUAL(tb, a, b)	((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* what one call accumulates */
typedef struct SmAffinity
{
	sm_affmap_hash *products;	/* product -> family number */
	int32	   *product_family;	/* the same for ids below nproduct_ids, -1 none */
	int64		nproduct_ids;
	sm_affmap_hash *accounts;	/* account -> account number */
	int			nwords;			/* mask words per account */
	uint64	   *masks;			/* naccounts x nwords family bits */
	int64		naccounts;
	int64		alloc;
	MemoryContext cxt;
} SmAffinity;

typedef struct SmAffReceiver
{
	DestReceiver pub;
	SmAffinity *aff;
} SmAffReceiver;

/* the family number of a product, -1 for one created after the first query */
static inline int
sm_aff_family(SmAffinity *aff, int64 product_id)
{
	SmAffEntry *pf;

	if (product_id >= 0 && product_id < aff->nproduct_ids)
		return aff->product_family[product_id];
	pf = sm_affmap_lookup(aff->products, product_id);
	return pf ? pf->value : -1;
}

/* the number of an account, its mask made when first met */
static inline int64
sm_aff_account(SmAffinity *aff, int64 account_id)
{
	SmAffEntry *acc;
	bool		found;

	acc = sm_affmap_insert(aff->accounts, account_id, &found);
	if (!found)
	{
		if (aff->naccounts >= aff->alloc)
		{
			int64		alloc = Max(1024, aff->alloc * 2);

			aff->masks = aff->masks
				? repalloc_huge(aff->masks, sizeof(uint64) * aff->nwords * alloc)
				: MemoryContextAllocHuge(aff->cxt, sizeof(uint64) * aff->nwords * alloc);
			memset(aff->masks + aff->nwords * aff->alloc, 0,
				   sizeof(uint64) * aff->nwords * (alloc - aff->alloc));
			aff->alloc = alloc;
		}
		acc->value = (int32) aff->naccounts++;
	}
	return acc->value;
}

/* family f bought by account number k */
static inline void
sm_aff_set(SmAffinity *aff, int64 k, int f)
{
	aff->masks[k * aff->nwords + f / 64] |= UINT64CONST(1) << (f % 64);
}

/* one won line (through SQL) */
static inline void
sm_aff_add(SmAffinity *aff, int64 account_id, int64 product_id)
{
	int			f = sm_aff_family(aff, product_id);

	if (f >= 0)
		sm_aff_set(aff, sm_aff_account(aff, account_id), f);
}

static bool
sm_aff_receive(TupleTableSlot *slot, DestReceiver *self)
{
	slot_getsomeattrs(slot, 2);
	sm_aff_add(((SmAffReceiver *) self)->aff, DatumGetInt64(slot->tts_values[0]),
			   DatumGetInt64(slot->tts_values[1]));
	return true;
}

static void
sm_aff_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
sm_aff_shutdown(DestReceiver *self)
{
}

/* the won lines through SQL: row-level security and privileges apply */
static void
sm_aff_read_sql(SmAffinity *aff, bool has_since, DateADT since)
{
	SmAffReceiver r;
	Oid			types[1] = {DATEOID};
	Datum		values[1];

	memset(&r, 0, sizeof(r));
	r.pub.receiveSlot = sm_aff_receive;
	r.pub.rStartup = sm_aff_startup;
	r.pub.rShutdown = sm_aff_shutdown;
	r.pub.rDestroy = sm_aff_shutdown;
	r.pub.mydest = DestNone;
	r.aff = aff;
	values[0] = DateADTGetDatum(since);
	sm_spi_query_dest(psprintf("SELECT d.account_id, l.product_id"
							   "  FROM salesmgmt.deal d"
							   "  JOIN salesmgmt.deal_line l ON l.deal_id = d.deal_id"
							   " WHERE d.stage_id IN (SELECT s.stage_id FROM salesmgmt.stage s"
							   "                       WHERE s.outcome = 'won')%s",
							   has_since ? " AND d.closed_at >= $1" : ""),
					  has_since ? 1 : 0, types, values, &r.pub);
}

/* may rows of relid be read straight from its heap by the caller? */
static bool
sm_aff_direct_ok(Oid relid)
{
	Relation	rel;
	bool		heap;

	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED ||
		pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		return false;
	rel = table_open(relid, AccessShareLock);
	heap = (rel->rd_rel->relam == HEAP_TABLE_AM_OID);
	table_close(rel, AccessShareLock);
	return heap;
}

/*
 * The first natts columns of a heap tuple into values/isnull: the loop of
 * heap_deform_tuple, stopped early, so the columns after the last one
 * needed (a deal's text, numeric and jsonb) are never walked.
 */
static void
sm_aff_deform(HeapTuple tuple, TupleDesc desc, int natts, Datum *values, bool *isnull)
{
	HeapTupleHeader tup = tuple->t_data;
	bool		hasnulls = HeapTupleHasNulls(tuple);
	char	   *tp = (char *) tup + tup->t_hoff;
	bits8	   *bp = tup->t_bits;
	uint32		off = 0;
	bool		slow = false;	/* a varlena or null before: no nominal offsets */
	int			n = Min(natts, (int) HeapTupleHeaderGetNatts(tup));
	int			i;

	for (i = 0; i < n; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (hasnulls && att_isnull(i, bp))
		{
			values[i] = (Datum) 0;
			isnull[i] = true;
			slow = true;
			continue;
		}
		isnull[i] = false;
		if (att->attlen == -1)
		{
			if (slow || off != att_align_nominal(off, att->attalign))
				off = att_align_pointer(off, att->attalign, -1, tp + off);
		}
		else
			off = att_align_nominal(off, att->attalign);
		values[i] = fetchatt(att, tp + off);
		off = att_addlength_pointer(off, att->attlen, tp + off);
		if (att->attlen <= 0)
			slow = true;
	}
	/* columns added later by ALTER TABLE: their missing value (none here) */
	for (; i < natts; i++)
		values[i] = getmissingattr(desc, i + 1, &isnull[i]);
}

/*
 * The next tuple of a heap scan.  On the first tuple of a page the headers
 * of all its visible tuples are prefetched: reading a tuple's header is a
 * cache miss, and the misses of a page then overlap instead of queueing.
 */
static inline HeapTuple
sm_aff_next(TableScanDesc scan)
{
	HeapScanDesc hscan = (HeapScanDesc) scan;
	HeapTuple	tup = heap_getnext(scan, ForwardScanDirection);

	if (tup != NULL && hscan->rs_cindex == 0 && (scan->rs_flags & SO_ALLOW_PAGEMODE))
	{
		Page		page = BufferGetPage(hscan->rs_cbuf);

		for (int i = 1; i < (int) hscan->rs_ntuples; i++)
			__builtin_prefetch((char *) page +
							   ItemIdGetOffset(PageGetItemId(page, hscan->rs_vistuples[i])));
	}
	return tup;
}

/*
 * A sequential read of a heap, a page at a time, with less per tuple than
 * heap_getnext: each page is pinned, its visible tuples listed under a
 * share lock (every tuple of an all-visible page, else each checked
 * against the snapshot, as heap scans do) and their headers prefetched;
 * then the tuples are handed out from the pinned page.  Under SERIALIZABLE
 * the table AM's scan is used, which also records the predicate locks.
 */
typedef struct SmAffScan
{
	Relation	rel;
	Snapshot	snap;
	TableScanDesc tscan;		/* serializable: the table AM's scan */
	BufferAccessStrategy strategy;
	BlockNumber nblocks;
	BlockNumber next_blk;
	BlockNumber blk;			/* the page of buf */
	Buffer		buf;
	int			ntup;
	int			cur;
	OffsetNumber vis[MaxHeapTuplesPerPage];
	HeapTupleData tup;
} SmAffScan;

static void
sm_aff_scan_begin(SmAffScan *s, Relation rel, Snapshot snap)
{
	memset(s, 0, sizeof(*s));
	s->rel = rel;
	s->snap = snap;
	s->buf = InvalidBuffer;
	if (IsolationIsSerializable())
	{
		s->tscan = table_beginscan(rel, snap, 0, NULL);
		return;
	}
	s->nblocks = RelationGetNumberOfBlocks(rel);
	/* a ring of buffers for a big table, as heap scans do */
	s->strategy = s->nblocks > (BlockNumber) (NBuffers / 4) ? GetAccessStrategy(BAS_BULKREAD) : NULL;
	s->tup.t_tableOid = RelationGetRelid(rel);
}

/* the visible tuples of the next page; false after the last page */
static bool
sm_aff_scan_page(SmAffScan *s)
{
	Page		page;
	bool		all_visible;
	OffsetNumber maxoff;
	BlockNumber blk;

	if (BufferIsValid(s->buf))
		ReleaseBuffer(s->buf);
	s->buf = InvalidBuffer;
	s->ntup = s->cur = 0;
	if (s->next_blk >= s->nblocks)
		return false;
	CHECK_FOR_INTERRUPTS();
	blk = s->blk = s->next_blk++;
	s->buf = ReadBufferExtended(s->rel, MAIN_FORKNUM, blk, RBM_NORMAL, s->strategy);
	heap_page_prune_opt(s->rel, s->buf);
	LockBuffer(s->buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(s->buf);
	all_visible = PageIsAllVisible(page) && !s->snap->takenDuringRecovery;
	maxoff = PageGetMaxOffsetNumber(page);
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		ItemId		lp = PageGetItemId(page, off);

		if (!ItemIdIsNormal(lp))
			continue;
		if (!all_visible)
		{
			HeapTupleData t;

			t.t_tableOid = s->tup.t_tableOid;
			t.t_data = (HeapTupleHeader) PageGetItem(page, lp);
			t.t_len = ItemIdGetLength(lp);
			ItemPointerSet(&t.t_self, blk, off);
			if (!HeapTupleSatisfiesVisibility(&t, s->snap, s->buf))
				continue;
		}
		s->vis[s->ntup++] = off;
		__builtin_prefetch(PageGetItem(page, lp));
	}
	LockBuffer(s->buf, BUFFER_LOCK_UNLOCK);
	return true;
}

/* the next visible tuple, valid until the next call */
static inline HeapTuple
sm_aff_scan_next(SmAffScan *s)
{
	Page		page;
	ItemId		lp;
	OffsetNumber off;

	if (s->tscan != NULL)
		return sm_aff_next(s->tscan);
	while (s->cur >= s->ntup)
		if (!sm_aff_scan_page(s))
			return NULL;
	page = BufferGetPage(s->buf);
	off = s->vis[s->cur++];
	lp = PageGetItemId(page, off);
	s->tup.t_data = (HeapTupleHeader) PageGetItem(page, lp);
	s->tup.t_len = ItemIdGetLength(lp);
	ItemPointerSet(&s->tup.t_self, s->blk, off);
	return &s->tup;
}

static void
sm_aff_scan_end(SmAffScan *s)
{
	if (s->tscan != NULL)
	{
		table_endscan(s->tscan);
		return;
	}
	if (BufferIsValid(s->buf))
		ReleaseBuffer(s->buf);
	if (s->strategy != NULL)
		FreeAccessStrategy(s->strategy);
}

static AttrNumber
sm_aff_attnum(Relation rel, const char *name)
{
	AttrNumber	a = get_attnum(RelationGetRelid(rel), name);

	if (a == InvalidAttrNumber)
		elog(ERROR, "column %s.%s does not exist", RelationGetRelationName(rel), name);
	return a;
}

/*
 * The offsets of the first natts columns of a tuple without nulls, when
 * they all have a fixed length (then the same in every such tuple).
 */
static bool
sm_aff_fixed_offsets(TupleDesc desc, int natts, uint32 *offs)
{
	uint32		off = 0;

	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attlen <= 0 || att->attisdropped)
			return false;
		off = att_align_nominal(off, att->attalign);
		offs[i] = off;
		off += att->attlen;
	}
	return true;
}

/* has a heap tuple a null among its first natts columns, or fewer columns? */
static inline bool
sm_aff_short_or_null(HeapTupleHeader tup, int natts)
{
	if (HeapTupleHeaderGetNatts(tup) < natts)
		return true;
	if (!(tup->t_infomask & HEAP_HASNULL))
		return false;
	for (int i = 0; i < natts; i++)
		if (att_isnull(i, tup->t_bits))
			return true;
	return false;
}

/* deal ids -> account numbers: dense ids in an array, others in a hash */
typedef struct SmAffDeals
{
	int64		min_id;
	int64		range;			/* array length; 0: the hash */
	int32	   *account;		/* [deal_id - min_id], -1: not a won deal */
	sm_affmap_hash *hash;
} SmAffDeals;

static void
sm_aff_deals_build(SmAffDeals *deals, const int64 *ids, const int32 *accounts, int64 n,
				   int64 min_id, int64 max_id)
{
	uint64		range = n > 0 ? (uint64) max_id - (uint64) min_id + 1 : 0;

	memset(deals, 0, sizeof(*deals));
	/* at most 16 slots a won deal (64 bytes) and 256 MB: else the hash */
	if (n > 0 && range <= (uint64) Max(n * 16, 65536) && range <= MaxAllocHugeSize / sizeof(int32) / 4)
	{
		deals->min_id = min_id;
		deals->range = (int64) range;
		deals->account = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int32) * range);
		memset(deals->account, -1, sizeof(int32) * range);
		for (int64 i = 0; i < n; i++)
			deals->account[ids[i] - min_id] = accounts[i];
		return;
	}
	deals->hash = sm_affmap_create(CurrentMemoryContext, (uint32) Min(Max(n, 1024), 64 * 1024 * 1024), NULL);
	for (int64 i = 0; i < n; i++)
	{
		bool		found;

		sm_affmap_insert(deals->hash, ids[i], &found)->value = accounts[i];
	}
}

/* the account number of a won deal, -1 for any other deal */
static inline int32
sm_aff_deals_get(const SmAffDeals *deals, int64 deal_id)
{
	SmAffEntry *e;

	if (deals->range > 0)
	{
		uint64		i = (uint64) deal_id - (uint64) deals->min_id;

		return i < (uint64) deals->range ? deals->account[i] : -1;
	}
	e = deals->hash ? sm_affmap_lookup(deals->hash, deal_id) : NULL;
	return e ? e->value : -1;
}

/*
 * The won lines straight from the heap: the won deals of the period into
 * deal -> account number, then every line looked up by its deal.
 */
static void
sm_aff_read_direct(SmAffinity *aff, Oid deal_oid, Oid line_oid,
				   sm_affmap_hash *won_stages, bool has_since, DateADT since)
{
	Snapshot	snap = GetActiveSnapshot();
	Relation	rel;
	SmAffScan  *scan = palloc(sizeof(SmAffScan));
	TupleDesc	desc;
	HeapTuple	tup;
	Datum	   *values;
	bool	   *isnull;
	int			natts;
	AttrNumber	a_deal,
				a_account,
				a_stage,
				a_closed,
				a_line_deal,
				a_product;
	SmAffDeals	deals;
	int64	   *won_ids;
	int32	   *won_accounts;
	int64		nwon = 0;
	int64		won_alloc = 1024;
	int64		min_id = PG_INT64_MAX;
	int64		max_id = PG_INT64_MIN;
	int64		last_deal = 0;
	bool		have_last = false;
	int32		last = -1;
	uint32	   *offs;
	bool		fixed;
	TimestampTz since_ts = 0;

	if (has_since)
		since_ts = date2timestamptz_opt_overflow(since, NULL);

	rel = table_open(deal_oid, AccessShareLock);
	desc = RelationGetDescr(rel);
	a_deal = sm_aff_attnum(rel, "deal_id");
	a_account = sm_aff_attnum(rel, "account_id");
	a_stage = sm_aff_attnum(rel, "stage_id");
	a_closed = sm_aff_attnum(rel, "closed_at");
	natts = Max(Max(a_deal, a_account), a_stage);
	if (has_since)
		natts = Max(natts, a_closed);
	values = palloc(sizeof(Datum) * natts);
	isnull = palloc(sizeof(bool) * natts);
	won_ids = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * won_alloc);
	won_accounts = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int32) * won_alloc);
	sm_aff_scan_begin(scan, rel, snap);
	while ((tup = sm_aff_scan_next(scan)) != NULL)
	{
		int64		deal_id;

		CHECK_FOR_INTERRUPTS();
		sm_aff_deform(tup, desc, natts, values, isnull);
		if (isnull[a_stage - 1] ||
			sm_affmap_lookup(won_stages, DatumGetInt64(values[a_stage - 1])) == NULL)
			continue;
		if (has_since &&
			(isnull[a_closed - 1] || DatumGetTimestampTz(values[a_closed - 1]) < since_ts))
			continue;
		if (isnull[a_account - 1] || isnull[a_deal - 1])
			continue;
		if (nwon >= won_alloc)
		{
			won_alloc *= 2;
			won_ids = repalloc_huge(won_ids, sizeof(int64) * won_alloc);
			won_accounts = repalloc_huge(won_accounts, sizeof(int32) * won_alloc);
		}
		deal_id = DatumGetInt64(values[a_deal - 1]);
		won_ids[nwon] = deal_id;
		won_accounts[nwon++] = (int32) sm_aff_account(aff, DatumGetInt64(values[a_account - 1]));
		min_id = Min(min_id, deal_id);
		max_id = Max(max_id, deal_id);
	}
	sm_aff_scan_end(scan);
	table_close(rel, AccessShareLock);
	sm_aff_deals_build(&deals, won_ids, won_accounts, nwon, min_id, max_id);
	pfree(won_ids);
	pfree(won_accounts);

	rel = table_open(line_oid, AccessShareLock);
	desc = RelationGetDescr(rel);
	a_line_deal = sm_aff_attnum(rel, "deal_id");
	a_product = sm_aff_attnum(rel, "product_id");
	natts = Max(a_line_deal, a_product);
	values = palloc(sizeof(Datum) * natts);
	isnull = palloc(sizeof(bool) * natts);
	offs = palloc(sizeof(uint32) * natts);
	fixed = sm_aff_fixed_offsets(desc, natts, offs);
	sm_aff_scan_begin(scan, rel, snap);
	while ((tup = sm_aff_scan_next(scan)) != NULL)
	{
		int64		deal_id;
		int64		product_id;
		int			f;

		CHECK_FOR_INTERRUPTS();
		if (fixed && !sm_aff_short_or_null(tup->t_data, natts))
		{
			/* the usual line: its columns at fixed offsets */
			char	   *tp = (char *) tup->t_data + tup->t_data->t_hoff;

			deal_id = *(int64 *) (tp + offs[a_line_deal - 1]);
			product_id = *(int64 *) (tp + offs[a_product - 1]);
		}
		else
		{
			sm_aff_deform(tup, desc, natts, values, isnull);
			if (isnull[a_line_deal - 1] || isnull[a_product - 1])
				continue;
			deal_id = DatumGetInt64(values[a_line_deal - 1]);
			product_id = DatumGetInt64(values[a_product - 1]);
		}
		/* a deal's lines are mostly stored together: look it up once */
		if (!have_last || deal_id != last_deal)
		{
			last = sm_aff_deals_get(&deals, deal_id);
			last_deal = deal_id;
			have_last = true;
		}
		if (last < 0)
			continue;			/* not a won deal of the period */
		f = sm_aff_family(aff, product_id);
		if (f >= 0)
			sm_aff_set(aff, last, f);
	}
	sm_aff_scan_end(scan);
	table_close(rel, AccessShareLock);
}

typedef struct SmRule
{
	int			a;
	int			b;
	int64		both;
	int64		n_a;
	int64		n_b;
} SmRule;

/* sort rules by lift (both / (n_a * n_b)), descending, then by names */
static char **sm_rule_names;

static int
sm_rule_cmp(const void *x, const void *y)
{
	const SmRule *r = x;
	const SmRule *s = y;

	/* r.both / (r.n_a r.n_b) vs s.both / (s.n_a s.n_b), exactly, in 128 bits */
	int128		lhs = (int128) r->both * s->n_a * s->n_b;
	int128		rhs = (int128) s->both * r->n_a * r->n_b;
	int			c;

	if (lhs != rhs)
		return lhs > rhs ? -1 : 1;
	c = strcmp(sm_rule_names[r->a], sm_rule_names[s->a]);
	if (c != 0)
		return c;
	return strcmp(sm_rule_names[r->b], sm_rule_names[s->b]);
}

static Datum
sm_ratio(int64 num, int64 den)
{
	return NumericGetDatum(sm_numeric_round(sm_numeric_div(sm_numeric_from_int64(num),
														   sm_numeric_from_int64(den)), 4));
}

Datum
sm_product_affinity(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SmAffinity	aff;
	sm_affmap_hash *won_stages;
	int			nfamilies;
	char	  **names;
	int64	   *n_family;
	int64	   *n_pair;
	int64		n_accounts;
	SmRule	   *rules;
	int			nrules = 0;
	int			ret;
	bool		has_since = !PG_ARGISNULL(0);
	DateADT		since = has_since ? PG_GETARG_DATEADT(0) : 0;
	Oid			deal_oid;
	Oid			line_oid;

	InitMaterializedSRF(fcinfo, 0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	memset(&aff, 0, sizeof(aff));
	aff.cxt = CurrentMemoryContext;

	/* product -> family number; family names in order */
	ret = SPI_execute("SELECT p.product_id, dense_rank() OVER (ORDER BY p.family) - 1, p.family"
					  " FROM salesmgmt.product p ORDER BY 2", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading salesmgmt.product failed: %s", SPI_result_code_string(ret));
	aff.products = sm_affmap_create(CurrentMemoryContext, Max(SPI_processed, 16), NULL);
	nfamilies = 0;
	names = palloc(sizeof(char *) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		bool		found;
		int64		pid = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
		int			fam = (int) DatumGetInt64(SPI_getbinval(tup, td, 2, &isnull));
		SmAffEntry *pf = sm_affmap_insert(aff.products, pid, &found);

		pf->value = fam;
		if (fam >= nfamilies)
		{
			names[fam] = SPI_getvalue(tup, td, 3);
			nfamilies = fam + 1;
		}
	}
	aff.nwords = Max(1, (nfamilies + 63) / 64);

	/* product ids are usually dense: a plain array then */
	{
		sm_affmap_iterator it;
		SmAffEntry *e;
		int64		max_id = -1;

		sm_affmap_start_iterate(aff.products, &it);
		while ((e = sm_affmap_iterate(aff.products, &it)) != NULL)
			max_id = Max(max_id, e->key);
		if (max_id >= 0 && max_id < (int64) SPI_processed * 4 + 1024)
		{
			aff.nproduct_ids = max_id + 1;
			aff.product_family = palloc(sizeof(int32) * aff.nproduct_ids);
			memset(aff.product_family, -1, sizeof(int32) * aff.nproduct_ids);
			sm_affmap_start_iterate(aff.products, &it);
			while ((e = sm_affmap_iterate(aff.products, &it)) != NULL)
				if (e->key >= 0)
					aff.product_family[e->key] = e->value;
		}
	}
	aff.accounts = sm_affmap_create(CurrentMemoryContext, 1024, NULL);

	/* accounts -> families bought: straight from the heap where allowed */
	deal_oid = sm_relation_oid("deal");
	line_oid = sm_relation_oid("deal_line");
	if (sm_aff_direct_ok(deal_oid) && sm_aff_direct_ok(line_oid))
	{
		ret = SPI_execute("SELECT s.stage_id FROM salesmgmt.stage s WHERE s.outcome = 'won'", true, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "reading salesmgmt.stage failed: %s", SPI_result_code_string(ret));
		won_stages = sm_affmap_create(CurrentMemoryContext, 16, NULL);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		found;

			sm_affmap_insert(won_stages, sm_spi_int64(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, 0),
							 &found);
		}
		sm_aff_read_direct(&aff, deal_oid, line_oid, won_stages, has_since, since);
	}
	else
		sm_aff_read_sql(&aff, has_since, since);

	/* accounts with at least one won line (the direct path also met others) */
	n_accounts = 0;

	/* counts per family and per pair (a < b) */
	n_family = palloc0(sizeof(int64) * Max(nfamilies, 1));
	n_pair = palloc0(sizeof(int64) * Max(nfamilies * nfamilies, 1));
	for (int64 k = 0; k < aff.naccounts; k++)
	{
		uint64	   *m = aff.masks + k * aff.nwords;
		bool		any = false;

		for (int w = 0; w < aff.nwords; w++)
			any |= (m[w] != 0);
		n_accounts += any;

		for (int wa = 0; wa < aff.nwords; wa++)
		{
			uint64		bits_a = m[wa];

			while (bits_a != 0)
			{
				int			a = wa * 64 + pg_rightmost_one_pos64(bits_a);

				bits_a &= bits_a - 1;
				n_family[a]++;
				for (int wb = wa; wb < aff.nwords; wb++)
				{
					uint64		bits_b = (wb == wa) ? bits_a : m[wb];

					while (bits_b != 0)
					{
						int			b = wb * 64 + pg_rightmost_one_pos64(bits_b);

						bits_b &= bits_b - 1;
						n_pair[a * nfamilies + b]++;
					}
				}
			}
		}
	}

	/* both directions of every pair bought together */
	rules = palloc(sizeof(SmRule) * Max(nfamilies * nfamilies, 1));
	for (int a = 0; a < nfamilies; a++)
		for (int b = a + 1; b < nfamilies; b++)
		{
			int64		both = n_pair[a * nfamilies + b];

			if (both == 0)
				continue;
			rules[nrules++] = (SmRule) {a, b, both, n_family[a], n_family[b]};
			rules[nrules++] = (SmRule) {b, a, both, n_family[b], n_family[a]};
		}
	sm_rule_names = names;
	qsort(rules, nrules, sizeof(SmRule), sm_rule_cmp);

	for (int i = 0; i < nrules; i++)
	{
		SmRule	   *r = &rules[i];
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		values[0] = CStringGetTextDatum(names[r->a]);
		values[1] = CStringGetTextDatum(names[r->b]);
		values[2] = Int64GetDatum(r->both);
		values[3] = sm_ratio(r->both, n_accounts);
		values[4] = sm_ratio(r->both, r->n_a);
		values[5] = NumericGetDatum(sm_numeric_round(
			sm_numeric_div(sm_numeric_mul(sm_numeric_from_int64(r->both),
										  sm_numeric_from_int64(n_accounts)),
						   sm_numeric_mul(sm_numeric_from_int64(r->n_a),
										  sm_numeric_from_int64(r->n_b))), 4));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

/*-------------------------------------------------------------------------
 *
 * product.c
 *	  Deal line items: the checks and prices of each line, and the deal
 *	  amount that follows its lines.
 *
 * Three triggers (declared in product.sql):
 *
 *	  deal_line_check (BEFORE ROW on deal_line) refuses bad lines with a
 *	  precise SQLSTATE before anything is written (SM080 product not priced
 *	  in the deal's price book, SM081 inactive product, SM082 closed deal,
 *	  SM084 quantity or discount out of range, SM087 no usable price book,
 *	  SM090 a term on a one-off product) and takes a missing unit price from
 *	  the price book (the volume tier of the quantity) and a missing term
 *	  from the product (recurring products: subscriptions.md).  Deals and prices looked up are cached for the rest of
 *	  the statement (same transaction, same command id), so a bulk INSERT
 *	  reads each deal and each (book, product) once.  A deal is read from
 *	  its primary key (no SPI query per deal) unless row-level security
 *	  applies to the user on salesmgmt.deal; its price book once per
 *	  statement for each (named book, currency).
 *
 *	  deal_line_amounts_* (AFTER STATEMENT, transition tables) recompute the
 *	  amount and max_discount_pct of every deal the statement touched and
 *	  write them with one UPDATE: a bulk insert of any size updates each deal
 *	  once, and the deal's own triggers (stage rules, history) see an
 *	  ordinary UPDATE.
 *
 *	  deal_amount_from_lines (BEFORE ROW on deal, only when amount, currency
 *	  or max_discount_pct change) refuses such a change unless it comes from
 *	  the statement above (SM083).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "salesmgmt.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_deal_line_check);
PG_FUNCTION_INFO_V1(sm_deal_line_amounts);
PG_FUNCTION_INFO_V1(sm_deal_amount_guard);

/* columns of deal_line the trigger reads */
typedef struct SmLineCols
{
	Oid			relid;
	AttrNumber	deal_id;
	AttrNumber	product_id;
	AttrNumber	quantity;
	AttrNumber	unit_price;
	AttrNumber	discount_pct;
	AttrNumber	term_months;
	AttrNumber	period_months;
} SmLineCols;

/* what a line needs to know of its deal */
typedef struct SmLineDeal
{
	int64		deal_id;
	bool		found;
	bool		closed;
	bool		named_book;		/* the deal names its price book */
	bool		have_book;		/* a book was found (named or default) */
	bool		book_usable;	/* active and valid today */
	int64		book_id;
	char		currency[4];
	char	   *book_name;
} SmLineDeal;

/* the prices of one product in one book */
typedef struct SmPriceKey
{
	int64		book_id;
	int64		product_id;
} SmPriceKey;

typedef struct SmPrice
{
	SmPriceKey	key;
	bool		found;			/* the product exists */
	bool		active;
	char	   *sku;
	int			period_months;	/* months per billing period; 0: not recurring */
	int			default_term;	/* the product's default_term_months */
	int			ntiers;
	Numeric    *min_quantity;	/* ascending */
	Numeric    *unit_price;
} SmPrice;

static SmLineCols sm_line_cols;

/* the statement cache: valid for one transaction and command id */
static MemoryContext sm_line_cxt = NULL;
static LocalTransactionId sm_line_lxid = InvalidLocalTransactionId;
static CommandId sm_line_cid = InvalidCommandId;
static SmLineDeal sm_last_deal;
static HTAB *sm_price_hash = NULL;

/*
 * The price book of deals that name none (per currency) or name one, read
 * once per statement; and whether the deals themselves may be read from
 * their primary key (no row-level security applies, SELECT granted).
 */
typedef struct SmLineBook
{
	int64		named_id;		/* the book the deal names; -1: its currency's default */
	char		currency[4];
	bool		have_book;
	bool		book_usable;
	int64		book_id;
	char	   *book_name;
} SmLineBook;

#define SM_LINE_BOOKS 16
static SmLineBook sm_books[SM_LINE_BOOKS];
static int	sm_nbooks = 0;
static int	sm_deal_direct = -1;	/* -1: not decided for this statement */
static Oid	sm_deal_relid = InvalidOid; /* salesmgmt.deal, when sm_deal_direct */

static SPIPlanPtr sm_deal_plan = NULL;
static SPIPlanPtr sm_price_plan = NULL;
static SPIPlanPtr sm_book_plan = NULL;
static SPIPlanPtr sm_has_lines_plan = NULL;

/* set while deal_line_amounts writes deal amounts */
static bool sm_lines_writing = false;

static Numeric sm_hundred = NULL;
static Numeric sm_zero = NULL;

/* the columns of salesmgmt.deal a line reads */
static Oid	sm_deal_cols_relid = InvalidOid;
static AttrNumber sm_deal_currency_att;
static AttrNumber sm_deal_closed_att;
static AttrNumber sm_deal_book_att;

/*
 * Is this session loading a dump (pg_restore, or a script pg_dump wrote)?
 * Both settings off is what such sessions, and no ordinary one, do.  The
 * dump holds the lines, the prices and the deal amounts as they were;
 * nothing is checked, priced or recomputed then.  Only the table's owner
 * (who could disable the triggers anyway) is let through.
 */
static bool
sm_line_restoring(Relation rel)
{
	if (row_security || check_function_bodies)
		return false;
	return sm_relation_ownercheck(RelationGetRelid(rel), GetUserId());
}

/* Start a new cache when the transaction or the command changed. */
static void
sm_line_cache_current(void)
{
	CommandId	cid = GetCurrentCommandId(false);
	HASHCTL		ctl;

	if (sm_line_cxt != NULL && sm_line_lxid == SM_MY_LXID && sm_line_cid == cid)
		return;
	if (sm_line_cxt == NULL)
		sm_line_cxt = AllocSetContextCreate(TopMemoryContext, "salesmgmt deal line cache",
											ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(sm_line_cxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(SmPriceKey);
	ctl.entrysize = sizeof(SmPrice);
	ctl.hcxt = sm_line_cxt;
	sm_price_hash = hash_create("salesmgmt prices", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	sm_last_deal.deal_id = -1;
	sm_nbooks = 0;
	sm_deal_direct = -1;
	sm_line_lxid = SM_MY_LXID;
	sm_line_cid = cid;
	if (sm_hundred == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		sm_hundred = sm_numeric_from_int64(100);
		sm_zero = sm_numeric_from_int64(0);
		MemoryContextSwitchTo(old);
	}
}

static SPIPlanPtr
sm_line_plan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*plan = p;
	}
	return *plan;
}

static AttrNumber
sm_line_attnum(Relation rel, const char *name)
{
	int			attnum = SPI_fnumber(RelationGetDescr(rel), name);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of salesmgmt.%s does not exist", name, RelationGetRelationName(rel)),
				 errhint("The salesmgmt extension may be damaged; reinstall it.")));
	return (AttrNumber) attnum;
}

static const SmLineCols *
sm_line_columns(Relation rel)
{
	if (sm_line_cols.relid == RelationGetRelid(rel))
		return &sm_line_cols;
	sm_line_cols.deal_id = sm_line_attnum(rel, "deal_id");
	sm_line_cols.product_id = sm_line_attnum(rel, "product_id");
	sm_line_cols.quantity = sm_line_attnum(rel, "quantity");
	sm_line_cols.unit_price = sm_line_attnum(rel, "unit_price");
	sm_line_cols.discount_pct = sm_line_attnum(rel, "discount_pct");
	sm_line_cols.term_months = sm_line_attnum(rel, "term_months");
	sm_line_cols.period_months = sm_line_attnum(rel, "period_months");
	sm_line_cols.relid = RelationGetRelid(rel);
	return &sm_line_cols;
}

/*
 * The price book a deal uses: the one it names, or its currency's default;
 * read once per statement for each (named book, currency).
 */
static void
sm_line_deal_book(SmLineDeal *d, int64 named_id)
{
	SmLineBook *b = NULL;
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	int			ret;

	for (int i = 0; i < sm_nbooks; i++)
		if (sm_books[i].named_id == named_id && strcmp(sm_books[i].currency, d->currency) == 0)
		{
			b = &sm_books[i];
			break;
		}
	if (b == NULL)
	{
		SmLineBook	nb;

		memset(&nb, 0, sizeof(nb));
		nb.named_id = named_id;
		strlcpy(nb.currency, d->currency, sizeof(nb.currency));
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		args[0] = Int64GetDatum(named_id);
		nulls[0] = named_id < 0 ? 'n' : ' ';
		args[1] = CStringGetTextDatum(d->currency);
		ret = SPI_execute_plan(sm_line_plan(&sm_book_plan,
											"SELECT b.price_book_id, b.name,"
											" b.active AND coalesce(b.valid_from <= current_date, true)"
											"   AND coalesce(b.valid_until >= current_date, true)"
											" FROM salesmgmt.price_book b WHERE b.price_book_id ="
											"   coalesce($1, (SELECT pb.price_book_id"
											"     FROM salesmgmt.price_book pb"
											"     WHERE pb.currency = $2::char(3) AND pb.is_default))",
											2, argtypes),
							   args, nulls, true, 1);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "reading salesmgmt.price_book failed: %s", SPI_result_code_string(ret));
		if (SPI_processed == 1)
		{
			HeapTuple	tup = SPI_tuptable->vals[0];
			TupleDesc	td = SPI_tuptable->tupdesc;
			bool		isnull;

			nb.have_book = true;
			nb.book_id = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
			nb.book_name = MemoryContextStrdup(sm_line_cxt, SPI_getvalue(tup, td, 2));
			nb.book_usable = DatumGetBool(SPI_getbinval(tup, td, 3, &isnull)) && !isnull;
		}
		SPI_finish();
		if (sm_nbooks < SM_LINE_BOOKS)
			b = &sm_books[sm_nbooks++];
		else
			b = &sm_books[SM_LINE_BOOKS - 1];	/* many books: the last slot turns */
		*b = nb;
	}
	d->have_book = b->have_book;
	d->book_id = b->book_id;
	d->book_name = b->book_name;
	d->book_usable = b->book_usable;
}

/*
 * May this statement read deals straight from their primary key?  Only
 * when no row-level security applies to the user on salesmgmt.deal and
 * the user may read it: then the rows are those a query would see.
 */
static bool
sm_line_deal_direct(void)
{
	if (sm_deal_direct < 0)
	{
		Oid			relid = sm_relation_oid("deal");

		sm_deal_relid = relid;
		sm_deal_direct = check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED &&
			pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
	}
	return sm_deal_direct > 0;
}

/*
 * The deal's currency, state and named book from its primary key, under
 * the statement's snapshot (what the query below sees).
 */
static void
sm_line_deal_read(SmLineDeal *d, int64 deal_id)
{
	Relation	rel = table_open(sm_deal_relid, AccessShareLock);
	Relation	idx;
	IndexScanDesc scan;
	ScanKeyData key;
	TupleTableSlot *slot;
	int64		named_id = -1;

	if (sm_deal_cols_relid != RelationGetRelid(rel))
	{
		sm_deal_currency_att = sm_line_attnum(rel, "currency");
		sm_deal_closed_att = sm_line_attnum(rel, "closed_at");
		sm_deal_book_att = sm_line_attnum(rel, "price_book_id");
		sm_deal_cols_relid = RelationGetRelid(rel);
	}
	(void) RelationGetIndexList(rel);	/* sets rd_pkindex */
	if (!OidIsValid(rel->rd_pkindex))
		elog(ERROR, "salesmgmt.deal has no primary key");
	idx = index_open(rel->rd_pkindex, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(deal_id));
	scan = sm_index_beginscan(rel, idx, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	d->found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (d->found)
	{
		bool		isnull;
		Datum		v;
		char	   *cur;
		int			len;

		v = slot_getattr(slot, sm_deal_currency_att, &isnull);
		cur = isnull ? pstrdup("") : TextDatumGetCString(v);
		len = strlen(cur);
		while (len > 0 && cur[len - 1] == ' ')
			cur[--len] = '\0';	/* char(3) as text */
		strlcpy(d->currency, cur, sizeof(d->currency));
		(void) slot_getattr(slot, sm_deal_closed_att, &isnull);
		d->closed = !isnull;
		v = slot_getattr(slot, sm_deal_book_att, &isnull);
		d->named_book = !isnull;
		if (!isnull)
			named_id = DatumGetInt64(v);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	if (d->found)
		sm_line_deal_book(d, named_id);
}

/* The deal of a line, with its price book (cached: lines come by deal). */
static const SmLineDeal *
sm_line_deal(int64 deal_id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	SmLineDeal *d = &sm_last_deal;
	int			ret;

	if (d->deal_id == deal_id)
		return d;
	if (sm_line_deal_direct())
	{
		d->deal_id = -1;		/* until read whole */
		sm_line_deal_read(d, deal_id);
		d->deal_id = deal_id;
		return d;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = Int64GetDatum(deal_id);
	ret = SPI_execute_plan(sm_line_plan(&sm_deal_plan,
										"SELECT d.currency::text, d.closed_at IS NOT NULL,"
										" d.price_book_id IS NOT NULL, b.price_book_id, b.name,"
										" b.active AND coalesce(b.valid_from <= current_date, true)"
										"   AND coalesce(b.valid_until >= current_date, true)"
										" FROM salesmgmt.deal d"
										" LEFT JOIN salesmgmt.price_book b ON b.price_book_id ="
										"   coalesce(d.price_book_id, (SELECT pb.price_book_id"
										"     FROM salesmgmt.price_book pb"
										"     WHERE pb.currency = d.currency AND pb.is_default))"
										" WHERE d.deal_id = $1",
										1, argtypes),
						   args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading salesmgmt.deal failed: %s", SPI_result_code_string(ret));
	d->deal_id = deal_id;
	d->found = SPI_processed == 1;
	if (d->found)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *cur = SPI_getvalue(tup, td, 1);

		strlcpy(d->currency, cur, sizeof(d->currency));
		d->closed = DatumGetBool(SPI_getbinval(tup, td, 2, &isnull));
		d->named_book = DatumGetBool(SPI_getbinval(tup, td, 3, &isnull));
		d->book_id = DatumGetInt64(SPI_getbinval(tup, td, 4, &isnull));
		d->have_book = !isnull;
		d->book_name = d->have_book ?
			MemoryContextStrdup(sm_line_cxt, SPI_getvalue(tup, td, 5)) : NULL;
		d->book_usable = d->have_book && DatumGetBool(SPI_getbinval(tup, td, 6, &isnull)) && !isnull;
	}
	SPI_finish();
	return d;
}

/* The prices (tiers) of a product in a book, cached. */
static const SmPrice *
sm_line_price(int64 book_id, int64 product_id)
{
	SmPriceKey	key;
	SmPrice    *p;
	bool		found;
	Oid			argtypes[2] = {INT8OID, INT8OID};
	Datum		args[2];
	int			ret;
	MemoryContext old;

	key.book_id = book_id;
	key.product_id = product_id;
	p = (SmPrice *) hash_search(sm_price_hash, &key, HASH_ENTER, &found);
	if (found)
		return p;
	p->found = false;
	p->ntiers = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = Int64GetDatum(product_id);
	args[1] = Int64GetDatum(book_id);
	ret = SPI_execute_plan(sm_line_plan(&sm_price_plan,
										"SELECT p.sku, p.active, e.min_quantity, e.unit_price,"
										" CASE p.billing_period WHEN 'month' THEN 1 WHEN 'quarter' THEN 3"
										"   WHEN 'year' THEN 12 ELSE 0 END, p.default_term_months"
										" FROM salesmgmt.product p"
										" LEFT JOIN salesmgmt.price_book_entry e"
										"   ON e.product_id = p.product_id AND e.price_book_id = $2"
										" WHERE p.product_id = $1 ORDER BY e.min_quantity",
										2, argtypes),
						   args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading salesmgmt.price_book_entry failed: %s", SPI_result_code_string(ret));
	old = MemoryContextSwitchTo(sm_line_cxt);
	if (SPI_processed > 0)
	{
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;

		p->found = true;
		p->sku = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], td, 1));
		p->active = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], td, 2, &isnull));
		p->period_months = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], td, 5, &isnull));
		p->default_term = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], td, 6, &isnull));
		p->min_quantity = palloc(sizeof(Numeric) * SPI_processed);
		p->unit_price = palloc(sizeof(Numeric) * SPI_processed);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			Datum		q = SPI_getbinval(tup, td, 3, &isnull);

			if (isnull)			/* not in the book */
				continue;
			p->min_quantity[p->ntiers] = DatumGetNumericCopy(q);
			p->unit_price[p->ntiers] = DatumGetNumericCopy(SPI_getbinval(tup, td, 4, &isnull));
			p->ntiers++;
		}
	}
	MemoryContextSwitchTo(old);
	SPI_finish();
	return p;
}

static void
sm_line_refuse_closed(int64 deal_id, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_SM_DEAL_CLOSED),
			 errmsg("deal " INT64_FORMAT " is closed: its lines cannot be %s", deal_id, what),
			 errdetail("A won or lost deal keeps the lines it was closed with."),
			 errhint("Reopen the deal (a stage transition out of its closed stage) or create a new deal.")));
}

static void
sm_line_check_numbers(int64 deal_id, Numeric quantity, Numeric discount)
{
	if (quantity != NULL && sm_numeric_cmp(quantity, sm_zero) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_SM_LINE_OUT_OF_RANGE),
				 errmsg("quantity of a line of deal " INT64_FORMAT " must be more than 0, not %s",
						deal_id, sm_numeric_to_cstring(quantity)),
				 errhint("Delete the line to remove a product from the deal.")));
	if (discount != NULL && (sm_numeric_cmp(discount, sm_zero) < 0 ||
							 sm_numeric_cmp(discount, sm_hundred) > 0))
		ereport(ERROR,
				(errcode(ERRCODE_SM_LINE_OUT_OF_RANGE),
				 errmsg("discount of a line of deal " INT64_FORMAT " must lie between 0 and 100 percent, not %s",
						deal_id, sm_numeric_to_cstring(discount)),
				 errhint("discount_pct is a percentage: 15 means 15%% off.")));
}

/* The deal's price book, or an error saying why there is none. */
static void
sm_line_check_book(const SmLineDeal *d)
{
	if (!d->have_book)
		ereport(ERROR,
				(errcode(ERRCODE_SM_NO_PRICE_BOOK),
				 errmsg("deal " INT64_FORMAT " has no price book", d->deal_id),
				 errdetail("The deal names no price book and currency %s has no default price book.",
						   d->currency),
				 errhint("Set the deal's price_book_id, or mark a %s price book is_default.",
						 d->currency)));
	if (!d->book_usable)
		ereport(ERROR,
				(errcode(ERRCODE_SM_NO_PRICE_BOOK),
				 errmsg("price book \"%s\" of deal " INT64_FORMAT " does not price new lines today",
						d->book_name, d->deal_id),
				 errdetail("The book is inactive or today lies outside its validity (valid_from, valid_until)."),
				 errhint("Give the deal a valid price book of currency %s.", d->currency)));
}

/* The unit price of quantity of a product in the deal's book. */
static Numeric
sm_line_unit_price(const SmLineDeal *d, int64 product_id, Numeric quantity,
				   bool product_is_new)
{
	const SmPrice *p = sm_line_price(d->book_id, product_id);
	int			tier = -1;

	if (!p->found)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("product " INT64_FORMAT " does not exist", product_id),
				 errhint("Products are rows of salesmgmt.product.")));
	if (product_is_new && !p->active)
		ereport(ERROR,
				(errcode(ERRCODE_SM_PRODUCT_INACTIVE),
				 errmsg("product %s is inactive and cannot be sold", p->sku),
				 errdetail("Deal " INT64_FORMAT ", product " INT64_FORMAT ".", d->deal_id, product_id),
				 errhint("Choose an active product, or set the product's active column to true.")));
	if (p->ntiers == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SM_PRODUCT_NOT_PRICED),
				 errmsg("product %s has no price in price book \"%s\" (%s) of deal " INT64_FORMAT,
						p->sku, d->book_name, d->currency, d->deal_id),
				 errdetail("A deal sells only products of its own price book, in its currency."),
				 errhint("Add the product to the price book (salesmgmt.price_book_entry), or give the deal a price book that lists it.")));
	if (quantity == NULL)
		return NULL;
	for (int i = 0; i < p->ntiers; i++)
		if (sm_numeric_cmp(p->min_quantity[i], quantity) <= 0)
			tier = i;
	if (tier < 0)
		ereport(ERROR,
				(errcode(ERRCODE_SM_PRODUCT_NOT_PRICED),
				 errmsg("product %s has no price for quantity %s in price book \"%s\"",
						p->sku, sm_numeric_to_cstring(quantity), d->book_name),
				 errdetail("Its smallest tier starts at %s.", sm_numeric_to_cstring(p->min_quantity[0])),
				 errhint("Order at least that quantity, or give the line a unit_price.")));
	return p->unit_price[tier];
}

static Numeric
sm_line_numeric(HeapTuple tup, TupleDesc td, AttrNumber attnum)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, attnum, td, &isnull);

	return isnull ? NULL : DatumGetNumeric(d);
}

static int64
sm_line_int64(HeapTuple tup, TupleDesc td, AttrNumber attnum, bool *isnull)
{
	Datum		d = heap_getattr(tup, attnum, td, isnull);

	return *isnull ? 0 : DatumGetInt64(d);
}

static bool
sm_numeric_same(Numeric a, Numeric b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return sm_numeric_cmp(a, b) == 0;
}

/*
 * The line as written: the price taken from the book (when unit_price is
 * not NULL), and the term of a recurring product (the product's default
 * when none is given, and the months of its billing period); a one-off
 * product takes no term (SM090).
 */
static HeapTuple
sm_line_set_term(HeapTuple newtup, TupleDesc td, const SmLineCols *cols, const SmPrice *p,
				 Numeric unit_price)
{
	int			attnums[3];
	Datum		values[3];
	bool		nulls[3];
	int			n = 0;
	bool		isnull;
	Datum		term = heap_getattr(newtup, cols->term_months, td, &isnull);

	if (p->period_months == 0 && !isnull)
		ereport(ERROR,
				(errcode(ERRCODE_SM_TERM_NOT_RECURRING),
				 errmsg("product %s is not recurring: its line takes no term_months", p->sku),
				 errdetail("term_months is the subscription term of a recurring product's line."),
				 errhint("Leave term_months null, or sell a recurring product.")));
	attnums[n] = cols->term_months;
	values[n] = p->period_months == 0 ? (Datum) 0 : isnull ? Int32GetDatum(p->default_term) : term;
	nulls[n++] = p->period_months == 0;
	attnums[n] = cols->period_months;
	values[n] = Int32GetDatum(p->period_months);
	nulls[n++] = p->period_months == 0;
	if (unit_price != NULL)
	{
		attnums[n] = cols->unit_price;
		values[n] = NumericGetDatum(unit_price);
		nulls[n++] = false;
	}
	return heap_modify_tuple_by_cols(newtup, td, n, attnums, values, nulls);
}

Datum
sm_deal_line_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	td;
	const SmLineCols *cols;
	HeapTuple	newtup = NULL;
	HeapTuple	oldtup = NULL;
	bool		isnull;
	int64		deal_id;
	int64		product_id;
	Numeric		quantity;
	Numeric		unit_price;
	const SmLineDeal *d;
	bool		product_is_new;
	bool		reprice;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_deal_line_check must be fired BEFORE INSERT OR UPDATE OR DELETE FOR EACH ROW")));
	rel = trigdata->tg_relation;
	td = RelationGetDescr(rel);
	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		oldtup = trigdata->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		oldtup = trigdata->tg_trigtuple;
		newtup = trigdata->tg_newtuple;
	}
	else
		newtup = trigdata->tg_trigtuple;

	if (sm_line_restoring(rel))
		return PointerGetDatum(newtup != NULL ? newtup : oldtup);

	cols = sm_line_columns(rel);
	sm_line_cache_current();

	/*
	 * Removing a line, or changing one without touching its deal, product
	 * or price source, needs no lookup here: the statement trigger refuses
	 * it if the deal is closed (before anything is written).
	 */
	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		return PointerGetDatum(oldtup);

	deal_id = sm_line_int64(newtup, td, cols->deal_id, &isnull);
	if (isnull)
		return PointerGetDatum(newtup); /* NOT NULL refuses it */
	product_id = sm_line_int64(newtup, td, cols->product_id, &isnull);
	if (isnull)
		return PointerGetDatum(newtup);
	quantity = sm_line_numeric(newtup, td, cols->quantity);
	unit_price = sm_line_numeric(newtup, td, cols->unit_price);
	sm_line_check_numbers(deal_id, quantity,
						  sm_line_numeric(newtup, td, cols->discount_pct));
	if (unit_price != NULL && sm_numeric_cmp(unit_price, sm_zero) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_SM_LINE_OUT_OF_RANGE),
				 errmsg("unit price of a line of deal " INT64_FORMAT " must not be negative, not %s",
						deal_id, sm_numeric_to_cstring(unit_price)),
				 errhint("Give a discount_pct instead, or leave unit_price null to take the price book's.")));

	/*
	 * The catalogue is checked for a new line, a new product or a new deal;
	 * the price is taken from the book when none is given, and again when
	 * quantity or product change without a new price.
	 */
	product_is_new = true;
	reprice = unit_price == NULL;
	if (oldtup != NULL)
	{
		bool		same_deal = sm_line_int64(oldtup, td, cols->deal_id, &isnull) == deal_id;
		bool		same_product = sm_line_int64(oldtup, td, cols->product_id, &isnull) == product_id;
		bool		same_quantity = sm_numeric_same(quantity, sm_line_numeric(oldtup, td, cols->quantity));
		bool		same_price = sm_numeric_same(unit_price, sm_line_numeric(oldtup, td, cols->unit_price));

		bool		term_set;
		bool		period_set;

		(void) heap_getattr(newtup, cols->term_months, td, &isnull);
		term_set = !isnull;
		(void) heap_getattr(newtup, cols->period_months, td, &isnull);
		period_set = !isnull;
		product_is_new = !same_product;
		if (same_price && (!same_product || !same_quantity))
			reprice = true;
		/* a term left as it was (or null on a one-off product) needs no lookup */
		if (same_deal && same_product && !reprice && term_set == period_set)
			return PointerGetDatum(newtup);
	}

	d = sm_line_deal(deal_id);
	if (!d->found)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("deal " INT64_FORMAT " does not exist", deal_id),
				 errhint("Lines are added to an existing deal you may see.")));
	if (d->closed)
		sm_line_refuse_closed(deal_id, "added or changed");

	sm_line_check_book(d);
	if (reprice)
	{
		unit_price = sm_line_unit_price(d, product_id, quantity, product_is_new);
		if (unit_price == NULL)
			return PointerGetDatum(newtup); /* null quantity: NOT NULL refuses it */
	}
	else
	{
		(void) sm_line_unit_price(d, product_id, NULL, product_is_new);
		unit_price = NULL;
	}
	return PointerGetDatum(sm_line_set_term(newtup, td, cols, sm_line_price(d->book_id, product_id),
											unit_price));
}

/* ----------------------------------------------------------------------
 * The deal amount
 * ----------------------------------------------------------------------
 */

/*
 * One statement: the deals the lines touched, their new sums, the UPDATE of
 * those that changed; closed deals are not updated but reported, and the
 * caller refuses the whole statement then.  Returns the first closed deal,
 * how many deals should change, how many did, and the first that did not
 * (row-level security let the caller see but not update it).
 */
#define SM_AMOUNTS_SQL \
	"WITH t AS (SELECT DISTINCT deal_id FROM (%s) x)," \
	" s AS (SELECT l.deal_id, sum(l.line_amount) AS total, max(l.discount_pct) AS maxd" \
	"       FROM salesmgmt.deal_line l WHERE l.deal_id IN (SELECT deal_id FROM t)" \
	"       GROUP BY l.deal_id)," \
	" c AS (SELECT d.deal_id, d.closed_at IS NOT NULL AS closed, coalesce(s.total, 0) AS total, s.maxd" \
	"       FROM salesmgmt.deal d JOIN t ON t.deal_id = d.deal_id" \
	"       LEFT JOIN s ON s.deal_id = d.deal_id" \
	"       WHERE d.closed_at IS NOT NULL" \
	"          OR d.amount IS DISTINCT FROM coalesce(s.total, 0)" \
	"          OR d.max_discount_pct IS DISTINCT FROM s.maxd)," \
	" u AS (UPDATE salesmgmt.deal d SET amount = c.total, max_discount_pct = c.maxd" \
	"       FROM c WHERE d.deal_id = c.deal_id AND NOT c.closed RETURNING d.deal_id)" \
	" SELECT (SELECT min(c.deal_id) FROM c WHERE c.closed)," \
	"        (SELECT count(*) FROM c WHERE NOT c.closed), (SELECT count(*) FROM u)," \
	"        (SELECT min(c.deal_id) FROM c WHERE NOT c.closed AND c.deal_id NOT IN (SELECT deal_id FROM u))"

Datum
sm_deal_line_amounts(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *touched;
	char	   *sql;
	int			ret;
	int64		wanted;
	int64		done;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_deal_line_amounts must be fired AFTER ... FOR EACH STATEMENT")));
	if (sm_line_restoring(trigdata->tg_relation))
		return PointerGetDatum(NULL);

	if (trigdata->tg_newtable != NULL && trigdata->tg_oldtable != NULL)
		touched = "SELECT deal_id FROM new_lines UNION ALL SELECT deal_id FROM old_lines";
	else if (trigdata->tg_newtable != NULL)
		touched = "SELECT deal_id FROM new_lines";
	else if (trigdata->tg_oldtable != NULL)
		touched = "SELECT deal_id FROM old_lines";
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_deal_line_amounts needs the transition tables new_lines and/or old_lines")));
	sql = psprintf(SM_AMOUNTS_SQL, touched);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_register_trigger_data(trigdata) != SPI_OK_TD_REGISTER)
		elog(ERROR, "SPI_register_trigger_data failed");
	sm_lines_writing = true;
	PG_TRY();
	{
		ret = SPI_execute(sql, false, 0);
	}
	PG_FINALLY();
	{
		sm_lines_writing = false;
	}
	PG_END_TRY();
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "updating deal amounts failed: %s", SPI_result_code_string(ret));
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;

		int64		closed_deal = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));

		if (!isnull)
			sm_line_refuse_closed(closed_deal, "changed");
		wanted = DatumGetInt64(SPI_getbinval(tup, td, 2, &isnull));
		done = DatumGetInt64(SPI_getbinval(tup, td, 3, &isnull));
		if (wanted != done)
		{
			int64		deal_id = DatumGetInt64(SPI_getbinval(tup, td, 4, &isnull));

			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("the lines of deal " INT64_FORMAT " cannot change: you may not update the deal", deal_id),
					 errdetail("A deal's amount is the sum of its lines; changing them changes the deal, which row-level security lets only the owner's side update."),
					 errhint("Ask the deal's owner or their manager to change the lines.")));
		}
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}

Datum
sm_deal_amount_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	td;
	HeapTuple	oldtup;
	HeapTuple	newtup;
	int			deal_att;
	int			disc_att;
	int			amount_att;
	bool		isnull;
	int64		deal_id;
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	int			ret;
	bool		has_lines;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sm_deal_amount_guard must be fired BEFORE INSERT OR UPDATE FOR EACH ROW")));
	rel = trigdata->tg_relation;
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		/* a new deal has no lines: max_discount_pct stays null */
		if (sm_line_restoring(rel))
			return PointerGetDatum(trigdata->tg_trigtuple);
		ereport(ERROR,
				(errcode(ERRCODE_SM_AMOUNT_FROM_LINES),
				 errmsg("max_discount_pct of a new deal cannot be set directly"),
				 errdetail("It is the largest discount_pct of the deal's lines."),
				 errhint("Leave it null and add lines (salesmgmt.deal_line).")));
	}
	oldtup = trigdata->tg_trigtuple;
	newtup = trigdata->tg_newtuple;
	if (sm_lines_writing || sm_line_restoring(rel))
		return PointerGetDatum(newtup);

	td = RelationGetDescr(rel);
	deal_att = SPI_fnumber(td, "deal_id");
	disc_att = SPI_fnumber(td, "max_discount_pct");
	amount_att = SPI_fnumber(td, "amount");
	if (deal_att <= 0 || disc_att <= 0 || amount_att <= 0)
		elog(ERROR, "salesmgmt.deal lacks deal_id, amount or max_discount_pct");
	deal_id = DatumGetInt64(heap_getattr(oldtup, deal_att, td, &isnull));

	if (!sm_numeric_same(sm_line_numeric(oldtup, td, disc_att), sm_line_numeric(newtup, td, disc_att)))
		ereport(ERROR,
				(errcode(ERRCODE_SM_AMOUNT_FROM_LINES),
				 errmsg("max_discount_pct of deal " INT64_FORMAT " cannot be set directly", deal_id),
				 errdetail("It is the largest discount_pct of the deal's lines."),
				 errhint("Change the discounts of the lines (salesmgmt.deal_line).")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = Int64GetDatum(deal_id);
	ret = SPI_execute_plan(sm_line_plan(&sm_has_lines_plan,
										"SELECT 1 FROM salesmgmt.deal_line WHERE deal_id = $1 LIMIT 1",
										1, argtypes),
						   args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading salesmgmt.deal_line failed: %s", SPI_result_code_string(ret));
	has_lines = SPI_processed > 0;
	SPI_finish();
	if (!has_lines)
		return PointerGetDatum(newtup);

	if (!sm_numeric_same(sm_line_numeric(oldtup, td, amount_att), sm_line_numeric(newtup, td, amount_att)))
		ereport(ERROR,
				(errcode(ERRCODE_SM_AMOUNT_FROM_LINES),
				 errmsg("the amount of deal " INT64_FORMAT " is the sum of its lines and cannot be set directly",
						deal_id),
				 errdetail("The deal has line items; its amount is %s.",
						   sm_numeric_to_cstring(sm_line_numeric(oldtup, td, amount_att))),
				 errhint("Change the lines (salesmgmt.deal_line), or delete them all to set the amount by hand.")));
	ereport(ERROR,
			(errcode(ERRCODE_SM_AMOUNT_FROM_LINES),
			 errmsg("the currency of deal " INT64_FORMAT " cannot change while it has lines", deal_id),
			 errdetail("Its lines are priced in the deal's currency."),
			 errhint("Delete the lines, change the currency, and add them again from a price book of the new currency.")));
	PG_RETURN_NULL();			/* not reached */
}

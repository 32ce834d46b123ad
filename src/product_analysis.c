/*-------------------------------------------------------------------------
 *
 * product_analysis.c
 *	  What customers buy together: association rules between product
 *	  families over the accounts' won deals (salesmgmt.product_affinity).
 *
 * One pass over the won deal lines (account, product) builds, per account,
 * the set of families it has bought (a bitmap over family numbers; the
 * product -> family map is read first, so the big scan carries two
 * integers per line and no text).  Then per account every pair of its
 * families is counted once.  Accounts have few families, so the pair
 * counting is linear in the accounts; the scan is the cost, and it runs
 * through a cursor so memory does not grow with the lines.
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

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "nodes/bitmapset.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/numeric.h"
#include "utils/tuplestore.h"

#include "salesmgmt.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_product_affinity);

#define SM_AFFINITY_BATCH 10000

typedef struct SmProductFamily
{
	int64		product_id;
	int			family;
} SmProductFamily;

typedef struct SmAccountFamilies
{
	int64		account_id;
	Bitmapset  *families;
} SmAccountFamilies;

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
	HASHCTL		ctl;
	HTAB	   *products;
	HTAB	   *accounts;
	HASH_SEQ_STATUS seq;
	SmAccountFamilies *acc;
	int			nfamilies;
	char	  **names;
	int64	   *n_family;
	int64	   *n_pair;
	int64		n_accounts = 0;
	Portal		portal;
	SPIPlanPtr	plan;
	Oid			argtypes[1] = {DATEOID};
	Datum		args[1];
	char		argnulls[1];
	SmRule	   *rules;
	int			nrules = 0;
	int			ret;

	InitMaterializedSRF(fcinfo, 0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* product -> family number; family names in order */
	ret = SPI_execute("SELECT p.product_id, dense_rank() OVER (ORDER BY p.family) - 1, p.family"
					  " FROM salesmgmt.product p ORDER BY 2", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading salesmgmt.product failed: %s", SPI_result_code_string(ret));
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(SmProductFamily);
	ctl.hcxt = CurrentMemoryContext;
	products = hash_create("salesmgmt product families", Max(SPI_processed, 16), &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	nfamilies = 0;
	names = palloc(sizeof(char *) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		pid = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
		int			fam = (int) DatumGetInt64(SPI_getbinval(tup, td, 2, &isnull));
		SmProductFamily *pf = hash_search(products, &pid, HASH_ENTER, NULL);

		pf->family = fam;
		if (fam >= nfamilies)
		{
			names[fam] = SPI_getvalue(tup, td, 3);
			nfamilies = fam + 1;
		}
	}

	/* accounts -> families bought */
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(SmAccountFamilies);
	ctl.hcxt = CurrentMemoryContext;
	accounts = hash_create("salesmgmt account families", 1024, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	plan = SPI_prepare("SELECT d.account_id, l.product_id"
					   " FROM salesmgmt.deal d"
					   " JOIN salesmgmt.deal_line l ON l.deal_id = d.deal_id"
					   " WHERE d.stage_id IN (SELECT s.stage_id FROM salesmgmt.stage s WHERE s.outcome = 'won')"
					   "   AND ($1 IS NULL OR d.closed_at >= $1)",
					   1, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	args[0] = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	argnulls[0] = PG_ARGISNULL(0) ? 'n' : ' ';
	portal = SPI_cursor_open(NULL, plan, args, argnulls, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, SM_AFFINITY_BATCH);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	td = SPI_tuptable->tupdesc;
			bool		isnull;
			int64		account_id = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
			int64		product_id = DatumGetInt64(SPI_getbinval(tup, td, 2, &isnull));
			SmProductFamily *pf = hash_search(products, &product_id, HASH_FIND, NULL);
			bool		found;

			if (pf == NULL)		/* a product created after the first query */
				continue;
			acc = hash_search(accounts, &account_id, HASH_ENTER, &found);
			if (!found)
			{
				acc->families = NULL;
				n_accounts++;
			}
			acc->families = bms_add_member(acc->families, pf->family);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);

	/* counts per family and per pair (a < b) */
	n_family = palloc0(sizeof(int64) * Max(nfamilies, 1));
	n_pair = palloc0(sizeof(int64) * Max(nfamilies * nfamilies, 1));
	hash_seq_init(&seq, accounts);
	while ((acc = hash_seq_search(&seq)) != NULL)
	{
		int			a = -1;

		while ((a = bms_next_member(acc->families, a)) >= 0)
		{
			int			b = a;

			n_family[a]++;
			while ((b = bms_next_member(acc->families, b)) >= 0)
				n_pair[a * nfamilies + b]++;
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

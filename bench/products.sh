#!/usr/bin/env bash
# bench/products.sh [SCALE]: deal lines in C against the PL/pgSQL a strong
# DBA would write (bench/products_reference.sql), on the data set with
# products (default 1,000,000 deals with about 3 lines each):
#
#   1. one INSERT of 3 lines on each of BENCH_BULK (100,000) open deals
#      (300,000 lines): prices from the price book, checks, deal amounts;
#   2. one UPDATE raising the price of every line of BENCH_BULK other open
#      deals by 5% (about 300,000 lines);
#   each against: the PL/pgSQL reference with a per-row amount trigger, the
#   PL/pgSQL reference with a per-statement amount trigger (transition
#   tables, the same UPDATE as the C one), and the plain statement with the
#   prices joined and the amounts updated by hand (no checks at all);
#   3. product_affinity against a plain-SQL self-join of account families.
#
# Before timing it checks that every variant leaves the same deals and
# lines, and that the SQL affinity gives the same rules.  Each timed run is
# rolled back (a subtransaction), so runs start from the same data.
# Targets (printed, never enforced): C at least 3x the PL/pgSQL reference,
# within 1.3x of the plain statements; product_affinity at least 5x the SQL.
. "$(dirname "$0")/common.sh"

BULK=${BENCH_BULK:-100000}
BENCH_DATAGEN_VARS="-v products=1"
bench_setup "${1:-1000000}"
bench_psql -v bulk="$BULK" -f "$SM_ROOT/bench/products_reference.sql"
read -r nlines ndeals nprice < <(bench_psql -tA -F ' ' -c \
    "SELECT (SELECT count(*) FROM products_bench.line_set), (SELECT count(DISTINCT deal_id) FROM products_bench.line_set),
            (SELECT count(*) FROM products_bench.price_set)")
echo "data set: $(bench_psql -tA -c 'SELECT count(*) FROM salesmgmt.deal_line') lines; bulk insert: $nlines lines on $ndeals deals; price change: $nprice lines"

# ------------------------------------------------------------ same answer
answer() {	# answer VARIANT: digest of the deals and lines after both operations
    bench_psql -tA <<SQL
BEGIN;
SELECT products_bench.use('$1');
$( [ "$1" = plain ] && echo "
INSERT INTO salesmgmt.deal_line (deal_id, position, product_id, quantity, unit_price, discount_pct)
SELECT s.deal_id, s.position, s.product_id, s.quantity,
       (SELECT e.unit_price FROM salesmgmt.price_book_entry e WHERE e.price_book_id = b.price_book_id
           AND e.product_id = s.product_id AND e.min_quantity <= s.quantity ORDER BY e.min_quantity DESC LIMIT 1),
       s.discount_pct
  FROM products_bench.line_set s JOIN salesmgmt.deal d ON d.deal_id = s.deal_id
  JOIN salesmgmt.price_book b ON b.currency = d.currency AND b.is_default;" || echo "
INSERT INTO salesmgmt.deal_line (deal_id, position, product_id, quantity, discount_pct)
SELECT deal_id, position, product_id, quantity, discount_pct FROM products_bench.line_set;")
UPDATE salesmgmt.deal_line l SET unit_price = round(l.unit_price * 1.05, 2)
  FROM products_bench.price_set s WHERE s.deal_id = l.deal_id AND s.line_id = l.line_id;
$( [ "$1" = plain ] && echo "
UPDATE salesmgmt.deal d SET amount = s.total, max_discount_pct = s.maxd
  FROM (SELECT l.deal_id, sum(l.line_amount) AS total, max(l.discount_pct) AS maxd FROM salesmgmt.deal_line l
         WHERE l.deal_id IN (SELECT deal_id FROM products_bench.line_set UNION SELECT deal_id FROM products_bench.price_set)
         GROUP BY l.deal_id) s
 WHERE d.deal_id = s.deal_id;")
SELECT md5(string_agg((d.deal_id, d.amount, d.max_discount_pct)::text, '|' ORDER BY d.deal_id))
  FROM salesmgmt.deal d
 WHERE d.deal_id IN (SELECT deal_id FROM products_bench.line_set UNION SELECT deal_id FROM products_bench.price_set);
SELECT md5(string_agg((l.deal_id, l.product_id, l.quantity, l.unit_price, l.discount_pct, l.line_amount)::text, '|'
                      ORDER BY l.deal_id, l.position, l.product_id, l.quantity))
  FROM salesmgmt.deal_line l
 WHERE l.deal_id IN (SELECT deal_id FROM products_bench.line_set UNION SELECT deal_id FROM products_bench.price_set);
ROLLBACK;
SQL
}
declare -A ANSWER
for v in c ref_row ref_stmt plain; do
    ANSWER[$v]=$(answer $v | tr '\n' ' ')
    printf '%-9s %s\n' "$v:" "${ANSWER[$v]}"
    [ "${ANSWER[$v]}" = "${ANSWER[c]}" ] || sm_die "variant $v leaves other deals or lines than the C triggers"
done
aff=$(bench_psql -tA -c "SELECT (SELECT md5(string_agg(a::text, '|')) FROM salesmgmt.product_affinity() a)
                              = (SELECT md5(string_agg(a::text, '|')) FROM products_bench.affinity() a)")
[ "$aff" = t ] || sm_die "product_affinity and the SQL reference disagree"
echo "same deals, same lines, same affinity rules: yes"

# ------------------------------------------------------------ timings
for op in insert price; do
    case $op in
        insert) echo; echo "== one INSERT of $nlines lines on $ndeals open deals" ;;
        price) echo; echo "== one UPDATE of the unit price of $nprice lines" ;;
    esac
    for v in c ref_row ref_stmt plain; do
        case $v in
            c) label="$op: salesmgmt C triggers" ;;
            ref_row) label="$op: PL/pgSQL, amount per row" ;;
            ref_stmt) label="$op: PL/pgSQL, amount per statement" ;;
            plain) label="$op: plain statement + amounts by hand" ;;
        esac
        bench_psql -c "SELECT products_bench.use('$v')" >/dev/null
        bench_psql -c "VACUUM ANALYZE salesmgmt.deal, salesmgmt.deal_line" >/dev/null
        bench_time "$label" "SELECT products_bench.bulk_$op('$v')"
    done
    bench_ratio "$op: PL/pgSQL, amount per row" "$op: salesmgmt C triggers"
    bench_ratio "$op: PL/pgSQL, amount per statement" "$op: salesmgmt C triggers"
    bench_ratio "$op: salesmgmt C triggers" "$op: plain statement + amounts by hand"
done
bench_psql -c "SELECT products_bench.use('c')" >/dev/null

echo; echo "== product_affinity over the won deals' lines"
bench_time "salesmgmt.product_affinity (C)" "SELECT sum(length(a::text)) FROM salesmgmt.product_affinity() a"
bench_time "plain SQL self-join" "SELECT sum(length(a::text)) FROM products_bench.affinity() a"
bench_ratio "plain SQL self-join" "salesmgmt.product_affinity (C)"

#!/usr/bin/env bash
# bench/commission.sh [SCALE] [WON]: salesmgmt.run_commissions against two
# references of the same semantics, in one run, on one year of credited
# deals: the set-based SQL a strong DBA would write
# (bench/commission_reference_setbased.sql: window functions over cumulative
# credit, one INSERT ... SELECT per kind of line; the ratio to publish) and
# the row-by-row PL/pgSQL reference (bench/commission_reference.sql: a loop
# over events writing one line at a time; kept for comparison, labelled as
# such).  BENCH_ROWWISE=0 leaves the row-by-row reference out.
#
#   SCALE   deals of the datagen data set (default 1,000,000: 10,000 reps)
#   WON     won deals in the benchmark year (default 1,000,000); the data set
#           is topped up with won deals (splits, SPIFF products, payments)
#           until the year holds that many
#
# The year is the four quarters before the current one.  On top of the data
# set the script adds commission plans (a decelerator / retroactive /
# accelerator plan with a cap and a SPIFF, a monthly retroactive plan with
# a rate SPIFF, a payment-basis plan, manager and director plans with
# overrides), assigns every rep, and gives some reps draws.  Each side then
# runs the year BENCH_RUNS times (default 3; the ledgers are emptied between
# runs, outside the timing; the sides take turns within each run), and the
# per-rep results and ledgers (every column of every line) of each reference
# are compared with the C function's: they must be identical.
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_ROWWISE=${BENCH_ROWWISE:-1}
. "$(dirname "$0")/common.sh"
scale=${BENCH_SCALE:-${1:-1000000}}
won=${BENCH_WON:-${2:-$scale}}
# the plans, assignments and draws, and the year topped up to WON won deals,
# are made once and cached with the data set (bench/common.sh)
BENCH_PREPARE_SQL=$SM_ROOT/bench/commission_setup.sql BENCH_PREPARE_VARS="-v won=$won" bench_setup "$scale"
bench_psql -f "$SM_ROOT/bench/commission_reference_setbased.sql"
[ "$BENCH_ROWWISE" = 0 ] || bench_psql -f "$SM_ROOT/bench/commission_reference.sql"
read -r y_start y_end < <(bench_psql -tA -F ' ' -c 'SELECT y_start, y_end FROM bench_year')
bench_psql -c "SELECT count(*) AS won_deals_in_year,
                      (SELECT count(*) FROM salesmgmt.rep) AS reps,
                      (SELECT count(*) FROM salesmgmt.deal_split) AS split_rows,
                      (SELECT count(*) FROM salesmgmt.payment WHERE paid_at >= '$y_start' AND paid_at < '$y_end'::date + 1) AS payments_in_year
                 FROM salesmgmt.deal d JOIN salesmgmt.stage s ON s.stage_id = d.stage_id AND s.outcome = 'won'
                WHERE d.closed_at >= '$y_start' AND d.closed_at < '$y_end'::date + 1"

# One timed run: the function's wall time by the server clock.  The ledger
# is emptied before each run, outside the timing, so both sides write into
# an empty table.
time_once() {	# time_once SQL -> ms
    bench_psql -tA <<SQL
DO \$t\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    PERFORM count(*) FROM ($1) s;
    PERFORM set_config('bench.ms', (extract(epoch FROM clock_timestamp() - t0) * 1000)::text, false);
END
\$t\$;
SELECT round(current_setting('bench.ms')::numeric, 1);
SQL
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# every column of a ledger line but the two that name the row
cols='period_start, period_end, rep_id, kind, status, deal_id, payment_id, plan_id, spiff_id,
      draw_id, source_rep_id, credited_at, plan_period_start, plan_period_end, share, credit, quota,
      attainment_before, attainment_after, tier, rate, tiers, earned_before, earned_after, capped,
      base, recoverable, reversed_at, amount, currency, reason'
# differences RESULT_TABLE LEDGER: rows of the per-rep results and ledger
# lines that the C function and a reference do not both have
differences() {
    bench_psql -tA <<SQL
SELECT (SELECT count(*) FROM ((TABLE bench_c EXCEPT ALL TABLE $1) UNION ALL (TABLE $1 EXCEPT ALL TABLE bench_c)) d)
     + (SELECT count(*) FROM (
          (SELECT $cols FROM salesmgmt.commission_line EXCEPT ALL SELECT $cols FROM $2)
          UNION ALL
          (SELECT $cols FROM $2 EXCEPT ALL SELECT $cols FROM salesmgmt.commission_line)) d);
SQL
}

ledgers=salesmgmt.commission_line,commission_setbased.line
[ "$BENCH_ROWWISE" = 0 ] || ledgers=$ledgers,commission_reference.line
c_times=() set_times=() row_times=()
for i in $(seq 1 "$BENCH_RUNS"); do
    bench_psql -c "TRUNCATE $ledgers" -c "VACUUM ANALYZE $ledgers" >/dev/null 2>&1
    # the order of the sides turns with each run
    for side in $(case $((i % 3)) in 1) echo c set row ;; 2) echo set row c ;; 0) echo row c set ;; esac); do
        case $side in
            c)   c_times+=("$(time_once "SELECT * FROM salesmgmt.run_commissions('$y_start', '$y_end')")") ;;
            set) set_times+=("$(time_once "SELECT * FROM commission_setbased.run('$y_start', '$y_end')")") ;;
            row) [ "$BENCH_ROWWISE" = 0 ] ||
                 row_times+=("$(time_once "SELECT * FROM commission_reference.run('$y_start', '$y_end')")") ;;
        esac
    done
    sm_log "run $i: salesmgmt ${c_times[-1]} ms, set-based reference ${set_times[-1]} ms${row_times:+, row-by-row reference ${row_times[-1]} ms}"
done
BENCH_MS[C]=$(median "${c_times[@]}")
BENCH_MS["set-based SQL"]=$(median "${set_times[@]}")
[ "$BENCH_ROWWISE" = 0 ] || BENCH_MS["row-by-row PL/pgSQL"]=$(median "${row_times[@]}")

# same answer: per-rep results and the ledger, every column of every line
bench_psql -c "CREATE TABLE public.bench_c AS SELECT * FROM salesmgmt.run_commissions('$y_start', '$y_end')" \
           -c "CREATE TABLE public.bench_set AS SELECT * FROM commission_setbased.run('$y_start', '$y_end')" >/dev/null
diff_set=$(differences bench_set commission_setbased.line)
diff_row=0
if [ "$BENCH_ROWWISE" != 0 ]; then
    bench_psql -c "CREATE TABLE public.bench_row AS SELECT * FROM commission_reference.run('$y_start', '$y_end')" >/dev/null
    diff_row=$(differences bench_row commission_reference.line)
fi
bench_psql -c "SELECT count(*) AS reps, sum(credit) AS credit, sum(earned) AS earned, sum(spiffs) AS spiffs,
                      sum(overrides) AS overrides, sum(clawbacks) AS clawbacks, sum(draws) AS draws,
                      sum(draw_recovery) AS draw_recovery, sum(payout) AS payout FROM bench_c" \
           -c "SELECT kind, count(*) AS lines, sum(amount) AS amount FROM salesmgmt.commission_line GROUP BY ROLLUP (kind) ORDER BY kind"
[ "$diff_set" = 0 ] || sm_die "salesmgmt and the set-based reference disagree on $diff_set rows"
[ "$diff_row" = 0 ] || sm_die "salesmgmt and the row-by-row reference disagree on $diff_row rows"
echo "same answer: per-rep results and every column of every ledger line identical (C, set-based${row_times:+, row-by-row})"
printf '%-48s %10.1f ms (median of %d)\n' "salesmgmt.run_commissions (C), one year" "${BENCH_MS[C]}" "$BENCH_RUNS"
printf '%-48s %10.1f ms (median of %d)\n' "set-based SQL reference, one year" "${BENCH_MS[set-based SQL]}" "$BENCH_RUNS"
[ "$BENCH_ROWWISE" = 0 ] ||
    printf '%-48s %10.1f ms (median of %d)\n' "row-by-row PL/pgSQL reference, one year" "${BENCH_MS[row-by-row PL/pgSQL]}" "$BENCH_RUNS"
bench_ratio "set-based SQL" C
[ "$BENCH_ROWWISE" = 0 ] || bench_ratio "row-by-row PL/pgSQL" C

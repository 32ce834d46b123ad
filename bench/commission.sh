#!/usr/bin/env bash
# bench/commission.sh [SCALE] [WON]: salesmgmt.run_commissions against the
# PL/pgSQL reference of the same semantics (bench/commission_reference.sql),
# in one run, on one year of credited deals.
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
# overrides), assigns every rep, and gives some reps draws.  Both sides then
# run the year BENCH_RUNS times (default 3; the ledger is emptied between
# runs, outside the timing), and their per-rep results and ledgers are
# compared: they must be identical.
BENCH_RUNS=${BENCH_RUNS:-3}
. "$(dirname "$0")/common.sh"
scale=${BENCH_SCALE:-${1:-1000000}}
won=${BENCH_WON:-${2:-$scale}}
bench_setup "$scale"

sm_log "commission plans, assignments, draws; topping the year up to $won won deals"
start=$(date +%s.%N)
bench_psql -v won="$won" -f "$SM_ROOT/bench/commission_setup.sql" >/dev/null
printf 'setup: %.1f s\n' "$(echo "$(date +%s.%N) - $start" | bc)"
bench_psql -f "$SM_ROOT/bench/commission_reference.sql"
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

c_times=() ref_times=()
for i in $(seq 1 "$BENCH_RUNS"); do
    bench_psql -c 'TRUNCATE salesmgmt.commission_line, commission_reference.line' -c 'VACUUM ANALYZE salesmgmt.commission_line, commission_reference.line' >/dev/null 2>&1
    c_times+=("$(time_once "SELECT * FROM salesmgmt.run_commissions('$y_start', '$y_end')")")
    ref_times+=("$(time_once "SELECT * FROM commission_reference.run('$y_start', '$y_end')")")
    sm_log "run $i: salesmgmt ${c_times[-1]} ms, reference ${ref_times[-1]} ms"
done
BENCH_MS[c]=$(median "${c_times[@]}")
BENCH_MS[ref]=$(median "${ref_times[@]}")

# same answer: per-rep results and the ledger, line by line
bench_psql -c "CREATE TABLE public.bench_c AS SELECT * FROM salesmgmt.run_commissions('$y_start', '$y_end')" \
           -c "CREATE TABLE public.bench_ref AS SELECT * FROM commission_reference.run('$y_start', '$y_end')" >/dev/null
diff=$(bench_psql -tA <<'SQL'
SELECT (SELECT count(*) FROM ((TABLE bench_c EXCEPT ALL TABLE bench_ref) UNION ALL (TABLE bench_ref EXCEPT ALL TABLE bench_c)) d)
     + (SELECT count(*) FROM (
          (SELECT rep_id, kind, deal_id, payment_id, plan_id, spiff_id, draw_id, source_rep_id, credit, amount, reason
             FROM salesmgmt.commission_line
           EXCEPT ALL
           SELECT rep_id, kind, deal_id, payment_id, plan_id, spiff_id, draw_id, source_rep_id, credit, amount, reason
             FROM commission_reference.line)
          UNION ALL
          (SELECT rep_id, kind, deal_id, payment_id, plan_id, spiff_id, draw_id, source_rep_id, credit, amount, reason
             FROM commission_reference.line
           EXCEPT ALL
           SELECT rep_id, kind, deal_id, payment_id, plan_id, spiff_id, draw_id, source_rep_id, credit, amount, reason
             FROM salesmgmt.commission_line)) d);
SQL
)
bench_psql -c "SELECT count(*) AS reps, sum(credit) AS credit, sum(earned) AS earned, sum(spiffs) AS spiffs,
                      sum(overrides) AS overrides, sum(clawbacks) AS clawbacks, sum(draws) AS draws,
                      sum(draw_recovery) AS draw_recovery, sum(payout) AS payout FROM bench_c" \
           -c "SELECT kind, count(*) AS lines, sum(amount) AS amount FROM salesmgmt.commission_line GROUP BY kind ORDER BY kind"
[ "$diff" = 0 ] || sm_die "salesmgmt and the reference disagree on $diff rows"
echo "same answer: per-rep results and ledger lines identical"
printf '%-48s %10.1f ms (median of %d)\n' "salesmgmt.run_commissions (C), one year" "${BENCH_MS[c]}" "$BENCH_RUNS"
printf '%-48s %10.1f ms (median of %d)\n' "PL/pgSQL reference, one year" "${BENCH_MS[ref]}" "$BENCH_RUNS"
bench_ratio ref c

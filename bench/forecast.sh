#!/usr/bin/env bash
# bench/forecast.sh [SCALE]: salesmgmt.forecast(..., 'team') and
# salesmgmt.forecast_range against their plain SQL references
# (bench/forecast_reference.sql) and the floor, on the data set of SCALE
# deals (default 1,000,000).
#
#   forecast(this quarter, 'team')  vs  forecast_ref.forecast_team  vs
#   the floor: one sum(amount) scan of salesmgmt.deal
#   forecast_range(10,000 simulations over the first 100,000 open deals
#   from the start of this quarter)  vs  forecast_ref.forecast_range
#   (generate_series x random()), which runs once
#
# Both sides must agree before anything is timed: the forecasts exactly,
# the simulations within their statistical error.  Then forecast_range and
# forecast_dist_agg with max_parallel_workers_per_gather 0 and 2 (the same
# answer to the cent).
# BENCH_SCALE / BENCH_RUNS as in bench/common.sh; BENCH_OPEN_DEALS and
# BENCH_SIMULATIONS change the forecast_range workload; BENCH_PARALLEL_ONLY=1
# runs only the comparison of 0 and 2 workers (the SQL reference of
# forecast_range alone takes minutes at full scale).
. "$(dirname "$0")/common.sh"

OPEN_DEALS=${BENCH_OPEN_DEALS:-100000}
SIMULATIONS=${BENCH_SIMULATIONS:-10000}

bench_setup "${1:-1000000}"
bench_psql -f "$SM_ROOT/bench/forecast_reference.sql"

# this quarter
read -r FROM TO < <(bench_psql -tA -F ' ' -c "
    SELECT date_trunc('quarter', current_date)::date,
           (date_trunc('quarter', current_date) + interval '3 months - 1 day')::date")
echo "period: $FROM to $TO"

if [ "${BENCH_PARALLEL_ONLY:-0}" = 0 ]; then
# the same answer, row for row
diff=$(bench_psql -tA -c "
    WITH c AS (SELECT group_id, group_name, closed_won, commit, best_case, pipeline, omitted,
                      weighted, commit_forecast, best_case_forecast, quota, attainment, gap,
                      deal_count, adjusted_commit_forecast
                 FROM salesmgmt.forecast('$FROM', '$TO', 'team')),
         r AS (SELECT * FROM forecast_ref.forecast_team('$FROM', '$TO'))
    SELECT (SELECT count(*) FROM (TABLE c EXCEPT ALL TABLE r) x)
         + (SELECT count(*) FROM (TABLE r EXCEPT ALL TABLE c) y)")
groups=$(bench_psql -tA -c "SELECT count(*) FROM salesmgmt.forecast('$FROM', '$TO', 'team')")
[ "$diff" = 0 ] || sm_die "forecast and its reference differ in $diff rows"
echo "forecast by team: $groups teams, identical to the reference"

bench_time "floor: sum(amount) over salesmgmt.deal" "SELECT sum(amount) FROM salesmgmt.deal"
bench_time "salesmgmt.forecast(quarter, 'team')" "SELECT sum(length(f::text)) FROM salesmgmt.forecast('$FROM', '$TO', 'team') f"
bench_time "SQL reference forecast by team" "SELECT sum(length(f::text)) FROM forecast_ref.forecast_team('$FROM', '$TO') f"
bench_ratio "salesmgmt.forecast(quarter, 'team')" "floor: sum(amount) over salesmgmt.deal"
bench_ratio "SQL reference forecast by team" "salesmgmt.forecast(quarter, 'team')"

fi

# forecast_range: the period from this quarter's start that holds the
# first OPEN_DEALS open deals by expected close date
RANGE_TO=$(bench_psql -tA -c "
    SELECT d.expected_close_date
      FROM salesmgmt.deal d JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
     WHERE s.outcome = 'open' AND d.expected_close_date >= '$FROM'
     ORDER BY d.expected_close_date OFFSET $OPEN_DEALS - 1 LIMIT 1")
[ -n "$RANGE_TO" ] || RANGE_TO=$(bench_psql -tA -c "SELECT max(expected_close_date) FROM salesmgmt.deal")
open=$(bench_psql -tA -c "SELECT open_deals FROM salesmgmt.forecast_range('$FROM', '$RANGE_TO', NULL, 1)")
echo "forecast_range: $FROM to $RANGE_TO, $open open deals, $SIMULATIONS simulations"

if [ "${BENCH_PARALLEL_ONLY:-0}" = 0 ]; then
bench_time "salesmgmt.forecast_range" \
    "SELECT * FROM salesmgmt.forecast_range('$FROM', '$RANGE_TO', NULL, $SIMULATIONS)"
# The SQL reference takes minutes at full scale: it is timed by a single
# run, and that run's answer is kept for the check below.
ms=$(bench_psql -tA <<SQL
CREATE TABLE IF NOT EXISTS forecast_ref.range_check AS
    SELECT 'c'::text AS side, * FROM salesmgmt.forecast_range('$FROM', '$RANGE_TO', NULL, $SIMULATIONS) WITH NO DATA;
TRUNCATE forecast_ref.range_check;
INSERT INTO forecast_ref.range_check
    SELECT 'c', * FROM salesmgmt.forecast_range('$FROM', '$RANGE_TO', NULL, $SIMULATIONS);
SELECT clock_timestamp() AS t0 \\gset
INSERT INTO forecast_ref.range_check (side, mean, stddev, p10, p50, p90, min, max, closed_won, open_deals)
    SELECT 'sql', * FROM forecast_ref.forecast_range('$FROM', '$RANGE_TO', NULL, $SIMULATIONS);
SELECT round((extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000)::numeric, 1);
SQL
)
BENCH_MS["SQL reference forecast_range"]=$ms
printf '%-48s %10.1f ms (one run)\n' "SQL reference forecast_range" "$ms"
bench_ratio "SQL reference forecast_range" "salesmgmt.forecast_range"

# agreement: both means within 5 standard errors of the exact expected
# value, both spreads within 5% of the exact standard deviation, the same
# closed-won revenue and open deals
bench_psql -c "
    SELECT side, mean, stddev, p10, p50, p90, closed_won, open_deals, expected, expected_stddev
      FROM forecast_ref.range_check ORDER BY side"
ok=$(bench_psql -tA -c "
    SELECT abs(c.mean - c.expected) < 5 * c.expected_stddev / sqrt($SIMULATIONS)
       AND abs(r.mean - c.expected) < 5 * c.expected_stddev / sqrt($SIMULATIONS)
       AND abs(c.stddev / nullif(c.expected_stddev, 0) - 1) < 0.05
       AND abs(r.stddev / nullif(c.expected_stddev, 0) - 1) < 0.05
       AND c.closed_won = r.closed_won AND c.open_deals = r.open_deals
      FROM forecast_ref.range_check c, forecast_ref.range_check r
     WHERE c.side = 'c' AND r.side = 'sql'")
[ "$ok" = t ] || sm_die "forecast_range and its reference disagree beyond their statistical error"
echo "forecast_range agrees with the reference within the statistical error"
else
    echo "BENCH_PARALLEL_ONLY=1: the forecast by team, the SQL references and their checks skipped"
fi

# forecast_range and forecast_dist_agg with max_parallel_workers_per_gather
# 0 and 2.  A deal's draws depend on (seed, deal_id, run) only, so both
# settings must give the same answer to the cent.  forecast_range starts
# its own parallel workers for the draws (src/forecast_range.c);
# forecast_dist_agg over the same open deals (their own amounts and stage
# probabilities) is what a parallel plan splits across workers.
AGG_SQL="SELECT salesmgmt.forecast_dist_agg(d.deal_id, d.amount, coalesce(d.probability, s.probability), 0, $SIMULATIONS)
           FROM salesmgmt.deal d JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
          WHERE s.outcome = 'open' AND d.expected_close_date BETWEEN '$FROM' AND '$RANGE_TO'"
PAR_OPTS="-c parallel_setup_cost=0 -c parallel_tuple_cost=0 -c min_parallel_table_scan_size=0"
declare -A RANGE_ANSWER AGG_ANSWER
for w in 0 2; do
    export PGOPTIONS="-c max_parallel_workers_per_gather=$w $PAR_OPTS"
    RANGE_ANSWER[$w]=$(bench_psql -tA -c "SELECT md5(r::text) FROM salesmgmt.forecast_range('$FROM', '$RANGE_TO', NULL, $SIMULATIONS) r")
    AGG_ANSWER[$w]=$(bench_psql -tA -c "SELECT md5(x::text) FROM ($AGG_SQL) a(x)")
    plan=$(bench_psql -tA -c "EXPLAIN (COSTS OFF) $AGG_SQL" | grep -c 'Partial Aggregate' || true)
    echo "max_parallel_workers_per_gather = $w: forecast_dist_agg plan $([ "$plan" -gt 0 ] && echo parallel || echo serial)"
    bench_time "salesmgmt.forecast_range, $w workers" \
        "SELECT * FROM salesmgmt.forecast_range('$FROM', '$RANGE_TO', NULL, $SIMULATIONS)"
    bench_time "forecast_dist_agg (open deals), $w workers" "SELECT salesmgmt.percentile(x, 0.5) FROM ($AGG_SQL) a(x)"
    unset PGOPTIONS
done
[ "${RANGE_ANSWER[0]}" = "${RANGE_ANSWER[2]}" ] || sm_die "forecast_range differs between 0 and 2 workers"
[ "${AGG_ANSWER[0]}" = "${AGG_ANSWER[2]}" ] || sm_die "forecast_dist_agg differs between 0 and 2 workers"
echo "forecast_range and forecast_dist_agg: identical with 0 and 2 workers"
bench_ratio "salesmgmt.forecast_range, 0 workers" "salesmgmt.forecast_range, 2 workers"
bench_ratio "forecast_dist_agg (open deals), 0 workers" "forecast_dist_agg (open deals), 2 workers"

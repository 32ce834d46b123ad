#!/usr/bin/env bash
# bench/analytics.sh [SCALE]: every analytics view on the data set (default
# 1,000,000 deals), timed against tuned plain SQL of the same semantics in
# bench/analytics_reference.sql (rates joined instead of a convert_amount
# call per row, facts aggregated per rep before the roll-up to teams and the
# join to the period grid, GROUPING SETS instead of "IS NULL OR" joins); both
# must give the same rows.  A ratio below 1 means the view is slower than
# the tuned SQL.  The floor is one scan of the deal table.  Figures go to
# docs/benchmarks.md.
#
#   bench/analytics.sh                 1,000,000 deals, 3 timed runs per query
#   BENCH_SCALE=20000 bench/analytics.sh   a quick run while developing
export BENCH_RUNS=${BENCH_RUNS:-3}
. "$(dirname "$0")/common.sh"
bench_setup "${1:-1000000}"

# what the generator does not make: CSAT/NPS responses for a fifth of the
# won deals, and feedback on every twentieth closed deal (older feedback
# resolved after 1 to 17 days, recent feedback still open or triaged)
bench_psql <<'SQL'
SET synchronous_commit = off;
INSERT INTO salesmgmt.csat_response (account_id, deal_id, rep_id, csat, nps, responded_at)
SELECT d.account_id, d.deal_id, d.owner_rep_id,
       CASE WHEN d.deal_id % 7 <> 0 THEN 1 + d.deal_id % 5 END,
       CASE WHEN d.deal_id % 6 <> 0 OR d.deal_id % 7 = 0 THEN d.deal_id % 11 END,
       least(d.closed_at + interval '3 days', now())
  FROM salesmgmt.deal d JOIN salesmgmt.stage s USING (stage_id)
 WHERE s.outcome = 'won' AND d.deal_id % 5 = 0;
INSERT INTO salesmgmt.feedback (source, deal_id, rep_id, category, sentiment, body, status, resolution, created_at, resolved_at)
SELECT 'customer', d.deal_id, d.owner_rep_id,
       (ARRAY['pricing', 'product', 'service', 'process', 'competition'])[1 + d.deal_id % 5],
       (ARRAY['negative', 'neutral', 'positive', 'negative'])[1 + d.deal_id % 4],
       'Feedback on deal ' || d.deal_id,
       CASE WHEN d.closed_at < now() - interval '30 days' THEN 'resolved' ELSE 'open' END,
       CASE WHEN d.closed_at < now() - interval '30 days' THEN 'Handled' END,
       d.closed_at,
       CASE WHEN d.closed_at < now() - interval '30 days' THEN d.closed_at + make_interval(days => 1 + (d.deal_id % 17)::int) END
  FROM salesmgmt.deal d
 WHERE d.closed_at IS NOT NULL AND d.deal_id % 20 = 0;
SQL
bench_psql -q -f "$SM_ROOT/bench/analytics_reference.sql"
bench_psql -c 'VACUUM ANALYZE' >/dev/null
bench_psql -c "SELECT (SELECT count(*) FROM salesmgmt.deal) AS deals, (SELECT count(*) FROM salesmgmt.activity) AS activities,
                      (SELECT count(*) FROM salesmgmt.rep) AS reps, (SELECT count(*) FROM salesmgmt.team) AS teams,
                      (SELECT count(*) FROM salesmgmt.quota) AS quotas, (SELECT count(*) FROM salesmgmt.csat_response) AS csat,
                      (SELECT count(*) FROM salesmgmt.feedback) AS feedback"

bench_time "floor: sum(amount) over salesmgmt.deal" "SELECT sum(amount) FROM salesmgmt.deal"
bench_time "floor: count(*) over salesmgmt.activity" "SELECT count(*) FROM salesmgmt.activity"

for v in win_rates_by sales_velocity quota_attainment pipeline_coverage customer_summary \
         customer_satisfaction activity_summary account_last_touch cohort_conversion feedback_summary; do
    same=$(bench_psql -tA -c "
        SELECT (SELECT count(*) FROM salesmgmt.$v) || ' rows, ' ||
               CASE WHEN (SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM salesmgmt.$v t)
                       = (SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM bench_ref.$v t)
                    THEN 'same answer' ELSE 'DIFFERENT ANSWER' END")
    echo "== $v: $same"
    case $same in *DIFFERENT*) sm_die "salesmgmt.$v and its reference disagree" ;; esac
    bench_time "salesmgmt.$v" "SELECT * FROM salesmgmt.$v"
    bench_time "reference $v" "SELECT * FROM bench_ref.$v"
    bench_ratio "reference $v" "salesmgmt.$v"
done

# What JIT costs these queries: the cluster runs with jit = off (docs/bi.md
# recommends it for BI sessions); one EXPLAIN ANALYZE with it on, for the
# time spent compiling (timing on, so the execution figure carries the
# instrumentation's overhead too).
for v in win_rates_by customer_summary; do
    ms=$(bench_psql -tA -c "SET jit = on" -c "EXPLAIN (ANALYZE, SUMMARY ON, FORMAT JSON) SELECT * FROM salesmgmt.$v" |
         python3 -c 'import json,sys; p=json.load(sys.stdin)[0]; j=p.get("JIT",{}).get("Timing",{}); print("JIT compile %.1f ms, execution %.1f ms" % (j.get("Total",0), p["Execution Time"]))')
    printf '%-48s %s\n' "salesmgmt.$v with jit = on" "$ms"
done

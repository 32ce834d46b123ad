#!/usr/bin/env bash
# bench/kpi.sh [SCALE]: salesmgmt.compute_scorecards (C, one pass per source
# table) against the plain SQL / PL/pgSQL reference of the same semantics
# (bench/kpi_reference.sql: one set-oriented query per KPI, scoring in
# SQL), on the same data, in the same run.
#
# Default scale 1,000,000 deals: 10,000 reps, 3 million activities over 8
# quarters; bench/kpi_data.sql adds a year of reviews, CSAT/NPS answers and
# training, and a scheme of 15 KPIs (14 built-in metrics and a custom
# function).  The scored period is the last four complete quarters.  Both
# implementations store their scorecards (replacing the period); the run
# checks that they give identical results and fails if not.
#
#   bench/kpi.sh                      full scale (takes a while to load)
#   BENCH_SCALE=20000 bench/kpi.sh    a quick run while developing
BENCH_RUNS=${BENCH_RUNS:-3}
. "$(dirname "$0")/common.sh"

bench_setup "${1:-1000000}"
bench_psql -f "$SM_ROOT/bench/kpi_data.sql" >/dev/null
bench_psql -f "$SM_ROOT/bench/kpi_reference.sql" >/dev/null
bench_psql -c 'VACUUM ANALYZE' >/dev/null

read -r FROM TO SCHEME <<<"$(bench_psql -tA -F ' ' -c "
    SELECT (date_trunc('quarter', max(stage_entered_at)) - interval '1 year')::date,
           (date_trunc('quarter', max(stage_entered_at)) - interval '1 day')::date,
           (SELECT scheme_id FROM salesmgmt.kpi_scheme WHERE name = 'Field sales 15')
      FROM salesmgmt.deal")"
bench_psql -c "
    SELECT '$FROM'::date AS period_start, '$TO'::date AS period_end,
           (SELECT count(*) FROM salesmgmt.rep) AS reps,
           (SELECT count(*) FROM salesmgmt.kpi_scheme_item WHERE scheme_id = $SCHEME) AS kpis,
           (SELECT count(*) FROM salesmgmt.deal
             WHERE closed_at >= '$FROM' AND closed_at < '$TO'::date + 1
                OR created_at >= '$FROM' AND created_at < '$TO'::date + 1) AS deals_in_period,
           (SELECT count(*) FROM salesmgmt.activity
             WHERE occurred_at >= '$FROM' AND occurred_at < '$TO'::date + 1) AS activities_in_period,
           (SELECT count(*) FROM salesmgmt.review) AS reviews,
           (SELECT count(*) FROM salesmgmt.csat_response) AS csat_responses"

# The floor: what PostgreSQL needs just to read the period's rows once
# (the deals closed or created in it, its activities, tasks, answers and
# reviews), without computing anything.
bench_time "floor: one scan of the period's rows" "
    SELECT (SELECT count(*) FROM salesmgmt.deal d
             WHERE d.closed_at >= '$FROM' AND d.closed_at < '$TO'::date + 1
                OR d.created_at >= '$FROM' AND d.created_at < '$TO'::date + 1),
           (SELECT count(*) FROM salesmgmt.activity a
             WHERE a.occurred_at >= '$FROM' AND a.occurred_at < '$TO'::date + 1),
           (SELECT count(*) FROM salesmgmt.sales_task t
             WHERE coalesce(t.due_date, t.created_at::date) BETWEEN '$FROM' AND '$TO'),
           (SELECT count(*) FROM salesmgmt.csat_response r
             WHERE r.responded_at >= '$FROM' AND r.responded_at < '$TO'::date + 1),
           (SELECT count(*) FROM salesmgmt.review v WHERE v.period_end BETWEEN '$FROM' AND '$TO')"

bench_time "salesmgmt.compute_scorecards (C)" \
    "SELECT count(*) FROM salesmgmt.compute_scorecards($SCHEME, '$FROM', '$TO')"
bench_psql -c 'VACUUM ANALYZE salesmgmt.scorecard, salesmgmt.scorecard_item' >/dev/null
bench_time "reference (SQL, one query per KPI)" \
    "SELECT count(*) FROM kpi_ref.compute_scorecards($SCHEME, '$FROM', '$TO')"
bench_ratio "reference (SQL, one query per KPI)" "salesmgmt.compute_scorecards (C)"
bench_ratio "salesmgmt.compute_scorecards (C)" "floor: one scan of the period's rows"

# same answer: returned rows and stored lines, both ways
diffs=$(bench_psql -tA <<SQL
SET client_min_messages = warning;
CREATE TEMP TABLE c_out AS SELECT * FROM salesmgmt.compute_scorecards($SCHEME, '$FROM', '$TO');
CREATE TEMP VIEW lines AS
    SELECT s.rep_id, s.score, s.grade, s.rank, s.coverage, i.kpi_id, i.value, i.score AS kpi_score,
           i.weight, i.effective_weight, i.method, i.direction, i.target, i.floor, i.cap
      FROM salesmgmt.scorecard s JOIN salesmgmt.scorecard_item i USING (scorecard_id) WHERE s.scheme_id = $SCHEME;
CREATE TEMP TABLE c_lines AS SELECT * FROM lines;
CREATE TEMP TABLE r_out AS SELECT * FROM kpi_ref.compute_scorecards($SCHEME, '$FROM', '$TO');
CREATE TEMP TABLE r_lines AS SELECT * FROM lines;
SELECT (SELECT count(*) FROM c_out) || ' scorecards, '
       || (SELECT count(*) FROM c_lines) || ' lines; differences: '
       || ((SELECT count(*) FROM (SELECT * FROM c_out EXCEPT SELECT * FROM r_out) x)
           + (SELECT count(*) FROM (SELECT * FROM r_out EXCEPT SELECT * FROM c_out) x)
           + (SELECT count(*) FROM (SELECT * FROM c_lines EXCEPT SELECT * FROM r_lines) x)
           + (SELECT count(*) FROM (SELECT * FROM r_lines EXCEPT SELECT * FROM c_lines) x));
SQL
)
echo "same answer check: $diffs"
case $diffs in
    *"differences: 0") ;;
    *) sm_die "compute_scorecards and the reference disagree" ;;
esac

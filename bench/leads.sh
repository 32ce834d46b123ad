#!/usr/bin/env bash
# bench/leads.sh: lead routing and scoring against PL/pgSQL / SQL references
# of the same semantics (bench/leads_reference.sql), in the same run.
#
#   Routing: BENCH_LEADS (default 100,000) leads inserted in one statement
#   through 20 assignment rules (round robin and load balanced over teams of
#   1,000 reps), three ways: a plain INSERT with the owners given (no
#   routing: the floor), the C trigger, the PL/pgSQL reference trigger.
#   Each run starts from an empty lead table.
#
#   Scoring: score_leads() (C) against the set-based SQL reference over
#   BENCH_SCORE_LEADS (default 1,000,000) leads with 2 activities each and
#   10 rules (6 on attributes, 4 on activities with a half-life); each run
#   rescores from zero.  Both give the same scores and explanations.  The
#   floor is one UPDATE writing those same scores and explanations from a
#   table: what any implementation pays to store them (the row grows; the
#   lead's triggers run, but scores are derived: the change log leaves them
#   out and updated_at stays, docs/leads.md#scoring).
#
#   bench/leads.sh                                  full scale
#   BENCH_LEADS=5000 BENCH_SCORE_LEADS=20000 BENCH_RUNS=1 bench/leads.sh    a quick check
BENCH_RUNS=${BENCH_RUNS:-3}
. "$(dirname "$0")/common.sh"

LEADS=${BENCH_LEADS:-100000}
SCORE_LEADS=${BENCH_SCORE_LEADS:-1000000}
bench_setup "${BENCH_SCALE:-2000}"
bench_psql -f "$SM_ROOT/bench/leads_reference.sql" >/dev/null

# 1,000 reps in 20 teams of 50; the load-balanced teams' reps have capacities
bench_psql <<'SQL'
-- the bench empties lead_history with the lead table between runs, and
-- sales_plan_item with sales_task (TRUNCATE ... CASCADE reaches it)
ALTER TABLE salesmgmt.lead_history DISABLE TRIGGER lead_history_append_only;
ALTER TABLE salesmgmt.sales_plan_item DISABLE TRIGGER sales_plan_item_append_only;
TRUNCATE salesmgmt.lead, salesmgmt.lead_history, salesmgmt.activity, salesmgmt.sales_task CASCADE;
INSERT INTO salesmgmt.team (team_id, name) SELECT 1000 + t, 'Bench team ' || t FROM generate_series(1, 20) t;
INSERT INTO salesmgmt.rep (rep_id, name, team_id) SELECT 100000 + r, 'Bench rep ' || r, 1001 + (r - 1) / 50
  FROM generate_series(1, 1000) r;
INSERT INTO salesmgmt.rep_capacity SELECT rep_id, 1000000 FROM salesmgmt.rep WHERE team_id BETWEEN 1011 AND 1020;
INSERT INTO salesmgmt.assignment_rule (entity, position, condition, target_kind, target_id)
SELECT 'lead', k,
       CASE WHEN k = 20 THEN '{}'::jsonb
            ELSE jsonb_build_object('region', (ARRAY['EMEA','APAC','Americas','China'])[1 + k % 4],
                                    'industry', jsonb_build_object('in', jsonb_build_array(
                                        (ARRAY['Retail','Software','Finance','Healthcare','Logistics'])[1 + k % 5],
                                        (ARRAY['Energy','Media'])[1 + k % 2])),
                                    'company_size', jsonb_build_object('>=', (k % 3) * 100)) END,
       CASE WHEN k <= 10 THEN 'team_round_robin' ELSE 'team_load_balanced' END, 1000 + k
  FROM generate_series(1, 20) k;
CREATE TABLE bench_lead_src AS
SELECT g AS n, 'Lead ' || g AS name, 'Co ' || g AS company,
       (ARRAY['web','event','referral','partner','cold'])[1 + g % 5] AS source,
       (ARRAY['Retail','Software','Finance','Healthcare','Logistics','Energy','Media'])[1 + g % 7] AS industry,
       (ARRAY['EMEA','APAC','Americas','China'])[1 + g % 4] AS region,
       (g * 37) % 5000 AS company_size,
       100001 + g % 1000 AS owner
  FROM generate_series(1, 200000) g;
CREATE TRIGGER lead_ref_route BEFORE INSERT ON salesmgmt.lead
    FOR EACH ROW EXECUTE FUNCTION leads_ref.route();
ALTER TABLE salesmgmt.lead DISABLE TRIGGER lead_ref_route;
ANALYZE;
SQL

# timed_run LABEL SQL [PREPARE]: the median over BENCH_RUNS runs of SQL, each
# after PREPARE (default: empty the lead table), which is not timed
EMPTY_LEADS="TRUNCATE salesmgmt.lead, salesmgmt.lead_history, salesmgmt.activity, salesmgmt.sales_task, salesmgmt.assignment_rotation CASCADE"
timed_run() {
    local label=$1 sql=$2 prepare=${3:-$EMPTY_LEADS} times=() i ms
    for ((i = 0; i < BENCH_RUNS; i++)); do
        bench_psql -c "$prepare"
        ms=$(bench_psql -tA -c "
            DO \$b\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
                $sql;
                PERFORM set_config('bench.ms', (extract(epoch FROM clock_timestamp() - t0) * 1000)::text, false);
            END \$b\$; SELECT round(current_setting('bench.ms')::numeric, 1)")
        times+=("$ms")
    done
    ms=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    BENCH_MS[$label]=$ms
    printf '%-48s %10.1f ms (median of %d)\n' "$label" "$ms" "$BENCH_RUNS"
}

echo "routing $LEADS leads through 20 rules over 1,000 reps"
bench_psql -c "ALTER TABLE salesmgmt.lead DISABLE TRIGGER lead_before"
timed_run "plain INSERT, owners given (floor)" "
    INSERT INTO salesmgmt.lead (name, company, source, industry, region, company_size, owner_rep_id)
    SELECT name, company, source, industry, region, company_size, owner FROM bench_lead_src WHERE n <= $LEADS"
bench_psql -c "ALTER TABLE salesmgmt.lead ENABLE TRIGGER lead_before"
timed_run "routed INSERT (C trigger)" "
    INSERT INTO salesmgmt.lead (name, company, source, industry, region, company_size)
    SELECT name, company, source, industry, region, company_size FROM bench_lead_src WHERE n <= $LEADS"
bench_psql -tA -c "SELECT 'routed: ' || count(owner_rep_id) || ' of ' || count(*) || ', reps used: ' || count(DISTINCT owner_rep_id) FROM salesmgmt.lead"
bench_psql -q -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS bench_c_owners; CREATE TABLE bench_c_owners AS SELECT name, owner_rep_id FROM salesmgmt.lead"
bench_psql -c "ALTER TABLE salesmgmt.lead DISABLE TRIGGER lead_before" -c "ALTER TABLE salesmgmt.lead ENABLE TRIGGER lead_ref_route"
timed_run "routed INSERT (PL/pgSQL reference trigger)" "
    INSERT INTO salesmgmt.lead (name, company, source, industry, region, company_size)
    SELECT name, company, source, industry, region, company_size FROM bench_lead_src WHERE n <= $LEADS"
diffs=$(bench_psql -tA -c "SELECT count(*) FROM salesmgmt.lead l JOIN bench_c_owners c USING (name) WHERE l.owner_rep_id IS DISTINCT FROM c.owner_rep_id")
echo "same owners as the C trigger: $diffs differences"
[ "$diffs" = 0 ] || sm_die "the C trigger and the reference route differently"
bench_psql -c "ALTER TABLE salesmgmt.lead DISABLE TRIGGER lead_ref_route" -c "ALTER TABLE salesmgmt.lead ENABLE TRIGGER lead_before"
bench_ratio "routed INSERT (C trigger)" "plain INSERT, owners given (floor)"
bench_ratio "routed INSERT (PL/pgSQL reference trigger)" "routed INSERT (C trigger)"

echo
echo "scoring $SCORE_LEADS leads, 2 activities each, 10 rules"
bench_psql <<SQL
TRUNCATE salesmgmt.lead, salesmgmt.lead_history, salesmgmt.activity, salesmgmt.sales_task, salesmgmt.assignment_rotation CASCADE;
ALTER TABLE salesmgmt.lead DISABLE TRIGGER lead_before;
INSERT INTO salesmgmt.lead (lead_id, name, company, source, industry, region, company_size, owner_rep_id, status, extra)
SELECT g, 'Lead ' || g, 'Co ' || g, (ARRAY['web','event','referral','partner','cold'])[1 + g % 5],
       (ARRAY['Retail','Software','Finance','Healthcare','Logistics','Energy','Media'])[1 + g % 7],
       (ARRAY['EMEA','APAC','Americas','China'])[1 + g % 4], (g * 37) % 5000, 100001 + g % 1000,
       (ARRAY['new','working','nurturing','qualified'])[1 + g % 4],
       jsonb_build_object('tier', g % 4)
  FROM generate_series(1, $SCORE_LEADS) g;
ALTER TABLE salesmgmt.lead ENABLE TRIGGER lead_before;
INSERT INTO salesmgmt.activity (kind, lead_id, rep_id, occurred_at)
SELECT (ARRAY['call','email','meeting','demo'])[1 + (g + k) % 4], g, 100001 + g % 1000,
       now() - make_interval(days => (g * k) % 120)
  FROM generate_series(1, $SCORE_LEADS) g, generate_series(1, 2) k;
TRUNCATE salesmgmt.lead_score_rule;
INSERT INTO salesmgmt.lead_score_rule (name, kind, condition, points, half_life_days) VALUES
    ('big', 'attribute', '{"company_size": {">=": 1000}}', 20, NULL),
    ('huge', 'attribute', '{"company_size": {">=": 4000}}', 10, NULL),
    ('referral', 'attribute', '{"source": "referral"}', 15, NULL),
    ('cold', 'attribute', '{"source": "cold"}', -10, NULL),
    ('target industries', 'attribute', '{"industry": {"in": ["Software", "Finance"]}, "region": {"<>": "China"}}', 8, NULL),
    ('tier', 'attribute', '{"extra": {"tier": {">": 2}}}', 5, NULL),
    ('calls', 'activity', '{"kind": "call"}', 4, 30),
    ('meetings', 'activity', '{"kind": {"in": ["meeting", "demo"]}}', 10, 60),
    ('emails', 'activity', '{"kind": "email"}', 1, 14),
    ('any touch', 'activity', '{}', 1, NULL);
VACUUM ANALYZE salesmgmt.lead, salesmgmt.activity;
SQL

AS_OF=$(bench_psql -tA -c "SELECT now()")
# every timed run starts from the same state: scored once, then reset.  The
# first scoring of the freshly loaded table grows every row, moving most
# of them to new pages (an entry in each of the eleven indexes per row);
# untimed here, it would otherwise be charged to whichever ran first.
bench_psql -c "SELECT salesmgmt.score_leads('$AS_OF')" >/dev/null
reset_scores="UPDATE salesmgmt.lead SET score = 0, score_explanation = '[]' WHERE score <> 0 OR score_explanation <> '[]'"
timed_run "score_leads (C)" "PERFORM salesmgmt.score_leads('$AS_OF')" "$reset_scores"
bench_psql -q -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS bench_c_scores; CREATE TABLE bench_c_scores AS SELECT lead_id, score, score_explanation FROM salesmgmt.lead" -c "ANALYZE bench_c_scores"
bench_psql -tA -c "SELECT 'scored: ' || count(*) FILTER (WHERE score <> 0) || ' of ' || count(*) FROM salesmgmt.lead"
# the floor: writing the same scores and explanations with one UPDATE from
# a table (both implementations write them all, through the same triggers)
timed_run "floor: UPDATE writing the same scores" \
    "UPDATE salesmgmt.lead l SET score = c.score, score_explanation = c.score_explanation
       FROM bench_c_scores c WHERE c.lead_id = l.lead_id AND l.status IN ('new', 'working', 'nurturing', 'qualified')" \
    "$reset_scores"
timed_run "score_leads (SQL reference)" "PERFORM leads_ref.score_leads('$AS_OF')" "$reset_scores"
diffs=$(bench_psql -tA -c "SELECT count(*) FROM salesmgmt.lead l JOIN bench_c_scores c USING (lead_id)
                           WHERE (l.score, l.score_explanation) IS DISTINCT FROM (c.score, c.score_explanation)")
echo "same scores and explanations: $diffs differences"
[ "$diffs" = 0 ] || sm_die "score_leads and the reference disagree"
bench_ratio "score_leads (SQL reference)" "score_leads (C)"
bench_ratio "score_leads (C)" "floor: UPDATE writing the same scores"

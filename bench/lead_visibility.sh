#!/usr/bin/env bash
# bench/lead_visibility.sh: row-level security on leads, the C predicate
# salesmgmt.lead_visible (src/lead_visible.c) against the PL/pgSQL predicate
# it replaced (bench/lead_visibility_reference.sql), in the same run, with
# the deal policy (deal_visible, C) on as many deals as the yardstick.
#
#   BENCH_LEADS (default 1,000,000) leads, half owned by 1,000 reps in 20
#   teams of 50 under one root team, half waiting in 20 pools (one per
#   team).  A rep and the root's manager each count the leads they see
#   (a full scan through the policy), once with each predicate; both see
#   the same rows.  The same number of deals, owned like the owned leads,
#   counted by the same two roles, is what the lead policy is held to.
#   The reference is slow for a manager (a query per pool lead over each of
#   the 1,001 reps the manager sees: minutes for 10,000 pool leads), so it
#   runs for the manager only with BENCH_MANAGER_REFERENCE=1 (check it
#   small); the manager's C count is still compared with what it must see.
#
#   bench/lead_visibility.sh                               full scale
#   BENCH_LEADS=4000 BENCH_RUNS=1 BENCH_MANAGER_REFERENCE=1 bench/lead_visibility.sh   a quick check
BENCH_RUNS=${BENCH_RUNS:-3}
. "$(dirname "$0")/common.sh"

LEADS=${BENCH_LEADS:-1000000}
bench_setup "${BENCH_SCALE:-2000}"
bench_psql -f "$SM_ROOT/bench/lead_visibility_reference.sql" >/dev/null

bench_psql <<SQL
SET client_min_messages = warning;
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_lv_rep') THEN
        CREATE ROLE bench_lv_rep IN ROLE salesmgmt_rep;
        CREATE ROLE bench_lv_mgr IN ROLE salesmgmt_manager;
    END IF;
END
\$\$;
GRANT USAGE ON SCHEMA lv_ref TO bench_lv_rep, bench_lv_mgr;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA lv_ref TO bench_lv_rep, bench_lv_mgr;
INSERT INTO salesmgmt.team (team_id, name) VALUES (2000, 'Bench root');
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) SELECT 2000 + t, 'Bench team ' || t, 2000 FROM generate_series(1, 20) t;
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (200000, 'Bench manager', 2000);
INSERT INTO salesmgmt.rep (rep_id, name, team_id) SELECT 200000 + r, 'Bench rep ' || r, 2001 + (r - 1) / 50
  FROM generate_series(1, 1000) r;
UPDATE salesmgmt.rep SET db_role = 'bench_lv_rep' WHERE rep_id = 200001;
UPDATE salesmgmt.rep SET db_role = 'bench_lv_mgr' WHERE rep_id = 200000;
UPDATE salesmgmt.team SET manager_rep_id = 200000 WHERE team_id = 2000;
INSERT INTO salesmgmt.lead_pool (pool_id, name) SELECT 2000 + t, 'Bench pool ' || t FROM generate_series(1, 20) t;
INSERT INTO salesmgmt.lead_pool_team (pool_id, team_id) SELECT 2000 + t, 2000 + t FROM generate_series(1, 20) t;
ALTER TABLE salesmgmt.lead DISABLE TRIGGER lead_before;
ALTER TABLE salesmgmt.lead DISABLE TRIGGER lead_after_statement;
INSERT INTO salesmgmt.lead (name, owner_rep_id, pool_id)
SELECT 'Lead ' || g, CASE WHEN g % 2 = 0 THEN 200001 + g % 1000 END, CASE WHEN g % 2 = 1 THEN 2001 + (g / 2) % 20 END
  FROM generate_series(1, $LEADS) g;
ALTER TABLE salesmgmt.lead ENABLE TRIGGER lead_before;
ALTER TABLE salesmgmt.lead ENABLE TRIGGER lead_after_statement;
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) VALUES (200000, 'Bench account', 200000);
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
SELECT 'Bench deal ' || g, 200000, 200001 + g % 1000, 1,
       (SELECT min(stage_id) FROM salesmgmt.stage WHERE pipeline_id = 1), 100
  FROM generate_series(1, $LEADS) g;
VACUUM ANALYZE salesmgmt.lead, salesmgmt.deal;
SQL

# count_as LABEL ROLE TABLE: the median time of one count(*) of TABLE as ROLE
count_as() {
    local label=$1 role=$2 table=$3 times=() i ms
    for ((i = 0; i <= BENCH_RUNS; i++)); do
        ms=$(bench_psql -tA -c "SET ROLE $role" -c "
            DO \$b\$ DECLARE t0 timestamptz := clock_timestamp(); n bigint; BEGIN
                SELECT count(*) INTO n FROM salesmgmt.$table;
                PERFORM set_config('bench.ms', (extract(epoch FROM clock_timestamp() - t0) * 1000)::text, false);
                PERFORM set_config('bench.n', n::text, false);
            END \$b\$" -c "SELECT round(current_setting('bench.ms')::numeric, 1) || ' ' || current_setting('bench.n')")
        [ "$i" -eq 0 ] && continue    # warm-up
        times+=("${ms%% *}")
        BENCH_ROWS[$label]=${ms##* }
    done
    ms=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    BENCH_MS[$label]=$ms
    printf '%-48s %10.1f ms (median of %d), %s rows seen\n' "$label" "$ms" "$BENCH_RUNS" "${BENCH_ROWS[$label]}"
}
declare -A BENCH_ROWS

use_policy() {
    bench_psql -c "ALTER POLICY lead_read ON salesmgmt.lead USING ($1(owner_rep_id, pool_id))"
}

echo "$LEADS leads (half waiting in 20 pools), $LEADS deals, row-level security scans"
for who in rep:bench_lv_rep manager:bench_lv_mgr; do
    name=${who%%:*} role=${who##*:}
    use_policy salesmgmt.lead_visible
    count_as "$name: leads, lead_visible (C)" "$role" lead
    count_as "$name: deals, deal_visible (C)" "$role" deal
    if [ "$name" = rep ] || [ "${BENCH_MANAGER_REFERENCE:-0}" = 1 ]; then
        use_policy lv_ref.lead_visible
        count_as "$name: leads, PL/pgSQL reference" "$role" lead
        use_policy salesmgmt.lead_visible
        [ "${BENCH_ROWS["$name: leads, lead_visible (C)"]}" = "${BENCH_ROWS["$name: leads, PL/pgSQL reference"]}" ] \
            || sm_die "the C predicate and the reference see different leads as $name"
        echo "$name: both predicates see the same ${BENCH_ROWS["$name: leads, lead_visible (C)"]} leads"
        bench_ratio "$name: leads, PL/pgSQL reference" "$name: leads, lead_visible (C)"
    fi
    bench_ratio "$name: leads, lead_visible (C)" "$name: deals, deal_visible (C)"
done
# what each must see: the rep its 1 in 1,000 owned leads and its team's pool;
# the manager every bench lead
expect_rep=$(bench_psql -tA -c "SELECT count(*) FROM salesmgmt.lead WHERE owner_rep_id = 200001 OR pool_id = 2001")
expect_mgr=$(bench_psql -tA -c "SELECT count(*) FROM salesmgmt.lead WHERE owner_rep_id >= 200000 OR pool_id > 2000")
[ "${BENCH_ROWS["rep: leads, lead_visible (C)"]}" = "$expect_rep" ] || sm_die "the rep sees the wrong leads"
[ "${BENCH_ROWS["manager: leads, lead_visible (C)"]}" = "$expect_mgr" ] || sm_die "the manager sees the wrong leads"
echo "the rep sees $expect_rep leads and the manager $expect_mgr, as they must" 

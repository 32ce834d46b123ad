#!/usr/bin/env bash
# bench/pipeline.sh [SCALE]: the pipeline triggers against a PL/pgSQL
# reference of the same rules and history (bench/pipeline_reference.sql)
# and the floor (the same UPDATE plus a hand-written history INSERT, no
# checks), in the same run on the same data set (default 1,000,000 deals):
#
#   1. one bulk UPDATE moving BENCH_BULK (100,000) open deals to their next
#      stage (through stage gates), timed by bench_time, undone after each run;
#   2. single-deal moves under pgbench (prepared statements): PGBENCH_CLIENTS (4) clients for
#      PGBENCH_SECONDS (20) each, every transaction moving one random deal to
#      its next stage (Negotiation goes back to Prospecting through a
#      configured transition, so deals cycle).
#
# Also timed: the bare UPDATE alone (no triggers, no history), to show what
# each implementation adds to what PostgreSQL itself needs.
#
# Before timing, it checks that C and PL/pgSQL leave the same deals and the
# same history after the bulk move, and refuse bad moves with the same
# SQLSTATEs.  Prints times and ratios; targets: C at least 2x faster than
# PL/pgSQL, and within 1.15x of the floor.
. "$(dirname "$0")/common.sh"

BULK=${BENCH_BULK:-100000}
CLIENTS=${PGBENCH_CLIENTS:-4}
SECONDS_EACH=${PGBENCH_SECONDS:-20}

bench_setup "${1:-1000000}"
bench_psql -v bulk="$BULK" -f "$SM_ROOT/bench/pipeline_reference.sql"
read -r moved cycle < <(bench_psql -tA -F ' ' -c \
    "SELECT (SELECT count(*) FROM pipeline_bench.move_set), (SELECT count(*) FROM pipeline_bench.cycle_set)")
echo "bulk move: $moved deals; single moves over $cycle other open deals"

# ------------------------------------------------------------ same answer
at=$(bench_psql -tA -c "SELECT max(stage_entered_at) FROM salesmgmt.deal")
answer() {	# answer VARIANT: digest of the moved deals and their new history
    bench_psql -tA <<SQL
BEGIN;
SELECT pipeline_bench.use('$1');
SELECT max(history_id) AS before FROM salesmgmt.deal_stage_history \gset
SELECT pipeline_bench.bulk_move('$1', '$at', true) \g /dev/null
SELECT md5(string_agg(d::text, '|' ORDER BY d.deal_id))
  FROM salesmgmt.deal d JOIN pipeline_bench.move_set m USING (deal_id);
SELECT count(*) || ' ' || md5(string_agg((h.deal_id, h.pipeline_id, h.from_stage_id, h.to_stage_id, h.owner_rep_id,
           h.old_amount, h.new_amount, h.currency, h.old_expected_close_date, h.new_expected_close_date,
           h.probability, h.forecast_category, h.effective_probability, h.effective_category,
           h.changed_at, h.changed_by, h.time_in_previous_stage, h.note)::text, '|' ORDER BY h.deal_id, h.history_id))
  FROM salesmgmt.deal_stage_history h WHERE h.history_id > :before;
SELECT string_agg(pipeline_bench.sqlstate_of(q), ' ' ORDER BY i) FROM unnest(ARRAY[
    'UPDATE salesmgmt.deal SET stage_id = 1 WHERE deal_id = (SELECT min(deal_id) FROM salesmgmt.deal WHERE stage_id = 5)',
    'UPDATE salesmgmt.deal SET stage_id = 4, extra = extra - ''decision_maker'' WHERE deal_id = (SELECT min(deal_id) FROM salesmgmt.deal WHERE stage_id = 3)',
    'UPDATE salesmgmt.deal SET stage_id = 8 WHERE deal_id = (SELECT min(deal_id) FROM salesmgmt.deal WHERE stage_id = 1)',
    'UPDATE salesmgmt.deal SET stage_id = 2 WHERE deal_id = (SELECT min(deal_id) FROM salesmgmt.deal WHERE stage_id = 3)',
    'UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = now() + interval ''1 day'' WHERE deal_id = (SELECT min(deal_id) FROM salesmgmt.deal WHERE stage_id = 1)'
    ]) WITH ORDINALITY AS t(q, i);
ROLLBACK;
SQL
}
c_answer=$(answer c)
ref_answer=$(answer ref)
printf 'C:        %s\nPL/pgSQL: %s\n' "$(echo $c_answer)" "$(echo $ref_answer)"
if [ "$c_answer" != "$ref_answer" ]; then
    sm_die "C triggers and the PL/pgSQL reference disagree"
fi
echo "same deals, same history, same SQLSTATEs: yes"

# ------------------------------------------------------------ bulk UPDATE
echo
echo "== one UPDATE moving $moved deals to their next stage"
for v in bare floor c ref c_rules ref_rules; do
    case $v in
        bare) use=floor; label="bare UPDATE: no triggers, no history" ;;
        floor) use=floor; label="floor: UPDATE + history INSERT, no checks" ;;
        c) use=c; label="salesmgmt C triggers" ;;
        ref) use=ref; label="PL/pgSQL reference triggers" ;;
        c_rules) use=c_rules; label="C rules only (no history)" ;;
        ref_rules) use=ref_rules; label="PL/pgSQL rules only (no history)" ;;
    esac
    bench_psql -c "SELECT pipeline_bench.use('$use')" >/dev/null
    bench_psql -c "VACUUM ANALYZE salesmgmt.deal, salesmgmt.deal_stage_history"
    bench_time "$label" "SELECT pipeline_bench.bulk_move('${v/_rules/}')"
done
bench_ratio "PL/pgSQL reference triggers" "salesmgmt C triggers"
bench_ratio "salesmgmt C triggers" "floor: UPDATE + history INSERT, no checks"
overhead() {	# overhead LABEL: time above the bare UPDATE, per moved deal
    printf '%-48s %10.1f us per deal\n' "$1, above the bare UPDATE" \
        "$(echo "scale=4; (${BENCH_MS[$1]} - ${BENCH_MS["bare UPDATE: no triggers, no history"]}) * 1000 / $moved" | bc)"
}
overhead "floor: UPDATE + history INSERT, no checks"
overhead "salesmgmt C triggers"
overhead "PL/pgSQL reference triggers"
overhead "C rules only (no history)"
overhead "PL/pgSQL rules only (no history)"

# ------------------------------------------------------------ single moves
PGB=$BENCH_WORK/pgbench
mkdir -p "$PGB"
next_stage='CASE d.stage_id WHEN 4 THEN 1 ELSE d.stage_id + 1 END'
cat > "$PGB/trigger.sql" <<SQL
\set n random(1, :cycle)
UPDATE salesmgmt.deal d SET stage_id = $next_stage
  FROM pipeline_bench.cycle_set c WHERE c.n = :n AND d.deal_id = c.deal_id;
SQL
cat > "$PGB/move_deal.sql" <<SQL
\set n random(1, :cycle)
SELECT salesmgmt.move_deal(d.deal_id, (ARRAY['Qualification', 'Proposal', 'Negotiation', 'Prospecting'])[d.stage_id])
  FROM pipeline_bench.cycle_set c JOIN salesmgmt.deal d ON d.deal_id = c.deal_id WHERE c.n = :n;
SQL
cat > "$PGB/floor.sql" <<SQL
\set n random(1, :cycle)
WITH old AS (
    SELECT d.deal_id, d.stage_id, d.amount, d.expected_close_date, d.stage_entered_at
      FROM salesmgmt.deal d JOIN pipeline_bench.cycle_set c ON c.deal_id = d.deal_id
     WHERE c.n = :n FOR UPDATE OF d
), moved AS (
    UPDATE salesmgmt.deal d SET stage_id = $next_stage, stage_entered_at = now(), updated_at = now()
      FROM old o WHERE d.deal_id = o.deal_id
    RETURNING d.*, o.stage_id AS old_stage_id, o.amount AS old_amount,
              o.expected_close_date AS old_ecd, o.stage_entered_at AS old_entered
)
INSERT INTO salesmgmt.deal_stage_history
    (deal_id, pipeline_id, from_stage_id, to_stage_id, owner_rep_id, old_amount, new_amount, currency,
     old_expected_close_date, new_expected_close_date, probability, forecast_category,
     effective_probability, effective_category, changed_at, changed_by, time_in_previous_stage)
SELECT m.deal_id, m.pipeline_id, m.old_stage_id, m.stage_id, m.owner_rep_id, m.old_amount, m.amount,
       m.currency, m.old_ecd, m.expected_close_date, m.probability, m.forecast_category,
       coalesce(m.probability, s.probability), coalesce(m.forecast_category, s.forecast_category),
       now(), current_user, now() - m.old_entered
  FROM moved m JOIN salesmgmt.stage s ON s.stage_id = m.stage_id;
SQL

declare -A TPS
pgbench_run() {	# pgbench_run LABEL VARIANT SCRIPT
    bench_psql -c "SELECT pipeline_bench.use('$2')" >/dev/null
    bench_psql -c "VACUUM ANALYZE salesmgmt.deal, salesmgmt.deal_stage_history"
    TPS[$1]=$("$SM_BIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_EACH" -D cycle="$cycle" \
        -f "$PGB/$3" bench 2>&1 | awk '/^tps/ { printf "%.0f", $3 }')
    printf '%-48s %10s moves/s (%d clients, %d s)\n' "$1" "${TPS[$1]}" "$CLIENTS" "$SECONDS_EACH"
}
echo
echo "== single-deal moves, pgbench"
pgbench_run "bare UPDATE: no triggers, no history" floor trigger.sql
pgbench_run "floor: UPDATE + history INSERT, no checks" floor floor.sql
pgbench_run "salesmgmt C triggers" c trigger.sql
pgbench_run "salesmgmt.move_deal" c move_deal.sql
pgbench_run "PL/pgSQL reference triggers" ref trigger.sql
tps_ratio() {	# tps_ratio FASTER SLOWER: how many times the first's throughput
    printf '%-48s %10.2fx\n' "$1 / $2 (throughput)" "$(echo "scale=4; ${TPS[$1]} / ${TPS[$2]}" | bc)"
}
tps_ratio "salesmgmt C triggers" "PL/pgSQL reference triggers"
tps_ratio "floor: UPDATE + history INSERT, no checks" "salesmgmt C triggers"
bench_psql -c "SELECT pipeline_bench.use('c')" >/dev/null

# ------------------------------------------------------------ with the sales process
# Stage tasks (3 required templates per open stage: created on entry, the
# open-task check on every forward move) and an approval rule evaluated on
# every move into Negotiation (bench/process_reference.sql), against the
# floor of the same run: the same UPDATE, history and task INSERTs by hand.
# Target: within 1.25x the floor.
echo
echo "== with stage tasks (3 per stage) and an approval rule: $moved deals, one UPDATE"
bench_psql -f "$SM_ROOT/bench/process_reference.sql"
bench_psql -c "SELECT pipeline_bench.use('floor')" >/dev/null
bench_psql -c "VACUUM ANALYZE salesmgmt.deal, salesmgmt.deal_stage_history, salesmgmt.sales_task"
bench_time "floor with tasks: UPDATE + history + tasks" "SELECT pipeline_bench.bulk_move('floor_tasks')"
bench_psql -c "SELECT pipeline_bench.use('c')" >/dev/null
bench_psql -c "VACUUM ANALYZE salesmgmt.deal, salesmgmt.deal_stage_history, salesmgmt.sales_task"
bench_time "salesmgmt C triggers, tasks and approvals" "SELECT pipeline_bench.bulk_move('c')"
bench_ratio "salesmgmt C triggers, tasks and approvals" "floor with tasks: UPDATE + history + tasks"

# single moves: each transaction moves a deal and completes its new tasks
# (one transaction: a second client picking the same deal waits for the
# tasks to be done instead of finding them open and failing the move)
cat > "$PGB/tasks_trigger.sql" <<SQL
\set n random(1, :cycle)
BEGIN;
UPDATE salesmgmt.deal d SET stage_id = $next_stage
  FROM pipeline_bench.cycle_set c WHERE c.n = :n AND d.deal_id = c.deal_id;
UPDATE salesmgmt.sales_task t SET status = 'done', completed_at = now()
  FROM pipeline_bench.cycle_set c WHERE c.n = :n AND t.deal_id = c.deal_id AND t.status = 'open';
COMMIT;
SQL
# the floor of the same: floor.sql's UPDATE and history, the new stage's
# tasks and their completion, by hand
{
    sed -e 's/^INSERT INTO salesmgmt.deal_stage_history$/, hist AS (\nINSERT INTO salesmgmt.deal_stage_history/' \
        -e '$ s/;$/\n)/' "$PGB/floor.sql"
    cat <<SQL
INSERT INTO salesmgmt.sales_task (rep_id, account_id, deal_id, title, due_date, stage_id, template_id, required)
SELECT m.owner_rep_id, m.account_id, m.deal_id, t.title, current_date + t.due_days, m.stage_id, t.template_id, t.required
  FROM moved m JOIN salesmgmt.stage_task_template t ON t.stage_id = m.stage_id
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.sales_task x
                    WHERE x.deal_id = m.deal_id AND x.template_id = t.template_id AND x.status <> 'cancelled');
UPDATE salesmgmt.sales_task t SET status = 'done', completed_at = now()
  FROM pipeline_bench.cycle_set c WHERE c.n = :n AND t.deal_id = c.deal_id AND t.status = 'open';
COMMIT;
SQL
} | sed -e '1 a BEGIN;' > "$PGB/tasks_floor.sql"
pgbench_run "floor with tasks" floor tasks_floor.sql
pgbench_run "salesmgmt C triggers, tasks and approvals" c tasks_trigger.sql
tps_ratio "floor with tasks" "salesmgmt C triggers, tasks and approvals"

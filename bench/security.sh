#!/usr/bin/env bash
# bench/security.sh [SCALE]: what row-level security costs.  The same
# queries run as a superuser (no RLS: the floor), as a salesmgmt admin (a
# "true" policy), as a VP whose team tree is the whole organisation, as a
# regional manager (a quarter of it) and as a rep, and the manager's and
# rep's queries are compared with the same visibility written by hand in
# plain SQL (bench/security_reference.sql, one scan of deal per query),
# run by the superuser.  Each pair is checked to give the same answer.
# Scans of deal, of rows hanging off deals (payments, history, activities)
# and point lookups; the targets of issue 14 are printed beside the ratios.
. "$(dirname "$0")/common.sh"
bench_setup "${1:-1000000}"

bench_psql <<'SQL'
CREATE ROLE bench_admin LOGIN; GRANT salesmgmt_admin TO bench_admin;
CREATE ROLE bench_vp LOGIN; GRANT salesmgmt_manager TO bench_vp;
CREATE ROLE bench_region LOGIN; GRANT salesmgmt_manager TO bench_region;
CREATE ROLE bench_rep LOGIN; GRANT salesmgmt_rep TO bench_rep;
UPDATE salesmgmt.rep SET db_role = 'bench_vp' WHERE rep_id = 1;
UPDATE salesmgmt.rep SET db_role = 'bench_region' WHERE rep_id = 2;
UPDATE salesmgmt.rep SET db_role = 'bench_rep' WHERE rep_id = 7;
SQL
bench_psql -At -c "SELECT 'reps: ' || count(*) || ', region manager sees ' || (SELECT count(*) FROM salesmgmt.visible_rep_ids('bench_region')) || ', deals: ' || (SELECT count(*) FROM salesmgmt.deal) FROM salesmgmt.rep"

section() {	# section NAME: a section of the reference file
    awk -v name="-- @$1" '$0 == name { on = 1; next } /^-- @/ { on = 0 } on' "$SM_ROOT/bench/security_reference.sql"
}
ref() {	# ref SECTION REP MANAGER: the hand-written query of the reference file
    { section with; section "$1"; } | sed "s/@REP@/$2/g; s/@MGR@/$3/g"
}
as() {	# as ROLE SQL: run as the role (the session user stays the superuser)
    PGOPTIONS="-c role=$1" bench_psql -At -c "$2"
}
same() {	# same LABEL A B: both give the same answer
    if [ "$2" = "$3" ]; then echo "same answer: $1 ($2)"; else echo "DIFFERENT ANSWERS: $1: $2 vs $3"; exit 1; fi
}

deals='SELECT count(*), sum(amount) FROM salesmgmt.deal'
payments='SELECT count(*), sum(amount) FROM salesmgmt.payment'
history='SELECT count(*), sum(new_amount) FROM salesmgmt.deal_stage_history'
activities='SELECT count(*) FROM salesmgmt.activity'
board='SELECT count(*) FROM salesmgmt.pipeline_board'

for r in "bench_vp 1 true" "bench_region 2 true" "bench_rep 7 false"; do
    set -- $r
    for q in deals payments history activities; do
        same "$q as $1" "$(as "$1" "${!q}")" "$(bench_psql -At -c "$(ref "$q" "$2" "$3")")"
    done
done

time_as() { PGOPTIONS="-c role=$1" bench_time "$2" "$3"; }

# scans: each table as the superuser (the floor), an admin, the VP, the
# regional manager and the rep, and the hand-written visibility
for q in deals payments history activities; do
    echo "-- $q"
    bench_time "$q: superuser (floor)" "${!q}"
    time_as bench_admin "$q: salesmgmt_admin" "${!q}"
    for r in "bench_vp VP 1 true" "bench_region regional 2 true" "bench_rep rep 7 false"; do
        set -- $r
        time_as "$1" "$q: $2 via RLS" "${!q}"
        bench_time "$q: $2, hand-written SQL" "$(ref "$q" "$3" "$4")"
    done
done
echo "-- the pipeline board view (security_invoker)"
bench_time "board: superuser (floor)" "$board"
time_as bench_region "board: regional via RLS" "$board"
time_as bench_rep "board: rep via RLS" "$board"

echo "-- ratios (targets of issue 14: deal scans by managers <= 1.3x the floor,"
echo "--   rows hanging off deals <= 2x)"
for q in deals payments history activities; do
    bench_ratio "$q: salesmgmt_admin" "$q: superuser (floor)"
    for who in VP regional rep; do
        bench_ratio "$q: $who via RLS" "$q: superuser (floor)"
        bench_ratio "$q: $who via RLS" "$q: $who, hand-written SQL"
    done
done
bench_ratio "board: regional via RLS" "board: superuser (floor)"

# OLTP: one deal by id, as each role, with pgbench (2 clients, 10 s): the
# fixed cost of the policies per statement.  The ids are random; most are
# not the rep's own.  Targets: the VP and the regional manager at >= 80% of
# the superuser's rate, the rep at >= 90%.
echo "-- point lookups: SELECT * FROM salesmgmt.deal WHERE deal_id = random id"
max_deal=$(bench_psql -At -c 'SELECT max(deal_id) FROM salesmgmt.deal')
printf '\\set id random(1, %s)\nSELECT * FROM salesmgmt.deal WHERE deal_id = :id;\n' "$max_deal" > "$BENCH_WORK/point.sql"
declare -A TPS
for role in postgres bench_admin bench_vp bench_region bench_rep; do
    TPS[$role]=$(PGOPTIONS="-c role=$role" "$SM_BIN/pgbench" -n -c 2 -j 2 -T "${BENCH_PGBENCH_SECONDS:-10}" -M prepared \
          -f "$BENCH_WORK/point.sql" 2>/dev/null | awk '/^tps/ { printf "%.0f", $3 }')
    printf '%-48s %10s tps\n' "point lookup as $role" "${TPS[$role]}"
done
for role in bench_admin bench_vp bench_region bench_rep; do
    printf '%-48s %9.0f%%\n' "point lookup as $role / superuser" \
        "$(echo "scale=4; 100 * ${TPS[$role]} / ${TPS[postgres]}" | bc)"
done

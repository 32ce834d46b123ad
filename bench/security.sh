#!/usr/bin/env bash
# bench/security.sh [SCALE]: what row-level security costs.  The same
# queries run as a superuser (no RLS: the floor), as a salesmgmt admin (a
# "true" policy), as a VP whose team tree is the whole organisation, as a
# regional manager (a quarter of it) and as a rep, and the manager's and
# rep's queries are compared with the same visibility written by hand in
# plain SQL (bench/security_reference.sql), run by the superuser.  Each
# pair is checked to give the same answer.
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
bench_psql -At -c "SELECT 'reps: ' || count(*) || ', region manager sees ' || (SELECT count(*) FROM salesmgmt.visible_rep_ids('bench_region')) FROM salesmgmt.rep"

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
board='SELECT count(*) FROM salesmgmt.pipeline_board'

for r in "bench_vp 1 true" "bench_region 2 true" "bench_rep 7 false"; do
    set -- $r
    same "deals as $1" "$(as "$1" "$deals")" "$(bench_psql -At -c "$(ref deals "$2" "$3")")"
    same "payments as $1" "$(as "$1" "$payments")" "$(bench_psql -At -c "$(ref payments "$2" "$3")")"
done

time_as() { PGOPTIONS="-c role=$1" bench_time "$2" "$3"; }

echo "-- deals: count and sum over the deals the role sees"
bench_time "deals: superuser (floor)" "$deals"
time_as bench_admin "deals: salesmgmt_admin" "$deals"
time_as bench_vp "deals: VP (whole tree) via RLS" "$deals"
bench_time "deals: VP, hand-written SQL" "$(ref deals 1 true)"
time_as bench_region "deals: regional manager via RLS" "$deals"
bench_time "deals: regional manager, hand-written SQL" "$(ref deals 2 true)"
time_as bench_rep "deals: rep via RLS" "$deals"
bench_time "deals: rep, hand-written SQL" "$(ref deals 7 false)"
echo "-- payments: hang off deals (EXISTS on the deal)"
bench_time "payments: superuser (floor)" "$payments"
time_as bench_admin "payments: salesmgmt_admin" "$payments"
time_as bench_vp "payments: VP via RLS" "$payments"
time_as bench_region "payments: regional manager via RLS" "$payments"
bench_time "payments: regional manager, hand-written SQL" "$(ref payments 2 true)"
time_as bench_rep "payments: rep via RLS" "$payments"
bench_time "payments: rep, hand-written SQL" "$(ref payments 7 false)"
echo "-- the pipeline board view (security_invoker)"
bench_time "board: superuser (floor)" "$board"
time_as bench_region "board: regional manager via RLS" "$board"
time_as bench_rep "board: rep via RLS" "$board"

bench_ratio "deals: VP (whole tree) via RLS" "deals: VP, hand-written SQL"
bench_ratio "deals: regional manager via RLS" "deals: regional manager, hand-written SQL"
bench_ratio "deals: rep via RLS" "deals: rep, hand-written SQL"
bench_ratio "payments: regional manager via RLS" "payments: regional manager, hand-written SQL"
bench_ratio "payments: rep via RLS" "payments: rep, hand-written SQL"
bench_ratio "deals: salesmgmt_admin" "deals: superuser (floor)"
bench_ratio "deals: VP (whole tree) via RLS" "deals: superuser (floor)"
bench_ratio "deals: regional manager via RLS" "deals: superuser (floor)"
bench_ratio "deals: rep via RLS" "deals: superuser (floor)"
bench_ratio "payments: salesmgmt_admin" "payments: superuser (floor)"
bench_ratio "payments: VP via RLS" "payments: superuser (floor)"
bench_ratio "payments: regional manager via RLS" "payments: superuser (floor)"
bench_ratio "payments: rep via RLS" "payments: superuser (floor)"

# OLTP: one deal by id, as each role, with pgbench (2 clients, 10 s): the
# policies' sets are computed once per statement, so this shows their
# fixed cost.  The ids are random; most are not the rep's own.
echo "-- point lookups: SELECT * FROM salesmgmt.deal WHERE deal_id = random id"
max_deal=$(bench_psql -At -c 'SELECT max(deal_id) FROM salesmgmt.deal')
printf '\\set id random(1, %s)\nSELECT * FROM salesmgmt.deal WHERE deal_id = :id;\n' "$max_deal" > "$BENCH_WORK/point.sql"
for role in postgres bench_admin bench_vp bench_region bench_rep; do
    tps=$(PGOPTIONS="-c role=$role" "$SM_BIN/pgbench" -n -c 2 -j 2 -T "${BENCH_PGBENCH_SECONDS:-10}" -M prepared \
          -f "$BENCH_WORK/point.sql" 2>/dev/null | awk '/^tps/ { printf "%.0f", $3 }')
    printf '%-48s %10s tps\n' "point lookup as $role" "$tps"
done

#!/usr/bin/env bash
# bench/audit.sh [SCALE]: the audit trail and the duplicate search.
#
#   1. one UPDATE changing two columns of BENCH_BULK (100,000) accounts:
#      with the C audit trigger (salesmgmt._audit_trigger, a statement
#      trigger reading the transition tables), with no audit trigger, and
#      with the PL/pgSQL jsonb-diff row trigger a strong DBA would write
#      (bench/audit_reference.sql);
#   2. salesmgmt.find_duplicates('account') on the data set's accounts,
#      with the 2% planted duplicates of scripts/datagen.sql: every planted
#      pair must be found (recall is checked, the time printed).
#
# SCALE is the data set's deal count (accounts = SCALE / 5; the default
# 500,000 gives 100,000 accounts).  Before timing it checks that the C
# trigger and the reference log the same changes.  Targets (printed, never
# enforced): C within 1.3x of no trigger, at least 3x the reference;
# find_duplicates under 10 s with every planted pair found.
. "$(dirname "$0")/common.sh"

BULK=${BENCH_BULK:-100000}
BENCH_DATAGEN_VARS="-v duplicates=1"
bench_setup "${1:-500000}"
bench_psql -f "$SM_ROOT/bench/audit_reference.sql"
naccounts=$(bench_psql -tA -c "SELECT count(*) FROM salesmgmt.account WHERE account_id <= $BULK")
UPDATE_SQL="UPDATE salesmgmt.account SET segment = CASE WHEN segment = 'SMB' THEN 'Mid-Market' ELSE 'SMB' END, next_follow_up = coalesce(next_follow_up, DATE '2026-01-01') + 1 WHERE account_id <= $BULK"

# ------------------------------------------------------------ same answer
same=$(bench_psql -tA <<SQL
BEGIN;
ALTER TABLE salesmgmt.account ENABLE TRIGGER audit_reference;
$UPDATE_SQL;
SELECT count(*) = $naccounts
       AND NOT EXISTS (
        (SELECT row_id, (SELECT array_agg(x ORDER BY x) FROM unnest(changed_columns) x), old_values, new_values, owner_rep_id
           FROM salesmgmt.change_log WHERE txid = txid_current()
         EXCEPT
         SELECT row_id, (SELECT array_agg(x ORDER BY x) FROM unnest(changed_columns) x), old_values, new_values, owner_rep_id
           FROM audit_bench.change_log WHERE txid = txid_current())
        UNION ALL
        (SELECT row_id, (SELECT array_agg(x ORDER BY x) FROM unnest(changed_columns) x), old_values, new_values, owner_rep_id
           FROM audit_bench.change_log WHERE txid = txid_current()
         EXCEPT
         SELECT row_id, (SELECT array_agg(x ORDER BY x) FROM unnest(changed_columns) x), old_values, new_values, owner_rep_id
           FROM salesmgmt.change_log WHERE txid = txid_current()))
  FROM salesmgmt.change_log WHERE txid = txid_current();
ROLLBACK;
SQL
)
[ "$same" = t ] || sm_die "the C audit trigger and the PL/pgSQL reference log different changes"
echo "same changes logged by the C trigger and the reference: yes ($naccounts accounts)"

echo; echo "== one UPDATE of two columns of $naccounts accounts"
for v in none c ref; do
    bench_psql -c "SELECT audit_bench.use('$v')" >/dev/null
    bench_psql -c 'VACUUM salesmgmt.account' >/dev/null
    bench_time "update, audit: $v" "$UPDATE_SQL"
done
bench_psql -c "SELECT audit_bench.use('c')" >/dev/null
bench_ratio "update, audit: c" "update, audit: none"
bench_ratio "update, audit: ref" "update, audit: c"
echo "targets: c / none <= 1.3x; ref / c >= 3x"

# ------------------------------------------------------------ duplicates
if bench_psql -tA -c "SELECT to_regclass('dedup_bench.planted') IS NOT NULL" | grep -q t; then
    echo; echo "== find_duplicates('account') on $(bench_psql -tA -c 'SELECT count(*) FROM salesmgmt.account') accounts"
    bench_psql -tA <<'SQL'
CREATE TEMP TABLE found AS SELECT * FROM salesmgmt.find_duplicates('account');
SELECT format('planted pairs: %s, found: %s, candidate pairs: %s',
              (SELECT count(*) FROM dedup_bench.planted),
              (SELECT count(*) FROM dedup_bench.planted p JOIN found f
                  ON (f.id_a, f.id_b) = (least(p.original_id, p.duplicate_id), greatest(p.original_id, p.duplicate_id))),
              (SELECT count(*) FROM found));
SQL
    missing=$(bench_psql -tA -c "SELECT count(*) FROM dedup_bench.planted p WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.find_duplicates('account') f WHERE (f.id_a, f.id_b) = (least(p.original_id, p.duplicate_id), greatest(p.original_id, p.duplicate_id)))")
    [ "$missing" = 0 ] || sm_die "find_duplicates missed $missing planted pairs"
    BENCH_RUNS=${BENCH_DUP_RUNS:-3} bench_time "find_duplicates('account')" "SELECT count(*) FROM salesmgmt.find_duplicates('account')"
    echo "target: every planted pair found (yes), under 10 s"
fi

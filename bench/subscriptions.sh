#!/usr/bin/env bash
# bench/subscriptions.sh [SUBSCRIPTIONS]: recurring revenue in C against
# the plain SQL a strong DBA would write (bench/subscriptions_reference.sql),
# on the data set with subscriptions (default 100,000 subscriptions started
# over 36 months, with their expansion, contraction, churn and reactivation
# versions; deals = subscriptions / 10, at least 10,000, so about 5
# subscriptions per account):
#
#   1. mrr_movements_between over the whole history (37 months) against the
#      plain-SQL reference (window functions, month ends joined to version
#      ranges, lag and a running bool_or per account);
#   2. the same over the last 12 months;
#   3. generate_renewals(90) over the same set (expiries and renewal deals),
#      each run rolled back so every run does the work.
#
# Before timing it checks that C and SQL give identical rows (text of every
# column) and that the identity starting + new + expansion + contraction +
# churned + reactivation = ending holds every month.  Target (printed,
# never enforced): C at least 3x the SQL.
. "$(dirname "$0")/common.sh"

SUBS=${BENCH_SCALE:-${1:-100000}}
DEALS=$(( SUBS / 10 > 10000 ? SUBS / 10 : 10000 ))
BENCH_DATAGEN_VARS="-v subscriptions=$SUBS"
BENCH_SCALE=$DEALS bench_setup "$DEALS"
bench_psql -f "$SM_ROOT/bench/subscriptions_reference.sql"
echo "data set: $(bench_psql -tA -c "SELECT count(*) || ' subscriptions, ' || (SELECT count(*) FROM salesmgmt.subscription_version) || ' versions, ' || count(DISTINCT account_id) || ' accounts' FROM salesmgmt.subscription")"

# ------------------------------------------------------------ same answer
for range in "NULL, NULL" "(date_trunc('month', current_date) - interval '11 months')::date, current_date"; do
    same=$(bench_psql -tA -c "SELECT (SELECT md5(string_agg(m::text, '|' ORDER BY month)) FROM salesmgmt.mrr_movements_between($range) m)
                                   = (SELECT md5(string_agg(m::text, '|' ORDER BY month)) FROM subs_bench.mrr_movements($range) m)")
    [ "$same" = t ] || sm_die "mrr_movements_between($range) and the SQL reference disagree"
done
bad=$(bench_psql -tA -c "SELECT count(*) FROM salesmgmt.mrr_movements
                          WHERE starting_mrr + new_mrr + expansion_mrr + contraction_mrr + churned_mrr + reactivation_mrr <> ending_mrr")
[ "$bad" = 0 ] || sm_die "$bad months do not add up"
echo "same movements (whole history and last 12 months), identity holds every month: yes"
bench_psql -c "SELECT * FROM subs_bench.renewals_once(90) AS \"generate_renewals(90): deals, subscriptions, expired, auto-renewed\""

# ------------------------------------------------------------ timings
# Each timing reads every column of every row (the text of the row): the
# reference is an inlinable SQL function, and under count(*) the planner
# drops the columns nobody reads, window functions included, so it would
# be timed doing less than the C function.
echo; echo "== MRR movements over the whole history"
bench_time "mrr_movements_between (C), all months" "SELECT sum(length(m::text)) FROM salesmgmt.mrr_movements_between() m"
bench_time "plain SQL reference, all months" "SELECT sum(length(m::text)) FROM subs_bench.mrr_movements() m"
bench_ratio "plain SQL reference, all months" "mrr_movements_between (C), all months"

echo; echo "== MRR movements over the last 12 months"
last12="(date_trunc('month', current_date) - interval '11 months')::date, current_date"
bench_time "mrr_movements_between (C), 12 months" "SELECT sum(length(m::text)) FROM salesmgmt.mrr_movements_between($last12) m"
bench_time "plain SQL reference, 12 months" "SELECT sum(length(m::text)) FROM subs_bench.mrr_movements($last12) m"
bench_ratio "plain SQL reference, 12 months" "mrr_movements_between (C), 12 months"

echo; echo "== generate_renewals(90), rolled back after each run"
bench_time "generate_renewals(90)" "SELECT subs_bench.renewals_once(90)"

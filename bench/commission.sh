#!/usr/bin/env bash
# bench/commission.sh [SCALE] [WON]: salesmgmt.run_commissions against the
# PL/pgSQL reference of the same semantics (bench/commission_reference.sql),
# in one run, on one year of credited deals.
#
#   SCALE   deals of the datagen data set (default 1,000,000: 10,000 reps)
#   WON     won deals in the benchmark year (default 1,000,000); the data set
#           is topped up with won deals (splits, SPIFF products, payments)
#           until the year holds that many
#
# The year is the four quarters before the current one.  On top of the data
# set the script adds commission plans (a decelerator / retroactive /
# accelerator plan with a cap and a SPIFF, a monthly retroactive plan with
# a rate SPIFF, a payment-basis plan, manager and director plans with
# overrides), assigns every rep, and gives some reps draws.  Both sides then
# run the year BENCH_RUNS times (default 3; the ledger is emptied between
# runs, outside the timing), and their per-rep results and ledgers are
# compared: they must be identical.
. "$(dirname "$0")/common.sh"
BENCH_RUNS=${BENCH_RUNS:-3}
scale=${BENCH_SCALE:-${1:-1000000}}
won=${BENCH_WON:-${2:-$scale}}
bench_setup "$scale"

sm_log "commission plans, assignments, draws; topping the year up to $won won deals"
start=$(date +%s.%N)
bench_psql -v won="$won" <<'SQL'
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;
SELECT setseed(0.4242);
-- the pipeline trigger sets closed_at; a data set made without it gets it here
UPDATE salesmgmt.deal d SET closed_at = d.stage_entered_at
  FROM salesmgmt.stage s
 WHERE s.stage_id = d.stage_id AND s.outcome <> 'open' AND d.closed_at IS NULL;

CREATE TABLE public.bench_year AS
SELECT (date_trunc('quarter', now()) - interval '1 year')::date AS y_start,
       (date_trunc('quarter', now()) - interval '1 day')::date AS y_end,
       (SELECT max(rep_id) FROM salesmgmt.rep) AS reps,
       (SELECT max(account_id) FROM salesmgmt.account) AS accounts;

-- won deals of the year, topped up to :won with deals like datagen's
CREATE TEMP TABLE b_new AS
SELECT (SELECT max(deal_id) FROM salesmgmt.deal) + g AS deal_id,
       CASE WHEN r.pipe < 0.8 THEN 1 ELSE 2 END AS pipeline_id,
       6 + (r.owner * (y.reps - 6))::bigint AS owner,
       1 + (r.account * (y.accounts - 1))::bigint AS account,
       round((1000 + 120000 * r.amount ^ 3)::numeric, -1) AS amount,
       CASE WHEN r.cur < 0.90 THEN 'USD' WHEN r.cur < 0.96 THEN 'EUR' ELSE 'CNY' END AS currency,
       y.y_start + (r.at * (y.y_end - y.y_start + 1) * 86400)::int * interval '1 second' AS won_at
  FROM bench_year y,
       generate_series(1, greatest(0, :won - (SELECT count(*) FROM salesmgmt.deal d
                                                JOIN salesmgmt.stage s ON s.stage_id = d.stage_id AND s.outcome = 'won'
                                               WHERE d.closed_at >= (SELECT y_start FROM bench_year)
                                                 AND d.closed_at < (SELECT y_end + 1 FROM bench_year)))) AS g,
       LATERAL (SELECT random() AS pipe, random() AS owner, random() AS account, random() AS amount,
                       random() AS cur, random() AS at, g AS gg) r;
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
                            expected_close_date, created_at, stage_entered_at, closed_at, extra)
SELECT deal_id, 'Deal ' || deal_id, account, owner, pipeline_id, CASE pipeline_id WHEN 1 THEN 5 ELSE 9 END,
       amount, currency, won_at::date, won_at - interval '45 days', won_at, won_at,
       jsonb_build_object('product', (ARRAY['platform','analytics','support','consulting'])[1 + deal_id % 4])
  FROM b_new ORDER BY deal_id;
SELECT setval(pg_get_serial_sequence('salesmgmt.deal', 'deal_id'), (SELECT max(deal_id) FROM salesmgmt.deal)) \g /dev/null
INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share)
SELECT n.deal_id, s.rep_id, s.share
  FROM b_new n, bench_year y,
       LATERAL (VALUES (n.owner, CASE WHEN n.deal_id % 2 = 0 THEN 0.5 ELSE 0.7 END),
                       (6 + ((n.owner - 6 + 1) % (y.reps - 5)), CASE WHEN n.deal_id % 2 = 0 THEN 0.5 ELSE 0.3 END)) s(rep_id, share)
 WHERE n.deal_id % 20 = 7;
INSERT INTO salesmgmt.payment (deal_id, kind, amount, currency, paid_at, reference)
SELECT n.deal_id, 'payment', round(n.amount / p.parts, 2) + CASE WHEN i = 1 THEN n.amount - p.parts * round(n.amount / p.parts, 2) ELSE 0 END,
       n.currency, least(n.won_at + make_interval(days => 15 * i), now() - interval '1 hour'), 'INV-' || n.deal_id || '-' || i
  FROM b_new n CROSS JOIN LATERAL (SELECT 1 + (n.deal_id % 3)::int AS parts) p
 CROSS JOIN LATERAL generate_series(1, p.parts) AS i;
INSERT INTO salesmgmt.payment (deal_id, kind, amount, currency, paid_at, reference)
SELECT p.deal_id, 'refund', round(p.amount / 2, 2), p.currency, least(p.paid_at + interval '20 days', now() - interval '1 hour'), 'RF-' || p.deal_id
  FROM salesmgmt.payment p JOIN b_new n USING (deal_id) WHERE p.deal_id % 50 = 3 AND p.reference LIKE '%-1';

-- plans
INSERT INTO salesmgmt.commission_plan (plan_id, name, basis, period, tier_mode, cap, clawback_days, override_rate) VALUES
  (1, 'New Business AE',   'booking', 'quarter', 'marginal',    60000, 90, NULL),
  (2, 'Renewals AM',       'booking', 'month',   'retroactive', NULL,   60, NULL),
  (3, 'Collections AE',    'payment', 'quarter', 'marginal',    NULL, NULL, NULL),
  (4, 'Sales Manager',     'booking', 'quarter', 'marginal',    NULL,   90, 0.01),
  (5, 'Regional Director', 'booking', 'quarter', 'retroactive', NULL,   90, 0.005),
  (6, 'Executive',         'booking', 'quarter', 'marginal',    NULL, NULL, NULL);
SELECT setval(pg_get_serial_sequence('salesmgmt.commission_plan', 'plan_id'), 6) \g /dev/null
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate, mode) VALUES
  (1, 0, 0.5, 0.03, NULL), (1, 0.5, 1.0, 0.06, 'retroactive'), (1, 1.0, NULL, 0.09, 'marginal'),
  (2, 0, 1.0, 0.04, NULL), (2, 1.0, NULL, 0.06, NULL),
  (3, 0, 1.0, 0.05, NULL), (3, 1.0, NULL, 0.08, NULL),
  (4, 0, 1.0, 0.02, NULL), (4, 1.0, NULL, 0.03, NULL),
  (5, 0, NULL, 0.01, NULL),
  (6, 0, NULL, 0.005, NULL);
INSERT INTO salesmgmt.commission_spiff (plan_id, name, condition, amount, rate, valid_from, valid_to) VALUES
  (1, 'Analytics launch', '{"extra": {"product": "analytics"}}', 250, NULL, NULL, NULL),
  (2, 'Renewal uplift', '{"pipeline_id": 2}', NULL, 0.01, NULL, NULL),
  (3, 'Analytics collections', '{"extra": {"product": "analytics"}}', NULL, 0.02, NULL, NULL);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from)
SELECT r.rep_id,
       CASE WHEN r.rep_id = 1 THEN 6
            WHEN r.rep_id <= 5 THEN 5
            WHEN EXISTS (SELECT 1 FROM salesmgmt.team t WHERE t.manager_rep_id = r.rep_id) THEN 4
            WHEN r.rep_id % 10 = 0 THEN 3
            WHEN r.rep_id % 10 IN (1, 2) THEN 2
            ELSE 1 END,
       y.y_start - 365
  FROM salesmgmt.rep r, bench_year y;
INSERT INTO salesmgmt.commission_draw (rep_id, period_start, period_end, amount, recoverable)
SELECT r.rep_id, q::date, (q + interval '3 months' - interval '1 day')::date,
       CASE WHEN r.rep_id % 20 = 0 THEN 3000 ELSE 2000 END, r.rep_id % 20 = 0
  FROM salesmgmt.rep r, bench_year y,
       generate_series(y.y_start::timestamp, y.y_end::timestamp, interval '3 months') AS q
 WHERE r.rep_id % 20 = 0 OR r.rep_id % 50 = 1;
ANALYZE;
SQL
printf 'setup: %.1f s\n' "$(echo "$(date +%s.%N) - $start" | bc)"
bench_psql -f "$SM_ROOT/bench/commission_reference.sql"
read -r y_start y_end < <(bench_psql -tA -F ' ' -c 'SELECT y_start, y_end FROM bench_year')
bench_psql -c "SELECT count(*) AS won_deals_in_year,
                      (SELECT count(*) FROM salesmgmt.rep) AS reps,
                      (SELECT count(*) FROM salesmgmt.deal_split) AS split_rows,
                      (SELECT count(*) FROM salesmgmt.payment WHERE paid_at >= '$y_start' AND paid_at < '$y_end'::date + 1) AS payments_in_year
                 FROM salesmgmt.deal d JOIN salesmgmt.stage s ON s.stage_id = d.stage_id AND s.outcome = 'won'
                WHERE d.closed_at >= '$y_start' AND d.closed_at < '$y_end'::date + 1"

# One timed run: the function's wall time by the server clock.  The ledger
# is emptied before each run, outside the timing, so both sides write into
# an empty table.
time_once() {	# time_once SQL -> ms
    bench_psql -tA <<SQL
DO \$t\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    PERFORM count(*) FROM ($1) s;
    PERFORM set_config('bench.ms', (extract(epoch FROM clock_timestamp() - t0) * 1000)::text, false);
END
\$t\$;
SELECT round(current_setting('bench.ms')::numeric, 1);
SQL
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

c_times=() ref_times=()
for i in $(seq 1 "$BENCH_RUNS"); do
    bench_psql -c 'TRUNCATE salesmgmt.commission_line, commission_reference.line' -c 'VACUUM ANALYZE salesmgmt.commission_line, commission_reference.line' >/dev/null 2>&1
    c_times+=("$(time_once "SELECT * FROM salesmgmt.run_commissions('$y_start', '$y_end')")")
    ref_times+=("$(time_once "SELECT * FROM commission_reference.run('$y_start', '$y_end')")")
    sm_log "run $i: salesmgmt ${c_times[-1]} ms, reference ${ref_times[-1]} ms"
done
BENCH_MS[c]=$(median "${c_times[@]}")
BENCH_MS[ref]=$(median "${ref_times[@]}")

# same answer: per-rep results and the ledger, line by line
bench_psql -c "CREATE TABLE public.bench_c AS SELECT * FROM salesmgmt.run_commissions('$y_start', '$y_end')" \
           -c "CREATE TABLE public.bench_ref AS SELECT * FROM commission_reference.run('$y_start', '$y_end')" >/dev/null
diff=$(bench_psql -tA <<'SQL'
SELECT (SELECT count(*) FROM ((TABLE bench_c EXCEPT ALL TABLE bench_ref) UNION ALL (TABLE bench_ref EXCEPT ALL TABLE bench_c)) d)
     + (SELECT count(*) FROM (
          (SELECT rep_id, kind, deal_id, payment_id, plan_id, spiff_id, draw_id, source_rep_id, credit, amount, reason
             FROM salesmgmt.commission_line
           EXCEPT ALL
           SELECT rep_id, kind, deal_id, payment_id, plan_id, spiff_id, draw_id, source_rep_id, credit, amount, reason
             FROM commission_reference.line)
          UNION ALL
          (SELECT rep_id, kind, deal_id, payment_id, plan_id, spiff_id, draw_id, source_rep_id, credit, amount, reason
             FROM commission_reference.line
           EXCEPT ALL
           SELECT rep_id, kind, deal_id, payment_id, plan_id, spiff_id, draw_id, source_rep_id, credit, amount, reason
             FROM salesmgmt.commission_line)) d);
SQL
)
bench_psql -c "SELECT count(*) AS reps, sum(credit) AS credit, sum(earned) AS earned, sum(spiffs) AS spiffs,
                      sum(overrides) AS overrides, sum(clawbacks) AS clawbacks, sum(draws) AS draws,
                      sum(draw_recovery) AS draw_recovery, sum(payout) AS payout FROM bench_c" \
           -c "SELECT kind, count(*) AS lines, sum(amount) AS amount FROM salesmgmt.commission_line GROUP BY kind ORDER BY kind"
[ "$diff" = 0 ] || sm_die "salesmgmt and the reference disagree on $diff rows"
echo "same answer: per-rep results and ledger lines identical"
printf '%-48s %10.1f ms (median of %d)\n' "salesmgmt.run_commissions (C), one year" "${BENCH_MS[c]}" "$BENCH_RUNS"
printf '%-48s %10.1f ms (median of %d)\n' "PL/pgSQL reference, one year" "${BENCH_MS[ref]}" "$BENCH_RUNS"
bench_ratio ref c

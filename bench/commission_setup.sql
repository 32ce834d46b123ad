-- bench/commission_setup.sql: commission plans on a datagen data set, for
-- bench/commission.sh and test/t/040_commission_reference.pl.
--
--   psql -v won=N -f bench/commission_setup.sql DB
--
-- The benchmark year is the four quarters before the current one
-- (public.bench_year).  The year is topped up to N won deals like datagen's
-- (owners, amounts, currencies, SPIFF products, 5% split, payments, refunds).
-- Plans: a quarterly decelerator / retroactive / accelerator plan with a cap,
-- a clawback window and a flat SPIFF; a monthly retroactive plan with a rate
-- SPIFF (quarterly quotas prorated by days); a payment-basis plan; manager and
-- director plans with overrides; an executive plan.  Every rep is assigned;
-- some get recoverable draws, some guarantees.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;
SELECT setseed(0.4242) \g /dev/null
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

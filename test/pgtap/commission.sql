-- Commission engine: schema, corrections of finalized periods, clawbacks,
-- runs that cut plan periods, quotas, conversions.  Every expected amount is
-- worked out in the comment above its test.
BEGIN;
CREATE EXTENSION salesmgmt;
SELECT plan(79);
SET LOCAL TimeZone = 'UTC';
SET LOCAL salesmgmt.reporting_currency = 'USD';  -- the test relies on the default, whatever postgresql.conf says

-- ------------------------------------------------------------------ schema
SELECT has_table('salesmgmt', t, 'table salesmgmt.' || t || ' exists')
  FROM unnest(ARRAY['commission_plan', 'commission_tier', 'commission_spiff', 'commission_assignment',
                    'commission_draw', 'commission_line', 'commission_period']) AS t;
SELECT columns_are('salesmgmt', 'commission_plan',
    ARRAY['plan_id', 'name', 'basis', 'period', 'tier_mode', 'cap', 'clawback_days', 'override_rate',
          'description', 'created_at', 'credit_measure', 'family_weights', 'family_rates'], 'commission_plan has the documented columns');
SELECT has_column('salesmgmt', 'commission_tier', c, 'commission_tier.' || c)
  FROM unnest(ARRAY['plan_id', 'attainment_from', 'attainment_to', 'rate', 'mode']) AS c;
SELECT has_column('salesmgmt', 'commission_line', c, 'commission_line.' || c)
  FROM unnest(ARRAY['line_id', 'rep_id', 'deal_id', 'plan_id', 'period_start', 'period_end', 'kind',
                    'credit', 'amount', 'status']) AS c;
SELECT has_view('salesmgmt', 'commission_statement', 'the statement view exists');
SELECT ok((SELECT reloptions @> ARRAY['security_invoker=true'] FROM pg_class
            WHERE oid = 'salesmgmt.commission_statement'::regclass),
          'statements run with the reader''s privileges (row-level security applies)');
SELECT function_returns('salesmgmt', 'commission_amount', ARRAY['bigint', 'numeric', 'numeric', 'numeric'],
                        'numeric', 'commission_amount(plan, quota, prior, credit) returns numeric');
SELECT is_definer('salesmgmt', 'run_commissions', ARRAY['date', 'date'],
                  'run_commissions runs with its owner''s rights');
SELECT ok(NOT has_function_privilege('public', 'salesmgmt.run_commissions(date, date)', 'EXECUTE'),
          'PUBLIC cannot run commissions');

-- ------------------------------------------------------------------- data
INSERT INTO salesmgmt.team (team_id, name) VALUES (10, 'Squad');
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES
  (1, 'Pat', NULL), (2, 'Quinn', NULL), (3, 'Mia', 10), (4, 'Rob', 10), (5, 'Eve', NULL);
UPDATE salesmgmt.team SET manager_rep_id = 3;
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (1, 'Sales', 'free');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
  (1, 1, 'Open', 1, 0.5, 'pipeline', 'open'), (2, 1, 'Won', 2, 1, 'closed', 'won'), (3, 1, 'Lost', 3, 0, 'omitted', 'lost');
-- a won deal may still be lost or reopened
INSERT INTO salesmgmt.stage_transition (pipeline_id, from_stage_id, to_stage_id) VALUES (1, 2, 3), (1, 2, 1);

-- tiers and assignments are checked; overlapping ones are refused
INSERT INTO salesmgmt.commission_plan (plan_id, name, basis, period) VALUES (1, 'Collect', 'payment', 'month');
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate) VALUES (1, 0, 0.5, 0.1), (1, 0.5, 0.6, 0.1);
SELECT throws_ok('SET CONSTRAINTS ALL IMMEDIATE', '23514', NULL, 'a closed top tier is refused at commit');
DELETE FROM salesmgmt.commission_tier WHERE plan_id = 1;
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate) VALUES (1, 0, NULL, 0.1), (1, 0.5, NULL, 0.2);
SELECT throws_ok('SET CONSTRAINTS ALL IMMEDIATE', '23P01', NULL, 'overlapping tiers are refused at commit');
DELETE FROM salesmgmt.commission_tier WHERE plan_id = 1 AND attainment_from = 0.5;
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES (1, 1, '2025-01-01');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from, valid_to)
                   VALUES (1, 1, '2024-06-01', '2025-01-01')$$,
                 '23P01', 'commission assignments of rep 1 overlap', 'overlapping assignments are refused');

-- Quinn's quarterly plan: 5% up to quota, 10% above (marginal); see below
INSERT INTO salesmgmt.commission_plan (plan_id, name, period) VALUES (2, 'Quarterly', 'quarter');
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate) VALUES (2, 0, 1, 0.05), (2, 1, NULL, 0.10);
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES (2, 2, '2025-01-01');
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) VALUES (2, '2025-01-01', '2025-03-31', 10000);

-- ----------------------------------------- payment basis, late and removed payments
-- Pat (plan Collect: 10% of money received, a flat 100 SPIFF per deal paid in
-- proportion to the payments) wins deal 1 (1,000); 400 arrives on Jan 10 and
-- 600 on Jan 20: 40 + 60 earned, 40 + 60 SPIFF.
INSERT INTO salesmgmt.commission_spiff (spiff_id, plan_id, name, condition, amount) VALUES (1, 1, 'Every deal', '{}', 100);
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at) VALUES
  (1, 'd1', 1, 1, 1, 2, 1000, '2025-01-01', '2025-01-05', '2025-01-05');
INSERT INTO salesmgmt.payment (deal_id, payment_id, amount, currency, paid_at) VALUES
  (1, 1, 400, 'USD', '2025-01-10'), (1, 2, 600, 'USD', '2025-01-20');
SELECT results_eq($$SELECT rep_id, credit, earned, spiffs, payout FROM salesmgmt.run_commissions('2025-01-01', '2025-01-31') WHERE rep_id = 1$$,
                  $$VALUES (1::bigint, 1000::numeric, 100.00::numeric, 100.00::numeric, 200.00::numeric)$$,
                  'payment basis: 10% of each payment and the SPIFF in proportion');
SELECT is(salesmgmt.finalize_commissions('2025-01-01', '2025-01-31'), 4::bigint, 'January finalized, 4 lines');
-- after January is closed: a January payment of 300 is recorded late and
-- the 600 one is removed.  February: +30 and -60 commission, +30 and -60 SPIFF.
INSERT INTO salesmgmt.payment (deal_id, payment_id, amount, currency, paid_at) VALUES (1, 3, 300, 'USD', '2025-01-25');
DELETE FROM salesmgmt.payment WHERE payment_id = 2;
SELECT results_eq($$SELECT rep_id, earned, adjustments, payout FROM salesmgmt.run_commissions('2025-02-01', '2025-02-28') WHERE rep_id = 1$$,
                  $$VALUES (1::bigint, 0.00::numeric, -60.00::numeric, -60.00::numeric)$$,
                  'late and removed payments of a finalized month are adjusted in the next');
SELECT results_eq($$SELECT payment_id, spiff_id IS NOT NULL, reason, credit, amount FROM salesmgmt.commission_line
                     WHERE period_start = '2025-02-01' AND rep_id = 1 ORDER BY payment_id, spiff_id NULLS FIRST$$,
                  $$VALUES (2::bigint, false, 'removed', -600::numeric, -60.00::numeric),
                           (2::bigint, true, 'removed', NULL::numeric, -60.00::numeric),
                           (3::bigint, false, 'late', 300::numeric, 30.00::numeric),
                           (3::bigint, true, 'late', NULL::numeric, 30.00::numeric)$$,
                  'one adjustment per payment and component, with its reason');

-- ------------------------------------------- a quarterly plan run month by month
-- Quinn: 5% up to quota, 10% above (marginal), quota 10,000 for Q1.  January:
-- 8,000 earns 400.  February: 4,000 more crosses quota from the 8,000 that
-- January booked: 2,000 x 5% + 2,000 x 10% = 300 (not 200 as from zero).
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at) VALUES
  (2, 'q1', 1, 2, 1, 2, 8000, '2025-02-01', '2025-01-15', '2025-01-15'),
  (3, 'q2', 1, 2, 1, 2, 4000, '2025-02-01', '2025-02-10', '2025-02-10');
-- January is already final when Quinn's January deal is entered: it comes in
-- as a late adjustment (400) in February, and February continues the quarter
-- from it.  (Running February again also recomputes Pat's adjustments.)
SELECT results_eq($$SELECT earned, adjustments FROM salesmgmt.run_commissions('2025-02-01', '2025-02-28') WHERE rep_id = 2$$,
                  $$VALUES (300.00::numeric, 400.00::numeric)$$,
                  'a late January deal is adjusted at 400, and February continues the quarter from it: 300');
SELECT results_eq($$SELECT reason, credit, attainment_before, attainment_after, amount FROM salesmgmt.commission_line
                     WHERE rep_id = 2 ORDER BY credited_at$$,
                  $$VALUES ('late', 8000::numeric, 0.0000::numeric, 0.8000::numeric, 400.00::numeric),
                           (NULL, 4000::numeric, 0.8000::numeric, 1.2000::numeric, 300.00::numeric)$$,
                  'the quarter''s attainment runs on across the months');
SELECT is((SELECT tiers->1->>'catch_up' FROM salesmgmt.commission_line WHERE deal_id = 3), NULL,
          'marginal tiers have no catch-up');
SELECT is(salesmgmt.commission_amount(2, 10000, 8000, 4000),
          (SELECT amount FROM salesmgmt.commission_line WHERE deal_id = 3),
          'commission_amount gives what the line paid');
-- March alone: the quarter continues from the 12,000 booked (Jan adjustment,
-- February); 1,000 more is all above quota: 100
SELECT is(salesmgmt.finalize_commissions('2025-02-01', '2025-02-28'), 6::bigint, 'February finalized: Pat''s 4 adjustments, Quinn''s 2 lines');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at) VALUES
  (4, 'q3', 1, 2, 1, 2, 1000, '2025-03-01', '2025-03-03', '2025-03-03');
SELECT results_eq($$SELECT earned FROM salesmgmt.run_commissions('2025-03-01', '2025-03-31') WHERE rep_id = 2$$,
                  $$VALUES (100.00::numeric)$$, 'March continues the quarter from January and February');

-- --------------------------------------------- refunds, lost deals, overrides
-- Rob (plan Booked: 10%, 30-day clawback window, a 100 SPIFF on product x)
-- sits in Mia's squad; Mia's plan pays a 5% override and has no tiers.
-- April: deal 10 (2,000, product x) won Apr 5, 500 refunded Apr 20:
--   Rob 200 + SPIFF 100, Mia override 100; the refund claws back a quarter:
--   -50, -25, -25.  Deal 11 (1,000) won Apr 10: 100, override 50.  Deal 12
--   (3,000) won Apr 12: 300, override 150.  Mia's own deal 14 (1,000) earns
--   nothing (no tiers) and no override (not below herself).
INSERT INTO salesmgmt.commission_plan (plan_id, name, period, clawback_days) VALUES (3, 'Booked', 'month', 30);
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, rate) VALUES (3, 0, 0.10);
INSERT INTO salesmgmt.commission_plan (plan_id, name, period, clawback_days, override_rate) VALUES (4, 'Lead', 'month', 30, 0.05);
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO salesmgmt.commission_spiff (spiff_id, plan_id, name, condition, amount) VALUES
  (2, 3, 'Product x', '{"extra": {"product": "x"}}', 100);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES (4, 3, '2025-04-01'), (3, 4, '2025-04-01');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at, extra) VALUES
  (10, 'r10', 1, 4, 1, 2, 2000, '2025-04-01', '2025-04-05', '2025-04-05', '{"product": "x"}'),
  (11, 'r11', 1, 4, 1, 2, 1000, '2025-04-01', '2025-04-10', '2025-04-10', '{"product": "y"}'),
  (12, 'r12', 1, 4, 1, 2, 3000, '2025-04-01', '2025-04-12', '2025-04-12', '{}'),
  (14, 'm14', 1, 3, 1, 2, 1000, '2025-04-01', '2025-04-14', '2025-04-14', '{}');
INSERT INTO salesmgmt.payment (deal_id, payment_id, kind, amount, currency, paid_at) VALUES
  (10, 10, 'payment', 2000, 'USD', '2025-04-06'), (10, 11, 'refund', 500, 'USD', '2025-04-20');
SELECT results_eq($$SELECT rep_id, credit, earned, spiffs, overrides, clawbacks, payout
                      FROM salesmgmt.run_commissions('2025-04-01', '2025-04-30') WHERE rep_id IN (3, 4) ORDER BY rep_id$$,
                  $$VALUES (3::bigint, 1000::numeric, 0.00::numeric, 0.00::numeric, 300.00::numeric, -25.00::numeric, 275.00::numeric),
                           (4::bigint, 6000::numeric, 600.00::numeric, 100.00::numeric, 0.00::numeric, -75.00::numeric, 625.00::numeric)$$,
                  'a refund in the period claws back its fraction of commission, SPIFF and override');
SELECT results_eq($$SELECT rep_id, spiff_id, source_rep_id, credit, base, rate, amount FROM salesmgmt.commission_line
                     WHERE kind = 'clawback' ORDER BY rep_id, spiff_id NULLS FIRST$$,
                  $$VALUES (3::bigint, NULL::bigint, 4::bigint, NULL::numeric, 100.00::numeric, 0.25::numeric, -25.00::numeric),
                           (4::bigint, NULL::bigint, NULL::bigint, -500::numeric, 200.00::numeric, 0.25::numeric, -50.00::numeric),
                           (4::bigint, 2::bigint, NULL::bigint, NULL::numeric, 100.00::numeric, 0.25::numeric, -25.00::numeric)$$,
                  'refund clawbacks: base paid, fraction refunded, per component');
SELECT results_eq($$SELECT rep_id, earned, clawbacks FROM salesmgmt.run_commissions('2025-04-01', '2025-04-30') WHERE rep_id IN (3, 4) ORDER BY rep_id$$,
                  $$VALUES (3::bigint, 0.00::numeric, -25.00::numeric), (4::bigint, 600.00::numeric, -75.00::numeric)$$,
                  'running April again changes nothing');
-- Rob: 3 earned, a SPIFF, 2 clawbacks; Mia: 3 overrides, a clawback, her own earned line
SELECT is((SELECT count(*) FROM salesmgmt.commission_line WHERE period_start = '2025-04-01'), 11::bigint,
          'and writes the same 11 lines, not 22');
SELECT is((SELECT amount FROM salesmgmt.commission_line WHERE deal_id = 14), 0.00::numeric,
          'a plan without tiers earns nothing on its rep''s own deals');
SELECT is(salesmgmt.finalize_commissions('2025-04-01', '2025-04-30'), 11::bigint, 'April finalized');
-- May: deal 10 is lost on May 1 (26 days after the win, in the window): what
-- is left is clawed back (150, 75, 75).  Deal 11 is lost on May 20 (40 days:
-- too late, nothing).  Deal 12 is reopened on May 15 (33 days: nothing now).
UPDATE salesmgmt.deal SET stage_id = 3, stage_entered_at = '2025-05-01', closed_at = '2025-05-01' WHERE deal_id = 10;
UPDATE salesmgmt.deal SET stage_id = 3, stage_entered_at = '2025-05-20', closed_at = '2025-05-20' WHERE deal_id = 11;
UPDATE salesmgmt.deal SET stage_id = 1, stage_entered_at = '2025-05-15', closed_at = NULL WHERE deal_id = 12;
SELECT results_eq($$SELECT rep_id, clawbacks, payout FROM salesmgmt.run_commissions('2025-05-01', '2025-05-31') WHERE rep_id IN (3, 4) ORDER BY rep_id$$,
                  $$VALUES (3::bigint, -75.00::numeric, -75.00::numeric), (4::bigint, -225.00::numeric, -225.00::numeric)$$,
                  'a deal lost within the window gives back what was left of it, one lost later nothing');
SELECT results_eq($$SELECT rep_id, deal_id, reason, credit, amount, reversed_at::date FROM salesmgmt.commission_line
                     WHERE period_start = '2025-05-01' ORDER BY rep_id, amount$$,
                  $$VALUES (3::bigint, 10::bigint, 'lost', NULL::numeric, -75.00::numeric, '2025-05-01'::date),
                           (4::bigint, 10::bigint, 'lost', -1500::numeric, -150.00::numeric, '2025-05-01'::date),
                           (4::bigint, 10::bigint, 'lost', NULL::numeric, -75.00::numeric, '2025-05-01'::date)$$,
                  'clawback lines say why and when');
SELECT is(salesmgmt.finalize_commissions('2025-05-01', '2025-05-31'), 3::bigint, 'May finalized');
-- June: deal 12 is won again on June 5.  It is credited in June (300,
-- override 150), and the April credit moves out: -300 and -150 (moved).
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2025-06-05', closed_at = '2025-06-05' WHERE deal_id = 12;
SELECT results_eq($$SELECT rep_id, earned, overrides, adjustments, clawbacks FROM salesmgmt.run_commissions('2025-06-01', '2025-06-30') WHERE rep_id IN (3, 4) ORDER BY rep_id$$,
                  $$VALUES (3::bigint, 0.00::numeric, 150.00::numeric, -150.00::numeric, 0.00::numeric),
                           (4::bigint, 300.00::numeric, 0.00::numeric, -300.00::numeric, 0.00::numeric)$$,
                  'a deal won again in another period moves its credit there');
SELECT is((SELECT string_agg(DISTINCT reason, ',') FROM salesmgmt.commission_line WHERE kind = 'adjustment' AND period_start = '2025-06-01'),
          'moved', 'the reversal says moved');
-- the SPIFF of deal 10 was clawed back with it: after the loss nothing of it is left
SELECT is((SELECT sum(amount) FROM salesmgmt.commission_line WHERE deal_id = 10), 0.00::numeric,
          'everything paid on the lost deal is back');

-- ------------------------------------------------- quota proration, currencies
-- Eve, monthly plan (2% below half the quota, 4% above, marginal), a
-- quarterly quota of 9,100 for Q3: July's share is 9,100 x 31/92 = 3,066.30.
-- A EUR 1,000 deal at 1.1 is 1,100 of credit: 2%, 22.00.  A USD 1,000 deal
-- takes her to 2,100, across 1,533.15: 433.15 x 2% + 566.85 x 4% = 8.663 +
-- 22.674 = 31.337, so E goes from 22.00 to 53.337: the line pays 53.34 - 22.00
-- = 31.34.
INSERT INTO salesmgmt.commission_plan (plan_id, name, period) VALUES (5, 'Monthly', 'month');
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate) VALUES (5, 0, 0.5, 0.02), (5, 0.5, NULL, 0.04);
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES (5, 5, '2025-07-01');
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) VALUES (5, '2025-07-01', '2025-09-30', 9100);
INSERT INTO salesmgmt.currency_rate (currency, quote_currency, valid_from, rate) VALUES ('EUR', 'USD', '2025-07-01', 1.1);
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
                            created_at, stage_entered_at, closed_at) VALUES
  (20, 'e20', 1, 5, 1, 2, 1000, 'EUR', '2025-07-01', '2025-07-07', '2025-07-07'),
  (21, 'e21', 1, 5, 1, 2, 1000, 'USD', '2025-07-01', '2025-07-17', '2025-07-17');
SELECT results_eq($$SELECT credit, quota, attainment, earned FROM salesmgmt.run_commissions('2025-07-01', '2025-07-31') WHERE rep_id = 5$$,
                  $$VALUES (2100::numeric, 3066.30::numeric, 0.6849::numeric, 53.34::numeric)$$,
                  'a monthly plan prorates the quarterly quota by days; EUR converts at the day''s rate');
SELECT results_eq($$SELECT deal_id, credit, earned_before, earned_after, amount FROM salesmgmt.commission_line
                     WHERE rep_id = 5 ORDER BY deal_id$$,
                  $$VALUES (20::bigint, 1100::numeric, 0::numeric, 22::numeric, 22.00::numeric),
                           (21::bigint, 1000::numeric, 22::numeric, 53.337::numeric, 31.34::numeric)$$,
                  'the running commission is exact; each line rounds the running total');
SELECT is((SELECT jsonb_array_length(tiers) FROM salesmgmt.commission_line WHERE deal_id = 21), 2,
          'a line across a tier boundary lists both tiers');
SELECT is((SELECT sum((t->>'amount')::numeric) FROM salesmgmt.commission_line, jsonb_array_elements(tiers) t WHERE deal_id = 21),
          31.337, 'the tiers'' amounts add up to the exact change');
DELETE FROM salesmgmt.currency_rate;
SELECT throws_ok($$SELECT * FROM salesmgmt.run_commissions('2025-07-01', '2025-07-31')$$, '22023',
                 'no exchange rate from EUR to USD on 2025-07-07', 'a missing rate is an error naming the pair and the day');
SELECT is((SELECT count(*) FROM salesmgmt.commission_line WHERE rep_id = 5), 2::bigint,
          'and the failed run changed nothing');

-- ------------------------------------- SPIFF conditions in the rule language
-- Sam (plan Big: 10%, a 50 SPIFF on deals of 5,000 or more that are not
-- product z, a 20 SPIFF on product x or y, each by containment as in 0.1.0)
-- wins in October deal 30 (5,000, product x), 31 (6,000, product z) and 32
-- (1,000, product y): the big-deal SPIFF on 30 only, the other on 30 and 32.
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (6, 'Sam', NULL);
INSERT INTO salesmgmt.commission_plan (plan_id, name, period) VALUES (6, 'Big', 'month');
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, rate) VALUES (6, 0, 0.10);
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO salesmgmt.commission_spiff (spiff_id, plan_id, name, condition, amount) VALUES
  (30, 6, 'Big deals', '{"amount": {">=": 5000}, "not": {"extra": {"product": "z"}}}', 50),
  (31, 6, 'Product x or y', '{"any": [{"extra": {"product": "x"}}, {"extra": {"product": "y"}}]}', 20);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES (6, 6, '2025-10-01');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at, extra) VALUES
  (30, 's30', 1, 6, 1, 2, 5000, '2025-10-01', '2025-10-05', '2025-10-05', '{"product": "x"}'),
  (31, 's31', 1, 6, 1, 2, 6000, '2025-10-01', '2025-10-06', '2025-10-06', '{"product": "z"}'),
  (32, 's32', 1, 6, 1, 2, 1000, '2025-10-01', '2025-10-07', '2025-10-07', '{"product": "y"}');
SELECT results_eq($$SELECT rep_id, earned, spiffs FROM salesmgmt.run_commissions('2025-10-01', '2025-10-31') WHERE rep_id = 6$$,
                  $$VALUES (6::bigint, 1200.00::numeric, 90.00::numeric)$$,
                  'SPIFF conditions with a comparison, not and any pay on the matching deals only');
SELECT results_eq($$SELECT spiff_id, deal_id FROM salesmgmt.commission_line
                     WHERE period_start = '2025-10-01' AND kind = 'spiff' ORDER BY 1, 2$$,
                  $$VALUES (30::bigint, 30::bigint), (31, 30), (31, 32)$$,
                  'each SPIFF line names the deal that matched');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_spiff (plan_id, name, condition, amount)
                   VALUES (6, 'typo', '{"amout": {">": 5000}}', 1)$$, '22023',
                 'SPIFF condition names "amout", which is not a column of salesmgmt.deal',
                 'a SPIFF condition naming no deal column is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_spiff (plan_id, name, condition, amount)
                   VALUES (6, 'operator', '{"amount": {"=>": 5000}}', 1)$$, '22023',
                 'SPIFF condition uses unknown operator "=>" on "amount"',
                 'an unknown operator is refused');
SELECT throws_ok($$UPDATE salesmgmt.commission_spiff SET condition = '{"amount": {">": "big"}}' WHERE spiff_id = 30$$, '22023',
                 'SPIFF condition compares column "amount" of type numeric with a string',
                 'an operand of the wrong type is refused, on update too');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_spiff (plan_id, name, condition, amount)
                   VALUES (6, 'any', '{"any": {"currency": "USD"}}', 1)$$, '22023', NULL,
                 'any without an array is refused');

-- 0.1.0-form conditions (columns equal to values, extra by containment) are
-- matched in C on the deal's columns: they must pick exactly the deals
-- to_jsonb(deal) @> condition picks.  Kim (plan Eq, monthly) wins in
-- November deal 40 (name s40, 2,000, no next step, products x and y) and
-- 41 (2,000.50, next step "call", product x).  SPIFF 40 (text) and 41
-- (numeric 2000 = 2000.00) pay on 40, 42 (numeric and an integer column
-- given as 1.0) on 41, 43 (a null column) on 40, 44 (product x) on 41 only
-- (below the top level an array does not contain a scalar), 45 on none.
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (7, 'Kim', NULL);
INSERT INTO salesmgmt.commission_plan (plan_id, name, period) VALUES (7, 'Eq', 'month');
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, rate) VALUES (7, 0, 0.10);
INSERT INTO salesmgmt.commission_spiff (spiff_id, plan_id, name, condition, amount) VALUES
  (40, 7, 'text', '{"name": "s40"}', 1),
  (41, 7, 'numeric', '{"amount": 2000}', 1),
  (42, 7, 'numeric and 1.0', '{"amount": 2000.5, "pipeline_id": 1.0}', 1),
  (43, 7, 'null', '{"next_step": null}', 1),
  (44, 7, 'extra', '{"extra": {"product": "x"}}', 1),
  (45, 7, 'none', '{"pipeline_id": 2}', 1);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES (7, 7, '2025-11-01');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at, next_step, extra) VALUES
  (40, 's40', 1, 7, 1, 2, 2000, '2025-11-01', '2025-11-05', '2025-11-05', NULL, '{"product": ["x", "y"]}'),
  (41, 's41', 1, 7, 1, 2, 2000.50, '2025-11-01', '2025-11-06', '2025-11-06', 'call', '{"product": "x"}');
SELECT results_eq($$SELECT rep_id, earned, spiffs FROM salesmgmt.run_commissions('2025-11-01', '2025-11-30') WHERE rep_id = 7$$,
                  $$VALUES (7::bigint, 400.05::numeric, 5.00::numeric)$$,
                  'Kim earns 10% of 4,000.50 and five SPIFFs of 1');
SELECT results_eq($$SELECT spiff_id, deal_id FROM salesmgmt.commission_line
                     WHERE period_start = '2025-11-01' AND kind = 'spiff' ORDER BY 1, 2$$,
                  $$VALUES (40::bigint, 40::bigint), (41, 40), (42, 41), (43, 40), (44, 41)$$,
                  'SPIFF conditions of the 0.1.0 form match text, numeric, integer, null and extra keys');
SELECT set_eq($$SELECT spiff_id, deal_id FROM salesmgmt.commission_line WHERE period_start = '2025-11-01' AND kind = 'spiff'$$,
              $$SELECT s.spiff_id, d.deal_id FROM salesmgmt.commission_spiff s, salesmgmt.deal d
                 WHERE s.plan_id = 7 AND d.owner_rep_id = 7 AND to_jsonb(d) @> s.condition$$,
              'exactly the deals to_jsonb(deal) @> condition picks');

-- ------------------------------------------------ the ledger keeps its word
SELECT throws_ok($$UPDATE salesmgmt.commission_line SET amount = 0 WHERE period_start = '2025-01-01'$$, 'SM010',
                 NULL, 'final lines cannot be updated');
SELECT throws_ok($$DELETE FROM salesmgmt.commission_line WHERE period_start = '2025-01-01'$$, 'SM010',
                 NULL, 'final lines cannot be deleted');
SELECT throws_ok($$SELECT * FROM salesmgmt.run_commissions('2025-01-01', '2025-01-31')$$, 'SM010',
                 NULL, 'a finalized period cannot run again');
SELECT throws_ok($$SELECT * FROM salesmgmt.run_commissions('2025-01-15', '2025-02-15')$$, 'SM010',
                 NULL, 'nor a period overlapping it');
SELECT throws_ok($$UPDATE salesmgmt.commission_line SET amount = 0 WHERE period_start = '2025-07-01'$$, '55000',
                 NULL, 'draft lines change only through the functions');
SELECT throws_ok($$DELETE FROM salesmgmt.commission_spiff WHERE spiff_id = 1$$, 'SM010',
                 NULL, 'a SPIFF paid in a finalized period cannot be deleted');
SELECT throws_ok($$UPDATE salesmgmt.commission_plan SET basis = 'booking' WHERE plan_id = 1$$, 'SM010',
                 NULL, 'a plan''s basis cannot change once it paid final lines');
SELECT lives_ok($$UPDATE salesmgmt.commission_plan SET cap = 1000 WHERE plan_id = 1$$,
                'its cap can: it applies to periods run afterwards');
SELECT is((SELECT count(*) FROM salesmgmt.commission_line WHERE status = 'final'),
          (SELECT count(*) FROM salesmgmt.commission_line l JOIN salesmgmt.commission_period p USING (period_start)
            WHERE p.status = 'final'),
          'lines are final exactly in finalized periods');
SELECT is((SELECT count(*) FROM salesmgmt.commission_statement), (SELECT count(*) FROM salesmgmt.commission_line),
          'the statement shows every line');
SELECT is((SELECT count(*) FROM salesmgmt.commission_statement WHERE explanation IS NULL OR explanation = ''), 0::bigint,
          'and explains every one');

SELECT * FROM finish();
ROLLBACK;

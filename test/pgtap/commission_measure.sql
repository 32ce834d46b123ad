-- Commission plans and quotas measuring new ARR (issue 18): deal_new_arr,
-- the credit of new-ARR plans, quotas by measure, churn clawbacks, and bad
-- input.  Every expected amount is worked out in the comment above its test.
BEGIN;
CREATE EXTENSION salesmgmt;
SELECT plan(48);
SET LOCAL TimeZone = 'UTC';
SET LOCAL salesmgmt.reporting_currency = 'USD';

-- ------------------------------------------------------------------ schema
SELECT has_column('salesmgmt', 'commission_plan', 'credit_measure', 'commission_plan.credit_measure');
SELECT col_default_is('salesmgmt', 'commission_plan', 'credit_measure', 'booked', 'plans credit the booked amount by default');
SELECT has_column('salesmgmt', 'quota', 'measure', 'quota.measure');
SELECT has_column('salesmgmt', 'commission_line', 'subscription_id', 'commission_line.subscription_id');
SELECT has_column('salesmgmt', 'quota_attainment', 'measure', 'quota_attainment.measure');
SELECT has_column('salesmgmt', 'target_pacing', 'measure', 'target_pacing.measure');
SELECT function_returns('salesmgmt', 'deal_new_arr', ARRAY['bigint', 'text', 'bigint'], 'numeric',
                        'deal_new_arr(deal, currency, subscription) returns numeric');

-- ------------------------------------------------------------------- data
INSERT INTO salesmgmt.team (team_id, name) VALUES (10, 'Squad');
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Lea', 10), (2, 'Max', 10), (3, 'Boss', 10);
UPDATE salesmgmt.team SET manager_rep_id = 3;
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme'), (2, 'Globex');
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (1, 'Sales', 'free');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
  (1, 1, 'Open', 1, 0.5, 'pipeline', 'open'), (2, 1, 'Won', 2, 1, 'closed', 'won'), (3, 1, 'Lost', 3, 0, 'omitted', 'lost');
INSERT INTO salesmgmt.product (product_id, sku, name, family, recurring, billing_period) VALUES
  (1, 'SEAT', 'Seat', 'Core', true, 'month'), (2, 'ADDON', 'Add-on', 'Extras', true, 'month');
INSERT INTO salesmgmt.product (product_id, sku, name, family) VALUES (3, 'SETUP', 'Setup', 'Services');
INSERT INTO salesmgmt.price_book (price_book_id, name, currency, is_default) VALUES (1, 'List', 'USD', true);
INSERT INTO salesmgmt.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 100), (1, 2, 50), (1, 3, 1000);

-- Lea on a new-ARR plan (5%, no quota rows of its measure: the first tier),
-- 60-day clawback window; Max on a booked plan (5%); Boss overrides 1%.
INSERT INTO salesmgmt.commission_plan (plan_id, name, period, clawback_days, credit_measure, override_rate) VALUES
  (1, 'ARR', 'month', 60, 'new_arr', NULL), (2, 'Booked', 'month', 60, 'booked', NULL),
  (3, 'Lead', 'month', 60, 'booked', 0.01);
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate) VALUES
  (1, 0, 1, 0.05), (1, 1, NULL, 0.10), (2, 0, NULL, 0.05);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES (1, 1, '2025-01-01'), (2, 2, '2025-01-01'),
  (3, 3, '2025-01-01');
-- a booked quota that the new-ARR plan must not use, and one of new ARR
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount, measure) VALUES
  (1, '2025-03-01', '2025-03-31', 1000, 'booked'), (1, '2025-03-01', '2025-03-31', 20000, 'new_arr');

-- ---------------------------------------------------------------- bad input
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, credit_measure) VALUES ('x', 'arr')$$, '23514', NULL,
                 'a credit measure other than booked and new_arr is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, basis, credit_measure) VALUES ('x', 'payment', 'new_arr')$$,
                 '23514', NULL, 'new_arr on a payment-basis plan is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, credit_measure) VALUES ('x', NULL)$$, '23502', NULL,
                 'a null credit measure is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount, measure)
                   VALUES (1, '2025-04-01', '2025-04-30', 1, 'mrr')$$, '23514', NULL,
                 'a quota measure other than booked and new_arr is refused');
SELECT lives_ok($$INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount, measure)
                  VALUES (2, '2025-03-01', '2025-03-31', 1, 'booked'), (2, '2025-03-01', '2025-03-31', 1, 'new_arr')$$,
                'a booked and a new-ARR quota of the same rep and period may coexist');
DELETE FROM salesmgmt.quota WHERE rep_id = 2;
SELECT is(salesmgmt.deal_new_arr(NULL), NULL, 'deal_new_arr of null is null');
SELECT is(salesmgmt.deal_new_arr(-5), NULL, 'deal_new_arr of an unknown deal is null');

-- Deal 1 (Lea, Acme), won March 5: 2 seats at 100 a month for 12 months
-- (MRR 200, ARR 2,400), 1 add-on at 50 (MRR 50, ARR 600), setup 1,000 one-off.
-- Booked 2,400 + 600 + 1,000 = 4,000; new ARR 3,000.
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, created_at, stage_entered_at)
VALUES (1, 'Acme start', 1, 1, 1, 1, '2025-03-01', '2025-03-01'),
       (2, 'Acme seats', 1, 1, 1, 1, '2025-03-01', '2025-03-01'),
       (3, 'Globex', 2, 2, 1, 1, '2025-03-01', '2025-03-01'),
       (4, 'No lines', 1, 1, 1, 1, '2025-03-01', '2025-03-01');
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (1, 1, 2), (1, 2, 1), (1, 3, 1), (2, 1, 3), (3, 1, 1);
UPDATE salesmgmt.deal SET amount = 500 WHERE deal_id = 4;
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2025-03-05' WHERE deal_id IN (1, 3, 4);
-- Deal 2 (Lea), won March 20: 3 more seats, an expansion from 200 to 500 of
-- MRR: new ARR 12 x 300 = 3,600 (booked 3,600 as well).
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2025-03-20' WHERE deal_id = 2;

SELECT is(salesmgmt.deal_new_arr(1), 3000.0000, 'new ARR of a new deal: its recurring lines, not the one-off');
SELECT is(salesmgmt.deal_new_arr(2), 3600.0000, 'new ARR of an add-on deal: the expansion');
SELECT is(salesmgmt.deal_new_arr(1, NULL, (SELECT subscription_id FROM salesmgmt.subscription WHERE product_id = 2)),
          600.0000, 'the part of one subscription');
SELECT is(salesmgmt.deal_new_arr(4), 0::numeric, 'a deal without subscription versions brings no new ARR');
SELECT is(salesmgmt.deal_new_arr(1, 'USD'), 3000.0000, 'in the deal''s own currency, no conversion');
SELECT throws_ok($$SELECT salesmgmt.deal_new_arr(1, 'EUR')$$, '22023', NULL,
                 'a currency without a rate on the close date is refused');

-- March: Lea credits 3,000 + 3,600 + 0 = 6,600 of new ARR against the new-ARR
-- quota of 20,000 (33%): 5% = 330.00; Max his booked 1,200 (1 seat x 100 x 12):
-- 60.00; Boss 1% of both credits: 66 + 12 = 78.00.  Max's quota for the Core
-- family is a part of a target he does not have: his quota stays null.
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount, measure, product_family)
VALUES (2, '2025-03-01', '2025-03-31', 5000, 'booked', 'Core');
SELECT results_eq($$SELECT rep_id, credit, quota, earned, overrides FROM salesmgmt.run_commissions('2025-03-01', '2025-03-31') ORDER BY rep_id$$,
                  $$VALUES (1::bigint, 6600.0000::numeric, 20000.00::numeric, 330.00::numeric, 0.00::numeric),
                           (2::bigint, 1200.00::numeric, NULL::numeric, 60.00::numeric, 0.00::numeric),
                           (3::bigint, 0::numeric, NULL::numeric, 0.00::numeric, 78.00::numeric)$$,
                  'a new-ARR plan credits new ARR against its quota of new ARR; a family quota is not a target of its own');
SELECT is((SELECT attainment FROM salesmgmt.quota_attainment WHERE rep_id = 1 AND measure = 'new_arr'), 0.3300,
          'quota_attainment of a new-ARR quota counts new ARR');
SELECT is((SELECT won_amount FROM salesmgmt.quota_attainment WHERE rep_id = 1 AND measure = 'booked'), 8100.00,
          'and of a booked quota the booked amounts (4,000 + 3,600 + 500)');
SELECT is((SELECT attained FROM salesmgmt.target_pacing WHERE rep_id = 1 AND measure = 'new_arr'), 6600.00,
          'target_pacing of a new-ARR quota counts new ARR');
SELECT ok(salesmgmt.finalize_commissions('2025-03-01', '2025-03-31') > 0, 'March finalized');
SELECT throws_ok($$UPDATE salesmgmt.commission_plan SET credit_measure = 'booked' WHERE plan_id = 1$$, 'SM010', NULL,
                 'the credit measure of a plan that paid final lines cannot change');
SELECT throws_ok($$UPDATE salesmgmt.commission_plan SET family_weights = '{"Core": 2}' WHERE plan_id = 1$$, 'SM010', NULL,
                 'nor its family weights');

-- April: the add-on of deal 1 is cancelled from April 10, 36 days after the
-- win (window 60): 600 / 3,000 = 20% of the 150.00 paid on deal 1 is clawed
-- back, -30.00, and 20% of Boss's override 30.00 on it, -6.00.  Max's
-- subscription is cancelled too, but his plan credits booked amounts: nothing.
-- A second April run gives the same; the churn is clawed back once.
SELECT lives_ok($$SELECT salesmgmt.cancel_subscription(subscription_id, '2025-04-10') FROM salesmgmt.subscription WHERE product_id = 2$$, 'the add-on of deal 1 is cancelled');
SELECT lives_ok($$SELECT salesmgmt.cancel_subscription(subscription_id, '2025-04-10') FROM salesmgmt.subscription WHERE account_id = 2$$, 'Max''s subscription is cancelled');
SELECT results_eq($$SELECT rep_id, deal_id, amount, reason, subscription_id FROM salesmgmt.commission_line
                     WHERE period_start = '2025-03-01' AND deal_id = 1 AND kind = 'earned'$$,
                  $$VALUES (1::bigint, 1::bigint, 150.00::numeric, NULL::text, NULL::bigint)$$,
                  'deal 1 paid 150.00 (3,000 x 5%)');
SELECT results_eq($$SELECT rep_id, clawbacks FROM salesmgmt.run_commissions('2025-04-01', '2025-04-30') ORDER BY rep_id$$,
                  $$VALUES (1::bigint, -30.00::numeric), (2::bigint, 0.00::numeric), (3::bigint, -6.00::numeric)$$,
                  'a churn inside the window claws back its part of the new ARR paid, overrides included');
SELECT results_eq($$SELECT rep_id, deal_id, subscription_id, reason, rate FROM salesmgmt.commission_line
                     WHERE period_start = '2025-04-01' AND kind = 'clawback' ORDER BY rep_id$$,
                  $$SELECT r, 1::bigint, s.subscription_id, 'churned'::text, 0.2::numeric
                      FROM salesmgmt.subscription s, unnest(ARRAY[1, 3]::bigint[]) r WHERE s.product_id = 2$$,
                  'the clawback names the subscription and the fraction');
SELECT ok(salesmgmt.finalize_commissions('2025-04-01', '2025-04-30') > 0, 'April finalized');
-- May: nothing more to claw back
SELECT results_eq($$SELECT rep_id, clawbacks, adjustments FROM salesmgmt.run_commissions('2025-05-01', '2025-05-31') ORDER BY rep_id$$,
                  $$VALUES (1::bigint, 0.00::numeric, 0.00::numeric), (2::bigint, 0.00::numeric, 0.00::numeric),
                           (3::bigint, 0.00::numeric, 0.00::numeric)$$,
                  'a churn is clawed back once, and no correction pays it again');
-- a cancellation outside the window (deal 2 won March 20, cancelled from
-- July 1: 103 days) claws back nothing
SELECT lives_ok($$SELECT salesmgmt.cancel_subscription(subscription_id, '2025-07-01') FROM salesmgmt.subscription WHERE product_id = 1 AND account_id = 1$$, 'the seats are cancelled');
SELECT ok(salesmgmt.discard_commissions('2025-05-01', '2025-05-31') >= 0, 'May discarded');
SELECT results_eq($$SELECT rep_id, clawbacks FROM salesmgmt.run_commissions('2025-07-01', '2025-07-31') WHERE rep_id = 1$$,
                  $$VALUES (1::bigint, 0.00::numeric)$$,
                  'a churn outside the clawback window claws back nothing');

-- ------------------------------------------------ product families (issue 17)
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, family_weights) VALUES ('x', '[1]')$$, '23514', NULL,
                 'family weights must be an object');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, family_weights) VALUES ('x', '{"Services": -1}')$$,
                 '23514', NULL, 'a negative family weight is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, family_weights) VALUES ('x', '{"Services": "half"}')$$,
                 '23514', NULL, 'a family weight that is not a number is refused');
-- Ann on a plan of 10% where Services weigh half, with SPIFFs naming products
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (4, 'Ann', 10);
INSERT INTO salesmgmt.commission_plan (plan_id, name, period, family_weights) VALUES (4, 'Mix', 'month', '{"Services": 0.5}');
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, rate) VALUES (4, 0, 0.10);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES (4, 4, '2025-08-01');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_spiff (plan_id, name, condition, amount)
                   VALUES (4, 'x', '{"product_family": {"name": "Core"}}', 1)$$, '22023', NULL,
                 'a SPIFF condition on product_family must be a value or an array');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_spiff (plan_id, name, condition, amount)
                   VALUES (4, 'x', '{"product_sku": true}', 1)$$, '22023', NULL,
                 'a SPIFF condition on product_sku must be a string, a number or an array');
SELECT lives_ok($$INSERT INTO salesmgmt.commission_spiff (plan_id, name, condition, amount) VALUES
                    (4, 'Core', '{"product_family": "Core"}', 50),
                    (4, 'Add-ons', '{"product_sku": ["ADDON"]}', 30),
                    (4, 'Setup', '{"product_id": [3], "pipeline_id": 1}', 20)$$,
                'SPIFF conditions may name product families, SKUs and ids, with deal columns');
-- Deal 10: a seat for 12 months (Core 1,200) and a setup (Services 1,000):
-- credit 1,200 + 1,000 x 0.5 = 1,700, 170.00; SPIFFs Core 50 and Setup 20.
-- Deal 11 without lines: 400, 40.00, no SPIFF.  August: 2,100, 210.00, 70.00.
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, created_at, stage_entered_at)
VALUES (10, 'Mix', 2, 4, 1, 1, '2025-08-01', '2025-08-01'), (11, 'Plain', 2, 4, 1, 1, '2025-08-01', '2025-08-01');
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (10, 1, 1), (10, 3, 1);
UPDATE salesmgmt.deal SET amount = 400 WHERE deal_id = 11;
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2025-08-10' WHERE deal_id IN (10, 11);
SELECT results_eq($$SELECT credit, earned, spiffs FROM salesmgmt.run_commissions('2025-08-01', '2025-08-31') WHERE rep_id = 4$$,
                  $$VALUES (2100.0::numeric, 210.00::numeric, 70.00::numeric)$$,
                  'family weights weigh the credit; SPIFFs pay on deals with a line of the product');
SELECT is((SELECT families FROM salesmgmt.commission_line WHERE deal_id = 10 AND kind = 'earned'),
          '{"Core": {"amount": 1200, "weight": 1}, "Services": {"amount": 1000, "weight": 0.5}}'::jsonb,
          'the line keeps the split by family');
SELECT ok((SELECT explanation FROM salesmgmt.commission_statement WHERE deal_id = 10 AND kind = 'earned')
          LIKE '%credit 1700.00 (by product family: Core 1200.00 x 100%, Services 1000.00 x 50%)%',
          'and explains it');
SELECT is((SELECT array_agg(s.name ORDER BY s.name) FROM salesmgmt.commission_line l
             JOIN salesmgmt.commission_spiff s USING (spiff_id) WHERE l.deal_id = 10),
          ARRAY['Core', 'Setup'], 'the SPIFFs naming a family and an id of the deal''s lines pay, the other does not');
SELECT is((SELECT families FROM salesmgmt.commission_line WHERE deal_id = 11 AND kind = 'earned'), NULL,
          'a deal without lines credits its amount, without a split');

SELECT * FROM finish();
ROLLBACK;

-- Commission plans with a rate or a tier table per product family
-- (commission_plan.family_rates, issue 17): a hand-computed tiered case run
-- month by month in a quarterly plan, a flat family rate, deals without
-- lines, a plan with both family weights and family rates, the ledger's
-- explanation, changes after final lines, and bad input.  Every expected
-- amount is worked out in the comment above its test.
BEGIN;
CREATE EXTENSION salesmgmt;
SELECT plan(30);
SET LOCAL TimeZone = 'UTC';
SET LOCAL salesmgmt.reporting_currency = 'USD';

SELECT has_column('salesmgmt', 'commission_plan', 'family_rates', 'commission_plan.family_rates');

INSERT INTO salesmgmt.team (team_id, name) VALUES (10, 'Squad');
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Lea', 10), (2, 'Max', 10);
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (1, 'Sales', 'free');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
  (1, 1, 'Open', 1, 0.5, 'pipeline', 'open'), (2, 1, 'Won', 2, 1, 'closed', 'won'), (3, 1, 'Lost', 3, 0, 'omitted', 'lost');
INSERT INTO salesmgmt.product (product_id, sku, name, family) VALUES
  (1, 'SW', 'Licence', 'Software'), (2, 'HW', 'Appliance', 'Hardware'), (3, 'SVC', 'Consulting day', 'Services');
INSERT INTO salesmgmt.price_book (price_book_id, name, currency, is_default) VALUES (1, 'List', 'USD', true);
INSERT INTO salesmgmt.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 100), (1, 2, 1000), (1, 3, 500);

-- ---------------------------------------------------------------- bad input
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, family_rates) VALUES ('x', '[0.1]')$$,
                 '22023', NULL, 'family_rates must be an object');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, family_rates) VALUES ('x', '{"Services": -0.01}')$$,
                 '22023', 'family_rates of product family "Services": the rate must be a number of at least 0',
                 'a negative flat rate is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, family_rates) VALUES ('x', '{"Services": [{"from": 0, "rate": -1}]}')$$,
                 '22023', NULL, 'a negative tier rate is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, family_rates) VALUES ('x', '{"Services": [{"from": 0, "rte": 0.1}]}')$$,
                 '22023', 'family_rates of product family "Services": unknown key "rte" in a tier (a tier has "from", "to", "rate" and "mode")',
                 'an unknown key in a tier is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, family_rates)
                   VALUES ('x', '{"Services": [{"from": 0.5, "rate": 0.1}, {"from": 0, "to": 0.5, "rate": 0.05}]}')$$,
                 '22023', NULL, 'tiers out of order are refused');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, family_rates)
                   VALUES ('x', '{"Services": [{"from": 0, "to": 0.5, "rate": 0.05}, {"from": 0.6, "rate": 0.1}]}')$$,
                 '22023', NULL, 'a gap between tiers is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, family_rates)
                   VALUES ('x', '{"Services": [{"from": 0, "to": 1, "rate": 0.05}]}')$$,
                 '22023', NULL, 'a top tier that is not open-ended is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, family_rates)
                   VALUES ('x', '{"Services": [{"from": 0, "rate": 0.05, "mode": "sometimes"}]}')$$,
                 '22023', NULL, 'an unknown tier mode is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, family_rates) VALUES ('x', '{"Services": "5%"}')$$,
                 '22023', NULL, 'a rate that is neither a number nor tiers is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, family_rates) VALUES ('x', '{"Services": []}')$$,
                 '22023', NULL, 'an empty tier list is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.commission_plan (name, family_rates) VALUES ('x', '{" ": 0.1}')$$,
                 '22023', NULL, 'a blank family is refused');
SELECT is((SELECT count(*) FROM salesmgmt.commission_plan), 0::bigint, 'the refused plans wrote nothing');

-- ------------------------------------------------------------ tiered case
-- Lea, quarterly plan, quota 10,000: the plan's tiers 10% below quota, 15%
-- above (marginal); Hardware has its own table, 2% below 50% of quota and
-- 4% above; Services a flat 5%; Software is not named: the plan's tiers.
INSERT INTO salesmgmt.commission_plan (plan_id, name, period, family_rates) VALUES
  (1, 'Family tiers', 'quarter',
   '{"Hardware": [{"from": 0, "to": 0.5, "rate": 0.02}, {"from": 0.5, "rate": 0.04}], "Services": 0.05}');
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate) VALUES
  (1, 0, 1, 0.10), (1, 1, NULL, 0.15);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES (1, 1, '2025-01-01');
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) VALUES (1, '2025-01-01', '2025-03-31', 10000);
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, created_at, stage_entered_at) VALUES
  (1, 'A', 1, 1, 1, 1, '2025-01-02', '2025-01-02'), (2, 'B', 1, 1, 1, 1, '2025-01-02', '2025-01-02'),
  (3, 'C', 1, 1, 1, 1, '2025-01-02', '2025-01-02'), (4, 'D', 1, 1, 1, 1, '2025-01-02', '2025-01-02');
-- A: 20 licences (Software 2,000) + 2 appliances (Hardware 2,000) = 4,000
-- B: 4 appliances (Hardware 4,000) + 4 days (Services 2,000) = 6,000
-- C: no lines, 2,000
-- D: 10 licences (Software 1,000) + 1 day (Services 500) = 1,500
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES
  (1, 1, 20), (1, 2, 2), (2, 2, 4), (2, 3, 4), (4, 1, 10), (4, 3, 1);
UPDATE salesmgmt.deal SET amount = 2000 WHERE deal_id = 3;
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2025-01-10' WHERE deal_id = 1;
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2025-02-05' WHERE deal_id = 2;
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2025-03-03' WHERE deal_id = 3;
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2025-03-20' WHERE deal_id = 4;

-- January, A moves attainment 0 -> 40%: Software owns 2,000/4,000 of the
-- move and earns 10% of it: 0.5 x 400 = 200; Hardware the other half at
-- its tier 1, 2%: 0.5 x 80 = 40.  240.00.
SELECT results_eq($$SELECT credit, earned FROM salesmgmt.run_commissions('2025-01-01', '2025-01-31') WHERE rep_id = 1$$,
                  $$VALUES (4000::numeric, 240.00::numeric)$$, 'January: each family earns its part by its own table');
SELECT is((SELECT families FROM salesmgmt.commission_line WHERE deal_id = 1 AND kind = 'earned'),
          '{"Hardware": {"amount": 2000, "weight": 1, "credit": 2000, "table": "family", "tier": 1, "rate": 0.02, "earned": 40},
            "Software": {"amount": 2000, "weight": 1, "credit": 2000, "table": "plan", "tier": 1, "rate": 0.10, "earned": 200}}'::jsonb,
          'the line names each family, the table it earns by, its tier, rate and earnings');

-- February (a monthly run of a quarterly plan: the period's credit and
-- earnings so far come from January's lines), B moves 40% -> 100%:
-- Hardware owns 4,000/6,000: its table from 4,000 to 10,000 is 1,000 at 2%
-- + 5,000 at 4% = 220, x 2/3 = 146.666...; Services 2,000/6,000 at a flat
-- 5%: 300 x 1/3 = 100.  Earnings 240 + 246.666... = 486.666..., paid
-- 486.67 - 240.00 = 246.67.
SELECT results_eq($$SELECT credit, earned FROM salesmgmt.run_commissions('2025-02-01', '2025-02-28') WHERE rep_id = 1$$,
                  $$VALUES (6000::numeric, 246.67::numeric)$$, 'February: a tier of a family''s table crossed');
SELECT results_eq($$SELECT families->'Hardware'->>'tier_before', families->'Hardware'->>'tier', tiers
                      FROM salesmgmt.commission_line WHERE deal_id = 2 AND kind = 'earned'$$,
                  $$VALUES ('1'::text, '2'::text, NULL::jsonb)$$,
                  'the crossing shows in the family''s entry (tiers is null on lines by family)');
SELECT is((SELECT explanation FROM salesmgmt.commission_statement WHERE deal_id = 2 AND kind = 'earned'),
          'deal 2 won 2025-02-05: credit 6000.00; attainment 40% -> 100% of quota 10000.00; by product family: '
          'Hardware 4000.00 x 100% = 4000.00 by its own rates, tiers 1 -> 2 (4%): 146.67; '
          'Services 2000.00 x 100% = 2000.00 by its own rates, tier 1 at 5%: 100.00; earnings of the period 240.00 -> 486.67',
          'the explanation gives each family''s table, tier, rate and earnings');

-- March: C has no lines: the plan's tiers, 100% -> 120% at 15%: 300.00.
-- D, 120% -> 135%: Software 1,000/1,500 of 1,500 at 15% = 150, Services
-- 500/1,500 of 1,500 at 5% = 25: 175.00.  Quarter: 961.67.
SELECT results_eq($$SELECT credit, earned FROM salesmgmt.run_commissions('2025-03-01', '2025-03-31') WHERE rep_id = 1$$,
                  $$VALUES (3500::numeric, 475.00::numeric)$$, 'March: a deal without lines earns by the plan''s tiers');
SELECT results_eq($$SELECT deal_id, amount, families IS NULL FROM salesmgmt.commission_line
                     WHERE rep_id = 1 AND kind = 'earned' ORDER BY credited_at$$,
                  $$VALUES (1::bigint, 240.00::numeric, false), (2, 246.67, false), (3, 300.00, true), (4, 175.00, false)$$,
                  'the quarter''s lines');
SELECT is((SELECT sum(amount) FROM salesmgmt.commission_line WHERE rep_id = 1), 961.67,
          'the quarter earns 961.67, rounded once');

-- the same quarter in one run gives the same lines
SELECT lives_ok($$SELECT salesmgmt.discard_commissions('2025-01-01', '2025-01-31'),
                         salesmgmt.discard_commissions('2025-02-01', '2025-02-28'),
                         salesmgmt.discard_commissions('2025-03-01', '2025-03-31')$$, 'discard the months');
SELECT results_eq($$SELECT credit, earned FROM salesmgmt.run_commissions('2025-01-01', '2025-03-31') WHERE rep_id = 1$$,
                  $$VALUES (13500::numeric, 961.67::numeric)$$, 'run as one quarter: the same earnings');

-- per-family rates may change after final lines, like tiers
SELECT lives_ok($$SELECT salesmgmt.finalize_commissions('2025-01-01', '2025-03-31')$$, 'finalize the quarter');
SELECT lives_ok($$UPDATE salesmgmt.commission_plan SET family_rates = '{"Services": 0.06}' WHERE plan_id = 1$$,
                'family rates may change after final lines (periods run afterwards use them)');
SELECT throws_ok($$UPDATE salesmgmt.commission_plan SET family_weights = '{"Services": 2}' WHERE plan_id = 1$$,
                 'SM010', NULL, 'family weights still may not');

-- a late deal of the finalized quarter: F, one day of Services (500), won
-- March 25th, seen in April: an adjustment of the quarter, 13,500 ->
-- 14,000, by the deal's split and the rates of now: Services 6%, 30.00
-- (the plan's tiers would pay 15%, 75.00)
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, created_at, stage_entered_at) VALUES
  (6, 'F', 1, 1, 1, 1, '2025-03-01', '2025-03-01');
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (6, 3, 1);
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2025-03-25' WHERE deal_id = 6;
SELECT results_eq($$SELECT adjustments FROM salesmgmt.run_commissions('2025-04-01', '2025-04-30') WHERE rep_id = 1$$,
                  $$VALUES (30.00::numeric)$$, 'a late deal is adjusted by its families'' rates');
SELECT is((SELECT (families->'Services'->>'earned')::numeric FROM salesmgmt.commission_line
            WHERE deal_id = 6 AND kind = 'adjustment'),
          30::numeric, 'the adjustment line shows the split');

-- ------------------------------------------------ weights and rates at once
-- Max, monthly plan without quota (the first tier applies), 10%; Services
-- weigh half and earn 8%.  E: 20 licences (Software 2,000) + 4 days
-- (Services 2,000): credit 2,000 + 1,000 = 3,000; Software owns 2/3 of it
-- at 10%: 200; Services 1/3 at 8%: 80.  280.00.
INSERT INTO salesmgmt.commission_plan (plan_id, name, period, family_weights, family_rates) VALUES
  (2, 'Both', 'month', '{"Services": 0.5}', '{"Services": 0.08}');
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, rate) VALUES (2, 0, 0.10);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES (2, 2, '2025-04-01');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, created_at, stage_entered_at) VALUES
  (5, 'E', 1, 2, 1, 1, '2025-04-01', '2025-04-01');
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (5, 1, 20), (5, 3, 4);
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2025-04-15' WHERE deal_id = 5;
SELECT results_eq($$SELECT credit, earned FROM salesmgmt.run_commissions('2025-04-01', '2025-04-30') WHERE rep_id = 2$$,
                  $$VALUES (3000::numeric, 280.00::numeric)$$,
                  'weights decide the credit, family rates what it earns');
SELECT is((SELECT families->'Services' FROM salesmgmt.commission_line WHERE deal_id = 5 AND kind = 'earned'),
          '{"amount": 2000, "weight": 0.5, "credit": 1000, "table": "family", "tier": 1, "rate": 0.08, "earned": 80}'::jsonb,
          'the Services entry shows its weight and its own rate');

SELECT * FROM finish();
ROLLBACK;

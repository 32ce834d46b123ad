-- The worked examples of docs/commissions.md, block by block: every number
-- there is computed by hand and must come out here to the cent.  Keep the two
-- in step (the SQL is the same; the page shows this file's results).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SET salesmgmt.reporting_currency = 'USD';  -- the test relies on the default, whatever postgresql.conf says
SET DateStyle = 'ISO, YMD';

-- the squad
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Company');
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES (2, 'West', 1), (3, 'West 1', 2);
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES
  (1, 'Vera', 1), (2, 'Rita', 2), (3, 'Sam', 3), (4, 'Ada', 3), (5, 'Ben', 3);
UPDATE salesmgmt.team SET manager_rep_id = team_id;   -- Vera, Rita, Sam
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (1, 'Sales', 'free');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
  (1, 1, 'Negotiation', 1, 0.6, 'commit', 'open'),
  (2, 1, 'Won', 2, 1, 'closed', 'won'),
  (3, 1, 'Lost', 3, 0, 'omitted', 'lost');
-- a won deal can still fall through (a cancelled order)
INSERT INTO salesmgmt.stage_transition (pipeline_id, from_stage_id, to_stage_id) VALUES (1, 2, 3);

-- 1. Marginal and retroactive tiers across a quota crossing (January)
INSERT INTO salesmgmt.commission_plan (plan_id, name, period, tier_mode) VALUES
  (1, 'Marginal', 'month', 'marginal'), (2, 'Retroactive', 'month', 'retroactive');
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate) VALUES
  (1, 0, 1.0, 0.05), (1, 1.0, NULL, 0.10),
  (2, 0, 1.0, 0.05), (2, 1.0, NULL, 0.10);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from, valid_to) VALUES
  (4, 1, '2025-01-01', '2025-01-31'), (5, 2, '2025-01-01', '2025-01-31');
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) VALUES
  (4, '2025-01-01', '2025-01-31', 20000), (5, '2025-01-01', '2025-01-31', 20000);
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at) VALUES
  (101, 'Ada 1', 1, 4, 1, 2, 15000, '2025-01-02', '2025-01-10', '2025-01-10'),
  (102, 'Ada 2', 1, 4, 1, 2, 10000, '2025-01-02', '2025-01-20', '2025-01-20'),
  (103, 'Ben 1', 1, 5, 1, 2, 15000, '2025-01-02', '2025-01-10', '2025-01-10'),
  (104, 'Ben 2', 1, 5, 1, 2, 10000, '2025-01-02', '2025-01-20', '2025-01-20');
SELECT rep_id, credit, quota, attainment, earned, payout
  FROM salesmgmt.run_commissions('2025-01-01', '2025-01-31');
SELECT rep_name, deal_id, amount, explanation FROM salesmgmt.commission_statement
 WHERE period_start = '2025-01-01' ORDER BY rep_id, credited_at;

-- 2. A decelerator and mixed modes (February)
INSERT INTO salesmgmt.commission_plan (plan_id, name, period, tier_mode) VALUES (3, 'Mixed', 'month', 'marginal');
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate, mode) VALUES
  (3, 0,   0.5,  0.04, 'marginal'),
  (3, 0.5, 1.0,  0.08, 'retroactive'),
  (3, 1.0, NULL, 0.12, 'marginal');
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from, valid_to) VALUES
  (4, 3, '2025-02-01', '2025-02-28'), (5, 3, '2025-02-01', '2025-02-28');
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) VALUES
  (4, '2025-02-01', '2025-02-28', 50000), (5, '2025-02-01', '2025-02-28', 50000);
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at) VALUES
  (201, 'Ada 3', 1, 4, 1, 2, 20000, '2025-02-01', '2025-02-03', '2025-02-03'),
  (202, 'Ada 4', 1, 4, 1, 2, 15000, '2025-02-01', '2025-02-12', '2025-02-12'),
  (203, 'Ada 5', 1, 4, 1, 2, 25000, '2025-02-01', '2025-02-24', '2025-02-24'),
  (204, 'Ben 3', 1, 5, 1, 2, 10000, '2025-02-01', '2025-02-14', '2025-02-14');
SELECT rep_id, credit, attainment, earned FROM salesmgmt.run_commissions('2025-02-01', '2025-02-28');
SELECT rep_name, deal_id, amount, explanation FROM salesmgmt.commission_statement
 WHERE period_start = '2025-02-01' ORDER BY rep_id, credited_at;

-- 3. A cap (March)
INSERT INTO salesmgmt.commission_plan (plan_id, name, period, cap) VALUES (4, 'Capped', 'month', 3000);
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, rate) VALUES (4, 0, 0.10);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from, valid_to) VALUES (4, 4, '2025-03-01', '2025-03-31');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at) VALUES
  (301, 'Ada 6', 1, 4, 1, 2, 20000, '2025-03-01', '2025-03-05', '2025-03-05'),
  (302, 'Ada 7', 1, 4, 1, 2, 15000, '2025-03-01', '2025-03-15', '2025-03-15'),
  (303, 'Ada 8', 1, 4, 1, 2, 5000,  '2025-03-01', '2025-03-25', '2025-03-25');
SELECT rep_id, credit, earned FROM salesmgmt.run_commissions('2025-03-01', '2025-03-31');
SELECT deal_id, amount, explanation FROM salesmgmt.commission_statement
 WHERE period_start = '2025-03-01' ORDER BY credited_at;

-- 4. A split deal (April)
INSERT INTO salesmgmt.commission_plan (plan_id, name, period, clawback_days) VALUES (5, 'Standard', 'month', 90);
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, rate) VALUES (5, 0, 0.05);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES (4, 5, '2025-04-01'), (5, 5, '2025-04-01');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at) VALUES
  (401, 'Acme shared', 1, 4, 1, 2, 12345.67, '2025-04-01', '2025-04-08', '2025-04-08');
INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share) VALUES (401, 4, 0.7), (401, 5, 0.3);
SELECT rep_id, credit, earned FROM salesmgmt.run_commissions('2025-04-01', '2025-04-30');
SELECT rep_name, amount, explanation FROM salesmgmt.commission_statement
 WHERE period_start = '2025-04-01' ORDER BY rep_id;

-- 5. A SPIFF (May)
INSERT INTO salesmgmt.commission_spiff (spiff_id, plan_id, name, condition, amount, valid_from, valid_to) VALUES
  (1, 5, 'Analytics launch', '{"extra": {"product": "analytics"}}', 500, '2025-05-01', '2025-05-31');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at, extra) VALUES
  (501, 'Acme analytics', 1, 4, 1, 2, 10000, '2025-05-01', '2025-05-07', '2025-05-07', '{"product": "analytics"}'),
  (502, 'Acme platform',  1, 5, 1, 2, 8000,  '2025-05-01', '2025-05-09', '2025-05-09', '{"product": "platform"}');
SELECT rep_id, credit, earned, spiffs, payout FROM salesmgmt.run_commissions('2025-05-01', '2025-05-31');
SELECT rep_name, kind, amount, explanation FROM salesmgmt.commission_statement
 WHERE period_start = '2025-05-01' ORDER BY rep_id, kind;

-- 6. Manager overrides, one and two levels up (June)
INSERT INTO salesmgmt.commission_plan (plan_id, name, period, override_rate) VALUES
  (6, 'Director', 'month', 0.02), (7, 'Vice president', 'month', 0.01);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from, valid_to) VALUES
  (2, 6, '2025-06-01', '2025-06-30'), (1, 7, '2025-06-01', '2025-06-30');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at) VALUES
  (601, 'Acme rollout', 1, 4, 1, 2, 50000, '2025-06-01', '2025-06-10', '2025-06-10');
SELECT rep_id, credit, earned, overrides, payout FROM salesmgmt.run_commissions('2025-06-01', '2025-06-30');
SELECT rep_name, kind, amount, explanation FROM salesmgmt.commission_statement
 WHERE period_start = '2025-06-01' ORDER BY rep_id;

-- 7. A recoverable draw and a guarantee (July, August)
INSERT INTO salesmgmt.commission_draw (rep_id, period_start, period_end, amount, recoverable) VALUES
  (5, '2025-07-01', '2025-07-31', 1000, true),
  (5, '2025-08-01', '2025-08-31', 1000, true),
  (4, '2025-07-01', '2025-07-31', 1500, false);
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at) VALUES
  (701, 'Ben July',   1, 5, 1, 2, 8000,  '2025-07-01', '2025-07-15', '2025-07-15'),
  (702, 'Ada July',   1, 4, 1, 2, 10000, '2025-07-01', '2025-07-16', '2025-07-16'),
  (801, 'Ben August', 1, 5, 1, 2, 40000, '2025-08-01', '2025-08-12', '2025-08-12');
SELECT rep_id, earned, draws, draw_recovery, payout FROM salesmgmt.run_commissions('2025-07-01', '2025-07-31');
SELECT salesmgmt.finalize_commissions('2025-07-01', '2025-07-31');
SELECT rep_id, earned, draws, draw_recovery, payout FROM salesmgmt.run_commissions('2025-08-01', '2025-08-31');
SELECT salesmgmt.finalize_commissions('2025-08-01', '2025-08-31');
SELECT rep_name, period_start, kind, amount, explanation FROM salesmgmt.commission_statement
 WHERE period_start IN ('2025-07-01', '2025-08-01') AND kind = 'draw' ORDER BY period_start, rep_id, line_id;

-- 8. Finalize, then a lost deal, a late deal and a changed split (September, October)
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at) VALUES
  (901, 'Ada September', 1, 4, 1, 2, 20000, '2025-09-01', '2025-09-10', '2025-09-10'),
  (902, 'Ben September', 1, 5, 1, 2, 10000, '2025-09-01', '2025-09-15', '2025-09-15');
SELECT rep_id, earned, payout FROM salesmgmt.run_commissions('2025-09-01', '2025-09-30');
SELECT salesmgmt.finalize_commissions('2025-09-01', '2025-09-30');
UPDATE salesmgmt.deal SET stage_id = 3, stage_entered_at = '2025-10-05', lost_reason = 'budget cut'
 WHERE deal_id = 901;
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at) VALUES
  (903, 'Ben late entry', 1, 5, 1, 2, 6000, '2025-09-01', '2025-09-20', '2025-09-20');
INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share) VALUES (902, 5, 0.5), (902, 4, 0.5);
SELECT rep_id, earned, adjustments, clawbacks, payout FROM salesmgmt.run_commissions('2025-10-01', '2025-10-31');
SELECT rep_name, kind, deal_id, amount, explanation FROM salesmgmt.commission_statement
 WHERE period_start = '2025-10-01' ORDER BY rep_id, deal_id;

-- 9. Payment basis with a refund (November)
INSERT INTO salesmgmt.commission_plan (plan_id, name, basis, period) VALUES (8, 'Collections', 'payment', 'month');
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, rate) VALUES (8, 0, 0.05);
UPDATE salesmgmt.commission_assignment SET valid_to = '2025-10-31' WHERE rep_id = 5 AND plan_id = 5;
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES (5, 8, '2025-11-01');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at) VALUES
  (1101, 'Ben November', 1, 5, 1, 2, 30000, '2025-10-20', '2025-11-02', '2025-11-02');
INSERT INTO salesmgmt.payment (deal_id, payment_id, kind, amount, currency, paid_at) VALUES
  (1101, 1, 'payment', 10000, 'USD', '2025-11-03'),
  (1101, 2, 'payment', 20000, 'USD', '2025-11-20'),
  (1101, 3, 'refund',   5000, 'USD', '2025-11-25');
SELECT rep_id, credit, earned, payout FROM salesmgmt.run_commissions('2025-11-01', '2025-11-30');
SELECT rep_name, amount, explanation FROM salesmgmt.commission_statement
 WHERE period_start = '2025-11-01' ORDER BY credited_at;

-- beyond the page: a finalized month never runs again, an open one runs again
-- to the same result, and the statement's totals are the sums of its lines
SELECT * FROM salesmgmt.run_commissions('2025-09-01', '2025-09-30');
SELECT rep_id, earned, adjustments, clawbacks, payout FROM salesmgmt.run_commissions('2025-10-01', '2025-10-31');
SELECT count(*) AS october_lines FROM salesmgmt.commission_line WHERE period_start = '2025-10-01';
SELECT DISTINCT rep_name, period_start, total_credit, total_earned, total_spiffs, total_overrides,
       total_adjustments, total_clawbacks, total_draws, total_payout
  FROM salesmgmt.commission_statement ORDER BY period_start, rep_name;
SELECT status, count(*) FROM salesmgmt.commission_line GROUP BY status ORDER BY status;

-- 10. A rep who changes squads mid-quarter (December): each override goes
-- to the managers above Ada on the day of the win (docs/commissions.md)
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES (4, 'West 2', 2);
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (6, 'Wes', 4);
UPDATE salesmgmt.team SET manager_rep_id = 6 WHERE team_id = 4;
UPDATE salesmgmt.rep SET team_id = 4 WHERE rep_id = 4;
SELECT salesmgmt.backfill_rep_team(4, 3, '2025-01-01', '2025-12-15'),
       salesmgmt.backfill_rep_team(4, 4, '2025-12-15', current_date);
INSERT INTO salesmgmt.commission_plan (plan_id, name, period, override_rate) VALUES (9, 'Squad lead', 'month', 0.03);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from, valid_to) VALUES
  (3, 9, '2025-12-01', '2025-12-31'), (6, 9, '2025-12-01', '2025-12-31'), (2, 6, '2025-12-01', '2025-12-31');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            created_at, stage_entered_at, closed_at) VALUES
  (1201, 'Ada in West 1', 1, 4, 1, 2, 10000, '2025-12-01', '2025-12-10', '2025-12-10'),
  (1202, 'Ada in West 2', 1, 4, 1, 2, 20000, '2025-12-01', '2025-12-20', '2025-12-20');
SELECT rep_id, credit, earned, overrides, payout FROM salesmgmt.run_commissions('2025-12-01', '2025-12-31');
SELECT rep_name, kind, amount, explanation FROM salesmgmt.commission_statement
 WHERE period_start = '2025-12-01' AND kind = 'override' ORDER BY credited_at, rep_id;

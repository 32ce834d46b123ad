-- Commission engine: bad input and the guards of plans, assignments,
-- periods and the ledger.  Every refused statement changes nothing.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SET salesmgmt.reporting_currency = 'USD';  -- the test relies on the default, whatever postgresql.conf says
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

-- the SQLSTATE and message of a statement that fails
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Ada', 1), (2, 'Ben', 1);
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (1, 'Sales', 'free');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
  (1, 1, 'Open', 1, 0.5, 'pipeline', 'open'), (2, 1, 'Won', 2, 1, 'closed', 'won'), (3, 1, 'Lost', 3, 0, 'omitted', 'lost');

-- plans and tiers: constraint violations (terse: the failing rows hold now())
\set VERBOSITY terse
INSERT INTO salesmgmt.commission_plan (name, basis) VALUES ('x', 'invoice');
INSERT INTO salesmgmt.commission_plan (name, period) VALUES ('x', 'week');
INSERT INTO salesmgmt.commission_plan (name, cap) VALUES ('x', -1);
INSERT INTO salesmgmt.commission_plan (name, override_rate) VALUES ('x', 1.5);
INSERT INTO salesmgmt.commission_plan (name, clawback_days) VALUES ('x', -30);
\set VERBOSITY default
INSERT INTO salesmgmt.commission_plan (plan_id, name, period) VALUES (1, 'Tiered', 'quarter');
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate) VALUES (1, 0, NULL, -0.05);
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate) VALUES (1, 0.5, 0.5, 0.05);
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate, mode) VALUES (1, 0, NULL, 0.05, 'linear');

-- tiers are checked at commit: overlaps, gaps, a missing start, a closed top
BEGIN;
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate) VALUES (1, 0, 0.5, 0.05), (1, 0.4, NULL, 0.1);
COMMIT;
BEGIN;
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate) VALUES (1, 0, 0.5, 0.05), (1, 0.6, NULL, 0.1);
COMMIT;
BEGIN;
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate) VALUES (1, 0.1, NULL, 0.05);
COMMIT;
BEGIN;
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate) VALUES (1, 0, 1, 0.05);
COMMIT;
SELECT count(*) AS tiers_written FROM salesmgmt.commission_tier;
-- entered one by one, in any order, they are fine at commit
BEGIN;
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate) VALUES (1, 1.0, NULL, 0.12);
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate, mode) VALUES (1, 0.5, 1.0, 0.08, 'retroactive');
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate) VALUES (1, 0, 0.5, 0.04);
COMMIT;
-- removing a middle tier leaves a gap
DELETE FROM salesmgmt.commission_tier WHERE plan_id = 1 AND attainment_from = 0.5;
SELECT attainment_from, attainment_to, rate, mode FROM salesmgmt.commission_tier ORDER BY attainment_from;

-- commission_amount: the tier arithmetic alone (quota 50,000)
SELECT salesmgmt.commission_amount(1, 50000, 0, 20000) AS below_half,        -- 20,000 x 4%
       salesmgmt.commission_amount(1, 50000, 20000, 15000) AS crossing_half,  -- 200 + 800 + catch-up 1,000
       salesmgmt.commission_amount(1, 50000, 35000, 25000) AS crossing_quota, -- 1,200 + 1,200
       salesmgmt.commission_amount(1, 50000, 0, 60000) AS all_at_once,       -- 5,200 in one line
       salesmgmt.commission_amount(1, NULL, 0, 60000) AS without_quota,      -- first tier: 4%
       salesmgmt.commission_amount(1, 50000, 60000, -25000) AS reversal;     -- back into tier 2
SELECT salesmgmt.commission_amount(1, 50000, 0, 0.125) AS rounded_at_the_end,
       salesmgmt.commission_amount(1, 50000, 0.125, 0.125) AS cumulative;
SELECT pg_temp.err($$SELECT salesmgmt.commission_amount(99, 100, 0, 1)$$);
SELECT pg_temp.err($$SELECT salesmgmt.commission_amount(1, -100, 0, 1)$$);
SELECT pg_temp.err($$SELECT salesmgmt.commission_amount(1, 100, NULL, 1)$$);
SELECT pg_temp.err($$SELECT salesmgmt.commission_amount(1, 100, 0, 'NaN')$$);

-- SPIFFs: conditions in the rule language on deal columns, one of amount and rate
INSERT INTO salesmgmt.commission_spiff (plan_id, name, condition, amount) VALUES (1, 'typo', '{"extras": {"product": "x"}}', 100);
INSERT INTO salesmgmt.commission_spiff (plan_id, name, condition, amount) VALUES (1, 'flat', '{"amount": {"=>": 100}}', 100);
INSERT INTO salesmgmt.commission_spiff (plan_id, name, condition, amount) VALUES (1, 'nested', '{"pipeline_id": [1, 2]}', 100);
INSERT INTO salesmgmt.commission_spiff (plan_id, name, condition, amount) VALUES (1, 'array', '[1]', 100);
INSERT INTO salesmgmt.commission_spiff (plan_id, name, amount, rate) VALUES (1, 'both', 100, 0.01);
INSERT INTO salesmgmt.commission_spiff (plan_id, name) VALUES (1, 'neither');
INSERT INTO salesmgmt.commission_spiff (plan_id, name, rate, valid_from, valid_to) VALUES (1, 'backwards', 0.01, '2025-02-01', '2025-01-01');
SELECT count(*) AS spiffs_written FROM salesmgmt.commission_spiff;

-- assignments: no overlap per rep (open-ended ones included), order of dates
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from, valid_to) VALUES (1, 1, '2025-01-01', '2025-03-31');
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES (1, 1, '2025-03-01');
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from, valid_to) VALUES (1, 1, '2024-12-01', '2025-01-01');
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from, valid_to) VALUES (2, 1, '2025-01-01', '2024-12-31');
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from, valid_to) VALUES
  (2, 1, '2025-01-01', NULL), (2, 1, '2026-01-01', NULL);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES (1, 1, '2025-04-01'), (2, 1, '2025-01-01');
SELECT rep_id, plan_id, valid_from, valid_to FROM salesmgmt.commission_assignment ORDER BY rep_id, valid_from;

-- draws: order of dates, positive amounts
INSERT INTO salesmgmt.commission_draw (rep_id, period_start, period_end, amount) VALUES (1, '2025-02-01', '2025-01-01', 100);
INSERT INTO salesmgmt.commission_draw (rep_id, period_start, period_end, amount) VALUES (1, '2025-01-01', '2025-01-31', 0);

-- periods: nulls, infinity, end before start
SELECT pg_temp.err($$SELECT * FROM salesmgmt.run_commissions(NULL, '2025-03-31')$$);
SELECT pg_temp.err($$SELECT * FROM salesmgmt.run_commissions('2025-01-01', 'infinity')$$);
SELECT * FROM salesmgmt.run_commissions('2025-03-31', '2025-01-01');
SELECT pg_temp.err($$SELECT salesmgmt.finalize_commissions('2025-03-31', '2025-01-01')$$);

-- a quarter: two deals, one in euros without a rate yet
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) VALUES
  (1, '2025-01-01', '2025-03-31', 50000), (2, '2025-01-01', '2025-03-31', 50000);
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
                            created_at, stage_entered_at, closed_at) VALUES
  (1, 'A', 1, 1, 1, 2, 30000, 'USD', '2025-01-01', '2025-02-01', '2025-02-01'),
  (2, 'B', 1, 2, 1, 2, 10000, 'EUR', '2025-01-01', '2025-03-01', '2025-03-01');
SELECT * FROM salesmgmt.run_commissions('2025-01-01', '2025-03-31');
SELECT count(*) AS periods, (SELECT count(*) FROM salesmgmt.commission_line) AS lines FROM salesmgmt.commission_period;
INSERT INTO salesmgmt.currency_rate (currency, quote_currency, valid_from, rate) VALUES ('USD', 'EUR', '2025-01-01', 0.8);
-- EUR converts by dividing by the reverse rate: 10,000 / 0.8 = 12,500 credit
SELECT rep_id, credit, quota, attainment, earned, payout FROM salesmgmt.run_commissions('2025-01-01', '2025-03-31');
-- the same again: drafts are replaced, the result is the same
SELECT rep_id, credit, quota, attainment, earned, payout FROM salesmgmt.run_commissions('2025-01-01', '2025-03-31');
SELECT count(*) AS lines, sum(amount) FROM salesmgmt.commission_line;
SELECT runs, status FROM salesmgmt.commission_period;

-- another reporting currency than the ledger's
SET salesmgmt.reporting_currency = 'EUR';
SELECT * FROM salesmgmt.run_commissions('2025-04-01', '2025-06-30');
SET salesmgmt.reporting_currency = 'USD';  -- back to what the test relies on

-- repeatable read cannot see a concurrent run it waited for: refused
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM salesmgmt.run_commissions('2025-01-01', '2025-03-31');
ROLLBACK;

-- lines and periods change only through the functions
UPDATE salesmgmt.commission_line SET amount = amount * 2;
DELETE FROM salesmgmt.commission_line;
UPDATE salesmgmt.commission_period SET status = 'final', finalized_at = now();
\set VERBOSITY terse
INSERT INTO salesmgmt.commission_line (period_start, period_end, rep_id, kind, amount, currency)
VALUES ('2025-01-01', '2025-03-31', 1, 'bonus', 100, 'USD');
\set VERBOSITY default

-- periods overlapping the open one with other bounds
SELECT * FROM salesmgmt.run_commissions('2025-03-01', '2025-04-30');
SELECT pg_temp.err($$SELECT salesmgmt.finalize_commissions('2025-01-01', '2025-01-31')$$);
SELECT pg_temp.err($$SELECT salesmgmt.finalize_commissions('2025-04-01', '2025-06-30')$$);

-- finalize; then nothing about the period changes
SELECT salesmgmt.finalize_commissions('2025-01-01', '2025-03-31') AS finalized_lines;
SELECT * FROM salesmgmt.run_commissions('2025-01-01', '2025-03-31');
SELECT * FROM salesmgmt.run_commissions('2025-03-01', '2025-04-30');
SELECT salesmgmt.finalize_commissions('2025-01-01', '2025-03-31');
SELECT salesmgmt.discard_commissions('2025-01-01', '2025-03-31');
UPDATE salesmgmt.commission_line SET amount = 0 WHERE rep_id = 1;
DELETE FROM salesmgmt.commission_line WHERE rep_id = 1;
TRUNCATE salesmgmt.commission_line;
UPDATE salesmgmt.commission_period SET runs = 0;
DELETE FROM salesmgmt.commission_period;
TRUNCATE salesmgmt.commission_period;
-- assignments, draws and plans of finalized periods
UPDATE salesmgmt.commission_assignment SET valid_from = '2025-02-01' WHERE rep_id = 1 AND valid_from = '2025-01-01';
UPDATE salesmgmt.commission_assignment SET valid_to = '2025-02-28' WHERE rep_id = 1 AND valid_from = '2025-01-01';
DELETE FROM salesmgmt.commission_assignment WHERE rep_id = 2;
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from, valid_to) VALUES (1, 1, '2024-10-01', '2024-12-31');
INSERT INTO salesmgmt.commission_draw (rep_id, period_start, period_end, amount) VALUES (1, '2025-01-01', '2025-01-31', 500);
UPDATE salesmgmt.commission_plan SET period = 'month' WHERE plan_id = 1;
-- changes from the day after the period are fine
UPDATE salesmgmt.commission_assignment SET valid_to = '2025-12-31' WHERE rep_id = 1 AND valid_from = '2025-04-01';
INSERT INTO salesmgmt.commission_draw (rep_id, period_start, period_end, amount) VALUES (1, '2025-04-01', '2025-04-30', 500);
UPDATE salesmgmt.commission_plan SET cap = 100000 WHERE plan_id = 1;
SELECT rep_id, kind, deal_id, credit, amount, status FROM salesmgmt.commission_line ORDER BY rep_id;

-- an open period can be discarded
SELECT rep_id, earned, draws, draw_recovery, payout FROM salesmgmt.run_commissions('2025-04-01', '2025-04-30');
SELECT salesmgmt.discard_commissions('2025-04-01', '2025-04-30') AS discarded_lines;
SELECT period_start, period_end, status, runs FROM salesmgmt.commission_period ORDER BY period_start;
SELECT pg_temp.err($$SELECT salesmgmt.discard_commissions('2025-04-01', '2025-04-30')$$);

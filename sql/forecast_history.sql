-- forecast_history: forecasts as of past moments, rebuilt from the deal
-- history the pipeline triggers write, and win rates learned from it.
-- Deals are entered and moved with explicit stage_entered_at, so each
-- change is recorded at that time; other changes are recorded now.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET salesmgmt.reporting_currency = 'USD';

INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Bo', 1), (2, 'Cy', 1);
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
INSERT INTO salesmgmt.pipeline (pipeline_id, name) VALUES (1, 'New business');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (1, 1, 'Qualify', 1, 0.10, 'pipeline', 'open'),
    (2, 1, 'Propose', 2, 0.50, 'best_case', 'open'),
    (3, 1, 'Commit', 3, 0.80, 'commit', 'open'),
    (4, 1, 'Won', 4, 1, 'closed', 'won'),
    (5, 1, 'Lost', 5, 0, 'omitted', 'lost');
INSERT INTO salesmgmt.currency_rate VALUES ('EUR', 'USD', '2024-01-01', 1.20);

INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id,
                            amount, currency, expected_close_date, stage_entered_at) VALUES
    (1, 'D1', 1, 1, 1, 2, 1000, 'USD', '2024-02-15', '2024-01-10'),
    (2, 'D2', 1, 1, 1, 1, 2000, 'USD', '2024-03-10', '2024-01-05'),
    (3, 'D3', 1, 2, 1, 2, 800, 'EUR', '2024-03-20', '2024-01-08'),
    (4, 'D4', 1, 2, 1, 3, 1500, 'USD', '2024-03-25', '2024-02-15'),
    (5, 'D5', 1, 1, 1, 1, 500, 'USD', '2024-01-31', '2024-01-03'),
    (6, 'D6', 1, 2, 1, 2, 1000, 'USD', '2024-06-30', '2024-01-04'),
    (7, 'D7', 1, 2, 1, 3, 300, 'USD', '2024-02-20', '2024-01-06');
-- stage moves at the times they happened
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2024-01-20' WHERE deal_id = 2;
UPDATE salesmgmt.deal SET stage_id = 3, stage_entered_at = '2024-02-10' WHERE deal_id = 1;
UPDATE salesmgmt.deal SET stage_id = 5, stage_entered_at = '2024-02-20' WHERE deal_id = 3;
UPDATE salesmgmt.deal SET stage_id = 4, stage_entered_at = '2024-03-05 10:00' WHERE deal_id = 2;
-- changes recorded now: D5's amount, D6's close date (pulled into Q1), D7 deleted
UPDATE salesmgmt.deal SET amount = 700 WHERE deal_id = 5;
UPDATE salesmgmt.deal SET expected_close_date = '2024-03-30' WHERE deal_id = 6;
DELETE FROM salesmgmt.deal WHERE deal_id = 7;

-- On February 1st: D1 and D2 proposals (best case 1000 + 2000), D3 a
-- proposal of 800 EUR (960), D5 qualifying at 500, D7 commit 300; D4 did
-- not exist, D6 was due in Q2.  Weighted 500 + 1000 + 480 + 50 + 240.
-- On March 1st: D1 in commit, D3 lost, D4 in commit, D2 still a proposal.
-- On March 6th: D2 won on March 5th.  Now: D5 is 700, D6 is in Q1, D7 is
-- gone.
SELECT 'Feb 1' AS as_of, closed_won, commit, best_case, pipeline, weighted, deal_count
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total', '2024-02-01')
UNION ALL
SELECT 'Mar 1', closed_won, commit, best_case, pipeline, weighted, deal_count
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total', '2024-03-01')
UNION ALL
SELECT 'Mar 6', closed_won, commit, best_case, pipeline, weighted, deal_count
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total', '2024-03-06')
UNION ALL
SELECT 'now', closed_won, commit, best_case, pipeline, weighted, deal_count
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total');
-- per rep on March 1st
SELECT group_name, closed_won, commit, best_case, pipeline, weighted, deal_count
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'rep', '2024-03-01');
-- as of now, the history gives the current forecast: Cy's deleted D7
-- (commit 300) is left out since salesmgmt.deal_deletion records when it
-- went (issue #19; it used to stay in)
(SELECT 'as of now' AS source, group_name, commit, weighted, deal_count
   FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'rep', now())
 EXCEPT
 SELECT 'as of now', group_name, commit, weighted, deal_count
   FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'rep'))
UNION ALL
(SELECT 'current', group_name, commit, weighted, deal_count
   FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'rep')
 EXCEPT
 SELECT 'current', group_name, commit, weighted, deal_count
   FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'rep', now()))
ORDER BY source;

-- an adjustment made on February 20th counts from then on
INSERT INTO salesmgmt.forecast_adjustment (period_start, period_end, rep_id, category, amount, created_at)
VALUES ('2024-01-01', '2024-03-31', 1, 'commit', 250, '2024-02-20');
SELECT 'Feb 1' AS as_of, commit, adjusted_commit
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total', '2024-02-01')
UNION ALL
SELECT 'Mar 1', commit, adjusted_commit
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total', '2024-03-01');

-- Win rates.  Closed: D2 (Qualify, Propose, Won) and D3 (Propose, Lost).
-- Qualify: 1 reached, 1 won, 60.4 days (Jan 5 to Mar 5 10:00); Propose: 2
-- reached, 1 won, median of 45.4 and 43.0 days; Commit: none closed.
SELECT stage_name, outcome, reached, won, probability, configured_probability, median_days_to_close
  FROM salesmgmt.win_rates(1);
-- only deals closed since March 1st; only the history known on March 1st
SELECT stage_name, reached, won, probability FROM salesmgmt.win_rates(1, '2024-03-01') WHERE reached > 0;
SELECT stage_name, reached, won, probability FROM salesmgmt.win_rates(1, NULL, '2024-03-01') WHERE reached > 0;
SELECT * FROM salesmgmt.win_rates(99);
SELECT * FROM salesmgmt.win_rates(NULL);

-- Historical probabilities: Qualify learned 1.0 (configured 0.1), Propose
-- 0.5, Commit none learned (keeps 0.8).  D5 (Qualify, 700) now weighs 700.
-- As of March 1st only D3 had closed: Propose learned 0, Qualify none.
UPDATE salesmgmt.pipeline SET probability_source = 'historical' WHERE pipeline_id = 1;
SELECT 'now' AS as_of, weighted FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total')
UNION ALL
SELECT 'Mar 1', weighted FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total', '2024-03-01');
SELECT expected FROM salesmgmt.forecast_range('2024-01-01', '2024-03-31');
-- a per-deal probability override still wins over the learned one
UPDATE salesmgmt.deal SET probability = 0.2 WHERE deal_id = 5;
SELECT weighted FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total');

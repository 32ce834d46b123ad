-- forecast: every column and grouping of salesmgmt.forecast against a
-- hand-computed fixture (3-level team tree, split deal, three currencies,
-- quotas by rep, team and month, manager adjustments), forecast_range,
-- snapshots and accuracy, and bad input.  The hand computation is in
-- the comments; docs/forecasting.md explains the rules.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET salesmgmt.reporting_currency = 'USD';

-- Sales (1) > East (2) > East Enterprise (3); Sales > West (4)
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES
    (2, 'East', 1), (3, 'East Enterprise', 2), (4, 'West', 1);
INSERT INTO salesmgmt.rep (rep_id, name, email, team_id) VALUES
    (1, 'Ada', 'ada@example.com', 1),
    (2, 'Bo', 'bo@example.com', 3),
    (3, 'Cy', 'cy@example.com', 3),
    (4, 'Di', 'di@example.com', 4),
    (5, 'Ed', 'ed@example.com', NULL);
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
INSERT INTO salesmgmt.pipeline (pipeline_id, name) VALUES (1, 'New business'), (2, 'Renewals');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (1, 1, 'Qualify', 1, 0.10, 'pipeline', 'open'),
    (2, 1, 'Propose', 2, 0.50, 'best_case', 'open'),
    (3, 1, 'Commit', 3, 0.80, 'commit', 'open'),
    (4, 1, 'Won', 4, 1, 'closed', 'won'),
    (5, 1, 'Lost', 5, 0, 'omitted', 'lost'),
    (6, 2, 'Due', 1, 0.60, 'best_case', 'open'),
    (7, 2, 'Renewed', 2, 1, 'closed', 'won'),
    (8, 2, 'Churned', 3, 0, 'omitted', 'lost');
-- EUR -> USD 1.10 in January, 1.20 from February; CNY only through the
-- reverse pair USD -> CNY 7 (so CNY amounts are divided by 7)
INSERT INTO salesmgmt.currency_rate VALUES
    ('EUR', 'USD', '2024-01-01', 1.10), ('EUR', 'USD', '2024-02-01', 1.20),
    ('USD', 'CNY', '2024-01-01', 7);

-- The deals of Q1 2024 (and a few around it).  Closed deals get the same
-- stage_entered_at and closed_at: the moment they closed.
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id,
                            amount, currency, expected_close_date, probability, forecast_category,
                            stage_entered_at, closed_at) VALUES
    -- Bo: commit 1000 (weighted 800)
    (1, 'D1', 1, 2, 1, 3, 1000, 'USD', '2024-02-15', NULL, NULL, '2024-01-10', NULL),
    -- Bo: best case 2000, probability overridden to 0.25 (weighted 500)
    (2, 'D2', 1, 2, 1, 2, 2000, 'USD', '2024-03-10', 0.25, NULL, '2024-01-12', NULL),
    -- Cy: pipeline 500 EUR on Jan 20 at 1.10 = 550 (weighted 55)
    (3, 'D3', 1, 3, 1, 1, 500, 'EUR', '2024-01-20', NULL, NULL, '2024-01-03', NULL),
    -- Cy: won 3000, closed Feb 5 though expected in April
    (4, 'D4', 1, 3, 1, 4, 3000, 'USD', '2024-04-30', NULL, NULL, '2024-02-05 10:00', '2024-02-05 10:00'),
    -- Di: won 700 CNY on Mar 1 = 100
    (5, 'D5', 1, 4, 1, 4, 700, 'CNY', '2024-03-01', NULL, NULL, '2024-03-01 09:00', '2024-03-01 09:00'),
    -- Di: lost in February: no part of the forecast
    (6, 'D6', 1, 4, 1, 5, 900, 'USD', '2024-02-01', NULL, NULL, '2024-02-01 12:00', '2024-02-01 12:00'),
    -- Ada: commit 4000 expected in April: outside Q1
    (7, 'D7', 1, 1, 1, 3, 4000, 'USD', '2024-04-15', NULL, NULL, '2024-01-15', NULL),
    -- Ed (no team): renewal due, best case 1000 EUR on Feb 10 at 1.20 = 1200 (weighted 720)
    (8, 'D8', 1, 5, 2, 6, 1000, 'EUR', '2024-02-10', NULL, NULL, '2024-01-05', NULL),
    -- split half Bo, half Di: commit 2000 (1000 each, weighted 800 each)
    (9, 'D9', 1, 2, 1, 3, 2000, 'USD', '2024-03-20', NULL, NULL, '2024-01-20', NULL),
    -- Ada: a qualify deal she marked omitted: omitted 600 (weighted 60)
    (10, 'D10', 1, 1, 1, 1, 600, 'USD', '2024-01-05', NULL, 'omitted', '2024-01-02', NULL),
    -- Bo: won in December although expected in January: not Q1
    (11, 'D11', 1, 2, 1, 4, 400, 'USD', '2024-01-10', NULL, NULL, '2023-12-20 15:00', '2023-12-20 15:00'),
    -- Di: a proposal she calls commit: commit 300 (weighted 150)
    (12, 'D12', 1, 4, 1, 2, 300, 'USD', '2024-02-28', NULL, 'commit', '2024-01-25', NULL);
INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share) VALUES (9, 2, 0.5), (9, 4, 0.5);

-- Quotas: Bo 5000 for Q1; Cy by month 1000 + 1500 + 1500; Di 3000 EUR for
-- Q1 (at Jan 1: 3300); Ed 1000; East Enterprise has its own 10000, which
-- replaces its reps' 9000.  West has none: Di's 3300.  East: 10000.
-- Sales: East + West = 13300.  The organisation: Sales + Ed = 14300.
INSERT INTO salesmgmt.quota (rep_id, team_id, period_start, period_end, amount, currency) VALUES
    (2, NULL, '2024-01-01', '2024-03-31', 5000, 'USD'),
    (3, NULL, '2024-01-01', '2024-01-31', 1000, 'USD'),
    (3, NULL, '2024-02-01', '2024-02-29', 1500, 'USD'),
    (3, NULL, '2024-03-01', '2024-03-31', 1500, 'USD'),
    (4, NULL, '2024-01-01', '2024-03-31', 3000, 'EUR'),
    (5, NULL, '2024-01-01', '2024-03-31', 1000, 'USD'),
    (NULL, 3, '2024-01-01', '2024-03-31', 10000, 'USD'),
    -- Q2 rows never count in Q1
    (2, NULL, '2024-04-01', '2024-06-30', 9999, 'USD');

-- By rep.  Bo: commit 1000 + 1000 (half of D9), best case 2000, weighted
-- 800 + 500 + 800 = 2100, 3 deals.  Cy: won 3000, pipeline 550, weighted
-- 55.  Di: won 100, commit 1000 + 300, weighted 800 + 150 = 950.  Ada:
-- omitted 600, weighted 60, no quota.  Ed: best case 1200, weighted 720.
SELECT group_id, group_name, closed_won, commit, best_case, pipeline, omitted, weighted,
       commit_forecast, best_case_forecast, quota, attainment, gap, deal_count
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'rep');

-- By team, each team with every team below it.  East Enterprise = Bo + Cy
-- (5 deals); East the same; West = Di; Sales = Ada + East + West: won
-- 3100, commit 3300, best case 2000, weighted 2155 + 950 + 60 = 3165, and
-- 8 deals (D9 once, though split between East and West).  Ed has no team.
SELECT group_id, group_name, closed_won, commit, best_case, pipeline, omitted, weighted,
       commit_forecast, best_case_forecast, quota, attainment, gap, deal_count
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'team');

-- By pipeline (no quotas per pipeline), in total (quota 14300, attainment
-- 3100 / 14300), by month (Cy's monthly quotas are the only ones inside
-- a month) and by quarter.
SELECT group_id, group_name, closed_won, commit, best_case, pipeline, omitted, weighted,
       commit_forecast, quota, deal_count
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'pipeline');
SELECT group_id, group_name, closed_won, commit, best_case, pipeline, omitted, weighted,
       commit_forecast, best_case_forecast, quota, attainment, gap, deal_count
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total');
SELECT group_id, group_name, period_start, period_end, closed_won, commit, best_case, pipeline,
       omitted, weighted, quota, deal_count
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'month');
SELECT group_id, group_name, period_start, period_end, closed_won, commit_forecast, quota, deal_count
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'quarter');
-- a period cut mid-month: the buckets are clipped, Cy's January row no
-- longer lies inside the first one
SELECT group_id, group_name, period_start, period_end, closed_won, pipeline, omitted, quota
  FROM salesmgmt.forecast('2024-01-10', '2024-02-10', 'month');

-- Manager adjustments are deltas shown next to the computed figures:
-- Bo commit +500 (made in February); West best case -200 EUR (-220 at
-- Jan 1); Ed commit +100 for February only.
INSERT INTO salesmgmt.forecast_adjustment (period_start, period_end, rep_id, team_id, category, amount, currency, note, created_at) VALUES
    ('2024-01-01', '2024-03-31', 2, NULL, 'commit', 500, 'USD', 'D7 will be pulled into March', '2024-02-20');
INSERT INTO salesmgmt.forecast_adjustment (period_start, period_end, rep_id, team_id, category, amount, currency, note) VALUES
    ('2024-01-01', '2024-03-31', NULL, 4, 'best_case', -200, 'EUR', 'West is too optimistic'),
    ('2024-02-01', '2024-02-29', 5, NULL, 'commit', 100, 'USD', NULL);
SELECT group_id, commit, adjusted_commit, best_case, adjusted_best_case, adjusted_pipeline,
       commit_forecast, adjusted_commit_forecast, adjusted_best_case_forecast, gap, adjusted_gap
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'rep');
SELECT group_id, commit, adjusted_commit, best_case, adjusted_best_case,
       commit_forecast, adjusted_commit_forecast, best_case_forecast, adjusted_best_case_forecast,
       gap, adjusted_gap
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'team');
SELECT group_name, commit, adjusted_commit, best_case, adjusted_best_case,
       adjusted_commit_forecast, adjusted_best_case_forecast, adjusted_gap
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'month')
UNION ALL
SELECT group_name, commit, adjusted_commit, best_case, adjusted_best_case,
       adjusted_commit_forecast, adjusted_best_case_forecast, adjusted_gap
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total');
-- pipelines are not adjusted
SELECT group_id, adjusted_commit, adjusted_commit_forecast
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'pipeline');
-- adjustments are append-only: a correction is a new row
UPDATE salesmgmt.forecast_adjustment SET amount = 600 WHERE rep_id = 2;
DELETE FROM salesmgmt.forecast_adjustment;

-- Another reporting currency: USD amounts divide by the EUR -> USD rate;
-- CNY has no rate to EUR, which is an error naming currency and date.
SELECT group_name, closed_won, commit FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total', NULL, 'EUR');
BEGIN;
INSERT INTO salesmgmt.currency_rate VALUES ('CNY', 'EUR', '2024-01-01', 0.125);
-- won 3000 / 1.20 + 700 * 0.125 = 2587.50; commit 3300 / 1.20 = 2750;
-- best case 2000 / 1.20 + 1000 = 2666.67; omitted 600 / 1.10 = 545.45;
-- weighted (800 + 500 + 1600 + 150) / 1.20 + 50 + 600 + 60 / 1.10 = 3246.21;
-- quota 5000/1.1 + 1000/1.1 + 1500/1.2 + 1500/1.2 + 3000 + 1000/1.1 ... = 13000
SET LOCAL salesmgmt.reporting_currency = 'EUR';
SELECT group_name, closed_won, commit, best_case, pipeline, omitted, weighted, quota, currency
  FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total');
ROLLBACK;
-- a deal in a currency without a rate
BEGIN;
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency, expected_close_date)
    VALUES (13, 'D13', 1, 2, 1, 1, 10, 'GBP', '2024-03-30');
SELECT * FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total');
ROLLBACK;

-- Monte Carlo range of Q1: closed won 3100 plus the open deals, each won
-- with its probability.  Expected: 3100 + 3885 = 6985; exact standard
-- deviation sqrt(sum a^2 p (1 - p)) = sqrt(1000^2*.16 + 2000^2*.1875
-- + 550^2*.09 + 1200^2*.24 + 2000^2*.16 + 600^2*.09 + 300^2*.25)
-- = sqrt(1977725) = 1406.32.
SELECT simulations, closed_won, open_deals, expected, expected_stddev, currency
  FROM salesmgmt.forecast_range('2024-01-01', '2024-03-31');
-- the simulation agrees with the exact mean and spread (10000 runs: the
-- mean within 4 standard errors, the spread within 5%), and its
-- percentiles are ordered
SELECT abs(mean - expected) < 4 * expected_stddev / 100 AS mean_ok,
       abs(stddev / expected_stddev - 1) < 0.05 AS stddev_ok,
       min <= p10 AND p10 <= p50 AND p50 <= p90 AND p90 <= max AS ordered,
       min >= closed_won AND max <= closed_won + 1000 + 2000 + 550 + 1200 + 2000 + 600 + 300 AS bounded
  FROM salesmgmt.forecast_range('2024-01-01', '2024-03-31');
-- same seed, same answer; another seed, another draw
SELECT (SELECT row(mean, stddev, p10, p50, p90, min, max) FROM salesmgmt.forecast_range('2024-01-01', '2024-03-31', NULL, 5000, 42))
     = (SELECT row(mean, stddev, p10, p50, p90, min, max) FROM salesmgmt.forecast_range('2024-01-01', '2024-03-31', NULL, 5000, 42)) AS same_seed_same_answer,
       (SELECT mean FROM salesmgmt.forecast_range('2024-01-01', '2024-03-31', NULL, 5000, 42))
    <> (SELECT mean FROM salesmgmt.forecast_range('2024-01-01', '2024-03-31', NULL, 5000, 43)) AS other_seed_other_draw;
-- a team: East = Bo and Cy.  Closed won 3000; open D1, D2, D3 and half
-- of D9: expected 3000 + 800 + 500 + 55 + 800 = 5155, standard deviation
-- sqrt(160000 + 750000 + 27225 + 1000^2*.16) = 1047.49
SELECT closed_won, open_deals, expected, expected_stddev
  FROM salesmgmt.forecast_range('2024-01-01', '2024-03-31', 2);
-- one simulation of a period with nothing open: the closed revenue itself
SELECT mean, stddev, p10, p90, min, max, open_deals
  FROM salesmgmt.forecast_range('2024-02-01', '2024-02-09', NULL, 1);

-- Snapshots and accuracy.  Take one by team and one in total, then D1
-- (commit 1000) is won on March 5: actual 4100 against a commit forecast
-- of 6400: accuracy 1 - 2300 / 4100.  Nothing won: no accuracy.
SELECT salesmgmt.snapshot_forecast('2024-01-01', '2024-03-31', 'team') AS team_snapshot;
SELECT salesmgmt.snapshot_forecast('2024-01-01', '2024-03-31', 'total') AS total_snapshot;
SELECT snapshot_id, line_no, group_kind, group_id, group_name, period_start, period_end,
       closed_won, commit_forecast, weighted, quota, deal_count, adjusted_commit_forecast
  FROM salesmgmt.forecast_snapshot ORDER BY snapshot_id, line_no;
UPDATE salesmgmt.deal SET stage_id = 4, stage_entered_at = '2024-03-05 11:00', closed_at = '2024-03-05 11:00'
 WHERE deal_id = 1;
SELECT snapshot_id, group_kind, group_name, forecast, actual, error, accuracy,
       weighted_forecast, weighted_accuracy, adjusted_forecast, adjusted_accuracy, period_complete
  FROM salesmgmt.forecast_accuracy ORDER BY snapshot_id, line_no;
UPDATE salesmgmt.forecast_snapshot SET closed_won = 0;

-- Bad input: clear errors, nothing changed
SELECT * FROM salesmgmt.forecast('2024-03-31', '2024-01-01');
SELECT * FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'region');
SELECT * FROM salesmgmt.forecast('2024-01-01', '2024-03-31', NULL);
SELECT * FROM salesmgmt.forecast(NULL, '2024-03-31');
SELECT * FROM salesmgmt.forecast('2024-01-01', 'infinity');
SELECT * FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'rep', 'infinity');
SELECT * FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'rep', NULL, 'XYZ');
SELECT * FROM salesmgmt.forecast('0001-01-01', '9999-12-31', 'month');
SELECT * FROM salesmgmt.forecast_range('2024-01-01', '2024-03-31', NULL, -5);
SELECT * FROM salesmgmt.forecast_range('2024-01-01', '2024-03-31', NULL, 0);
SELECT * FROM salesmgmt.forecast_range('2024-01-01', '2024-03-31', NULL, NULL);
SELECT * FROM salesmgmt.forecast_range('2024-01-01', '2024-03-31', 99);
SELECT * FROM salesmgmt.forecast_range('2024-03-31', '2024-01-01');
SELECT salesmgmt.snapshot_forecast('2024-01-01', '2024-03-31', 'region');
\set VERBOSITY terse
INSERT INTO salesmgmt.forecast_adjustment (period_start, period_end, rep_id, team_id, category, amount)
    VALUES ('2024-01-01', '2024-03-31', 2, 3, 'commit', 1);
INSERT INTO salesmgmt.forecast_adjustment (period_start, period_end, rep_id, category, amount)
    VALUES ('2024-01-01', '2024-03-31', 2, 'closed', 1);
INSERT INTO salesmgmt.forecast_adjustment (period_start, period_end, rep_id, category, amount)
    VALUES ('2024-03-31', '2024-01-01', 2, 'commit', 1);
SELECT (SELECT count(*) FROM salesmgmt.forecast_adjustment) AS adjustments,
       (SELECT count(DISTINCT snapshot_id) FROM salesmgmt.forecast_snapshot) AS snapshots;

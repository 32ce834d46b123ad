-- kpi: hand-computed scorecards for a small team; every scoring method,
-- both directions, caps, floors, the missing-data rule and ties.  The
-- expected numbers are worked out in the comments.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
\set VERBOSITY terse
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET salesmgmt.reporting_currency = 'USD';

-- ---------------------------------------------------------------- kpi_score
-- achievement: actual / target x 100; reduction: 100 - (actual - target) /
-- target x 100; threshold: 100 at or past the target; band: linear from
-- floor (0) to target (100); clamped to [0, cap]; a value worse than the
-- floor scores 0.
SELECT v.label, salesmgmt.kpi_score(v.value, v.target, v.method, v.direction, v.floor, v.cap) AS score
  FROM (VALUES
    ('achievement 80 of 100',                   80, 100, 'achievement', 'higher', NULL, 100),
    ('achievement 130 of 100, cap 100',        130, 100, 'achievement', 'higher', NULL, 100),
    ('achievement 130 of 100, cap 120',        130, 100, 'achievement', 'higher', NULL, 120),
    ('achievement 1 of 3 (rounded)',             1,   3, 'achievement', 'higher', NULL, 100),
    ('achievement below floor 50',              49, 100, 'achievement', 'higher',   50, 100),
    ('achievement at floor 50',                 50, 100, 'achievement', 'higher',   50, 100),
    ('achievement of a negative value',        -20, 100, 'achievement', 'higher', NULL, 100),
    ('reduction 30 days, target 40',            30,  40, 'reduction',   'lower',  NULL, 150),
    ('reduction 50 days, target 40',            50,  40, 'reduction',   'lower',  NULL, 150),
    ('reduction 0 days, target 40, cap 150',     0,  40, 'reduction',   'lower',  NULL, 150),
    ('reduction 100 days, target 40',          100,  40, 'reduction',   'lower',  NULL, 150),
    ('reduction 30, floor 35 (worse is above)', 36,  30, 'reduction',   'lower',    35, 150),
    ('threshold higher, at target',              5,   5, 'threshold',   'higher', NULL, 100),
    ('threshold higher, below target',         4.99,  5, 'threshold',   'higher', NULL, 100),
    ('threshold lower, at target',               2,   2, 'threshold',   'lower',  NULL, 100),
    ('threshold lower, above target',            3,   2, 'threshold',   'lower',  NULL, 100),
    ('threshold, cap 80',                        9,   5, 'threshold',   'higher', NULL,  80),
    ('band higher 70 between 50 and 80',        70,  80, 'band',        'higher',   50, 100),
    ('band higher at floor',                    50,  80, 'band',        'higher',   50, 100),
    ('band higher past target, cap 110',        95,  80, 'band',        'higher',   50, 110),
    ('band lower 50 between 90 and 30',         50,  30, 'band',        'lower',    90, 100),
    ('band lower worse than floor',             95,  30, 'band',        'lower',    90, 100),
    ('band lower better than target, cap 120',  10,  30, 'band',        'lower',    90, 120),
    ('cap 0',                                  100, 100, 'achievement', 'higher', NULL,   0),
    ('no data',                               NULL, 100, 'achievement', 'higher', NULL, 100)
  ) AS v(label, value, target, method, direction, floor, cap);
-- the defaults: higher is better, no floor, cap 100
SELECT salesmgmt.kpi_score(150, 100, 'achievement') AS default_cap,
       salesmgmt.kpi_score(3, 4, 'threshold') AS default_direction;

-- bad arguments are refused, never scored as 0
SELECT salesmgmt.kpi_score(1, 0, 'achievement');
SELECT salesmgmt.kpi_score(1, -5, 'reduction', 'lower');
SELECT salesmgmt.kpi_score(1, 10, 'achievement', 'lower');
SELECT salesmgmt.kpi_score(1, 10, 'reduction', 'higher');
SELECT salesmgmt.kpi_score(1, 10, 'band');
SELECT salesmgmt.kpi_score(1, 10, 'band', 'higher', 20);
SELECT salesmgmt.kpi_score(1, 10, 'band', 'lower', 5);
SELECT salesmgmt.kpi_score(1, 10, 'achievement', 'higher', NULL, -1);
SELECT salesmgmt.kpi_score(1, 10, 'median');
SELECT salesmgmt.kpi_score(1, 10, 'achievement', 'sideways');
SELECT salesmgmt.kpi_score(1, NULL, 'achievement');
SELECT salesmgmt.kpi_score(1, 10, 'achievement', 'higher', NULL, NULL);
SELECT salesmgmt.kpi_score('NaN', 10, 'achievement');
SELECT salesmgmt.kpi_score(1, 'Infinity', 'threshold');

-- ------------------------------------------------------------- a small team
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, email, team_id, active) VALUES
    (1, 'Ada', 'ada@example.com', 1, true),     -- the manager: no deals
    (2, 'Bo', 'bo@example.com', 1, true),
    (3, 'Cy', 'cy@example.com', 1, true),
    (4, 'Di', 'di@example.com', 1, true),
    (5, 'Fay', 'fay@example.com', 1, true),
    (6, 'Gus', 'gus@example.com', 1, false),    -- has left, but was reviewed for Q1
    (7, 'Hal', 'hal@example.com', 1, false);    -- has left, nothing in Q1: no scorecard
UPDATE salesmgmt.team SET manager_rep_id = 1;
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) VALUES (1, 'Acme', 2), (2, 'Globex', 3);
INSERT INTO salesmgmt.pipeline (pipeline_id, name) VALUES (1, 'New business');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (1, 1, 'Qualify', 1, 0.2, 'pipeline', 'open'),
    (2, 1, 'Won', 2, 1, 'closed', 'won'),
    (3, 1, 'Lost', 3, 0, 'omitted', 'lost');
INSERT INTO salesmgmt.currency_rate VALUES ('EUR', 'USD', '2026-01-01', 1.25);

-- Deals: created in Qualify, then closed as the pipeline contract has it
-- (a writer that sets stage_entered_at makes it the time of the change).
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
                            created_at, stage_entered_at) VALUES
    (1, 'D1', 1, 2, 1, 1,  6000, 'USD', '2026-01-05', '2026-01-05'),
    (2, 'D2', 1, 2, 1, 1,  4000, 'EUR', '2026-01-10', '2026-01-10'),
    (3, 'D3', 1, 2, 1, 1,  2000, 'USD', '2025-12-01', '2025-12-01'),
    (4, 'D4', 2, 3, 1, 1, 10000, 'USD', '2025-11-20', '2025-11-20'),
    (5, 'D5', 2, 3, 1, 1,  3000, 'USD', '2026-03-01', '2026-03-01'),
    (6, 'D6', 2, 4, 1, 1,  1000, 'USD', '2026-02-01', '2026-02-01'),
    (7, 'D7', 1, 2, 1, 1,  8000, 'USD', '2026-03-20', '2026-03-20'),
    (8, 'D8', 1, 2, 1, 1,  5000, 'USD', '2025-10-01', '2025-10-01'),
    (9, 'D9', 2, 3, 1, 1,  7000, 'USD', '2026-02-01', '2026-02-01');
UPDATE salesmgmt.deal d SET stage_id = c.stage_id, stage_entered_at = c.at
  FROM (VALUES (1, 2, '2026-01-25'::timestamptz), (2, 2, '2026-02-19'), (3, 3, '2026-03-10'),
               (4, 2, '2026-01-19'), (5, 2, '2026-03-11'), (6, 3, '2026-02-15'),
               (8, 2, '2025-12-20'), (9, 2, '2026-04-02')) AS c(deal_id, stage_id, at)
 WHERE d.deal_id = c.deal_id;
-- D4 is shared half and half by Cy and Di
BEGIN;
INSERT INTO salesmgmt.deal_split VALUES (4, 3, 0.5), (4, 4, 0.5);
COMMIT;

INSERT INTO salesmgmt.activity (kind, account_id, rep_id, occurred_at) VALUES
    ('meeting', 1, 2, '2026-01-06'), ('meeting', 1, 2, '2026-02-06'), ('visit', 1, 2, '2026-02-10'),
    ('call', 1, 2, '2026-02-11'), ('note', 1, 2, '2026-02-12'), ('call', 1, 2, '2026-04-01'),
    ('meeting', 2, 3, '2026-01-15'), ('call', 2, 3, '2026-01-16'),
    ('meeting', 2, 4, '2026-02-02'), ('demo', 2, 4, '2026-02-03'),
    ('call', 1, 7, '2025-06-01');
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) VALUES
    (2, '2026-01-01', '2026-03-31', 20000),
    (3, '2026-01-01', '2026-12-31', 36500);
INSERT INTO salesmgmt.sales_task (rep_id, title, due_date, status, completed_at) VALUES
    (2, 't1', '2026-01-10', 'done', '2026-01-09'), (2, 't2', '2026-02-10', 'done', '2026-02-09'),
    (2, 't3', '2026-03-10', 'done', '2026-03-12'), (2, 't4', '2026-03-20', 'open', NULL),
    (2, 't5', '2026-03-21', 'cancelled', NULL), (2, 't6', '2026-04-20', 'done', '2026-04-02'),
    (4, 't7', '2026-02-20', 'done', '2026-02-19');
INSERT INTO salesmgmt.csat_response (account_id, deal_id, csat, nps, responded_at) VALUES
    (1, 1, 5, 10, '2026-01-28'), (1, 2, 4, 9, '2026-02-25'), (1, NULL, NULL, 3, '2026-03-02'),
    (2, 6, 3, 6, '2026-02-20');
-- the rep defaults to the deal's owner, else the account's owner (Bo, Bo, Bo, Di)
SELECT response_id, deal_id, rep_id FROM salesmgmt.csat_response ORDER BY response_id;
INSERT INTO salesmgmt.training_course (course_id, name, hours, required, created_at) VALUES
    (1, 'Compliance', 2, true, '2025-12-01'),
    (2, 'Product', 8, true, '2026-02-01'),
    (3, 'Golf', 4, false, '2025-01-01'),
    (4, 'Late required', 1, true, '2026-05-01');
INSERT INTO salesmgmt.training_enrollment (rep_id, course_id, status, score, enrolled_at, completed_at) VALUES
    (2, 1, 'completed', 90, '2026-01-02', '2026-01-15'),
    (2, 2, 'enrolled', NULL, '2026-02-01', NULL),
    (2, 3, 'completed', 75, '2026-02-01', '2026-03-01'),
    (3, 1, 'completed', 80, '2025-12-02', '2025-12-15'),
    (3, 2, 'completed', 70, '2026-02-01', '2026-04-10');
INSERT INTO salesmgmt.review (rep_id, reviewer_rep_id, period_start, period_end, discipline, teamwork, customer_service) VALUES
    (2, 1, '2026-01-01', '2026-03-31', 5, 4, 3),
    (2, 4, '2026-01-01', '2026-03-31', 4, NULL, 5),
    (3, 1, '2026-01-01', '2026-03-31', 1, 2, 2),
    (5, 1, '2026-01-01', '2026-03-31', 4, 4, 4),
    (6, 1, '2026-01-01', '2026-03-31', 4, 4, 4),
    (2, 1, '2025-10-01', '2025-12-31', 1, 1, 1);     -- Q4: not in the Q1 scorecard

-- --------------------------------------------------- every metric, by hand
-- A custom metric too: referrals, from the rows of a table.  Hal (left)
-- has referrals, but a custom metric does not bring a former rep back.
CREATE TABLE referral (rep_id bigint, n numeric);
INSERT INTO referral VALUES (2, 3), (3, NULL), (4, 1.23456), (7, 5);
CREATE FUNCTION referrals(p_from date, p_to date) RETURNS TABLE (rep_id bigint, value numeric)
LANGUAGE sql STABLE AS $$ SELECT rep_id, n FROM referral $$;

INSERT INTO salesmgmt.kpi_scheme (scheme_id, name) VALUES (3, 'Every metric');
BEGIN;
INSERT INTO salesmgmt.kpi (code, name, metric, metric_function, direction, method, target)
SELECT m.metric, m.metric, m.metric, CASE WHEN m.metric = 'custom' THEN 'referrals' END,
       coalesce(m.direction, 'higher'), 'threshold', 0
  FROM salesmgmt.kpi_metrics() m;
INSERT INTO salesmgmt.kpi_scheme_item (scheme_id, kpi_id, weight)
SELECT 3, kpi_id, CASE WHEN metric = 'custom' THEN 20 ELSE 5 END FROM salesmgmt.kpi;
COMMIT;
-- the custom function was stored under its schema-qualified name
SELECT code, metric_function FROM salesmgmt.kpi WHERE metric = 'custom';
SELECT count(*) AS reps_scored FROM salesmgmt.compute_scorecards(3, '2026-01-01', '2026-03-31');
-- Bo:  revenue 6000 + 4000 EUR x 1.25 = 11000; 2 won; win rate 2/3; average
--      5500; cycle (20 + 40) / 2 = 30 days; created D1, D2, D7 = 6000 + 5000
--      + 8000; 4 activities (no note), 3 meetings (2 + visit); quota 20000:
--      55%; tasks 3 done of 4 (cancelled out); CSAT (5 + 4) / 2; NPS 2
--      promoters - 1 detractor of 3 answers; training: 2 required + Golf,
--      2 done; discipline (5 + 4) / 2, teamwork 4, customer service (3 + 5) / 2
-- Cy:  revenue D4 x 0.5 + D5 = 8000; 1.5 won, none lost: 100%; average
--      8000 / 1.5; cycle (0.5 x 60 + 10) / 1.5 days; created D5 + D9 (D9 won
--      after Q1) = 10000; quota 36500 x 90/365 days = 9000: 88.8889%;
--      training 1 of 2 (Product done after Q1); custom null: no data
-- Di:  D4 x 0.5 won, D6 lost: 0.5 / 1.5; NPS one detractor: -100;
--      training 0 of 2; no review
-- Ada: zero counts, training 0 of 2, nothing else
-- Fay, Gus: only a review (Gus has left, but the review puts him in)
SELECT k.code,
       max(i.value) FILTER (WHERE s.rep_id = 1) AS ada,
       max(i.value) FILTER (WHERE s.rep_id = 2) AS bo,
       max(i.value) FILTER (WHERE s.rep_id = 3) AS cy,
       max(i.value) FILTER (WHERE s.rep_id = 4) AS di,
       max(i.value) FILTER (WHERE s.rep_id = 5) AS fay,
       max(i.value) FILTER (WHERE s.rep_id = 6) AS gus
  FROM salesmgmt.scorecard s
  JOIN salesmgmt.scorecard_item i ON i.scorecard_id = s.scorecard_id
  JOIN salesmgmt.kpi k ON k.kpi_id = i.kpi_id
 WHERE s.scheme_id = 3
 GROUP BY k.code, k.kpi_id ORDER BY k.kpi_id;
SELECT count(*) FILTER (WHERE rep_id = 7) AS hal_scorecards, count(*) AS scorecards
  FROM salesmgmt.scorecard WHERE scheme_id = 3;

-- ------------------------------------------------- the field scheme, scored
INSERT INTO salesmgmt.kpi (kpi_id, code, name, metric, direction, method, target, floor, cap, unit) VALUES
    (101, 'f_revenue', 'Revenue', 'revenue_won', 'higher', 'achievement', 10000, NULL, 120, 'USD'),
    (102, 'f_win', 'Win rate', 'win_rate', 'higher', 'band', 70, 20, 100, '%'),
    (103, 'f_cycle', 'Sales cycle', 'sales_cycle_days', 'lower', 'reduction', 30, NULL, 150, 'days'),
    (104, 'f_meetings', 'Meetings', 'meetings', 'higher', 'threshold', 2, NULL, 100, 'count'),
    (105, 'f_csat', 'CSAT', 'csat_avg', 'higher', 'band', 5, 2, 100, '1-5'),
    (106, 'f_discipline', 'Discipline', 'attitude_discipline', 'higher', 'achievement', 4, 2, 110, '1-5');
INSERT INTO salesmgmt.kpi_scheme (scheme_id, name, grade_bands)
VALUES (1, 'Field Q1', '{"A": 90, "B": 75, "C": 60, "D": 40, "E": 0}');
-- weights are checked at commit, so they can be entered one by one
BEGIN;
INSERT INTO salesmgmt.kpi_scheme_item VALUES (1, 101, 30);
INSERT INTO salesmgmt.kpi_scheme_item VALUES (1, 102, 15), (1, 103, 15);
INSERT INTO salesmgmt.kpi_scheme_item VALUES (1, 104, 10), (1, 105, 15), (1, 106, 15);
COMMIT;
-- Bo:  revenue 110; win (66.6667 - 20) x 2 = 93.33; cycle 100; meetings 3 >= 2:
--      100; CSAT (4.5 - 2) / 3 = 83.33; discipline 4.5 / 4 = 112.5, cap 110.
--      (3300 + 1399.95 + 1500 + 1000 + 1249.95 + 1650) / 100 = 101.00 (A)
-- Cy:  revenue 80; win 160, cap 100; cycle 100 - (26.6667 - 30) / 30 x 100 =
--      111.11; meetings 1 < 2: 0; no CSAT; discipline 1 below the floor 2: 0.
--      Coverage 85: (2400 + 1500 + 1666.65) / 85 = 65.49 (C)
-- Di:  revenue 50; win (33.3333 - 20) x 2 = 26.67; cycle 60: 0; meetings 100;
--      CSAT 33.33; no review.  (1500 + 400.05 + 1000 + 499.95) / 85 = 40.00 (D)
-- Fay, Gus: revenue 0, meetings 0, discipline 100: 1500 / 55 = 27.27 (E), tied
-- Ada: revenue 0 and meetings 0 only: 0.00 (E)
SELECT rep_id, score, grade, rank FROM salesmgmt.compute_scorecards(1, '2026-01-01', '2026-03-31');
-- the details explain every number; Cy's CSAT weight went to the others
SELECT jsonb_pretty(details) FROM salesmgmt.compute_scorecards(1, '2026-01-01', '2026-03-31') WHERE rep_id = 3;
SELECT s.rep_id, s.score, s.coverage, k.code, i.value, i.score AS kpi_score, i.weight, i.effective_weight
  FROM salesmgmt.scorecard s
  JOIN salesmgmt.scorecard_item i ON i.scorecard_id = s.scorecard_id
  JOIN salesmgmt.kpi k ON k.kpi_id = i.kpi_id
 WHERE s.scheme_id = 1 AND s.rep_id IN (3, 4)
 ORDER BY s.rep_id, k.kpi_id;
-- the effective weights of a rep add up to 100 (up to their rounding)
SELECT s.rep_id, sum(i.effective_weight) AS effective_total
  FROM salesmgmt.scorecard s JOIN salesmgmt.scorecard_item i ON i.scorecard_id = s.scorecard_id
 WHERE s.scheme_id = 1 GROUP BY s.rep_id ORDER BY s.rep_id;

-- ------------------------------------ no data at all: no score, no rank
INSERT INTO salesmgmt.kpi (kpi_id, code, name, metric, direction, method, target, floor, cap) VALUES
    (111, 'a_teamwork', 'Teamwork', 'attitude_teamwork', 'higher', 'band', 5, 1, 100),
    (112, 'a_service', 'Customer service', 'attitude_customer_service', 'higher', 'threshold', 4, NULL, 100);
INSERT INTO salesmgmt.kpi_scheme (scheme_id, name) VALUES (2, 'Attitude');
BEGIN;
INSERT INTO salesmgmt.kpi_scheme_item VALUES (2, 111, 60), (2, 112, 40);
COMMIT;
-- Bo: teamwork (4 - 1) / 4 = 75, service 4 >= 4: 100 -> 85.00 (B); Fay and Gus
-- the same: three share rank 1; Cy 25 and 0 -> 15.00 (D), rank 4; Ada and Di
-- have no review: no score, grade or rank
SELECT rep_id, score, grade, rank FROM salesmgmt.compute_scorecards(2, '2026-01-01', '2026-03-31');
SELECT rep_id, score, grade, rank, coverage FROM salesmgmt.scorecard WHERE scheme_id = 2 AND score IS NULL ORDER BY rep_id;

-- ----------------------------------------- recomputing replaces the period
SELECT count(*) AS before, min(scorecard_id) AS first_id FROM salesmgmt.scorecard WHERE scheme_id = 1 \gset
UPDATE salesmgmt.kpi SET target = 20000 WHERE kpi_id = 101;
SELECT rep_id, score, rank FROM salesmgmt.compute_scorecards(1, '2026-01-01', '2026-03-31') WHERE rep_id IN (2, 3);
SELECT count(*) = :before AS same_count, min(scorecard_id) > :first_id AS new_rows,
       (SELECT count(*) FROM salesmgmt.scorecard_item i JOIN salesmgmt.scorecard s USING (scorecard_id)
         WHERE s.scheme_id = 1) AS items
  FROM salesmgmt.scorecard WHERE scheme_id = 1;
-- the stored line keeps the target it was scored with; another period is kept apart
SELECT DISTINCT i.target FROM salesmgmt.scorecard_item i WHERE i.kpi_id = 101;
SELECT count(*) AS q2_cards FROM salesmgmt.compute_scorecards(1, '2026-04-01', '2026-06-30');
SELECT period_start, count(*) FROM salesmgmt.scorecard WHERE scheme_id = 1 GROUP BY 1 ORDER BY 1;
UPDATE salesmgmt.kpi SET target = 10000 WHERE kpi_id = 101;
SELECT count(*) FROM salesmgmt.compute_scorecards(1, '2026-01-01', '2026-03-31');

-- --------------------------------------- leaderboard and recognitions
SELECT rep_id, kind, title, amount, currency, reason
  FROM salesmgmt.grant_recognitions(1, '2026-01-01', '2026-03-31', 1, 'award', 'Top performer Q1');
SELECT rep_id, kind, title FROM salesmgmt.grant_recognitions(2, '2026-01-01', '2026-03-31', 1, 'badge', 'Team player', p_granted_by => 1);
INSERT INTO salesmgmt.recognition (rep_id, kind, title, period_start, amount, currency, granted_by)
VALUES (3, 'bonus', 'Q1 stretch bonus', '2026-01-01', 500, 'USD', 1);
-- the latest period of each scheme (Q2 for the field scheme, computed last,
-- ends later than Q1): Q1 of Every metric and Attitude
SELECT scheme_name, period_start, rank, rep_name, score, grade, recognitions
  FROM salesmgmt.leaderboard ORDER BY scheme_id, rank NULLS LAST, rep_id;
DELETE FROM salesmgmt.scorecard WHERE scheme_id = 1 AND period_start = '2026-04-01';
SELECT scheme_name, period_start, rank, rep_name, score, grade, recognitions
  FROM salesmgmt.leaderboard WHERE scheme_id = 1 ORDER BY rank NULLS LAST, rep_id;
-- recognitions: granting twice, a bonus without amount, a self-award
SELECT count(*) FROM salesmgmt.grant_recognitions(1, '2026-01-01', '2026-03-31', 1, 'award', 'Top performer Q1');
INSERT INTO salesmgmt.recognition (rep_id, kind, title) VALUES (2, 'bonus', 'No amount');
INSERT INTO salesmgmt.recognition (rep_id, kind, title, granted_by) VALUES (2, 'badge', 'Me', 2);
INSERT INTO salesmgmt.recognition (rep_id, kind, title) VALUES (2, 'medal', 'Gold');
SELECT count(*) FROM salesmgmt.grant_recognitions(1, '2027-01-01', '2027-03-31', 1, 'award', 'Nothing computed');

-- --------------------------------------------------------- target pacing
-- quotas relative to today so that the output does not depend on the date:
-- 100 days, 50 elapsed (50%)
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES (2, 'Pacing', 1), (3, 'Pacing squad', 2);
INSERT INTO salesmgmt.rep (rep_id, name, email, team_id) VALUES
    (8, 'Ivy', 'ivy@example.com', 3), (9, 'Jo', 'jo@example.com', 3);
INSERT INTO salesmgmt.quota (quota_id, rep_id, team_id, period_start, period_end, amount) VALUES
    (101, 8, NULL, current_date - 50, current_date + 49, 10000),
    (102, 9, NULL, current_date - 50, current_date + 49, 1000),
    (103, NULL, 2, current_date - 50, current_date + 49, 20000),
    (104, 7, NULL, '2020-01-01', '2020-03-31', 5000),
    (105, 9, NULL, current_date + 10, current_date + 40, 1000),
    (106, 8, NULL, current_date - 300, current_date - 200, 0);
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
                            created_at, stage_entered_at) VALUES
    (20, 'Ivy deal', 1, 8, 1, 1, 3000, 'USD', current_date - 40, current_date - 40),
    (21, 'Ivy EUR deal', 1, 8, 1, 1, 1200, 'EUR', current_date - 40, current_date - 40),
    (22, 'Jo deal', 1, 9, 1, 1, 600, 'USD', current_date - 40, current_date - 40),
    (23, 'Jo lost', 1, 9, 1, 1, 900, 'USD', current_date - 40, current_date - 40);
UPDATE salesmgmt.deal SET stage_id = CASE WHEN deal_id = 23 THEN 3 ELSE 2 END,
       stage_entered_at = current_date - 10 + time '12:00'
 WHERE deal_id >= 20;
-- Ivy: 3000 + 1200 EUR x 1.25 = 4500 of 10000: 45% at 50%: cautioned;
-- Jo: 600 of 1000: on track; the team (Ivy + Jo, sub-team included):
-- 5100 of 20000 = 25.5%: off track; Hal in 2020: 0% of a past quota;
-- Jo's future quota: nothing expected yet; a zero quota is on track
SELECT quota_id, rep_id, team_id, amount, attained, elapsed_pct, expected, attained_pct, gap_points, status
  FROM salesmgmt.target_pacing WHERE quota_id > 100 ORDER BY quota_id;

-- ----------------------------------------- bad input, refused with reasons
-- ratings and survey answers out of range
INSERT INTO salesmgmt.review (rep_id, reviewer_rep_id, period_start, period_end, discipline) VALUES (2, 1, '2026-04-01', '2026-06-30', 6);
INSERT INTO salesmgmt.review (rep_id, reviewer_rep_id, period_start, period_end, teamwork) VALUES (2, 1, '2026-04-01', '2026-06-30', 0);
INSERT INTO salesmgmt.review (rep_id, reviewer_rep_id, period_start, period_end, customer_service) VALUES (2, 1, '2026-04-01', '2026-06-30', 9);
INSERT INTO salesmgmt.review (rep_id, reviewer_rep_id, period_start, period_end) VALUES (2, 1, '2026-04-01', '2026-06-30');
INSERT INTO salesmgmt.review (rep_id, reviewer_rep_id, period_start, period_end, discipline) VALUES (2, 2, '2026-04-01', '2026-06-30', 3);
INSERT INTO salesmgmt.review (rep_id, reviewer_rep_id, period_start, period_end, discipline) VALUES (2, 1, '2026-06-30', '2026-04-01', 3);
INSERT INTO salesmgmt.csat_response (account_id, rep_id, csat) VALUES (1, 2, 6);
INSERT INTO salesmgmt.csat_response (account_id, rep_id, csat) VALUES (1, 2, 0);
INSERT INTO salesmgmt.csat_response (account_id, rep_id, nps) VALUES (1, 2, 11);
INSERT INTO salesmgmt.csat_response (account_id, rep_id, nps) VALUES (1, 2, -1);
INSERT INTO salesmgmt.csat_response (account_id, rep_id) VALUES (1, 2);
INSERT INTO salesmgmt.csat_response (account_id, deal_id, csat) VALUES (2, 1, 4);
INSERT INTO salesmgmt.training_enrollment (rep_id, course_id, status) VALUES (4, 1, 'passed');
INSERT INTO salesmgmt.training_enrollment (rep_id, course_id, status) VALUES (4, 1, 'completed');
INSERT INTO salesmgmt.training_enrollment (rep_id, course_id, status, score, completed_at) VALUES (4, 1, 'completed', 101, now());
-- KPI definitions
INSERT INTO salesmgmt.kpi (code, name, metric, target) VALUES ('x1', 'x', 'happiness', 1);
INSERT INTO salesmgmt.kpi (code, name, metric, target, cap) VALUES ('x2', 'x', 'deals_won', 1, -10);
INSERT INTO salesmgmt.kpi (code, name, metric, method, target) VALUES ('x3', 'x', 'deals_won', 'achievement', 0);
INSERT INTO salesmgmt.kpi (code, name, metric, direction, method, target) VALUES ('x4', 'x', 'sales_cycle_days', 'lower', 'achievement', 30);
INSERT INTO salesmgmt.kpi (code, name, metric, method, target) VALUES ('x5', 'x', 'win_rate', 'band', 50);
INSERT INTO salesmgmt.kpi (code, name, metric, method, target, floor) VALUES ('x6', 'x', 'win_rate', 'band', 50, 60);
INSERT INTO salesmgmt.kpi (code, name, metric, method, target) VALUES ('x7', 'x', 'win_rate', 'guess', 50);
INSERT INTO salesmgmt.kpi (code, name, metric, target) VALUES ('x8', 'x', 'custom', 1);
INSERT INTO salesmgmt.kpi (code, name, metric, metric_function, target) VALUES ('x9', 'x', 'win_rate', 'referrals', 1);
INSERT INTO salesmgmt.kpi (code, name, metric, metric_function, target) VALUES ('x10', 'x', 'custom', 'no_such_function', 1);
INSERT INTO salesmgmt.kpi (code, name, metric, metric_function, target) VALUES ('x11', 'x', 'custom', 'referrals(date, date); DROP TABLE referral; --', 1);
CREATE FUNCTION wrong_shape(p_from date, p_to date) RETURNS TABLE (rep_id bigint, value float8)
LANGUAGE sql AS $$ SELECT 1::bigint, 1::float8 $$;
INSERT INTO salesmgmt.kpi (code, name, metric, metric_function, target) VALUES ('x12', 'x', 'custom', 'wrong_shape', 1);
CREATE FUNCTION one_date(p_from date) RETURNS TABLE (rep_id bigint, value numeric)
LANGUAGE sql AS $$ SELECT 1::bigint, 1::numeric $$;
INSERT INTO salesmgmt.kpi (code, name, metric, metric_function, target) VALUES ('x13', 'x', 'custom', 'one_date', 1);
INSERT INTO salesmgmt.kpi (code, name, metric, target) VALUES ('Bad Code', 'x', 'deals_won', 1);
UPDATE salesmgmt.kpi SET cap = -1 WHERE kpi_id = 101;
SELECT count(*) AS referral_rows_still_there FROM referral;
-- grade bands
INSERT INTO salesmgmt.kpi_scheme (name, grade_bands) VALUES ('b1', '[90, 0]');
INSERT INTO salesmgmt.kpi_scheme (name, grade_bands) VALUES ('b2', '{}');
INSERT INTO salesmgmt.kpi_scheme (name, grade_bands) VALUES ('b3', '{"A": 90, "B": 50}');
INSERT INTO salesmgmt.kpi_scheme (name, grade_bands) VALUES ('b4', '{"A": "high", "B": 0}');
INSERT INTO salesmgmt.kpi_scheme (name, grade_bands) VALUES ('b5', '{"A": 90, "B": 90, "C": 0}');
INSERT INTO salesmgmt.kpi_scheme (name, grade_bands) VALUES ('b6', '{"A": 90, "B": -5, "C": 0}');
-- the detail and hint say what to do
\set VERBOSITY default
INSERT INTO salesmgmt.kpi (code, name, metric, target) VALUES ('x14', 'x', 'happiness', 1);
INSERT INTO salesmgmt.kpi (code, name, metric, method, target, floor) VALUES ('x15', 'x', 'win_rate', 'band', 50, 60);
SELECT salesmgmt.kpi_score(1, 0, 'achievement');
\set VERBOSITY terse
-- weights: not 100 at commit; a weight out of range
BEGIN;
INSERT INTO salesmgmt.kpi_scheme_item VALUES (2, 101, 10);
COMMIT;
BEGIN;
UPDATE salesmgmt.kpi_scheme_item SET weight = 50 WHERE scheme_id = 2 AND kpi_id = 111;
COMMIT;
INSERT INTO salesmgmt.kpi_scheme_item VALUES (2, 101, 0);
INSERT INTO salesmgmt.kpi_scheme_item VALUES (2, 101, 101);
SELECT scheme_id, sum(weight) FROM salesmgmt.kpi_scheme_item GROUP BY 1 ORDER BY 1;
-- moving a KPI between schemes checks both
BEGIN;
UPDATE salesmgmt.kpi_scheme_item SET scheme_id = 2 WHERE scheme_id = 1 AND kpi_id = 104;
COMMIT;
-- deleting a scheme takes its items and scorecards along
BEGIN;
DELETE FROM salesmgmt.kpi_scheme WHERE scheme_id = 2;
SELECT count(*) AS attitude_cards_left FROM salesmgmt.scorecard WHERE scheme_id = 2;
ROLLBACK;
-- computing: unknown scheme, a scheme without KPIs, a period backwards,
-- nulls, weights not (yet) 100 inside a transaction
SELECT * FROM salesmgmt.compute_scorecards(99, '2026-01-01', '2026-03-31');
INSERT INTO salesmgmt.kpi_scheme (scheme_id, name) VALUES (4, 'Empty');
\set VERBOSITY default
SELECT * FROM salesmgmt.compute_scorecards(4, '2026-01-01', '2026-03-31');
\set VERBOSITY terse
SELECT * FROM salesmgmt.compute_scorecards(1, '2026-03-31', '2026-01-01');
SELECT * FROM salesmgmt.compute_scorecards(1, NULL, '2026-03-31');
SELECT * FROM salesmgmt.compute_scorecards(1, '2026-01-01', 'infinity');
BEGIN;
DELETE FROM salesmgmt.kpi_scheme_item WHERE scheme_id = 1 AND kpi_id = 104;
SELECT * FROM salesmgmt.compute_scorecards(1, '2026-01-01', '2026-03-31');
ROLLBACK;
-- a custom metric function that misbehaves
INSERT INTO referral VALUES (99, 1);
SELECT count(*) FROM salesmgmt.compute_scorecards(3, '2026-01-01', '2026-03-31');
DELETE FROM referral WHERE rep_id = 99;
INSERT INTO referral VALUES (2, 4);
SELECT count(*) FROM salesmgmt.compute_scorecards(3, '2026-01-01', '2026-03-31');
DELETE FROM referral WHERE rep_id = 2 AND n = 4;
INSERT INTO referral VALUES (NULL, 4);
SELECT count(*) FROM salesmgmt.compute_scorecards(3, '2026-01-01', '2026-03-31');
DELETE FROM referral WHERE rep_id IS NULL;
UPDATE referral SET n = 'NaN' WHERE rep_id = 2;
SELECT count(*) FROM salesmgmt.compute_scorecards(3, '2026-01-01', '2026-03-31');
UPDATE referral SET n = 3 WHERE rep_id = 2;
-- dropped after the KPI was saved
ALTER FUNCTION referrals(date, date) RENAME TO referrals_old;
SELECT count(*) FROM salesmgmt.compute_scorecards(3, '2026-01-01', '2026-03-31');
ALTER FUNCTION referrals_old(date, date) RENAME TO referrals;
-- a missing exchange rate is an error, not a zero
UPDATE salesmgmt.deal SET currency = 'GBP' WHERE deal_id = 2;
SELECT count(*) FROM salesmgmt.compute_scorecards(1, '2026-01-01', '2026-03-31');
UPDATE salesmgmt.deal SET currency = 'EUR' WHERE deal_id = 2;
-- none of the refused computations changed the stored scorecards
SELECT scheme_id, count(*), sum(score) FROM salesmgmt.scorecard GROUP BY 1 ORDER BY 1;

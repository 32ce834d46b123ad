-- pipeline_views: the BI views over a small history worked out by hand.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
\set VERBOSITY terse
SET TimeZone = 'UTC';

INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Ada', 1);
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
SELECT salesmgmt.create_pipeline('Direct', $$[
    {"name": "Qualify", "probability": 0.1, "max_days_in_stage": 10},
    {"name": "Propose", "probability": 0.4, "max_days_in_stage": 20},
    {"name": "Won", "outcome": "won"},
    {"name": "Lost", "outcome": "lost"}]$$);

-- D1: Qualify 10 days, Propose 20 days, won.   D2: Qualify 4 days, Propose 10 days, lost.
-- D3: Qualify 2 days, lost.   D4: in Qualify since 2024-02-01 (override 0.5).
-- D5: imported straight into Propose on 2024-03-01, in EUR.   D6: new today.
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency, probability, stage_entered_at)
VALUES (1, 'D1', 1, 1, 1, 1, 1000, 'USD', NULL, '2024-01-01'),
       (2, 'D2', 1, 1, 1, 1, 2000, 'USD', NULL, '2024-01-01'),
       (3, 'D3', 1, 1, 1, 1, 500, 'USD', NULL, '2024-01-01'),
       (4, 'D4', 1, 1, 1, 1, 300, 'USD', 0.5, '2024-02-01'),
       (5, 'D5', 1, 1, 1, 2, 4000, 'EUR', NULL, '2024-03-01');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
VALUES (6, 'D6', 1, 1, 1, 1, 100);
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2024-01-11' WHERE deal_id = 1;
UPDATE salesmgmt.deal SET stage_id = 3, stage_entered_at = '2024-01-31' WHERE deal_id = 1;
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2024-01-05' WHERE deal_id = 2;
UPDATE salesmgmt.deal SET stage_id = 4, stage_entered_at = '2024-01-15' WHERE deal_id = 2;
UPDATE salesmgmt.deal SET stage_id = 4, stage_entered_at = '2024-01-03' WHERE deal_id = 3;

-- board: Qualify holds D4 (300 x 0.5 = 150) and D6 (100 x 0.1 = 10); Propose holds D5 (4000 EUR x 0.4)
SELECT pipeline, stage, position, stage_probability, currency, open_deals, amount, weighted_amount
  FROM salesmgmt.pipeline_board ORDER BY position, currency;
-- funnel: Qualify reached by D1 D2 D3 D4 D6, of which D1 and D2 got further (2/5), D1 won (1/5);
-- Propose reached by D1 D2 D5: D1 got further and won (1/3)
SELECT stage, position, outcome, deals_reached, next_stage_share, won_share
  FROM salesmgmt.stage_funnel ORDER BY position;
-- durations: Qualify 10, 4 and 2 days (average 5 1/3 days, median 4); Propose 20 and 10 days
SELECT stage, completed_stays, avg_duration, median_duration, avg_days, median_days
  FROM salesmgmt.stage_durations ORDER BY position;
-- stalled: D4 (10 days allowed in Qualify) and D5 (20 in Propose); not D6, not the closed ones
SELECT deal_id, stage, max_days_in_stage, days_over > 0 AS over, days_in_stage - days_over = max_days_in_stage AS consistent
  FROM salesmgmt.stalled_deals ORDER BY deal_id;

-- a board for an empty stage still shows the stage
SELECT salesmgmt.create_pipeline('Empty', '[{"name": "Only", "probability": 0.3}]');
SELECT pipeline, stage, currency, open_deals, amount, weighted_amount
  FROM salesmgmt.pipeline_board WHERE pipeline = 'Empty';

-- every view and every view column is documented
SELECT c.relname FROM pg_class c
 WHERE c.oid IN ('salesmgmt.pipeline_board'::regclass, 'salesmgmt.stage_funnel'::regclass,
                 'salesmgmt.stage_durations'::regclass, 'salesmgmt.stalled_deals'::regclass)
   AND obj_description(c.oid, 'pg_class') IS NULL;
SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
 WHERE c.oid IN ('salesmgmt.pipeline_board'::regclass, 'salesmgmt.stage_funnel'::regclass,
                 'salesmgmt.stage_durations'::regclass, 'salesmgmt.stalled_deals'::regclass)
   AND a.attnum > 0 AND col_description(c.oid, a.attnum) IS NULL;
-- and reads deals as the caller (row-level security applies)
SELECT c.relname, c.reloptions FROM pg_class c
 WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relname IN ('pipeline_board', 'stage_funnel', 'stage_durations', 'stalled_deals') ORDER BY 1;

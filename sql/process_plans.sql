-- process_plans: sales plans with versioned items, append-only reviews,
-- and plan_progress paced like target_pacing.  Bad input changes nothing.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
-- the settings this script relies on (a database may set others)
SET salesmgmt.reporting_currency = 'USD';
SET salesmgmt.change_note = '';
\set VERBOSITY default
\set SHOW_CONTEXT never

INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales'), (2, 'East');
UPDATE salesmgmt.team SET parent_team_id = 1 WHERE team_id = 2;
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Mia', 1), (2, 'Ada', 2), (3, 'Bo', 2);
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id, created_at) VALUES
    (1, 'Acme', 2, '2025-01-10'), (2, 'Globex', 3, '2025-02-10');
SELECT salesmgmt.create_pipeline('P', '[{"name": "Open", "probability": 0.5}, {"name": "Won", "outcome": "won"}]');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, stage_entered_at)
    VALUES (1, 'A', 1, 2, 1, 1, 30000, '2025-01-15'), (2, 'B', 2, 3, 1, 1, 10000, '2025-01-20');
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2025-02-01' WHERE deal_id = 1;
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2025-02-15' WHERE deal_id = 2;
INSERT INTO salesmgmt.activity (kind, account_id, rep_id, occurred_at) VALUES
    ('call', 1, 2, '2025-01-11'), ('call', 1, 2, '2025-01-12'), ('visit', 1, 2, '2025-01-13'),
    ('demo', 2, 3, '2025-02-11');
INSERT INTO salesmgmt.sales_task (task_id, rep_id, title, status, completed_at) VALUES
    (1, 2, 'Map the buying committee at Acme', 'done', '2025-01-20'), (2, 3, 'Reference call for Globex', 'open', NULL);

-- a rep plan (a past period: elapsed 100%) and a team plan
INSERT INTO salesmgmt.sales_plan (plan_id, rep_id, period_start, period_end, title, strategy, status)
    VALUES (1, 2, '2025-01-01', '2025-03-31', 'Ada Q1', 'Land two manufacturers', 'active');
INSERT INTO salesmgmt.sales_plan (plan_id, team_id, period_start, period_end, title, status)
    VALUES (2, 2, '2025-01-01', '2025-03-31', 'East Q1', 'active');
INSERT INTO salesmgmt.sales_plan_item (plan_id, kind, metric, target) VALUES
    (1, 'target', 'revenue_won', 25000), (1, 'target', 'calls', 4), (1, 'target', 'visits', 1),
    (2, 'target', 'revenue_won', 50000), (2, 'target', 'new_accounts', 2), (2, 'target', 'demos', 1);
INSERT INTO salesmgmt.sales_plan_item (plan_id, kind, task_id) VALUES (1, 'task', 1), (2, 'task', 2);
SELECT plan_id, item_key, version, metric, task, target, actual, elapsed_pct, attained_pct, status
  FROM salesmgmt.plan_progress ORDER BY plan_id, item_key;

-- a review lowers the calls target: a new version, the old one stays
INSERT INTO salesmgmt.sales_plan_review (review_id, plan_id, review_date, reviewer_rep_id, notes)
    VALUES (1, 1, '2025-02-01', 1, 'Calls replaced by visits at Acme');
INSERT INTO salesmgmt.sales_plan_item (plan_id, item_key, kind, metric, target, note, review_id)
    VALUES (1, 2, 'target', 'calls', 2, 'fewer, better calls', 1);
SELECT item_id, item_key, version, target, review_id FROM salesmgmt.sales_plan_item WHERE plan_id = 1 AND item_key = 2 ORDER BY version;
SELECT item_key, version, metric, target, actual, status FROM salesmgmt.plan_progress WHERE plan_id = 1 AND item_key = 2;

-- append-only: reviews and items are never overwritten
UPDATE salesmgmt.sales_plan_item SET target = 1 WHERE item_id = 2;
DELETE FROM salesmgmt.sales_plan_review WHERE review_id = 1;

-- bad input
\set VERBOSITY terse
INSERT INTO salesmgmt.sales_plan (rep_id, team_id, period_start, period_end, title) VALUES (2, 2, '2025-01-01', '2025-03-31', 'X');
INSERT INTO salesmgmt.sales_plan (rep_id, period_start, period_end, title) VALUES (2, '2025-03-01', '2025-01-31', 'X');
INSERT INTO salesmgmt.sales_plan (rep_id, period_start, period_end, title, status) VALUES (2, '2025-01-01', '2025-03-31', 'X', 'maybe');
INSERT INTO salesmgmt.sales_plan_item (plan_id, kind, metric, target) VALUES (1, 'target', 'happiness', 5);
INSERT INTO salesmgmt.sales_plan_item (plan_id, kind, metric, target) VALUES (1, 'target', 'calls', -5);
INSERT INTO salesmgmt.sales_plan_item (plan_id, kind, metric, target) VALUES (1, 'target', 'calls', NULL);
INSERT INTO salesmgmt.sales_plan_item (plan_id, kind, task_id) VALUES (1, 'task', NULL);
INSERT INTO salesmgmt.sales_plan_item (plan_id, item_key, kind, metric, target) VALUES (1, 999, 'target', 'calls', 3);
INSERT INTO salesmgmt.sales_plan_item (plan_id, kind, metric, target) VALUES (999, 'target', 'calls', 3);
INSERT INTO salesmgmt.sales_plan_review (plan_id, notes) VALUES (1, ' ');
\set VERBOSITY default
SELECT (SELECT count(*) FROM salesmgmt.sales_plan) AS plans, (SELECT count(*) FROM salesmgmt.sales_plan_item) AS items,
       (SELECT count(*) FROM salesmgmt.sales_plan_review) AS reviews;

-- row-level security: Ada sees her plan and her team's; Bo does not see Ada's
CREATE ROLE regress_proc_bo LOGIN;
GRANT salesmgmt_rep TO regress_proc_bo;
UPDATE salesmgmt.rep SET db_role = 'regress_proc_bo' WHERE rep_id = 3;
SET ROLE regress_proc_bo;
SELECT plan_id, title FROM salesmgmt.sales_plan ORDER BY plan_id;
SELECT DISTINCT plan_id FROM salesmgmt.sales_plan_item ORDER BY plan_id;
INSERT INTO salesmgmt.sales_plan (rep_id, period_start, period_end, title) VALUES (2, '2025-01-01', '2025-03-31', 'not mine');
INSERT INTO salesmgmt.sales_plan (plan_id, rep_id, period_start, period_end, title) VALUES (50, 3, '2025-01-01', '2025-03-31', 'my id');
INSERT INTO salesmgmt.sales_plan (rep_id, period_start, period_end, title) VALUES (3, '2025-01-01', '2025-03-31', 'Bo Q1')
    RETURNING rep_id, title;
RESET ROLE;
DROP OWNED BY regress_proc_bo;
DROP ROLE regress_proc_bo;

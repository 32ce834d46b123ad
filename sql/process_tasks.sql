-- process_tasks: stage tasks, checklists that gate a stage.  Tasks are
-- created when a deal enters a stage (INSERT, UPDATE, bulk UPDATE,
-- move_deal); a deal may not step forward while a required task of its
-- stage is open (SM070); a move to lost cancels them.  Bad input leaves
-- nothing behind.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
-- the settings this script relies on (a database may set others)
SET salesmgmt.reporting_currency = 'USD';
SET salesmgmt.change_note = '';
\set VERBOSITY default
\set SHOW_CONTEXT never

INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Mia (manager)', 1), (2, 'Ada', 1), (3, 'Bo', 1);
UPDATE salesmgmt.team SET manager_rep_id = 1 WHERE team_id = 1;
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
SELECT salesmgmt.create_pipeline('New business', $$[
    {"name": "Qualify",   "probability": 0.1},
    {"name": "Propose",   "probability": 0.4},
    {"name": "Negotiate", "probability": 0.7},
    {"name": "Won",       "outcome": "won"},
    {"name": "Lost",      "outcome": "lost"}]$$) AS pipeline_id;
INSERT INTO salesmgmt.stage_task_template (stage_id, title, required, due_days, assignee, position) VALUES
    (1, 'Call the buyer', true, 3, 'owner', 1),
    (1, 'Send the deck', false, NULL, 'owner', 2),
    (2, 'Pricing approved by the manager', true, 5, 'owner_manager', 1),
    (3, 'Legal review', true, 10, 'owner', 1);

-- bad templates are refused
\set VERBOSITY terse
INSERT INTO salesmgmt.stage_task_template (stage_id, title) VALUES (1, '  ');
INSERT INTO salesmgmt.stage_task_template (stage_id, title, assignee) VALUES (1, 'X', 'someone');
INSERT INTO salesmgmt.stage_task_template (stage_id, title, due_days) VALUES (1, 'X', -1);
INSERT INTO salesmgmt.stage_task_template (stage_id, title) VALUES (99, 'X');
\set VERBOSITY default
SELECT count(*) AS templates FROM salesmgmt.stage_task_template;

-- a new deal gets the tasks of its stage, in the same statement
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, stage_entered_at)
    VALUES (1, 'Rollout', 1, 2, 1, 1, 1000, '2026-01-05 10:00+00');
SELECT task_id, rep_id, deal_id, stage_id, template_id, title, required, status, due_date
  FROM salesmgmt.sales_task ORDER BY task_id;

-- forward while a required task is open: SM070, with the tasks
UPDATE salesmgmt.deal SET stage_id = 2 WHERE deal_id = 1;
SELECT salesmgmt.move_deal(1, 'Won');
SELECT name FROM salesmgmt.allowed_next_stages(1);
SELECT * FROM salesmgmt.deal_checklist(1);
-- the optional task does not block; the required one does until done
UPDATE salesmgmt.sales_task SET status = 'done', completed_at = '2026-01-06 09:00+00' WHERE task_id = 1;
SELECT name FROM salesmgmt.allowed_next_stages(1);
SELECT deal_id, stage_id FROM salesmgmt.move_deal(1, 'Propose', 'called the buyer');
-- the manager's task for the new stage
SELECT task_id, rep_id, stage_id, title, required, status, due_date = current_date + 5 AS due_in_5_days
  FROM salesmgmt.sales_task WHERE deal_id = 1 ORDER BY task_id;
SELECT item, task_id, title, required, status, rep_id, blocks_forward_move FROM salesmgmt.deal_checklist(1);

-- back to Qualify: allowed with open tasks; done tasks are not repeated
SET client_min_messages = warning;
INSERT INTO salesmgmt.stage_transition VALUES (1, 2, 1);
RESET client_min_messages;
UPDATE salesmgmt.deal SET stage_id = 1 WHERE deal_id = 1;
SELECT task_id, stage_id, title, status FROM salesmgmt.sales_task WHERE deal_id = 1 ORDER BY task_id;

-- to lost: allowed, and the open stage tasks are cancelled
UPDATE salesmgmt.deal SET stage_id = 5, lost_reason = 'budget' WHERE deal_id = 1;
SELECT task_id, stage_id, title, status FROM salesmgmt.sales_task WHERE deal_id = 1 ORDER BY task_id;

-- a bulk UPDATE: one deal with an open required task stops the statement
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
    VALUES (2, 'A', 1, 2, 1, 1, 10), (3, 'B', 1, 3, 1, 1, 20);
UPDATE salesmgmt.sales_task SET due_date = '2026-01-08' WHERE deal_id IN (2, 3);
UPDATE salesmgmt.sales_task SET status = 'done', completed_at = now() WHERE deal_id = 2 AND required;
SELECT count(*) AS tasks_before FROM salesmgmt.sales_task \gset
UPDATE salesmgmt.deal SET stage_id = 2 WHERE deal_id IN (2, 3);
SELECT deal_id, stage_id FROM salesmgmt.deal WHERE deal_id IN (2, 3) ORDER BY deal_id;
SELECT count(*) = :tasks_before AS nothing_created FROM salesmgmt.sales_task;
UPDATE salesmgmt.sales_task SET status = 'done', completed_at = now() WHERE deal_id = 3 AND required;
UPDATE salesmgmt.deal SET stage_id = 2 WHERE deal_id IN (2, 3);
SELECT deal_id, rep_id, title FROM salesmgmt.sales_task WHERE stage_id = 2 AND deal_id IN (2, 3) ORDER BY deal_id;

-- a template added now applies to the next entry (the cache is reloaded)
INSERT INTO salesmgmt.stage_task_template (stage_id, title, required) VALUES (3, 'Security questionnaire', false);
UPDATE salesmgmt.sales_task SET status = 'done', completed_at = now() WHERE deal_id = 2 AND stage_id = 2;
SELECT deal_id, stage_id FROM salesmgmt.move_deal(2, 'Negotiate');
UPDATE salesmgmt.sales_task SET due_date = '2026-01-20' WHERE deal_id = 2 AND stage_id = 3;
SELECT title, required FROM salesmgmt.sales_task WHERE deal_id = 2 AND stage_id = 3 ORDER BY task_id;

-- reps complete their stage tasks but do not cancel, delete or detach them
CREATE ROLE regress_proc_ada LOGIN;
GRANT salesmgmt_rep TO regress_proc_ada;
UPDATE salesmgmt.rep SET db_role = 'regress_proc_ada' WHERE rep_id = 2;
SET ROLE regress_proc_ada;
UPDATE salesmgmt.sales_task SET status = 'cancelled' WHERE deal_id = 2 AND stage_id = 3 AND required;
DELETE FROM salesmgmt.sales_task WHERE deal_id = 2 AND stage_id = 3 AND required;
UPDATE salesmgmt.sales_task SET required = false WHERE deal_id = 2 AND stage_id = 3 AND required;
UPDATE salesmgmt.sales_task SET stage_id = 1 WHERE deal_id = 2 AND stage_id = 3 AND required;
-- the optional one may be cancelled; the checklist shows the manager's task too
UPDATE salesmgmt.sales_task SET status = 'cancelled' WHERE deal_id = 2 AND stage_id = 3 AND NOT required;
SELECT item, title, required, status, blocks_forward_move FROM salesmgmt.deal_checklist(2);
SELECT salesmgmt.move_deal(2, 'Won');
UPDATE salesmgmt.sales_task SET status = 'done' WHERE deal_id = 2 AND stage_id = 3 AND required;
SELECT deal_id, stage_id FROM salesmgmt.move_deal(2, 'Won');
-- a deal the rep cannot see does not exist for them
SELECT * FROM salesmgmt.deal_checklist(3);
RESET ROLE;

-- bad input
SELECT * FROM salesmgmt.deal_checklist(NULL);
SELECT * FROM salesmgmt.deal_checklist(999);
SELECT salesmgmt._rep_manager(2) AS manager_of_ada, salesmgmt._rep_manager(1) AS manager_of_mia,
       salesmgmt._rep_manager(NULL) AS manager_of_nobody;

DROP OWNED BY regress_proc_ada;
DROP ROLE regress_proc_ada;

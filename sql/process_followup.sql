-- process_followup: follow-up rules remind, escalate and reassign quiet
-- deals and accounts; run_follow_up_rules is idempotent; the discipline
-- views.  Times are given explicitly (p_as_of) so the output is fixed.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
-- the settings this script relies on (a database may set others)
SET salesmgmt.reporting_currency = 'USD';
SET salesmgmt.change_note = '';
\set VERBOSITY default
\set SHOW_CONTEXT never
SET timezone = 'UTC';

INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Mia', 1), (2, 'Ada', 1), (3, 'Pool', 1);
UPDATE salesmgmt.team SET manager_rep_id = 1 WHERE team_id = 1;
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id, industry, created_at, next_follow_up) VALUES
    (1, 'Acme', 2, 'Retail', '2026-01-01', '2026-02-01'), (2, 'Globex', 2, 'Energy', '2026-01-01', NULL);
SELECT salesmgmt.create_pipeline('P', '[{"name": "Open", "probability": 0.5}, {"name": "Won", "outcome": "won"}]');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, created_at,
                            stage_entered_at, next_step, next_step_due) VALUES
    (1, 'Quiet', 1, 2, 1, 1, 1000, '2026-01-01', '2026-01-01', NULL, NULL),
    (2, 'Busy', 1, 2, 1, 1, 1000, '2026-01-01', '2026-01-01', 'Demo', '2026-01-20'),
    (3, 'Big and quiet', 2, 2, 1, 1, 900000, '2026-01-01', '2026-01-01', 'Call CFO', '2026-03-01');
INSERT INTO salesmgmt.activity (kind, account_id, deal_id, rep_id, occurred_at) VALUES
    ('call', 1, 2, 2, '2026-01-28'), ('email', 1, 1, 2, '2026-01-05');

INSERT INTO salesmgmt.follow_up_rule (name, subject, condition, remind_after_days, escalate_after_days,
                                      reassign_after_days, reassign_to) VALUES
    ('Small deals quiet 14 days', 'deal', '{"amount": {"<": 100000}}', 14, 5, 5, 'manager');
INSERT INTO salesmgmt.follow_up_rule (name, subject, trigger_on, remind_after_days, reassign_to, reassign_rep_id) VALUES
    ('Accounts past their follow-up', 'account', 'overdue', 0, 'rep', 3);

-- day 1: the quiet small deal and the overdue account get reminders
SELECT * FROM salesmgmt.run_follow_up_rules('2026-02-01 12:00+00');
-- again: nothing new
SELECT * FROM salesmgmt.run_follow_up_rules('2026-02-01 12:00+00');
SELECT rep_id, deal_id, account_id, title, due_date FROM salesmgmt.sales_task ORDER BY task_id;
-- day 7: still quiet: escalated to the manager (a task and an event)
SELECT * FROM salesmgmt.run_follow_up_rules('2026-02-07 12:00+00');
-- day 13: reassigned to the manager
SELECT * FROM salesmgmt.run_follow_up_rules('2026-02-13 12:00+00');
SELECT * FROM salesmgmt.run_follow_up_rules('2026-02-13 12:00+00');
SELECT deal_id, owner_rep_id FROM salesmgmt.deal ORDER BY deal_id;
SELECT rule_id, subject, subject_id, action, quiet_since, acted_at, rep_id FROM salesmgmt.follow_up_action
 ORDER BY rule_id, subject_id, acted_at, action;
-- an activity starts a new episode: a new reminder later
INSERT INTO salesmgmt.activity (kind, account_id, deal_id, rep_id, occurred_at) VALUES ('call', 1, 1, 1, '2026-02-14');
SELECT * FROM salesmgmt.run_follow_up_rules('2026-02-20 12:00+00');
SELECT * FROM salesmgmt.run_follow_up_rules('2026-03-01 12:00+00');

-- the views (as of today: everything above lies in the past)
SELECT owner, team, deal, next_step, problem FROM salesmgmt.deals_without_next_step ORDER BY deal_id;
SELECT rep, team, title, days_overdue > 0 AS overdue FROM salesmgmt.overdue_tasks ORDER BY task_id;
SELECT account, owner, team, last_activity, next_follow_up FROM salesmgmt.accounts_gone_quiet ORDER BY account_id;

-- bad input
SELECT * FROM salesmgmt.run_follow_up_rules(NULL);
SELECT * FROM salesmgmt.run_follow_up_rules('2999-01-01');
\set VERBOSITY terse
INSERT INTO salesmgmt.follow_up_rule (name, condition, remind_after_days) VALUES ('x', '{"colour": "red"}', 3);
INSERT INTO salesmgmt.follow_up_rule (name, subject, condition, remind_after_days) VALUES ('x', 'account', '{"amount": 5}', 3);
INSERT INTO salesmgmt.follow_up_rule (name, subject, remind_after_days) VALUES ('x', 'opportunity', 3);
INSERT INTO salesmgmt.follow_up_rule (name, remind_after_days) VALUES ('x', -1);
INSERT INTO salesmgmt.follow_up_rule (name, remind_after_days, reassign_after_days) VALUES ('x', 3, 3);
INSERT INTO salesmgmt.follow_up_rule (name, remind_after_days, reassign_to) VALUES ('x', 3, 'rep');
\set VERBOSITY default
SELECT count(*) AS rules FROM salesmgmt.follow_up_rule;

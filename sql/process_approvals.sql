-- process_approvals: approval rules, requests routed up the manager chain,
-- only the current step's approver decides, guarded fields locked while
-- pending, approvals consumed by the move and voided by a later change.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
-- the settings this script relies on (a database may set others)
SET salesmgmt.reporting_currency = 'USD';
SET salesmgmt.change_note = '';
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE ROLE regress_proc_vp;
CREATE ROLE regress_proc_mgr;
CREATE ROLE regress_proc_rep;
GRANT salesmgmt_manager TO regress_proc_vp, regress_proc_mgr;
GRANT salesmgmt_rep TO regress_proc_rep;
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Company'), (2, 'East');
INSERT INTO salesmgmt.rep (rep_id, name, team_id, db_role) VALUES
    (1, 'Vera (VP)', 1, 'regress_proc_vp'), (2, 'Mia (manager)', 2, 'regress_proc_mgr'), (3, 'Ada', 2, 'regress_proc_rep');
UPDATE salesmgmt.team SET manager_rep_id = 1 WHERE team_id = 1;
UPDATE salesmgmt.team SET manager_rep_id = 2, parent_team_id = 1 WHERE team_id = 2;
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) VALUES (1, 'Acme', 3);
SELECT salesmgmt.create_pipeline('P', $$[{"name": "Qualify", "probability": 0.1},
    {"name": "Propose", "probability": 0.4}, {"name": "Won", "outcome": "won"}, {"name": "Lost", "outcome": "lost"}]$$);
INSERT INTO salesmgmt.approval_rule (name, stage_id, condition, approver, levels) VALUES
    ('Large deals', 2, '{"amount": {">": 100000}}', 'manager_chain', 2),
    ('Discounted', 2, '{"extra": {"discount": {">=": 20}}}', 'manager', 1);
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, extra)
    VALUES (1, 'Big', 1, 3, 1, 1, 250000, '{"discount": 25}'), (2, 'Small', 1, 3, 1, 1, 5000, '{}');

-- bad rules: unknown column, unknown operator, wrong operand, missing role
\set VERBOSITY terse
INSERT INTO salesmgmt.approval_rule (name, stage_id, condition) VALUES ('x', 2, '{"colour": "red"}');
INSERT INTO salesmgmt.approval_rule (name, stage_id, condition) VALUES ('x', 2, '{"amount": {"between": [1, 2]}}');
INSERT INTO salesmgmt.approval_rule (name, stage_id, condition) VALUES ('x', 2, '{"amount": {">": "lots"}}');
INSERT INTO salesmgmt.approval_rule (name, stage_id, approver, approver_role) VALUES ('x', 2, 'role', 'regress_proc_nobody');
INSERT INTO salesmgmt.approval_rule (name, stage_id, approver) VALUES ('x', 2, 'role');
INSERT INTO salesmgmt.approval_rule (name, stage_id, approver, levels) VALUES ('x', 2, 'manager', 3);
\set VERBOSITY default
SELECT count(*) AS rules FROM salesmgmt.approval_rule;

-- a small deal needs nothing; the big one matches both rules: SM071 names them
SELECT deal_id, stage_id FROM salesmgmt.move_deal(2, 'Propose');
SELECT salesmgmt.move_deal(1, 'Propose');

-- the rep asks; the route: Mia, then Vera (chain of 2), then Mia (discount rule)
SET ROLE regress_proc_rep;
SELECT salesmgmt.request_approval(1, 'Propose', 'strategic') AS request_id;
SELECT salesmgmt.request_approval(1, 'Propose');
SELECT salesmgmt.request_approval(2, 'Won');
RESET ROLE;
SELECT step_no, rule_id, approver_rep_id, approver_role FROM salesmgmt.approval_step WHERE request_id = 1 ORDER BY step_no;
SELECT item, task_id, title, status, rep_id, blocks_forward_move FROM salesmgmt.deal_checklist(1);

-- while pending, the amount and the tested fields are locked; other fields are not
UPDATE salesmgmt.deal SET amount = 90000 WHERE deal_id = 1;
UPDATE salesmgmt.deal SET extra = '{"discount": 30}' WHERE deal_id = 1;
UPDATE salesmgmt.deal SET expected_close_date = '2030-01-31' WHERE deal_id = 1;
-- a move while pending: SM071 says the request is pending
SELECT salesmgmt.move_deal(1, 'Propose');

-- only the current step's approver decides; never the requester
SET ROLE regress_proc_rep;
SELECT salesmgmt.approve(1);
RESET ROLE;
SET ROLE regress_proc_vp;
SELECT salesmgmt.approve(1);
RESET ROLE;
SET ROLE regress_proc_mgr;
SELECT request_id, status, current_step FROM salesmgmt.approve(1, 'fine by me');
RESET ROLE;
SET ROLE regress_proc_vp;
SELECT request_id, status, current_step FROM salesmgmt.approve(1, 'ok');
RESET ROLE;
SET ROLE regress_proc_mgr;
SELECT request_id, status, current_step FROM salesmgmt.approve(1, 'discount ok');
SELECT salesmgmt.approve(1);
RESET ROLE;

-- approved: a later change to a guarded field voids it
UPDATE salesmgmt.deal SET amount = 260000 WHERE deal_id = 1;
SELECT request_id, status FROM salesmgmt.approval_request ORDER BY request_id;
SELECT salesmgmt.move_deal(1, 'Propose');

-- a new request, approved, is consumed by the move it allowed
SELECT salesmgmt.request_approval(1, 'Propose', 'again') AS request_id \gset
SET ROLE regress_proc_mgr;
SELECT status FROM salesmgmt.approve(:request_id);
RESET ROLE;
SET ROLE regress_proc_vp;
SELECT status FROM salesmgmt.approve(:request_id);
RESET ROLE;
SET ROLE regress_proc_mgr;
SELECT status FROM salesmgmt.approve(:request_id);
RESET ROLE;
SELECT deal_id, stage_id FROM salesmgmt.move_deal(1, 'Propose');
SELECT request_id, status FROM salesmgmt.approval_request ORDER BY request_id;

-- reject and cancel
INSERT INTO salesmgmt.approval_rule (name, stage_id, condition) VALUES ('Wins over 1000', 3, '{"amount": {">": 1000}}');
SELECT salesmgmt.request_approval(2, 'Won', 'closing') AS request_id \gset
SET ROLE regress_proc_mgr;
SELECT salesmgmt.cancel_approval(:request_id);
SELECT status FROM salesmgmt.reject(:request_id, 'price too low');
RESET ROLE;
SELECT salesmgmt.cancel_approval(:request_id);
SELECT salesmgmt.request_approval(2, 'Won') AS request_id \gset
SELECT status FROM salesmgmt.cancel_approval(:request_id, 'changed my mind');

-- the log is append-only and in the deal's history
SELECT request_id, step_no, action, decided_by, comment FROM salesmgmt.approval_decision ORDER BY decision_id;
SELECT deal_id, to_stage_id, changed_by, note FROM salesmgmt.deal_stage_history
 WHERE note LIKE 'approval%' ORDER BY history_id;
DELETE FROM salesmgmt.approval_decision;

-- what each role sees
SET ROLE regress_proc_rep;
SELECT count(*) AS requests_ada_sees FROM salesmgmt.approval_request;
RESET ROLE;

-- bad input
SELECT salesmgmt.request_approval(NULL, 'Won');
SELECT salesmgmt.request_approval(1, NULL);
SELECT salesmgmt.request_approval(999, 'Won');
SELECT salesmgmt.request_approval(1, 'Nowhere');
SELECT salesmgmt.approve(NULL);
SELECT salesmgmt.approve(999);
SELECT salesmgmt.reject(-1);
SELECT salesmgmt.cancel_approval(999);

DROP EXTENSION salesmgmt CASCADE;
DROP ROLE regress_proc_vp, regress_proc_mgr, regress_proc_rep;

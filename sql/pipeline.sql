-- pipeline: the deal triggers enforce transitions, gates and entry roles,
-- maintain stage_entered_at / closed_at / updated_at, and write history.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never

INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Ada', 1), (2, 'Bo', 1);
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
INSERT INTO salesmgmt.pipeline (pipeline_id, name) VALUES (1, 'New business');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome, required_fields) VALUES
    (1, 1, 'Qualify', 1, 0.10, 'pipeline', 'open', NULL),
    (2, 1, 'Propose', 2, 0.40, 'best_case', 'open', '{amount,decision_maker}'),
    (3, 1, 'Negotiate', 3, 0.70, 'commit', 'open', NULL),
    (4, 1, 'Won', 4, 1, 'closed', 'won', NULL),
    (5, 1, 'Lost', 5, 0, 'omitted', 'lost', NULL);
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (2, 'Renewals', 'explicit');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (6, 2, 'Due', 1, 0.5, 'best_case', 'open'),
    (7, 2, 'Renewed', 2, 1, 'closed', 'won');

-- a deal imported with its history time: stage_entered_at is the change time
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, stage_entered_at)
    VALUES (1, 'Rollout', 1, 1, 1, 1, 0, '2024-01-10 09:00+00');
SELECT deal_id, stage_id, stage_entered_at AT TIME ZONE 'UTC' AS entered, updated_at AT TIME ZONE 'UTC' AS updated, closed_at
  FROM salesmgmt.deal;

-- forward policy: backward is refused (SM001, nothing changes)
UPDATE salesmgmt.deal SET stage_id = 3, stage_entered_at = '2024-01-20 09:00+00' WHERE deal_id = 1;
UPDATE salesmgmt.deal SET stage_id = 1 WHERE deal_id = 1;
-- the gate of Propose needs amount and extra.decision_maker (SM002)
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
    VALUES (2, 'Pilot', 1, 2, 1, 1, 0);
UPDATE salesmgmt.deal SET stage_id = 2 WHERE deal_id = 2;
UPDATE salesmgmt.deal SET stage_id = 2, amount = 500, extra = '{"decision_maker": "  "}' WHERE deal_id = 2;
UPDATE salesmgmt.deal SET stage_id = 2, amount = 500, extra = '{"decision_maker": "Dee"}' WHERE deal_id = 2;
-- a stage of another pipeline (SM003); changing pipeline is refused too
UPDATE salesmgmt.deal SET stage_id = 6 WHERE deal_id = 2;
UPDATE salesmgmt.deal SET pipeline_id = 2, stage_id = 6 WHERE deal_id = 2;
UPDATE salesmgmt.deal SET stage_id = 99 WHERE deal_id = 2;

-- winning sets closed_at; a closed deal cannot move unless a transition exists
UPDATE salesmgmt.deal SET stage_id = 4, stage_entered_at = '2024-02-01 12:00+00' WHERE deal_id = 1;
SELECT deal_id, stage_id, closed_at AT TIME ZONE 'UTC' AS closed, updated_at AT TIME ZONE 'UTC' AS updated
  FROM salesmgmt.deal WHERE deal_id = 1;
UPDATE salesmgmt.deal SET stage_id = 3 WHERE deal_id = 1;
INSERT INTO salesmgmt.stage_transition VALUES (1, 4, 3);
UPDATE salesmgmt.deal SET stage_id = 3, stage_entered_at = '2024-02-03 12:00+00' WHERE deal_id = 1;
SELECT deal_id, stage_id, closed_at FROM salesmgmt.deal WHERE deal_id = 1;

-- times: never in the future, never before the previous stage entry
\set VERBOSITY terse
UPDATE salesmgmt.deal SET stage_id = 4, stage_entered_at = now() + interval '1 day' WHERE deal_id = 1;
\set VERBOSITY default
UPDATE salesmgmt.deal SET stage_id = 4, stage_entered_at = '2024-01-01 00:00+00' WHERE deal_id = 1;

-- entry roles (SM004)
CREATE ROLE regress_pl_rep;
CREATE ROLE regress_pl_manager;
-- (row-level security: both see every deal as salesmgmt admins)
GRANT salesmgmt_admin TO regress_pl_rep, regress_pl_manager;
UPDATE salesmgmt.stage SET entry_roles = '{regress_pl_manager}' WHERE stage_id = 4;
SET ROLE regress_pl_rep;
UPDATE salesmgmt.deal SET stage_id = 4 WHERE deal_id = 2;
RESET ROLE;
SET ROLE regress_pl_manager;
UPDATE salesmgmt.deal SET stage_id = 4 WHERE deal_id = 2;
RESET ROLE;

-- a bulk update fails as a whole
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
    VALUES (3, 'A', 1, 1, 1, 1, 100), (4, 'B', 1, 1, 1, 1, 0);
UPDATE salesmgmt.deal SET stage_id = 2, extra = '{"decision_maker": "X"}' WHERE deal_id IN (3, 4);
SELECT deal_id, stage_id FROM salesmgmt.deal WHERE deal_id IN (3, 4) ORDER BY deal_id;

-- the history: one row at creation, one per tracked change
UPDATE salesmgmt.deal SET name = 'renamed only' WHERE deal_id = 3;
UPDATE salesmgmt.deal SET amount = 150, probability = 0.25 WHERE deal_id = 3;
UPDATE salesmgmt.deal SET owner_rep_id = 2 WHERE deal_id = 3;
SELECT deal_id, from_stage_id AS from, to_stage_id AS to, owner_rep_id AS owner, old_amount, new_amount,
       probability, effective_probability AS eff_p, effective_category AS eff_cat,
       time_in_previous_stage IS NOT NULL AS timed, changed_by
  FROM salesmgmt.deal_stage_history ORDER BY deal_id, history_id;
SELECT deal_id, to_stage_id, changed_at AT TIME ZONE 'UTC' AS changed_at, time_in_previous_stage
  FROM salesmgmt.deal_stage_history WHERE deal_id = 1 ORDER BY history_id;

-- history is append-only
UPDATE salesmgmt.deal_stage_history SET note = 'x';
DELETE FROM salesmgmt.deal_stage_history;
TRUNCATE salesmgmt.deal_stage_history;

DROP OWNED BY regress_pl_rep, regress_pl_manager;
DROP ROLE regress_pl_rep, regress_pl_manager;

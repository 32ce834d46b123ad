-- pipeline_api: create_pipeline, move_deal and allowed_next_stages, with
-- bad input for each (nulls, unknown deal, unknown stage, wrong pipeline,
-- bad jsonb): every refusal leaves nothing behind.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SET salesmgmt.change_note = '';  -- the test relies on the default, whatever postgresql.conf says
\set VERBOSITY default
\set SHOW_CONTEXT never

INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Ada', 1);
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
CREATE ROLE regress_pl_closer;

-- create_pipeline: stages in order, defaults from the outcome
SELECT salesmgmt.create_pipeline('New business', $$[
    {"name": "Qualify",  "probability": 0.1, "max_days_in_stage": 14},
    {"name": "Propose",  "probability": 0.4, "forecast_category": "best_case",
     "required_fields": ["amount", "decision_maker"]},
    {"name": "Commit",   "probability": 0.8, "forecast_category": "commit"},
    {"name": "Won",      "outcome": "won", "entry_roles": ["regress_pl_closer"]},
    {"name": "Lost",     "outcome": "lost", "required_fields": ["lost_reason"]}
]$$) AS pipeline_id;
SELECT salesmgmt.create_pipeline('Renewals', '[{"name": "Due", "probability": 0.6}, {"name": "Renewed", "outcome": "won"}]', 'explicit');
SELECT p.name AS pipeline, p.transition_policy AS policy, s.position, s.name, s.probability, s.forecast_category,
       s.outcome, s.required_fields, s.entry_roles, s.max_days_in_stage
  FROM salesmgmt.stage s JOIN salesmgmt.pipeline p USING (pipeline_id) ORDER BY p.pipeline_id, s.position;

-- bad input: nothing is created
SELECT salesmgmt.create_pipeline(NULL, '[{"name": "A", "probability": 0.1}]');
SELECT salesmgmt.create_pipeline('P', NULL);
SELECT salesmgmt.create_pipeline('P', '[{"name": "A", "probability": 0.1}]', NULL);
SELECT salesmgmt.create_pipeline('  ', '[{"name": "A", "probability": 0.1}]');
SELECT salesmgmt.create_pipeline('P', '[{"name": "A", "probability": 0.1}]', 'backwards');
SELECT salesmgmt.create_pipeline('P', '{"name": "A"}');
SELECT salesmgmt.create_pipeline('P', '[]');
SELECT salesmgmt.create_pipeline('P', '["A"]');
SELECT salesmgmt.create_pipeline('P', '[{"probability": 0.1}]');
SELECT salesmgmt.create_pipeline('P', '[{"name": "A"}]');
SELECT salesmgmt.create_pipeline('P', '[{"name": "A", "probability": "high"}]');
SELECT salesmgmt.create_pipeline('P', '[{"name": "A", "probability": 1.5}]');
SELECT salesmgmt.create_pipeline('P', '[{"name": "A", "probability": 0.1, "colour": "red"}]');
SELECT salesmgmt.create_pipeline('P', '[{"name": "A", "probability": 0.1}, {"name": "A", "probability": 0.2}]');
SELECT salesmgmt.create_pipeline('P', '[{"name": "A", "probability": 0.1, "outcome": "maybe"}]');
SELECT salesmgmt.create_pipeline('P', '[{"name": "Won", "outcome": "won"}]');
SELECT salesmgmt.create_pipeline('P', '[{"name": "A", "probability": 0.1, "required_fields": "amount"}]');
SELECT salesmgmt.create_pipeline('P', '[{"name": "A", "probability": 0.1, "required_fields": ["amount", 7]}]');
SELECT salesmgmt.create_pipeline('P', '[{"name": "A", "probability": 0.1, "entry_roles": ["regress_pl_nobody"]}]');
SELECT salesmgmt.create_pipeline('P', '[{"name": "A", "probability": 0.1, "max_days_in_stage": 0}]');
SELECT salesmgmt.create_pipeline('P', '[{"name": "A", "probability": 0.1, "max_days_in_stage": 2.5}]');
SELECT salesmgmt.create_pipeline('P', '[{"name": "A", "probability": 0.1, "forecast_category": "maybe"}]');
SELECT salesmgmt.create_pipeline('New business', '[{"name": "A", "probability": 0.1}]');
SELECT count(*) AS pipelines, (SELECT count(*) FROM salesmgmt.stage) AS stages FROM salesmgmt.pipeline;

-- move_deal: by stage name within the deal's own pipeline, same rules as UPDATE
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
    VALUES (1, 'Rollout', 1, 1, 1, 1, 0), (2, 'Renewal', 1, 1, 2, 6, 100);
SELECT s.name FROM salesmgmt.allowed_next_stages(1) s;
SELECT deal_id, stage_id FROM salesmgmt.move_deal(1, 'Propose');    -- the gate: SM002
UPDATE salesmgmt.deal SET amount = 5000, extra = '{"decision_maker": "Dee"}' WHERE deal_id = 1;
SELECT deal_id, stage_id, stage_entered_at = now() AS entered_now, closed_at
  FROM salesmgmt.move_deal(1, 'Propose', 'proposal sent');
SELECT from_stage_id, to_stage_id, note FROM salesmgmt.deal_stage_history WHERE deal_id = 1 ORDER BY history_id;
-- moving to the stage it is in changes nothing and writes no history
SELECT deal_id, stage_id FROM salesmgmt.move_deal(1, 'Propose', 'again');
SELECT count(*) AS history_rows FROM salesmgmt.deal_stage_history WHERE deal_id = 1;
-- the note does not outlive the move
SHOW salesmgmt.change_note;
SELECT s.name FROM salesmgmt.allowed_next_stages(1) s;
SELECT salesmgmt.move_deal(1, 'Qualify');                  -- SM001, hint lists the allowed stages
SELECT salesmgmt.move_deal(1, 'Lost');                     -- SM002
SELECT salesmgmt.move_deal(1, 'Renewed');                  -- SM003: a stage of another pipeline
SELECT salesmgmt.move_deal(1, 'won');                      -- no such stage (names are case-sensitive)
SELECT salesmgmt.move_deal(999, 'Won');                    -- no such deal
SELECT salesmgmt.move_deal(NULL, 'Won');
SELECT salesmgmt.move_deal(1, NULL);
SELECT * FROM salesmgmt.allowed_next_stages(NULL);
SELECT * FROM salesmgmt.allowed_next_stages(999);
-- entry roles: the stage is offered only to those who may enter it
CREATE ROLE regress_pl_rep;
GRANT USAGE ON SCHEMA salesmgmt TO regress_pl_rep;
GRANT SELECT, UPDATE ON salesmgmt.deal TO regress_pl_rep;
GRANT salesmgmt_admin TO regress_pl_rep;   -- sees every deal under row-level security
GRANT SELECT ON salesmgmt.stage TO regress_pl_rep;
GRANT EXECUTE ON FUNCTION salesmgmt.move_deal(bigint, text, text), salesmgmt.allowed_next_stages(bigint),
      salesmgmt._allowed_next_stage_ids(bigint) TO regress_pl_rep;
SET ROLE regress_pl_rep;
SELECT s.name FROM salesmgmt.allowed_next_stages(1) s;
SELECT salesmgmt.move_deal(1, 'Won');                      -- SM004
RESET ROLE;
GRANT regress_pl_closer TO regress_pl_rep;
SET ROLE regress_pl_rep;
SELECT s.name FROM salesmgmt.allowed_next_stages(1) s;
SELECT deal_id, stage_id, closed_at = stage_entered_at AS closed FROM salesmgmt.move_deal(1, 'Won', 'signed');
SELECT s.name FROM salesmgmt.allowed_next_stages(1) s;     -- closed: nowhere to go
RESET ROLE;
SELECT from_stage_id, to_stage_id, effective_probability, changed_by, note
  FROM salesmgmt.deal_stage_history WHERE deal_id = 1 ORDER BY history_id;
-- explicit pipeline: only the listed moves are offered
SELECT s.name FROM salesmgmt.allowed_next_stages(2) s;
INSERT INTO salesmgmt.stage_transition (pipeline_id, from_stage_id, to_stage_id)
SELECT 2, f.stage_id, t.stage_id FROM salesmgmt.stage f, salesmgmt.stage t
 WHERE f.pipeline_id = 2 AND t.pipeline_id = 2 AND f.name = 'Due' AND t.name = 'Renewed';
SELECT s.name FROM salesmgmt.allowed_next_stages(2) s;
SELECT deal_id, stage_id FROM salesmgmt.move_deal(2, 'Renewed');

DROP OWNED BY regress_pl_rep, regress_pl_closer;
DROP ROLE regress_pl_rep, regress_pl_closer;

-- pipeline: the deal triggers enforce transitions, gates and entry roles,
-- maintain stage_entered_at / closed_at / updated_at, and write history.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SET salesmgmt.change_note = '';  -- the test relies on the default, whatever postgresql.conf says
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

-- maintained columns: updated_at follows every change, closed_at cannot be
-- set by hand, stage_entered_at only moves with the stage
UPDATE salesmgmt.deal SET name = 'Rollout 2', closed_at = '2020-01-01', updated_at = '2020-01-01' WHERE deal_id = 1;
SELECT name, closed_at, updated_at = now() AS updated_now, stage_entered_at AT TIME ZONE 'UTC' AS entered
  FROM salesmgmt.deal WHERE deal_id = 1;
UPDATE salesmgmt.deal SET closed_at = '2020-01-01' WHERE deal_id = 2;
SELECT closed_at = stage_entered_at AS closed_when_entered_won FROM salesmgmt.deal WHERE deal_id = 2;
-- a deal keeps its id
UPDATE salesmgmt.deal SET deal_id = 100 WHERE deal_id = 1;

-- the other policies
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (3, 'Free', 'free');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (8, 3, 'A', 1, 0.2, 'pipeline', 'open'), (9, 3, 'B', 2, 0.5, 'pipeline', 'open'),
    (10, 3, 'Done', 3, 1, 'closed', 'won'), (11, 3, 'Gone', 4, 0, 'omitted', 'lost');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id) VALUES
    (10, 'free deal', 1, 1, 3, 9), (11, 'renewal', 1, 1, 2, 6);
UPDATE salesmgmt.deal SET stage_id = 8 WHERE deal_id = 10;     -- free: backwards is fine
UPDATE salesmgmt.deal SET stage_id = 11 WHERE deal_id = 10;    -- and to lost
UPDATE salesmgmt.deal SET stage_id = 8 WHERE deal_id = 10;     -- but a closed deal stays closed
UPDATE salesmgmt.deal SET stage_id = 7 WHERE deal_id = 11;     -- explicit: nothing listed
INSERT INTO salesmgmt.stage_transition VALUES (2, 6, 7);
UPDATE salesmgmt.deal SET stage_id = 7 WHERE deal_id = 11;     -- listed now (cache reloaded)
SELECT deal_id, stage_id, closed_at IS NOT NULL AS closed FROM salesmgmt.deal WHERE deal_id IN (10, 11) ORDER BY 1;
-- forward: a backward move becomes possible once listed, and a policy change applies at once
UPDATE salesmgmt.deal SET stage_id = 2, amount = 10, extra = '{"decision_maker": "Dee"}' WHERE deal_id = 3;
UPDATE salesmgmt.deal SET stage_id = 1 WHERE deal_id = 3;
INSERT INTO salesmgmt.stage_transition VALUES (1, 2, 1);
UPDATE salesmgmt.deal SET stage_id = 1 WHERE deal_id = 3;
UPDATE salesmgmt.pipeline SET transition_policy = 'explicit' WHERE pipeline_id = 1;
UPDATE salesmgmt.deal SET stage_id = 3 WHERE deal_id = 3;
UPDATE salesmgmt.pipeline SET transition_policy = 'forward' WHERE pipeline_id = 1;
UPDATE salesmgmt.deal SET stage_id = 3 WHERE deal_id = 3;

-- gates: blank strings, null, empty JSON values and amount 0 are missing;
-- they apply when a deal is created in the stage too
UPDATE salesmgmt.stage SET required_fields = '{expected_close_date,lost_reason,extra,tags,amount}' WHERE stage_id = 5;
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, lost_reason, extra)
    VALUES ('lost at once', 1, 1, 1, 5, ' ', '{"tags": []}');
UPDATE salesmgmt.deal SET stage_id = 5, lost_reason = 'price', expected_close_date = '2024-03-01',
       extra = '{"tags": {}}' WHERE deal_id = 3;
UPDATE salesmgmt.deal SET stage_id = 5, lost_reason = 'price', expected_close_date = '2024-03-01',
       extra = '{"tags": null}' WHERE deal_id = 3;
UPDATE salesmgmt.deal SET stage_id = 5, lost_reason = 'price', expected_close_date = '2024-03-01',
       extra = '{"tags": ["big"]}' WHERE deal_id = 3;
SELECT deal_id, stage_id, lost_reason FROM salesmgmt.deal WHERE deal_id = 3;

-- entry roles: an empty list admits only superusers; a missing role admits nobody else
CREATE ROLE regress_pl_outsider;
GRANT USAGE ON SCHEMA salesmgmt TO regress_pl_outsider;
GRANT SELECT, INSERT, UPDATE ON salesmgmt.deal TO regress_pl_outsider;
-- row-level security: an admin sees every deal (entry roles still apply)
GRANT salesmgmt_admin TO regress_pl_outsider;
UPDATE salesmgmt.stage SET entry_roles = '{}' WHERE stage_id = 9;
UPDATE salesmgmt.stage SET entry_roles = '{regress_pl_no_such_role}' WHERE stage_id = 11;
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id) VALUES (12, 'f2', 1, 1, 3, 8);
SET ROLE regress_pl_outsider;
UPDATE salesmgmt.deal SET stage_id = 9 WHERE deal_id = 12;
UPDATE salesmgmt.deal SET stage_id = 11 WHERE deal_id = 12;
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id) VALUES ('direct', 1, 1, 3, 9);
RESET ROLE;
UPDATE salesmgmt.deal SET stage_id = 9 WHERE deal_id = 12;     -- a superuser may
-- membership through a granted role counts
GRANT regress_pl_manager TO regress_pl_outsider;
UPDATE salesmgmt.stage SET entry_roles = '{regress_pl_manager}' WHERE stage_id = 10;
SET ROLE regress_pl_outsider;
UPDATE salesmgmt.deal SET stage_id = 10 WHERE deal_id = 12;
RESET ROLE;
SELECT deal_id, stage_id, changed_by FROM salesmgmt.deal d
  JOIN LATERAL (SELECT changed_by FROM salesmgmt.deal_stage_history h WHERE h.deal_id = d.deal_id
                 ORDER BY history_id DESC LIMIT 1) h ON true
 WHERE deal_id = 12;

-- effective probability and category: override, else the stage's; won is 1,
-- lost is 0 whatever the override says
UPDATE salesmgmt.deal SET probability = 0.9, forecast_category = 'commit' WHERE deal_id = 4;
UPDATE salesmgmt.deal SET forecast_category = NULL WHERE deal_id = 4;
UPDATE salesmgmt.deal SET probability = 0.3 WHERE deal_id = 10;
UPDATE salesmgmt.deal SET currency = 'EUR' WHERE deal_id = 4;
SELECT deal_id, to_stage_id, probability, forecast_category, effective_probability, effective_category, currency
  FROM salesmgmt.deal_stage_history WHERE deal_id IN (4, 10) ORDER BY deal_id, history_id;

-- a note for the changes of a transaction
BEGIN;
SET LOCAL salesmgmt.change_note = 'quarter-end review';
UPDATE salesmgmt.deal SET amount = 200 WHERE deal_id = 4;
COMMIT;
UPDATE salesmgmt.deal SET amount = 300 WHERE deal_id = 4;
SELECT new_amount, note FROM salesmgmt.deal_stage_history WHERE deal_id = 4 ORDER BY history_id DESC LIMIT 2;

-- a multi-row INSERT and a multi-row UPDATE write one row per deal, in order
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
    SELECT 1000 + i, 'bulk ' || i, 1, 1, 1, 1, i FROM generate_series(1, 5) i;
UPDATE salesmgmt.deal SET amount = amount * 2 WHERE deal_id > 1000;
UPDATE salesmgmt.deal SET name = name || '!' WHERE deal_id > 1000;   -- nothing tracked: no rows
SELECT deal_id, count(*) AS rows, array_agg(new_amount ORDER BY history_id) AS amounts
  FROM salesmgmt.deal_stage_history WHERE deal_id > 1000 GROUP BY deal_id ORDER BY deal_id;

-- INSERT ... ON CONFLICT and MERGE go through the same rules and history
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
VALUES (1001, 'bulk 1', 1, 1, 1, 1, 7), (1006, 'upserted', 1, 1, 1, 1, 6)
ON CONFLICT (deal_id) DO UPDATE SET amount = excluded.amount;
MERGE INTO salesmgmt.deal d
USING (VALUES (1002::bigint, 3::bigint), (1007, 1)) AS v(id, stage) ON d.deal_id = v.id
WHEN MATCHED THEN UPDATE SET stage_id = v.stage
WHEN NOT MATCHED THEN INSERT (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
    VALUES (v.id, 'merged', 1, 1, 1, v.stage, 1);
MERGE INTO salesmgmt.deal d USING (VALUES (1003::bigint)) AS v(id) ON d.deal_id = v.id
WHEN MATCHED THEN UPDATE SET stage_id = 99;
SELECT deal_id, from_stage_id, to_stage_id, old_amount, new_amount
  FROM salesmgmt.deal_stage_history WHERE deal_id IN (1001, 1002, 1006, 1007)
 ORDER BY history_id;

-- loading a dump (pg_restore turns off row_security and check_function_bodies):
-- rows arrive as they were, nothing is checked, no history is added
SET row_security = off;
SET check_function_bodies = off;
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, stage_entered_at, closed_at, updated_at)
    VALUES (50, 'restored', 1, 1, 1, 4, 0, '2023-05-01 00:00+00', '2023-05-02 00:00+00', '2023-06-01 00:00+00');
RESET row_security;
RESET check_function_bodies;
SELECT deal_id, stage_id, closed_at AT TIME ZONE 'UTC' AS closed, updated_at AT TIME ZONE 'UTC' AS updated,
       (SELECT count(*) FROM salesmgmt.deal_stage_history h WHERE h.deal_id = d.deal_id) AS history_rows
  FROM salesmgmt.deal d WHERE deal_id = 50;
-- only for the owner: others are checked as always (the role bypasses
-- row-level security here, so that it is the pipeline rules that refuse)
ALTER ROLE regress_pl_outsider BYPASSRLS;
SET row_security = off;
SET check_function_bodies = off;
SET ROLE regress_pl_outsider;
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id) VALUES (51, 'x', 1, 1, 3, 9);
RESET ROLE;
ALTER ROLE regress_pl_outsider NOBYPASSRLS;
RESET row_security;
RESET check_function_bodies;

-- the configuration is read as its owner: no function or operator of the
-- caller's search_path is run by it (no NOTICE below)
CREATE SCHEMA regress_pl_evil;
CREATE FUNCTION regress_pl_evil.eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN RAISE NOTICE 'caller''s operator run by %', current_user; RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR regress_pl_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = regress_pl_evil.eq);
SET search_path = regress_pl_evil, pg_catalog, public;
UPDATE salesmgmt.stage SET max_days_in_stage = 30 WHERE stage_id OPERATOR(pg_catalog.=) 1;
UPDATE salesmgmt.deal SET amount = 11 WHERE deal_id OPERATOR(pg_catalog.=) 1001;
SELECT deal_id, stage_id FROM salesmgmt.move_deal(1001, 'Negotiate', 'with a hostile search_path');
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA regress_pl_evil CASCADE;
RESET client_min_messages;

-- history is append-only
UPDATE salesmgmt.deal_stage_history SET note = 'x';
DELETE FROM salesmgmt.deal_stage_history;
TRUNCATE salesmgmt.deal_stage_history;

DROP OWNED BY regress_pl_rep, regress_pl_manager, regress_pl_outsider;
DROP ROLE regress_pl_rep, regress_pl_manager, regress_pl_outsider;

-- pgTAP: the pipeline engine's structure, every rule and every error code.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(51);

-- structure other concerns code against
SELECT has_table('salesmgmt', 'stage_transition', 'stage_transition exists');
SELECT has_table('salesmgmt', 'deal_stage_history', 'deal_stage_history exists');
SELECT col_is_pk('salesmgmt', 'deal_stage_history', ARRAY['deal_id', 'history_id'], 'history is keyed by deal first');
SELECT columns_are('salesmgmt', 'deal_stage_history', ARRAY['deal_id', 'history_id', 'pipeline_id',
    'from_stage_id', 'to_stage_id', 'owner_rep_id', 'old_amount', 'new_amount', 'currency',
    'old_expected_close_date', 'new_expected_close_date', 'probability', 'forecast_category',
    'effective_probability', 'effective_category', 'changed_at', 'changed_by',
    'time_in_previous_stage', 'note'], 'history has the documented columns');
SELECT col_type_is('salesmgmt', 'deal_stage_history', 'new_amount', 'numeric(18,2)', 'history amounts are exact numeric');
SELECT has_trigger('salesmgmt', 'deal', 'deal_pipeline_rules', 'rules trigger on deal');
SELECT has_trigger('salesmgmt', 'deal', 'deal_pipeline_history_insert', 'history trigger for inserts');
SELECT has_trigger('salesmgmt', 'deal', 'deal_pipeline_history_update', 'history trigger for updates');
SELECT has_trigger('salesmgmt', t, 'pipeline_config_changed', 'configuration trigger on ' || t)
  FROM unnest(ARRAY['pipeline', 'stage', 'stage_transition']) t;
SELECT is((SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
            WHERE p.oid = 'salesmgmt._deal_pipeline_rules'::regproc), 'c', 'the rules are C');
SELECT has_function('salesmgmt', 'create_pipeline', ARRAY['text', 'jsonb', 'text'], 'create_pipeline(text, jsonb, text)');
SELECT has_function('salesmgmt', 'move_deal', ARRAY['bigint', 'text', 'text'], 'move_deal(bigint, text, text)');
SELECT has_function('salesmgmt', 'allowed_next_stages', ARRAY['bigint'], 'allowed_next_stages(bigint)');
SELECT function_returns('salesmgmt', 'move_deal', ARRAY['bigint', 'text', 'text'], 'salesmgmt.deal', 'move_deal returns the deal');
SELECT has_view('salesmgmt', v, 'view ' || v)
  FROM unnest(ARRAY['pipeline_board', 'stage_funnel', 'stage_durations', 'stalled_deals']) v;
SELECT ok((SELECT 'salesmgmt.deal_stage_history'::regclass = ANY (extconfig) FROM pg_extension WHERE extname = 'salesmgmt'),
          'history is kept by pg_dump');

-- a small world
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'T');
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'A', 1);
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
SELECT is(salesmgmt.create_pipeline('P', '[{"name": "Q", "probability": 0.1},
    {"name": "R", "probability": 0.5, "required_fields": ["amount", "champion"]},
    {"name": "W", "outcome": "won", "entry_roles": ["pg_monitor"]}, {"name": "L", "outcome": "lost"}]'),
    1::bigint, 'create_pipeline returns the pipeline id');
SELECT is(salesmgmt.create_pipeline('Other', '[{"name": "X", "probability": 0.2}]', 'explicit'), 2::bigint, 'a second pipeline');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
    VALUES (1, 'D1', 1, 1, 1, 1, 0), (2, 'D2', 1, 1, 1, 1, 10);

-- each error has its SQLSTATE
SELECT throws_ok($$UPDATE salesmgmt.deal SET stage_id = 2 WHERE deal_id = 1$$, 'SM002', NULL, 'unmet gate: SM002');
SELECT throws_ok($$UPDATE salesmgmt.deal SET stage_id = 5 WHERE deal_id = 1$$, 'SM003', NULL, 'stage of another pipeline: SM003');
SELECT throws_ok($$UPDATE salesmgmt.deal SET pipeline_id = 2, stage_id = 5 WHERE deal_id = 1$$, 'SM003', NULL, 'no pipeline change: SM003');
UPDATE salesmgmt.deal SET stage_id = 2, amount = 5, extra = '{"champion": "Kim"}' WHERE deal_id = 1;
SELECT throws_ok($$UPDATE salesmgmt.deal SET stage_id = 1 WHERE deal_id = 1$$, 'SM001', NULL, 'backward move: SM001');
CREATE ROLE regress_pl_tap;
GRANT USAGE ON SCHEMA salesmgmt TO regress_pl_tap;
GRANT SELECT, UPDATE ON salesmgmt.deal TO regress_pl_tap;
GRANT salesmgmt_admin TO regress_pl_tap;   -- sees every deal under row-level security
SET LOCAL ROLE regress_pl_tap;
SELECT throws_ok($$UPDATE salesmgmt.deal SET stage_id = 3 WHERE deal_id = 1$$, 'SM004', NULL, 'role not allowed: SM004');
RESET ROLE;
GRANT pg_monitor TO regress_pl_tap;
SET LOCAL ROLE regress_pl_tap;
SELECT lives_ok($$UPDATE salesmgmt.deal SET stage_id = 3 WHERE deal_id = 1$$, 'a member of the entry role wins the deal');
RESET ROLE;
SELECT throws_ok($$UPDATE salesmgmt.deal SET stage_id = 2 WHERE deal_id = 1$$, 'SM001', NULL, 'a won deal stays won: SM001');
SELECT throws_ok($$UPDATE salesmgmt.deal SET stage_id = 99 WHERE deal_id = 2$$, '23503', NULL, 'unknown stage: 23503');
SELECT throws_ok($$UPDATE salesmgmt.deal SET stage_entered_at = now() + interval '1 hour', stage_id = 4 WHERE deal_id = 2$$,
                 '22023', NULL, 'a change time in the future: 22023');
SELECT throws_ok($$UPDATE salesmgmt.deal SET deal_id = 7 WHERE deal_id = 2$$, '0A000', NULL, 'a deal keeps its id');
SELECT throws_ok($$SELECT salesmgmt.move_deal(NULL, 'Q')$$, '22004', NULL, 'move_deal: null deal');
SELECT throws_ok($$SELECT salesmgmt.move_deal(2, NULL)$$, '22004', NULL, 'move_deal: null stage');
SELECT throws_ok($$SELECT salesmgmt.move_deal(42, 'Q')$$, '42704', NULL, 'move_deal: unknown deal');
SELECT throws_ok($$SELECT salesmgmt.move_deal(2, 'Nope')$$, '42704', NULL, 'move_deal: unknown stage');
SELECT throws_ok($$SELECT salesmgmt.move_deal(2, 'X')$$, 'SM003', NULL, 'move_deal: stage of another pipeline');
SELECT throws_ok($$SELECT * FROM salesmgmt.allowed_next_stages(NULL)$$, '22004', NULL, 'allowed_next_stages: null');
SELECT throws_ok($$SELECT salesmgmt.create_pipeline('Z', '"stages"')$$, '22023', NULL, 'create_pipeline: not an array');
SELECT throws_ok($$SELECT salesmgmt.create_pipeline('Z', NULL)$$, '22004', NULL, 'create_pipeline: null stages');
SELECT throws_ok($$UPDATE salesmgmt.deal_stage_history SET note = 'x'$$, '55000', NULL, 'history: no UPDATE');
SELECT throws_ok($$DELETE FROM salesmgmt.deal_stage_history$$, '55000', NULL, 'history: no DELETE');

-- a refused bulk move changes nothing, not even the history
SELECT is((SELECT count(*) FROM salesmgmt.deal_stage_history), 4::bigint, 'history before the bulk move: 2 creations, 2 moves');
SELECT throws_ok($$UPDATE salesmgmt.deal SET stage_id = 2, extra = '{"champion": "x"}' WHERE deal_id IN (1, 2)$$,
                 'SM001', NULL, 'bulk move with one closed deal is refused');
SELECT is((SELECT count(*) FROM salesmgmt.deal_stage_history), 4::bigint, 'and writes no history');
SELECT results_eq($$SELECT stage_id FROM salesmgmt.deal ORDER BY deal_id$$, ARRAY[3::bigint, 1], 'and moves no deal');

-- what the trigger maintains
SELECT ok((SELECT closed_at = stage_entered_at FROM salesmgmt.deal WHERE deal_id = 1), 'closed_at is the time the deal was won');
SELECT results_eq($$SELECT s.name FROM salesmgmt.allowed_next_stages(2) s$$, ARRAY['R', 'W', 'L'], 'allowed next stages in order');
SELECT is((SELECT (salesmgmt.move_deal(2, 'L', 'lost to a competitor')).stage_id), 4::bigint, 'move_deal moves');
SELECT is((SELECT note FROM salesmgmt.deal_stage_history WHERE deal_id = 2 ORDER BY history_id DESC LIMIT 1),
          'lost to a competitor', 'the note is in the history');

SELECT * FROM finish();
ROLLBACK;

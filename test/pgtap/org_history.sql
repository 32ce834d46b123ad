-- pgTAP: the effective-dated organisation (team membership, parents,
-- managers by day), splits, quotas and deal deletions as they were, the
-- back-fill functions and their bad inputs, and the as-of answers of
-- forecast, commissions and salesmgmt.org_as_of.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(57);
SET salesmgmt.reporting_currency = 'USD';

-- ---------------------------------------------------------------- structure
SELECT has_table('salesmgmt', t, t || ' exists')
  FROM unnest(ARRAY['rep_team_history', 'team_history', 'deal_split_history', 'quota_history',
                    'deal_deletion']) t;
SELECT is((SELECT count(*)::int FROM pg_class c
            WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relrowsecurity
              AND c.relname IN ('rep_team_history', 'team_history', 'deal_split_history', 'quota_history',
                                'deal_deletion')), 5, 'every history table has row-level security');
SELECT is((SELECT count(*)::int FROM pg_extension e, unnest(e.extconfig) c
            WHERE e.extname = 'salesmgmt' AND c::regclass::text IN ('salesmgmt.rep_team_history',
              'salesmgmt.team_history', 'salesmgmt.deal_split_history', 'salesmgmt.quota_history',
              'salesmgmt.deal_deletion')), 5, 'every history table is dumped with the data');
SELECT is((SELECT count(*)::int FROM pg_proc p
            WHERE p.pronamespace = 'salesmgmt'::regnamespace
              AND p.proname IN ('backfill_rep_team', 'backfill_team', 'org_as_of')
              AND obj_description(p.oid, 'pg_proc') IS NULL), 0, 'every history function has a comment');
SELECT is((SELECT count(*)::int FROM pg_proc p, aclexplode(p.proacl) a
            WHERE p.pronamespace = 'salesmgmt'::regnamespace AND a.grantee = 0
              AND p.proname IN ('backfill_rep_team', 'backfill_team')), 0,
          'the back-fill functions are not executable by PUBLIC');

SELECT is((SELECT count(*)::int FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            WHERE c.relnamespace = 'salesmgmt'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
              AND c.relname IN ('rep_team_history', 'team_history', 'deal_split_history', 'quota_history', 'deal_deletion')
              AND col_description(c.oid, a.attnum) IS NULL), 0, 'every history column has a comment');
SELECT is((SELECT count(*)::int FROM pg_trigger t
            WHERE t.tgname IN ('rep_team_history', 'team_history', 'deal_split_history', 'quota_history', 'deal_deletion')
              AND obj_description(t.oid, 'pg_trigger') IS NULL), 0, 'every history trigger has a comment');

-- ---------------------------------------------------------------- the org
-- Sales (3, Cal) above East (1, Ann) and West (2, Bea); Sam is in West today
INSERT INTO salesmgmt.team (team_id, name) VALUES (3, 'Sales');
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES (1, 'East', 3), (2, 'West', 3);
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES
    (1, 'Ann', 1), (2, 'Bea', 2), (3, 'Cal', 3), (4, 'Sam', 1);
UPDATE salesmgmt.team SET manager_rep_id = CASE team_id WHEN 1 THEN 1 WHEN 2 THEN 2 ELSE 3 END;
UPDATE salesmgmt.rep SET team_id = 2 WHERE rep_id = 4;

SELECT is((SELECT count(*)::int FROM salesmgmt.rep_team_history WHERE rep_id = 4), 1,
          'changes on the day a rep is created make one version');
SELECT is((SELECT team_id FROM salesmgmt.rep_team_history WHERE rep_id = 4 AND valid_to = 'infinity'), 2::bigint,
          'the current version holds the current team');
SELECT is((SELECT valid_from FROM salesmgmt.rep_team_history WHERE rep_id = 4), current_date,
          'the version begins today');
SELECT is((SELECT count(*)::int FROM salesmgmt.team_history WHERE valid_to = 'infinity' AND manager_rep_id IS NOT NULL), 3,
          'team managers set on the creation day are in the teams'' versions');
UPDATE salesmgmt.rep SET name = 'Samuel' WHERE rep_id = 4;
SELECT is((SELECT count(*)::int FROM salesmgmt.rep_team_history WHERE rep_id = 4), 1,
          'a change of another column writes no version');

-- the past, loaded: Sam was in East from 2024-01-01 until 2024-02-15
SELECT lives_ok($$SELECT salesmgmt.backfill_rep_team(4, 1, '2024-01-01', '2024-02-15')$$, 'back-fill of a rep''s past team');
SELECT results_eq($$SELECT team_id, valid_from, valid_to FROM salesmgmt.rep_team_history WHERE rep_id = 4 ORDER BY valid_from$$,
                  $$VALUES (1::bigint, '2024-01-01'::date, '2024-02-15'::date), (2, current_date, 'infinity')$$,
                  'the back-filled version sits before the current one');
SELECT results_eq($$SELECT team_id, managers FROM salesmgmt.org_as_of('2024-02-01') WHERE rep_id = 4$$,
                  $$VALUES (1::bigint, ARRAY[1, 3]::bigint[])$$, 'on 2024-02-01 Sam is in East under Ann and Cal');
SELECT results_eq($$SELECT team_id, managers FROM salesmgmt.org_as_of('2024-02-15') WHERE rep_id = 4$$,
                  $$VALUES (2::bigint, ARRAY[2, 3]::bigint[])$$, 'from 2024-02-15 (a gap) the next version, West');
SELECT results_eq($$SELECT team_id FROM salesmgmt.org_as_of('2023-06-01') WHERE rep_id = 4$$,
                  $$VALUES (1::bigint)$$, 'before the first version, the first version');
SELECT results_eq($$SELECT team_id, managers FROM salesmgmt.org_as_of() WHERE rep_id = 4$$,
                  $$VALUES (2::bigint, ARRAY[2, 3]::bigint[])$$, 'today: West');
SELECT results_eq($$SELECT managers FROM salesmgmt.org_as_of() WHERE rep_id = 3$$,
                  $$VALUES ('{}'::bigint[])$$, 'a manager is never its own manager');

-- a back-fill inside a version splits it; one over versions replaces them
SELECT lives_ok($$SELECT salesmgmt.backfill_rep_team(4, NULL, '2024-01-10', '2024-01-20')$$, 'back-fill inside a version');
SELECT results_eq($$SELECT team_id, valid_from, valid_to FROM salesmgmt.rep_team_history WHERE rep_id = 4 ORDER BY valid_from$$,
                  $$VALUES (1::bigint, '2024-01-01'::date, '2024-01-10'::date), (NULL, '2024-01-10', '2024-01-20'),
                           (1, '2024-01-20', '2024-02-15'), (2, current_date, 'infinity')$$,
                  'the version around it keeps a head and a tail');
SELECT lives_ok($$SELECT salesmgmt.backfill_rep_team(4, 1, '2023-12-01', '2024-02-15')$$, 'back-fill over versions');
SELECT results_eq($$SELECT team_id, valid_from, valid_to FROM salesmgmt.rep_team_history WHERE rep_id = 4 ORDER BY valid_from$$,
                  $$VALUES (1::bigint, '2023-12-01'::date, '2024-02-15'::date), (2, current_date, 'infinity')$$,
                  'the versions it covers are replaced');
-- East was under West until 2024-02-01, managed by Bea's predecessor Cal
SELECT lives_ok($$SELECT salesmgmt.backfill_team(1, 2, 3, '2023-01-01', '2024-01-15')$$, 'back-fill of a team''s past');
SELECT results_eq($$SELECT managers FROM salesmgmt.org_as_of('2024-01-10') WHERE rep_id = 4$$,
                  $$VALUES (ARRAY[3, 2]::bigint[])$$, 'the managers of a day follow the past tree, each once');

-- ------------------------------------------------------------ bad inputs
SELECT throws_ok($$SELECT salesmgmt.backfill_rep_team(NULL, 1, '2024-01-01', '2024-02-01')$$, '22004', NULL, 'null rep: 22004');
SELECT throws_ok($$SELECT salesmgmt.backfill_rep_team(4, 1, NULL, '2024-02-01')$$, '22004', NULL, 'null start: 22004');
SELECT throws_ok($$SELECT salesmgmt.backfill_team(1, NULL, NULL, '2024-01-01', NULL)$$, '22004', NULL, 'null end: 22004');
SELECT throws_ok($$SELECT salesmgmt.backfill_rep_team(4, 1, '2024-02-01', '2024-02-01')$$, 'SM105', NULL, 'an empty window: SM105');
SELECT throws_ok($$SELECT salesmgmt.backfill_rep_team(4, 1, '-infinity', '2024-02-01')$$, 'SM105', NULL, 'an infinite start: SM105');
SELECT throws_ok($$SELECT salesmgmt.backfill_rep_team(4, 1, '2024-01-01', current_date + 1)$$, 'SM106', NULL, 'a window ending after today: SM106');
SELECT throws_ok($$SELECT salesmgmt.backfill_rep_team(99, 1, '2024-01-01', '2024-02-01')$$, '23503', NULL, 'unknown rep: 23503');
SELECT throws_ok($$SELECT salesmgmt.backfill_rep_team(4, 99, '2024-01-01', '2024-02-01')$$, '23503', NULL, 'unknown team: 23503');
SELECT throws_ok($$SELECT salesmgmt.backfill_team(99, NULL, NULL, '2024-01-01', '2024-02-01')$$, '23503', NULL, 'unknown team: 23503');
SELECT throws_ok($$SELECT salesmgmt.backfill_team(1, 99, NULL, '2024-01-01', '2024-02-01')$$, '23503', NULL, 'unknown parent: 23503');
SELECT throws_ok($$SELECT salesmgmt.backfill_team(1, NULL, 99, '2024-01-01', '2024-02-01')$$, '23503', NULL, 'unknown manager: 23503');
SELECT throws_ok($$SELECT salesmgmt.backfill_team(1, 1, NULL, '2024-01-01', '2024-02-01')$$, '23514', NULL, 'own parent: 23514');
SELECT throws_ok($$SELECT salesmgmt.backfill_rep_team('x', 1, '2024-01-01', '2024-02-01')$$, '22P02', NULL, 'a rep id that is no number: 22P02');
SELECT throws_ok($$SELECT * FROM salesmgmt.org_as_of(NULL)$$, '22004', NULL, 'org_as_of(null): 22004');
SELECT throws_ok($$INSERT INTO salesmgmt.rep_team_history (rep_id, team_id, valid_from, valid_to)
                   VALUES (4, 1, '2024-01-01', '2024-03-01')$$, '23P01', NULL, 'overlapping versions: 23P01');
SELECT throws_ok($$INSERT INTO salesmgmt.team_history (team_id, valid_from, valid_to)
                   VALUES (1, '2024-03-01', '2024-03-01')$$, '23514', NULL, 'an empty version: 23514');
SELECT results_eq($$SELECT team_id, valid_from, valid_to FROM salesmgmt.rep_team_history WHERE rep_id = 4 ORDER BY valid_from$$,
                  $$VALUES (1::bigint, '2023-12-01'::date, '2024-02-15'::date), (2, current_date, 'infinity')$$,
                  'refused calls left the history as it was');

-- --------------------------------------------- forecasts as they stood
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
INSERT INTO salesmgmt.pipeline (pipeline_id, name) VALUES (1, 'New business');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (1, 1, 'Commit', 1, 0.80, 'commit', 'open'), (2, 1, 'Won', 2, 1, 'closed', 'won');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            expected_close_date, stage_entered_at) VALUES
    (1, 'Sam 1', 1, 4, 1, 1, 1000, '2024-03-31', '2024-01-05'),
    (2, 'Ann 1', 1, 1, 1, 1, 500, '2024-03-31', '2024-01-05'),
    (3, 'Gone', 1, 2, 1, 1, 300, '2024-03-31', '2024-01-05');
SELECT results_eq($$SELECT group_name, commit FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'team', '2024-02-01')
                     WHERE group_name IN ('East', 'West') ORDER BY 1$$,
                  $$VALUES ('East'::text, 1500.00::numeric), ('West', 300.00)$$,
                  'as of 2024-02-01 Sam''s deal counts for East, where he was');
SELECT results_eq($$SELECT group_name, commit FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'team')
                     WHERE group_name IN ('East', 'West') ORDER BY 1$$,
                  $$VALUES ('East'::text, 500.00::numeric), ('West', 1300.00)$$,
                  'today it counts for West');
-- a split changed now: as of before, the old split
INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share) VALUES (1, 4, 1);
UPDATE salesmgmt.deal_split_history SET valid_from = '2024-01-01' WHERE deal_id = 1;
UPDATE salesmgmt.deal_split SET rep_id = 1 WHERE deal_id = 1;
SELECT results_eq($$SELECT rep_id, valid_to = now() FROM salesmgmt.deal_split_history WHERE deal_id = 1 ORDER BY valid_from$$,
                  $$VALUES (4::bigint, true), (1, false)$$, 'a changed split ends its version now');
SELECT results_eq($$SELECT group_name, commit FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'rep', '2024-02-01')
                     WHERE group_name IN ('Ann', 'Samuel') ORDER BY 1$$,
                  $$VALUES ('Ann'::text, 500.00::numeric), ('Samuel', 1000.00)$$, 'as of before the change, the old split');
SELECT results_eq($$SELECT group_name, commit FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'rep', now())
                     WHERE group_name IN ('Ann', 'Samuel') ORDER BY 1$$,
                  $$VALUES ('Ann'::text, 1500.00::numeric)$$, 'as of now, the new split (Sam has nothing left)');
-- a quota changed now: as of before, the old amount
INSERT INTO salesmgmt.quota (quota_id, rep_id, period_start, period_end, amount) VALUES (1, 1, '2024-01-01', '2024-03-31', 4000);
UPDATE salesmgmt.quota_history SET valid_from = '2024-01-01' WHERE quota_id = 1;
UPDATE salesmgmt.quota SET amount = 3000 WHERE quota_id = 1;
SELECT results_eq($$SELECT quota FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'rep', '2024-02-01') WHERE group_name = 'Ann'
                    UNION ALL
                    SELECT quota FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'rep') WHERE group_name = 'Ann'$$,
                  $$VALUES (4000.00::numeric), (3000.00)$$, 'the quota as it was, then as it is');
-- deletions: before the moment out, after it in
DELETE FROM salesmgmt.deal WHERE deal_id = 3;
SELECT is((SELECT count(*)::int FROM salesmgmt.deal_deletion WHERE deal_id = 3 AND deleted_at = now()), 1,
          'the deletion is recorded');
SELECT results_eq($$SELECT deal_count FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total', '2024-02-01')
                    UNION ALL
                    SELECT deal_count FROM salesmgmt.forecast('2024-01-01', '2024-03-31', 'total', now())$$,
                  $$VALUES (3::bigint), (2)$$, 'a deal deleted after the moment stays in, one deleted before it leaves');

-- --------------------------------------- overrides: the manager of the day
INSERT INTO salesmgmt.commission_plan (plan_id, name, period, override_rate) VALUES
    (1, 'Seller', 'month', NULL), (2, 'Manager', 'month', 0.10);
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, rate) VALUES (1, 0, 0.05), (2, 0, 0);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES
    (4, 1, '2024-01-01'), (1, 2, '2024-01-01'), (2, 2, '2024-01-01');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            stage_entered_at, closed_at) VALUES
    (11, 'Sam Feb', 1, 4, 1, 2, 2000, '2024-02-10', '2024-02-10'),
    (12, 'Sam Mar', 1, 4, 1, 2, 3000, '2024-03-10', '2024-03-10');
SELECT results_eq($$SELECT rep_id, overrides FROM salesmgmt.run_commissions('2024-02-01', '2024-02-29') WHERE rep_id IN (1, 2) ORDER BY 1$$,
                  $$VALUES (1::bigint, 200.00::numeric), (2, 0.00)$$, 'February: the override goes to Ann, Sam''s manager then');
SELECT results_eq($$SELECT rep_id, overrides FROM salesmgmt.run_commissions('2024-03-01', '2024-03-31') WHERE rep_id IN (1, 2) ORDER BY 1$$,
                  $$VALUES (1::bigint, 0.00::numeric), (2, 300.00)$$, 'March: to Bea, his manager since February 15');

-- TRUNCATE fires no row trigger: a statement trigger ends the versions
TRUNCATE salesmgmt.quota;
SELECT is((SELECT count(*)::int FROM salesmgmt.quota_history WHERE valid_to = 'infinity'), 0,
          'a truncated table leaves no open version');

SELECT * FROM finish();
ROLLBACK;

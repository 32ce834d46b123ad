-- pgTAP: quotas and team membership as they were (issue 19,
-- src/quota_as_of.sql): a team quota credits the reps of each day, a quota
-- of a period that is over counts as it was at its end, in
-- quota_attainment, target_pacing, KPI scorecards and commissions.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(23);
SET LOCAL TimeZone = 'UTC';
SET LOCAL salesmgmt.reporting_currency = 'USD';

-- ---------------------------------------------------------------- structure
SELECT has_view('salesmgmt', 'quota_of_record', 'quota_of_record exists');
SELECT has_function('salesmgmt', '_team_member_spans', '{}'::text[], '_team_member_spans() exists');
SELECT is((SELECT count(*)::int FROM pg_attribute a
            WHERE a.attrelid = 'salesmgmt.quota_of_record'::regclass AND a.attnum > 0
              AND col_description(a.attrelid, a.attnum) IS NULL)
          + (SELECT count(*)::int FROM pg_class c
              WHERE c.oid IN ('salesmgmt.quota_of_record'::regclass, 'salesmgmt.quota_rep'::regclass)
                AND obj_description(c.oid, 'pg_class') IS NULL)
          + (SELECT count(*)::int FROM pg_proc p
              WHERE p.oid = 'salesmgmt._team_member_spans()'::regprocedure
                AND obj_description(p.oid, 'pg_proc') IS NULL), 0, 'every new object and column has a comment');
SELECT ok((SELECT 'security_invoker=true' = ANY (c.reloptions) FROM pg_class c
            WHERE c.oid = 'salesmgmt.quota_of_record'::regclass), 'quota_of_record reads with the reader''s rights');
SELECT ok(has_function_privilege('salesmgmt_rep', 'salesmgmt._team_member_spans()', 'EXECUTE')
          AND has_function_privilege('salesmgmt_analyst', 'salesmgmt._team_member_spans()', 'EXECUTE')
          AND NOT has_function_privilege('public', 'salesmgmt._team_member_spans()', 'EXECUTE'),
          'reps, managers and BI logins run the spans through the views; PUBLIC does not');

-- ---------------------------------------------------------------- the org
-- Sales (3) above East (1) and West (2).  Sam (4) was in East until
-- 2024-02-15 and is in West since (the gap until his current version is
-- West's: a day before a version takes the next one).
INSERT INTO salesmgmt.team (team_id, name) VALUES (3, 'Sales');
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES (1, 'East', 3), (2, 'West', 3);
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Ann', 1), (2, 'Bea', 2), (4, 'Sam', 2);
SELECT salesmgmt.backfill_rep_team(4, 1, '2024-01-01', '2024-02-15');

SELECT results_eq($$SELECT team_id, from_day, to_day FROM salesmgmt._team_member_spans() WHERE rep_id = 4 ORDER BY 1$$,
                  $$VALUES (1::bigint, '-infinity'::date, '2024-02-15'::date), (2, '2024-02-15', 'infinity'),
                           (3, '-infinity', 'infinity')$$,
                  'Sam''s spans: East, then West, Sales throughout (one span, not two)');
SELECT results_eq($$SELECT team_id, from_day, to_day FROM salesmgmt._team_member_spans() WHERE rep_id = 1 ORDER BY 1$$,
                  $$VALUES (1::bigint, '-infinity'::date, 'infinity'::date), (3, '-infinity', 'infinity')$$,
                  'Ann never moved: East and Sales for all days');

INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
INSERT INTO salesmgmt.pipeline (pipeline_id, name) VALUES (1, 'New business');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (1, 1, 'Commit', 1, 0.80, 'commit', 'open'), (2, 1, 'Won', 2, 1, 'closed', 'won');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
                            stage_entered_at, closed_at) VALUES
    (11, 'Sam Feb', 1, 4, 1, 2, 2000, '2024-02-10', '2024-02-10 12:00'),
    (12, 'Sam Mar', 1, 4, 1, 2, 3000, '2024-03-10', '2024-03-10 12:00'),
    (13, 'Ann Mar', 1, 1, 1, 2, 500, '2024-03-20', '2024-03-20 12:00');

-- --------------------------------------------- team quotas, Q1 2024
-- created today, after the quarter ended: a late import counts with its
-- first version.  East: Ann 500 + Sam's February 2000 = 2500; West: Sam's
-- March 3000; Sales: everything, 5500.  (Today's tree would give East 500
-- and West 5000.)
INSERT INTO salesmgmt.quota (quota_id, team_id, period_start, period_end, amount) VALUES
    (21, 1, '2024-01-01', '2024-03-31', 10000), (22, 2, '2024-01-01', '2024-03-31', 10000),
    (23, 3, '2024-01-01', '2024-03-31', 20000);
SELECT results_eq($$SELECT quota_id, won_amount FROM salesmgmt.quota_attainment WHERE quota_id IN (21, 22, 23) ORDER BY 1$$,
                  $$VALUES (21::bigint, 2500.00::numeric), (22, 3000.00), (23, 5500.00)$$,
                  'quota_attainment: a rep who moved mid-quarter counts for each team for his days in it');
SELECT results_eq($$SELECT quota_id, attained FROM salesmgmt.target_pacing WHERE quota_id IN (21, 22, 23) ORDER BY 1$$,
                  $$VALUES (21::bigint, 2500.00::numeric), (22, 3000.00), (23, 5500.00)$$,
                  'target_pacing: the same split of Sam''s deals between East and West');
SELECT results_eq($$SELECT rep_id, period_start, period_end FROM salesmgmt.quota_rep WHERE quota_id = 21 ORDER BY 1$$,
                  $$VALUES (1::bigint, '2024-01-01'::date, '2024-03-31'::date), (4, '2024-01-01', '2024-02-14')$$,
                  'quota_rep: Sam counts toward East until February 14');
SELECT results_eq($$SELECT quota_id, period_over, amount FROM salesmgmt.quota_of_record WHERE quota_id = 21$$,
                  $$VALUES (21::bigint, true, 10000.00::numeric)$$,
                  'a quota created after its period ended counts with its first version');

-- ------------------------------------------- quota amounts of record
-- 31: Sam's Q1 quota, 4000 since 2024-01-01, raised to 8000 today (after
-- the quarter): past figures keep 4000.
INSERT INTO salesmgmt.quota (quota_id, rep_id, period_start, period_end, amount) VALUES (31, 4, '2024-01-01', '2024-03-31', 4000);
UPDATE salesmgmt.quota_history SET valid_from = '2024-01-01' WHERE quota_id = 31;
UPDATE salesmgmt.quota SET amount = 8000 WHERE quota_id = 31;
-- 32: Ann's quota of the current period, 1000 raised to 2000 today: 2000
INSERT INTO salesmgmt.quota (quota_id, rep_id, period_start, period_end, amount)
VALUES (32, 1, current_date - 10, current_date + 10, 1000);
UPDATE salesmgmt.quota_history SET valid_from = now() - interval '20 days' WHERE quota_id = 32;
UPDATE salesmgmt.quota SET amount = 2000 WHERE quota_id = 32;
-- 33: Bea's Q1 quota, deleted on 2024-03-01 (before the quarter ended)
INSERT INTO salesmgmt.quota (quota_id, rep_id, period_start, period_end, amount) VALUES (33, 2, '2024-01-01', '2024-03-31', 5000);
UPDATE salesmgmt.quota_history SET valid_from = '2024-01-01' WHERE quota_id = 33;
DELETE FROM salesmgmt.quota WHERE quota_id = 33;
UPDATE salesmgmt.quota_history SET valid_to = '2024-03-01' WHERE quota_id = 33;
-- 34: Ann's Q1 quota, 700, deleted today (after the quarter ended)
INSERT INTO salesmgmt.quota (quota_id, rep_id, period_start, period_end, amount) VALUES (34, 1, '2024-01-01', '2024-03-31', 700);
UPDATE salesmgmt.quota_history SET valid_from = '2024-01-01' WHERE quota_id = 34;
DELETE FROM salesmgmt.quota WHERE quota_id = 34;

SELECT results_eq($$SELECT quota_amount, won_amount, attainment FROM salesmgmt.quota_attainment WHERE quota_id = 31$$,
                  $$VALUES (4000.00::numeric, 5000.00::numeric, 1.2500::numeric)$$,
                  'quota_attainment of a past quarter: the amount at its end (4000), not today''s 8000');
SELECT results_eq($$SELECT amount, attained_pct FROM salesmgmt.target_pacing WHERE quota_id = 31$$,
                  $$VALUES (4000.00::numeric, 125.00::numeric)$$,
                  'target_pacing of a past quarter: the amount at its end');
SELECT is((SELECT quota_amount FROM salesmgmt.quota_attainment WHERE quota_id = 32), 2000.00::numeric,
          'a quota of the current period counts as it is today');
SELECT is((SELECT amount FROM salesmgmt.target_pacing WHERE quota_id = 32), 2000.00::numeric,
          'target_pacing: the current period''s quota as it is today');
SELECT is((SELECT count(*)::int FROM salesmgmt.quota_attainment WHERE quota_id = 33), 0,
          'a quota deleted before its period ended counts no more');
SELECT results_eq($$SELECT rep_id, quota_amount, won_amount FROM salesmgmt.quota_attainment WHERE quota_id = 34$$,
                  $$VALUES (1::bigint, 700.00::numeric, 500.00::numeric)$$,
                  'a quota deleted after its period ended still counts');
SELECT is((SELECT count(*)::int FROM salesmgmt.quota_of_record), 6,
          'quota_of_record: one row per quota that counts (21-23, 31, 32, 34)');

-- a rep reads the quotas of record he may see: his own and his team's
CREATE ROLE quota_as_of_tap_sam IN ROLE salesmgmt_rep;
UPDATE salesmgmt.rep SET db_role = 'quota_as_of_tap_sam' WHERE rep_id = 4;
SET ROLE quota_as_of_tap_sam;
SELECT results_eq($$SELECT quota_id, amount FROM salesmgmt.quota_of_record ORDER BY 1$$,
                  $$VALUES (22::bigint, 10000.00::numeric), (31, 4000.00)$$,
                  'a rep sees his own and his team''s quotas of record, as they were');
SELECT results_eq($$SELECT quota_id, rep_id, period_start, period_end FROM salesmgmt.quota_rep ORDER BY 1, 2$$,
                  $$VALUES (22::bigint, 2::bigint, '2024-01-01'::date, '2024-03-31'::date),
                           (22, 4, '2024-02-15', '2024-03-31'), (31, 4, '2024-01-01', '2024-03-31')$$,
                  'and reads quota_rep (the spans, with his rights)');
SELECT results_eq($$SELECT quota_id, quota_amount FROM salesmgmt.quota_attainment ORDER BY 1$$,
                  $$VALUES (22::bigint, 10000.00::numeric), (31, 4000.00)$$,
                  'and quota_attainment (it calls deal_new_arr, which reps may execute)');
RESET ROLE;

-- --------------------------------------------- a past scorecard
-- Sam's Q1 quota attainment: 5000 won / 4000 = 125%
INSERT INTO salesmgmt.kpi (kpi_id, code, name, metric, method, target, cap) VALUES
    (1, 'att', 'Quota attainment', 'quota_attainment', 'achievement', 100, 200);
INSERT INTO salesmgmt.kpi_scheme (scheme_id, name) VALUES (1, 'S');
INSERT INTO salesmgmt.kpi_scheme_item VALUES (1, 1, 100);
SELECT is((SELECT (details -> 'att' ->> 'value')::numeric FROM salesmgmt.compute_scorecards(1, '2024-01-01', '2024-03-31')
            WHERE rep_id = 4), 125.0000::numeric,
          'the scorecard of a past quarter uses the quota at its end');

-- ------------------------------------- commissions, rerun for Q1 2024
INSERT INTO salesmgmt.commission_plan (plan_id, name, period) VALUES (1, 'Seller', 'quarter');
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, rate) VALUES (1, 0, 0.05);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from) VALUES (4, 1, '2024-01-01');
SELECT results_eq($$SELECT credit, quota FROM salesmgmt.run_commissions('2024-01-01', '2024-03-31') WHERE rep_id = 4$$,
                  $$VALUES (5000.00::numeric, 4000.00::numeric)$$,
                  'a rerun of the commissions of a past quarter uses the quota at its end');

SELECT * FROM finish();
ROLLBACK;

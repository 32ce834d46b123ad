-- pgTAP: KPI scoring, schemes and scorecards: structure, SQLSTATEs, the
-- missing-data rule, ties, and custom metric functions called safely.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SET salesmgmt.reporting_currency = 'USD';  -- the test relies on the default, whatever postgresql.conf says
SET TimeZone = 'UTC';
SELECT plan(68);

-- structure
SELECT has_table('salesmgmt', t, 'table salesmgmt.' || t || ' exists')
  FROM unnest(ARRAY['review', 'csat_response', 'training_course', 'training_enrollment', 'recognition',
                    'kpi', 'kpi_scheme', 'kpi_scheme_item', 'scorecard', 'scorecard_item']) AS t;
SELECT has_view('salesmgmt', v, 'view salesmgmt.' || v || ' exists')
  FROM unnest(ARRAY['leaderboard', 'target_pacing', 'training_status']) AS v;
SELECT col_is_pk('salesmgmt', 'kpi_scheme_item', ARRAY['scheme_id', 'kpi_id'], 'scheme items are keyed by scheme and KPI');
SELECT col_is_pk('salesmgmt', 'scorecard_item', ARRAY['scorecard_id', 'kpi_id'], 'scorecard lines are keyed by scorecard and KPI');
SELECT col_is_pk('salesmgmt', 'training_enrollment', ARRAY['rep_id', 'course_id'], 'one enrollment per rep and course');
SELECT has_function('salesmgmt', 'kpi_score', ARRAY['numeric', 'numeric', 'text', 'text', 'numeric', 'numeric'], 'kpi_score exists');
SELECT has_function('salesmgmt', 'compute_scorecards', ARRAY['bigint', 'date', 'date'], 'compute_scorecards exists');
SELECT is((SELECT provolatile::text FROM pg_proc WHERE oid = 'salesmgmt.kpi_score(numeric,numeric,text,text,numeric,numeric)'::regprocedure),
          'i', 'kpi_score is immutable');
SELECT set_eq($$SELECT conname::text FROM pg_constraint
                 WHERE conrelid IN ('salesmgmt.review'::regclass, 'salesmgmt.csat_response'::regclass)
                   AND conname LIKE '%range'$$,
              ARRAY['review_discipline_range', 'review_teamwork_range', 'review_customer_service_range',
                    'csat_response_csat_range', 'csat_response_nps_range'],
              'ratings and survey answers have named range constraints');
SELECT is((SELECT count(*)::int FROM pg_extension e, unnest(e.extconfig) cfg
            WHERE e.extname = 'salesmgmt' AND cfg::regclass::text LIKE 'salesmgmt.%'
              AND cfg::regclass::text IN ('salesmgmt.review', 'salesmgmt.csat_response', 'salesmgmt.training_course',
                  'salesmgmt.training_enrollment', 'salesmgmt.recognition', 'salesmgmt.kpi', 'salesmgmt.kpi_scheme',
                  'salesmgmt.kpi_scheme_item', 'salesmgmt.scorecard', 'salesmgmt.scorecard_item')),
          10, 'every KPI table is kept by pg_dump');
SELECT is((SELECT count(*)::int FROM salesmgmt.kpi_metrics() WHERE metric <> 'custom'), 16, 'sixteen built-in metrics');

-- kpi_score
SELECT is(salesmgmt.kpi_score(45, 60, 'achievement'), 75.00, 'achievement: 45 of 60 is 75');
SELECT is(salesmgmt.kpi_score(45, 30, 'reduction', 'lower'), 50.00, 'reduction: 45 days against 30 is 50');
SELECT is(salesmgmt.kpi_score(200, 100, 'achievement', 'higher', NULL, 120), 120.00, 'capped at 120');
SELECT is(salesmgmt.kpi_score(40, 100, 'achievement', 'higher', 50), 0.00, 'below the floor scores 0');
SELECT is(salesmgmt.kpi_score(20, 10, 'band', 'lower', 30), 50.00, 'band, lower is better: halfway');
SELECT is(salesmgmt.kpi_score(NULL, 10, 'threshold'), NULL, 'no data, no score');
SELECT throws_ok($$SELECT salesmgmt.kpi_score(1, 0, 'achievement')$$, '22023', NULL, 'a zero target is refused (22023)');
SELECT throws_ok($$SELECT salesmgmt.kpi_score(1, 1, 'achievement', 'higher', NULL, -1)$$, '22023', 'cap must not be negative',
                 'a negative cap is refused');
SELECT throws_ok($$SELECT salesmgmt.kpi_score(1, NULL, 'achievement')$$, '22004', NULL, 'a null target is refused (22004)');

-- a small world
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, email, team_id) VALUES
    (1, 'Ann', 'ann@example.com', 1), (2, 'Ben', 'ben@example.com', 1), (3, 'Cat', 'cat@example.com', 1);
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) VALUES (1, 'Acme', 1);
INSERT INTO salesmgmt.pipeline (pipeline_id, name) VALUES (1, 'P');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (1, 1, 'Open', 1, 0.5, 'pipeline', 'open'), (2, 1, 'Won', 2, 1, 'closed', 'won');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, created_at, stage_entered_at)
VALUES (1, 'a', 1, 1, 1, 1, 800, '2026-01-02', '2026-01-02'),
       (2, 'b', 1, 2, 1, 1, 1000, '2026-01-02', '2026-01-02'),
       (3, 'c', 1, 3, 1, 1, 1000, '2026-01-02', '2026-01-02');
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2026-02-01';
INSERT INTO salesmgmt.csat_response (account_id, rep_id, csat, responded_at) VALUES (1, 1, 5, '2026-02-10'), (1, 2, 3, '2026-02-10');

-- bad input: SQLSTATEs applications can catch
SELECT throws_ok($$INSERT INTO salesmgmt.review (rep_id, reviewer_rep_id, period_start, period_end, discipline)
                   VALUES (1, 2, '2026-01-01', '2026-03-31', 6)$$,
                 '23514', NULL, 'a rating of 6 is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.csat_response (account_id, rep_id, nps) VALUES (1, 1, 11)$$,
                 '23514', NULL, 'an NPS answer of 11 is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.kpi (code, name, metric, target) VALUES ('x', 'x', 'luck', 1)$$,
                 '23514', 'unknown KPI metric "luck"', 'an unknown metric is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.kpi (code, name, metric, target, cap) VALUES ('x', 'x', 'deals_won', 1, -1)$$,
                 '23514', 'cap must not be negative', 'a cap below 0 is refused');

-- the missing-data rule: Cat has no CSAT, so revenue carries all the weight
INSERT INTO salesmgmt.kpi (kpi_id, code, name, metric, method, target) VALUES
    (1, 'revenue', 'Revenue', 'revenue_won', 'achievement', 1000),
    (2, 'csat', 'CSAT', 'csat_avg', 'achievement', 5);
INSERT INTO salesmgmt.kpi_scheme (scheme_id, name) VALUES (1, 'S');
INSERT INTO salesmgmt.kpi_scheme_item VALUES (1, 1, 50), (1, 2, 40);
SELECT throws_ok('SET CONSTRAINTS ALL IMMEDIATE', '23514', 'weights of KPI scheme 1 sum to 90.00, not 100',
                 'weights that do not sum to 100 are refused at commit');
SET CONSTRAINTS ALL DEFERRED;
SELECT throws_ok($$SELECT * FROM salesmgmt.compute_scorecards(1, '2026-01-01', '2026-03-31')$$,
                 'SM030', NULL, 'a scheme whose weights are not (yet) 100 is not computed (SM030)');
UPDATE salesmgmt.kpi_scheme_item SET weight = 50 WHERE kpi_id = 2;
SELECT lives_ok('SET CONSTRAINTS ALL IMMEDIATE', 'weights of 100 pass the commit check');
SET CONSTRAINTS ALL DEFERRED;
-- Ann: revenue 80, CSAT 100 -> 90 (A); Ben: 100 and 60 -> 80 (B); Cat: revenue
-- 100 and no CSAT -> 100 (A), not 50: the missing KPI's weight is shared out
SELECT results_eq($$SELECT rep_id, score, grade, rank FROM salesmgmt.compute_scorecards(1, '2026-01-01', '2026-03-31')$$,
                  $$VALUES (3::bigint, 100.00::numeric, 'A'::text, 1), (1, 90.00, 'A', 2), (2, 80.00, 'B', 3)$$,
                  'a KPI without data gives its weight to the others');
SELECT is((SELECT coverage FROM salesmgmt.scorecard WHERE rep_id = 3), 50.00::numeric, 'Cat''s coverage is 50');
SELECT is((SELECT i.effective_weight FROM salesmgmt.scorecard s JOIN salesmgmt.scorecard_item i USING (scorecard_id)
            WHERE s.rep_id = 3 AND i.kpi_id = 1), 100.0000::numeric, 'revenue counts 100% for Cat');
SELECT is((SELECT details -> 'csat' FROM salesmgmt.compute_scorecards(1, '2026-01-01', '2026-03-31') WHERE rep_id = 3),
          '{"metric": "csat_avg", "value": null, "score": null, "weight": 50.00, "effective_weight": 0}'::jsonb,
          'the details show the missing KPI');

-- ties share a rank, and the next rank is skipped
INSERT INTO salesmgmt.rep (rep_id, name, email, team_id) VALUES (4, 'Dan', 'dan@example.com', 1);
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, created_at, stage_entered_at)
VALUES (4, 'd', 1, 4, 1, 1, 800, '2026-01-02', '2026-01-02');
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2026-02-01' WHERE deal_id = 4;
INSERT INTO salesmgmt.csat_response (account_id, rep_id, csat, responded_at) VALUES (1, 4, 5, '2026-02-11');
SELECT results_eq($$SELECT rep_id, rank FROM salesmgmt.compute_scorecards(1, '2026-01-01', '2026-03-31')$$,
                  $$VALUES (3::bigint, 1), (1, 2), (4, 2), (2, 4)$$, 'Ann and Dan share rank 2; Ben is 4th');
SELECT is((SELECT count(*)::int FROM salesmgmt.scorecard WHERE scheme_id = 1), 4, 'recomputing replaced the period');
SELECT is((SELECT count(*)::int FROM salesmgmt.scorecard_item), 8, 'and its lines');

-- custom metrics: resolved by exact signature, stored qualified, called quoted
CREATE SCHEMA "Odd ""Schema""";
CREATE FUNCTION "Odd ""Schema"""."Metric; DROP TABLE x"(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric) LANGUAGE sql STABLE
AS $$ SELECT r.rep_id, r.rep_id * 10::numeric FROM salesmgmt.rep r $$;
INSERT INTO salesmgmt.kpi (kpi_id, code, name, metric, metric_function, method, target)
VALUES (3, 'odd', 'Odd', 'custom', '"Odd ""Schema"""."Metric; DROP TABLE x"', 'achievement', 40);
SELECT is((SELECT metric_function FROM salesmgmt.kpi WHERE kpi_id = 3), '"Odd ""Schema"""."Metric; DROP TABLE x"',
          'a name that needs quoting is stored quoted');
INSERT INTO salesmgmt.kpi_scheme (scheme_id, name) VALUES (2, 'Custom');
INSERT INTO salesmgmt.kpi_scheme_item VALUES (2, 3, 100);
SELECT results_eq($$SELECT rep_id, score FROM salesmgmt.compute_scorecards(2, '2026-01-01', '2026-03-31')$$,
                  $$VALUES (4::bigint, 100.00::numeric), (3, 75.00), (2, 50.00), (1, 25.00)$$,
                  'the function is called by its quoted name');
-- an unqualified name is resolved when the KPI is saved, not at each run
CREATE SCHEMA m1;
CREATE SCHEMA m2;
CREATE FUNCTION m1.pick(p_from date, p_to date) RETURNS TABLE (rep_id bigint, value numeric)
LANGUAGE sql STABLE AS $$ SELECT 1::bigint, 1::numeric $$;
CREATE FUNCTION m2.pick(p_from date, p_to date) RETURNS TABLE (rep_id bigint, value numeric)
LANGUAGE sql STABLE AS $$ SELECT 1::bigint, 2::numeric $$;
SET LOCAL search_path = m1, public;
INSERT INTO salesmgmt.kpi (kpi_id, code, name, metric, metric_function, method, target)
VALUES (4, 'pick', 'Pick', 'custom', 'pick', 'achievement', 1);
SET LOCAL search_path = m2, public;
INSERT INTO salesmgmt.kpi_scheme (scheme_id, name) VALUES (3, 'Pick');
INSERT INTO salesmgmt.kpi_scheme_item VALUES (3, 4, 100);
SELECT is((SELECT details #>> '{pick,value}' FROM salesmgmt.compute_scorecards(3, '2026-01-01', '2026-03-31') WHERE rep_id = 1),
          '1.0000', 'search_path at run time does not change which function is called');
RESET search_path;
SELECT is((SELECT metric_function FROM salesmgmt.kpi WHERE kpi_id = 4), 'm1.pick', 'stored as m1.pick');
SELECT throws_ok($$INSERT INTO salesmgmt.kpi (code, name, metric, metric_function, target)
                   VALUES ('y', 'y', 'custom', 'm1.nothing', 1)$$,
                 '42883', NULL, 'an unknown metric function is refused (42883)');
CREATE FUNCTION m1.bad(p_from date, p_to date) RETURNS SETOF bigint LANGUAGE sql AS $$ SELECT 1::bigint $$;
SELECT throws_ok($$INSERT INTO salesmgmt.kpi (code, name, metric, metric_function, target)
                   VALUES ('y', 'y', 'custom', 'm1.bad', 1)$$,
                 '42P13', NULL, 'a metric function of the wrong shape is refused (42P13)');
SELECT throws_ok($$INSERT INTO salesmgmt.kpi (code, name, metric, metric_function, target)
                   VALUES ('y', 'y', 'custom', 'm1.pick(date, date)', 1)$$,
                 '42602', NULL, 'a signature instead of a name is refused (42602)');
CREATE OR REPLACE FUNCTION m1.pick(p_from date, p_to date) RETURNS TABLE (rep_id bigint, value numeric)
LANGUAGE sql STABLE AS $$ SELECT 1::bigint, 1::numeric UNION ALL SELECT 1, 2 $$;
SELECT throws_ok($$SELECT * FROM salesmgmt.compute_scorecards(3, '2026-01-01', '2026-03-31')$$,
                 'SM031', NULL, 'a metric function that returns a rep twice is refused (SM031)');
DROP FUNCTION m1.pick(date, date);
SELECT throws_ok($$SELECT * FROM salesmgmt.compute_scorecards(3, '2026-01-01', '2026-03-31')$$,
                 '42883', NULL, 'a dropped metric function is an error (42883)');
SELECT throws_ok($$SELECT * FROM salesmgmt.compute_scorecards(42, '2026-01-01', '2026-03-31')$$,
                 '42704', NULL, 'an unknown scheme is an error (42704)');
SELECT throws_ok($$SELECT * FROM salesmgmt.compute_scorecards(1, '2026-03-31', '2026-01-01')$$,
                 '22023', NULL, 'a period that ends before it starts is refused (22023)');

-- a computation that fails stores nothing
SELECT is((SELECT count(*)::int FROM salesmgmt.scorecard WHERE scheme_id = 3), 4, 'the failed recomputations left the earlier cards');

-- recognitions and the leaderboard
SELECT is((SELECT count(*)::int FROM salesmgmt.grant_recognitions(1, '2026-01-01', '2026-03-31', 2, 'badge', 'Top 2')), 3,
          'the top 2 by rank are three reps when two tie for second');
SELECT is((SELECT recognitions FROM salesmgmt.leaderboard WHERE scheme_id = 1 AND rep_id = 4), ARRAY['badge: Top 2'],
          'the leaderboard shows the recognitions of the period');
SELECT throws_ok($$SELECT * FROM salesmgmt.grant_recognitions(1, '2026-01-01', '2026-03-31', 0, 'badge', 'None')$$,
                 '22023', NULL, 'top must be at least 1');

-- a scheme scoped to a team scores the reps of the team and its sub-teams
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES (2, 'East', 1), (3, 'East squad', 2);
UPDATE salesmgmt.rep SET team_id = 3 WHERE rep_id = 2;
UPDATE salesmgmt.rep SET team_id = 2 WHERE rep_id = 4;
INSERT INTO salesmgmt.kpi_scheme (scheme_id, name, team_id) VALUES (5, 'East', 2);
INSERT INTO salesmgmt.kpi_scheme_item VALUES (5, 1, 100);
SELECT results_eq($$SELECT rep_id, score, rank FROM salesmgmt.compute_scorecards(5, '2026-01-01', '2026-03-31')$$,
                  $$VALUES (2::bigint, 100.00::numeric, 1), (4, 80.00, 2)$$,
                  'only Ben (sub-team) and Dan (team) are scored');

-- the training plan
INSERT INTO salesmgmt.training_course (course_id, name, hours, required) VALUES (1, 'Compliance', 2, true);
SELECT is(salesmgmt.enroll_reps(1, p_team_id => 2, p_due_date => '2026-06-30'), 2, 'enroll_reps enrolls the team tree (2 reps)');
SELECT is(salesmgmt.enroll_reps(1), 2, 'then the others, leaving the enrolled alone');
SELECT throws_ok($$SELECT salesmgmt.enroll_reps(99)$$, '42704', NULL, 'an unknown course is refused');
SELECT throws_ok($$SELECT salesmgmt.enroll_reps(1, 99)$$, '42704', NULL, 'an unknown team is refused');
SELECT throws_ok($$SELECT salesmgmt.enroll_reps(NULL)$$, '22004', NULL, 'a null course is refused');
SELECT throws_ok($$UPDATE salesmgmt.training_enrollment SET status = 'completed', completed_at = enrolled_at - interval '1 day'
                    WHERE rep_id = 1$$, '23514', NULL, 'a course cannot be completed before the enrollment');
SELECT is((SELECT required_courses || '/' || in_progress FROM salesmgmt.training_status WHERE rep_id = 1), '1/1',
          'training_status counts the required course in progress');

SELECT * FROM finish();
ROLLBACK;

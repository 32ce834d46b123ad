-- pgTAP: targeted training: structure, needs (low scores against the
-- threshold and the team median, expired certifications, prerequisites),
-- plan_training (idempotent, managers for their trees), coaching, the
-- effect's bad inputs, and that a refused call leaves the data as it was.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(65);

-- structure
SELECT has_table('salesmgmt', t, t || ' exists')
  FROM unnest(ARRAY['training_course_kpi', 'training_need_threshold', 'training_plan_assignment',
                    'training_effect_estimate']) t;
SELECT has_view('salesmgmt', v, v || ' exists') FROM unnest(ARRAY['training_needs', 'training_summary']) v;
SELECT has_column('salesmgmt', 'training_course', c, 'training_course.' || c)
  FROM unnest(ARRAY['prerequisite_course_id', 'valid_days']) c;
SELECT has_column('salesmgmt', 'activity', 'kpi_id', 'activity.kpi_id');
SELECT is((SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
            WHERE p.oid = 'salesmgmt.training_effect'::regproc), 'c', 'training_effect is C');
SELECT is((SELECT count(*)::int FROM pg_class c
            WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind = 'r'
              AND c.relname IN ('training_course_kpi', 'training_need_threshold', 'training_plan_assignment',
                                'training_effect_estimate')
              AND c.relrowsecurity), 4, 'every training table has row-level security');
SELECT is((SELECT count(*)::int FROM pg_extension e, unnest(e.extconfig) c
            WHERE e.extname = 'salesmgmt' AND c::regclass::text IN ('salesmgmt.training_course_kpi',
              'salesmgmt.training_need_threshold', 'salesmgmt.training_plan_assignment',
              'salesmgmt.training_effect_estimate')), 4, 'every training table is dumped with the data');
SELECT is((SELECT count(*)::int FROM pg_proc p
            WHERE p.pronamespace = 'salesmgmt'::regnamespace
              AND p.proname IN ('training_needs_for', 'plan_training', 'training_effect', 'record_training_effect')
              AND obj_description(p.oid, 'pg_proc') IS NULL), 0, 'every training function has a comment');
SELECT is((SELECT count(*)::int FROM pg_proc p, aclexplode(p.proacl) a
            WHERE p.pronamespace = 'salesmgmt'::regnamespace AND a.grantee = 0
              AND p.proname IN ('training_needs_for', 'plan_training', 'training_effect', 'record_training_effect')),
          0, 'no training function is executable by PUBLIC');

-- a world: team 1 (manager rep 1) with sub-team 2 (reps 2, 3, 4); rep 5 in
-- team 3, another tree; activities make rep 2 weak, rep 3 strong
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Top'), (3, 'Other');
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES (2, 'Squad', 1);
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES
    (1, 'Manager', 1), (2, 'Weak', 2), (3, 'Strong', 2), (4, 'Middle', 2), (5, 'Far', 3);
UPDATE salesmgmt.team SET manager_rep_id = 1 WHERE team_id = 1;
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) VALUES (1, 'Acme', 2);
INSERT INTO salesmgmt.activity (kind, account_id, rep_id, occurred_at)
SELECT 'call', 1, r, '2026-01-10'::date + i
  FROM (VALUES (2, 1), (3, 10), (4, 5), (5, 1)) v(r, n), generate_series(1, n) i;
INSERT INTO salesmgmt.kpi (kpi_id, code, name, metric, target) OVERRIDING SYSTEM VALUE
VALUES (1, 'activities', 'Activities', 'activities', 10), (2, 'win_rate', 'Win rate', 'win_rate', 40),
       (3, 'csat', 'CSAT', 'csat_avg', 4);
INSERT INTO salesmgmt.kpi_scheme (scheme_id, name) OVERRIDING SYSTEM VALUE VALUES (1, 'S');
INSERT INTO salesmgmt.kpi_scheme_item VALUES (1, 1, 100);
INSERT INTO salesmgmt.training_course (course_id, name, hours, valid_days) OVERRIDING SYSTEM VALUE
VALUES (1, 'Basics', 2, NULL), (2, 'Prospecting', 4, NULL), (3, 'Certified seller', 8, 30);
UPDATE salesmgmt.training_course SET prerequisite_course_id = 1 WHERE course_id = 2;
INSERT INTO salesmgmt.training_course_kpi VALUES (1, 1), (2, 1), (3, 2);
SELECT is((SELECT count(*)::int FROM salesmgmt.compute_scorecards(1, '2026-01-01', '2026-03-31')), 5,
          'scorecards computed');

-- course rules
SELECT throws_ok('UPDATE salesmgmt.training_course SET prerequisite_course_id = 1 WHERE course_id = 1',
                 '23514', NULL, 'a course is not its own prerequisite');
SELECT throws_ok('UPDATE salesmgmt.training_course SET valid_days = 0 WHERE course_id = 1',
                 '23514', NULL, 'a validity is positive');
SELECT throws_ok('INSERT INTO salesmgmt.training_course_kpi VALUES (1, 99)', '23503', NULL,
                 'a course targets an existing KPI');
SELECT throws_ok('INSERT INTO salesmgmt.training_need_threshold VALUES (1, -1)', '23514', NULL,
                 'a threshold is not negative');

-- needs: scores 10 (rep 2, 5), 100 (rep 3), 50 (rep 4); threshold 60
SELECT is((SELECT array_agg(rep_id || ':' || course_id || ':' || need_rank ORDER BY rep_id, need_rank)
             FROM salesmgmt.training_needs),
          ARRAY['1:1:1', '1:2:2', '2:1:1', '2:2:2', '4:1:1', '4:2:2', '5:1:1', '5:2:2'],
          'reps below 60 on activities need both courses aimed at it');
SELECT is((SELECT (kpi_code, score, team_median, threshold, gap, reason)::text FROM salesmgmt.training_needs
            WHERE rep_id = 2 AND course_id = 1),
          '(activities,10.00,50.00,60,50.00,low_score)', 'with the evidence: KPI, score, team median, threshold, gap');
SELECT is((SELECT array_agg(prerequisite_met ORDER BY course_id) FROM salesmgmt.training_needs WHERE rep_id = 2),
          ARRAY[true, false], 'Prospecting waits for its prerequisite');
INSERT INTO salesmgmt.training_need_threshold VALUES (1, 40);
SELECT is((SELECT array_agg(DISTINCT rep_id ORDER BY rep_id) FROM salesmgmt.training_needs),
          ARRAY[1::bigint, 2, 5], 'the threshold is per scheme: at 40, rep 4 (50) needs nothing');
UPDATE salesmgmt.training_need_threshold SET min_score = 60;

-- an expired certification comes first
INSERT INTO salesmgmt.training_enrollment (rep_id, course_id, status, enrolled_at, completed_at)
VALUES (3, 3, 'completed', now() - interval '100 days', now() - interval '90 days'),
       (4, 3, 'completed', now() - interval '20 days', now() - interval '10 days');
SELECT is((SELECT (course_id, need_rank, reason, gap IS NULL)::text FROM salesmgmt.training_needs WHERE rep_id = 3),
          '(3,1,expired,t)', 'an expired certification is a need');
SELECT is((SELECT count(*)::int FROM salesmgmt.training_needs WHERE course_id = 3 AND rep_id = 4), 0,
          'a valid one is not');

-- plan_training: bad inputs, each leaving nothing behind
SELECT throws_ok($$SELECT salesmgmt.plan_training(NULL, '2026-01-01', '2026-03-31')$$, '22004', NULL, 'null scheme');
SELECT throws_ok($$SELECT salesmgmt.plan_training(1, NULL, '2026-03-31')$$, '22004', NULL, 'null period start');
SELECT throws_ok($$SELECT salesmgmt.plan_training(1, '2026-01-01', NULL)$$, '22004', NULL, 'null period end');
SELECT throws_ok($$SELECT salesmgmt.plan_training(1, '2026-01-01', '2026-03-31', NULL)$$, '22004', NULL, 'null due days');
SELECT throws_ok($$SELECT salesmgmt.plan_training(1, '2026-01-01', '2026-03-31', -1)$$, '22023', NULL, 'negative due days');
SELECT throws_ok($$SELECT salesmgmt.plan_training(1, '2026-03-31', '2026-01-01')$$, '22023', NULL, 'period end before start');
SELECT throws_ok($$SELECT salesmgmt.plan_training(99, '2026-01-01', '2026-03-31')$$, '42704', NULL, 'unknown scheme');
SELECT throws_ok($$SELECT salesmgmt.plan_training(1, '2025-01-01', '2025-03-31')$$, '55000', NULL, 'no scorecards of the period');
SELECT throws_ok($$SELECT salesmgmt.plan_training('x', '2026-01-01', '2026-03-31')$$, '22P02', NULL, 'wrong type');
SELECT is((SELECT count(*)::int FROM salesmgmt.training_plan_assignment), 0, 'refused calls planned nothing');

-- a manager plans for its tree only
CREATE ROLE training_tap_m1 IN ROLE salesmgmt_manager;
CREATE ROLE training_tap_r2 IN ROLE salesmgmt_rep;
UPDATE salesmgmt.rep SET db_role = 'training_tap_m1' WHERE rep_id = 1;
UPDATE salesmgmt.rep SET db_role = 'training_tap_r2' WHERE rep_id = 2;
SET ROLE training_tap_r2;
SELECT throws_ok($$SELECT salesmgmt.plan_training(1, '2026-01-01', '2026-03-31')$$, '42501', NULL, 'a rep does not plan');
SELECT is((SELECT array_agg(DISTINCT rep_id) FROM salesmgmt.training_needs), ARRAY[2::bigint], 'a rep sees its own needs');
RESET ROLE;
SET ROLE training_tap_m1;
SELECT is(salesmgmt.plan_training(1, '2026-01-01', '2026-03-31', 14), 3,
          'a manager plans for the reps of its tree (not itself, not another tree)');
SELECT is((SELECT array_agg(rep_id || ':' || course_id ORDER BY rep_id) FROM salesmgmt.training_enrollment
            WHERE status = 'enrolled'), ARRAY['2:1', '3:3', '4:1'],
          'each rep in its top need whose prerequisite is met, the expired certification re-opened');
SELECT is((SELECT array_agg(DISTINCT due_date) FROM salesmgmt.training_enrollment WHERE status = 'enrolled'),
          ARRAY[current_date + 14], 'due in 14 days');
SELECT is(salesmgmt.plan_training(1, '2026-01-01', '2026-03-31'), 0, 'planning again adds nothing');
SELECT is((SELECT count(*)::int FROM salesmgmt.training_plan_assignment), 3, 'a manager sees its tree''s plans');
SELECT is((SELECT count(*)::int FROM salesmgmt.training_needs WHERE rep_id = 5), 0, 'not another tree''s needs');
-- coaching: no account, a KPI
SELECT lives_ok($$INSERT INTO salesmgmt.activity (kind, rep_id, kpi_id, notes) VALUES ('coaching', 2, 1, 'call planning')$$,
                'a manager records coaching of a rep it manages');
SELECT throws_ok($$INSERT INTO salesmgmt.activity (kind, rep_id, kpi_id) VALUES ('coaching', 5, 1)$$, '42501', NULL,
                 'but not of another tree''s rep');
RESET ROLE;
SELECT is(salesmgmt.plan_training(1, '2026-01-01', '2026-03-31'), 2, 'an admin plans the rest (the manager itself, rep 5)');
SELECT throws_ok($$INSERT INTO salesmgmt.activity (kind, rep_id) VALUES ('coaching', 2)$$, '23514', NULL,
                 'coaching names its KPI');
SELECT throws_ok($$INSERT INTO salesmgmt.activity (kind, account_id, rep_id, kpi_id) VALUES ('call', 1, 2, 1)$$, '23514', NULL,
                 'only coaching names a KPI');
SELECT throws_ok($$INSERT INTO salesmgmt.activity (kind, rep_id, kpi_id) VALUES ('coaching', 2, 99)$$, '23503', NULL,
                 'an existing KPI');
SELECT is((SELECT count(*)::int FROM salesmgmt.compute_scorecards(1, '2026-01-01', '2026-03-31') s
            WHERE s.rep_id = 2 AND (s.details -> 'activities' ->> 'value')::numeric = 1), 1,
          'coaching does not count as an activity of the rep');

-- training_effect: bad inputs
SELECT throws_ok('SELECT * FROM salesmgmt.training_effect(NULL)', '22004', NULL, 'null course');
SELECT throws_ok('SELECT * FROM salesmgmt.training_effect(1, NULL)', '22004', NULL, 'null window');
SELECT throws_ok('SELECT * FROM salesmgmt.training_effect(1, 0)', '22023', NULL, 'window of 0 days');
SELECT throws_ok('SELECT * FROM salesmgmt.training_effect(1, -5)', '22023', NULL, 'negative window');
SELECT throws_ok('SELECT * FROM salesmgmt.training_effect(1, 3651)', '22023', NULL, 'window over ten years');
SELECT throws_ok('SELECT * FROM salesmgmt.training_effect(99)', '42704', NULL, 'unknown course');
SELECT throws_ok('SELECT * FROM salesmgmt.training_effect(-1)', '42704', NULL, 'negative course id');
SELECT throws_ok($$SELECT * FROM salesmgmt.training_effect('x')$$, '22P02', NULL, 'wrong type');
INSERT INTO salesmgmt.training_course (course_id, name, hours) OVERRIDING SYSTEM VALUE VALUES (4, 'No target', 1);
SELECT throws_ok('SELECT * FROM salesmgmt.training_effect(4)', 'SM110', NULL, 'a course without KPIs has no effect to measure');
SELECT is((SELECT reason FROM salesmgmt.training_effect(1)), 'no rep completed the course 90 days or more ago',
          'no completer: no estimate, and the reason');
INSERT INTO salesmgmt.training_course_kpi VALUES (4, 3);
SELECT is((SELECT (estimate IS NULL, reason LIKE 'metric csat_avg is not measured%')::text
             FROM salesmgmt.training_effect(4)), '(t,t)', 'a metric not measured per window: no estimate, and the reason');
SELECT throws_ok('SELECT * FROM salesmgmt.record_training_effect(NULL)', '22004', NULL, 'record: null course');
SELECT is((SELECT count(*)::int FROM salesmgmt.record_training_effect(1)), 1, 'record stores one row per KPI');
SELECT is((SELECT (enrolled, completed, effect_kpi, effect_reason IS NOT NULL)::text FROM salesmgmt.training_summary
            WHERE course_id = 1), '(4,0,activities,t)', 'the summary shows enrollments and the stored result');
UPDATE salesmgmt.training_enrollment SET status = 'completed', completed_at = 'infinity' WHERE rep_id = 2 AND course_id = 1;
SELECT is((SELECT reps FROM salesmgmt.training_effect(1)), 0, 'a completion at infinity is no completion to measure');

SELECT * FROM finish();
ROLLBACK;

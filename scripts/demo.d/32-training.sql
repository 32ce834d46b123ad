-- Tour, part 32: targeted training.  From the scorecards of part 30: who
-- needs which course (low KPI scores against the team median, expired
-- certifications), the training plan made from them, a coaching session,
-- and the measured effect of a course (difference in differences against
-- the reps who never took it, with a bootstrap interval).
\pset footer off
\set ON_ERROR_STOP on

SELECT (date_trunc('quarter', max(stage_entered_at)) - interval '1 year')::date AS tr_from,
       (date_trunc('quarter', max(stage_entered_at)) - interval '1 day')::date AS tr_to,
       (SELECT scheme_id FROM salesmgmt.kpi_scheme WHERE name = 'Field sales 15') AS tr_scheme
  FROM salesmgmt.deal \gset

-- once: what the courses are for; Compliance becomes a yearly certification;
-- a quarter of the reps took "Closing skills" half a year ago
SELECT NOT EXISTS (SELECT 1 FROM salesmgmt.training_course WHERE name = 'Closing skills') AS tr_load \gset
\if :tr_load
\o /dev/null
BEGIN;
INSERT INTO salesmgmt.training_course (name, topic, hours, description)
VALUES ('Closing skills', 'method', 8, 'Qualifying out early, asking for the decision.'),
       ('Prospecting bootcamp', 'method', 6, 'Call and meeting discipline.');
UPDATE salesmgmt.training_course SET prerequisite_course_id =
       (SELECT course_id FROM salesmgmt.training_course WHERE name = 'Product fundamentals')
 WHERE name = 'Closing skills';
UPDATE salesmgmt.training_course SET valid_days = 365 WHERE name = 'Compliance and ethics';
INSERT INTO salesmgmt.training_course_kpi (course_id, kpi_id)
SELECT c.course_id, k.kpi_id
  FROM (VALUES ('Closing skills', 'win_rate'), ('Closing skills', 'deals'), ('Negotiation', 'deal_size'),
               ('Prospecting bootcamp', 'activities'), ('Prospecting bootcamp', 'meetings'),
               ('Value selling', 'revenue')) AS m(course, kpi)
  JOIN salesmgmt.training_course c ON c.name = m.course
  JOIN salesmgmt.kpi k ON k.code = m.kpi;
INSERT INTO salesmgmt.training_need_threshold (scheme_id, min_score) VALUES (:tr_scheme, 50);
INSERT INTO salesmgmt.training_enrollment (rep_id, course_id, status, score, enrolled_at, due_date, completed_at)
SELECT r.rep_id, c.course_id, 'completed', 80, :'tr_to'::date - 230 + time '09:00', :'tr_to'::date - 190,
       :'tr_to'::date - 190 - (r.rep_id % 20)::int + time '17:00'
  FROM salesmgmt.rep r, salesmgmt.training_course c
 WHERE c.name = 'Closing skills' AND r.rep_id % 4 = 1 AND r.active;
COMMIT;
\o
\endif

\echo
\echo '================ Targeted training ================'
\echo
\echo '-- What the courses are meant to improve (training_course_kpi), prerequisites and validity'
SELECT c.name AS course, string_agg(k.code, ', ' ORDER BY k.code) AS kpis,
       p.name AS prerequisite, c.valid_days
  FROM salesmgmt.training_course c
  JOIN salesmgmt.training_course_kpi ck ON ck.course_id = c.course_id
  JOIN salesmgmt.kpi k ON k.kpi_id = ck.kpi_id
  LEFT JOIN salesmgmt.training_course p ON p.course_id = c.prerequisite_course_id
 GROUP BY c.course_id, c.name, p.name, c.valid_days ORDER BY c.name;

\echo
\echo '-- Needs found in the scorecards' :tr_from 'to' :tr_to '(threshold 50 for this scheme): the 12 largest gaps, with the evidence'
\echo '-- (managers who sell nothing themselves, alone in their team, left out)'
SELECT n.rep_id, r.name AS rep, n.course_name, n.need_rank AS rank, n.reason, n.kpi_code,
       n.score, n.team_median, n.gap, n.prerequisite_met AS prereq_ok
  FROM salesmgmt.training_needs_for(:tr_scheme, :'tr_from', :'tr_to') n
  JOIN salesmgmt.rep r ON r.rep_id = n.rep_id
 WHERE n.team_median > 0 OR n.reason = 'expired'
 ORDER BY n.gap DESC NULLS LAST, n.rep_id, n.course_id LIMIT 12;
SELECT count(DISTINCT rep_id) AS reps_with_needs, count(*) AS needs,
       count(*) FILTER (WHERE reason = 'expired') AS expired_certifications
  FROM salesmgmt.training_needs_for(:tr_scheme, :'tr_from', :'tr_to');

\echo
\echo '-- The plan: each rep enrolled in its top need (prerequisite met), due in 30 days; a second run plans nothing'
SELECT salesmgmt.plan_training(:tr_scheme, :'tr_from', :'tr_to', 30) AS enrollments_made;
SELECT salesmgmt.plan_training(:tr_scheme, :'tr_from', :'tr_to', 30) AS enrollments_made_again;
SELECT c.name AS course, count(*) AS planned
  FROM salesmgmt.training_plan_assignment a JOIN salesmgmt.training_course c ON c.course_id = a.course_id
 WHERE a.scheme_id = :tr_scheme AND a.period_start = :'tr_from'
 GROUP BY c.name ORDER BY planned DESC, c.name;

\echo
\echo '-- Coaching: a manager''s one-to-one session, an activity about a KPI (it does not count as a sales activity)'
INSERT INTO salesmgmt.activity (kind, rep_id, kpi_id, occurred_at, duration, notes)
SELECT 'coaching', n.rep_id, n.kpi_id, :'tr_to'::date + time '10:00', interval '45 minutes',
       'One-to-one on ' || n.kpi_code
  FROM salesmgmt.training_needs_for(:tr_scheme, :'tr_from', :'tr_to') n
 WHERE n.reason = 'low_score' AND n.team_median > 0
   AND NOT EXISTS (SELECT 1 FROM salesmgmt.activity a WHERE a.kind = 'coaching' AND a.rep_id = n.rep_id)
 ORDER BY n.gap DESC, n.rep_id LIMIT 1;
SELECT a.rep_id, a.occurred_at::date AS day, k.code AS kpi, a.duration, a.notes
  FROM salesmgmt.activity a JOIN salesmgmt.kpi k ON k.kpi_id = a.kpi_id WHERE a.kind = 'coaching';

\echo
\echo '-- The effect of "Closing skills" (completed by a quarter of the reps about 200 days before the period end):'
\echo '-- before/after 90 days against the reps who never took it; 95% bootstrap interval (1,000 resamples, seeded)'
\echo '-- (No effect is planted in this data set, so the intervals should include zero; scripts/datagen.sql'
\echo '--  -v training=1 plants one, which test/t/100_training_effect.pl finds.)'
SELECT k.code AS kpi, k.metric, r.reps, r.peers, r.estimate, r.ci_low, r.ci_high, r.reason
  FROM salesmgmt.training_course c
  CROSS JOIN LATERAL salesmgmt.record_training_effect(c.course_id) r
  JOIN salesmgmt.kpi k ON k.kpi_id = r.kpi_id
 WHERE c.name = 'Closing skills'
 ORDER BY k.code;

\echo
\echo '-- For BI: training_summary (enrollments, completions, overdue, days to complete, the latest stored effect)'
SELECT course_name, enrolled, completed, overdue, avg_days_to_complete, effect_kpi, effect_estimate,
       effect_ci_low, effect_ci_high
  FROM salesmgmt.training_summary ORDER BY enrolled DESC, course_name;

-- bench/kpi_data.sql: what the KPI benchmark (and the reference test)
-- adds to a scripts/datagen.sql data set: a year of manager reviews and
-- CSAT/NPS responses, a training plan with enrollments, and a scheme of
-- 15 KPIs (14 built-in metrics and one custom metric function).
--
--   psql -f bench/kpi_data.sql DBNAME      (after scripts/datagen.sql)
--
-- Deterministic: the same data set gives the same rows.  The scored
-- period is the last four complete quarters before the data set's "today";
-- :kpi_from and :kpi_to are set for the scripts that include this file.

\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;   -- row order, hence random(), stays deterministic
SELECT setseed(0.4242) \g /dev/null

-- the data set's "today" is the day after the last activity of an open deal
-- at most; the last complete quarter before the newest stage change is safe
SELECT (date_trunc('quarter', max(stage_entered_at)) - interval '1 year')::date AS kpi_from,
       (date_trunc('quarter', max(stage_entered_at)) - interval '1 day')::date AS kpi_to
  FROM salesmgmt.deal \gset

-- ------------------------------------------------ reviews: quarterly, by the manager
-- a rep is reviewed by the manager of their team, a manager by the manager
-- of the parent team; the head of the organisation is not reviewed
INSERT INTO salesmgmt.review (rep_id, reviewer_rep_id, period_start, period_end,
                              discipline, teamwork, customer_service, comment)
SELECT r.rep_id, rv.reviewer, q::date, (q + interval '3 months' - interval '1 day')::date,
       1 + least(4, floor(random() * 5 + 0.6))::int,
       CASE WHEN random() < 0.9 THEN 1 + least(4, floor(random() * 5 + 0.4))::int END,
       1 + least(4, floor(random() * 5 + 0.5))::int,
       'quarterly review'
  FROM salesmgmt.rep r
  JOIN salesmgmt.team t ON t.team_id = r.team_id
  LEFT JOIN salesmgmt.team pt ON pt.team_id = t.parent_team_id
  CROSS JOIN LATERAL (SELECT CASE WHEN t.manager_rep_id <> r.rep_id THEN t.manager_rep_id
                                  ELSE pt.manager_rep_id END AS reviewer) rv
  CROSS JOIN generate_series(:'kpi_from'::timestamp, :'kpi_to'::timestamp, interval '3 months') AS q
 WHERE rv.reviewer IS NOT NULL
   AND random() < 0.95          -- a few reviews are missing: the missing-data rule applies
 ORDER BY r.rep_id, q;

-- ------------------------------------------------ CSAT/NPS: after most closed deals
-- every survey answers at least one of the two questions
INSERT INTO salesmgmt.csat_response (account_id, deal_id, rep_id, csat, nps, responded_at, comment)
SELECT d.account_id, d.deal_id, d.owner_rep_id,
       CASE WHEN d.deal_id % 25 <> 0 THEN
            CASE WHEN st.outcome = 'won' THEN 2 + least(3, floor(random() * 4 + 0.3))::int
                 ELSE 1 + least(4, floor(random() * 4))::int END END,
       CASE WHEN d.deal_id % 5 <> 1 THEN
            CASE WHEN st.outcome = 'won' THEN 6 + least(4, floor(random() * 5))::int
                 ELSE 3 + least(6, floor(random() * 7))::int END END,
       least(d.closed_at + make_interval(days => 3 + (d.deal_id % 10)::int), now() - interval '1 hour'),
       NULL
  FROM salesmgmt.deal d
  JOIN salesmgmt.stage st ON st.stage_id = d.stage_id AND st.outcome IN ('won', 'lost')
 WHERE d.deal_id % 10 < 6
 ORDER BY d.deal_id;


-- ------------------------------------------------ training plan
INSERT INTO salesmgmt.training_course (name, topic, hours, required, created_at) VALUES
    ('Product fundamentals', 'product', 8, true, :'kpi_from'::timestamptz - interval '30 days'),
    ('Compliance and ethics', 'compliance', 2, true, :'kpi_from'::timestamptz - interval '30 days'),
    ('Value selling', 'method', 12, true, :'kpi_from'::timestamptz + interval '4 months'),
    ('Negotiation', 'method', 6, false, :'kpi_from'::timestamptz - interval '60 days'),
    ('Advanced analytics product', 'product', 4, false, :'kpi_from'::timestamptz),
    ('Key account management', 'method', 16, false, :'kpi_from'::timestamptz);
INSERT INTO salesmgmt.training_enrollment (rep_id, course_id, status, score, enrolled_at, due_date, completed_at)
SELECT r.rep_id, c.course_id, s.status,
       CASE WHEN s.status <> 'enrolled' THEN CASE WHEN s.status = 'completed' THEN 70 + (r.rep_id * 7 + c.course_id * 3) % 31 ELSE 30 + (r.rep_id % 30) END END,
       c.created_at + make_interval(days => (r.rep_id % 20)::int),
       (c.created_at + interval '90 days')::date,
       CASE WHEN s.status <> 'enrolled' THEN c.created_at + make_interval(days => 20 + ((r.rep_id * 13 + c.course_id) % 150)::int) END
  FROM salesmgmt.rep r
  JOIN salesmgmt.training_course c ON c.required OR (r.rep_id + c.course_id) % 3 = 0
  CROSS JOIN LATERAL (SELECT CASE WHEN (r.rep_id * 31 + c.course_id * 17) % 10 < 7 THEN 'completed'
                                  WHEN (r.rep_id * 31 + c.course_id * 17) % 10 < 8 THEN 'failed'
                                  ELSE 'enrolled' END AS status) s
 WHERE r.active AND (r.rep_id * 11 + c.course_id) % 19 <> 0      -- a few reps were never enrolled
 ORDER BY r.rep_id, c.course_id;

-- ------------------------------------------------ a custom metric: big deals won
CREATE FUNCTION public.big_deals_won(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric)
LANGUAGE sql STABLE
AS $$
    SELECT r.rep_id, count(d.deal_id)::numeric
      FROM salesmgmt.rep r
      LEFT JOIN (salesmgmt.deal d JOIN salesmgmt.stage st ON st.stage_id = d.stage_id AND st.outcome = 'won')
        ON d.owner_rep_id = r.rep_id AND d.amount >= 50000
       AND d.closed_at >= p_from::timestamptz AND d.closed_at < (p_to + 1)::timestamptz
     GROUP BY r.rep_id
$$;

-- ------------------------------------------------ 15 KPIs and a scheme
INSERT INTO salesmgmt.kpi (code, name, metric, metric_function, direction, method, target, floor, cap, unit) VALUES
    ('revenue', 'Revenue won', 'revenue_won', NULL, 'higher', 'achievement', 1200000, NULL, 150, 'USD'),
    ('deals', 'Deals won', 'deals_won', NULL, 'higher', 'achievement', 36, NULL, 120, 'deals'),
    ('win_rate', 'Win rate', 'win_rate', NULL, 'higher', 'band', 45, 10, 120, '%'),
    ('deal_size', 'Average deal size', 'avg_deal_size', NULL, 'higher', 'achievement', 30000, NULL, 120, 'USD'),
    ('cycle', 'Sales cycle', 'sales_cycle_days', NULL, 'lower', 'reduction', 60, NULL, 120, 'days'),
    ('pipeline', 'Pipeline created', 'pipeline_created', NULL, 'higher', 'achievement', 3000000, NULL, 120, 'USD'),
    ('activities', 'Activities', 'activities', NULL, 'higher', 'achievement', 220, NULL, 110, 'count'),
    ('meetings', 'Meetings', 'meetings', NULL, 'higher', 'threshold', 80, NULL, 100, 'count'),
    ('quota', 'Quota attainment', 'quota_attainment', NULL, 'higher', 'achievement', 100, 50, 150, '%'),
    ('tasks', 'Task completion', 'task_completion_rate', NULL, 'higher', 'band', 90, 50, 100, '%'),
    ('csat', 'Customer satisfaction', 'csat_avg', NULL, 'higher', 'band', 4.5, 2, 100, '1-5'),
    ('nps', 'Net promoter score', 'nps', NULL, 'higher', 'band', 20, -50, 120, 'points'),
    ('training', 'Training completion', 'training_completion', NULL, 'higher', 'threshold', 80, NULL, 100, '%'),
    ('discipline', 'Discipline', 'attitude_discipline', NULL, 'higher', 'band', 4, 1, 110, '1-5'),
    ('big_deals', 'Big deals won', 'custom', 'big_deals_won', 'higher', 'achievement', 12, NULL, 130, 'deals');
INSERT INTO salesmgmt.kpi_scheme (name, grade_bands) VALUES
    ('Field sales 15', '{"A": 90, "B": 75, "C": 60, "D": 40, "E": 0}');
INSERT INTO salesmgmt.kpi_scheme_item (scheme_id, kpi_id, weight)
SELECT s.scheme_id, k.kpi_id, w.weight
  FROM salesmgmt.kpi_scheme s,
       (VALUES ('revenue', 15), ('quota', 15), ('win_rate', 8), ('deals', 5), ('deal_size', 5),
               ('cycle', 5), ('pipeline', 7), ('activities', 5), ('meetings', 5), ('tasks', 5),
               ('csat', 7), ('nps', 5), ('training', 5), ('discipline', 4), ('big_deals', 4)) AS w(code, weight)
  JOIN salesmgmt.kpi k ON k.code = w.code
 WHERE s.name = 'Field sales 15';

ANALYZE salesmgmt.review, salesmgmt.csat_response, salesmgmt.training_course, salesmgmt.training_enrollment;
RESET client_min_messages;
SELECT :'kpi_from' AS period_start, :'kpi_to' AS period_end,
       (SELECT count(*) FROM salesmgmt.review) AS reviews,
       (SELECT count(*) FROM salesmgmt.csat_response) AS csat_responses,
       (SELECT count(*) FROM salesmgmt.training_enrollment) AS enrollments;

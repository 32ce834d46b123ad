-- Tour, part 30: performance evaluation, training and recognition.
-- Adds a year of manager reviews, CSAT/NPS answers, a training plan and a
-- 15-KPI scheme to the demo data set (bench/kpi_data.sql, once), scores
-- every rep over the last four complete quarters, grants the top three an
-- award, and prints the leaderboard.
\pset footer off
\set ON_ERROR_STOP on

SELECT NOT EXISTS (SELECT 1 FROM salesmgmt.kpi_scheme WHERE name = 'Field sales 15') AS kpi_load \gset
\if :kpi_load
\o /dev/null
\ir ../../bench/kpi_data.sql
\o
\endif
SELECT (date_trunc('quarter', max(stage_entered_at)) - interval '1 year')::date AS kpi_from,
       (date_trunc('quarter', max(stage_entered_at)) - interval '1 day')::date AS kpi_to,
       (SELECT scheme_id FROM salesmgmt.kpi_scheme WHERE name = 'Field sales 15') AS kpi_scheme
  FROM salesmgmt.deal \gset

\echo
\echo '================ Performance evaluation: KPI scorecards ================'
\echo
\echo '-- (The deals, activities and payments come from the demo generator; the manager reviews, CSAT/NPS'
\echo '--  answers and training records scored here are synthetic too, made by bench/kpi_data.sql.)'
\echo
\echo '-- The scheme: 15 KPIs (results, activity, customer satisfaction, training, attitude), weights sum to 100'
SELECT k.code, k.metric, k.direction AS better, k.method, k.target, k.floor, k.cap, i.weight
  FROM salesmgmt.kpi_scheme_item i JOIN salesmgmt.kpi k USING (kpi_id)
 WHERE i.scheme_id = :kpi_scheme ORDER BY i.weight DESC, k.code;

\echo
\echo '-- Scored for' :kpi_from 'to' :kpi_to '(every metric of every rep in one pass, in C): grades'
SELECT grade, count(*) AS reps, min(score) AS lowest, max(score) AS highest
  FROM salesmgmt.compute_scorecards(:kpi_scheme, :'kpi_from', :'kpi_to')
 GROUP BY grade ORDER BY grade NULLS LAST;

SELECT NOT EXISTS (SELECT 1 FROM salesmgmt.recognition
                    WHERE title = 'Top performer' AND period_start = :'kpi_from') AS kpi_grant \gset
\if :kpi_grant
\o /dev/null
SELECT * FROM salesmgmt.grant_recognitions(:kpi_scheme, :'kpi_from', :'kpi_to', 3, 'award', 'Top performer');
SELECT * FROM salesmgmt.grant_recognitions(:kpi_scheme, :'kpi_from', :'kpi_to', 1, 'bonus', 'Rep of the year', 5000);
\o
\endif

\echo
\echo '-- The leaderboard: top 10, with the recognitions of the period'
SELECT rank, rep_name, team_name, score, grade, coverage, array_to_string(recognitions, ', ') AS recognitions
  FROM salesmgmt.leaderboard WHERE scheme_id = :kpi_scheme
 ORDER BY rank NULLS LAST, rep_id LIMIT 10;

\echo
\echo '-- Every number is explainable: the winner''s scorecard, KPI by KPI'
SELECT k.code, i.value, k.unit, i.target, i.score, i.weight, i.effective_weight
  FROM salesmgmt.scorecard s
  JOIN salesmgmt.scorecard_item i USING (scorecard_id)
  JOIN salesmgmt.kpi k USING (kpi_id)
 WHERE s.scheme_id = :kpi_scheme AND s.period_start = :'kpi_from' AND s.period_end = :'kpi_to'
   AND s.rank = 1
 ORDER BY i.weight DESC, k.code LIMIT 15;

\echo
\echo '-- Missing data is never a silent zero: a KPI without data gives its weight to the others'
SELECT coverage, count(DISTINCT s.rep_id) AS reps,
       string_agg(DISTINCT k.code, ', ') FILTER (WHERE i.value IS NULL) AS kpis_without_data
  FROM salesmgmt.scorecard s
  JOIN salesmgmt.scorecard_item i USING (scorecard_id)
  JOIN salesmgmt.kpi k USING (kpi_id)
 WHERE s.scheme_id = :kpi_scheme AND s.period_start = :'kpi_from' AND s.period_end = :'kpi_to'
 GROUP BY coverage ORDER BY coverage DESC LIMIT 6;

\echo
\echo '-- Target pacing of this quarter''s rep quotas: won so far against the straight line'
SELECT status, count(*) AS quotas, round(avg(attained_pct), 1) AS avg_attained_pct,
       max(elapsed_pct) AS elapsed_pct
  FROM salesmgmt.target_pacing
 WHERE rep_id IS NOT NULL AND current_date BETWEEN period_start AND period_end
 GROUP BY status ORDER BY status;

\echo
\echo '-- Training: required courses completed, courses overdue'
SELECT required_completed || ' of ' || required_courses AS required_done, count(*) AS reps,
       sum(overdue) AS overdue_courses, round(avg(hours_completed), 1) AS avg_hours
  FROM salesmgmt.training_status GROUP BY 1 ORDER BY 1 DESC;

-- Tour, part 7: data analysis and feedback.  How well and how fast the
-- organisation wins, whether the quarter is covered, how cohorts convert,
-- what customers say, and the feedback loop from complaint to resolution.
-- Views: win_rates_by, sales_velocity, quota_attainment, pipeline_coverage,
-- cohort_conversion, customer_satisfaction, feedback_summary (docs/bi.md).
\pset footer off
\echo
\echo '================ Analysis: win rates, velocity, coverage, feedback ================'
\echo '(All figures below come from synthetic data: the demo generator''s deals, and CSAT/NPS answers,'
\echo ' reviews and feedback records generated for the tour; they show the views at work, not real results.)'

-- the regions are the teams right below the top of the tree
CREATE TEMP VIEW region AS
SELECT t.team_id, t.name FROM salesmgmt.team t
 WHERE t.parent_team_id IN (SELECT team_id FROM salesmgmt.team WHERE parent_team_id IS NULL);
SELECT date_trunc('quarter', current_date)::date AS this_q,
       (date_trunc('quarter', current_date) - interval '3 months')::date AS last_q \gset

\echo
\echo '-- Win rate by pipeline, whole organisation, last four quarters (deals closed in the quarter)'
SELECT w.quarter, coalesce(p.name, 'All pipelines') AS pipeline, w.won_deals AS won, w.lost_deals AS lost,
       w.win_rate, w.won_amount, w.win_rate_by_amount
  FROM salesmgmt.win_rates_by w
  LEFT JOIN salesmgmt.pipeline p USING (pipeline_id)
 WHERE w.level = 'team' AND w.team_id IN (SELECT team_id FROM salesmgmt.team WHERE parent_team_id IS NULL)
   AND w.quarter > (:'this_q'::date - interval '1 year')
 ORDER BY w.quarter, w.pipeline_id NULLS LAST;

\echo
\echo '-- Win rate by region (each region includes all its squads), last full quarter'
SELECT r.name AS region, w.won_deals AS won, w.lost_deals AS lost, w.win_rate, w.won_amount
  FROM salesmgmt.win_rates_by w JOIN region r USING (team_id)
 WHERE w.level = 'team' AND w.pipeline_id IS NULL AND w.quarter = :'last_q'
 ORDER BY w.win_rate DESC NULLS LAST, r.name;

\echo
\echo '-- Sales velocity by region: open deals x average win x win rate / cycle days = revenue per day'
SELECT r.name AS region, v.quarter, v.open_deals, v.win_rate, v.avg_won_amount, v.avg_cycle_days,
       v.velocity_per_day
  FROM salesmgmt.sales_velocity v JOIN region r USING (team_id)
 WHERE v.level = 'team' AND v.quarter IN (:'last_q', :'this_q')
 ORDER BY r.name, v.quarter;

\echo
\echo '-- This quarter: quota attainment, pacing and pipeline coverage per squad (top and bottom 4 by pacing)'
WITH squads AS (
    SELECT t.name AS squad, a.quota_amount, a.won_amount, a.attainment, a.pacing,
           c.open_pipeline, c.coverage, c.weighted_coverage,
           rank() OVER (ORDER BY a.pacing DESC NULLS LAST, t.name) AS best,
           rank() OVER (ORDER BY a.pacing ASC NULLS LAST, t.name) AS worst
      FROM salesmgmt.quota_attainment a
      JOIN salesmgmt.pipeline_coverage c USING (quota_id)
      JOIN salesmgmt.team t ON t.team_id = a.team_id
     WHERE a.level = 'team' AND :'this_q'::date BETWEEN a.period_start AND a.period_end
)
SELECT squad, quota_amount, won_amount, attainment, pacing, open_pipeline, coverage, weighted_coverage
  FROM squads WHERE best <= 4 OR worst <= 4
 ORDER BY pacing DESC NULLS LAST, squad;

\echo
\echo '-- Cohorts: of the deals created in a month, the share won within 30, 60 and 90 days'
SELECT cohort_month, created_deals AS created, share_won_30_days AS won_30d, share_won_60_days AS won_60d,
       share_won_90_days AS won_90d, share_won_to_date AS won_so_far, open_deals AS still_open
  FROM salesmgmt.cohort_conversion
 WHERE pipeline_id IS NULL AND cohort_month >= (:'this_q'::date - interval '9 months')
 ORDER BY cohort_month;

SELECT count(*) > 0 AS have_csat FROM salesmgmt.csat_response \gset
\if :have_csat
\echo
\echo '-- Customer satisfaction of the whole organisation, last six months'
SELECT s.month, s.responses, s.csat_avg, s.csat_satisfied_share, s.nps
  FROM salesmgmt.customer_satisfaction s
 WHERE s.level = 'team' AND s.team_id IN (SELECT team_id FROM salesmgmt.team WHERE parent_team_id IS NULL)
   AND s.month > current_date - interval '6 months'
 ORDER BY s.month;
\endif

-- The demo data set has no feedback yet: record what customers said about
-- some lost and won deals, as it would have come in over the year (older
-- feedback resolved, recent feedback still being worked on).
SELECT count(*) = 0 AS no_feedback FROM salesmgmt.feedback \gset
\if :no_feedback
INSERT INTO salesmgmt.feedback (source, deal_id, rep_id, category, sentiment, body, status, assignee_rep_id,
                                resolution, created_at, triaged_at, resolved_at)
SELECT 'customer', d.deal_id, d.owner_rep_id, f.category, f.sentiment, f.body,
       CASE WHEN age > 45 THEN 'resolved' WHEN age > 20 AND d.deal_id % 2 = 0 THEN 'triaged' ELSE 'open' END,
       CASE WHEN age > 45 OR age > 20 AND d.deal_id % 2 = 0 THEN t.manager_rep_id END,
       CASE WHEN age > 45 THEN f.resolution END,
       at,
       CASE WHEN (age > 45 AND d.deal_id % 3 <> 0) OR (age > 20 AND d.deal_id % 2 = 0) THEN at + interval '1 day' END,
       CASE WHEN age > 45 THEN at + make_interval(days => 1 + (d.deal_id % 17)::int, hours => (d.deal_id % 24)::int) END
  FROM salesmgmt.deal d
  JOIN salesmgmt.stage s USING (stage_id)
  JOIN salesmgmt.rep r ON r.rep_id = d.owner_rep_id
  LEFT JOIN salesmgmt.team t ON t.team_id = r.team_id
 CROSS JOIN LATERAL (SELECT least(d.closed_at + interval '2 days', now() - interval '1 hour') AS at) w
 CROSS JOIN LATERAL (SELECT extract(day FROM now() - w.at) AS age) a
 CROSS JOIN LATERAL (
        SELECT CASE WHEN s.outcome = 'won' THEN 'service'
                    ELSE CASE d.lost_reason WHEN 'price' THEN 'pricing' WHEN 'competitor' THEN 'competition'
                                            WHEN 'no budget' THEN 'pricing' ELSE 'process' END END AS category,
               CASE WHEN s.outcome = 'won' THEN (CASE WHEN d.deal_id % 4 = 0 THEN 'negative' ELSE 'positive' END)
                    ELSE 'negative' END AS sentiment,
               CASE WHEN s.outcome = 'won' THEN 'Onboarding after the purchase'
                    ELSE 'Why we did not buy: ' || coalesce(d.lost_reason, 'unknown') END AS body,
               CASE WHEN s.outcome = 'won' THEN 'Onboarding checklist shared with the customer'
                    ELSE 'Reviewed with the sales manager; playbook updated' END AS resolution) f
 WHERE s.outcome <> 'open' AND d.closed_at IS NOT NULL AND d.deal_id % 37 = 0;
\endif

\echo
\echo '-- The feedback loop, last six months: how much came in, how negative, what is still open, how fast it is resolved'
SELECT month, received, negative_share, open_count AS open, triaged_count AS triaged, resolved_count AS resolved,
       median_days_to_resolve
  FROM salesmgmt.feedback_summary
 WHERE category IS NULL AND month > current_date - interval '6 months'
 ORDER BY month;

\echo
\echo '-- Feedback by category over the same months'
SELECT category, sum(received) AS received, sum(negative_count) AS negative,
       sum(open_count + triaged_count) AS unresolved,
       round(avg(median_days_to_resolve), 1) AS typical_days_to_resolve
  FROM salesmgmt.feedback_summary
 WHERE category IS NOT NULL AND month > current_date - interval '6 months'
 GROUP BY category
 ORDER BY sum(received) DESC, category;

\echo
\echo '-- Closing the loop on the oldest open complaint: triage it to the manager, then resolve it'
SELECT x.feedback_id IS NOT NULL AS fb_found, x.feedback_id AS fb_id, x.manager AS fb_manager
  FROM (SELECT 1) one
  LEFT JOIN LATERAL (
        SELECT f.feedback_id, t.manager_rep_id AS manager
          FROM salesmgmt.feedback f
          JOIN salesmgmt.rep r ON r.rep_id = f.rep_id
          JOIN salesmgmt.team t ON t.team_id = r.team_id
         WHERE f.status = 'open' AND f.sentiment = 'negative' AND t.manager_rep_id IS NOT NULL
         ORDER BY f.created_at, f.feedback_id LIMIT 1) x ON true \gset
\if :fb_found
SELECT feedback_id, category, body, created_at::date AS received, status FROM salesmgmt.feedback WHERE feedback_id = :fb_id;
SELECT feedback_id, status, assignee_rep_id FROM salesmgmt.triage_feedback(:fb_id, :fb_manager);
SELECT feedback_id, status, resolution, (resolved_at - created_at)::interval(0) AS took
  FROM salesmgmt.resolve_feedback(:fb_id, 'Called the customer, agreed on a follow-up offer');
\echo '-- ... and a second resolution of the same feedback is refused (SQLSTATE SM051):'
SELECT set_config('demo.feedback_id', :'fb_id', false) \g /dev/null
DO $$
BEGIN
    PERFORM salesmgmt.resolve_feedback(current_setting('demo.feedback_id')::bigint, 'Resolved again');
    PERFORM set_config('demo.refused', 'not refused', false);
EXCEPTION WHEN SQLSTATE 'SM051' THEN
    PERFORM set_config('demo.refused', SQLSTATE || ': ' || SQLERRM, false);
END
$$;
SELECT current_setting('demo.refused') AS second_resolution;
\else
\echo '   (no open complaint is waiting)'
\endif

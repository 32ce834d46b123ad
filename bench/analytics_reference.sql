-- bench/analytics_reference.sql: the analytics views written the direct way,
-- as a reference for bench/analytics.sh.  Same semantics and the same
-- output as the salesmgmt views, but without their engineering: every
-- amount converted by a call of salesmgmt.convert_amount, team figures by
-- joining each deal to every team above its owner, the grid of periods
-- joined to the raw deals, the latest activity by sorting all of them.
-- Not part of the extension.

CREATE SCHEMA IF NOT EXISTS bench_ref;

-- each reporting unit (a rep, or a team with its whole subtree) and the reps it covers
CREATE OR REPLACE VIEW bench_ref.unit_member AS
WITH RECURSIVE tree (ancestor_team_id, team_id) AS (
    SELECT team_id, team_id FROM salesmgmt.team
    UNION ALL
    SELECT tree.ancestor_team_id, t.team_id FROM tree JOIN salesmgmt.team t ON t.parent_team_id = tree.team_id
)
SELECT 'rep:' || r.rep_id AS unit_key, 'rep'::text AS level, r.rep_id, r.team_id, r.rep_id AS member_rep_id FROM salesmgmt.rep r
UNION ALL
SELECT 'team:' || tree.ancestor_team_id, 'team', NULL::bigint, tree.ancestor_team_id, r.rep_id
  FROM tree LEFT JOIN salesmgmt.rep r ON r.team_id = tree.team_id;

CREATE OR REPLACE VIEW bench_ref.unit AS
SELECT DISTINCT unit_key, level, rep_id, team_id FROM bench_ref.unit_member;

CREATE OR REPLACE VIEW bench_ref.deal AS
SELECT d.*, s.outcome,
       CASE WHEN s.outcome <> 'open' THEN coalesce(d.closed_at, d.stage_entered_at) END AS closed,
       salesmgmt.convert_amount(d.amount, d.currency, salesmgmt.reporting_currency(),
                                CASE WHEN s.outcome <> 'open' THEN coalesce(d.closed_at, d.stage_entered_at)::date
                                     ELSE current_date END) AS amount_rc,
       CASE s.outcome WHEN 'won' THEN 1 WHEN 'lost' THEN 0 ELSE coalesce(d.probability, s.probability) END AS prob
  FROM salesmgmt.deal d JOIN salesmgmt.stage s USING (stage_id);

CREATE OR REPLACE VIEW bench_ref.win_rates_by AS
WITH closed AS (
    SELECT *, date_trunc('quarter', closed)::date AS quarter FROM bench_ref.deal WHERE outcome <> 'open'
),
quarters AS (
    SELECT generate_series(min(quarter), greatest(max(quarter), date_trunc('quarter', current_date)::date),
                           interval '3 months')::date AS quarter FROM closed
),
pipelines AS (SELECT pipeline_id FROM salesmgmt.pipeline UNION ALL SELECT NULL),
agg AS (
    SELECT u.level, u.rep_id, u.team_id, p.pipeline_id, q.quarter,
           count(c.deal_id) FILTER (WHERE c.outcome = 'won') AS won_deals,
           count(c.deal_id) FILTER (WHERE c.outcome = 'lost') AS lost_deals,
           coalesce(sum(c.amount_rc) FILTER (WHERE c.outcome = 'won'), 0) AS won_amount,
           coalesce(sum(c.amount_rc) FILTER (WHERE c.outcome = 'lost'), 0) AS lost_amount
      FROM bench_ref.unit u CROSS JOIN pipelines p CROSS JOIN quarters q
      LEFT JOIN bench_ref.unit_member m ON m.unit_key = u.unit_key
      LEFT JOIN closed c ON c.owner_rep_id = m.member_rep_id AND c.quarter = q.quarter
                        AND (p.pipeline_id IS NULL OR c.pipeline_id = p.pipeline_id)
     GROUP BY 1, 2, 3, 4, 5
)
SELECT level, rep_id, team_id, pipeline_id, quarter, won_deals, lost_deals,
       round(won_deals::numeric / nullif(won_deals + lost_deals, 0), 4) AS win_rate,
       round(won_amount, 2) AS won_amount, round(lost_amount, 2) AS lost_amount,
       round(won_amount / nullif(won_amount + lost_amount, 0), 4) AS win_rate_by_amount,
       salesmgmt.reporting_currency() AS currency
  FROM agg;

CREATE OR REPLACE VIEW bench_ref.sales_velocity AS
WITH d AS (SELECT * FROM bench_ref.deal),
quarters AS (
    SELECT generate_series(min(date_trunc('quarter', least(created_at, coalesce(closed, created_at))))::date,
                           greatest(max(date_trunc('quarter', coalesce(closed, created_at))), date_trunc('quarter', current_date))::date,
                           interval '3 months')::date AS quarter FROM d
),
agg AS (
    SELECT u.level, u.rep_id, u.team_id, q.quarter,
           count(d.deal_id) FILTER (WHERE least(d.created_at, coalesce(d.closed, d.created_at)) < q.quarter + interval '3 months'
                                      AND (d.closed IS NULL OR d.closed >= q.quarter)) AS open_deals,
           count(d.deal_id) FILTER (WHERE d.outcome = 'won' AND date_trunc('quarter', d.closed)::date = q.quarter) AS won_deals,
           count(d.deal_id) FILTER (WHERE d.outcome = 'lost' AND date_trunc('quarter', d.closed)::date = q.quarter) AS lost_deals,
           coalesce(sum(d.amount_rc) FILTER (WHERE d.outcome = 'won' AND date_trunc('quarter', d.closed)::date = q.quarter), 0) AS won_amount,
           sum(extract(epoch FROM d.closed - d.created_at) / 86400) FILTER (WHERE d.outcome = 'won' AND date_trunc('quarter', d.closed)::date = q.quarter) AS cycle
      FROM bench_ref.unit u CROSS JOIN quarters q
      LEFT JOIN bench_ref.unit_member m ON m.unit_key = u.unit_key
      LEFT JOIN d ON d.owner_rep_id = m.member_rep_id
                 AND least(d.created_at, coalesce(d.closed, d.created_at)) < q.quarter + interval '3 months'
                 AND (d.closed IS NULL OR d.closed >= q.quarter)
     GROUP BY 1, 2, 3, 4
)
SELECT level, rep_id, team_id, quarter, open_deals, won_deals, lost_deals,
       round(won_deals::numeric / nullif(won_deals + lost_deals, 0), 4) AS win_rate,
       round(won_amount, 2) AS won_amount,
       round(won_amount / nullif(won_deals, 0), 2) AS avg_won_amount,
       round(cycle / nullif(won_deals, 0), 2) AS avg_cycle_days,
       round(open_deals * (won_amount / nullif(won_deals, 0)) * (won_deals::numeric / nullif(won_deals + lost_deals, 0))
             / nullif(cycle / nullif(won_deals, 0), 0), 2) AS velocity_per_day,
       salesmgmt.reporting_currency() AS currency
  FROM agg;

CREATE OR REPLACE VIEW bench_ref.credit AS
SELECT d.*, coalesce(s.rep_id, d.owner_rep_id) AS credit_rep_id, coalesce(s.share, 1) AS share
  FROM bench_ref.deal d LEFT JOIN salesmgmt.deal_split s ON s.deal_id = d.deal_id;

CREATE OR REPLACE VIEW bench_ref.quota_unit AS
SELECT q.*, CASE WHEN q.rep_id IS NOT NULL THEN 'rep:' || q.rep_id ELSE 'team:' || q.team_id END AS unit_key
  FROM salesmgmt.quota q;

CREATE OR REPLACE VIEW bench_ref.quota_attainment AS
WITH quota_member AS MATERIALIZED (   -- each quota with the reps it counts
    SELECT q.quota_id, q.period_start, q.period_end, m.member_rep_id
      FROM bench_ref.quota_unit q JOIN bench_ref.unit_member m ON m.unit_key = q.unit_key
),
won AS (
    SELECT qm.quota_id, sum(c.amount_rc * c.share) AS won
      FROM quota_member qm
      JOIN bench_ref.credit c ON c.credit_rep_id = qm.member_rep_id AND c.outcome = 'won'
                             AND c.closed::date BETWEEN qm.period_start AND qm.period_end
     GROUP BY qm.quota_id
),
q AS (
    SELECT q.*, salesmgmt.convert_amount(q.amount, q.currency, salesmgmt.reporting_currency(), q.period_start) AS quota_amount,
           q.period_end - q.period_start + 1 AS period_days,
           least(greatest(current_date - q.period_start + 1, 0), q.period_end - q.period_start + 1) AS elapsed_days,
           coalesce(w.won, 0) AS won
      FROM salesmgmt.quota q LEFT JOIN won w USING (quota_id)
)
SELECT CASE WHEN rep_id IS NOT NULL THEN 'rep' ELSE 'team' END AS level, quota_id, rep_id, team_id, period_start, period_end,
       round(quota_amount, 2) AS quota_amount, round(won, 2) AS won_amount,
       round(won / nullif(quota_amount, 0), 4) AS attainment,
       round(greatest(quota_amount - won, 0), 2) AS remaining_amount,
       period_days, elapsed_days, round(elapsed_days::numeric / period_days, 4) AS elapsed_share,
       round(won * period_days / nullif(quota_amount * elapsed_days, 0), 4) AS pacing,
       round(won * period_days / nullif(elapsed_days, 0), 2) AS projected_amount,
       salesmgmt.reporting_currency() AS currency
  FROM q;

CREATE OR REPLACE VIEW bench_ref.pipeline_coverage AS
WITH quota_member AS MATERIALIZED (
    SELECT q.quota_id, q.period_start, q.period_end, m.member_rep_id
      FROM bench_ref.quota_unit q JOIN bench_ref.unit_member m ON m.unit_key = q.unit_key
),
open AS (
    SELECT qm.quota_id, sum(c.amount_rc * c.share) AS amount, sum(c.amount_rc * c.share * c.prob) AS weighted
      FROM quota_member qm
      JOIN bench_ref.credit c ON c.credit_rep_id = qm.member_rep_id AND c.outcome = 'open'
                             AND c.expected_close_date BETWEEN greatest(qm.period_start, current_date) AND qm.period_end
     GROUP BY qm.quota_id
)
SELECT a.level, a.quota_id, a.rep_id, a.team_id, a.period_start, a.period_end,
       greatest(a.period_end - greatest(a.period_start, current_date) + 1, 0) AS days_left,
       a.quota_amount, a.won_amount, a.remaining_amount,
       round(coalesce(o.amount, 0), 2) AS open_pipeline, round(coalesce(o.weighted, 0), 2) AS weighted_pipeline,
       round(coalesce(o.amount, 0) / nullif(a.remaining_amount, 0), 2) AS coverage,
       round(coalesce(o.weighted, 0) / nullif(a.remaining_amount, 0), 2) AS weighted_coverage,
       a.currency
  FROM bench_ref.quota_attainment a LEFT JOIN open o USING (quota_id);

CREATE OR REPLACE VIEW bench_ref.customer_summary AS
WITH deals AS (
    SELECT account_id, min(closed) FILTER (WHERE outcome = 'won') AS first_purchase_at,
           max(closed) FILTER (WHERE outcome = 'won') AS last_purchase_at,
           count(*) FILTER (WHERE outcome = 'won') AS won_deals,
           coalesce(sum(amount_rc) FILTER (WHERE outcome = 'won'), 0) AS revenue,
           count(*) FILTER (WHERE outcome = 'open') AS open_deals,
           coalesce(sum(amount_rc) FILTER (WHERE outcome = 'open'), 0) AS open_pipeline
      FROM bench_ref.deal GROUP BY account_id
),
money AS (
    SELECT d.account_id,
           coalesce(sum(salesmgmt.convert_amount(p.amount, p.currency, salesmgmt.reporting_currency(), p.paid_at::date)) FILTER (WHERE p.kind = 'payment'), 0) AS payments,
           coalesce(sum(salesmgmt.convert_amount(p.amount, p.currency, salesmgmt.reporting_currency(), p.paid_at::date)) FILTER (WHERE p.kind = 'refund'), 0) AS refunds
      FROM salesmgmt.payment p JOIN salesmgmt.deal d USING (deal_id) GROUP BY d.account_id
),
touch AS (
    SELECT account_id, max(occurred_at) AS last_activity_at FROM salesmgmt.activity WHERE occurred_at <= now() GROUP BY account_id
),
base AS (
    SELECT a.account_id, a.name, a.owner_rep_id, d.first_purchase_at, d.last_purchase_at,
           coalesce(d.won_deals, 0) AS won_deals, coalesce(d.revenue, 0) AS revenue,
           coalesce(d.open_deals, 0) AS open_deals, coalesce(d.open_pipeline, 0) AS open_pipeline,
           coalesce(m.payments, 0) AS payments, coalesce(m.refunds, 0) AS refunds, t.last_activity_at
      FROM salesmgmt.account a
      LEFT JOIN deals d USING (account_id) LEFT JOIN money m USING (account_id) LEFT JOIN touch t USING (account_id)
),
scored AS (
    SELECT b.*, b.revenue - b.refunds AS lifetime_value,
           CASE WHEN won_deals > 0 THEN 1 + floor(5 * (rank() OVER (PARTITION BY won_deals > 0 ORDER BY last_purchase_at) - 1)::numeric
                                                  / count(*) OVER (PARTITION BY won_deals > 0)) END AS r,
           CASE WHEN won_deals > 0 THEN 1 + floor(5 * (rank() OVER (PARTITION BY won_deals > 0 ORDER BY won_deals) - 1)::numeric
                                                  / count(*) OVER (PARTITION BY won_deals > 0)) END AS f,
           CASE WHEN won_deals > 0 THEN 1 + floor(5 * (rank() OVER (PARTITION BY won_deals > 0 ORDER BY revenue - refunds) - 1)::numeric
                                                  / count(*) OVER (PARTITION BY won_deals > 0)) END AS m
      FROM base b
),
grid (r, segments) AS (VALUES
    (5, ARRAY['New customers', 'Potential loyalists', 'Potential loyalists', 'Champions', 'Champions']),
    (4, ARRAY['Promising', 'Potential loyalists', 'Potential loyalists', 'Loyal customers', 'Loyal customers']),
    (3, ARRAY['About to sleep', 'About to sleep', 'Need attention', 'Loyal customers', 'Loyal customers']),
    (2, ARRAY['Hibernating', 'Hibernating', 'At risk', 'At risk', 'Cannot lose them']),
    (1, ARRAY['Hibernating', 'Hibernating', 'At risk', 'At risk', 'Cannot lose them']))
SELECT s.account_id, s.name, s.owner_rep_id, s.first_purchase_at, s.last_purchase_at, s.won_deals,
       round(s.revenue, 2) AS revenue, round(s.payments, 2) AS payments, round(s.refunds, 2) AS refunds,
       round(s.payments - s.refunds, 2) AS net_payments, round(s.lifetime_value, 2) AS lifetime_value,
       s.open_deals, round(s.open_pipeline, 2) AS open_pipeline, s.last_activity_at,
       current_date - s.last_activity_at::date AS days_since_last_activity,
       current_date - s.last_purchase_at::date AS days_since_last_purchase,
       s.r::integer AS recency_score, s.f::integer AS frequency_score, s.m::integer AS monetary_score,
       s.r::text || s.f::text || s.m::text AS rfm_cell,
       coalesce(g.segments[s.f::int], 'Prospect') AS segment,
       salesmgmt.reporting_currency() AS currency
  FROM scored s LEFT JOIN grid g ON g.r = s.r;

CREATE OR REPLACE VIEW bench_ref.customer_satisfaction AS
WITH months AS (
    SELECT generate_series(min(date_trunc('month', responded_at)), greatest(max(date_trunc('month', responded_at)), date_trunc('month', current_date)),
                           interval '1 month')::date AS month
      FROM salesmgmt.csat_response WHERE rep_id IS NOT NULL
),
agg AS (
    SELECT u.level, u.rep_id, u.team_id, mo.month,
           count(c.response_id) AS responses, count(c.csat) AS csat_responses, sum(c.csat) AS csat_sum,
           count(c.response_id) FILTER (WHERE c.csat >= 4) AS satisfied, count(c.nps) AS nps_responses,
           count(c.response_id) FILTER (WHERE c.nps >= 9) AS promoters,
           count(c.response_id) FILTER (WHERE c.nps BETWEEN 7 AND 8) AS passives,
           count(c.response_id) FILTER (WHERE c.nps <= 6) AS detractors
      FROM bench_ref.unit u CROSS JOIN months mo
      LEFT JOIN bench_ref.unit_member m ON m.unit_key = u.unit_key
      LEFT JOIN salesmgmt.csat_response c ON c.rep_id = m.member_rep_id AND date_trunc('month', c.responded_at)::date = mo.month
     GROUP BY 1, 2, 3, 4
)
SELECT level, rep_id, team_id, month, responses, csat_responses,
       round(csat_sum::numeric / nullif(csat_responses, 0), 2) AS csat_avg,
       round(satisfied::numeric / nullif(csat_responses, 0), 4) AS csat_satisfied_share,
       nps_responses, promoters, passives, detractors,
       round(100 * (promoters - detractors)::numeric / nullif(nps_responses, 0), 2) AS nps
  FROM agg;

CREATE OR REPLACE VIEW bench_ref.activity_summary AS
SELECT m.level, m.rep_id, m.team_id, date_trunc('week', a.occurred_at)::date AS week,
       count(*) FILTER (WHERE a.kind = 'call') AS calls, count(*) FILTER (WHERE a.kind = 'email') AS emails,
       count(*) FILTER (WHERE a.kind = 'meeting') AS meetings, count(*) FILTER (WHERE a.kind = 'visit') AS visits,
       count(*) FILTER (WHERE a.kind = 'demo') AS demos, count(*) FILTER (WHERE a.kind = 'note') AS notes,
       count(*) AS total,
       round(extract(epoch FROM coalesce(sum(a.duration), interval '0')) / 3600, 2) AS hours
  FROM salesmgmt.activity a JOIN bench_ref.unit_member m ON m.member_rep_id = a.rep_id
 GROUP BY 1, 2, 3, 4;

CREATE OR REPLACE VIEW bench_ref.account_last_touch AS
WITH ranked AS (
    SELECT a.*, row_number() OVER (PARTITION BY a.account_id ORDER BY a.occurred_at DESC, a.activity_id DESC) AS n,
           count(*) OVER (PARTITION BY a.account_id) AS total,
           count(*) FILTER (WHERE a.occurred_at > now() - interval '30 days') OVER (PARTITION BY a.account_id) AS d30,
           count(*) FILTER (WHERE a.occurred_at > now() - interval '90 days') OVER (PARTITION BY a.account_id) AS d90
      FROM salesmgmt.activity a WHERE a.occurred_at <= now()
)
SELECT acc.account_id, acc.owner_rep_id, r.occurred_at AS last_touch_at,
       current_date - r.occurred_at::date AS days_since_last_touch,
       r.kind AS last_touch_kind, r.rep_id AS last_touch_rep_id, r.contact_id AS last_touch_contact_id,
       r.outcome AS last_touch_outcome,
       coalesce(r.d30, 0) AS touches_30_days, coalesce(r.d90, 0) AS touches_90_days, coalesce(r.total, 0) AS touches_total
  FROM salesmgmt.account acc LEFT JOIN ranked r ON r.account_id = acc.account_id AND r.n = 1;

CREATE OR REPLACE VIEW bench_ref.cohort_conversion AS
WITH d AS (
    SELECT date_trunc('month', created_at)::date AS cohort_month, pipeline_id, outcome, closed, created_at FROM bench_ref.deal
),
months AS (
    SELECT generate_series(min(cohort_month), greatest(max(cohort_month), date_trunc('month', current_date)::date), interval '1 month')::date AS cohort_month FROM d
),
pipelines AS (SELECT pipeline_id FROM salesmgmt.pipeline UNION ALL SELECT NULL),
agg AS (
    SELECT m.cohort_month, p.pipeline_id, count(d.cohort_month) AS created,
           count(d.cohort_month) FILTER (WHERE d.outcome = 'won' AND d.closed <= d.created_at + interval '30 days') AS w30,
           count(d.cohort_month) FILTER (WHERE d.outcome = 'won' AND d.closed <= d.created_at + interval '60 days') AS w60,
           count(d.cohort_month) FILTER (WHERE d.outcome = 'won' AND d.closed <= d.created_at + interval '90 days') AS w90,
           count(d.cohort_month) FILTER (WHERE d.outcome = 'won') AS won, count(d.cohort_month) FILTER (WHERE d.outcome = 'lost') AS lost
      FROM months m CROSS JOIN pipelines p
      LEFT JOIN d ON d.cohort_month = m.cohort_month AND (p.pipeline_id IS NULL OR d.pipeline_id = p.pipeline_id)
     GROUP BY 1, 2
)
SELECT cohort_month, pipeline_id, created AS created_deals, w30 AS won_within_30_days, w60 AS won_within_60_days,
       w90 AS won_within_90_days, won AS won_to_date, lost AS lost_to_date, created - won - lost AS open_deals,
       CASE WHEN (cohort_month + interval '1 month 30 days')::timestamptz <= now() THEN round(w30::numeric / nullif(created, 0), 4) END AS share_won_30_days,
       CASE WHEN (cohort_month + interval '1 month 60 days')::timestamptz <= now() THEN round(w60::numeric / nullif(created, 0), 4) END AS share_won_60_days,
       CASE WHEN (cohort_month + interval '1 month 90 days')::timestamptz <= now() THEN round(w90::numeric / nullif(created, 0), 4) END AS share_won_90_days,
       round(won::numeric / nullif(created, 0), 4) AS share_won_to_date
  FROM agg;

CREATE OR REPLACE VIEW bench_ref.feedback_summary AS
WITH months AS (
    SELECT generate_series(date_trunc('month', min(created_at)), greatest(date_trunc('month', max(created_at)), date_trunc('month', current_date)),
                           interval '1 month')::date AS month FROM salesmgmt.feedback
),
cats AS (SELECT DISTINCT category FROM salesmgmt.feedback UNION ALL SELECT NULL)
SELECT m.month, c.category, count(f.feedback_id) AS received,
       count(f.feedback_id) FILTER (WHERE f.status = 'open') AS open_count,
       count(f.feedback_id) FILTER (WHERE f.status = 'triaged') AS triaged_count,
       count(f.feedback_id) FILTER (WHERE f.status = 'resolved') AS resolved_count,
       count(f.feedback_id) FILTER (WHERE f.sentiment = 'negative') AS negative_count,
       round(count(f.feedback_id) FILTER (WHERE f.sentiment = 'negative')::numeric / nullif(count(f.feedback_id), 0), 4) AS negative_share,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY f.resolved_at - f.created_at) FILTER (WHERE f.status = 'resolved') AS median_time_to_resolve,
       round((extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY f.resolved_at - f.created_at) FILTER (WHERE f.status = 'resolved')) / 86400)::numeric, 2) AS median_days_to_resolve
  FROM months m CROSS JOIN cats c
  LEFT JOIN salesmgmt.feedback f ON date_trunc('month', f.created_at)::date = m.month AND (c.category IS NULL OR f.category = c.category)
 GROUP BY m.month, c.category;

-- bench/analytics_reference.sql: the analytics views written as tuned
-- plain SQL, the reference bench/analytics.sh times the salesmgmt views
-- against.  Same semantics and the same output (the script compares the
-- rows), written the way a strong DBA would without the extension's
-- engineering: amounts converted by a join to the dated rate (an index
-- probe only for deals not in the reporting currency, no function call per
-- row), facts aggregated per rep first and only then rolled up to teams
-- and joined to the grid of periods (hash joins on equality keys), the
-- all-pipelines and all-categories rows from GROUPING SETS in the same
-- pass instead of "IS NULL OR" joins.  (The first version of this file,
-- which did none of that, was issue #24's "naive" reference.)
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

-- every deal with its outcome, close time, probability and amount in the
-- reporting currency at the rate of its close day (today while open): the
-- pair's latest rate on or before the day, else the reverse pair's, looked
-- up only for deals in another currency
CREATE OR REPLACE VIEW bench_ref.deal AS
SELECT d.*, s.outcome, x.closed,
       CASE WHEN d.currency = rc.code THEN d.amount
            WHEN dir.rate IS NOT NULL THEN d.amount * dir.rate
            ELSE d.amount / rev.rate END AS amount_rc,
       CASE s.outcome WHEN 'won' THEN 1 WHEN 'lost' THEN 0 ELSE coalesce(d.probability, s.probability) END AS prob
  FROM salesmgmt.deal d JOIN salesmgmt.stage s USING (stage_id)
 CROSS JOIN (SELECT salesmgmt.reporting_currency() AS code) rc
 CROSS JOIN LATERAL (SELECT CASE WHEN s.outcome <> 'open' THEN coalesce(d.closed_at, d.stage_entered_at) END AS closed) x
  LEFT JOIN LATERAL (SELECT r.rate FROM salesmgmt.currency_rate r
                      WHERE d.currency <> rc.code AND r.currency = d.currency AND r.quote_currency = rc.code
                        AND r.valid_from <= coalesce(x.closed::date, current_date)
                      ORDER BY r.valid_from DESC LIMIT 1) dir ON true
  LEFT JOIN LATERAL (SELECT r.rate FROM salesmgmt.currency_rate r
                      WHERE d.currency <> rc.code AND dir.rate IS NULL AND r.currency = rc.code AND r.quote_currency = d.currency
                        AND r.valid_from <= coalesce(x.closed::date, current_date)
                      ORDER BY r.valid_from DESC LIMIT 1) rev ON true;

CREATE OR REPLACE VIEW bench_ref.win_rates_by AS
WITH closed AS (
    SELECT owner_rep_id, pipeline_id, outcome, amount_rc, date_trunc('quarter', closed)::date AS quarter
      FROM bench_ref.deal WHERE outcome <> 'open'
),
quarters AS (
    SELECT generate_series(min(quarter), greatest(max(quarter), date_trunc('quarter', current_date)::date),
                           interval '3 months')::date AS quarter FROM closed
),
pipelines AS (SELECT pipeline_id FROM salesmgmt.pipeline UNION ALL SELECT NULL),
per_rep AS (   -- one pass: per owner and quarter, by pipeline and over all (pipeline_id null)
    SELECT owner_rep_id, pipeline_id, quarter,
           count(*) FILTER (WHERE outcome = 'won') AS won_deals, count(*) FILTER (WHERE outcome = 'lost') AS lost_deals,
           sum(amount_rc) FILTER (WHERE outcome = 'won') AS won_amount, sum(amount_rc) FILTER (WHERE outcome = 'lost') AS lost_amount
      FROM closed GROUP BY GROUPING SETS ((owner_rep_id, pipeline_id, quarter), (owner_rep_id, quarter))
),
per_unit AS (
    SELECT m.unit_key, r.pipeline_id, r.quarter, sum(r.won_deals)::bigint AS won_deals, sum(r.lost_deals)::bigint AS lost_deals,
           sum(r.won_amount) AS won_amount, sum(r.lost_amount) AS lost_amount
      FROM per_rep r JOIN bench_ref.unit_member m ON m.member_rep_id = r.owner_rep_id
     GROUP BY 1, 2, 3
),
agg AS (
    SELECT u.level, u.rep_id, u.team_id, p.pipeline_id, q.quarter,
           coalesce(a.won_deals, 0) AS won_deals, coalesce(a.lost_deals, 0) AS lost_deals,
           coalesce(a.won_amount, 0) AS won_amount, coalesce(a.lost_amount, 0) AS lost_amount
      FROM bench_ref.unit u CROSS JOIN pipelines p CROSS JOIN quarters q
      LEFT JOIN per_unit a ON a.unit_key = u.unit_key AND coalesce(a.pipeline_id, -1) = coalesce(p.pipeline_id, -1)
                          AND a.quarter = q.quarter
)
SELECT level, rep_id, team_id, pipeline_id, quarter, won_deals, lost_deals,
       round(won_deals::numeric / nullif(won_deals + lost_deals, 0), 4) AS win_rate,
       round(won_amount, 2) AS won_amount, round(lost_amount, 2) AS lost_amount,
       round(won_amount / nullif(won_amount + lost_amount, 0), 4) AS win_rate_by_amount,
       salesmgmt.reporting_currency() AS currency
  FROM agg;

CREATE OR REPLACE VIEW bench_ref.sales_velocity AS
WITH d AS (SELECT owner_rep_id, outcome, amount_rc, closed, created_at,
                  least(created_at, coalesce(closed, created_at)) AS opened FROM bench_ref.deal),
quarters AS (
    SELECT generate_series(min(date_trunc('quarter', opened))::date,
                           greatest(max(date_trunc('quarter', coalesce(closed, created_at))), date_trunc('quarter', current_date))::date,
                           interval '3 months')::date AS quarter FROM d
),
span AS (      -- each deal in every quarter it was open in: from the quarter it opened to the one it closed in
    SELECT d.*, g.quarter::date AS quarter
      FROM d CROSS JOIN (SELECT max(quarter) AS last FROM quarters) l
     CROSS JOIN LATERAL generate_series(date_trunc('quarter', d.opened),
                                        coalesce(date_trunc('quarter', d.closed), l.last::timestamptz),
                                        interval '3 months') AS g(quarter)
),
per_rep AS (
    SELECT owner_rep_id, quarter, count(*) AS open_deals,
           count(*) FILTER (WHERE outcome = 'won' AND date_trunc('quarter', closed)::date = quarter) AS won_deals,
           count(*) FILTER (WHERE outcome = 'lost' AND date_trunc('quarter', closed)::date = quarter) AS lost_deals,
           sum(amount_rc) FILTER (WHERE outcome = 'won' AND date_trunc('quarter', closed)::date = quarter) AS won_amount,
           sum(extract(epoch FROM closed - created_at) / 86400) FILTER (WHERE outcome = 'won' AND date_trunc('quarter', closed)::date = quarter) AS cycle
      FROM span GROUP BY 1, 2
),
per_unit AS (
    SELECT m.unit_key, r.quarter, sum(r.open_deals)::bigint AS open_deals, sum(r.won_deals)::bigint AS won_deals,
           sum(r.lost_deals)::bigint AS lost_deals, sum(r.won_amount) AS won_amount, sum(r.cycle) AS cycle
      FROM per_rep r JOIN bench_ref.unit_member m ON m.member_rep_id = r.owner_rep_id
     GROUP BY 1, 2
),
agg AS (
    SELECT u.level, u.rep_id, u.team_id, q.quarter,
           coalesce(a.open_deals, 0) AS open_deals, coalesce(a.won_deals, 0) AS won_deals, coalesce(a.lost_deals, 0) AS lost_deals,
           coalesce(a.won_amount, 0) AS won_amount, a.cycle
      FROM bench_ref.unit u CROSS JOIN quarters q
      LEFT JOIN per_unit a ON a.unit_key = u.unit_key AND a.quarter = q.quarter
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

-- The quotas that count, as they count: salesmgmt.quota_of_record is itself
-- plain SQL (a past period's quota as it was at the period's end), so the
-- reference reads it too.  Team members are today's tree (unit_member): the
-- reference does not model reps who moved teams during a period; the data
-- set has no such moves (scripts/datagen.sql writes no rep_team_history),
-- so both count the same reps, and the reference is spared the spans.
CREATE OR REPLACE VIEW bench_ref.quota_unit AS
SELECT q.*, CASE WHEN q.rep_id IS NOT NULL THEN 'rep:' || q.rep_id ELSE 'team:' || q.team_id END AS unit_key
  FROM salesmgmt.quota_of_record q;

CREATE OR REPLACE VIEW bench_ref.quota_attainment AS
WITH quota_member AS MATERIALIZED (   -- each quota with the reps it counts
    SELECT q.quota_id, q.period_start, q.period_end, q.product_family, q.measure, m.member_rep_id
      FROM bench_ref.quota_unit q JOIN bench_ref.unit_member m ON m.unit_key = q.unit_key
),
family_share AS (   -- each deal's share of its line amounts per product family
    SELECT l.deal_id, p.family,
           sum(l.line_amount) / nullif(sum(sum(l.line_amount)) OVER (PARTITION BY l.deal_id), 0) AS share
      FROM salesmgmt.deal_line l JOIN salesmgmt.product p ON p.product_id = l.product_id
     GROUP BY l.deal_id, p.family
),
won AS (
    SELECT qm.quota_id,
           sum(CASE WHEN qm.measure = 'new_arr'
                    THEN salesmgmt.deal_new_arr(c.deal_id, salesmgmt.reporting_currency()) * c.share
                    ELSE c.amount_rc * c.share END
               * CASE WHEN qm.product_family IS NULL THEN 1 ELSE coalesce(fs.share, 0) END) AS won
      FROM quota_member qm
      JOIN bench_ref.credit c ON c.credit_rep_id = qm.member_rep_id AND c.outcome = 'won'
                             AND c.closed::date BETWEEN qm.period_start AND qm.period_end
      LEFT JOIN family_share fs ON qm.product_family IS NOT NULL AND fs.deal_id = c.deal_id AND fs.family = qm.product_family
     GROUP BY qm.quota_id
),
q AS (
    SELECT q.*,
           CASE WHEN q.currency = rc.code THEN q.amount WHEN dir.rate IS NOT NULL THEN q.amount * dir.rate
                ELSE q.amount / rev.rate END AS quota_amount,
           q.period_end - q.period_start + 1 AS period_days,
           least(greatest(current_date - q.period_start + 1, 0), q.period_end - q.period_start + 1) AS elapsed_days,
           coalesce(w.won, 0) AS won
      FROM salesmgmt.quota_of_record q
     CROSS JOIN (SELECT salesmgmt.reporting_currency() AS code) rc
      LEFT JOIN LATERAL (SELECT r.rate FROM salesmgmt.currency_rate r
                          WHERE q.currency <> rc.code AND r.currency = q.currency AND r.quote_currency = rc.code
                            AND r.valid_from <= q.period_start
                          ORDER BY r.valid_from DESC LIMIT 1) dir ON true
      LEFT JOIN LATERAL (SELECT r.rate FROM salesmgmt.currency_rate r
                          WHERE q.currency <> rc.code AND dir.rate IS NULL AND r.currency = rc.code AND r.quote_currency = q.currency
                            AND r.valid_from <= q.period_start
                          ORDER BY r.valid_from DESC LIMIT 1) rev ON true
      LEFT JOIN won w USING (quota_id)
)
SELECT CASE WHEN rep_id IS NOT NULL THEN 'rep' ELSE 'team' END AS level, quota_id, rep_id, team_id, period_start, period_end,
       round(quota_amount, 2) AS quota_amount, round(won, 2) AS won_amount,
       round(won / nullif(quota_amount, 0), 4) AS attainment,
       round(greatest(quota_amount - won, 0), 2) AS remaining_amount,
       period_days, elapsed_days, round(elapsed_days::numeric / period_days, 4) AS elapsed_share,
       round(won * period_days / nullif(quota_amount * elapsed_days, 0), 4) AS pacing,
       round(won * period_days / nullif(elapsed_days, 0), 2) AS projected_amount,
       salesmgmt.reporting_currency() AS currency,
       product_family,
       measure
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
paid AS (      -- payments in the reporting currency at the rate of their day
    SELECT p.deal_id, p.kind,
           CASE WHEN p.currency = rc.code THEN p.amount WHEN dir.rate IS NOT NULL THEN p.amount * dir.rate
                ELSE p.amount / rev.rate END AS amount
      FROM salesmgmt.payment p
     CROSS JOIN (SELECT salesmgmt.reporting_currency() AS code) rc
      LEFT JOIN LATERAL (SELECT r.rate FROM salesmgmt.currency_rate r
                          WHERE p.currency <> rc.code AND r.currency = p.currency AND r.quote_currency = rc.code
                            AND r.valid_from <= p.paid_at::date
                          ORDER BY r.valid_from DESC LIMIT 1) dir ON true
      LEFT JOIN LATERAL (SELECT r.rate FROM salesmgmt.currency_rate r
                          WHERE p.currency <> rc.code AND dir.rate IS NULL AND r.currency = rc.code AND r.quote_currency = p.currency
                            AND r.valid_from <= p.paid_at::date
                          ORDER BY r.valid_from DESC LIMIT 1) rev ON true
),
money AS (
    SELECT d.account_id,
           coalesce(sum(p.amount) FILTER (WHERE p.kind = 'payment'), 0) AS payments,
           coalesce(sum(p.amount) FILTER (WHERE p.kind = 'refund'), 0) AS refunds
      FROM paid p JOIN salesmgmt.deal d USING (deal_id) GROUP BY d.account_id
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
per_rep AS (
    SELECT c.rep_id, date_trunc('month', c.responded_at)::date AS month,
           count(*) AS responses, count(c.csat) AS csat_responses, sum(c.csat) AS csat_sum,
           count(*) FILTER (WHERE c.csat >= 4) AS satisfied, count(c.nps) AS nps_responses,
           count(*) FILTER (WHERE c.nps >= 9) AS promoters,
           count(*) FILTER (WHERE c.nps BETWEEN 7 AND 8) AS passives,
           count(*) FILTER (WHERE c.nps <= 6) AS detractors
      FROM salesmgmt.csat_response c WHERE c.rep_id IS NOT NULL GROUP BY 1, 2
),
per_unit AS (
    SELECT m.unit_key, r.month, sum(r.responses)::bigint AS responses, sum(r.csat_responses)::bigint AS csat_responses,
           sum(r.csat_sum)::bigint AS csat_sum, sum(r.satisfied)::bigint AS satisfied, sum(r.nps_responses)::bigint AS nps_responses,
           sum(r.promoters)::bigint AS promoters, sum(r.passives)::bigint AS passives, sum(r.detractors)::bigint AS detractors
      FROM per_rep r JOIN bench_ref.unit_member m ON m.member_rep_id = r.rep_id
     GROUP BY 1, 2
),
agg AS (
    SELECT u.level, u.rep_id, u.team_id, mo.month,
           coalesce(a.responses, 0) AS responses, coalesce(a.csat_responses, 0) AS csat_responses, a.csat_sum,
           coalesce(a.satisfied, 0) AS satisfied, coalesce(a.nps_responses, 0) AS nps_responses,
           coalesce(a.promoters, 0) AS promoters, coalesce(a.passives, 0) AS passives, coalesce(a.detractors, 0) AS detractors
      FROM bench_ref.unit u CROSS JOIN months mo
      LEFT JOIN per_unit a ON a.unit_key = u.unit_key AND a.month = mo.month
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
counted AS (   -- one pass: by pipeline and over all (pipeline_id null)
    SELECT cohort_month, pipeline_id, count(*) AS created,
           count(*) FILTER (WHERE outcome = 'won' AND closed <= created_at + interval '30 days') AS w30,
           count(*) FILTER (WHERE outcome = 'won' AND closed <= created_at + interval '60 days') AS w60,
           count(*) FILTER (WHERE outcome = 'won' AND closed <= created_at + interval '90 days') AS w90,
           count(*) FILTER (WHERE outcome = 'won') AS won, count(*) FILTER (WHERE outcome = 'lost') AS lost
      FROM d GROUP BY GROUPING SETS ((cohort_month, pipeline_id), (cohort_month))
),
agg AS (
    SELECT m.cohort_month, p.pipeline_id, coalesce(c.created, 0) AS created, coalesce(c.w30, 0) AS w30,
           coalesce(c.w60, 0) AS w60, coalesce(c.w90, 0) AS w90, coalesce(c.won, 0) AS won, coalesce(c.lost, 0) AS lost
      FROM months m CROSS JOIN pipelines p
      LEFT JOIN counted c ON c.cohort_month = m.cohort_month AND coalesce(c.pipeline_id, -1) = coalesce(p.pipeline_id, -1)
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
cats AS (SELECT DISTINCT category FROM salesmgmt.feedback UNION ALL SELECT NULL),
counted AS (   -- one pass: by category and over all (category null; feedback.category is never null)
    SELECT date_trunc('month', f.created_at)::date AS month, f.category, count(*) AS received,
           count(*) FILTER (WHERE f.status = 'open') AS open_count,
           count(*) FILTER (WHERE f.status = 'triaged') AS triaged_count,
           count(*) FILTER (WHERE f.status = 'resolved') AS resolved_count,
           count(*) FILTER (WHERE f.sentiment = 'negative') AS negative_count,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY f.resolved_at - f.created_at) FILTER (WHERE f.status = 'resolved') AS median_time_to_resolve
      FROM salesmgmt.feedback f
     GROUP BY GROUPING SETS ((date_trunc('month', f.created_at)::date, f.category), (date_trunc('month', f.created_at)::date))
)
SELECT m.month, c.category, coalesce(x.received, 0) AS received,
       coalesce(x.open_count, 0) AS open_count, coalesce(x.triaged_count, 0) AS triaged_count,
       coalesce(x.resolved_count, 0) AS resolved_count, coalesce(x.negative_count, 0) AS negative_count,
       round(x.negative_count::numeric / nullif(x.received, 0), 4) AS negative_share,
       x.median_time_to_resolve,
       round((extract(epoch FROM x.median_time_to_resolve) / 86400)::numeric, 2) AS median_days_to_resolve
  FROM months m CROSS JOIN cats c
  LEFT JOIN counted x ON x.month = m.month AND coalesce(x.category, '') = coalesce(c.category, '');

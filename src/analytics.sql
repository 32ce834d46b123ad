-- analytics.sql: the data-analysis-and-feedback pillar, for BI tools.
--
-- Plain SQL views a BI analyst points Metabase, Superset, Grafana or a
-- spreadsheet at: win rates, sales velocity, pipeline coverage, quota
-- attainment (those two in src/quota_as_of.sql), customer value and RFM segments, customer satisfaction,
-- communication records, cohort conversion.  And the feedback loop: the
-- feedback table, its forward-only status workflow and its summary view.
-- Every formula is written out in docs/bi.md.
--
-- Conventions of every view here:
--   * security_invoker: a view reads the underlying tables with the
--     privileges and row-level security of the user who queries it, so a
--     rep sees the figures of the rows they may see, never more.
--   * Money is converted to the reporting currency (the setting
--     salesmgmt.reporting_currency) with the dated rate of the day the money
--     moved: a closed deal on its closed_at date, an open deal today, a
--     payment on its paid_at date, a quota on its period_start; the same
--     rule as salesmgmt.convert_amount, whose error a missing rate raises.
--   * Periods are taken in the session's TimeZone: the quarter of a closed
--     deal is the quarter of its closed_at.
--   * Ratios whose denominator is zero are NULL, never an error.
--   * Views by period are dense where a period without data is an answer
--     (win rates, velocity, satisfaction, cohorts, feedback): every rep or
--     team gets a row for every period from the first one with data to the
--     current one.
--   * level = 'rep' rows credit a rep; level = 'team' rows add up every rep
--     of the team and of all its sub-teams (the team tree, at any depth).
--   * Pre-aggregation first, then joins: no view runs a subquery per row
--     over the deal table.

-- ---------------------------------------------------------------------------
-- Building blocks: reporting units, one row per deal
-- ---------------------------------------------------------------------------

-- The reporting currency (salesmgmt.reporting_currency()), the rates to it
-- as validity ranges (salesmgmt.reporting_rate) and the team tree
-- (salesmgmt.team_closure) are shared building blocks, in core.sql.

-- Reporting units: every rep, and every team with all its sub-teams, each
-- with the reps whose figures it adds up.  The views by rep and team
-- aggregate per rep once, join this to roll the aggregates up, and take
-- the units from it for their rows (a team without reps has rows without
-- a member, so it still gets rows of zeros).
CREATE VIEW salesmgmt.rep_rollup WITH (security_invoker = true) AS
SELECT 'rep'::text AS level, r.rep_id AS unit_id, r.rep_id, r.team_id, r.rep_id AS member_rep_id
  FROM salesmgmt.rep r
UNION ALL
SELECT 'team', tc.ancestor_team_id, NULL, tc.ancestor_team_id, m.rep_id
  FROM salesmgmt.team_closure tc
  LEFT JOIN salesmgmt.rep m ON m.team_id = tc.team_id;
COMMENT ON VIEW salesmgmt.rep_rollup IS 'Reporting units and their members: each rep (level rep) and each team with all its sub-teams (level team), with every rep whose figures the unit adds up.';
COMMENT ON COLUMN salesmgmt.rep_rollup.level IS 'rep or team.';
COMMENT ON COLUMN salesmgmt.rep_rollup.unit_id IS 'rep_id of a rep unit, team_id of a team unit.';
COMMENT ON COLUMN salesmgmt.rep_rollup.rep_id IS 'The rep of a rep unit; null for a team unit.';
COMMENT ON COLUMN salesmgmt.rep_rollup.team_id IS 'The rep''s team (rep unit) or the team (team unit).';
COMMENT ON COLUMN salesmgmt.rep_rollup.member_rep_id IS 'A rep whose figures the unit counts: the rep itself, or each rep of the team and its sub-teams; null for a team without reps.';

CREATE VIEW salesmgmt.deal_facts WITH (security_invoker = true) AS
SELECT d.deal_id, d.account_id, d.owner_rep_id, o.team_id AS owner_team_id,
       d.pipeline_id, d.stage_id, s.outcome,
       d.amount, d.currency,
       CASE WHEN r.rate IS NULL
                 -- no rate: raise convert_amount's error naming pair and day
                 THEN salesmgmt.convert_amount(d.amount, d.currency, salesmgmt.reporting_currency(), x.rate_at::date)
            WHEN r.inverse THEN d.amount / r.rate
            ELSE d.amount * r.rate END AS amount_reporting,
       CASE s.outcome WHEN 'won' THEN 1::numeric WHEN 'lost' THEN 0::numeric
            ELSE coalesce(d.probability, s.probability) END AS probability,
       d.created_at, c.closed_at, d.expected_close_date,
       extract(epoch FROM c.closed_at - d.created_at) / 86400 AS cycle_days
  FROM salesmgmt.deal d
  JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
  LEFT JOIN salesmgmt.rep o ON o.rep_id = d.owner_rep_id
  -- closed_at is kept by the pipeline trigger; a closed deal written
  -- around it still gets a period: the time it entered its closed stage
  CROSS JOIN LATERAL (SELECT CASE WHEN s.outcome <> 'open'
                                  THEN coalesce(d.closed_at, d.stage_entered_at) END AS closed_at) c
  -- the day of the rate: of the close, or today; compared as times, which
  -- is the same and spares a time-zone conversion per candidate rate
  CROSS JOIN LATERAL (SELECT coalesce(c.closed_at, now()) AS rate_at) x
  LEFT JOIN salesmgmt.reporting_rate r
         ON r.currency = d.currency AND x.rate_at >= r.valid_from_at AND x.rate_at < r.valid_until_at;
COMMENT ON VIEW salesmgmt.deal_facts IS 'One row per deal with what the analytics views derive from it: outcome, amount in the reporting currency, effective probability, close time and sales-cycle length.';
COMMENT ON COLUMN salesmgmt.deal_facts.deal_id IS 'The deal.';
COMMENT ON COLUMN salesmgmt.deal_facts.account_id IS 'Customer of the deal.';
COMMENT ON COLUMN salesmgmt.deal_facts.owner_rep_id IS 'Rep who owns the deal; win rates, velocity and cohorts count deals by owner.';
COMMENT ON COLUMN salesmgmt.deal_facts.owner_team_id IS 'Team of the owner (rep.team_id today).';
COMMENT ON COLUMN salesmgmt.deal_facts.pipeline_id IS 'Pipeline of the deal.';
COMMENT ON COLUMN salesmgmt.deal_facts.stage_id IS 'Current stage.';
COMMENT ON COLUMN salesmgmt.deal_facts.outcome IS 'Outcome of the current stage: open, won or lost.';
COMMENT ON COLUMN salesmgmt.deal_facts.amount IS 'Deal amount in its own currency.';
COMMENT ON COLUMN salesmgmt.deal_facts.currency IS 'Currency of amount.';
COMMENT ON COLUMN salesmgmt.deal_facts.amount_reporting IS 'amount in the reporting currency: at the rate of the closed_at date for a closed deal, of today for an open one (unrounded).';
COMMENT ON COLUMN salesmgmt.deal_facts.probability IS 'Effective win probability: 1 won, 0 lost, else the deal''s override or the stage''s probability.';
COMMENT ON COLUMN salesmgmt.deal_facts.created_at IS 'When the deal was created.';
COMMENT ON COLUMN salesmgmt.deal_facts.closed_at IS 'When a won or lost deal closed (deal.closed_at; stage_entered_at if closed_at is missing); null while open. Decides the period of a closed deal.';
COMMENT ON COLUMN salesmgmt.deal_facts.expected_close_date IS 'Expected close date; decides the period of an open deal.';
COMMENT ON COLUMN salesmgmt.deal_facts.cycle_days IS 'Sales cycle of a closed deal in days (closed_at - created_at, fractional); null while open.';

-- ---------------------------------------------------------------------------
-- Win rates
-- ---------------------------------------------------------------------------

CREATE VIEW salesmgmt.win_rates_by WITH (security_invoker = true) AS
WITH closed AS (
    -- per rep, quarter and pipeline, and per rep and quarter (all_pipelines;
    -- its pipeline_key 0 is only a placeholder that joins with a hash)
    SELECT f.owner_rep_id AS rep_id, coalesce(f.pipeline_id, 0) AS pipeline_key,
           grouping(f.pipeline_id) = 1 AS all_pipelines, q.quarter,
           count(*) FILTER (WHERE f.outcome = 'won') AS won_deals,
           count(*) FILTER (WHERE f.outcome = 'lost') AS lost_deals,
           coalesce(sum(f.amount_reporting) FILTER (WHERE f.outcome = 'won'), 0) AS won_amount,
           coalesce(sum(f.amount_reporting) FILTER (WHERE f.outcome = 'lost'), 0) AS lost_amount
      FROM salesmgmt.deal_facts f
     CROSS JOIN LATERAL (SELECT date_trunc('quarter', f.closed_at)::date AS quarter) q
     WHERE f.outcome <> 'open'
     GROUP BY GROUPING SETS ((f.owner_rep_id, f.pipeline_id, q.quarter), (f.owner_rep_id, q.quarter))
),
rolled AS (
    SELECT 'rep'::text AS level, c.rep_id AS unit_id, c.pipeline_key, c.all_pipelines, c.quarter,
           c.won_deals, c.lost_deals, c.won_amount, c.lost_amount
      FROM closed c
    UNION ALL
    SELECT u.level, u.unit_id, c.pipeline_key, c.all_pipelines, c.quarter,
           sum(c.won_deals), sum(c.lost_deals), sum(c.won_amount), sum(c.lost_amount)
      FROM closed c
      JOIN salesmgmt.rep_rollup u ON u.member_rep_id = c.rep_id AND u.level = 'team'
     GROUP BY 1, 2, 3, 4, 5
),
units AS (
    SELECT DISTINCT level, unit_id, rep_id, team_id FROM salesmgmt.rep_rollup
),
quarters AS (
    SELECT generate_series(min(quarter), greatest(max(quarter), date_trunc('quarter', current_date)::date),
                           interval '3 months')::date AS quarter
      FROM closed
),
pipelines AS (
    SELECT pipeline_id AS pipeline_key, false AS all_pipelines FROM salesmgmt.pipeline
    UNION ALL
    SELECT 0, true
)
SELECT u.level, u.rep_id, u.team_id, CASE WHEN NOT p.all_pipelines THEN p.pipeline_key END AS pipeline_id, q.quarter,
       coalesce(c.won_deals, 0)::bigint AS won_deals,
       coalesce(c.lost_deals, 0)::bigint AS lost_deals,
       round(c.won_deals / nullif(c.won_deals + c.lost_deals, 0), 4) AS win_rate,
       round(coalesce(c.won_amount, 0), 2) AS won_amount,
       round(coalesce(c.lost_amount, 0), 2) AS lost_amount,
       round(c.won_amount / nullif(c.won_amount + c.lost_amount, 0), 4) AS win_rate_by_amount,
       salesmgmt.reporting_currency() AS currency
  FROM units u
 CROSS JOIN pipelines p
 CROSS JOIN quarters q
  LEFT JOIN rolled c ON c.level = u.level AND c.unit_id = u.unit_id AND c.pipeline_key = p.pipeline_key
                    AND c.all_pipelines = p.all_pipelines AND c.quarter = q.quarter;
COMMENT ON VIEW salesmgmt.win_rates_by IS 'Win rate won / (won + lost) of the deals closed in a quarter, by rep, by team (the team and all its sub-teams) and by pipeline (pipeline_id null: all pipelines); every rep and team has a row for every quarter from the first close to the current one.';
COMMENT ON COLUMN salesmgmt.win_rates_by.level IS 'rep: deals owned by rep_id; team: deals owned by any rep of team_id or of a team below it.';
COMMENT ON COLUMN salesmgmt.win_rates_by.rep_id IS 'The rep (level rep); null for team rows.';
COMMENT ON COLUMN salesmgmt.win_rates_by.team_id IS 'The rep''s team (level rep) or the team rolled up (level team).';
COMMENT ON COLUMN salesmgmt.win_rates_by.pipeline_id IS 'Pipeline of the deals; null on the row that adds up all pipelines.';
COMMENT ON COLUMN salesmgmt.win_rates_by.quarter IS 'First day of the quarter the deals closed in (closed_at, session time zone).';
COMMENT ON COLUMN salesmgmt.win_rates_by.won_deals IS 'Deals closed won in the quarter.';
COMMENT ON COLUMN salesmgmt.win_rates_by.lost_deals IS 'Deals closed lost in the quarter.';
COMMENT ON COLUMN salesmgmt.win_rates_by.win_rate IS 'won_deals / (won_deals + lost_deals), 4 decimals; null when nothing closed.';
COMMENT ON COLUMN salesmgmt.win_rates_by.won_amount IS 'Sum of the won deals'' amounts in the reporting currency.';
COMMENT ON COLUMN salesmgmt.win_rates_by.lost_amount IS 'Sum of the lost deals'' amounts in the reporting currency.';
COMMENT ON COLUMN salesmgmt.win_rates_by.win_rate_by_amount IS 'won_amount / (won_amount + lost_amount), 4 decimals; null when the sum is zero.';
COMMENT ON COLUMN salesmgmt.win_rates_by.currency IS 'The reporting currency of the amounts.';

-- ---------------------------------------------------------------------------
-- Sales velocity
-- ---------------------------------------------------------------------------

-- A deal is in play from the quarter it was created in to the quarter it
-- closed in (or today).  Counting that per quarter needs no expansion of
-- deals into quarters: in play(q) = created up to q - closed before q, a
-- running sum over the quarters of each rep.
CREATE VIEW salesmgmt.sales_velocity WITH (security_invoker = true) AS
WITH started AS (
    -- from the deal table itself: counting needs no amounts (deal_facts'
    -- rate join would be wasted); the start is the creation, or the close
    -- if an import recorded it earlier
    SELECT d.owner_rep_id AS rep_id,
           date_trunc('quarter', CASE WHEN s.outcome = 'open' THEN d.created_at
                                      ELSE least(d.created_at, coalesce(d.closed_at, d.stage_entered_at)) END)::date AS quarter,
           count(*) AS started
      FROM salesmgmt.deal d
      JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
     GROUP BY 1, 2
),
closed AS (
    SELECT f.owner_rep_id AS rep_id, date_trunc('quarter', f.closed_at)::date AS quarter,
           count(*) AS closed,
           count(*) FILTER (WHERE f.outcome = 'won') AS won_deals,
           count(*) FILTER (WHERE f.outcome = 'lost') AS lost_deals,
           coalesce(sum(f.amount_reporting) FILTER (WHERE f.outcome = 'won'), 0) AS won_amount,
           coalesce(sum(f.cycle_days) FILTER (WHERE f.outcome = 'won'), 0) AS won_cycle_days
      FROM salesmgmt.deal_facts f
     WHERE f.outcome <> 'open'
     GROUP BY 1, 2
),
events AS (
    SELECT rep_id, quarter, coalesce(s.started, 0) AS started, coalesce(c.closed, 0) AS closed,
           coalesce(c.won_deals, 0) AS won_deals, coalesce(c.lost_deals, 0) AS lost_deals,
           coalesce(c.won_amount, 0) AS won_amount, coalesce(c.won_cycle_days, 0) AS won_cycle_days
      FROM started s
      FULL JOIN closed c USING (rep_id, quarter)
),
rolled AS (
    SELECT 'rep'::text AS level, e.rep_id AS unit_id, e.quarter,
           e.started, e.closed, e.won_deals, e.lost_deals, e.won_amount, e.won_cycle_days
      FROM events e
    UNION ALL
    SELECT u.level, u.unit_id, e.quarter,
           sum(e.started), sum(e.closed), sum(e.won_deals), sum(e.lost_deals),
           sum(e.won_amount), sum(e.won_cycle_days)
      FROM events e
      JOIN salesmgmt.rep_rollup u ON u.member_rep_id = e.rep_id AND u.level = 'team'
     GROUP BY 1, 2, 3
),
units AS (
    SELECT DISTINCT level, unit_id, rep_id, team_id FROM salesmgmt.rep_rollup
),
quarters AS (
    SELECT generate_series(min(quarter), greatest(max(quarter), date_trunc('quarter', current_date)::date),
                           interval '3 months')::date AS quarter
      FROM events
),
ratios AS (
    SELECT u.level, u.rep_id, u.team_id, q.quarter,
           (sum(coalesce(c.started, 0) - coalesce(c.closed, 0))
                OVER (PARTITION BY u.level, u.unit_id ORDER BY q.quarter) + coalesce(c.closed, 0))::bigint AS open_deals,
           coalesce(c.won_deals, 0)::bigint AS won_deals,
           coalesce(c.lost_deals, 0)::bigint AS lost_deals,
           c.won_deals / nullif(c.won_deals + c.lost_deals, 0) AS win_rate,
           coalesce(c.won_amount, 0) AS won_amount,
           c.won_amount / nullif(c.won_deals, 0) AS avg_won_amount,
           c.won_cycle_days / nullif(c.won_deals, 0) AS avg_cycle_days
      FROM units u
     CROSS JOIN quarters q
      LEFT JOIN rolled c ON c.level = u.level AND c.unit_id = u.unit_id AND c.quarter = q.quarter
)
SELECT level, rep_id, team_id, quarter, open_deals, won_deals, lost_deals,
       round(win_rate, 4) AS win_rate,
       round(won_amount, 2) AS won_amount,
       round(avg_won_amount, 2) AS avg_won_amount,
       round(avg_cycle_days, 2) AS avg_cycle_days,
       round(open_deals * avg_won_amount * win_rate / nullif(avg_cycle_days, 0), 2) AS velocity_per_day,
       salesmgmt.reporting_currency() AS currency
  FROM ratios;
COMMENT ON VIEW salesmgmt.sales_velocity IS 'Sales velocity per rep, team (with all sub-teams) and quarter: open_deals * avg_won_amount * win_rate / avg_cycle_days, the revenue the pipeline makes per day; every rep and team has a row for every quarter from the first deal to the current one.';
COMMENT ON COLUMN salesmgmt.sales_velocity.level IS 'rep: deals owned by rep_id; team: deals owned by any rep of team_id or of a team below it.';
COMMENT ON COLUMN salesmgmt.sales_velocity.rep_id IS 'The rep (level rep); null for team rows.';
COMMENT ON COLUMN salesmgmt.sales_velocity.team_id IS 'The rep''s team (level rep) or the team rolled up (level team).';
COMMENT ON COLUMN salesmgmt.sales_velocity.quarter IS 'First day of the quarter.';
COMMENT ON COLUMN salesmgmt.sales_velocity.open_deals IS 'Opportunities in play during the quarter: created before its end and not closed before its start.';
COMMENT ON COLUMN salesmgmt.sales_velocity.won_deals IS 'Deals closed won in the quarter.';
COMMENT ON COLUMN salesmgmt.sales_velocity.lost_deals IS 'Deals closed lost in the quarter.';
COMMENT ON COLUMN salesmgmt.sales_velocity.win_rate IS 'won_deals / (won_deals + lost_deals), 4 decimals; null when nothing closed.';
COMMENT ON COLUMN salesmgmt.sales_velocity.won_amount IS 'Sum of the amounts won in the quarter, reporting currency.';
COMMENT ON COLUMN salesmgmt.sales_velocity.avg_won_amount IS 'won_amount / won_deals; null when nothing was won.';
COMMENT ON COLUMN salesmgmt.sales_velocity.avg_cycle_days IS 'Average days from creation to close of the deals won in the quarter; null when nothing was won.';
COMMENT ON COLUMN salesmgmt.sales_velocity.velocity_per_day IS 'open_deals * avg_won_amount * win_rate / avg_cycle_days (from unrounded factors), reporting currency per day; null when a factor is null or the cycle is zero.';
COMMENT ON COLUMN salesmgmt.sales_velocity.currency IS 'The reporting currency of the amounts.';

-- ---------------------------------------------------------------------------
-- Quota attainment and pipeline coverage (per quota row): quota_rep,
-- quota_attainment and pipeline_coverage are in src/quota_as_of.sql, after
-- the quota and team versions they read (src/org_history.sql).
-- ---------------------------------------------------------------------------

-- ---------------------------------------------------------------------------
-- Customers: value and RFM segments
-- ---------------------------------------------------------------------------

-- An RFM score is the quintile of an account among the accounts that have
-- bought: 1 + floor(5 * (rank - 1) / n) with rank() ascending, so ties get
-- the same score and the best fifth scores 5.
CREATE VIEW salesmgmt.customer_summary WITH (security_invoker = true) AS
WITH deals AS (
    SELECT f.account_id,
           min(f.closed_at) FILTER (WHERE f.outcome = 'won') AS first_purchase_at,
           max(f.closed_at) FILTER (WHERE f.outcome = 'won') AS last_purchase_at,
           count(*) FILTER (WHERE f.outcome = 'won') AS won_deals,
           count(*) FILTER (WHERE f.outcome = 'open') AS open_deals,
           sum(f.amount_reporting) FILTER (WHERE f.outcome = 'won') AS revenue,
           sum(f.amount_reporting) FILTER (WHERE f.outcome = 'open') AS open_pipeline
      FROM salesmgmt.deal_facts f
     GROUP BY f.account_id
),
money AS (
    SELECT d.account_id,
           sum(m.amount) FILTER (WHERE p.kind = 'payment') AS payments,
           sum(m.amount) FILTER (WHERE p.kind = 'refund') AS refunds
      FROM salesmgmt.payment p
      JOIN salesmgmt.deal d ON d.deal_id = p.deal_id
      LEFT JOIN salesmgmt.reporting_rate r
             ON r.currency = p.currency AND p.paid_at >= r.valid_from_at AND p.paid_at < r.valid_until_at
     CROSS JOIN LATERAL (SELECT CASE WHEN r.rate IS NULL
                                     THEN salesmgmt.convert_amount(p.amount, p.currency, salesmgmt.reporting_currency(), p.paid_at::date)
                                     WHEN r.inverse THEN p.amount / r.rate
                                     ELSE p.amount * r.rate END AS amount) m
     GROUP BY d.account_id
),
touch AS (
    SELECT a.account_id, max(a.occurred_at) AS last_activity_at
      FROM salesmgmt.activity a
     WHERE a.occurred_at <= now()
     GROUP BY a.account_id
),
base AS (
    SELECT a.account_id, a.name, a.owner_rep_id,
           d.first_purchase_at, d.last_purchase_at,
           coalesce(d.won_deals, 0) AS won_deals,
           coalesce(d.open_deals, 0) AS open_deals,
           coalesce(d.revenue, 0) AS revenue,
           coalesce(d.open_pipeline, 0) AS open_pipeline,
           coalesce(m.payments, 0) AS payments,
           coalesce(m.refunds, 0) AS refunds,
           coalesce(d.revenue, 0) - coalesce(m.refunds, 0) AS lifetime_value,
           t.last_activity_at
      FROM salesmgmt.account a
      LEFT JOIN deals d ON d.account_id = a.account_id
      LEFT JOIN money m ON m.account_id = a.account_id
      LEFT JOIN touch t ON t.account_id = a.account_id
),
scored AS (
    SELECT b.*,
           CASE WHEN b.won_deals > 0 THEN 1 + 5 * (rank() OVER by_recency - 1) / count(*) OVER buyers END AS recency_score,
           CASE WHEN b.won_deals > 0 THEN 1 + 5 * (rank() OVER by_frequency - 1) / count(*) OVER buyers END AS frequency_score,
           CASE WHEN b.won_deals > 0 THEN 1 + 5 * (rank() OVER by_monetary - 1) / count(*) OVER buyers END AS monetary_score
      FROM base b
    WINDOW buyers AS (PARTITION BY b.won_deals > 0),
           by_recency AS (PARTITION BY b.won_deals > 0 ORDER BY b.last_purchase_at),
           by_frequency AS (PARTITION BY b.won_deals > 0 ORDER BY b.won_deals),
           by_monetary AS (PARTITION BY b.won_deals > 0 ORDER BY b.lifetime_value)
)
SELECT account_id, name, owner_rep_id,
       first_purchase_at, last_purchase_at, won_deals,
       round(revenue, 2) AS revenue,
       round(payments, 2) AS payments,
       round(refunds, 2) AS refunds,
       round(payments - refunds, 2) AS net_payments,
       round(lifetime_value, 2) AS lifetime_value,
       open_deals,
       round(open_pipeline, 2) AS open_pipeline,
       last_activity_at,
       current_date - last_activity_at::date AS days_since_last_activity,
       current_date - last_purchase_at::date AS days_since_last_purchase,
       recency_score::integer AS recency_score,
       frequency_score::integer AS frequency_score,
       monetary_score::integer AS monetary_score,
       recency_score::text || frequency_score::text || monetary_score::text AS rfm_cell,
       CASE WHEN recency_score IS NULL THEN 'Prospect'
            WHEN recency_score = 5 AND frequency_score >= 4 THEN 'Champions'
            WHEN recency_score >= 3 AND frequency_score >= 4 THEN 'Loyal customers'
            WHEN recency_score = 3 AND frequency_score = 3 THEN 'Need attention'
            WHEN recency_score = 3 THEN 'About to sleep'
            WHEN recency_score >= 4 AND frequency_score >= 2 THEN 'Potential loyalists'
            WHEN recency_score = 5 THEN 'New customers'
            WHEN recency_score = 4 THEN 'Promising'
            WHEN frequency_score = 5 THEN 'Cannot lose them'
            WHEN frequency_score >= 3 THEN 'At risk'
            ELSE 'Hibernating' END AS segment,
       salesmgmt.reporting_currency() AS currency
  FROM scored;
COMMENT ON VIEW salesmgmt.customer_summary IS 'Per account: purchases (won deals), revenue, payments and refunds, lifetime value, recency of contact and purchase, RFM scores 1-5 by quintile among the accounts that bought, and the RFM segment.';
COMMENT ON COLUMN salesmgmt.customer_summary.account_id IS 'The account.';
COMMENT ON COLUMN salesmgmt.customer_summary.name IS 'Account name.';
COMMENT ON COLUMN salesmgmt.customer_summary.owner_rep_id IS 'Rep who owns the relationship.';
COMMENT ON COLUMN salesmgmt.customer_summary.first_purchase_at IS 'closed_at of the first won deal; null if none.';
COMMENT ON COLUMN salesmgmt.customer_summary.last_purchase_at IS 'closed_at of the latest won deal; null if none.';
COMMENT ON COLUMN salesmgmt.customer_summary.won_deals IS 'Number of won deals (purchases).';
COMMENT ON COLUMN salesmgmt.customer_summary.revenue IS 'Sum of the won deals'' amounts, reporting currency at each close date.';
COMMENT ON COLUMN salesmgmt.customer_summary.payments IS 'Money received (payment rows), reporting currency at each payment date.';
COMMENT ON COLUMN salesmgmt.customer_summary.refunds IS 'Money returned (refund rows), reporting currency at each refund date.';
COMMENT ON COLUMN salesmgmt.customer_summary.net_payments IS 'payments - refunds.';
COMMENT ON COLUMN salesmgmt.customer_summary.lifetime_value IS 'revenue - refunds: what the customer has bought, less what was given back.';
COMMENT ON COLUMN salesmgmt.customer_summary.open_deals IS 'Deals still open.';
COMMENT ON COLUMN salesmgmt.customer_summary.open_pipeline IS 'Sum of the open deals'' amounts, reporting currency at today''s rate.';
COMMENT ON COLUMN salesmgmt.customer_summary.last_activity_at IS 'Latest communication record (activity) up to now; null if none.';
COMMENT ON COLUMN salesmgmt.customer_summary.days_since_last_activity IS 'current_date - date of last_activity_at; null if none.';
COMMENT ON COLUMN salesmgmt.customer_summary.days_since_last_purchase IS 'current_date - date of last_purchase_at; null if none.';
COMMENT ON COLUMN salesmgmt.customer_summary.recency_score IS 'R: 1 + floor(5 * (rank - 1) / n) ranking last_purchase_at ascending among the n accounts with a purchase (5 = most recent fifth); null without purchase.';
COMMENT ON COLUMN salesmgmt.customer_summary.frequency_score IS 'F: the same quintile formula over won_deals (5 = most purchases); ties share a score.';
COMMENT ON COLUMN salesmgmt.customer_summary.monetary_score IS 'M: the same quintile formula over lifetime_value (5 = most valuable).';
COMMENT ON COLUMN salesmgmt.customer_summary.rfm_cell IS 'The three scores as text, e.g. 545.';
COMMENT ON COLUMN salesmgmt.customer_summary.segment IS 'Segment from R and F: Champions, Loyal customers, Potential loyalists, New customers, Promising, Need attention, About to sleep, At risk, Cannot lose them, Hibernating; Prospect without purchase (grid in docs/bi.md).';
COMMENT ON COLUMN salesmgmt.customer_summary.currency IS 'The reporting currency of the amounts.';

-- ---------------------------------------------------------------------------
-- Customer satisfaction
-- ---------------------------------------------------------------------------

CREATE VIEW salesmgmt.customer_satisfaction WITH (security_invoker = true) AS
WITH per_rep AS (
    SELECT c.rep_id, date_trunc('month', c.responded_at)::date AS month,
           count(*) AS responses,
           count(c.csat) AS csat_responses,
           coalesce(sum(c.csat), 0) AS csat_sum,
           count(*) FILTER (WHERE c.csat >= 4) AS satisfied,
           count(c.nps) AS nps_responses,
           count(*) FILTER (WHERE c.nps >= 9) AS promoters,
           count(*) FILTER (WHERE c.nps BETWEEN 7 AND 8) AS passives,
           count(*) FILTER (WHERE c.nps <= 6) AS detractors
      FROM salesmgmt.csat_response c
     WHERE c.rep_id IS NOT NULL
     GROUP BY 1, 2
),
rolled AS (
    SELECT 'rep'::text AS level, p.rep_id AS unit_id, p.month,
           p.responses, p.csat_responses, p.csat_sum, p.satisfied,
           p.nps_responses, p.promoters, p.passives, p.detractors
      FROM per_rep p
    UNION ALL
    SELECT u.level, u.unit_id, p.month,
           sum(p.responses), sum(p.csat_responses), sum(p.csat_sum), sum(p.satisfied),
           sum(p.nps_responses), sum(p.promoters), sum(p.passives), sum(p.detractors)
      FROM per_rep p
      JOIN salesmgmt.rep_rollup u ON u.member_rep_id = p.rep_id AND u.level = 'team'
     GROUP BY 1, 2, 3
),
units AS (
    SELECT DISTINCT level, unit_id, rep_id, team_id FROM salesmgmt.rep_rollup
),
months AS (
    SELECT generate_series(min(month), greatest(max(month), date_trunc('month', current_date)::date),
                           interval '1 month')::date AS month
      FROM per_rep
)
SELECT u.level, u.rep_id, u.team_id, m.month,
       coalesce(c.responses, 0)::bigint AS responses,
       coalesce(c.csat_responses, 0)::bigint AS csat_responses,
       round(c.csat_sum / nullif(c.csat_responses, 0), 2) AS csat_avg,
       round(c.satisfied / nullif(c.csat_responses, 0), 4) AS csat_satisfied_share,
       coalesce(c.nps_responses, 0)::bigint AS nps_responses,
       coalesce(c.promoters, 0)::bigint AS promoters,
       coalesce(c.passives, 0)::bigint AS passives,
       coalesce(c.detractors, 0)::bigint AS detractors,
       round(100 * (c.promoters - c.detractors) / nullif(c.nps_responses, 0), 2) AS nps
  FROM units u
 CROSS JOIN months m
  LEFT JOIN rolled c ON c.level = u.level AND c.unit_id = u.unit_id AND c.month = m.month;
COMMENT ON VIEW salesmgmt.customer_satisfaction IS 'CSAT average and NPS of the customer responses (salesmgmt.csat_response) per rep, team (with all sub-teams) and month of response; every rep and team has a row for every month from the first response to the current one.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.level IS 'rep: responses about rep_id; team: responses about any rep of team_id or of a team below it.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.rep_id IS 'The rep (level rep); null for team rows.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.team_id IS 'The rep''s team (level rep) or the team rolled up (level team).';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.month IS 'First day of the month of responded_at (session time zone).';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.responses IS 'Responses received.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.csat_responses IS 'Responses with a CSAT score (1-5).';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.csat_avg IS 'Average CSAT score, 2 decimals; null without CSAT responses.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.csat_satisfied_share IS 'Share of CSAT responses scoring 4 or 5, 4 decimals; null without CSAT responses.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.nps_responses IS 'Responses with an NPS score (0-10).';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.promoters IS 'NPS responses scoring 9 or 10.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.passives IS 'NPS responses scoring 7 or 8.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.detractors IS 'NPS responses scoring 0 to 6.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.nps IS 'Net promoter score: 100 * (promoters - detractors) / nps_responses, from -100 to 100, 2 decimals; null without NPS responses.';

-- ---------------------------------------------------------------------------
-- Communication records
-- ---------------------------------------------------------------------------

CREATE VIEW salesmgmt.activity_summary WITH (security_invoker = true) AS
WITH per_rep AS (
    SELECT a.rep_id, date_trunc('week', a.occurred_at)::date AS week,
           count(*) FILTER (WHERE a.kind = 'call') AS calls,
           count(*) FILTER (WHERE a.kind = 'email') AS emails,
           count(*) FILTER (WHERE a.kind = 'meeting') AS meetings,
           count(*) FILTER (WHERE a.kind = 'visit') AS visits,
           count(*) FILTER (WHERE a.kind = 'demo') AS demos,
           count(*) FILTER (WHERE a.kind = 'note') AS notes,
           count(*) AS total,
           coalesce(sum(a.duration), interval '0') AS duration
      FROM salesmgmt.activity a
     GROUP BY 1, 2
)
SELECT 'rep'::text AS level, p.rep_id, r.team_id, p.week,
       p.calls, p.emails, p.meetings, p.visits, p.demos, p.notes, p.total,
       round(extract(epoch FROM p.duration) / 3600, 2) AS hours
  FROM per_rep p
  JOIN salesmgmt.rep r ON r.rep_id = p.rep_id
UNION ALL
SELECT u.level, NULL, u.team_id, p.week,
       sum(p.calls)::bigint, sum(p.emails)::bigint, sum(p.meetings)::bigint,
       sum(p.visits)::bigint, sum(p.demos)::bigint, sum(p.notes)::bigint,
       sum(p.total)::bigint,
       round(extract(epoch FROM sum(p.duration)) / 3600, 2)
  FROM per_rep p
  JOIN salesmgmt.rep_rollup u ON u.member_rep_id = p.rep_id AND u.level = 'team'
 GROUP BY u.level, u.team_id, p.week;
COMMENT ON VIEW salesmgmt.activity_summary IS 'Communication records per rep and team (with all sub-teams) and week, by kind; a row for each week with at least one record.';
COMMENT ON COLUMN salesmgmt.activity_summary.level IS 'rep: records of rep_id; team: records of any rep of team_id or of a team below it.';
COMMENT ON COLUMN salesmgmt.activity_summary.rep_id IS 'The rep (level rep); null for team rows.';
COMMENT ON COLUMN salesmgmt.activity_summary.team_id IS 'The rep''s team (level rep) or the team rolled up (level team).';
COMMENT ON COLUMN salesmgmt.activity_summary.week IS 'Monday of the week of occurred_at (ISO week, session time zone).';
COMMENT ON COLUMN salesmgmt.activity_summary.calls IS 'Calls.';
COMMENT ON COLUMN salesmgmt.activity_summary.emails IS 'E-mails.';
COMMENT ON COLUMN salesmgmt.activity_summary.meetings IS 'Meetings.';
COMMENT ON COLUMN salesmgmt.activity_summary.visits IS 'Visits.';
COMMENT ON COLUMN salesmgmt.activity_summary.demos IS 'Demos.';
COMMENT ON COLUMN salesmgmt.activity_summary.notes IS 'Notes.';
COMMENT ON COLUMN salesmgmt.activity_summary.total IS 'All records of the week.';
COMMENT ON COLUMN salesmgmt.activity_summary.hours IS 'Sum of the recorded durations in hours, 2 decimals (records without duration count 0).';

-- The latest record of an account is found through the index on
-- (account_id, occurred_at): one probe per account after one aggregation
-- pass, much cheaper than sorting every record.
CREATE VIEW salesmgmt.account_last_touch WITH (security_invoker = true) AS
WITH counts AS (
    SELECT a.account_id, max(a.occurred_at) AS last_touch_at, count(*) AS total,
           count(*) FILTER (WHERE a.occurred_at > now() - interval '30 days') AS last_30_days,
           count(*) FILTER (WHERE a.occurred_at > now() - interval '90 days') AS last_90_days
      FROM salesmgmt.activity a
     WHERE a.occurred_at <= now()
     GROUP BY a.account_id
)
SELECT acc.account_id, acc.owner_rep_id,
       c.last_touch_at,
       current_date - c.last_touch_at::date AS days_since_last_touch,
       l.kind AS last_touch_kind, l.rep_id AS last_touch_rep_id,
       l.contact_id AS last_touch_contact_id, l.outcome AS last_touch_outcome,
       coalesce(c.last_30_days, 0) AS touches_30_days,
       coalesce(c.last_90_days, 0) AS touches_90_days,
       coalesce(c.total, 0) AS touches_total
  FROM salesmgmt.account acc
  LEFT JOIN counts c ON c.account_id = acc.account_id
  LEFT JOIN LATERAL (
        SELECT a.kind, a.rep_id, a.contact_id, a.outcome
          FROM salesmgmt.activity a
         WHERE a.account_id = c.account_id AND a.occurred_at = c.last_touch_at
         ORDER BY a.activity_id DESC
         LIMIT 1) l ON true;
COMMENT ON VIEW salesmgmt.account_last_touch IS 'Per account: the last communication record up to now (when, what, by whom, with whom, result) and how many records the last 30 and 90 days hold; accounts never touched have nulls and zeros.';
COMMENT ON COLUMN salesmgmt.account_last_touch.account_id IS 'The account.';
COMMENT ON COLUMN salesmgmt.account_last_touch.owner_rep_id IS 'Rep who owns the relationship.';
COMMENT ON COLUMN salesmgmt.account_last_touch.last_touch_at IS 'occurred_at of the latest activity not in the future; null if none.';
COMMENT ON COLUMN salesmgmt.account_last_touch.days_since_last_touch IS 'current_date - date of last_touch_at.';
COMMENT ON COLUMN salesmgmt.account_last_touch.last_touch_kind IS 'Kind of the latest activity (call, email, meeting, visit, demo, note).';
COMMENT ON COLUMN salesmgmt.account_last_touch.last_touch_rep_id IS 'Rep who made the latest activity.';
COMMENT ON COLUMN salesmgmt.account_last_touch.last_touch_contact_id IS 'Contact of the latest activity, if recorded.';
COMMENT ON COLUMN salesmgmt.account_last_touch.last_touch_outcome IS 'Outcome of the latest activity.';
COMMENT ON COLUMN salesmgmt.account_last_touch.touches_30_days IS 'Activities in the last 30 days (after now() - 30 days, up to now).';
COMMENT ON COLUMN salesmgmt.account_last_touch.touches_90_days IS 'Activities in the last 90 days.';
COMMENT ON COLUMN salesmgmt.account_last_touch.touches_total IS 'All activities up to now.';

-- ---------------------------------------------------------------------------
-- Cohort conversion
-- ---------------------------------------------------------------------------

-- A cohort's share won within N days is known once every deal of the
-- cohort has had N days: from the end of the cohort month plus N days.
-- Until then it is null (the count so far is shown).
CREATE VIEW salesmgmt.cohort_conversion WITH (security_invoker = true) AS
WITH per AS (
    SELECT d.pipeline_id, date_trunc('month', d.created_at)::date AS cohort_month,
           count(*) AS created_deals,
           count(*) FILTER (WHERE s.outcome = 'won' AND c.closed_at <= d.created_at + interval '30 days') AS won_30,
           count(*) FILTER (WHERE s.outcome = 'won' AND c.closed_at <= d.created_at + interval '60 days') AS won_60,
           count(*) FILTER (WHERE s.outcome = 'won' AND c.closed_at <= d.created_at + interval '90 days') AS won_90,
           count(*) FILTER (WHERE s.outcome = 'won') AS won_to_date,
           count(*) FILTER (WHERE s.outcome = 'lost') AS lost_to_date
      FROM salesmgmt.deal d
      JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
     CROSS JOIN LATERAL (SELECT coalesce(d.closed_at, d.stage_entered_at) AS closed_at) c
     GROUP BY 1, 2
),
months AS (
    SELECT generate_series(min(cohort_month), greatest(max(cohort_month), date_trunc('month', current_date)::date),
                           interval '1 month')::date AS cohort_month
      FROM per
),
totals AS (
    SELECT m.cohort_month, p.pipeline_id,
           coalesce(sum(c.created_deals), 0)::bigint AS created_deals,
           coalesce(sum(c.won_30), 0)::bigint AS won_30,
           coalesce(sum(c.won_60), 0)::bigint AS won_60,
           coalesce(sum(c.won_90), 0)::bigint AS won_90,
           coalesce(sum(c.won_to_date), 0)::bigint AS won_to_date,
           coalesce(sum(c.lost_to_date), 0)::bigint AS lost_to_date
      FROM months m
     CROSS JOIN salesmgmt.pipeline p
      LEFT JOIN per c ON c.cohort_month = m.cohort_month AND c.pipeline_id = p.pipeline_id
     GROUP BY GROUPING SETS ((m.cohort_month, p.pipeline_id), (m.cohort_month))
)
SELECT cohort_month, pipeline_id, created_deals,
       won_30 AS won_within_30_days, won_60 AS won_within_60_days, won_90 AS won_within_90_days,
       won_to_date, lost_to_date,
       created_deals - won_to_date - lost_to_date AS open_deals,
       CASE WHEN (cohort_month + interval '1 month' + interval '30 days')::timestamptz <= now()
            THEN round(won_30::numeric / nullif(created_deals, 0), 4) END AS share_won_30_days,
       CASE WHEN (cohort_month + interval '1 month' + interval '60 days')::timestamptz <= now()
            THEN round(won_60::numeric / nullif(created_deals, 0), 4) END AS share_won_60_days,
       CASE WHEN (cohort_month + interval '1 month' + interval '90 days')::timestamptz <= now()
            THEN round(won_90::numeric / nullif(created_deals, 0), 4) END AS share_won_90_days,
       round(won_to_date::numeric / nullif(created_deals, 0), 4) AS share_won_to_date
  FROM totals;
COMMENT ON VIEW salesmgmt.cohort_conversion IS 'Deals created per month (cohort) and pipeline (pipeline_id null: all pipelines) and the share of them won within 30, 60 and 90 days of creation; a row for every month from the first deal to the current one.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.cohort_month IS 'First day of the month the deals were created in (created_at, session time zone).';
COMMENT ON COLUMN salesmgmt.cohort_conversion.pipeline_id IS 'Pipeline of the deals; null on the row that adds up all pipelines.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.created_deals IS 'Deals created in the month.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.won_within_30_days IS 'Of them, won with closed_at at most 30 days after created_at (so far).';
COMMENT ON COLUMN salesmgmt.cohort_conversion.won_within_60_days IS 'Of them, won at most 60 days after creation (so far).';
COMMENT ON COLUMN salesmgmt.cohort_conversion.won_within_90_days IS 'Of them, won at most 90 days after creation (so far).';
COMMENT ON COLUMN salesmgmt.cohort_conversion.won_to_date IS 'Of them, won by now.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.lost_to_date IS 'Of them, lost by now.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.open_deals IS 'Of them, still open.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.share_won_30_days IS 'won_within_30_days / created_deals, 4 decimals; null until 30 days after the end of the cohort month, and for an empty cohort.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.share_won_60_days IS 'won_within_60_days / created_deals; null until 60 days after the end of the cohort month, and for an empty cohort.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.share_won_90_days IS 'won_within_90_days / created_deals; null until 90 days after the end of the cohort month, and for an empty cohort.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.share_won_to_date IS 'won_to_date / created_deals, 4 decimals; null for an empty cohort.';

-- ---------------------------------------------------------------------------
-- The feedback loop
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.feedback (
    feedback_id     bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    source          text NOT NULL
                    CONSTRAINT feedback_source_valid CHECK (source IN ('customer', 'rep', 'manager')),
    account_id      bigint REFERENCES salesmgmt.account (account_id),
    deal_id         bigint REFERENCES salesmgmt.deal (deal_id),
    rep_id          bigint REFERENCES salesmgmt.rep (rep_id),
    category        text NOT NULL
                    CONSTRAINT feedback_category_not_blank CHECK (btrim(category) <> ''),
    sentiment       text NOT NULL
                    CONSTRAINT feedback_sentiment_valid CHECK (sentiment IN ('positive', 'neutral', 'negative')),
    body            text NOT NULL
                    CONSTRAINT feedback_body_not_blank CHECK (btrim(body) <> ''),
    status          text NOT NULL DEFAULT 'open'
                    CONSTRAINT feedback_status_valid CHECK (status IN ('open', 'triaged', 'resolved')),
    assignee_rep_id bigint REFERENCES salesmgmt.rep (rep_id),
    resolution      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    triaged_at      timestamptz,
    resolved_at     timestamptz,
    CONSTRAINT feedback_resolved_when_resolved CHECK ((status = 'resolved') = (resolved_at IS NOT NULL)),
    CONSTRAINT feedback_resolution_when_resolved
        CHECK (status <> 'resolved' OR (resolution IS NOT NULL AND btrim(resolution) <> '')),
    CONSTRAINT feedback_triaged_after_created CHECK (triaged_at >= created_at),
    CONSTRAINT feedback_resolved_after_created CHECK (resolved_at >= created_at)
);
CREATE INDEX ON salesmgmt.feedback (status);
CREATE INDEX ON salesmgmt.feedback (created_at);
CREATE INDEX ON salesmgmt.feedback (account_id);
CREATE INDEX ON salesmgmt.feedback (deal_id);
CREATE INDEX ON salesmgmt.feedback (rep_id);
CREATE INDEX ON salesmgmt.feedback (assignee_rep_id);
COMMENT ON TABLE salesmgmt.feedback IS 'Feedback from customers, reps and managers, and its resolution: status moves only forward, open -> triaged -> resolved (triage may be skipped); resolved feedback is final.';
COMMENT ON COLUMN salesmgmt.feedback.feedback_id IS 'Identity of the feedback.';
COMMENT ON COLUMN salesmgmt.feedback.source IS 'Who gave it: customer, rep or manager.';
COMMENT ON COLUMN salesmgmt.feedback.account_id IS 'Account it is about, if any; taken from the deal when only deal_id is given.';
COMMENT ON COLUMN salesmgmt.feedback.deal_id IS 'Deal it is about, if any; must belong to account_id when both are given.';
COMMENT ON COLUMN salesmgmt.feedback.rep_id IS 'Rep it is about (or who gave it), if any.';
COMMENT ON COLUMN salesmgmt.feedback.category IS 'Topic, free text (e.g. pricing, product, service, delivery, process).';
COMMENT ON COLUMN salesmgmt.feedback.sentiment IS 'positive, neutral or negative.';
COMMENT ON COLUMN salesmgmt.feedback.body IS 'What was said.';
COMMENT ON COLUMN salesmgmt.feedback.status IS 'open (new), triaged (assigned, being worked on) or resolved (final).';
COMMENT ON COLUMN salesmgmt.feedback.assignee_rep_id IS 'Rep (or manager) responsible for acting on it.';
COMMENT ON COLUMN salesmgmt.feedback.resolution IS 'What was done about it; required once resolved.';
COMMENT ON COLUMN salesmgmt.feedback.created_at IS 'When it was received; decides its month in feedback_summary.';
COMMENT ON COLUMN salesmgmt.feedback.triaged_at IS 'When it was triaged (set when status becomes triaged); null if triage was skipped.';
COMMENT ON COLUMN salesmgmt.feedback.resolved_at IS 'When it was resolved (set when status becomes resolved); set exactly when resolved.';

-- Keeps the workflow whoever writes the row: the status moves only
-- forward, resolved feedback is final, the step times are stamped, and a
-- deal's feedback is about the deal's account.
CREATE FUNCTION salesmgmt.feedback_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rank_old  integer;
    v_rank_new  integer;
    v_account   bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.status = 'resolved'
           AND (NEW.status, NEW.resolution, NEW.resolved_at) IS DISTINCT FROM (OLD.status, OLD.resolution, OLD.resolved_at)
        THEN
            RAISE EXCEPTION 'feedback % is already resolved', OLD.feedback_id
                USING ERRCODE = 'SM051',
                      DETAIL = format('It was resolved at %s; resolved feedback is final.', OLD.resolved_at),
                      HINT = 'Record a new feedback row if the matter came up again.';
        END IF;
        v_rank_old := array_position(ARRAY['open', 'triaged', 'resolved'], OLD.status);
        v_rank_new := array_position(ARRAY['open', 'triaged', 'resolved'], NEW.status);
        IF v_rank_new < v_rank_old THEN
            RAISE EXCEPTION 'feedback % cannot move back from % to %', OLD.feedback_id, OLD.status, NEW.status
                USING ERRCODE = 'SM050',
                      DETAIL = 'Feedback status moves only forward: open, triaged, resolved.',
                      HINT = 'Leave the status as it is, or resolve the feedback with salesmgmt.resolve_feedback.';
        END IF;
    END IF;

    IF NEW.deal_id IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.deal_id IS DISTINCT FROM OLD.deal_id
                                    OR NEW.account_id IS DISTINCT FROM OLD.account_id) THEN
        SELECT d.account_id INTO v_account FROM salesmgmt.deal d WHERE d.deal_id = NEW.deal_id;
        IF FOUND THEN
            IF NEW.account_id IS NULL THEN
                NEW.account_id := v_account;
            ELSIF NEW.account_id <> v_account THEN
                RAISE EXCEPTION 'deal % belongs to account %, not to account %', NEW.deal_id, v_account, NEW.account_id
                    USING ERRCODE = '23514', CONSTRAINT = 'feedback_deal_of_account',
                          HINT = 'Leave account_id null to take the deal''s account.';
            END IF;
        END IF;
    END IF;

    IF NEW.status = 'triaged' AND (TG_OP = 'INSERT' OR OLD.status = 'open') THEN
        NEW.triaged_at := coalesce(NEW.triaged_at, now());
    END IF;
    IF NEW.status = 'resolved' AND (TG_OP = 'INSERT' OR OLD.status <> 'resolved') THEN
        NEW.resolved_at := coalesce(NEW.resolved_at, now());
    END IF;
    IF NEW.triaged_at > now() OR NEW.resolved_at > now() THEN
        RAISE EXCEPTION 'feedback cannot be triaged or resolved in the future'
            USING ERRCODE = '22023',
                  DETAIL = format('triaged_at %s, resolved_at %s, now %s.', NEW.triaged_at, NEW.resolved_at, now()),
                  HINT = 'Leave triaged_at and resolved_at null to stamp the current time.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER feedback_workflow
    BEFORE INSERT OR UPDATE ON salesmgmt.feedback
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.feedback_check();

CREATE FUNCTION salesmgmt.triage_feedback(p_feedback_id bigint, p_assignee_rep_id bigint)
RETURNS salesmgmt.feedback
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_row salesmgmt.feedback;
BEGIN
    IF p_feedback_id IS NULL OR p_assignee_rep_id IS NULL THEN
        RAISE EXCEPTION 'feedback id and assignee must not be null'
            USING ERRCODE = '22004';
    END IF;
    SELECT * INTO v_row FROM salesmgmt.feedback WHERE feedback_id = p_feedback_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'feedback % does not exist', p_feedback_id
            USING ERRCODE = '42704';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM salesmgmt.rep WHERE rep_id = p_assignee_rep_id) THEN
        RAISE EXCEPTION 'rep % does not exist', p_assignee_rep_id
            USING ERRCODE = '42704',
                  HINT = 'Assign the feedback to an existing rep (salesmgmt.rep).';
    END IF;
    -- a triaged row may be reassigned; a resolved one is refused by the trigger
    UPDATE salesmgmt.feedback
       SET status = 'triaged', assignee_rep_id = p_assignee_rep_id
     WHERE feedback_id = p_feedback_id
    RETURNING * INTO v_row;
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION salesmgmt.triage_feedback(bigint, bigint) IS 'Moves open feedback to triaged and assigns it (or reassigns triaged feedback); raises SM051 for resolved feedback, 42704 for an unknown feedback or rep.';

CREATE FUNCTION salesmgmt.resolve_feedback(p_feedback_id bigint, p_resolution text)
RETURNS salesmgmt.feedback
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_row salesmgmt.feedback;
BEGIN
    IF p_feedback_id IS NULL THEN
        RAISE EXCEPTION 'feedback id must not be null'
            USING ERRCODE = '22004';
    END IF;
    IF p_resolution IS NULL OR btrim(p_resolution) = '' THEN
        RAISE EXCEPTION 'a resolution is required to resolve feedback %', p_feedback_id
            USING ERRCODE = '22023',
                  HINT = 'Say what was done about the feedback.';
    END IF;
    -- the row lock makes a concurrent second resolver wait, then see the
    -- first one's resolution and get SM051
    SELECT * INTO v_row FROM salesmgmt.feedback WHERE feedback_id = p_feedback_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'feedback % does not exist', p_feedback_id
            USING ERRCODE = '42704';
    END IF;
    IF v_row.status = 'resolved' THEN
        RAISE EXCEPTION 'feedback % is already resolved', p_feedback_id
            USING ERRCODE = 'SM051',
                  DETAIL = format('It was resolved at %s with: %s', v_row.resolved_at, v_row.resolution),
                  HINT = 'Resolved feedback is final; record a new feedback row if the matter came up again.';
    END IF;
    UPDATE salesmgmt.feedback
       SET status = 'resolved', resolution = p_resolution, resolved_at = now()
     WHERE feedback_id = p_feedback_id
    RETURNING * INTO v_row;
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION salesmgmt.resolve_feedback(bigint, text) IS 'Resolves open or triaged feedback with a resolution text and returns the row; raises SM051 if already resolved, 22023 for a blank resolution, 42704 for an unknown id.';

SELECT salesmgmt._register_config_table('salesmgmt.feedback');

CREATE VIEW salesmgmt.feedback_summary WITH (security_invoker = true) AS
WITH months AS (
    SELECT generate_series(date_trunc('month', min(created_at))::date,
                           greatest(date_trunc('month', max(created_at)), date_trunc('month', current_date))::date,
                           interval '1 month')::date AS month
      FROM salesmgmt.feedback
),
categories AS (
    SELECT DISTINCT category FROM salesmgmt.feedback
),
fb AS (
    SELECT f.*, date_trunc('month', f.created_at)::date AS month FROM salesmgmt.feedback f
)
SELECT m.month, c.category,
       count(f.feedback_id) AS received,
       count(*) FILTER (WHERE f.status = 'open') AS open_count,
       count(*) FILTER (WHERE f.status = 'triaged') AS triaged_count,
       count(*) FILTER (WHERE f.status = 'resolved') AS resolved_count,
       count(*) FILTER (WHERE f.sentiment = 'negative') AS negative_count,
       round(count(*) FILTER (WHERE f.sentiment = 'negative')::numeric / nullif(count(f.feedback_id), 0), 4)
           AS negative_share,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY f.resolved_at - f.created_at)
           FILTER (WHERE f.status = 'resolved') AS median_time_to_resolve,
       round((extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY f.resolved_at - f.created_at)
                                 FILTER (WHERE f.status = 'resolved')) / 86400)::numeric, 2)
           AS median_days_to_resolve
  FROM months m
 CROSS JOIN categories c
  LEFT JOIN fb f ON f.category = c.category AND f.month = m.month
 GROUP BY GROUPING SETS ((m.month, c.category), (m.month));
COMMENT ON VIEW salesmgmt.feedback_summary IS 'Feedback received per month and category (category null: all categories): how much is still open, how negative it is, and the median time to resolve; a row for every month from the first feedback to the current one.';
COMMENT ON COLUMN salesmgmt.feedback_summary.month IS 'First day of the month the feedback was received in (created_at, session time zone).';
COMMENT ON COLUMN salesmgmt.feedback_summary.category IS 'Category; null on the row that adds up all categories.';
COMMENT ON COLUMN salesmgmt.feedback_summary.received IS 'Feedback received in the month.';
COMMENT ON COLUMN salesmgmt.feedback_summary.open_count IS 'Of it, still open (not yet triaged).';
COMMENT ON COLUMN salesmgmt.feedback_summary.triaged_count IS 'Of it, triaged and not yet resolved.';
COMMENT ON COLUMN salesmgmt.feedback_summary.resolved_count IS 'Of it, resolved.';
COMMENT ON COLUMN salesmgmt.feedback_summary.negative_count IS 'Of it, with negative sentiment.';
COMMENT ON COLUMN salesmgmt.feedback_summary.negative_share IS 'negative_count / received, 4 decimals; null when nothing was received.';
COMMENT ON COLUMN salesmgmt.feedback_summary.median_time_to_resolve IS 'Median of resolved_at - created_at over the resolved feedback (interpolated between the two middle values); null when none is resolved.';
COMMENT ON COLUMN salesmgmt.feedback_summary.median_days_to_resolve IS 'median_time_to_resolve in days, 2 decimals.';

-- ===========================================================================
-- Quotas and team membership as they were (issue #19).  See
-- docs/history-org.md#quotas-as-they-were.
--
-- Past attainment does not change when the organisation or the quotas
-- change today:
--   * a team quota credits each rep for the days the rep was in the team
--     or a team below it (the day a won deal closed decides), from the
--     versions of src/org_history.sql (salesmgmt._team_member_spans);
--   * a quota whose period has ended counts as it was at the end of the
--     period (salesmgmt.quota_of_record), the one rule that
--     quota_attainment, target_pacing, KPI scorecards and commissions read.
--
-- This part owns the views over quotas, which read the quota of record and
-- the versions of src/org_history.sql: quota_rep, quota_attainment and
-- pipeline_coverage (BI views, docs/bi.md, conventions of
-- src/analytics.sql) and target_pacing (KPIs, docs/kpi-scorecards.md).  It
-- comes after src/org_history.sql in the install script AND in the upgrade
-- from 0.1.0 (whose deltas run before salesmgmt.quota_history exists), so
-- both scripts run it whole.  0.1.0 already has the four views (with their
-- comments and rights), hence CREATE OR REPLACE with the same columns in
-- the same order, and every comment and grant restated here.
-- ===========================================================================

CREATE FUNCTION salesmgmt._team_member_spans()
RETURNS TABLE (team_id bigint, rep_id bigint, from_day date, to_day date)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'sm_team_member_spans';
COMMENT ON FUNCTION salesmgmt._team_member_spans() IS 'Internal: for every team, each span of days [from_day, to_day) a rep was in the team or a team below it, from salesmgmt.rep_team_history and salesmgmt.team_history (-infinity: since its first version, infinity: today still); without the versions (0.1.0 objects) today''s tree for all days. Read once per statement by quota_rep and target_pacing.';

-- The quota of record.  A period is over at the moment (period_end + 1)
-- (midnight after its last day, session time zone); the version of a quota
-- then is the first of its versions that ends after that moment: the one
-- holding it, or for a quota created later (a late import) its first.
-- A quota deleted before the end of its period has no such version and no
-- row: it counts no more.  One deleted after still counts.
CREATE VIEW salesmgmt.quota_of_record WITH (security_invoker = true) AS
WITH ended AS (
    SELECT DISTINCT ON (h.quota_id)
           h.quota_id, h.rep_id, h.team_id, h.period_start, h.period_end, h.amount, h.currency,
           h.product_family, h.measure
      FROM salesmgmt.quota_history h
     WHERE h.valid_to > (h.period_end + 1)::timestamptz
       AND (h.period_end + 1)::timestamptz <= now()
     ORDER BY h.quota_id, h.valid_from
)
SELECT e.quota_id, e.rep_id, e.team_id, e.period_start, e.period_end, e.amount, e.currency,
       e.product_family, e.measure, true AS period_over
  FROM ended e
UNION ALL
SELECT q.quota_id, q.rep_id, q.team_id, q.period_start, q.period_end, q.amount, q.currency,
       q.product_family, q.measure, false
  FROM salesmgmt.quota q
 WHERE NOT EXISTS (SELECT 1 FROM ended e WHERE e.quota_id = q.quota_id);
COMMENT ON VIEW salesmgmt.quota_of_record IS 'Every quota that counts, as it counts: a quota whose period is over as it was at the end of the period (the version of salesmgmt.quota_history holding the moment period_end + 1; a quota created later with its first version; one deleted before the end not at all, one deleted after still), any other quota as its row today. What quota_attainment, target_pacing, KPI scorecards and commissions read. Rows as the reader may see them (the policies of quota and quota_history).';
COMMENT ON COLUMN salesmgmt.quota_of_record.quota_id IS 'The quota (salesmgmt.quota; the row may be deleted since).';
COMMENT ON COLUMN salesmgmt.quota_of_record.rep_id IS 'Rep of a rep quota; null for a team quota.';
COMMENT ON COLUMN salesmgmt.quota_of_record.team_id IS 'Team of a team quota; null for a rep quota.';
COMMENT ON COLUMN salesmgmt.quota_of_record.period_start IS 'First day of the quota period.';
COMMENT ON COLUMN salesmgmt.quota_of_record.period_end IS 'Last day of the quota period (inclusive).';
COMMENT ON COLUMN salesmgmt.quota_of_record.amount IS 'Target amount, in currency: at the end of the period for a period that is over.';
COMMENT ON COLUMN salesmgmt.quota_of_record.currency IS 'Currency of the amount.';
COMMENT ON COLUMN salesmgmt.quota_of_record.product_family IS 'Product family of the quota; null for all products.';
COMMENT ON COLUMN salesmgmt.quota_of_record.measure IS 'What the quota measures: booked or new_arr.';
COMMENT ON COLUMN salesmgmt.quota_of_record.period_over IS 'True: the period is over and the row is the version of salesmgmt.quota_history at its end; false: today''s row of salesmgmt.quota.';

-- Each quota with the reps whose credit counts toward it and the days it
-- counts: the rep of a rep quota for the whole period, every rep of the
-- team's subtree for the days of the period it was in the subtree.
CREATE OR REPLACE VIEW salesmgmt.quota_rep WITH (security_invoker = true) AS
SELECT q.quota_id, q.rep_id, q.period_start, q.period_end
  FROM salesmgmt.quota_of_record q
 WHERE q.rep_id IS NOT NULL
UNION ALL
SELECT q.quota_id, s.rep_id, greatest(q.period_start, s.from_day), least(q.period_end, s.to_day - 1)
  FROM salesmgmt.quota_of_record q
  JOIN salesmgmt._team_member_spans() s ON s.team_id = q.team_id
 WHERE q.rep_id IS NULL AND s.from_day <= q.period_end AND s.to_day > q.period_start;
COMMENT ON VIEW salesmgmt.quota_rep IS 'Each quota of record (quota_of_record) with the reps whose credited deals count toward it and the days they count: the rep of a rep quota for its whole period; for a team quota every rep for the days of the period the rep was in the team or one of its sub-teams (salesmgmt.rep_team_history, team_history), one row per stay.';
COMMENT ON COLUMN salesmgmt.quota_rep.quota_id IS 'The quota.';
COMMENT ON COLUMN salesmgmt.quota_rep.rep_id IS 'A rep whose credit counts toward the quota.';
COMMENT ON COLUMN salesmgmt.quota_rep.period_start IS 'First day the rep''s credit counts: the first day of the quota period, or later for a rep who joined the team during it.';
COMMENT ON COLUMN salesmgmt.quota_rep.period_end IS 'Last day (inclusive) the rep''s credit counts: the last day of the quota period, or earlier for a rep who left the team during it.';

-- Won amounts credit reps by their split shares (the owner in full when a
-- deal has no splits), as commissions do; a quota of a product family
-- counts only that family's share of each deal.
CREATE OR REPLACE VIEW salesmgmt.quota_attainment WITH (security_invoker = true) AS
WITH won_credit AS (
    SELECT f.deal_id, coalesce(s.rep_id, f.owner_rep_id) AS rep_id, f.closed_at::date AS day,
           f.amount_reporting * coalesce(s.share, 1) AS amount, coalesce(s.share, 1) AS share
      FROM salesmgmt.deal_facts f
      LEFT JOIN salesmgmt.deal_split s ON s.deal_id = f.deal_id
     WHERE f.outcome = 'won'
),
won AS (
    SELECT qr.quota_id,
           sum(CASE WHEN q.measure = 'new_arr'
                    THEN salesmgmt.deal_new_arr(w.deal_id, salesmgmt.reporting_currency()) * w.share
                    ELSE w.amount END
               * CASE WHEN q.product_family IS NULL THEN 1
                               ELSE salesmgmt.deal_family_share(w.deal_id, q.product_family) END) AS amount
      FROM salesmgmt.quota_rep qr
      JOIN salesmgmt.quota_of_record q ON q.quota_id = qr.quota_id
      JOIN won_credit w ON w.rep_id = qr.rep_id AND w.day BETWEEN qr.period_start AND qr.period_end
     GROUP BY qr.quota_id
),
figures AS (
    SELECT q.quota_id, q.rep_id, q.team_id, q.period_start, q.period_end, q.product_family, q.measure,
           CASE WHEN r.rate IS NULL
                THEN salesmgmt.convert_amount(q.amount, q.currency, salesmgmt.reporting_currency(), q.period_start)
                WHEN r.inverse THEN q.amount / r.rate
                ELSE q.amount * r.rate END AS quota_amount,
           coalesce(w.amount, 0) AS won_amount,
           q.period_end - q.period_start + 1 AS period_days,
           least(greatest(current_date - q.period_start + 1, 0), q.period_end - q.period_start + 1) AS elapsed_days
      FROM salesmgmt.quota_of_record q
      LEFT JOIN salesmgmt.reporting_rate r
             ON r.currency = q.currency AND q.period_start >= r.valid_from AND q.period_start < r.valid_until
      LEFT JOIN won w ON w.quota_id = q.quota_id
)
SELECT CASE WHEN rep_id IS NOT NULL THEN 'rep' ELSE 'team' END AS level,
       quota_id, rep_id, team_id, period_start, period_end,
       round(quota_amount, 2) AS quota_amount,
       round(won_amount, 2) AS won_amount,
       round(won_amount / nullif(quota_amount, 0), 4) AS attainment,
       round(greatest(quota_amount - won_amount, 0), 2) AS remaining_amount,
       period_days, elapsed_days,
       round(elapsed_days::numeric / period_days, 4) AS elapsed_share,
       round(won_amount * period_days / nullif(quota_amount * elapsed_days, 0), 4) AS pacing,
       round(won_amount * period_days / nullif(elapsed_days, 0), 2) AS projected_amount,
       salesmgmt.reporting_currency() AS currency,
       product_family,
       measure
  FROM figures;
COMMENT ON VIEW salesmgmt.quota_attainment IS 'Per quota of record (quota_of_record: a past period''s quota as it was at its end): the amount won in its period so far (credited by split shares; a team quota counts the reps of the team and all sub-teams for the days they were in them; a product-family quota only that family''s share of each deal), attainment won / quota, and pacing: attainment against the share of the period elapsed.';
COMMENT ON COLUMN salesmgmt.quota_attainment.level IS 'rep for a rep''s quota, team for a team''s quota.';
COMMENT ON COLUMN salesmgmt.quota_attainment.quota_id IS 'The quota (salesmgmt.quota; a quota deleted after its period ended still counts).';
COMMENT ON COLUMN salesmgmt.quota_attainment.rep_id IS 'Rep of a rep quota; null for a team quota.';
COMMENT ON COLUMN salesmgmt.quota_attainment.team_id IS 'Team of a team quota; null for a rep quota.';
COMMENT ON COLUMN salesmgmt.quota_attainment.period_start IS 'First day of the quota period.';
COMMENT ON COLUMN salesmgmt.quota_attainment.period_end IS 'Last day of the quota period (inclusive).';
COMMENT ON COLUMN salesmgmt.quota_attainment.quota_amount IS 'Target in the reporting currency (rate of period_start); for a period that is over, the amount at its end (quota_of_record).';
COMMENT ON COLUMN salesmgmt.quota_attainment.won_amount IS 'Credited amount of the deals won with closed_at in the period, reporting currency (for a new_arr quota their new ARR, deal_new_arr, times the split share); for a product-family quota the family''s share of each deal (deal_family_share); for a team quota, deals credited to a rep on a day the rep was in the team''s subtree (quota_rep).';
COMMENT ON COLUMN salesmgmt.quota_attainment.attainment IS 'won_amount / quota_amount, 4 decimals (1 = quota met); null for a zero quota.';
COMMENT ON COLUMN salesmgmt.quota_attainment.remaining_amount IS 'quota_amount - won_amount, never below 0.';
COMMENT ON COLUMN salesmgmt.quota_attainment.period_days IS 'Days in the period.';
COMMENT ON COLUMN salesmgmt.quota_attainment.elapsed_days IS 'Days of the period up to and including today (0 before it starts, period_days after it ends).';
COMMENT ON COLUMN salesmgmt.quota_attainment.elapsed_share IS 'elapsed_days / period_days, 4 decimals.';
COMMENT ON COLUMN salesmgmt.quota_attainment.pacing IS 'attainment / elapsed_share, 4 decimals: 1 = on pace to meet the quota exactly; null before the period starts or for a zero quota.';
COMMENT ON COLUMN salesmgmt.quota_attainment.projected_amount IS 'won_amount / elapsed_share: what the period ends with at the pace so far; null before the period starts.';
COMMENT ON COLUMN salesmgmt.quota_attainment.currency IS 'The reporting currency of the amounts.';
COMMENT ON COLUMN salesmgmt.quota_attainment.product_family IS 'Product family of the quota; null for all products.';
COMMENT ON COLUMN salesmgmt.quota_attainment.measure IS 'What the quota measures (quota.measure): booked amount or new_arr.';

CREATE OR REPLACE VIEW salesmgmt.pipeline_coverage WITH (security_invoker = true) AS
WITH open_credit AS (
    SELECT coalesce(s.rep_id, f.owner_rep_id) AS rep_id, f.expected_close_date AS day,
           f.amount_reporting * coalesce(s.share, 1) AS amount,
           f.amount_reporting * coalesce(s.share, 1) * f.probability AS weighted
      FROM salesmgmt.deal_facts f
      LEFT JOIN salesmgmt.deal_split s ON s.deal_id = f.deal_id
     WHERE f.outcome = 'open' AND f.expected_close_date >= current_date
),
open AS (
    SELECT qr.quota_id, sum(o.amount) AS amount, sum(o.weighted) AS weighted
      FROM salesmgmt.quota_rep qr
      JOIN open_credit o ON o.rep_id = qr.rep_id
                        AND o.day BETWEEN greatest(qr.period_start, current_date) AND qr.period_end
     GROUP BY qr.quota_id
)
SELECT a.level, a.quota_id, a.rep_id, a.team_id, a.period_start, a.period_end,
       greatest(a.period_end - greatest(a.period_start, current_date) + 1, 0) AS days_left,
       a.quota_amount, a.won_amount, a.remaining_amount,
       round(coalesce(o.amount, 0), 2) AS open_pipeline,
       round(coalesce(o.weighted, 0), 2) AS weighted_pipeline,
       round(coalesce(o.amount, 0) / nullif(a.remaining_amount, 0), 2) AS coverage,
       round(coalesce(o.weighted, 0) / nullif(a.remaining_amount, 0), 2) AS weighted_coverage,
       a.currency
  FROM salesmgmt.quota_attainment a
  LEFT JOIN open o ON o.quota_id = a.quota_id;
COMMENT ON VIEW salesmgmt.pipeline_coverage IS 'Per quota: the open pipeline expected to close in the rest of the period (today to period_end) against the quota still to win; coverage 3 means three times the remaining quota is in the pipeline.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.level IS 'rep for a rep''s quota, team for a team''s quota (counting the reps of the team and all sub-teams).';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.quota_id IS 'The quota (salesmgmt.quota).';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.rep_id IS 'Rep of a rep quota; null for a team quota.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.team_id IS 'Team of a team quota; null for a rep quota.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.period_start IS 'First day of the quota period.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.period_end IS 'Last day of the quota period (inclusive).';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.days_left IS 'Days from today (or period_start if later) to period_end, inclusive; 0 once the period is over.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.quota_amount IS 'Target in the reporting currency (as in quota_attainment).';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.won_amount IS 'Credited amount won in the period so far (as in quota_attainment).';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.remaining_amount IS 'quota_amount - won_amount, never below 0.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.open_pipeline IS 'Credited amount of open deals whose expected_close_date falls in the rest of the period, reporting currency at today''s rate.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.weighted_pipeline IS 'The same deals weighted by their effective probability.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.coverage IS 'open_pipeline / remaining_amount, 2 decimals; null when nothing remains to win.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.weighted_coverage IS 'weighted_pipeline / remaining_amount, 2 decimals; null when nothing remains to win.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.currency IS 'The reporting currency of the amounts.';

-- Straight-line pacing of each quota: the share of the quota won so far
-- against the share of the period elapsed (days before today).  A team's
-- quota is attained by the reps of the team and of its sub-teams.
CREATE OR REPLACE VIEW salesmgmt.target_pacing WITH (security_invoker = true) AS
SELECT q.quota_id,
       q.rep_id,
       q.team_id,
       q.period_start,
       q.period_end,
       q.amount,
       q.currency,
       a.attained,
       p.elapsed_pct,
       round(q.amount * p.elapsed_pct / 100, 2) AS expected,
       g.attained_pct,
       g.attained_pct - p.elapsed_pct AS gap_points,
       CASE WHEN g.attained_pct IS NULL OR g.attained_pct >= p.elapsed_pct THEN 'on_track'
            WHEN g.attained_pct > p.elapsed_pct - 10 THEN 'cautioned'
            ELSE 'off_track' END AS status,
       q.product_family,
       q.measure
  FROM salesmgmt.quota_of_record q
  CROSS JOIN LATERAL (
        SELECT round(least(greatest(current_date - q.period_start, 0), q.period_end - q.period_start + 1)::numeric
                     * 100 / (q.period_end - q.period_start + 1), 2) AS elapsed_pct) p
  CROSS JOIN LATERAL (
        WITH reps(rep_id, since, until) AS (
            -- the moments [since, until) the rep's credit counts
            SELECT q.rep_id, q.period_start::timestamptz, (q.period_end + 1)::timestamptz
             WHERE q.rep_id IS NOT NULL
            UNION ALL
            SELECT s.rep_id, greatest(q.period_start, s.from_day)::timestamptz,
                   least(q.period_end + 1, s.to_day)::timestamptz
              FROM salesmgmt._team_member_spans() s
             WHERE q.rep_id IS NULL AND s.team_id = q.team_id
               AND s.from_day <= q.period_end AND s.to_day > q.period_start
        ), credit(deal_id, amount, currency, closed_at) AS (
            -- deals without splits credit their owner in full
            SELECT d.deal_id, CASE WHEN q.measure = 'new_arr' THEN salesmgmt.deal_new_arr(d.deal_id) ELSE d.amount END,
                   d.currency, d.closed_at
              FROM reps
              JOIN salesmgmt.deal d ON d.owner_rep_id = reps.rep_id
              JOIN salesmgmt.stage st ON st.stage_id = d.stage_id AND st.outcome = 'won'
             WHERE d.closed_at >= reps.since AND d.closed_at < reps.until
               AND NOT EXISTS (SELECT 1 FROM salesmgmt.deal_split sp WHERE sp.deal_id = d.deal_id)
            UNION ALL
            SELECT d.deal_id,
                   CASE WHEN q.measure = 'new_arr' THEN salesmgmt.deal_new_arr(d.deal_id) ELSE d.amount END * sp.share,
                   d.currency, d.closed_at
              FROM reps
              JOIN salesmgmt.deal_split sp ON sp.rep_id = reps.rep_id
              JOIN salesmgmt.deal d ON d.deal_id = sp.deal_id
              JOIN salesmgmt.stage st ON st.stage_id = d.stage_id AND st.outcome = 'won'
             WHERE d.closed_at >= reps.since AND d.closed_at < reps.until
        )
        SELECT round(coalesce(sum(CASE WHEN c.currency = q.currency THEN c.amount
                                       ELSE salesmgmt.convert_amount(c.amount, c.currency, q.currency, c.closed_at::date) END
                                  * CASE WHEN q.product_family IS NULL THEN 1
                                         ELSE salesmgmt.deal_family_share(c.deal_id, q.product_family) END),
                              0), 2) AS attained
          FROM credit c) a
  CROSS JOIN LATERAL (
        SELECT CASE WHEN q.amount > 0 THEN round(a.attained * 100 / q.amount, 2) END AS attained_pct) g;
COMMENT ON VIEW salesmgmt.target_pacing IS 'Each quota of record (quota_of_record: a past period''s quota as it was at its end): won so far against the straight-line expectation for the elapsed share of its period (a product-family quota counts only that family''s share of each deal; a team quota the reps of its subtree for the days they were in it); status on_track, cautioned (behind) or off_track (10 points or more behind).';
COMMENT ON COLUMN salesmgmt.target_pacing.quota_id IS 'Quota.';
COMMENT ON COLUMN salesmgmt.target_pacing.rep_id IS 'Rep of a rep quota.';
COMMENT ON COLUMN salesmgmt.target_pacing.team_id IS 'Team of a team quota (the reps of the team and its sub-teams count for the days they were in them).';
COMMENT ON COLUMN salesmgmt.target_pacing.period_start IS 'First day of the quota period.';
COMMENT ON COLUMN salesmgmt.target_pacing.period_end IS 'Last day of the quota period.';
COMMENT ON COLUMN salesmgmt.target_pacing.amount IS 'Target amount (for a period that is over, the amount at its end).';
COMMENT ON COLUMN salesmgmt.target_pacing.currency IS 'Currency of the quota; attained and expected are in it.';
COMMENT ON COLUMN salesmgmt.target_pacing.attained IS 'Won so far: credited amounts of deals won in the period (for a new_arr quota their new ARR, deal_new_arr), converted at each deal''s close date; for a product-family quota the family''s share of each deal (deal_family_share).';
COMMENT ON COLUMN salesmgmt.target_pacing.elapsed_pct IS 'Share of the period elapsed, in percent: days before today over days of the period (0 before it starts, 100 after it ends).';
COMMENT ON COLUMN salesmgmt.target_pacing.expected IS 'Straight-line expectation: amount x elapsed share.';
COMMENT ON COLUMN salesmgmt.target_pacing.attained_pct IS 'Attained in percent of the quota; null for a zero quota.';
COMMENT ON COLUMN salesmgmt.target_pacing.gap_points IS 'attained_pct - elapsed_pct in percentage points; negative when behind.';
COMMENT ON COLUMN salesmgmt.target_pacing.status IS 'on_track (at or ahead of the line), cautioned (behind by less than 10 points) or off_track (10 points or more behind).';
COMMENT ON COLUMN salesmgmt.target_pacing.product_family IS 'Product family of the quota; null for all products.';
COMMENT ON COLUMN salesmgmt.target_pacing.measure IS 'What the quota measures (quota.measure): booked amount or new_arr.';

-- reps, managers and BI logins read these views with their own rights
GRANT SELECT ON salesmgmt.quota_of_record TO salesmgmt_admin, salesmgmt_manager, salesmgmt_rep;
GRANT EXECUTE ON FUNCTION salesmgmt._team_member_spans()
    TO salesmgmt_manager, salesmgmt_rep, salesmgmt_analyst;

-- The rights 0.1.0 gave these four views (security.sql: the four table
-- privileges to admins on every relation, SELECT on every view to managers
-- and reps); the analyst's column grants come from
-- _apply_default_security() below, as for every view.
GRANT SELECT, INSERT, UPDATE, DELETE
    ON salesmgmt.quota_rep, salesmgmt.quota_attainment, salesmgmt.pipeline_coverage, salesmgmt.target_pacing
    TO salesmgmt_admin;
GRANT SELECT
    ON salesmgmt.quota_rep, salesmgmt.quota_attainment, salesmgmt.pipeline_coverage, salesmgmt.target_pacing
    TO salesmgmt_manager, salesmgmt_rep;

SELECT salesmgmt._apply_default_security();

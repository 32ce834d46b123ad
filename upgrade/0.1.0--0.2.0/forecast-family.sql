-- 0.1.0 -> 0.2.0: forecast(..., p_group => 'product_family') (issue 17).
-- The grouping is C; the function's comment changes.  snapshot_forecast
-- takes the grouping too: its rows keep the family in group_name (group_id
-- is null), and forecast_accuracy matches family rows by that name.
COMMENT ON FUNCTION salesmgmt.forecast(date, date, text, timestamptz, char) IS 'Forecast of the deals whose period (closed_at when closed, else expected close date) lies in [p_from, p_to], per rep, team (with sub-teams), pipeline, month, quarter, product family (each deal split by its lines'' share per family, deals without lines in (none)) or in total, in the reporting currency; p_as_of rebuilds it as it stood at a past moment: the deals from their history (deals deleted by then left out), the splits and quotas of that moment, the teams of its day (salesmgmt.deal_deletion, deal_split_history, quota_history, rep_team_history, team_history).';

ALTER TABLE salesmgmt.forecast_snapshot DROP CONSTRAINT forecast_snapshot_group_kind_valid;
ALTER TABLE salesmgmt.forecast_snapshot ADD CONSTRAINT forecast_snapshot_group_kind_valid
    CHECK (group_kind IN ('rep', 'team', 'pipeline', 'month', 'quarter', 'total', 'product_family'));
CREATE OR REPLACE VIEW salesmgmt.forecast_accuracy AS
WITH queries AS (
    SELECT DISTINCT s.period_from, s.period_to, s.group_kind, s.currency
      FROM salesmgmt.forecast_snapshot s
), actual AS (
    SELECT q.period_from, q.period_to, q.group_kind, q.currency,
           f.group_id, f.group_name, f.period_start, f.closed_won
      FROM queries q,
           LATERAL salesmgmt.forecast(q.period_from, q.period_to, q.group_kind, NULL, q.currency) f
), cmp AS (
    SELECT s.*, coalesce(a.closed_won, 0) AS actual
      FROM salesmgmt.forecast_snapshot s
      LEFT JOIN actual a
        ON a.period_from = s.period_from AND a.period_to = s.period_to
       AND a.group_kind = s.group_kind AND a.currency = s.currency
       AND a.group_id IS NOT DISTINCT FROM s.group_id
       AND a.period_start = s.period_start
       -- families have no id: their name is the group
       AND (s.group_kind <> 'product_family' OR a.group_name = s.group_name)
)
SELECT c.snapshot_id, c.line_no, c.taken_at, c.group_kind, c.group_id, c.group_name,
       c.period_start, c.period_end, c.currency,
       c.commit_forecast AS forecast,
       c.actual,
       c.actual - c.commit_forecast AS error,
       CASE WHEN c.actual <> 0
            THEN round(greatest(0, 1 - abs(c.actual - c.commit_forecast) / c.actual), 4) END AS accuracy,
       c.closed_won + c.weighted AS weighted_forecast,
       CASE WHEN c.actual <> 0
            THEN round(greatest(0, 1 - abs(c.actual - (c.closed_won + c.weighted)) / c.actual), 4) END AS weighted_accuracy,
       c.adjusted_commit_forecast AS adjusted_forecast,
       CASE WHEN c.actual <> 0
            THEN round(greatest(0, 1 - abs(c.actual - c.adjusted_commit_forecast) / c.actual), 4) END AS adjusted_accuracy,
       c.period_end < current_date AS period_complete
  FROM cmp c;
COMMENT ON COLUMN salesmgmt.forecast_snapshot.group_kind IS 'p_group of the forecast: rep, team, pipeline, month, quarter, total or product_family.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.group_id IS 'group_id of the forecast row (rep, team or pipeline id, yyyymm, yyyyq; null for the total, for reps without a team and for product families, which group_name names).';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.group_name IS 'group_name of the forecast row when the snapshot was taken; for product_family rows the family (or (none) for deals without lines), which is also what forecast_accuracy matches them on.';
COMMENT ON FUNCTION salesmgmt.snapshot_forecast(date, date, text) IS 'Stores the current forecast of [p_from, p_to] by p_group (any grouping of salesmgmt.forecast, product_family included: its rows keep the family in group_name, group_id null) in salesmgmt.forecast_snapshot and returns the snapshot_id.';
COMMENT ON VIEW salesmgmt.forecast_accuracy IS 'Each forecast snapshot row compared with what has actually been won in its period and group (a product family by its name, group_name): accuracy = max(0, 1 - |actual - forecast| / actual), null while nothing is won.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.group_kind IS 'rep, team, pipeline, month, quarter, total or product_family.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.group_name IS 'Group name when the snapshot was taken; for product_family rows the family, the key the row is matched on.';

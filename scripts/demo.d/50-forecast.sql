-- Tour, part 5: forecasts (data analysis pillar).  See docs/forecasting.md.
\pset footer off
SELECT date_trunc('quarter', current_date)::date AS q_from,
       (date_trunc('quarter', current_date) + interval '3 months - 1 day')::date AS q_to \gset

\echo
\echo '-- This quarter''s forecast by team (each with its sub-teams), in the reporting currency,'
\echo '-- with the Monte Carlo range of what it will have won by the end of the quarter'
SELECT repeat('  ', CASE WHEN t.parent_team_id IS NULL THEN 0 ELSE 1 END) || f.group_name AS team,
       f.closed_won, f.commit_forecast AS commit_fc, f.best_case_forecast AS best_case_fc,
       f.closed_won + f.weighted AS weighted_fc, f.quota, f.attainment,
       r.p10, r.p50, r.p90
  FROM salesmgmt.forecast(:'q_from', :'q_to', 'team') f
  JOIN salesmgmt.team t ON t.team_id = f.group_id
  CROSS JOIN LATERAL salesmgmt.forecast_range(:'q_from', :'q_to', f.group_id, 10000, 1) r
 WHERE t.parent_team_id IS NULL
    OR t.parent_team_id IN (SELECT team_id FROM salesmgmt.team WHERE parent_team_id IS NULL)
 ORDER BY t.parent_team_id NULLS FIRST, f.group_id;

\echo
\echo '-- The same quarter by month, in total (quotas are quarterly, so months have none)'
SELECT group_name AS month, closed_won, commit, best_case, pipeline, weighted, deal_count
  FROM salesmgmt.forecast(:'q_from', :'q_to', 'month');

\echo
\echo '-- The same quarter by product family: each deal split by its lines'' share, deals without lines in (none)'
SELECT group_name AS family, closed_won, commit, best_case, weighted, quota, attainment, deal_count
  FROM salesmgmt.forecast(:'q_from', :'q_to', 'product_family');

\echo
\echo '-- What the forecast said on the first day of the quarter (rebuilt from the deal history) and now'
SELECT 'as of ' || :'q_from' AS forecast, closed_won, commit_forecast, best_case_forecast, weighted, deal_count
  FROM salesmgmt.forecast(:'q_from', :'q_to', 'total', :'q_from'::timestamptz)
UNION ALL
SELECT 'now', closed_won, commit_forecast, best_case_forecast, weighted, deal_count
  FROM salesmgmt.forecast(:'q_from', :'q_to', 'total');

\echo
\echo '-- Win rates learned from the history of New Business, against the configured probabilities'
SELECT stage_name AS stage, reached, won, probability AS learned, configured_probability AS configured,
       median_days_to_close AS "median days to close"
  FROM salesmgmt.win_rates(1) WHERE outcome = 'open';

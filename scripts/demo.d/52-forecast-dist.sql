-- Tour, part 5b: the forecast distribution, a Monte Carlo state that
-- merges.  See docs/scale-out.md.
\pset footer off
SELECT date_trunc('quarter', current_date)::date AS q_from,
       (date_trunc('quarter', current_date) + interval '3 months - 1 day')::date AS q_to \gset

\echo
\echo '-- This quarter''s open deals simulated 10,000 times per pipeline, then merged:'
\echo '-- the sum of the parts is exactly the distribution of all the deals'
WITH part AS (
    SELECT d.pipeline_id,
           salesmgmt.forecast_dist_agg(d.deal_id, d.amount, coalesce(d.probability, s.probability), 1, 10000) AS dist
      FROM salesmgmt.deal d JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
     WHERE s.outcome = 'open' AND d.expected_close_date BETWEEN :'q_from' AND :'q_to'
       AND d.currency = 'USD'
     GROUP BY d.pipeline_id),
whole AS (
    SELECT salesmgmt.forecast_dist_agg(d.deal_id, d.amount, coalesce(d.probability, s.probability), 1, 10000) AS dist
      FROM salesmgmt.deal d JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
     WHERE s.outcome = 'open' AND d.expected_close_date BETWEEN :'q_from' AND :'q_to'
       AND d.currency = 'USD')
SELECT p.name AS pipeline, salesmgmt.deals(part.dist) AS deals, salesmgmt.mean(part.dist) AS mean,
       salesmgmt.percentile(part.dist, 0.1) AS p10, salesmgmt.percentile(part.dist, 0.9) AS p90
  FROM part JOIN salesmgmt.pipeline p ON p.pipeline_id = part.pipeline_id
UNION ALL
SELECT 'all (merged parts = whole: ' ||
       ((SELECT a.dist OPERATOR(salesmgmt.+) b.dist FROM part a, part b WHERE a.pipeline_id < b.pipeline_id LIMIT 1)::text
        = (SELECT dist::text FROM whole)) || ')',
       salesmgmt.deals(dist), salesmgmt.mean(dist), salesmgmt.percentile(dist, 0.1), salesmgmt.percentile(dist, 0.9)
  FROM whole;

-- Tour, part 1: customers (customer relationship pillar): who is worth
-- most, how they segment by recency, frequency and monetary value, and
-- which valuable ones nobody has talked to lately.  Views: customer_summary,
-- account_last_touch (docs/bi.md).
\pset footer off
\echo
\echo '================ Customers: value and segments ================'
\echo
\echo '-- Top 10 accounts by lifetime value (won revenue less refunds, reporting currency)'
SELECT c.name AS account, r.name AS owner, c.won_deals AS purchases,
       c.revenue, c.refunds, c.lifetime_value, c.last_purchase_at::date AS last_purchase,
       c.days_since_last_activity AS days_quiet, c.rfm_cell AS rfm, c.segment
  FROM salesmgmt.customer_summary c
  LEFT JOIN salesmgmt.rep r ON r.rep_id = c.owner_rep_id
 ORDER BY c.lifetime_value DESC, c.account_id
 LIMIT 10;

\echo
\echo '-- RFM segments: recency x frequency quintiles among the accounts that bought'
SELECT segment, count(*) AS accounts,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct,
       round(avg(lifetime_value)) AS avg_lifetime_value,
       sum(lifetime_value) AS total_lifetime_value,
       round(avg(days_since_last_purchase)) AS avg_days_since_purchase
  FROM salesmgmt.customer_summary
 GROUP BY segment
 ORDER BY sum(lifetime_value) DESC, segment;

\echo
\echo '-- Valuable customers going quiet: top-segment accounts without contact for 30+ days'
SELECT c.name AS account, c.segment, c.lifetime_value, t.last_touch_at::date AS last_touch,
       t.days_since_last_touch AS days_quiet, t.last_touch_kind AS by, r.name AS last_rep,
       t.touches_90_days AS touches_90d, c.open_pipeline
  FROM salesmgmt.customer_summary c
  JOIN salesmgmt.account_last_touch t USING (account_id)
  LEFT JOIN salesmgmt.rep r ON r.rep_id = t.last_touch_rep_id
 WHERE c.segment IN ('Champions', 'Loyal customers', 'Cannot lose them')
   AND coalesce(t.days_since_last_touch, 9999) >= 30
 ORDER BY c.lifetime_value DESC, c.account_id
 LIMIT 8;

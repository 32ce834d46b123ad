-- Tour, part 3c: subscriptions and recurring revenue (customer loyalty
-- pillar).  The demo deal of part 3b sold yearly seats: winning it made
-- subscriptions.  Renewals open themselves (generate_renewals, daily with
-- pg_cron), and the MRR movements reconcile to the cent.  See
-- docs/subscriptions.md.
\pset footer off
\set QUIET on
INSERT INTO salesmgmt.subscription_setting (renewal_pipeline_id)
SELECT pipeline_id FROM salesmgmt.pipeline WHERE name = 'Renewals'
ON CONFLICT (setting_id) DO NOTHING;
\set QUIET off

\echo
\echo '================ Subscriptions and recurring revenue ================'
\echo
\echo '-- The won demo deal''s recurring lines became subscriptions (MRR = line amount / term months)'
SELECT s.subscription_id, p.sku, s.quantity, s.mrr, s.currency, s.term_months, s.status,
       s.end_date - s.start_date + 1 AS days_in_term
  FROM salesmgmt.subscription s JOIN salesmgmt.product p USING (product_id)
 WHERE p.sku LIKE 'DEMO-%' ORDER BY s.subscription_id;

\echo
\echo '-- Renewals open themselves once and only once: a deal per account and term end, for the ARR due'
SELECT * FROM salesmgmt.generate_renewals(400);
SELECT * FROM salesmgmt.generate_renewals(400);
SELECT r.subscription_id, r.arr, r.currency, r.outcome, d.name AS renewal_deal, st.name AS stage
  FROM salesmgmt.subscription_renewal r JOIN salesmgmt.deal d USING (deal_id)
  JOIN salesmgmt.stage st ON st.stage_id = d.stage_id
  JOIN salesmgmt.subscription s ON s.subscription_id = r.subscription_id
  JOIN salesmgmt.product p ON p.product_id = s.product_id
 WHERE p.sku LIKE 'DEMO-%' ORDER BY r.subscription_id;

\echo
\echo '-- MRR movements of the last months: starting + new + expansion + contraction + churned + reactivation = ending'
SELECT month, starting_mrr, new_mrr, expansion_mrr, contraction_mrr, churned_mrr, reactivation_mrr, ending_mrr,
       starting_mrr + new_mrr + expansion_mrr + contraction_mrr + churned_mrr + reactivation_mrr = ending_mrr AS adds_up
  FROM salesmgmt.mrr_movements ORDER BY month DESC LIMIT 3;

\echo
\echo '-- ARR by product family, and the subscriptions most at risk (each signal with its points)'
SELECT value AS family, arr, subscriptions FROM salesmgmt.arr_by WHERE dimension = 'product_family' ORDER BY arr DESC;
SELECT risk_rank, account_name, arr, currency, activity_points, satisfaction_points, feedback_points,
       contraction_points, renewal_points, risk_score
  FROM salesmgmt.churn_risk ORDER BY risk_rank, subscription_id LIMIT 5;

-- Tour, part 4: commissions (training-and-incentives pillar).  Sets up two
-- plans on the demo data set (once), runs the last full quarter, and prints
-- one rep's statement: every line explains its own arithmetic.
\pset footer off
\set QUIET on
SELECT NOT EXISTS (SELECT 1 FROM salesmgmt.commission_plan) AS need_plans \gset
\if :need_plans
INSERT INTO salesmgmt.commission_plan (name, basis, period, tier_mode, cap, clawback_days, override_rate, description) VALUES
  ('Account executive', 'booking', 'quarter', 'marginal', 40000, 90, NULL,
   '2.5% below half of quota, 5% on everything once half is reached, 7.5% above quota; an analytics SPIFF'),
  ('Sales manager', 'booking', 'quarter', 'marginal', NULL, 90, 0.01,
   '3% of own credit, 1% override on the credit of everyone below');
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate, mode)
SELECT p.plan_id, t.f, t.t, t.r, t.m
  FROM salesmgmt.commission_plan p,
       (VALUES ('Account executive', 0, 0.5, 0.025, 'marginal'), ('Account executive', 0.5, 1.0, 0.05, 'retroactive'),
               ('Account executive', 1.0, NULL, 0.075, 'marginal'), ('Sales manager', 0, NULL, 0.03, NULL))
       AS t(plan, f, t, r, m)
 WHERE p.name = t.plan;
INSERT INTO salesmgmt.commission_spiff (plan_id, name, condition, amount)
SELECT plan_id, 'Analytics bonus', '{"extra": {"product": "analytics"}}', 150
  FROM salesmgmt.commission_plan WHERE name = 'Account executive';
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from)
SELECT r.rep_id, p.plan_id, DATE '2000-01-01'
  FROM salesmgmt.rep r
  JOIN salesmgmt.commission_plan p
    ON p.name = CASE WHEN EXISTS (SELECT 1 FROM salesmgmt.team t WHERE t.manager_rep_id = r.rep_id)
                     THEN 'Sales manager' ELSE 'Account executive' END;
\endif
SELECT (date_trunc('quarter', now()) - interval '3 months')::date AS q_start,
       (date_trunc('quarter', now()) - interval '1 day')::date AS q_end \gset
\set QUIET off

\echo
\echo '-- Commissions of the last full quarter (':q_start' to ':q_end'): the top five'
SELECT r.name AS rep, c.credit::numeric(14,2) AS credit, c.quota, round(c.attainment * 100, 1) AS "attain %",
       c.earned, c.spiffs, c.overrides, c.clawbacks, c.payout
  FROM salesmgmt.run_commissions(:'q_start', :'q_end') c
  JOIN salesmgmt.rep r USING (rep_id)
 ORDER BY c.payout DESC, c.rep_id LIMIT 5;

\echo
\echo '-- The statement of the rep whose deals crossed the most tiers: every line explains itself'
SELECT rep_id AS statement_rep FROM salesmgmt.commission_line
 WHERE period_start = :'q_start' AND kind = 'earned'
 GROUP BY rep_id ORDER BY count(tiers) DESC, sum(amount) DESC, rep_id LIMIT 1 \gset
SELECT rep_name, plan_name, total_credit::numeric(14,2) AS credit, total_earned AS earned,
       total_spiffs AS spiffs, total_payout AS payout
  FROM salesmgmt.commission_statement
 WHERE rep_id = :statement_rep AND period_start = :'q_start' LIMIT 1;
SELECT kind, deal_id AS deal, amount, explanation
  FROM salesmgmt.commission_statement
 WHERE rep_id = :statement_rep AND period_start = :'q_start'
 ORDER BY credited_at, line_id;

-- Tour, part 1b: leads before there are deals (capture, routing, pools,
-- conversion, scoring, the learned score).  Safe to run again.
\pset footer off
\echo
\echo '================ Customers: leads ================'
\echo
\echo '-- The lead funnel per source over the last year'
SELECT source, sum(leads) AS leads, sum(worked) AS worked, sum(converted) AS converted,
       round(sum(converted)::numeric / sum(leads), 3) AS conversion_rate
  FROM salesmgmt.lead_funnel
 WHERE period >= date_trunc('month', now() - interval '1 year')
 GROUP BY source ORDER BY conversion_rate DESC;

\echo
\echo '-- Routing rules: enterprise leads to a rep, inbound web leads round-robin, the rest into a pool'
DELETE FROM salesmgmt.assignment_rule WHERE name LIKE 'Tour:%';
INSERT INTO salesmgmt.lead_pool (name, max_claimed_per_rep, reclaim_after_days)
VALUES ('Tour inbound', 5, 14) ON CONFLICT (name) DO NOTHING;
INSERT INTO salesmgmt.lead_pool_team (pool_id, team_id)
SELECT p.pool_id, 2 FROM salesmgmt.lead_pool p WHERE p.name = 'Tour inbound' ON CONFLICT DO NOTHING;
INSERT INTO salesmgmt.assignment_rule (entity, position, name, condition, target_kind, target_id)
SELECT 'lead', 9000 + v.pos, 'Tour: ' || v.name, v.cond::jsonb, v.kind,
       CASE v.kind WHEN 'pool' THEN (SELECT pool_id FROM salesmgmt.lead_pool WHERE name = 'Tour inbound')
                   WHEN 'rep' THEN 6 ELSE 6 END
  FROM (VALUES (1, 'enterprise', '{"company_size": {">=": 2000}}', 'rep'),
               (2, 'web', '{"source": "web"}', 'team_round_robin'),
               (3, 'the rest', '{}', 'pool')) AS v(pos, name, cond, kind);
SELECT position, name, condition, target_kind, target_id FROM salesmgmt.assignment_rule
 WHERE name LIKE 'Tour:%' ORDER BY position;

\echo
\echo '-- Captured in one INSERT, routed in the same statement'
WITH new AS (
    INSERT INTO salesmgmt.lead (name, company, source, region, company_size)
    SELECT 'Tour lead ' || g, 'Tour Co ' || g, (ARRAY['web', 'event', 'web', 'partner'])[1 + g % 4], 'EMEA',
           (ARRAY[30, 5000, 120, 800])[1 + g % 4]
      FROM generate_series(1, 8) g
    RETURNING lead_id, name, source, company_size, owner_rep_id, pool_id)
SELECT * FROM new ORDER BY lead_id;

\echo
\echo '-- Pools now'
SELECT name, waiting, claimed, reclaimed_30d FROM salesmgmt.lead_pool_status ORDER BY pool_id;

\echo
\echo '-- Converting a qualified lead: account, contact and deal in one call'
SELECT l.lead_id, l.name, c.*
  FROM (SELECT * FROM salesmgmt.lead WHERE status = 'qualified' AND owner_rep_id IS NOT NULL ORDER BY lead_id LIMIT 1) l,
       salesmgmt.convert_lead(l.lead_id, NULL, 1, NULL) c;

\echo
\echo '-- Scoring rules and the top-scored open leads, with their explanation'
DELETE FROM salesmgmt.lead_score_rule WHERE name LIKE 'Tour:%';
INSERT INTO salesmgmt.lead_score_rule (name, kind, condition, points, half_life_days) VALUES
    ('Tour: large company', 'attribute', '{"company_size": {">=": 1000}}', 20, NULL),
    ('Tour: referral', 'attribute', '{"source": "referral"}', 15, NULL),
    ('Tour: cold', 'attribute', '{"source": "cold"}', -10, NULL),
    ('Tour: demos and meetings', 'activity', '{"kind": {"in": ["demo", "meeting"]}}', 10, 30);
SELECT salesmgmt.score_leads() AS leads_rescored;
SELECT lead_id, source, company_size, score,
       (SELECT string_agg((e->>'name') || ' ' || (e->>'points'), ', ') FROM jsonb_array_elements(score_explanation) e) AS why
  FROM salesmgmt.lead WHERE status IN ('new', 'working', 'nurturing', 'qualified')
 ORDER BY score DESC, lead_id LIMIT 5;

\echo
\echo '-- The learned score: logistic regression on past leads, AUC on a held-out fifth'
SELECT * FROM salesmgmt.train_lead_model((now() - interval '3 years')::date);
SELECT feature, category, round(coefficient::numeric, 3) AS coefficient
  FROM salesmgmt.lead_model_feature
 WHERE model_id = (SELECT max(model_id) FROM salesmgmt.lead_model)
 ORDER BY abs(coefficient) DESC LIMIT 6;
SELECT lead_id, source, company_size, round(salesmgmt.lead_conversion_probability(lead_id)::numeric, 3) AS p_convert
  FROM salesmgmt.lead WHERE status = 'working' ORDER BY lead_id LIMIT 5;

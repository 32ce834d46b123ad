-- pgTAP: leads (docs/leads.md): routing for every writer, status moves,
-- pools (claim, release, reclaim), conversion, scoring, the learned score's
-- errors, row-level security, and bad input to every function: each
-- refused call names its SQLSTATE and leaves the data as it was.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(131);

-- ---------------------------------------------------------------- structure
SELECT has_table('salesmgmt', t, 'table ' || t)
  FROM unnest(ARRAY['lead', 'lead_pool', 'lead_pool_team', 'lead_history', 'assignment_rule', 'rep_capacity',
                    'assignment_rotation', 'lead_score_rule', 'lead_model', 'lead_model_feature']) t;
SELECT ok((SELECT array_agg(c::regclass::text ORDER BY c::regclass::text) @> ARRAY['salesmgmt.assignment_rule', 'salesmgmt.lead',
          'salesmgmt.lead_history', 'salesmgmt.lead_model', 'salesmgmt.lead_pool', 'salesmgmt.lead_score_rule']
             FROM pg_extension, unnest(extconfig) c WHERE extname = 'salesmgmt'), 'lead tables are kept by pg_dump');
SELECT has_column('salesmgmt', 'activity', 'lead_id', 'activity.lead_id');
SELECT has_column('salesmgmt', 'sales_task', 'lead_id', 'sales_task.lead_id');
SELECT is((SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
            WHERE p.oid = f::regproc), 'c', f || ' is C')
  FROM unnest(ARRAY['salesmgmt._lead_before', 'salesmgmt.assign', 'salesmgmt.score_leads',
                    'salesmgmt.train_lead_model', 'salesmgmt.lead_conversion_probability']) f;
SELECT has_view('salesmgmt', v, 'view ' || v) FROM unnest(ARRAY['lead_funnel', 'lead_pool_status', 'rep_lead_load']) v;
SELECT ok(relrowsecurity, 'row-level security on ' || relname)
  FROM pg_class WHERE relnamespace = 'salesmgmt'::regnamespace AND relname IN ('lead', 'lead_history', 'lead_pool');

-- ---------------------------------------------------------------- a world
-- team 1 Sales (m1) > 2 EMEA (r2, r3, r4), 3 APAC (r5, r6 with capacities)
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales'), (2, 'EMEA'), (3, 'APAC'), (4, 'Other');
UPDATE salesmgmt.team SET parent_team_id = 1 WHERE team_id IN (2, 3);
INSERT INTO salesmgmt.rep (rep_id, name, team_id, db_role) VALUES
    (1, 'M1', 1, 'lead_m1'), (2, 'R2', 2, 'lead_r2'), (3, 'R3', 2, NULL), (4, 'R4', 2, NULL),
    (5, 'R5', 3, 'lead_r5'), (6, 'R6', 3, NULL), (7, 'R7', 4, NULL);
UPDATE salesmgmt.team SET manager_rep_id = 1 WHERE team_id = 1;
INSERT INTO salesmgmt.rep_capacity VALUES (5, 1), (6, 1);
INSERT INTO salesmgmt.lead_pool (pool_id, name, max_claimed_per_rep, reclaim_after_days) VALUES
    (1, 'EMEA inbound', 1, 7), (2, 'APAC inbound', NULL, NULL);
INSERT INTO salesmgmt.lead_pool_team VALUES (1, 2), (2, 3);
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) VALUES (1001, 'Existing', 2);
INSERT INTO salesmgmt.pipeline (pipeline_id, name) VALUES (1, 'New business');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (1, 1, 'Qualify', 1, 0.1, 'pipeline', 'open'), (2, 1, 'Won', 2, 1, 'closed', 'won');
INSERT INTO salesmgmt.assignment_rule (entity, position, name, condition, target_kind, target_id) VALUES
    ('lead', 10, 'big EMEA', '{"region": "EMEA", "company_size": {">=": 1000}}', 'rep', 4),
    ('lead', 20, 'EMEA', '{"region": "EMEA", "source": {"in": ["web", "event"]}}', 'team_round_robin', 2),
    ('lead', 30, 'APAC', '{"region": "APAC"}', 'team_load_balanced', 3),
    ('lead', 40, 'EMEA rest', '{"region": "EMEA"}', 'pool', 1),
    ('lead', 50, 'everything else', '{"any": [{"source": "cold"}, {"extra": {"tier": {">": 2}}}]}', 'pool', 2),
    ('account', 10, 'retail', '{"industry": "Retail"}', 'team_round_robin', 2);

SELECT setval(pg_get_serial_sequence('salesmgmt.lead', 'lead_id'), 1000) \g /dev/null

-- ---------------------------------------------------------------- routing
INSERT INTO salesmgmt.lead (lead_id, name, region, source, company_size) VALUES
    (1, 'a', 'EMEA', 'web', 50), (2, 'b', 'EMEA', 'web', 50), (3, 'c', 'EMEA', 'event', 50),
    (4, 'd', 'EMEA', 'web', 5000), (5, 'e', 'EMEA', 'partner', 10);
SELECT results_eq('SELECT owner_rep_id FROM salesmgmt.lead WHERE lead_id IN (1, 2, 3, 4) ORDER BY lead_id',
                  ARRAY[2, 3, 4, 4]::bigint[], 'round robin in rep order; the first matching rule wins');
SELECT results_eq('SELECT row(owner_rep_id IS NULL, pool_id)::text FROM salesmgmt.lead WHERE lead_id = 5',
                  ARRAY['(t,1)'], 'a lead matching a pool rule waits in the pool without owner');
SELECT ok((SELECT bool_and(assigned_at IS NOT NULL) FROM salesmgmt.lead WHERE lead_id <= 4), 'routed leads have assigned_at');
COPY salesmgmt.lead (lead_id, name, region, source) FROM STDIN;
6	f	EMEA	web
7	g	APAC	web
8	h	APAC	web
9	i	APAC	web
\.
SELECT results_eq('SELECT coalesce(owner_rep_id, 0) FROM salesmgmt.lead WHERE lead_id BETWEEN 6 AND 9 ORDER BY lead_id',
                  ARRAY[2, 5, 6, 0]::bigint[], 'COPY is routed: round robin goes on, load balancing stops at capacity');
INSERT INTO salesmgmt.lead (lead_id, name, source, extra) VALUES (10, 'j', 'x', '{"tier": 3}'), (11, 'k', 'x', '{}');
SELECT results_eq('SELECT coalesce(pool_id, 0) FROM salesmgmt.lead WHERE lead_id IN (10, 11) ORDER BY lead_id',
                  ARRAY[2, 0]::bigint[], 'nested keys and any/not in rules; an unmatched lead stays unrouted');
INSERT INTO salesmgmt.lead (lead_id, name, region, source, owner_rep_id) VALUES (12, 'l', 'EMEA', 'web', 7);
SELECT is((SELECT owner_rep_id FROM salesmgmt.lead WHERE lead_id = 12), 7::bigint, 'a lead inserted with an owner keeps it');
SELECT is((SELECT turns FROM salesmgmt.assignment_rotation WHERE team_id = 2), 4::bigint, 'each round-robin routing took one turn');

-- rules are validated and cached rules follow changes
SELECT throws_ok($$INSERT INTO salesmgmt.assignment_rule (entity, position, condition, target_kind, target_id)
                   VALUES ('lead', 60, '{"regoin": "EMEA"}', 'rep', 2)$$, '22023', NULL, 'a rule naming no lead column is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.assignment_rule (entity, position, condition, target_kind, target_id)
                   VALUES ('lead', 60, '{"company_size": {"~": 5}}', 'rep', 2)$$, '22023', NULL, 'an unknown operator is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.assignment_rule (entity, position, target_kind, target_id) VALUES ('lead', 60, 'rep', 99)$$,
                 '23503', NULL, 'a rule for an unknown rep is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.assignment_rule (entity, position, target_kind, target_id) VALUES ('lead', 60, 'team_round_robin', 99)$$,
                 '23503', NULL, 'a rule for an unknown team is refused');
SELECT throws_ok($$INSERT INTO salesmgmt.assignment_rule (entity, position, target_kind, target_id) VALUES ('deal', 60, 'pool', 1)$$,
                 '23514', NULL, 'deals are not routed to pools');
SELECT throws_ok($$INSERT INTO salesmgmt.assignment_rule (entity, position, target_kind, target_id) VALUES ('lead', 10, 'rep', 2)$$,
                 '23505', NULL, 'positions are unique per entity');
UPDATE salesmgmt.assignment_rule SET active = false WHERE position = 10 AND entity = 'lead';
INSERT INTO salesmgmt.lead (lead_id, name, region, source, company_size) VALUES (13, 'm', 'EMEA', 'web', 5000);
SELECT is((SELECT owner_rep_id FROM salesmgmt.lead WHERE lead_id = 13), 3::bigint, 'a deactivated rule no longer applies (cache dropped)');

-- assign()
SELECT throws_ok($$SELECT salesmgmt.assign(NULL, 1)$$, '22004', NULL, 'assign: null entity');
SELECT throws_ok($$SELECT salesmgmt.assign('lead', NULL)$$, '22004', NULL, 'assign: null id');
SELECT throws_ok($$SELECT salesmgmt.assign('opportunity', 1)$$, '22023', NULL, 'assign: unknown entity');
SELECT throws_ok($$SELECT salesmgmt.assign('lead', -1)$$, '42704', NULL, 'assign: unknown lead');
SELECT throws_ok($$SELECT salesmgmt.assign('account', 999)$$, '42704', NULL, 'assign: unknown account');
SELECT is(salesmgmt.assign('lead', 11), NULL::bigint, 'assign: no rule matches, nothing changes');
SELECT is((SELECT row(owner_rep_id, pool_id)::text FROM salesmgmt.lead WHERE lead_id = 11), '(,)', 'the unmatched lead is as it was');
UPDATE salesmgmt.lead SET region = 'EMEA', source = 'event' WHERE lead_id = 11;
SELECT is(salesmgmt.assign('lead', 11), 4::bigint, 'assign routes a lead after its data changed');
SELECT is((SELECT kind FROM salesmgmt.lead_history WHERE lead_id = 11), 'assigned', 'the assignment is in the history');
INSERT INTO salesmgmt.account (account_id, name, industry, owner_rep_id) VALUES (1002, 'Shop', 'Retail', 7);
SELECT is(salesmgmt.assign('account', 1002), 2::bigint, 'accounts are routed by their own rules (team turn restarts per team)');
SELECT is((SELECT owner_rep_id FROM salesmgmt.account WHERE account_id = 1002), 2::bigint, 'the account has its new owner');

-- ---------------------------------------------------------------- status moves
UPDATE salesmgmt.lead SET status = 'working' WHERE lead_id = 1;
SELECT throws_ok($$UPDATE salesmgmt.lead SET status = 'new' WHERE lead_id = 1$$, 'SM060', NULL, 'working cannot go back to new');
SELECT throws_ok($$UPDATE salesmgmt.lead SET status = 'disqualified' WHERE lead_id = 1$$, '23514', NULL, 'disqualifying needs a reason');
UPDATE salesmgmt.lead SET status = 'disqualified', disqualify_reason = 'no budget' WHERE lead_id = 1;
SELECT throws_ok($$UPDATE salesmgmt.lead SET status = 'qualified' WHERE lead_id = 1$$, 'SM060', NULL, 'disqualified only reopens to working or nurturing');
UPDATE salesmgmt.lead SET status = 'working', disqualify_reason = NULL WHERE lead_id = 1;
SELECT is((SELECT status FROM salesmgmt.lead WHERE lead_id = 1), 'working', 'a disqualified lead reopens');
SELECT throws_ok($$UPDATE salesmgmt.lead SET status = 'converted' WHERE lead_id = 1$$, '23514', NULL, 'converted only with the ids it became');

-- ---------------------------------------------------------------- roles
CREATE ROLE lead_m1 IN ROLE salesmgmt_manager;
CREATE ROLE lead_r2 IN ROLE salesmgmt_rep;
CREATE ROLE lead_r5 IN ROLE salesmgmt_rep;
CREATE ROLE lead_nobody IN ROLE salesmgmt_rep;
INSERT INTO salesmgmt.lead (lead_id, name, region, source) VALUES (20, 'p1', 'EMEA', 'partner'), (21, 'p2', 'EMEA', 'partner'),
    (22, 'q1', 'APAC', 'cold');
UPDATE salesmgmt.lead SET pool_id = 2, owner_rep_id = NULL WHERE lead_id = 22;

SET ROLE lead_r2;
SELECT set_eq('SELECT lead_id FROM salesmgmt.lead', 'SELECT lead_id FROM salesmgmt.lead WHERE false UNION VALUES (1), (6), (20), (21), (5)',
              'r2 sees its own leads and the waiting leads of its pool');
SELECT is((salesmgmt.claim_lead(20)).owner_rep_id, 2::bigint, 'r2 claims a lead of its pool');
SELECT throws_ok($$SELECT salesmgmt.claim_lead(21)$$, 'SM062', NULL, 'a second claim is over the pool limit');
SELECT throws_ok($$SELECT salesmgmt.claim_lead(22)$$, '42704', NULL, 'r2 does not even see a lead of a pool it may not use');
SELECT throws_ok($$SELECT salesmgmt.claim_lead(1)$$, 'SM064', NULL, 'an owned lead cannot be claimed');
SELECT throws_ok($$SELECT salesmgmt.claim_lead(NULL)$$, '22004', NULL, 'claim_lead: null');
SELECT throws_ok($$SELECT salesmgmt.claim_lead(9999)$$, '42704', NULL, 'claim_lead: unknown lead');
SELECT throws_ok($$SELECT salesmgmt.release_lead(20, NULL)$$, '22004', NULL, 'release_lead needs a reason');
SELECT throws_ok($$SELECT salesmgmt.release_lead(2, 'not mine')$$, '42501', NULL, 'r2 cannot release r3''s lead');
SELECT throws_ok($$SELECT salesmgmt.release_lead(1, 'no pool')$$, 'SM064', NULL, 'a lead without pool cannot be released');
SELECT is((salesmgmt.release_lead(20, 'wrong region')).owner_rep_id, NULL::bigint, 'r2 releases the claimed lead');
SELECT is((salesmgmt.claim_lead(21)).owner_rep_id, 2::bigint, 'after the release r2 may claim again');
SELECT throws_ok($$INSERT INTO salesmgmt.lead (name, owner_rep_id) VALUES ('mine?', 3)$$, '42501', NULL,
                 'r2 cannot give a new lead to r3');
SELECT lives_ok($$INSERT INTO salesmgmt.lead (name, owner_rep_id) VALUES ('mine', 2)$$, 'r2 captures a lead for itself');
SELECT lives_ok($$INSERT INTO salesmgmt.lead (name, region, source) VALUES ('web form', 'EMEA', 'web')$$,
                'r2 captures a lead the rules route to a colleague');
SELECT throws_ok($$SELECT salesmgmt.assign('lead', 1)$$, '42501', NULL, 'reps do not run assign');
SELECT throws_ok($$SELECT salesmgmt.reclaim_idle_leads()$$, '42501', NULL, 'reps do not run reclaim');
WITH u AS (UPDATE salesmgmt.lead SET company = 'x' WHERE lead_id = 2 RETURNING 1)
SELECT is(count(*)::int, 0, 'r2 cannot update r3''s lead') FROM u;
RESET ROLE;

SET ROLE lead_r5;
SELECT throws_ok($$SELECT salesmgmt.claim_lead(21)$$, '42704', NULL, 'r5 does not see EMEA leads');
SELECT is((salesmgmt.claim_lead(22)).owner_rep_id, 5::bigint, 'r5 claims from the APAC pool');
RESET ROLE;
UPDATE salesmgmt.lead SET owner_rep_id = NULL WHERE lead_id = 22;
SET ROLE lead_nobody;
SELECT throws_ok($$SELECT salesmgmt.claim_lead(20)$$, '42501', NULL, 'a role that is no rep cannot claim');
RESET ROLE;
-- a rep of a team that may not use the pool (as an admin sees it)
UPDATE salesmgmt.rep SET db_role = 'lead_nobody' WHERE rep_id = 7;
SET ROLE lead_nobody;
SELECT throws_ok($$SELECT salesmgmt.claim_lead(20)$$, '42704', NULL, 'r7 does not see the EMEA pool''s leads');
RESET ROLE;
SET ROLE lead_m1;
SELECT ok((SELECT count(*) FROM salesmgmt.lead WHERE owner_rep_id IN (2, 3, 4, 5, 6)) >= 8, 'm1 sees the leads of its tree');
SELECT is((SELECT count(*)::int FROM salesmgmt.lead WHERE owner_rep_id = 7), 0, 'm1 does not see leads of another tree');
RESET ROLE;
SET ROLE lead_r2;
SELECT is((SELECT count(*)::int FROM salesmgmt.lead_pool), 2, 'reps read the pools');
RESET ROLE;
SELECT is(salesmgmt.rep_may_claim(2, 2), false, 'rep_may_claim: EMEA rep, APAC pool');
SELECT is(salesmgmt.rep_may_claim(1, 2), true, 'rep_may_claim: EMEA rep, EMEA pool');
-- a pool the claimer's team may not use: m1 sees APAC's waiting lead through its tree
SET ROLE lead_m1;
SELECT throws_ok($$SELECT salesmgmt.claim_lead(22)$$, 'SM063', NULL, 'm1 (team Sales) sees APAC''s waiting lead but may not claim it');
RESET ROLE;

-- ---------------------------------------------------------------- reclaim
UPDATE salesmgmt.lead SET assigned_at = now() - interval '30 days', last_activity_at = now() - interval '10 days' WHERE lead_id = 21;
SELECT is(salesmgmt.reclaim_idle_leads(), 1, 'an idle claimed lead goes back to its pool');
SELECT is(salesmgmt.reclaim_idle_leads(), 0, 'reclaiming is idempotent');
SELECT is((SELECT row(owner_rep_id, pool_id)::text FROM salesmgmt.lead WHERE lead_id = 21), '(,1)', 'the reclaimed lead waits in its pool');
SELECT is((SELECT reclaimed_30d FROM salesmgmt.lead_pool_status WHERE pool_id = 1), 1::bigint, 'lead_pool_status counts the reclaim');

-- ---------------------------------------------------------------- conversion
INSERT INTO salesmgmt.activity (kind, lead_id, rep_id) VALUES ('call', 3, 4), ('email', 3, 4);
INSERT INTO salesmgmt.sales_task (rep_id, lead_id, title) VALUES (4, 3, 'Call back');
SELECT ok((SELECT last_activity_at IS NOT NULL FROM salesmgmt.lead WHERE lead_id = 3), 'activities keep last_activity_at');
SELECT throws_ok($$INSERT INTO salesmgmt.activity (kind, rep_id) VALUES ('call', 4)$$, '23514', NULL, 'an activity needs an account or a lead');
CREATE TEMP TABLE counts AS SELECT (SELECT count(*) FROM salesmgmt.account) a, (SELECT count(*) FROM salesmgmt.contact) c, (SELECT count(*) FROM salesmgmt.deal) d;
SELECT throws_ok($$SELECT * FROM salesmgmt.convert_lead(NULL)$$, '22004', NULL, 'convert_lead: null');
SELECT throws_ok($$SELECT * FROM salesmgmt.convert_lead(9999)$$, '42704', NULL, 'convert_lead: unknown lead');
SELECT throws_ok($$SELECT * FROM salesmgmt.convert_lead(3, 999)$$, '42704', NULL, 'convert_lead: unknown account');
SELECT throws_ok($$SELECT * FROM salesmgmt.convert_lead(3, NULL, 999)$$, '42704', NULL, 'convert_lead: unknown pipeline');
SELECT throws_ok($$SELECT * FROM salesmgmt.convert_lead(3, NULL, NULL, 'Deal')$$, '22023', NULL, 'convert_lead: a deal name without pipeline');
SELECT throws_ok($$SELECT * FROM salesmgmt.convert_lead(20)$$, 'SM064', NULL, 'convert_lead: a lead waiting in a pool');
SELECT is((SELECT row(a, c, d)::text FROM counts),
          (SELECT row((SELECT count(*) FROM salesmgmt.account), (SELECT count(*) FROM salesmgmt.contact), (SELECT count(*) FROM salesmgmt.deal))::text),
          'refused conversions created nothing');
SELECT ok((SELECT account_id IS NOT NULL AND contact_id IS NOT NULL AND deal_id IS NOT NULL
             FROM salesmgmt.convert_lead(3, NULL, 1, 'First order')), 'convert_lead creates an account, a contact and a deal');
SELECT results_eq($$SELECT l.status, d.stage_id, d.owner_rep_id, (SELECT count(*) FROM salesmgmt.activity a WHERE a.lead_id = 3 AND a.account_id = l.converted_account_id)
                      FROM salesmgmt.lead l JOIN salesmgmt.deal d ON d.deal_id = l.converted_deal_id WHERE l.lead_id = 3$$,
                  $$VALUES ('converted', 1::bigint, 4::bigint, 2::bigint)$$, 'the deal starts in the first stage, the activities moved along');
SELECT is((SELECT account_id FROM salesmgmt.sales_task WHERE lead_id = 3), (SELECT converted_account_id FROM salesmgmt.lead WHERE lead_id = 3),
          'the lead''s tasks moved to the account');
SELECT throws_ok($$SELECT * FROM salesmgmt.convert_lead(3)$$, 'SM061', NULL, 'converting twice is refused');
SELECT throws_ok($$SELECT salesmgmt.assign('lead', 3)$$, 'SM061', NULL, 'a converted lead is not routed');
SELECT throws_ok($$UPDATE salesmgmt.lead SET status = 'working' WHERE lead_id = 3$$, 'SM060', NULL, 'a converted lead is final');
SELECT is((SELECT account_id FROM salesmgmt.convert_lead(2, 1001)), 1001::bigint, 'a lead converts into an existing account');

-- ---------------------------------------------------------------- events
SELECT salesmgmt.create_webhook('https://hooks.example.com/leads', ARRAY['lead.*']) \g /dev/null
INSERT INTO salesmgmt.lead (name, region, source) VALUES ('evented', 'EMEA', 'web'), ('pooled', 'EMEA', 'partner');
SELECT results_eq($$SELECT event_type, payload->'data'->>'via' FROM salesmgmt.webhook_event
                     WHERE subject_type = 'lead' ORDER BY event_type, subject_id$$,
                  $$VALUES ('lead.assigned', 'routing'), ('lead.assigned', 'routing'), ('lead.created', NULL), ('lead.created', NULL)$$,
                  'a routed insert emits lead.created and lead.assigned for each lead');
SELECT is((SELECT payload->'data'->'lead'->>'name' FROM salesmgmt.webhook_event
            WHERE event_type = 'lead.created' ORDER BY subject_id LIMIT 1), 'evented', 'lead.created carries the row');
UPDATE salesmgmt.lead SET owner_rep_id = 2 WHERE name = 'pooled';
UPDATE salesmgmt.lead SET assigned_at = now() - interval '30 days' WHERE name = 'pooled';
SELECT is(salesmgmt.reclaim_idle_leads(), 1, 'the claimed lead is reclaimed');
SELECT is((SELECT count(*)::int FROM salesmgmt.webhook_event WHERE event_type = 'lead.reclaimed'), 1, 'lead.reclaimed emitted');
SELECT ok((SELECT deal_id IS NOT NULL FROM salesmgmt.convert_lead((SELECT lead_id FROM salesmgmt.lead WHERE name = 'evented'), NULL, 1)),
          'the evented lead converts');
SELECT is((SELECT (payload->'data'->>'deal_id')::bigint FROM salesmgmt.webhook_event WHERE event_type = 'lead.converted'),
          (SELECT converted_deal_id FROM salesmgmt.lead WHERE name = 'evented'), 'lead.converted names the deal');
SELECT is(salesmgmt.assign('lead', (SELECT lead_id FROM salesmgmt.lead WHERE name = 'pooled')), NULL::bigint, 'assign sends it to the pool again');
SELECT is((SELECT count(*)::int FROM salesmgmt.webhook_event WHERE event_type = 'lead.assigned' AND payload->'data'->>'via' = 'assign'),
          1, 'lead.assigned emitted by assign');

-- ---------------------------------------------------------------- scoring
INSERT INTO salesmgmt.lead_score_rule (name, kind, condition, points, half_life_days) VALUES
    ('web', 'attribute', '{"source": "web"}', 10, NULL),
    ('calls', 'activity', '{"kind": "call"}', 8, 10);
INSERT INTO salesmgmt.activity (kind, lead_id, rep_id, occurred_at) VALUES ('call', 6, 2, now() - interval '10 days'), ('call', 6, 2, now());
SELECT throws_ok($$SELECT salesmgmt.score_leads(NULL)$$, '22004', NULL, 'score_leads: null time');
SELECT throws_ok($$INSERT INTO salesmgmt.lead_score_rule (name, kind, condition, points) VALUES ('x', 'activity', '{"source": "web"}', 1)$$,
                 '22023', NULL, 'an activity rule is validated against activity columns');
SELECT throws_ok($$INSERT INTO salesmgmt.lead_score_rule (name, points, half_life_days) VALUES ('x', 1, 5)$$,
                 '23514', NULL, 'a half-life is for activity rules');
CREATE TEMP TABLE lead_before_scoring AS
    SELECT lead_id, updated_at, (SELECT count(*) FROM salesmgmt.change_log) AS logged FROM salesmgmt.lead;
SELECT ok(salesmgmt.score_leads() > 0, 'score_leads scores open leads');
SELECT is((SELECT count(*) FROM salesmgmt.change_log), (SELECT max(logged) FROM lead_before_scoring),
          'scores are derived: their changes are not in the change log');
SELECT is((SELECT count(*)::int FROM salesmgmt.lead JOIN lead_before_scoring b USING (lead_id)
            WHERE lead.updated_at <> b.updated_at), 0, 'scoring is no edit: updated_at stays');
UPDATE salesmgmt.lead SET score = score + 1, company = 'Rescored Co' WHERE lead_id = 6;
SELECT is((SELECT changed_columns FROM salesmgmt.history_of('salesmgmt.lead', 6) ORDER BY change_id DESC LIMIT 1),
          ARRAY['company', 'updated_at'], 'an edit with a score logs the edit, without the score');
UPDATE salesmgmt.lead SET score = score - 1 WHERE lead_id = 6;
SELECT is((SELECT score FROM salesmgmt.lead WHERE lead_id = 6), 22.00, 'points: 10 for web, 8 + 4 for a call now and one a half-life ago');
SELECT is((SELECT score_explanation->1->>'activities' FROM salesmgmt.lead WHERE lead_id = 6), '2', 'the explanation names the rules and counts');
SELECT is(salesmgmt.score_leads(), 0, 'a second run changes nothing');
-- an email exactly three half-lives old is worth 1/8 point: 0.125 rounds
-- half away from zero, to 0.13 and -0.13 (as round(numeric, 2) does)
INSERT INTO salesmgmt.lead_score_rule (name, kind, condition, points, half_life_days) VALUES
    ('emails', 'activity', '{"kind": "email"}', 1, 1), ('unsubscribed', 'activity', '{"kind": "email"}', -1, 1);
INSERT INTO salesmgmt.activity (kind, lead_id, rep_id, occurred_at) VALUES ('email', 6, 2, now() - interval '3 days');
SELECT is(salesmgmt.score_leads(), 1, 'new rules rescore the lead they match');
SELECT is((SELECT array_agg(e->>'points' ORDER BY (e->>'rule_id')::bigint)
             FROM salesmgmt.lead, jsonb_array_elements(score_explanation) e WHERE lead_id = 6),
          ARRAY['10.00', '12.00', '0.13', '-0.13'], 'decayed points round half away from zero to the cent');

-- ---------------------------------------------------------------- learned score: errors
SELECT throws_ok($$SELECT salesmgmt.lead_conversion_probability(1)$$, 'SM065', NULL, 'no model yet');
SELECT throws_ok($$SELECT * FROM salesmgmt.train_lead_model(NULL)$$, '22004', NULL, 'train_lead_model: null');
SELECT throws_ok($$SELECT * FROM salesmgmt.train_lead_model(current_date + 1)$$, 'SM065', NULL, 'train_lead_model: nothing to learn from');
SELECT is(salesmgmt.lead_conversion_probability(NULL), NULL::double precision, 'lead_conversion_probability: null in, null out');

-- ---------------------------------------------------------------- a column a rule names is dropped
ALTER TABLE salesmgmt.lead ADD COLUMN tmp_tier integer;
INSERT INTO salesmgmt.assignment_rule (entity, position, condition, target_kind, target_id)
VALUES ('lead', 5, '{"tmp_tier": {">": 1}}', 'rep', 7);
INSERT INTO salesmgmt.lead (name, tmp_tier) VALUES ('tiered', 2);
SELECT is((SELECT owner_rep_id FROM salesmgmt.lead WHERE name = 'tiered'), 7::bigint, 'a rule on a new column routes');
ALTER TABLE salesmgmt.lead DROP COLUMN tmp_tier;
SELECT lives_ok($$INSERT INTO salesmgmt.lead (name) VALUES ('after drop')$$, 'a rule on a dropped column does not stop inserts');
SELECT is((SELECT owner_rep_id FROM salesmgmt.lead WHERE name = 'after drop'), NULL::bigint, 'and never matches');
DELETE FROM salesmgmt.assignment_rule WHERE position = 5 AND entity = 'lead';

-- ---------------------------------------------------------------- savepoints
CREATE TEMP TABLE before_sp AS SELECT turns FROM salesmgmt.assignment_rotation WHERE team_id = 2;
SAVEPOINT sp;
INSERT INTO salesmgmt.lead (name, region, source) VALUES ('sp lost', 'EMEA', 'web');
ROLLBACK TO SAVEPOINT sp;
INSERT INTO salesmgmt.lead (name, region, source) VALUES ('sp kept', 'EMEA', 'web'), ('sp next', 'EMEA', 'web');
SELECT is((SELECT turns FROM salesmgmt.assignment_rotation WHERE team_id = 2), (SELECT turns + 2 FROM before_sp),
          'a rolled-back routing gives its turn back');
SELECT results_eq($$SELECT owner_rep_id FROM salesmgmt.lead WHERE name IN ('sp kept', 'sp next') ORDER BY lead_id$$,
                  $$SELECT (ARRAY[2, 3, 4]::bigint[])[(turns + k) % 3 + 1] FROM before_sp, generate_series(0, 1) k ORDER BY k$$,
                  'the next routings take the turns in order');

SELECT * FROM finish();
ROLLBACK;

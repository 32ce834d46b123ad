SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SET salesmgmt.webhook_allow_private_networks = off;  -- the test relies on the default, whatever postgresql.conf says

-- A small organisation: one pipeline with open, won and lost stages.
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, email, team_id) VALUES
  (1, 'Ada', 'ada@example.com', 1), (2, 'Bob', 'bob@example.com', 1);
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) VALUES (1, 'Acme', 1);
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (1, 'New business', 'free');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
  (1, 1, 'Qualify', 1, 0.2, 'pipeline', 'open'), (2, 1, 'Propose', 2, 0.6, 'best_case', 'open'),
  (3, 1, 'Won', 3, 1, 'closed', 'won'), (4, 1, 'Lost', 4, 0, 'omitted', 'lost');
-- reopening a won deal is an explicit transition
INSERT INTO salesmgmt.stage_transition (pipeline_id, from_stage_id, to_stage_id) VALUES (1, 3, 1);

-- ---------------------------------------------------------------- signing
-- The test vector of the Standard Webhooks specification.
SELECT salesmgmt.webhook_sign('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
                              'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
-- a secret that is not whsec_ + base64 of 24..64 bytes
SELECT salesmgmt.webhook_sign('whsec_c2hvcnQ=', 'id', 1, 'x');
SELECT salesmgmt.webhook_sign('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'id', 1, 'x');
-- generated secrets: prefix, 32 bytes, different every time
SELECT s ~ '^whsec_[A-Za-z0-9+/]{43}=$' AS well_formed,
       length(decode(substr(s, 7), 'base64')) AS key_bytes
  FROM salesmgmt.webhook_generate_secret() s;
SELECT salesmgmt.webhook_generate_secret() <> salesmgmt.webhook_generate_secret() AS differ;
-- event ids are version 7 UUIDs that sort by time
SELECT substr(a::text, 15, 1) AS version, a < b AS ordered
  FROM (SELECT salesmgmt.webhook_new_event_id() a) x,
       LATERAL (SELECT pg_sleep(0.002), salesmgmt.webhook_new_event_id() b) y;

-- ---------------------------------------------------------- endpoints
-- no endpoint yet: deal changes write nothing
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
VALUES (1, 'Acme rollout', 1, 1, 1, 1, 50000);
SELECT count(*) AS events FROM salesmgmt.webhook_event;

-- bad URLs, event types and secrets are refused with the reason
SELECT salesmgmt.create_webhook('ftp://hooks.example.com/x');
SELECT salesmgmt.create_webhook('hooks.example.com/x');
SELECT salesmgmt.create_webhook('https://user:pw@hooks.example.com/x');
SELECT salesmgmt.create_webhook('https://hooks.example.com/x#frag');
SELECT salesmgmt.create_webhook('https://hooks.example.com/a b');
SELECT salesmgmt.create_webhook(NULL);
SELECT salesmgmt.create_webhook('https://hooks.example.com/x', '{}');
SELECT salesmgmt.create_webhook('https://hooks.example.com/x', '{deal.won,deal.exploded}');
SELECT salesmgmt.create_webhook('https://hooks.example.com/x', '{deal.won,NULL}');
SELECT salesmgmt.create_webhook('https://hooks.example.com/x', NULL, 'secret');
-- a literal loopback, private, link-local ... address is refused while
-- salesmgmt.webhook_allow_private_networks is off (names are checked on
-- the address connected to, by the worker)
SHOW salesmgmt.webhook_allow_private_networks;
\set VERBOSITY terse
SELECT salesmgmt.create_webhook('http://127.0.0.1:8080/hook');
SELECT salesmgmt.create_webhook('http://10.1.2.3/hook');
SELECT salesmgmt.create_webhook('http://172.20.0.1/hook');
SELECT salesmgmt.create_webhook('http://192.168.1.1/hook');
SELECT salesmgmt.create_webhook('http://169.254.169.254/latest/meta-data');
SELECT salesmgmt.create_webhook('http://100.64.0.1/hook');
SELECT salesmgmt.create_webhook('http://0.0.0.0/hook');
SELECT salesmgmt.create_webhook('http://224.0.0.1/hook');
SELECT salesmgmt.create_webhook('http://[::1]/hook');
SELECT salesmgmt.create_webhook('http://[fd00::1]/hook');
SELECT salesmgmt.create_webhook('http://[fe80::1]/hook');
SELECT salesmgmt.create_webhook('http://[::ffff:8.8.8.8]/hook');
SELECT salesmgmt.create_webhook('http://[64:ff9b::a00:1]/hook');
\set VERBOSITY default
SELECT count(*) AS endpoints FROM salesmgmt.webhook_endpoint;
-- (the refused inserts used up identity values)
SELECT setval(pg_get_serial_sequence('salesmgmt.webhook_endpoint', 'endpoint_id'), 1, false);

-- good endpoints: all events with a generated secret; won/lost only with
-- a given secret
SELECT endpoint_id, url, event_types, active, secret ~ '^whsec_' AS has_secret
  FROM salesmgmt.create_webhook('https://hooks.example.com/all', p_description => 'everything');
SELECT endpoint_id, url, event_types, secret
  FROM salesmgmt.create_webhook('https://93.184.216.34/closed', '{deal.won,deal.lost}',
                                'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
-- the same checks apply to plain INSERT and UPDATE
UPDATE salesmgmt.webhook_endpoint SET url = 'gopher://x' WHERE endpoint_id = 1;
INSERT INTO salesmgmt.webhook_endpoint (url, secret) VALUES ('https://x.example', 'whsec_!!');

-- ------------------------------------------------------------- events
-- one change, one event, of the most specific type
UPDATE salesmgmt.deal SET stage_id = 2 WHERE deal_id = 1;
UPDATE salesmgmt.deal SET amount = 60000, expected_close_date = '2030-01-31' WHERE deal_id = 1;
UPDATE salesmgmt.deal SET name = 'Acme rollout (phase 1)' WHERE deal_id = 1;   -- no event
UPDATE salesmgmt.deal SET owner_rep_id = 2 WHERE deal_id = 1;
UPDATE salesmgmt.deal SET stage_id = 3 WHERE deal_id = 1;
UPDATE salesmgmt.deal SET stage_id = 1 WHERE deal_id = 1;
UPDATE salesmgmt.deal SET stage_id = 4, lost_reason = 'budget' WHERE deal_id = 1;
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
VALUES (2, 'Acme support', 1, 1, 1, 1, 1000);
DELETE FROM salesmgmt.deal WHERE deal_id = 2;

SELECT deal_id, sequence, event_type,
       payload->>'type' = event_type AS type_in_body,
       payload->'data'->'deal'->>'stage_id' AS stage,
       payload->'data'->'deal'->>'amount' AS amount,
       (payload->'data'->'previous')::jsonb - 'stage_entered_at' - 'closed_at' AS previous,
       ARRAY(SELECT json_object_keys(payload->'data'->'previous')
              INTERSECT SELECT unnest('{stage_entered_at,closed_at}'::text[]) ORDER BY 1) AS previous_times,
       (payload->'data'->>'sequence')::bigint = sequence AS seq_in_body
  FROM salesmgmt.webhook_event ORDER BY deal_id, sequence;

-- one delivery per subscribed endpoint: the won/lost endpoint got two
SELECT e.event_type, array_agg(d.endpoint_id ORDER BY d.endpoint_id) AS endpoints,
       bool_and(d.state = 'pending' AND d.attempts = 0) AS all_pending
  FROM salesmgmt.webhook_event e JOIN salesmgmt.webhook_delivery d USING (event_id)
 GROUP BY e.deal_id, e.sequence, e.event_type ORDER BY e.deal_id, e.sequence;

-- the body is the deal row as JSON, numbers as numbers
SELECT json_typeof(payload->'data'->'deal'->'amount') AS amount_type,
       payload->'data'->'deal'->>'currency' AS currency,
       payload->'data'->'deal'->'extra' AS extra,
       payload->>'timestamp' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$' AS iso_timestamp
  FROM salesmgmt.webhook_event WHERE deal_id = 1 AND sequence = 1;

-- a rolled-back change writes nothing
BEGIN;
UPDATE salesmgmt.deal SET amount = 1 WHERE deal_id = 1;
SELECT count(*) AS events_inside FROM salesmgmt.webhook_event;
ROLLBACK;
SELECT count(*) AS events_after FROM salesmgmt.webhook_event;

-- a failing statement in a savepoint takes its events with it
BEGIN;
SAVEPOINT s;
UPDATE salesmgmt.deal SET amount = 2 WHERE deal_id = 1;
ROLLBACK TO SAVEPOINT s;
UPDATE salesmgmt.deal SET amount = 3 WHERE deal_id = 1;
COMMIT;
SELECT sequence, payload->'data'->'previous' AS previous
  FROM salesmgmt.webhook_event WHERE deal_id = 1 ORDER BY sequence DESC LIMIT 1;

-- ------------------------------------------- inactive endpoints hold deliveries
UPDATE salesmgmt.webhook_endpoint SET active = false WHERE endpoint_id = 1;
SELECT endpoint_id, active, disabled_reason, disabled_at IS NOT NULL AS has_time
  FROM salesmgmt.webhook_endpoint ORDER BY endpoint_id;
SELECT endpoint_id, count(*), bool_and(next_attempt_at = 'infinity') AS held
  FROM salesmgmt.webhook_delivery GROUP BY endpoint_id ORDER BY endpoint_id;
-- no new deliveries for it meanwhile
UPDATE salesmgmt.deal SET amount = 70000 WHERE deal_id = 1;
SELECT count(*) AS deliveries_of_inactive FROM salesmgmt.webhook_delivery WHERE endpoint_id = 1;
UPDATE salesmgmt.webhook_endpoint SET active = true WHERE endpoint_id = 1;
SELECT endpoint_id, active, disabled_reason FROM salesmgmt.webhook_endpoint WHERE endpoint_id = 1;
SELECT count(*) FILTER (WHERE next_attempt_at = 'infinity') AS still_held
  FROM salesmgmt.webhook_delivery WHERE endpoint_id = 1;

-- ---------------------------------------------------------------- claim
-- the worker's claim: due rows of active endpoints, oldest due first
-- (endpoint 1's were made due again when it was activated), marked in
-- flight
SELECT delivery_id, attempt, endpoint_id, url, secret ~ '^whsec_' AS secret,
       payload::json->>'type' AS type
  FROM salesmgmt._webhook_claim(2, '5 minutes') ORDER BY delivery_id;
SELECT state, count(*), bool_and(claimed_by = pg_backend_pid()) AS mine,
       bool_and(coalesce(lease_expires_at > now() + interval '4 minutes', false)) AS leased
  FROM salesmgmt.webhook_delivery GROUP BY state ORDER BY state;

-- ------------------------------------------------- retry, replay, ping
SELECT salesmgmt.webhook_retry(NULL);
SELECT salesmgmt.webhook_retry(999999);
\set VERBOSITY terse
SELECT salesmgmt.webhook_retry(5);
\set VERBOSITY default
-- a dead delivery is sent again with a fresh schedule
UPDATE salesmgmt.webhook_delivery SET state = 'dead', attempts = 10, retry_step = 9,
       last_status = 500, last_error = 'HTTP 500', claimed_by = NULL WHERE delivery_id = 2;
SELECT delivery_id, state, attempts, retry_step, next_attempt_at <= now() AS due_now
  FROM salesmgmt.webhook_retry(2);
UPDATE salesmgmt.webhook_delivery SET state = 'delivered', delivered_at = now(),
       last_status = 200, last_error = NULL, claimed_by = NULL WHERE delivery_id = 3;
\set VERBOSITY terse
SELECT salesmgmt.webhook_retry(3);
\set VERBOSITY default
-- replay: a new delivery of the same event, to one endpoint or to all
-- that had it
SELECT delivery_id > 3 AS new_row, endpoint_id, state
  FROM salesmgmt.webhook_replay((SELECT event_id FROM salesmgmt.webhook_delivery WHERE delivery_id = 3));
SELECT endpoint_id, state
  FROM salesmgmt.webhook_replay((SELECT event_id FROM salesmgmt.webhook_event WHERE deal_id = 1 AND sequence = 5), 2);
SELECT salesmgmt.webhook_replay('00000000-0000-0000-0000-000000000000');
SELECT salesmgmt.webhook_replay((SELECT event_id FROM salesmgmt.webhook_event LIMIT 1), 42);
-- ping: a webhook.ping event to one endpoint
SELECT endpoint_id, state FROM salesmgmt.webhook_ping(2);
SELECT event_type, deal_id, sequence, payload->'data' AS data
  FROM salesmgmt.webhook_event WHERE event_type = 'webhook.ping';
SELECT salesmgmt.webhook_ping(42);
UPDATE salesmgmt.webhook_endpoint SET active = false, disabled_reason = 'maintenance' WHERE endpoint_id = 2;
SELECT salesmgmt.webhook_ping(2);
UPDATE salesmgmt.webhook_endpoint SET active = true WHERE endpoint_id = 2;

-- --------------------------------------------------------------- stats
SELECT endpoint_id, url, active, pending, delivered, failed, dead, attempts, success_rate
  FROM salesmgmt.webhook_stats;

-- ------------------------------------------------ deleting cascades
DELETE FROM salesmgmt.webhook_endpoint WHERE endpoint_id = 2;
SELECT count(*) AS orphan_deliveries FROM salesmgmt.webhook_delivery WHERE endpoint_id = 2;
DELETE FROM salesmgmt.webhook_event WHERE event_type = 'webhook.ping';
SELECT count(*) AS orphans FROM salesmgmt.webhook_delivery d
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.webhook_event e WHERE e.event_id = d.event_id);

-- ------------------------------------------------------------ privileges
-- nothing of it is granted to PUBLIC
SELECT c.relname, c.relacl IS NULL OR NOT aclcontains(c.relacl, makeaclitem(0, c.relowner, 'SELECT', false)) AS not_public
  FROM pg_class c
 WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relname LIKE 'webhook%' AND c.relkind IN ('r', 'v')
 ORDER BY 1;
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'salesmgmt'::regnamespace
   AND p.proname IN ('create_webhook', 'webhook_retry', 'webhook_replay', 'webhook_ping',
                     'webhook_worker_start', '_webhook_claim', 'webhook_sign', 'webhook_generate_secret')
 ORDER BY 1;

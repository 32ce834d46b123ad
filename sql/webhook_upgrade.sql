-- The webhook outbox across ALTER EXTENSION salesmgmt UPDATE from 0.1.0:
-- queued deal events keep their deliveries and gain their subject.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt VERSION '0.1.0';
RESET client_min_messages;
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, email, team_id) VALUES (1, 'Ada', 'ada@example.com', 1);
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) VALUES (1, 'Acme', 1);
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (1, 'New business', 'free');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
  (1, 1, 'Qualify', 1, 0.2, 'pipeline', 'open'), (3, 1, 'Won', 3, 1, 'closed', 'won');
SELECT endpoint_id FROM salesmgmt.create_webhook('https://hooks.example.com/a', '{deal.won,deal.created}');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
VALUES (1, 'Acme rollout', 1, 1, 1, 1, 50000);
SELECT state FROM salesmgmt.webhook_ping(1);

ALTER EXTENSION salesmgmt UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'salesmgmt';
SELECT event_type, deal_id, sequence, subject_type, subject_id,
       (SELECT count(*) FROM salesmgmt.webhook_delivery d WHERE d.event_id = e.event_id) AS deliveries
  FROM salesmgmt.webhook_event e ORDER BY occurred_at, event_type;
-- the new registry and subscriptions work on the upgraded database
SELECT count(*) AS deal_types FROM salesmgmt.webhook_event_type WHERE builtin AND event_type LIKE 'deal.%';
UPDATE salesmgmt.deal SET stage_id = 3 WHERE deal_id = 1;
UPDATE salesmgmt.webhook_endpoint SET event_types = '{deal.*}' WHERE endpoint_id = 1;
UPDATE salesmgmt.webhook_endpoint SET event_types = '{deal.nope}' WHERE endpoint_id = 1;
SELECT event_type, sequence, subject_type, subject_id FROM salesmgmt.webhook_event
 WHERE deal_id = 1 ORDER BY sequence;

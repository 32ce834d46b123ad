-- salesmgmt.emit_event, the event type registry and wildcard subscriptions.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;

-- ------------------------------------------------------------ the registry
-- (the types of the concerns of 0.1.0; newer concerns add theirs)
SELECT event_type, concern, builtin, data_schema->'required' AS required
  FROM salesmgmt.webhook_event_type
 WHERE concern IN ('pipeline', 'webhook', 'commission', 'kpi') ORDER BY event_type;
-- names are dotted lower-case words
INSERT INTO salesmgmt.webhook_event_type (event_type, concern, description) VALUES ('nodot', 'app', 'x');
INSERT INTO salesmgmt.webhook_event_type (event_type, concern, description) VALUES ('app.*', 'app', 'x');
INSERT INTO salesmgmt.webhook_event_type (event_type, concern, description) VALUES ('App.Thing', 'app', 'x');
INSERT INTO salesmgmt.webhook_event_type (event_type, concern, description, data_schema) VALUES ('app.thing', 'app', 'x', '[]');
-- a user's own type: not builtin, so pg_dump keeps it
INSERT INTO salesmgmt.webhook_event_type (event_type, concern, description, data_schema) VALUES
  ('app.widget_made', 'app', 'A widget was made.', '{"type": "object", "required": ["name"]}'),
  ('app.widget_sold', 'app', 'A widget was sold.', '{"type": "object"}')
RETURNING event_type, builtin;

-- ------------------------------------------------------------ bad input
SELECT salesmgmt.emit_event(NULL, NULL, NULL, '{}');
SELECT salesmgmt.emit_event('app.widget_made', NULL, NULL, NULL);
SELECT salesmgmt.emit_event('app.widget_made', NULL, NULL, '[1]');
SELECT salesmgmt.emit_event('app.widget_made', 'widget', NULL, '{}');
SELECT salesmgmt.emit_event('app.widget_made', NULL, 7, '{}');
SELECT salesmgmt.emit_event('app.widget_made', 'Widget; drop', 7, '{}');
SELECT salesmgmt.emit_event('app.unknown', 'widget', 7, '{}');
SELECT salesmgmt.emit_event('deal.won', 'deal', 7, '{}');
SELECT salesmgmt.emit_event('webhook.ping', NULL, NULL, '{}');
-- nobody listens: nothing written, null returned
SELECT salesmgmt.emit_event('app.widget_made', 'widget', 7, '{"name": "w"}') IS NULL AS nothing;
SELECT count(*) AS events FROM salesmgmt.webhook_event;

-- ------------------------------------------------------------ subscriptions
SELECT salesmgmt.create_webhook('https://hooks.example.com/x', '{app.nothing}');
SELECT salesmgmt.create_webhook('https://hooks.example.com/x', '{nothing.*}');
SELECT salesmgmt.create_webhook('https://hooks.example.com/x', '{app.widget_made,deal.exploded}');
SELECT salesmgmt.create_webhook('https://hooks.example.com/x', '{app}');
SELECT e.endpoint_id, e.event_types
  FROM (VALUES (1, NULL), (2, '{*}'), (3, '{deal.*}'), (4, '{app.*}'),
               (5, '{app.widget_sold,deal.won}'), (6, '{*}')) AS v (n, t),
       LATERAL salesmgmt.create_webhook('https://hooks.example.com/' || n, t::text[]) e
 ORDER BY endpoint_id;
-- endpoints are numbered from here on by the last digit of their URL
UPDATE salesmgmt.webhook_endpoint SET active = false WHERE url LIKE '%/6';
UPDATE salesmgmt.webhook_endpoint SET event_types = '{app.nope}' WHERE url LIKE '%/5';
-- a cap on requests in flight is positive
\set VERBOSITY terse
UPDATE salesmgmt.webhook_endpoint SET max_in_flight = 0 WHERE url LIKE '%/1';
\set VERBOSITY default
UPDATE salesmgmt.webhook_endpoint SET max_in_flight = 4 WHERE url LIKE '%/1' RETURNING max_in_flight;
-- the SQL rule and the C rule agree
SELECT p, salesmgmt._webhook_subscribes(p::text[], 'app.widget_made') AS made
  FROM (VALUES (NULL), ('{*}'), ('{app.*}'), ('{ap.*}'), ('{app.widget_made}'), ('{app.widget}'),
               ('{deal.*,app.widget_made}'), ('{app.widget_made.*}')) AS v (p);

-- ------------------------------------------------------------ emitting
BEGIN;
SELECT salesmgmt.emit_event('app.widget_made', 'widget', 7, '{"name": "w7"}') AS ev \gset
SELECT event_type, subject_type, subject_id, deal_id, sequence,
       payload::jsonb - 'timestamp' AS payload,
       (payload::jsonb->>'timestamp')::timestamptz = occurred_at AS stamped
  FROM salesmgmt.webhook_event WHERE event_id = :'ev';
SELECT json_object_keys(payload) FROM salesmgmt.webhook_event WHERE event_id = :'ev';
SELECT right(e.url, 1) AS endpoint, d.state, d.attempts
  FROM salesmgmt.webhook_delivery d JOIN salesmgmt.webhook_endpoint e USING (endpoint_id)
 WHERE d.event_id = :'ev' ORDER BY 1;
ROLLBACK;
-- a rolled-back transaction sends nothing
SELECT count(*) AS events, (SELECT count(*) FROM salesmgmt.webhook_delivery) AS deliveries
  FROM salesmgmt.webhook_event;
SELECT salesmgmt.emit_event('app.widget_sold', NULL, NULL, '{}') IS NOT NULL AS written;
SELECT e.event_type, e.subject_type, array_agg(right(p.url, 1) ORDER BY p.url) AS endpoints
  FROM salesmgmt.webhook_event e JOIN salesmgmt.webhook_delivery d USING (event_id)
  JOIN salesmgmt.webhook_endpoint p ON p.endpoint_id = d.endpoint_id
 GROUP BY 1, 2;
-- a failed call leaves the outbox as it was
SELECT salesmgmt.emit_event('app.widget_sold', 'widget', NULL, '{}');
SELECT count(*) AS events FROM salesmgmt.webhook_event;

-- deal events reach "deal.*", "*" and "deal.won" subscribers through the C trigger
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, email, team_id) VALUES (1, 'Ada', 'ada@example.com', 1);
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) VALUES (1, 'Acme', 1);
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (1, 'New business', 'free');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
  (1, 1, 'Qualify', 1, 0.2, 'pipeline', 'open'), (3, 1, 'Won', 3, 1, 'closed', 'won');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
VALUES (1, 'Acme rollout', 1, 1, 1, 1, 50000);
UPDATE salesmgmt.deal SET stage_id = 3 WHERE deal_id = 1;
SELECT e.event_type, e.subject_type, e.subject_id, e.deal_id, e.sequence,
       array_agg(right(p.url, 1) ORDER BY p.url) AS endpoints
  FROM salesmgmt.webhook_event e JOIN salesmgmt.webhook_delivery d USING (event_id)
  JOIN salesmgmt.webhook_endpoint p ON p.endpoint_id = d.endpoint_id
 WHERE e.deal_id IS NOT NULL
 GROUP BY 1, 2, 3, 4, 5 ORDER BY e.sequence;
-- the outbox's own rules: a deal event names its deal as subject
\set VERBOSITY terse
INSERT INTO salesmgmt.webhook_event (event_type, deal_id, sequence, payload, subject_type, subject_id)
VALUES ('deal.won', 1, 9, '{}', 'widget', 1);
INSERT INTO salesmgmt.webhook_event (event_type, payload, subject_type) VALUES ('app.widget_sold', '{}', 'widget');
\set VERBOSITY default

-- ------------------------------------------------ the other concerns' events
-- a finalized commission period, scorecards computed: through their own functions
SELECT count(*) AS reps FROM salesmgmt.run_commissions('2030-01-01', '2030-03-31');
SELECT salesmgmt.finalize_commissions('2030-01-01', '2030-03-31') IS NOT NULL AS finalized;
-- compute_scorecards writes a scheme's period with one INSERT statement; one
-- statement inserting scorecards of two periods makes one event per period
INSERT INTO salesmgmt.kpi_scheme (scheme_id, name) VALUES (1, 'Scheme');
INSERT INTO salesmgmt.scorecard (scheme_id, rep_id, period_start, period_end, score, coverage)
VALUES (1, 1, '2030-04-01', '2030-04-30', 50, 100), (1, 1, '2030-05-01', '2030-05-31', NULL, 0);
SELECT e.event_type, e.subject_type, e.subject_id,
       (e.payload::jsonb->'data') - 'finalized_at' - 'computed_at' - 'finalized_by' AS data,
       array_agg(right(p.url, 1) ORDER BY p.url) AS endpoints
  FROM salesmgmt.webhook_event e JOIN salesmgmt.webhook_delivery d USING (event_id)
  JOIN salesmgmt.webhook_endpoint p ON p.endpoint_id = d.endpoint_id
 WHERE e.event_type IN ('commission.period_finalized', 'scorecard.computed')
 GROUP BY e.event_id ORDER BY 1, e.payload::jsonb -> 'data' ->> 'period_start';

-- ------------------------------------------------ docs list every type
-- docs/webhooks.md has one row per registered type, exactly as generated
-- here: type, concern, description, JSON Schema of data
\getenv abs_srcdir PG_ABS_SRCDIR
\set docs_path :abs_srcdir '/docs/webhooks.md'
CREATE TEMP VIEW doc_row AS
SELECT t.event_type, format('| `%s` | %s | %s | `%s` |', t.event_type, t.concern,
                            replace(t.description, '|', '\|'), t.data_schema::text) AS line
  FROM salesmgmt.webhook_event_type t WHERE t.builtin;
SELECT r.event_type AS not_in_docs
  FROM doc_row r, pg_read_file(:'docs_path') AS doc
 WHERE strpos(doc, r.line) = 0 ORDER BY 1;

-- ------------------------------------------------ from a user's own trigger
CREATE TABLE public.widget (widget_id bigint PRIMARY KEY, name text NOT NULL);
-- (the trigger function runs as its owner: reps may not call emit_event)
CREATE FUNCTION public.widget_made() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM salesmgmt.emit_event('app.widget_made', 'widget', NEW.widget_id,
                                 jsonb_build_object('name', NEW.name));
    RETURN NULL;
END $$;
CREATE TRIGGER widget_made AFTER INSERT ON public.widget FOR EACH ROW EXECUTE FUNCTION public.widget_made();
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_webhook_events_rep;
RESET client_min_messages;
CREATE ROLE regress_webhook_events_rep IN ROLE salesmgmt_rep;
GRANT INSERT ON public.widget TO regress_webhook_events_rep;
SET ROLE regress_webhook_events_rep;
INSERT INTO public.widget VALUES (1, 'sprocket');
-- but cannot forge an event by calling emit_event itself
SELECT salesmgmt.emit_event('app.widget_made', 'widget', 2, '{"name": "forged"}');
-- the rep reads the types but not the outbox
SELECT count(*) > 0 AS reads_types FROM salesmgmt.webhook_event_type;
SELECT count(*) FROM salesmgmt.webhook_event;
INSERT INTO salesmgmt.webhook_event_type (event_type, concern, description) VALUES ('app.rep_type', 'app', 'x');
RESET ROLE;
SELECT e.payload::jsonb->'data' AS data, array_agg(right(p.url, 1) ORDER BY p.url) AS endpoints
  FROM salesmgmt.webhook_event e JOIN salesmgmt.webhook_delivery d USING (event_id)
  JOIN salesmgmt.webhook_endpoint p ON p.endpoint_id = d.endpoint_id
 WHERE e.subject_type = 'widget' GROUP BY 1;
-- a role outside salesmgmt cannot emit
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_webhook_events_other;
RESET client_min_messages;
CREATE ROLE regress_webhook_events_other;
SET ROLE regress_webhook_events_other;
SELECT salesmgmt.emit_event('app.widget_made', NULL, NULL, '{}');
RESET ROLE;

DROP TABLE public.widget;
DROP FUNCTION public.widget_made();
DROP OWNED BY regress_webhook_events_rep;
DROP ROLE regress_webhook_events_rep;
DROP ROLE regress_webhook_events_other;

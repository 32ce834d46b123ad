-- Tour, part 6: webhooks (data analysis and feedback pillar: push what
-- happens to deals to the systems that react to it).
--
-- Starts a small local receiver (scripts/demo-webhook-receiver, found
-- through $SM_ROOT or the current folder) on 127.0.0.1:18765, subscribes
-- it, changes a few deals and shows the signed deliveries arriving.  The
-- receiver, the endpoint and the worker started here are removed at the
-- end.
\pset footer off
\echo
\echo '================ Webhooks: deal events pushed to a receiver ================'
\set recv_port 18765
\set recv_secret 'whsec_ZGVtby1zZWNyZXQtZm9yLXRoZS10b3VyLW9ubHk='
\set recv_out '/tmp/salesmgmt-demo-webhook.out'
\set recv_pid '/tmp/salesmgmt-demo-webhook.pid'
\setenv DEMO_RECV_PORT :recv_port
\setenv DEMO_RECV_SECRET :recv_secret
\setenv DEMO_RECV_OUT :recv_out
\setenv DEMO_RECV_PID :recv_pid
\! "${SM_ROOT:-.}/scripts/demo-webhook-receiver" --port "$DEMO_RECV_PORT" --secret "$DEMO_RECV_SECRET" > "$DEMO_RECV_OUT" 2>&1 & echo $! > "$DEMO_RECV_PID"; sleep 1

-- The receiver is on the loopback interface: allow private networks for
-- this database (superuser only), then (re)start its delivery worker so
-- it reads the setting.
SET salesmgmt.webhook_allow_private_networks = on;
SELECT format('ALTER DATABASE %I SET salesmgmt.webhook_allow_private_networks = on', current_database()) \gexec
SELECT count(pg_terminate_backend(pid)) AS old_workers_stopped FROM pg_stat_activity
 WHERE backend_type = 'salesmgmt webhook worker' AND datname = current_database() \gset
SELECT pg_sleep(0.5) \gset
SELECT salesmgmt.webhook_worker_start() AS demo_worker_pid \gset

\echo
\echo '-- An endpoint for won, lost and updated deals (the secret signs every delivery)'
SELECT endpoint_id, url, event_types, description
  FROM salesmgmt.create_webhook('http://127.0.0.1:' || :'recv_port' || '/crm-events',
                                ARRAY['deal.won', 'deal.lost', 'deal.updated'],
                                :'recv_secret', 'demo receiver') \gset demo_
SELECT :demo_endpoint_id AS endpoint_id, :'demo_url' AS url, :'demo_event_types' AS event_types;

\echo
\echo '-- Three changes, each committed on its own: a bigger amount, a later close date, a win'
UPDATE salesmgmt.deal SET amount = amount + 5000
 WHERE deal_id = (SELECT min(deal_id) FROM salesmgmt.deal WHERE closed_at IS NULL);
UPDATE salesmgmt.deal SET expected_close_date = expected_close_date + 30
 WHERE deal_id = (SELECT min(deal_id) + 1 FROM salesmgmt.deal WHERE closed_at IS NULL);
UPDATE salesmgmt.deal d SET stage_id = s_won.stage_id
  FROM salesmgmt.stage s_now, salesmgmt.stage s_won
 WHERE d.deal_id = (SELECT min(d2.deal_id) FROM salesmgmt.deal d2 JOIN salesmgmt.stage s USING (stage_id)
                     WHERE s.pipeline_id = 1 AND s.outcome = 'open'
                       AND s.position = (SELECT max(position) FROM salesmgmt.stage
                                          WHERE pipeline_id = 1 AND outcome = 'open'))
   AND s_now.stage_id = d.stage_id
   AND s_won.pipeline_id = s_now.pipeline_id AND s_won.outcome = 'won';
SELECT pg_sleep(1.5) \gset

\echo
\echo '-- The outbox: one event per change, delivered by the background worker'
SELECT e.sequence, e.event_type, e.deal_id, d.state, d.last_status AS http, d.attempts,
       round(extract(epoch FROM d.delivered_at - e.occurred_at) * 1000) AS ms_after_change
  FROM salesmgmt.webhook_delivery d JOIN salesmgmt.webhook_event e USING (event_id)
 WHERE d.endpoint_id = :demo_endpoint_id ORDER BY d.delivery_id;

\echo
\echo '-- What the receiver logged (it verified each Standard Webhooks signature itself)'
\! cat "$DEMO_RECV_OUT" | cut -c1-120

\echo
\echo '-- The body of the win, as sent and signed'
SELECT jsonb_pretty(jsonb_build_object('type', payload->'type', 'data',
           jsonb_build_object('deal', (payload->'data'->'deal')::jsonb - 'extra',
                              'previous', payload->'data'->'previous',
                              'sequence', payload->'data'->'sequence'))) AS body
  FROM salesmgmt.webhook_event WHERE event_type = 'deal.won' ORDER BY occurred_at DESC LIMIT 1;

\echo
\echo '-- Every event type has a JSON Schema of its data; other concerns and your own tables emit through emit_event'
SELECT event_type, concern FROM salesmgmt.webhook_event_type ORDER BY concern, event_type;
INSERT INTO salesmgmt.webhook_event_type (event_type, concern, description)
VALUES ('demo.tour_reached_webhooks', 'demo', 'The demo tour reached its webhook part.');
UPDATE salesmgmt.webhook_endpoint SET event_types = event_types || ARRAY['demo.*']
 WHERE endpoint_id = :demo_endpoint_id;
SELECT salesmgmt.emit_event('demo.tour_reached_webhooks', NULL, NULL, '{"part": 6}') IS NOT NULL AS emitted;
SELECT pg_sleep(1) \gset
SELECT e.event_type, e.payload::jsonb->'data' AS data, d.state, d.last_status AS http
  FROM salesmgmt.webhook_delivery d JOIN salesmgmt.webhook_event e USING (event_id)
 WHERE d.endpoint_id = :demo_endpoint_id AND e.event_type LIKE 'demo.%';

\echo
\echo '-- Per-endpoint statistics'
SELECT endpoint_id, pending, delivered, failed, dead, success_rate, p50_latency_ms, p99_latency_ms
  FROM salesmgmt.webhook_stats WHERE endpoint_id = :demo_endpoint_id;

-- clean up: endpoint (and its deliveries), setting, worker, receiver
DELETE FROM salesmgmt.webhook_endpoint WHERE endpoint_id = :demo_endpoint_id;
DELETE FROM salesmgmt.webhook_event WHERE event_type LIKE 'demo.%';
DELETE FROM salesmgmt.webhook_event_type WHERE event_type LIKE 'demo.%';
SELECT format('ALTER DATABASE %I RESET salesmgmt.webhook_allow_private_networks', current_database()) \gexec
SELECT pg_terminate_backend(:demo_worker_pid) AS demo_worker_stopped \gset
\! kill "$(cat "$DEMO_RECV_PID")" 2>/dev/null; rm -f "$DEMO_RECV_PID" "$DEMO_RECV_OUT"

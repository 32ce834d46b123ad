-- webhook: 0.1.0 to 0.2.0 changes of the tables 0.1.0 created (the new
-- objects are in src/webhook_events.sql).  Same shape as src/webhook.sql.

-- Events of every concern, not only deals: a subject (kind and id of the
-- row), the type list moves to salesmgmt.webhook_event_type.
ALTER TABLE salesmgmt.webhook_event
    ADD COLUMN subject_type text,
    ADD COLUMN subject_id bigint;
UPDATE salesmgmt.webhook_event SET subject_type = 'deal', subject_id = deal_id WHERE deal_id IS NOT NULL;
ALTER TABLE salesmgmt.webhook_event
    DROP CONSTRAINT webhook_event_type_valid,
    DROP CONSTRAINT webhook_event_deal_or_ping,
    ADD CONSTRAINT webhook_event_subject
        CHECK ((deal_id IS NULL) = (sequence IS NULL)
               AND (subject_type IS NULL) = (subject_id IS NULL)
               AND (deal_id IS NULL OR (subject_type = 'deal' AND subject_id = deal_id)));
COMMENT ON TABLE salesmgmt.webhook_event IS 'Events written in the changing transaction (only when an active endpoint subscribes to the type): deal events by the deal trigger, the other concerns'' and users'' events by salesmgmt.emit_event, and pings; payload is the exact body that is sent and signed.';
COMMENT ON COLUMN salesmgmt.webhook_event.event_type IS 'Type of the event, registered in salesmgmt.webhook_event_type (deal.won, commission.period_finalized, webhook.ping, ...).';
COMMENT ON COLUMN salesmgmt.webhook_event.deal_id IS 'Deal of a deal event written by the deal trigger (the event stays after the deal is deleted); null for other events.';
COMMENT ON COLUMN salesmgmt.webhook_event.payload IS 'JSON body sent to the endpoints: {"type", "timestamp", "data"}; a deal event''s data is {"deal", "previous", "sequence"}.';
COMMENT ON COLUMN salesmgmt.webhook_event.subject_type IS 'Kind of row the event is about (deal, commission_period, quote, ...); null for events about no row, such as pings.';
COMMENT ON COLUMN salesmgmt.webhook_event.subject_id IS 'Id of the row the event is about; null with subject_type.';

COMMENT ON COLUMN salesmgmt.webhook_endpoint.event_types IS 'Event types the endpoint receives: types of salesmgmt.webhook_event_type, wildcards such as "deal.*", or "*"; null receives all of them.';

-- A cap on the requests in flight per endpoint.
ALTER TABLE salesmgmt.webhook_endpoint
    ADD COLUMN max_in_flight integer
        CONSTRAINT webhook_endpoint_max_in_flight_positive CHECK (max_in_flight > 0);
COMMENT ON COLUMN salesmgmt.webhook_endpoint.max_in_flight IS 'Most requests the worker has in flight to this endpoint at once, so that one slow receiver cannot take every connection; null: up to salesmgmt.webhook_concurrency.';

-- The claim finds every row through an index: the 0.1.0 one joined the
-- whole event table.
CREATE OR REPLACE FUNCTION salesmgmt._webhook_claim(p_limit integer, p_lease interval)
RETURNS TABLE (delivery_id bigint, attempt integer, retry_step integer, endpoint_id bigint,
               event_id uuid, url text, secret text, payload text)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE salesmgmt.webhook_delivery d
       SET state = 'in_flight', attempts = d.attempts + 1,
           next_attempt_at = now() + p_lease, claimed_by = pg_backend_pid()
     WHERE d.delivery_id = ANY (ARRAY(
               SELECT q.delivery_id
                 FROM salesmgmt.webhook_delivery q
                WHERE q.state IN ('pending', 'failed') AND q.next_attempt_at <= now()
                  AND EXISTS (SELECT 1 FROM salesmgmt.webhook_endpoint e
                               WHERE e.endpoint_id = q.endpoint_id AND e.active)
                ORDER BY q.next_attempt_at
                LIMIT p_limit
                  FOR UPDATE OF q SKIP LOCKED))
    RETURNING d.delivery_id, d.attempts, d.retry_step, d.endpoint_id, d.event_id,
              (SELECT ep.url FROM salesmgmt.webhook_endpoint ep WHERE ep.endpoint_id = d.endpoint_id),
              (SELECT ep.secret FROM salesmgmt.webhook_endpoint ep WHERE ep.endpoint_id = d.endpoint_id),
              (SELECT ev.payload::text FROM salesmgmt.webhook_event ev WHERE ev.event_id = d.event_id)
$$;

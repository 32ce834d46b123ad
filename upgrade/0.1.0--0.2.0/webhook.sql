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

-- Claims as HOT updates: the lease moves out of next_attempt_at into a
-- column of its own, the queue index no longer depends on the state, the
-- pages keep room for the claimed version (see src/webhook.sql).
ALTER TABLE salesmgmt.webhook_delivery ADD COLUMN lease_expires_at timestamptz;
ALTER TABLE salesmgmt.webhook_delivery SET (fillfactor = 50);
UPDATE salesmgmt.webhook_delivery
   SET lease_expires_at = next_attempt_at, next_attempt_at = now()
 WHERE state = 'in_flight';
UPDATE salesmgmt.webhook_delivery SET next_attempt_at = 'infinity' WHERE state = 'dead';
DROP INDEX salesmgmt.webhook_delivery_queue;
CREATE INDEX webhook_delivery_queue ON salesmgmt.webhook_delivery (next_attempt_at)
    WHERE delivered_at IS NULL;
COMMENT ON COLUMN salesmgmt.webhook_delivery.lease_expires_at IS 'in_flight: when the worker''s lease expires and the delivery is sent back to pending; null otherwise.';
COMMENT ON COLUMN salesmgmt.webhook_delivery.next_attempt_at IS 'pending/failed: when it is due (infinity while the endpoint is inactive); in_flight: when it was due (the lease is in lease_expires_at); dead: infinity.';
COMMENT ON COLUMN salesmgmt.webhook_delivery.state IS 'pending (not tried yet, or sent back after a worker stopped), in_flight (claimed by a worker, lease until lease_expires_at), delivered (2xx), failed (will retry at next_attempt_at), dead (retries exhausted or 410 Gone; salesmgmt.webhook_retry sends it again).';

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
           lease_expires_at = now() + p_lease, claimed_by = pg_backend_pid()
     WHERE d.delivery_id = ANY (ARRAY(
               SELECT q.delivery_id
                 FROM salesmgmt.webhook_delivery q
                WHERE q.delivered_at IS NULL AND q.next_attempt_at <= now()
                  AND q.state IN ('pending', 'failed')
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

-- The lease is in lease_expires_at.
CREATE OR REPLACE FUNCTION salesmgmt.webhook_retry(p_delivery_id bigint)
RETURNS salesmgmt.webhook_delivery
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v salesmgmt.webhook_delivery;
BEGIN
    IF p_delivery_id IS NULL THEN
        RAISE EXCEPTION 'delivery id must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO v FROM salesmgmt.webhook_delivery WHERE delivery_id = p_delivery_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'webhook delivery % does not exist', p_delivery_id
            USING ERRCODE = '42704', HINT = 'Find deliveries in salesmgmt.webhook_delivery.';
    END IF;
    IF v.state = 'delivered' THEN
        RAISE EXCEPTION 'webhook delivery % was already delivered', p_delivery_id
            USING ERRCODE = 'SM040',
                  DETAIL = format('The receiver answered %s at %s.', v.last_status, v.delivered_at),
                  HINT = format('To send the event again, use salesmgmt.webhook_replay(%L, %s).', v.event_id, v.endpoint_id);
    ELSIF v.state = 'in_flight' THEN
        RAISE EXCEPTION 'webhook delivery % is being sent right now', p_delivery_id
            USING ERRCODE = 'SM040',
                  DETAIL = format('Worker process %s holds it until %s.', v.claimed_by, v.lease_expires_at),
                  HINT = 'Wait for the outcome; the worker records it in a moment.';
    END IF;
    UPDATE salesmgmt.webhook_delivery
       SET state = 'pending', retry_step = 0,
           next_attempt_at = CASE WHEN (SELECT active FROM salesmgmt.webhook_endpoint e
                                         WHERE e.endpoint_id = v.endpoint_id)
                                  THEN now() ELSE 'infinity' END
     WHERE delivery_id = p_delivery_id
    RETURNING * INTO v;
    PERFORM salesmgmt._webhook_wake();
    RETURN v;
END
$$;

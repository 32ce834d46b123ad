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

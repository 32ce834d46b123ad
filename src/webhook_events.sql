-- webhook_events.sql: the one way every concern (and users' own triggers)
-- emits a webhook event, and the registry of event types.
--
--   * salesmgmt.webhook_event_type: every event type, the concern that
--     emits it, a description and a JSON Schema of its "data";
--   * salesmgmt.emit_event(type, subject_type, subject_id, data): writes
--     the event and one delivery per active endpoint subscribed to the
--     type into the outbox, in the current transaction;
--   * subscriptions (webhook_endpoint.event_types) name registered types
--     or wildcards: "deal.*" (every type starting with "deal."), "*".
--
-- The deal events keep their C fast path (the deal trigger, webhook.c);
-- they are registered here like every other type.  Comes after
-- security_rls.sql in the install script and whole in the upgrade from
-- 0.1.0 (it only adds objects).

-- True while an extension script runs (CREATE/ALTER EXTENSION): the event
-- types registered by the extension's own scripts are marked builtin and
-- left out of dumps, which keep only the types users registered.
CREATE FUNCTION salesmgmt._in_extension_script() RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_webhook_in_extension_script';
COMMENT ON FUNCTION salesmgmt._in_extension_script() IS 'Internal: true while CREATE EXTENSION or ALTER EXTENSION runs a salesmgmt script.';

CREATE TABLE salesmgmt.webhook_event_type (
    event_type  text PRIMARY KEY
                CONSTRAINT webhook_event_type_name
                CHECK (event_type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    concern     text NOT NULL
                CONSTRAINT webhook_event_type_concern_name CHECK (concern ~ '^[a-z][a-z0-9_]*$'),
    description text NOT NULL,
    data_schema jsonb NOT NULL DEFAULT '{"type": "object"}'
                CONSTRAINT webhook_event_type_schema_object CHECK (jsonb_typeof(data_schema) = 'object'),
    builtin     boolean NOT NULL DEFAULT salesmgmt._in_extension_script()
);
COMMENT ON TABLE salesmgmt.webhook_event_type IS 'Every webhook event type: the concern that emits it, what it means and a JSON Schema of its "data". salesmgmt.emit_event refuses a type not listed here, and endpoints may subscribe only to listed types (or wildcards). Users register their own types with an INSERT (administrators).';
COMMENT ON COLUMN salesmgmt.webhook_event_type.event_type IS 'Name of the type, dotted lower-case words such as "deal.won" or "commission.period_finalized"; the part before the last dot groups types for wildcard subscriptions ("deal.*").';
COMMENT ON COLUMN salesmgmt.webhook_event_type.concern IS 'Concern (or application) that emits the type: pipeline, commission, kpi, webhook, or a user''s own name.';
COMMENT ON COLUMN salesmgmt.webhook_event_type.description IS 'When the event is emitted and what it tells the receiver.';
COMMENT ON COLUMN salesmgmt.webhook_event_type.data_schema IS 'JSON Schema (draft 2020-12) of the "data" member of the payload; docs/webhooks.md lists them.';
COMMENT ON COLUMN salesmgmt.webhook_event_type.builtin IS 'True for the types the extension''s scripts register; pg_dump keeps only the rows users added.';

SELECT salesmgmt._register_config_table('salesmgmt.webhook_event_type', 'WHERE NOT builtin');

INSERT INTO salesmgmt.webhook_event_type (event_type, concern, description, data_schema)
SELECT t.event_type, 'pipeline', t.description,
       jsonb_build_object(
           'type', 'object',
           'required', jsonb_build_array('deal', 'previous', 'sequence'),
           'properties', jsonb_build_object(
               'deal', jsonb_build_object('type', 'object',
                           'description', 'The deal row after the change (before it, for deal.deleted), as row_to_json renders it.',
                           'required', jsonb_build_array('deal_id', 'stage_id', 'amount', 'currency')),
               'previous', jsonb_build_object('type', 'object',
                           'description', 'The old values of the columns that changed (empty for deal.created and deal.deleted).'),
               'sequence', jsonb_build_object('type', 'integer', 'minimum', 1,
                           'description', 'Per-deal number, one more with each event of the deal.')))
  FROM (VALUES
    ('deal.created',       'A deal was inserted.'),
    ('deal.updated',       'A deal''s amount, currency, expected close date, owner, probability or forecast category changed without a stage move.'),
    ('deal.stage_changed', 'A deal moved to another stage with the same outcome (open to open).'),
    ('deal.won',           'A deal moved into a won stage.'),
    ('deal.lost',          'A deal moved into a lost stage.'),
    ('deal.reopened',      'A deal moved out of a won or lost stage into an open one.'),
    ('deal.deleted',       'A deal was deleted.')
  ) AS t (event_type, description);

INSERT INTO salesmgmt.webhook_event_type (event_type, concern, description, data_schema) VALUES
    ('webhook.ping', 'webhook',
     'Sent by salesmgmt.webhook_ping to one endpoint, whatever it subscribes to, to test a receiver.',
     '{"type": "object", "required": ["endpoint_id"],
       "properties": {"endpoint_id": {"type": "integer", "description": "The endpoint pinged."}}}');

-- ---------------------------------------------------------------------------
-- Subscriptions
-- ---------------------------------------------------------------------------

-- Whether a subscription (null: every type) covers an event type; the C
-- deal trigger applies the same rule (sm_webhook_type_matches).
CREATE FUNCTION salesmgmt._webhook_subscribes(p_patterns text[], p_type text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p_patterns IS NULL OR EXISTS (
        SELECT 1 FROM pg_catalog.unnest(p_patterns) AS p
         WHERE p = '*' OR p = p_type
            OR (pg_catalog.right(p, 2) = '.*' AND pg_catalog.starts_with(p_type, pg_catalog.left(p, -1))))
$$;
COMMENT ON FUNCTION salesmgmt._webhook_subscribes(text[], text) IS 'Internal: true when an endpoint''s event_types (null = all) cover the type: the type itself, a "prefix.*" wildcard or "*".';

-- BEFORE INSERT OR UPDATE OF event_types on webhook_endpoint: every entry
-- names a registered type or a wildcard that covers at least one.  (The
-- C check before it refuses nulls, empty and multi-dimensional arrays.)
CREATE FUNCTION salesmgmt._webhook_subscription_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text;
BEGIN
    FOREACH p IN ARRAY coalesce(NEW.event_types, '{}') LOOP
        CONTINUE WHEN p = '*';
        IF NOT EXISTS (SELECT 1 FROM salesmgmt.webhook_event_type t
                        WHERE t.event_type = p
                           OR (pg_catalog.right(p, 2) = '.*'
                               AND pg_catalog.starts_with(t.event_type, pg_catalog.left(p, -1)))) THEN
            RAISE EXCEPTION 'unknown webhook event type "%"', p
                USING ERRCODE = '22023',
                      DETAIL = 'A subscription names a type of salesmgmt.webhook_event_type, a wildcard such as "deal.*" that covers at least one, or "*".',
                      HINT = 'List the types with: SELECT event_type FROM salesmgmt.webhook_event_type ORDER BY 1.';
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION salesmgmt._webhook_subscription_check() IS 'Internal trigger: refuses an endpoint subscribed to an event type that is not registered in salesmgmt.webhook_event_type (wildcards must cover at least one registered type).';
CREATE TRIGGER webhook_endpoint_subscription_check
    BEFORE INSERT OR UPDATE OF event_types ON salesmgmt.webhook_endpoint
    FOR EACH ROW EXECUTE FUNCTION salesmgmt._webhook_subscription_check();

-- ---------------------------------------------------------------------------
-- emit_event
-- ---------------------------------------------------------------------------

-- Runs as the extension's owner so that reps and managers (through the
-- functions of other concerns, or their own triggers) write the outbox,
-- which they cannot read or change themselves.
CREATE FUNCTION salesmgmt.emit_event(p_type text, p_subject_type text, p_subject_id bigint, p_data jsonb)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_event uuid;
    v_now timestamptz := pg_catalog.now();
BEGIN
    IF p_type IS NULL THEN
        RAISE EXCEPTION 'event type must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_data IS NULL THEN
        RAISE EXCEPTION 'event data must not be null'
            USING ERRCODE = '22004', HINT = 'Pass ''{}'' for an event without data.';
    END IF;
    IF pg_catalog.jsonb_typeof(p_data) <> 'object' THEN
        RAISE EXCEPTION 'event data must be a JSON object, not %', pg_catalog.jsonb_typeof(p_data)
            USING ERRCODE = '22023', HINT = 'Wrap the value: jsonb_build_object(''value'', ...).';
    END IF;
    IF (p_subject_type IS NULL) <> (p_subject_id IS NULL) THEN
        RAISE EXCEPTION 'event subject type and subject id must be given together'
            USING ERRCODE = '22023',
                  HINT = 'Pass both (such as ''quote'', 42) or neither for an event about no row.';
    END IF;
    IF p_subject_type !~ '^[a-z][a-z0-9_]*$' THEN
        RAISE EXCEPTION 'invalid event subject type "%"', p_subject_type
            USING ERRCODE = '22023', HINT = 'A subject type is a lower-case table name such as ''quote''.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM salesmgmt.webhook_event_type WHERE event_type = p_type) THEN
        RAISE EXCEPTION 'unknown webhook event type "%"', p_type
            USING ERRCODE = '22023',
                  HINT = 'Register it first: INSERT INTO salesmgmt.webhook_event_type (event_type, concern, description, data_schema) VALUES (...).';
    END IF;
    IF p_type = 'webhook.ping' OR (p_type LIKE 'deal.%' AND EXISTS (
            SELECT 1 FROM salesmgmt.webhook_event_type
             WHERE event_type = p_type AND concern = 'pipeline' AND builtin)) THEN
        RAISE EXCEPTION 'event type "%" is emitted by salesmgmt itself', p_type
            USING ERRCODE = '22023',
                  HINT = 'Deal events come from the deal trigger and pings from salesmgmt.webhook_ping; register a type of your own.';
    END IF;

    -- nothing is written when no active endpoint subscribes
    IF NOT EXISTS (SELECT 1 FROM salesmgmt.webhook_endpoint e
                    WHERE e.active AND salesmgmt._webhook_subscribes(e.event_types, p_type)) THEN
        RETURN NULL;
    END IF;

    v_event := salesmgmt.webhook_new_event_id();
    INSERT INTO salesmgmt.webhook_event (event_id, event_type, payload, occurred_at, subject_type, subject_id)
    VALUES (v_event, p_type,
            pg_catalog.json_build_object(
                'type', p_type,
                'timestamp', pg_catalog.to_char(v_now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
                'data', p_data),
            v_now, p_subject_type, p_subject_id);
    INSERT INTO salesmgmt.webhook_delivery (event_id, endpoint_id, next_attempt_at, created_at)
    SELECT v_event, e.endpoint_id, v_now, v_now
      FROM salesmgmt.webhook_endpoint e
     WHERE e.active AND salesmgmt._webhook_subscribes(e.event_types, p_type)
     ORDER BY e.endpoint_id;
    PERFORM salesmgmt._webhook_wake();
    RETURN v_event;
END
$$;
COMMENT ON FUNCTION salesmgmt.emit_event(text, text, bigint, jsonb) IS 'Writes a webhook event of a registered type (salesmgmt.webhook_event_type) about a subject row (type and id, or both null) with the given data (a JSON object) and one delivery per active endpoint subscribed to the type, inside the current transaction; returns the event id, or null when no endpoint subscribes (nothing is written). The payload sent is {"type", "timestamp", "data"}.';

-- ---------------------------------------------------------------------------
-- Events of the concerns that existed in 0.1.0, from SQL triggers on their
-- tables (their C is left as it is); the trigger functions run as their
-- owner, since only administrators may call emit_event
-- ---------------------------------------------------------------------------

INSERT INTO salesmgmt.webhook_event_type (event_type, concern, description, data_schema) VALUES
    ('commission.period_finalized', 'commission',
     'A commission period was finalized (salesmgmt.finalize_commissions): its lines are locked and can be paid.',
     '{"type": "object", "required": ["period_start", "period_end", "currency", "finalized_at", "finalized_by"],
       "properties": {"period_start": {"type": "string", "format": "date"},
                      "period_end": {"type": "string", "format": "date"},
                      "currency": {"type": "string", "description": "ISO 4217 code the lines are in."},
                      "finalized_at": {"type": "string", "format": "date-time"},
                      "finalized_by": {"type": "string", "description": "Role that finalized it."}}}'),
    ('scorecard.computed', 'kpi',
     'Scorecards of a scheme were computed for a period (salesmgmt.compute_scorecards): one event per scheme and period, whatever the number of reps.',
     '{"type": "object", "required": ["scheme_id", "period_start", "period_end", "reps", "computed_at"],
       "properties": {"scheme_id": {"type": "integer"},
                      "period_start": {"type": "string", "format": "date"},
                      "period_end": {"type": "string", "format": "date"},
                      "reps": {"type": "integer", "description": "Reps scored."},
                      "computed_at": {"type": "string", "format": "date-time"}}}');

CREATE FUNCTION salesmgmt._webhook_commission_finalized() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM salesmgmt.emit_event('commission.period_finalized', NULL, NULL,
        pg_catalog.jsonb_build_object('period_start', NEW.period_start, 'period_end', NEW.period_end,
                                      'currency', NEW.currency, 'finalized_at', NEW.finalized_at,
                                      'finalized_by', NEW.finalized_by));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION salesmgmt._webhook_commission_finalized() IS 'Internal trigger: emits commission.period_finalized when a commission period becomes final.';
CREATE TRIGGER webhook_period_finalized
    AFTER INSERT OR UPDATE OF status ON salesmgmt.commission_period
    FOR EACH ROW WHEN (NEW.status = 'final')
    EXECUTE FUNCTION salesmgmt._webhook_commission_finalized();

-- compute_scorecards replaces a scheme's period: one event per scheme and
-- period the statement wrote, not one per rep
CREATE FUNCTION salesmgmt._webhook_scorecards_computed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM salesmgmt.emit_event('scorecard.computed', 'kpi_scheme', c.scheme_id,
                pg_catalog.jsonb_build_object('scheme_id', c.scheme_id, 'period_start', c.period_start,
                                              'period_end', c.period_end, 'reps', c.reps,
                                              'computed_at', c.computed_at))
       FROM (SELECT n.scheme_id, n.period_start, n.period_end, pg_catalog.count(*) AS reps,
                    pg_catalog.max(n.computed_at) AS computed_at
               FROM computed n
              GROUP BY n.scheme_id, n.period_start, n.period_end
              ORDER BY 1, 2, 3) c;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION salesmgmt._webhook_scorecards_computed() IS 'Internal trigger: emits one scorecard.computed per scheme and period of the scorecards a statement inserted.';
CREATE TRIGGER webhook_scorecards_computed
    AFTER INSERT ON salesmgmt.scorecard
    REFERENCING NEW TABLE AS computed
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._webhook_scorecards_computed();

GRANT SELECT ON salesmgmt.webhook_event_type TO salesmgmt_manager, salesmgmt_rep;
SELECT salesmgmt._apply_default_security();
CREATE POLICY read_all ON salesmgmt.webhook_event_type FOR SELECT
    TO salesmgmt_manager, salesmgmt_rep USING (true);
COMMENT ON POLICY read_all ON salesmgmt.webhook_event_type IS 'Every role reads the event types.';
-- Receivers trust a signed event: a rep who could call emit_event could
-- forge "lead.converted" or "approval.approved".  So it is for admins (and
-- users' own SECURITY DEFINER triggers); a concern emits from its trigger
-- functions, which run as their owner (SECURITY DEFINER, pinned
-- search_path), so reps cause events only by the changes that mean them.
-- (_in_extension_script, the default of webhook_event_type.builtin, is
-- evaluated by whoever inserts a type: admins, who may execute it.)

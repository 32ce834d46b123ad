-- bench/webhook_reference.sql: the outbox trigger of salesmgmt written in
-- PL/pgSQL, with the same semantics as the C trigger (src/webhook.c):
-- one event of the most specific type per deal change, the same body,
-- per-deal sequence, one delivery per subscribed active endpoint, nothing
-- when no endpoint listens.  bench/webhook.sh times both.
--
-- Install: psql -f bench/webhook_reference.sql; it creates the function
-- only; the benchmark swaps the triggers.

CREATE OR REPLACE FUNCTION public.bench_ref_enqueue() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type      text;
    v_old       text;
    v_new       text;
    v_deal      jsonb;
    v_prev      jsonb := '{}';
    v_targets   bigint[];
    v_seq       bigint;
    v_event     uuid;
    v_row       salesmgmt.deal;
BEGIN
    IF TG_OP = 'INSERT' THEN
        v_type := 'deal.created'; v_row := NEW;
    ELSIF TG_OP = 'DELETE' THEN
        v_type := 'deal.deleted'; v_row := OLD;
    ELSE
        v_row := NEW;
        SELECT jsonb_object_agg(o.key, o.value) INTO v_prev
          FROM jsonb_each(to_jsonb(OLD)) o JOIN jsonb_each(to_jsonb(NEW)) n USING (key)
         WHERE o.value IS DISTINCT FROM n.value AND o.key <> 'updated_at';
        v_prev := coalesce(v_prev, '{}');
        IF OLD.stage_id IS DISTINCT FROM NEW.stage_id THEN
            SELECT outcome INTO v_old FROM salesmgmt.stage WHERE stage_id = OLD.stage_id;
            SELECT outcome INTO v_new FROM salesmgmt.stage WHERE stage_id = NEW.stage_id;
            v_type := CASE WHEN v_new = 'won' AND v_old <> 'won' THEN 'deal.won'
                           WHEN v_new = 'lost' AND v_old <> 'lost' THEN 'deal.lost'
                           WHEN v_new = 'open' AND v_old <> 'open' THEN 'deal.reopened'
                           ELSE 'deal.stage_changed' END;
        ELSIF v_prev ?| ARRAY['amount', 'currency', 'expected_close_date', 'owner_rep_id',
                              'probability', 'forecast_category'] THEN
            v_type := 'deal.updated';
        ELSE
            RETURN NULL;
        END IF;
    END IF;

    SELECT array_agg(endpoint_id ORDER BY endpoint_id) INTO v_targets
      FROM salesmgmt.webhook_endpoint
     WHERE active AND salesmgmt._webhook_subscribes(event_types, v_type);
    IF v_targets IS NULL THEN
        RETURN NULL;
    END IF;

    SELECT coalesce(max(sequence), 0) + 1 INTO v_seq
      FROM salesmgmt.webhook_event WHERE deal_id = v_row.deal_id;
    v_event := salesmgmt.webhook_new_event_id();
    INSERT INTO salesmgmt.webhook_event (event_id, event_type, deal_id, sequence, payload, occurred_at,
                                         subject_type, subject_id)
    VALUES (v_event, v_type, v_row.deal_id, v_seq,
            json_build_object('type', v_type, 'timestamp', now(),
                              'data', json_build_object('deal', row_to_json(v_row), 'previous', v_prev,
                                                        'sequence', v_seq)),
            now(), 'deal', v_row.deal_id);
    INSERT INTO salesmgmt.webhook_delivery (event_id, endpoint_id, created_at)
    SELECT v_event, t, now() FROM unnest(v_targets) t;
    PERFORM salesmgmt._webhook_wake();
    RETURN NULL;
END
$$;

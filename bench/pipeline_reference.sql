-- bench/pipeline_reference.sql: what bench/pipeline.sh compares the C
-- triggers with.  Not part of the extension.
--
--   pipeline_ref      a PL/pgSQL implementation of the same rules and the
--                     same history (row triggers, as one would write them):
--                     transition policies, reopening only through
--                     stage_transition, stage gates over deal columns and
--                     extra keys, entry roles, the import rule for times,
--                     one history row per tracked change.  Same SQLSTATEs.
--   pipeline_bench    the data the benchmark moves, the no-checks floor
--                     (the same UPDATE plus a hand-written history INSERT),
--                     and a switch between the three.

\set ON_ERROR_STOP on
SET client_min_messages = warning;

DROP SCHEMA IF EXISTS pipeline_ref CASCADE;
CREATE SCHEMA pipeline_ref;

-- Is a required field present?  As in pipeline.c: null, blank text, empty
-- arrays and objects, and an amount of 0 are missing.
CREATE FUNCTION pipeline_ref.field_present(p_row jsonb, p_field text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v jsonb;
BEGIN
    IF p_row ? p_field THEN
        v := p_row -> p_field;                  -- a column of deal
        IF p_field = 'amount' AND jsonb_typeof(v) = 'number' AND v::text::numeric = 0 THEN
            RETURN false;
        END IF;
    ELSE
        v := p_row -> 'extra' -> p_field;       -- a key of deal.extra
    END IF;
    IF v IS NULL THEN
        RETURN false;                           -- no such key
    END IF;
    RETURN CASE jsonb_typeof(v)
        WHEN 'null' THEN false
        WHEN 'string' THEN btrim(v #>> '{}', E' \t\n\r\f\v') <> ''
        WHEN 'array' THEN jsonb_array_length(v) > 0
        WHEN 'object' THEN v <> '{}'::jsonb
        ELSE true END;
END
$$;

CREATE FUNCTION pipeline_ref.rules() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_new record;
    v_old record;
    v_allowed boolean;
    v_missing text[];
    v_field text;
    v_row jsonb;
    v_changed_at timestamptz := now();
    v_list text;
BEGIN
    SELECT s.stage_id, s.pipeline_id, s.name, s.position, s.outcome, s.required_fields, s.entry_roles,
           p.name AS pipeline, p.transition_policy
      INTO v_new
      FROM salesmgmt.stage s JOIN salesmgmt.pipeline p ON p.pipeline_id = s.pipeline_id
     WHERE s.stage_id = NEW.stage_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'stage % of deal % does not exist', NEW.stage_id, NEW.deal_id USING ERRCODE = '23503';
    END IF;
    IF v_new.pipeline_id <> NEW.pipeline_id THEN
        RAISE EXCEPTION 'stage "%" belongs to pipeline "%", not to pipeline % of deal %',
            v_new.name, v_new.pipeline, NEW.pipeline_id, NEW.deal_id USING ERRCODE = 'SM003';
    END IF;

    IF TG_OP = 'UPDATE' THEN
        IF NEW.deal_id <> OLD.deal_id THEN
            RAISE EXCEPTION 'deal % cannot change its id to %', OLD.deal_id, NEW.deal_id USING ERRCODE = '0A000';
        END IF;
        IF NEW.pipeline_id <> OLD.pipeline_id THEN
            RAISE EXCEPTION 'deal % cannot move to another pipeline', NEW.deal_id USING ERRCODE = 'SM003';
        END IF;
        IF NEW.stage_id <> OLD.stage_id THEN
            SELECT s.name, s.position, s.outcome INTO v_old FROM salesmgmt.stage s WHERE s.stage_id = OLD.stage_id;
            v_allowed := EXISTS (SELECT 1 FROM salesmgmt.stage_transition t
                                  WHERE t.pipeline_id = NEW.pipeline_id AND t.from_stage_id = OLD.stage_id
                                    AND t.to_stage_id = NEW.stage_id)
                OR (v_old.outcome = 'open'
                    AND (v_new.transition_policy = 'free'
                         OR (v_new.transition_policy = 'forward'
                             AND (v_new.outcome <> 'open' OR v_new.position > v_old.position))));
            IF NOT v_allowed THEN
                SELECT string_agg(format('"%s"', s.name), ', ' ORDER BY s.position) INTO v_list
                  FROM salesmgmt.stage s
                 WHERE s.pipeline_id = NEW.pipeline_id AND s.stage_id <> OLD.stage_id
                   AND (EXISTS (SELECT 1 FROM salesmgmt.stage_transition t
                                 WHERE t.from_stage_id = OLD.stage_id AND t.to_stage_id = s.stage_id)
                        OR (v_old.outcome = 'open'
                            AND (v_new.transition_policy = 'free'
                                 OR (v_new.transition_policy = 'forward'
                                     AND (s.outcome <> 'open' OR s.position > v_old.position)))));
                RAISE EXCEPTION 'deal % cannot move from stage "%" to stage "%"', NEW.deal_id, v_old.name, v_new.name
                    USING ERRCODE = 'SM001',
                          DETAIL = format('Pipeline "%s" has the %s transition policy.', v_new.pipeline, v_new.transition_policy),
                          HINT = format('Deal %s may move to: %s.', NEW.deal_id, coalesce(v_list, 'nothing'));
            END IF;
        END IF;
    END IF;

    IF TG_OP = 'INSERT' OR NEW.stage_id <> OLD.stage_id THEN
        IF v_new.entry_roles IS NOT NULL
           AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
           AND NOT EXISTS (SELECT 1 FROM unnest(v_new.entry_roles) AS e(role)
                             JOIN pg_catalog.pg_roles r ON r.rolname = e.role
                            WHERE pg_has_role(current_user, r.oid, 'MEMBER')) THEN
            RAISE EXCEPTION 'role "%" may not move deal % into stage "%"', current_user, NEW.deal_id, v_new.name
                USING ERRCODE = 'SM004';
        END IF;
        IF v_new.required_fields IS NOT NULL THEN
            v_row := to_jsonb(NEW);
            FOREACH v_field IN ARRAY v_new.required_fields LOOP
                IF NOT pipeline_ref.field_present(v_row, v_field) THEN
                    v_missing := v_missing || v_field;
                END IF;
            END LOOP;
            IF v_missing IS NOT NULL THEN
                RAISE EXCEPTION 'deal % cannot enter stage "%": required fields are missing', NEW.deal_id, v_new.name
                    USING ERRCODE = 'SM002', DETAIL = 'Missing or empty: ' || array_to_string(v_missing, ', ') || '.';
            END IF;
        END IF;
    END IF;

    -- times: an explicit stage_entered_at is the time of the change
    IF NEW.stage_entered_at IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.stage_entered_at <> OLD.stage_entered_at) THEN
        IF NEW.stage_entered_at > clock_timestamp() THEN
            RAISE EXCEPTION 'stage_entered_at of deal % lies in the future', NEW.deal_id USING ERRCODE = '22023';
        END IF;
        IF TG_OP = 'UPDATE' AND NEW.stage_entered_at < OLD.stage_entered_at THEN
            RAISE EXCEPTION 'stage_entered_at of deal % cannot go back', NEW.deal_id USING ERRCODE = '22023';
        END IF;
        IF TG_OP = 'INSERT' OR NEW.stage_id <> OLD.stage_id THEN
            v_changed_at := NEW.stage_entered_at;
        END IF;
    END IF;
    IF TG_OP = 'INSERT' OR NEW.stage_id <> OLD.stage_id THEN
        NEW.stage_entered_at := v_changed_at;
        NEW.closed_at := CASE WHEN v_new.outcome = 'open' THEN NULL ELSE v_changed_at END;
    ELSE
        NEW.stage_entered_at := coalesce(NEW.stage_entered_at, OLD.stage_entered_at);
        NEW.closed_at := CASE WHEN v_new.outcome = 'open' THEN NULL
                              ELSE coalesce(OLD.closed_at, NEW.stage_entered_at) END;
    END IF;
    NEW.updated_at := v_changed_at;
    RETURN NEW;
END
$$;

CREATE FUNCTION pipeline_ref.history() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_stage record;
    v_stage_changed boolean := TG_OP = 'INSERT' OR NEW.stage_id <> OLD.stage_id;
BEGIN
    IF TG_OP = 'UPDATE' AND NOT v_stage_changed
       AND NEW.amount = OLD.amount AND NEW.currency = OLD.currency
       AND NEW.owner_rep_id = OLD.owner_rep_id
       AND NEW.expected_close_date IS NOT DISTINCT FROM OLD.expected_close_date
       AND NEW.probability IS NOT DISTINCT FROM OLD.probability
       AND NEW.forecast_category IS NOT DISTINCT FROM OLD.forecast_category THEN
        RETURN NULL;
    END IF;
    SELECT s.outcome, s.probability, s.forecast_category INTO v_stage
      FROM salesmgmt.stage s WHERE s.stage_id = NEW.stage_id;
    INSERT INTO salesmgmt.deal_stage_history
        (deal_id, pipeline_id, from_stage_id, to_stage_id, owner_rep_id, old_amount, new_amount, currency,
         old_expected_close_date, new_expected_close_date, probability, forecast_category,
         effective_probability, effective_category, changed_at, changed_by, time_in_previous_stage, note)
    VALUES (NEW.deal_id, NEW.pipeline_id,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.stage_id END, NEW.stage_id, NEW.owner_rep_id,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.amount END, NEW.amount, NEW.currency,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.expected_close_date END, NEW.expected_close_date,
            NEW.probability, NEW.forecast_category,
            CASE v_stage.outcome WHEN 'won' THEN 1 WHEN 'lost' THEN 0
                 ELSE coalesce(NEW.probability, v_stage.probability) END,
            CASE WHEN v_stage.outcome = 'open' THEN coalesce(NEW.forecast_category, v_stage.forecast_category)
                 ELSE v_stage.forecast_category END,
            CASE WHEN v_stage_changed THEN NEW.stage_entered_at ELSE now() END,
            current_user,
            CASE WHEN TG_OP = 'UPDATE' AND v_stage_changed THEN NEW.stage_entered_at - OLD.stage_entered_at END,
            nullif(current_setting('salesmgmt.change_note', true), ''));
    RETURN NULL;
END
$$;

CREATE TRIGGER ref_pipeline_rules BEFORE INSERT OR UPDATE ON salesmgmt.deal
    FOR EACH ROW EXECUTE FUNCTION pipeline_ref.rules();
CREATE TRIGGER ref_pipeline_history AFTER INSERT OR UPDATE ON salesmgmt.deal
    FOR EACH ROW EXECUTE FUNCTION pipeline_ref.history();
ALTER TABLE salesmgmt.deal DISABLE TRIGGER ref_pipeline_rules, DISABLE TRIGGER ref_pipeline_history;

-- ---------------------------------------------------------------------------
-- The benchmark's data and the floor
-- ---------------------------------------------------------------------------

DROP SCHEMA IF EXISTS pipeline_bench CASCADE;
CREATE SCHEMA pipeline_bench;

-- Which implementation is active: c, ref (PL/pgSQL) or floor (no triggers);
-- c_rules and ref_rules enable only the BEFORE trigger (rules without history),
-- to tell the cost of enforcing the rules from the cost of writing history.
CREATE FUNCTION pipeline_bench.use(p_variant text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_on text[];
BEGIN
    v_on := CASE p_variant
        WHEN 'c' THEN ARRAY['deal_pipeline_rules', 'deal_pipeline_history_insert', 'deal_pipeline_history_update']
        WHEN 'c_rules' THEN ARRAY['deal_pipeline_rules']
        WHEN 'ref' THEN ARRAY['ref_pipeline_rules', 'ref_pipeline_history']
        WHEN 'ref_rules' THEN ARRAY['ref_pipeline_rules']
        WHEN 'floor' THEN '{}'::text[] END;
    IF v_on IS NULL THEN
        RAISE EXCEPTION 'unknown variant %', p_variant;
    END IF;
    EXECUTE (SELECT 'ALTER TABLE salesmgmt.deal '
                    || string_agg(CASE WHEN t = ANY (v_on) THEN 'ENABLE' ELSE 'DISABLE' END || ' TRIGGER ' || t, ', ')
               FROM unnest(ARRAY['deal_pipeline_rules', 'deal_pipeline_history_insert', 'deal_pipeline_history_update',
                                 'ref_pipeline_rules', 'ref_pipeline_history']) AS t);
END
$$;

-- Gates on the later stages of New Business (the data set fills them), and
-- a configured way back from Negotiation to Prospecting, so that single
-- deals can cycle 1 -> 2 -> 3 -> 4 -> 1 for as long as pgbench runs.
UPDATE salesmgmt.stage SET required_fields = '{amount}' WHERE stage_id = 3;
UPDATE salesmgmt.stage SET required_fields = '{amount,expected_close_date,decision_maker}' WHERE stage_id = 4;
INSERT INTO salesmgmt.stage_transition VALUES (1, 4, 1) ON CONFLICT DO NOTHING;

-- The bulk move: :bulk open deals in stages 1-3, each to the next stage.
CREATE TABLE pipeline_bench.move_set AS
SELECT deal_id FROM salesmgmt.deal WHERE pipeline_id = 1 AND stage_id IN (1, 2, 3)
 ORDER BY deal_id LIMIT :bulk;
ALTER TABLE pipeline_bench.move_set ADD PRIMARY KEY (deal_id);
-- The single-deal moves: other open deals of New Business, numbered.
CREATE TABLE pipeline_bench.cycle_set AS
SELECT row_number() OVER (ORDER BY deal_id) AS n, deal_id
  FROM salesmgmt.deal d
 WHERE pipeline_id = 1 AND stage_id IN (1, 2, 3, 4)
   AND NOT EXISTS (SELECT 1 FROM pipeline_bench.move_set m WHERE m.deal_id = d.deal_id);
ALTER TABLE pipeline_bench.cycle_set ADD PRIMARY KEY (n);
ANALYZE pipeline_bench.move_set, pipeline_bench.cycle_set;

-- The bulk move with the active triggers, or (floor) the same UPDATE and a
-- history INSERT written by hand, without any check; with no triggers
-- enabled, 'bare' is the UPDATE alone (what PostgreSQL itself needs).  Undone by raising
-- inside a subtransaction, so that every timed run starts from the same
-- deals; p_keep keeps the result (for the comparison of C and PL/pgSQL).
CREATE FUNCTION pipeline_bench.bulk_move(p_variant text, p_at timestamptz DEFAULT NULL, p_keep boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_rows bigint;
BEGIN
    BEGIN
        IF p_variant IN ('floor', 'floor_tasks') THEN
            -- floor_tasks also writes the new stage's tasks (bench/process_reference.sql)
            WITH old AS (
                SELECT d.deal_id, d.stage_id, d.amount, d.expected_close_date, d.stage_entered_at
                  FROM salesmgmt.deal d JOIN pipeline_bench.move_set m ON m.deal_id = d.deal_id
            ), moved AS (
                UPDATE salesmgmt.deal d
                   SET stage_id = o.stage_id + 1, stage_entered_at = now(), updated_at = now(), closed_at = NULL
                  FROM old o WHERE d.deal_id = o.deal_id
                RETURNING d.*, o.stage_id AS old_stage_id, o.amount AS old_amount,
                          o.expected_close_date AS old_ecd, o.stage_entered_at AS old_entered
            ), hist AS (
                INSERT INTO salesmgmt.deal_stage_history
                    (deal_id, pipeline_id, from_stage_id, to_stage_id, owner_rep_id, old_amount, new_amount, currency,
                     old_expected_close_date, new_expected_close_date, probability, forecast_category,
                     effective_probability, effective_category, changed_at, changed_by, time_in_previous_stage, note)
                SELECT m.deal_id, m.pipeline_id, m.old_stage_id, m.stage_id, m.owner_rep_id, m.old_amount, m.amount,
                       m.currency, m.old_ecd, m.expected_close_date, m.probability, m.forecast_category,
                       coalesce(m.probability, s.probability), coalesce(m.forecast_category, s.forecast_category),
                       now(), current_user, now() - m.old_entered, NULL
                  FROM moved m JOIN salesmgmt.stage s ON s.stage_id = m.stage_id
                RETURNING 1
            )
            INSERT INTO salesmgmt.sales_task (rep_id, account_id, deal_id, title, due_date, stage_id, template_id, required)
            SELECT m.owner_rep_id, m.account_id, m.deal_id, t.title, current_date + t.due_days, m.stage_id,
                   t.template_id, t.required
              FROM moved m JOIN salesmgmt.stage_task_template t ON t.stage_id = m.stage_id
             WHERE p_variant = 'floor_tasks';
        ELSIF p_variant = 'bare' THEN
            UPDATE salesmgmt.deal d SET stage_id = d.stage_id + 1, stage_entered_at = now(), updated_at = now()
              FROM pipeline_bench.move_set m WHERE m.deal_id = d.deal_id;
        ELSIF p_at IS NULL THEN
            UPDATE salesmgmt.deal d SET stage_id = d.stage_id + 1
              FROM pipeline_bench.move_set m WHERE m.deal_id = d.deal_id;
        ELSE
            UPDATE salesmgmt.deal d SET stage_id = d.stage_id + 1, stage_entered_at = p_at
              FROM pipeline_bench.move_set m WHERE m.deal_id = d.deal_id;
        END IF;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        IF NOT p_keep THEN
            RAISE EXCEPTION 'undo' USING ERRCODE = 'SMBEN';
        END IF;
    EXCEPTION WHEN SQLSTATE 'SMBEN' THEN
        NULL;
    END;
    RETURN v_rows;
END
$$;

-- The SQLSTATE a statement fails with ('ok' if it does not), undone either way.
CREATE FUNCTION pipeline_bench.sqlstate_of(p_sql text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE p_sql;
        RAISE EXCEPTION 'undo' USING ERRCODE = 'SMBEN';
    EXCEPTION WHEN SQLSTATE 'SMBEN' THEN
        RETURN 'ok';
    END;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

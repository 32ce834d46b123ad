-- pipeline.sql: the sales process.  Allowed stage transitions, and the
-- complete, append-only history of every deal.  The C trigger functions
-- that enforce the process and write the history are in pipeline.c.
-- See docs/pipeline.md.

CREATE TABLE salesmgmt.stage_transition (
    pipeline_id     bigint NOT NULL REFERENCES salesmgmt.pipeline (pipeline_id) ON DELETE CASCADE,
    from_stage_id   bigint NOT NULL,
    to_stage_id     bigint NOT NULL,
    PRIMARY KEY (pipeline_id, from_stage_id, to_stage_id),
    CONSTRAINT stage_transition_from_in_pipeline FOREIGN KEY (pipeline_id, from_stage_id)
        REFERENCES salesmgmt.stage (pipeline_id, stage_id) ON DELETE CASCADE,
    CONSTRAINT stage_transition_to_in_pipeline FOREIGN KEY (pipeline_id, to_stage_id)
        REFERENCES salesmgmt.stage (pipeline_id, stage_id) ON DELETE CASCADE,
    CONSTRAINT stage_transition_not_to_itself CHECK (from_stage_id <> to_stage_id)
);
CREATE INDEX ON salesmgmt.stage_transition (pipeline_id, to_stage_id);
COMMENT ON TABLE salesmgmt.stage_transition IS 'Stage moves a pipeline allows explicitly: all of them under the explicit policy, backward moves and reopening of closed deals under the forward policy.';
COMMENT ON COLUMN salesmgmt.stage_transition.pipeline_id IS 'Pipeline the transition belongs to.';
COMMENT ON COLUMN salesmgmt.stage_transition.from_stage_id IS 'Stage a deal moves from.';
COMMENT ON COLUMN salesmgmt.stage_transition.to_stage_id IS 'Stage a deal may move to.';

-- One row per change of a deal's stage, amount, expected close date,
-- probability override or forecast-category override, and one for its
-- creation: the state of the deal after the change, the old values, who
-- and when.  Append-only.  No foreign key to deal: the history of a
-- deleted deal stays.
CREATE TABLE salesmgmt.deal_stage_history (
    deal_id                 bigint NOT NULL,
    history_id              bigint GENERATED ALWAYS AS IDENTITY,
    pipeline_id             bigint NOT NULL,
    from_stage_id           bigint,
    to_stage_id             bigint NOT NULL,
    owner_rep_id            bigint NOT NULL,
    old_amount              numeric(18,2),
    new_amount              numeric(18,2) NOT NULL,
    currency                char(3) NOT NULL,
    old_expected_close_date date,
    new_expected_close_date date,
    probability             numeric(5,4),
    forecast_category       text,
    effective_probability   numeric(5,4) NOT NULL,
    effective_category      text NOT NULL,
    changed_at              timestamptz NOT NULL,
    changed_by              name NOT NULL DEFAULT current_user,
    time_in_previous_stage  interval,
    note                    text,
    PRIMARY KEY (deal_id, history_id)
);
CREATE INDEX ON salesmgmt.deal_stage_history (changed_at);
CREATE INDEX ON salesmgmt.deal_stage_history (pipeline_id, to_stage_id);
COMMENT ON TABLE salesmgmt.deal_stage_history IS 'Append-only history of every deal: one row at creation and one per change of stage, amount, close date, probability or forecast category, holding the deal''s state after the change.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.deal_id IS 'Deal that changed (the history stays if the deal is deleted).';
COMMENT ON COLUMN salesmgmt.deal_stage_history.history_id IS 'Increasing identity; orders the changes of a deal.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.pipeline_id IS 'Pipeline of the deal after the change.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.from_stage_id IS 'Stage before the change; null for the creation row.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.to_stage_id IS 'Stage after the change (equal to from_stage_id when only other fields changed).';
COMMENT ON COLUMN salesmgmt.deal_stage_history.owner_rep_id IS 'Owner of the deal after the change.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.old_amount IS 'Amount before the change; null for the creation row.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.new_amount IS 'Amount after the change.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.currency IS 'Currency of the amounts.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.old_expected_close_date IS 'Expected close date before the change.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.new_expected_close_date IS 'Expected close date after the change.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.probability IS 'Per-deal probability override after the change (null: the stage''s).';
COMMENT ON COLUMN salesmgmt.deal_stage_history.forecast_category IS 'Per-deal forecast-category override after the change (null: the stage''s).';
COMMENT ON COLUMN salesmgmt.deal_stage_history.effective_probability IS 'Probability in force after the change: the override, else the stage''s; 1 when won, 0 when lost.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.effective_category IS 'Forecast category in force after the change: the override, else the stage''s.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.changed_at IS 'When the change took effect.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.changed_by IS 'Database role that made the change.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.time_in_previous_stage IS 'Time the deal spent in from_stage_id, on stage changes.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.note IS 'Note given with the change (salesmgmt.move_deal).';

SELECT salesmgmt._register_config_table(t::regclass) FROM unnest(ARRAY[
    'salesmgmt.stage_transition', 'salesmgmt.deal_stage_history']) AS t;

-- ---------------------------------------------------------------------------
-- The triggers that enforce the process (pipeline.c)
-- ---------------------------------------------------------------------------

CREATE FUNCTION salesmgmt._deal_pipeline_rules() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'sm_deal_rules';
COMMENT ON FUNCTION salesmgmt._deal_pipeline_rules() IS 'Internal trigger: checks stage moves of deals (SM001-SM004) and maintains stage_entered_at, closed_at and updated_at.';

CREATE FUNCTION salesmgmt._deal_pipeline_history() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'sm_deal_history';
COMMENT ON FUNCTION salesmgmt._deal_pipeline_history() IS 'Internal trigger: appends the state of a deal after each tracked change to salesmgmt.deal_stage_history.';

CREATE FUNCTION salesmgmt._pipeline_config_changed() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'sm_pipeline_config_changed';
COMMENT ON FUNCTION salesmgmt._pipeline_config_changed() IS 'Internal trigger: tells every session to reload its cached pipeline configuration.';

CREATE FUNCTION salesmgmt._append_only() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'sm_append_only';
COMMENT ON FUNCTION salesmgmt._append_only() IS 'Internal trigger: refuses UPDATE, DELETE and TRUNCATE on an append-only table (history, ledgers).';

CREATE TRIGGER deal_pipeline_rules
    BEFORE INSERT OR UPDATE ON salesmgmt.deal
    FOR EACH ROW EXECUTE FUNCTION salesmgmt._deal_pipeline_rules();
-- History is written per statement from the transition tables: one
-- INSERT for a bulk UPDATE of any size.
CREATE TRIGGER deal_pipeline_history_insert
    AFTER INSERT ON salesmgmt.deal
    REFERENCING NEW TABLE AS new_deals
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._deal_pipeline_history();
CREATE TRIGGER deal_pipeline_history_update
    AFTER UPDATE ON salesmgmt.deal
    REFERENCING OLD TABLE AS old_deals NEW TABLE AS new_deals
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._deal_pipeline_history();

CREATE TRIGGER pipeline_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON salesmgmt.pipeline
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._pipeline_config_changed();
CREATE TRIGGER pipeline_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON salesmgmt.stage
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._pipeline_config_changed();
CREATE TRIGGER pipeline_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON salesmgmt.stage_transition
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._pipeline_config_changed();

CREATE TRIGGER deal_stage_history_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON salesmgmt.deal_stage_history
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._append_only();

-- ---------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------

-- create_pipeline: one call creates a pipeline and its ordered stages.
-- Every stage is a JSON object; unknown keys, wrong types and impossible
-- values are refused with 22023 before anything is written.
CREATE FUNCTION salesmgmt.create_pipeline(p_name text, p_stages jsonb, p_policy text DEFAULT 'forward')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_keys constant text[] := ARRAY['name', 'probability', 'forecast_category', 'outcome',
                                    'required_fields', 'entry_roles', 'max_days_in_stage'];
    v_pipeline bigint;
    v_stage jsonb;
    v_pos integer;
    v_key text;
    v_name text;
    v_outcome text;
    v_names text[] := '{}';
    v_open integer := 0;
    v_role text;
BEGIN
    IF p_name IS NULL OR p_stages IS NULL OR p_policy IS NULL THEN
        RAISE EXCEPTION 'name, stages and policy of a pipeline must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF btrim(p_name) = '' THEN
        RAISE EXCEPTION 'the name of a pipeline must not be blank' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_policy NOT IN ('free', 'forward', 'explicit') THEN
        RAISE EXCEPTION 'unknown transition policy "%"', p_policy
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use free (any move), forward (later stages, won or lost) or explicit (only moves listed in salesmgmt.stage_transition).';
    END IF;
    IF jsonb_typeof(p_stages) <> 'array' OR jsonb_array_length(p_stages) = 0 THEN
        RAISE EXCEPTION 'stages must be a non-empty JSON array of objects'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example [{"name": "Qualify", "probability": 0.1}, {"name": "Won", "outcome": "won"}].';
    END IF;

    -- validate everything first: a refused call writes nothing
    FOR v_stage, v_pos IN SELECT e, o::integer FROM jsonb_array_elements(p_stages) WITH ORDINALITY AS t(e, o) LOOP
        IF jsonb_typeof(v_stage) <> 'object' THEN
            RAISE EXCEPTION 'stage % is not a JSON object', v_pos USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR v_key IN SELECT jsonb_object_keys(v_stage) LOOP
            IF NOT v_key = ANY (v_keys) THEN
                RAISE EXCEPTION 'stage %: unknown key "%"', v_pos, v_key
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Known keys: ' || array_to_string(v_keys, ', ') || '.';
            END IF;
        END LOOP;
        IF jsonb_typeof(v_stage -> 'name') IS DISTINCT FROM 'string' OR btrim(v_stage ->> 'name') = '' THEN
            RAISE EXCEPTION 'stage % needs a non-blank "name" string', v_pos USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_name := v_stage ->> 'name';
        IF v_name = ANY (v_names) THEN
            RAISE EXCEPTION 'stage name "%" appears twice', v_name USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_names := v_names || v_name;
        v_outcome := coalesce(v_stage ->> 'outcome', 'open');
        IF v_outcome NOT IN ('open', 'won', 'lost') THEN
            RAISE EXCEPTION 'stage "%": outcome must be open, won or lost, not "%"', v_name, v_outcome
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_outcome = 'open' THEN
            v_open := v_open + 1;
            IF NOT v_stage ? 'probability' THEN
                RAISE EXCEPTION 'open stage "%" needs a "probability"', v_name
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'The probability (0..1) that a deal in this stage is won.';
            END IF;
        END IF;
        IF v_stage ? 'probability' AND (jsonb_typeof(v_stage -> 'probability') <> 'number'
                                        OR (v_stage ->> 'probability')::numeric NOT BETWEEN 0 AND 1) THEN
            RAISE EXCEPTION 'stage "%": probability must be a number between 0 and 1', v_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_stage ? 'forecast_category' AND jsonb_typeof(v_stage -> 'forecast_category') <> 'string' THEN
            RAISE EXCEPTION 'stage "%": forecast_category must be a string', v_name USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_stage ? 'max_days_in_stage' AND v_stage -> 'max_days_in_stage' <> 'null'
           AND (jsonb_typeof(v_stage -> 'max_days_in_stage') <> 'number'
                OR (v_stage ->> 'max_days_in_stage')::numeric <> trunc((v_stage ->> 'max_days_in_stage')::numeric)
                OR (v_stage ->> 'max_days_in_stage')::numeric NOT BETWEEN 1 AND 36500) THEN
            RAISE EXCEPTION 'stage "%": max_days_in_stage must be a whole number of days (1 to 36500)', v_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOREACH v_key IN ARRAY ARRAY['required_fields', 'entry_roles'] LOOP
            IF v_stage ? v_key AND v_stage -> v_key <> 'null' AND (
                   jsonb_typeof(v_stage -> v_key) <> 'array'
                   OR EXISTS (SELECT 1 FROM jsonb_array_elements(v_stage -> v_key) AS e
                               WHERE jsonb_typeof(e) <> 'string' OR btrim(e #>> '{}') = '')) THEN
                RAISE EXCEPTION 'stage "%": % must be an array of non-blank strings', v_name, v_key
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        END LOOP;
        FOR v_role IN SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(v_stage -> 'entry_roles') = 'array'
                                                            THEN v_stage -> 'entry_roles' ELSE '[]' END) LOOP
            IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = v_role) THEN
                RAISE EXCEPTION 'stage "%": role "%" does not exist', v_name, v_role
                    USING ERRCODE = 'undefined_object',
                          HINT = 'Create the role first, or leave it out of entry_roles.';
            END IF;
        END LOOP;
    END LOOP;
    IF v_open = 0 THEN
        RAISE EXCEPTION 'a pipeline needs at least one open stage' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO salesmgmt.pipeline (name, transition_policy) VALUES (p_name, p_policy)
        RETURNING pipeline_id INTO v_pipeline;
    INSERT INTO salesmgmt.stage (pipeline_id, name, position, probability, forecast_category, outcome,
                                 required_fields, entry_roles, max_days_in_stage)
    SELECT v_pipeline, e ->> 'name', o::integer,
           coalesce((e ->> 'probability')::numeric,
                    CASE coalesce(e ->> 'outcome', 'open') WHEN 'won' THEN 1 ELSE 0 END),
           coalesce(e ->> 'forecast_category',
                    CASE coalesce(e ->> 'outcome', 'open') WHEN 'won' THEN 'closed'
                                                           WHEN 'lost' THEN 'omitted' ELSE 'pipeline' END),
           coalesce(e ->> 'outcome', 'open'),
           CASE WHEN jsonb_typeof(e -> 'required_fields') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(e -> 'required_fields')) END,
           CASE WHEN jsonb_typeof(e -> 'entry_roles') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(e -> 'entry_roles'))::name[] END,
           (e ->> 'max_days_in_stage')::integer
      FROM jsonb_array_elements(p_stages) WITH ORDINALITY AS t(e, o);
    RETURN v_pipeline;
END
$$;
COMMENT ON FUNCTION salesmgmt.create_pipeline(text, jsonb, text) IS 'Creates a pipeline and its stages in order from a JSON array of stage objects (name, probability, forecast_category, outcome, required_fields, entry_roles, max_days_in_stage); returns the pipeline id.';

CREATE FUNCTION salesmgmt.move_deal(p_deal_id bigint, p_stage text, p_note text DEFAULT NULL)
RETURNS salesmgmt.deal
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'sm_move_deal';
COMMENT ON FUNCTION salesmgmt.move_deal(bigint, text, text) IS 'Moves a deal to the named stage of its own pipeline under the same rules as an UPDATE (SM001-SM004); the note is recorded in the history row. Returns the deal after the move.';

CREATE FUNCTION salesmgmt._allowed_next_stage_ids(p_deal_id bigint)
RETURNS bigint[]
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'sm_allowed_next_stage_ids';
COMMENT ON FUNCTION salesmgmt._allowed_next_stage_ids(bigint) IS 'Internal: ids of the stages salesmgmt.allowed_next_stages returns.';

CREATE FUNCTION salesmgmt.allowed_next_stages(p_deal_id bigint)
RETURNS SETOF salesmgmt.stage
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.* FROM salesmgmt.stage s
     WHERE s.stage_id = ANY (salesmgmt._allowed_next_stage_ids(p_deal_id))
     ORDER BY s.position
$$;
COMMENT ON FUNCTION salesmgmt.allowed_next_stages(bigint) IS 'Stages the deal may move to now, in order: allowed by the pipeline''s policy and transitions and open to the current role (stage gates are checked when moving).';

-- ---------------------------------------------------------------------------
-- Views for BI.  security_invoker: a reader sees only the deals row-level
-- security lets them see.
-- ---------------------------------------------------------------------------

CREATE VIEW salesmgmt.pipeline_board WITH (security_invoker = true) AS
SELECT p.pipeline_id,
       p.name AS pipeline,
       s.stage_id,
       s.name AS stage,
       s.position,
       s.probability AS stage_probability,
       d.currency,
       count(d.deal_id) AS open_deals,
       coalesce(sum(d.amount), 0)::numeric(18,2) AS amount,
       coalesce(round(sum(d.amount * coalesce(d.probability, s.probability)), 2), 0)::numeric(18,2) AS weighted_amount
  FROM salesmgmt.pipeline p
  JOIN salesmgmt.stage s ON s.pipeline_id = p.pipeline_id
  LEFT JOIN salesmgmt.deal d ON d.stage_id = s.stage_id
 WHERE s.outcome = 'open'
 GROUP BY p.pipeline_id, p.name, s.stage_id, s.name, s.position, s.probability, d.currency;
COMMENT ON VIEW salesmgmt.pipeline_board IS 'The pipeline board: per pipeline, open stage and currency, the open deals, their amount and their weighted amount (amount x effective probability). A stage without deals has one row with currency null and zeros.';
COMMENT ON COLUMN salesmgmt.pipeline_board.pipeline_id IS 'Pipeline.';
COMMENT ON COLUMN salesmgmt.pipeline_board.pipeline IS 'Pipeline name.';
COMMENT ON COLUMN salesmgmt.pipeline_board.stage_id IS 'Open stage.';
COMMENT ON COLUMN salesmgmt.pipeline_board.stage IS 'Stage name.';
COMMENT ON COLUMN salesmgmt.pipeline_board.position IS 'Position of the stage in its pipeline (order the board by it).';
COMMENT ON COLUMN salesmgmt.pipeline_board.stage_probability IS 'The stage''s probability (deals may override it).';
COMMENT ON COLUMN salesmgmt.pipeline_board.currency IS 'Currency of the amounts on this row (amounts are never summed across currencies); null for a stage without deals.';
COMMENT ON COLUMN salesmgmt.pipeline_board.open_deals IS 'Number of deals in the stage.';
COMMENT ON COLUMN salesmgmt.pipeline_board.amount IS 'Sum of their amounts.';
COMMENT ON COLUMN salesmgmt.pipeline_board.weighted_amount IS 'Sum of amount x effective probability (the deal''s override, else the stage''s), rounded to cents.';

CREATE VIEW salesmgmt.stage_funnel WITH (security_invoker = true) AS
WITH reached AS (
    SELECT DISTINCT h.deal_id, h.to_stage_id AS stage_id
      FROM salesmgmt.deal_stage_history h
), per_deal AS (
    SELECT r.deal_id,
           max(s.position) FILTER (WHERE s.outcome <> 'lost') AS furthest,
           bool_or(s.outcome = 'won') AS won
      FROM reached r JOIN salesmgmt.stage s ON s.stage_id = r.stage_id
     GROUP BY r.deal_id
)
SELECT p.pipeline_id,
       p.name AS pipeline,
       s.stage_id,
       s.name AS stage,
       s.position,
       s.outcome,
       count(r.deal_id) AS deals_reached,
       CASE WHEN s.outcome = 'open'
            THEN round(count(r.deal_id) FILTER (WHERE d.furthest > s.position)::numeric
                       / nullif(count(r.deal_id), 0), 4) END AS next_stage_share,
       round(count(r.deal_id) FILTER (WHERE d.won)::numeric / nullif(count(r.deal_id), 0), 4) AS won_share
  FROM salesmgmt.pipeline p
  JOIN salesmgmt.stage s ON s.pipeline_id = p.pipeline_id
  LEFT JOIN reached r ON r.stage_id = s.stage_id
  LEFT JOIN per_deal d ON d.deal_id = r.deal_id
 GROUP BY p.pipeline_id, p.name, s.stage_id, s.name, s.position, s.outcome;
COMMENT ON VIEW salesmgmt.stage_funnel IS 'The funnel, computed from the stage history: per pipeline and stage, how many deals ever reached it, the share of those that went on to a later stage, and the share that were won.';
COMMENT ON COLUMN salesmgmt.stage_funnel.pipeline_id IS 'Pipeline.';
COMMENT ON COLUMN salesmgmt.stage_funnel.pipeline IS 'Pipeline name.';
COMMENT ON COLUMN salesmgmt.stage_funnel.stage_id IS 'Stage.';
COMMENT ON COLUMN salesmgmt.stage_funnel.stage IS 'Stage name.';
COMMENT ON COLUMN salesmgmt.stage_funnel.position IS 'Position of the stage in its pipeline.';
COMMENT ON COLUMN salesmgmt.stage_funnel.outcome IS 'open, won or lost.';
COMMENT ON COLUMN salesmgmt.stage_funnel.deals_reached IS 'Deals whose history shows them in this stage at some time (created in it or moved into it).';
COMMENT ON COLUMN salesmgmt.stage_funnel.next_stage_share IS 'Of those, the share (0..1) that later reached a stage further on (higher position) that is not a lost stage; null for won and lost stages and when no deal reached the stage.';
COMMENT ON COLUMN salesmgmt.stage_funnel.won_share IS 'Of those, the share (0..1) that reached a won stage.';

CREATE VIEW salesmgmt.stage_durations WITH (security_invoker = true) AS
WITH stays AS (
    SELECT h.from_stage_id AS stage_id, h.time_in_previous_stage AS stay
      FROM salesmgmt.deal_stage_history h
     WHERE h.from_stage_id <> h.to_stage_id AND h.time_in_previous_stage IS NOT NULL
)
SELECT p.pipeline_id,
       p.name AS pipeline,
       s.stage_id,
       s.name AS stage,
       s.position,
       count(t.stay) AS completed_stays,
       justify_hours(date_trunc('second', avg(t.stay))) AS avg_duration,
       justify_hours(date_trunc('second', make_interval(secs =>
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.stay))))) AS median_duration,
       round(extract(epoch FROM avg(t.stay)) / 86400, 2) AS avg_days,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.stay)) / 86400)::numeric, 2) AS median_days
  FROM salesmgmt.pipeline p
  JOIN salesmgmt.stage s ON s.pipeline_id = p.pipeline_id
  LEFT JOIN stays t ON t.stage_id = s.stage_id
 GROUP BY p.pipeline_id, p.name, s.stage_id, s.name, s.position;
COMMENT ON VIEW salesmgmt.stage_durations IS 'How long deals stay in each stage, from the stage history: average and median over every completed stay (a deal that left the stage), per pipeline and stage.';
COMMENT ON COLUMN salesmgmt.stage_durations.pipeline_id IS 'Pipeline.';
COMMENT ON COLUMN salesmgmt.stage_durations.pipeline IS 'Pipeline name.';
COMMENT ON COLUMN salesmgmt.stage_durations.stage_id IS 'Stage.';
COMMENT ON COLUMN salesmgmt.stage_durations.stage IS 'Stage name.';
COMMENT ON COLUMN salesmgmt.stage_durations.position IS 'Position of the stage in its pipeline.';
COMMENT ON COLUMN salesmgmt.stage_durations.completed_stays IS 'Number of times a deal left this stage (deals still in it are not counted).';
COMMENT ON COLUMN salesmgmt.stage_durations.avg_duration IS 'Average time in the stage, to the second; null without completed stays.';
COMMENT ON COLUMN salesmgmt.stage_durations.median_duration IS 'Median time in the stage, to the second; null without completed stays.';
COMMENT ON COLUMN salesmgmt.stage_durations.avg_days IS 'Average time in the stage in days (two decimals), for charts.';
COMMENT ON COLUMN salesmgmt.stage_durations.median_days IS 'Median time in the stage in days (two decimals), for charts.';

CREATE VIEW salesmgmt.stalled_deals WITH (security_invoker = true) AS
SELECT d.deal_id,
       d.name AS deal,
       d.pipeline_id,
       p.name AS pipeline,
       d.stage_id,
       s.name AS stage,
       d.owner_rep_id,
       r.name AS owner,
       d.amount,
       d.currency,
       d.stage_entered_at,
       s.max_days_in_stage,
       floor(extract(epoch FROM now() - d.stage_entered_at) / 86400)::integer AS days_in_stage,
       floor(extract(epoch FROM now() - d.stage_entered_at) / 86400)::integer - s.max_days_in_stage AS days_over
  FROM salesmgmt.deal d
  JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
  JOIN salesmgmt.pipeline p ON p.pipeline_id = d.pipeline_id
  JOIN salesmgmt.rep r ON r.rep_id = d.owner_rep_id
 WHERE s.outcome = 'open'
   AND s.max_days_in_stage IS NOT NULL
   AND d.stage_entered_at < now() - make_interval(days => s.max_days_in_stage);
COMMENT ON VIEW salesmgmt.stalled_deals IS 'Open deals that have stayed in their stage longer than the stage''s max_days_in_stage.';
COMMENT ON COLUMN salesmgmt.stalled_deals.deal_id IS 'Deal.';
COMMENT ON COLUMN salesmgmt.stalled_deals.deal IS 'Deal name.';
COMMENT ON COLUMN salesmgmt.stalled_deals.pipeline_id IS 'Pipeline of the deal.';
COMMENT ON COLUMN salesmgmt.stalled_deals.pipeline IS 'Pipeline name.';
COMMENT ON COLUMN salesmgmt.stalled_deals.stage_id IS 'Stage the deal is stuck in.';
COMMENT ON COLUMN salesmgmt.stalled_deals.stage IS 'Stage name.';
COMMENT ON COLUMN salesmgmt.stalled_deals.owner_rep_id IS 'Rep who owns the deal.';
COMMENT ON COLUMN salesmgmt.stalled_deals.owner IS 'Owner''s name.';
COMMENT ON COLUMN salesmgmt.stalled_deals.amount IS 'Deal amount.';
COMMENT ON COLUMN salesmgmt.stalled_deals.currency IS 'Currency of the amount.';
COMMENT ON COLUMN salesmgmt.stalled_deals.stage_entered_at IS 'When the deal entered the stage.';
COMMENT ON COLUMN salesmgmt.stalled_deals.max_days_in_stage IS 'Days the stage allows.';
COMMENT ON COLUMN salesmgmt.stalled_deals.days_in_stage IS 'Whole days the deal has been in the stage.';
COMMENT ON COLUMN salesmgmt.stalled_deals.days_over IS 'Whole days past the limit (0 in the first day over it).';

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
CREATE TRIGGER deal_pipeline_history
    AFTER INSERT OR UPDATE ON salesmgmt.deal
    FOR EACH ROW EXECUTE FUNCTION salesmgmt._deal_pipeline_history();

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

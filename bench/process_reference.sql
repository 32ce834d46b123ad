-- bench/process_reference.sql: the sales-process part of bench/pipeline.sh.
-- Loaded after bench/pipeline_reference.sql (pipeline_bench.move_set and
-- cycle_set exist).  Adds 3 required task templates to every open stage of
-- New Business and an approval rule on Negotiation (stage 4) that the
-- bench deals do not match (its condition is evaluated on every move into
-- the stage), completes the tasks of the deals' current stages, and
-- defines the floor: the same UPDATE, history INSERT and task INSERT
-- written by hand, without any check.

INSERT INTO salesmgmt.stage_task_template (stage_id, title, due_days, position)
SELECT s.stage_id, pg_catalog.format('Step %s of %s', i, s.name), 7, i
  FROM salesmgmt.stage s, generate_series(1, 3) AS i
 WHERE s.pipeline_id = 1 AND s.outcome = 'open';
INSERT INTO salesmgmt.approval_rule (name, stage_id, condition)
VALUES ('bench: very large deals', 4, '{"amount": {">": 1000000000}}');

-- the checklists of the deals' current stages, done
INSERT INTO salesmgmt.sales_task (rep_id, account_id, deal_id, title, status, completed_at, stage_id, template_id, required)
SELECT d.owner_rep_id, d.account_id, d.deal_id, t.title, 'done', now(), d.stage_id, t.template_id, true
  FROM salesmgmt.deal d
  JOIN salesmgmt.stage_task_template t ON t.stage_id = d.stage_id
 WHERE d.deal_id IN (SELECT deal_id FROM pipeline_bench.move_set UNION ALL SELECT deal_id FROM pipeline_bench.cycle_set);
ANALYZE salesmgmt.sales_task, salesmgmt.stage_task_template;

-- The floor of the bulk move with stage tasks: UPDATE, history and the
-- new stage's tasks, by hand, undone like pipeline_bench.bulk_move.
CREATE FUNCTION pipeline_bench.bulk_move_tasks_floor() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_rows bigint;
BEGIN
    BEGIN
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
        )
        INSERT INTO salesmgmt.sales_task (rep_id, account_id, deal_id, title, due_date, stage_id, template_id, required)
        SELECT m.owner_rep_id, m.account_id, m.deal_id, t.title, current_date + t.due_days, m.stage_id,
               t.template_id, t.required
          FROM moved m JOIN salesmgmt.stage_task_template t ON t.stage_id = m.stage_id;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        RAISE EXCEPTION 'undo' USING ERRCODE = 'SMBEN';
    EXCEPTION WHEN SQLSTATE 'SMBEN' THEN
        NULL;
    END;
    RETURN v_rows;
END
$$;

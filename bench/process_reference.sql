-- bench/process_reference.sql: the sales-process part of bench/pipeline.sh.
-- Loaded after bench/pipeline_reference.sql (pipeline_bench.move_set and
-- cycle_set exist).  Adds 3 required task templates to every open stage of
-- New Business and an approval rule on Negotiation (stage 4) that the
-- bench deals do not match (its condition is evaluated on every move into
-- the stage) and completes the tasks of the deals' current stages.

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

-- The floor of the bulk move with stage tasks is pipeline_bench.bulk_move('floor_tasks'):
-- the same UPDATE, history INSERT and task INSERT written by hand, undone likewise.

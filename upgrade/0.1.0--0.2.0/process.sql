-- 0.1.0 to 0.2.0, the sales process (issue 16): the columns that stage
-- tasks and follow-up discipline add to tables 0.1.0 created.  The new
-- tables, functions and views are in src/process.sql, which the upgrade
-- runs whole after this file.  Same names and column order as src/core.sql.

ALTER TABLE salesmgmt.sales_task
    ADD COLUMN stage_id bigint REFERENCES salesmgmt.stage (stage_id),
    ADD COLUMN template_id bigint,
    ADD COLUMN required boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN salesmgmt.sales_task.stage_id IS 'For a stage task: the stage of the deal whose checklist it is on (created from salesmgmt.stage_task_template when the deal entered it).';
COMMENT ON COLUMN salesmgmt.sales_task.template_id IS 'For a stage task: the template it was created from (null once the template is deleted).';
COMMENT ON COLUMN salesmgmt.sales_task.required IS 'True when the deal may not move forward from stage_id while this task is open.';

ALTER TABLE salesmgmt.deal
    ADD COLUMN next_step text,
    ADD COLUMN next_step_due date;
COMMENT ON COLUMN salesmgmt.deal.next_step IS 'The next thing the owner will do to advance the deal (follow-up discipline: deals_without_next_step).';
COMMENT ON COLUMN salesmgmt.deal.next_step_due IS 'When the next step is due; follow-up rules act on deals past it.';

ALTER TABLE salesmgmt.account ADD COLUMN next_follow_up date;
COMMENT ON COLUMN salesmgmt.account.next_follow_up IS 'When the owner plans to contact the account next (accounts_gone_quiet, follow-up rules).';

-- One rule language (issue 16): SPIFF conditions are conditions of the
-- rule language (src/rules.c), validated by the same trigger function.
COMMENT ON COLUMN salesmgmt.commission_spiff.condition IS 'Condition on the deal in the rule language (docs/rules.md): equality and containment as to_jsonb(deal) @> condition, e.g. {"extra": {"product": "analytics"}} or {"pipeline_id": 2}, and comparisons, in, all/any/not, e.g. {"amount": {">": 100000}}; {} matches every deal. Keys must be deal columns (22023 otherwise).';
COMMENT ON FUNCTION salesmgmt.commission_spiff_check() IS 'Trigger: a SPIFF condition is a valid condition of the rule language on salesmgmt.deal (known columns and operators, operands of the column''s type; 22023 otherwise); a SPIFF paid by final lines cannot be deleted.';

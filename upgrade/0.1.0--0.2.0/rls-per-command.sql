-- rls-per-command.sql: 0.1.0 to 0.2.0, the write policies of the 0.1.0
-- tables name their command.  PostgreSQL adds a FOR ALL policy's USING to
-- every SELECT as well, so each read of activity, deal_split and
-- sales_task ran the write predicate too on the rows the read policy did
-- not pass; each FOR ALL policy becomes one policy per command with the
-- same expressions (its USING is within the table's read policy, so reads
-- see the same rows, and writes are allowed exactly as before).  Same
-- policies as src/security.sql creates.

DROP POLICY deal_split_write ON salesmgmt.deal_split;
DROP POLICY activity_write ON salesmgmt.activity;
DROP POLICY sales_task_write ON salesmgmt.sales_task;

CREATE POLICY deal_split_insert ON salesmgmt.deal_split FOR INSERT TO salesmgmt_manager, salesmgmt_rep
    WITH CHECK (salesmgmt.deal_changeable(deal_id));
COMMENT ON POLICY deal_split_insert ON salesmgmt.deal_split IS 'Only the owner''s side of a deal (the owner, their managers) adds its splits.';
CREATE POLICY deal_split_update ON salesmgmt.deal_split FOR UPDATE TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.deal_changeable(deal_id))
    WITH CHECK (salesmgmt.deal_changeable(deal_id));
COMMENT ON POLICY deal_split_update ON salesmgmt.deal_split IS 'Only the owner''s side of a deal (the owner, their managers) changes its splits.';
CREATE POLICY deal_split_delete ON salesmgmt.deal_split FOR DELETE TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.deal_changeable(deal_id));
COMMENT ON POLICY deal_split_delete ON salesmgmt.deal_split IS 'Only the owner''s side of a deal (the owner, their managers) removes its splits.';

CREATE POLICY activity_insert ON salesmgmt.activity FOR INSERT TO salesmgmt_manager, salesmgmt_rep
    WITH CHECK (salesmgmt.rep_visible(rep_id) AND salesmgmt.account_visible(account_id));
COMMENT ON POLICY activity_insert ON salesmgmt.activity IS 'Reps and managers record activities of visible reps with accounts they see.';
CREATE POLICY activity_update ON salesmgmt.activity FOR UPDATE TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(rep_id))
    WITH CHECK (salesmgmt.rep_visible(rep_id) AND salesmgmt.account_visible(account_id));
COMMENT ON POLICY activity_update ON salesmgmt.activity IS 'Reps and managers change activities of visible reps, keeping them with visible reps and accounts they see.';
CREATE POLICY activity_delete ON salesmgmt.activity FOR DELETE TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(rep_id));
COMMENT ON POLICY activity_delete ON salesmgmt.activity IS 'Reps and managers delete activities of visible reps.';

CREATE POLICY sales_task_insert ON salesmgmt.sales_task FOR INSERT TO salesmgmt_manager, salesmgmt_rep
    WITH CHECK (salesmgmt.rep_visible(rep_id)
                AND (assigned_by IS NULL OR salesmgmt.rep_visible(assigned_by)
                     OR salesmgmt.rep_manages(assigned_by, rep_id)));
COMMENT ON POLICY sales_task_insert ON salesmgmt.sales_task IS 'Managers assign tasks within their team trees; reps plan their own.';
CREATE POLICY sales_task_update ON salesmgmt.sales_task FOR UPDATE TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(rep_id))
    WITH CHECK (salesmgmt.rep_visible(rep_id)
                AND (assigned_by IS NULL OR salesmgmt.rep_visible(assigned_by)
                     OR salesmgmt.rep_manages(assigned_by, rep_id)));
COMMENT ON POLICY sales_task_update ON salesmgmt.sales_task IS 'Reps and managers change tasks of visible reps (a rep closes those assigned to it), keeping them within their scope.';
CREATE POLICY sales_task_delete ON salesmgmt.sales_task FOR DELETE TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(rep_id));
COMMENT ON POLICY sales_task_delete ON salesmgmt.sales_task IS 'Reps and managers delete tasks of visible reps.';

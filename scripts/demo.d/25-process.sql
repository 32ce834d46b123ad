-- Tour, part 2b: the sales process enforced: a checklist and an approval
-- hold a deal back until both are cleared.  Everything here is rolled back.
\pset footer off
\echo
\echo '================ Sales process: stage tasks and approvals ================'
\echo
BEGIN;
-- the setup: a checklist on Prospecting, an approval for large deals entering Qualification
INSERT INTO salesmgmt.stage_task_template (stage_id, title, required, due_days)
VALUES (1, 'Confirm budget and decision maker', true, 3);
INSERT INTO salesmgmt.approval_rule (name, stage_id, condition, approver)
VALUES ('Large deals need the manager', 2, '{"amount": {">": 100000}}', 'manager');
SELECT r.rep_id AS owner, salesmgmt._rep_manager(r.rep_id) AS manager, a.account_id AS account
  FROM salesmgmt.rep r JOIN salesmgmt.account a ON a.owner_rep_id = r.rep_id
 WHERE salesmgmt._rep_manager(r.rep_id) IS NOT NULL
 ORDER BY r.rep_id LIMIT 1 \gset demo_
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount, expected_close_date)
VALUES ('Demo: plant-wide rollout', :demo_account, :demo_owner, 1, 1, 250000, current_date + 60)
RETURNING deal_id AS deal \gset demo_
SELECT set_config('demo.deal', :'demo_deal', false) \g /dev/null

\echo '-- A new deal in Prospecting gets the stage''s checklist, in the same statement'
SELECT item, title, required, status, blocks_forward_move FROM salesmgmt.deal_checklist(:demo_deal);

\echo
\echo '-- 1. Blocked by an open task (SM070): the detail lists it'
DO $$
DECLARE v_state text; v_msg text; v_detail text;
BEGIN
    PERFORM salesmgmt.move_deal(current_setting('demo.deal')::bigint, 'Qualification');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE E'refused with SQLSTATE %: %\n  detail: %', v_state, v_msg, v_detail;
END
$$;
UPDATE salesmgmt.sales_task SET status = 'done', completed_at = now() WHERE deal_id = :demo_deal;

\echo
\echo '-- 2. Task done; now the move needs the manager''s approval (SM071), and a request is pending'
SELECT salesmgmt.request_approval(:demo_deal, 'Qualification', 'Strategic account, 250k') AS request \gset demo_
SELECT request_id, deal, stage, current_step, approver FROM salesmgmt.approval_queue WHERE request_id = :demo_request;
SELECT item, title, status, blocks_forward_move FROM salesmgmt.deal_checklist(:demo_deal);
DO $$
DECLARE v_state text; v_msg text; v_detail text;
BEGIN
    PERFORM salesmgmt.move_deal(current_setting('demo.deal')::bigint, 'Qualification');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE E'refused with SQLSTATE %: %\n  detail: %', v_state, v_msg, v_detail;
END
$$;

\echo
\echo '-- 3. The manager approves (logged in as a role mapped to their rep), and the deal moves'
CREATE ROLE demo_process_manager LOGIN IN ROLE salesmgmt_manager;
UPDATE salesmgmt.rep SET db_role = 'demo_process_manager' WHERE rep_id = :demo_manager;
SET ROLE demo_process_manager;
SELECT request_id, status FROM salesmgmt.approve(:demo_request, 'Approved: reference customer');
RESET ROLE;
SELECT d.deal_id, s.name AS stage FROM salesmgmt.move_deal(:demo_deal, 'Qualification', 'demo: approved') d
  JOIN salesmgmt.stage s USING (stage_id);

\echo
\echo '-- Every step is in the deal''s history'
SELECT t.name AS stage, h.changed_by, coalesce(h.note, '') AS note
  FROM salesmgmt.deal_stage_history h JOIN salesmgmt.stage t ON t.stage_id = h.to_stage_id
 WHERE h.deal_id = :demo_deal ORDER BY h.history_id;
ROLLBACK;

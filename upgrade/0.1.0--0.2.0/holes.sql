-- 0.1.0 to 0.2.0: holes found by an outside security probe (issue 23).
-- The same rights as src/security.sql gives a fresh install.

-- Reps and managers write the non-id columns only, and use no sequence:
-- identity defaults need no sequence privilege.  Nor the times the server
-- sets (created_at, updated_at, stage_entered_at, closed_at, completed_at).  Revoking the table-level
-- privilege first: a column grant does not narrow a table grant.
REVOKE INSERT, UPDATE ON salesmgmt.account, salesmgmt.contact, salesmgmt.deal, salesmgmt.deal_split,
                         salesmgmt.activity, salesmgmt.sales_task
    FROM salesmgmt_manager, salesmgmt_rep;
REVOKE ALL ON SEQUENCE
    salesmgmt.account_account_id_seq, salesmgmt.contact_contact_id_seq,
    salesmgmt.deal_deal_id_seq, salesmgmt.activity_activity_id_seq,
    salesmgmt.sales_task_task_id_seq
    FROM salesmgmt_manager, salesmgmt_rep;
GRANT INSERT (name, industry, region, segment, owner_rep_id, extra),
      UPDATE (name, industry, region, segment, owner_rep_id, extra)
    ON salesmgmt.account TO salesmgmt_manager, salesmgmt_rep;
GRANT INSERT (account_id, name, email, phone, title),
      UPDATE (account_id, name, email, phone, title)
    ON salesmgmt.contact TO salesmgmt_manager, salesmgmt_rep;
GRANT INSERT (name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
              expected_close_date, probability, forecast_category, lost_reason, extra),
      UPDATE (name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
              expected_close_date, probability, forecast_category, lost_reason, extra)
    ON salesmgmt.deal TO salesmgmt_manager, salesmgmt_rep;
GRANT INSERT (deal_id, rep_id, share), UPDATE (rep_id, share)
    ON salesmgmt.deal_split TO salesmgmt_manager, salesmgmt_rep;
GRANT INSERT (kind, account_id, contact_id, deal_id, rep_id, occurred_at, duration, outcome, notes),
      UPDATE (kind, account_id, contact_id, deal_id, rep_id, occurred_at, duration, outcome, notes)
    ON salesmgmt.activity TO salesmgmt_manager, salesmgmt_rep;
GRANT INSERT (rep_id, assigned_by, account_id, deal_id, title, description, due_date, status),
      UPDATE (rep_id, assigned_by, account_id, deal_id, title, description, due_date, status)
    ON salesmgmt.sales_task TO salesmgmt_manager, salesmgmt_rep;

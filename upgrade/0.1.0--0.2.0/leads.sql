-- leads: activities and sales tasks attach to leads (issue 15).  The
-- reference to salesmgmt.lead and the indexes are added by src/lead.sql,
-- which both the install and the upgrade script run.
ALTER TABLE salesmgmt.activity ALTER COLUMN account_id DROP NOT NULL;
ALTER TABLE salesmgmt.activity ADD COLUMN lead_id bigint;
ALTER TABLE salesmgmt.activity ADD CONSTRAINT activity_account_or_lead
    CHECK (account_id IS NOT NULL OR lead_id IS NOT NULL);
COMMENT ON COLUMN salesmgmt.activity.account_id IS 'Account the communication was with; null only for an activity on a lead not converted yet.';
COMMENT ON COLUMN salesmgmt.activity.lead_id IS 'Lead the communication was with (kept after conversion, when account_id and contact_id are filled in).';

ALTER TABLE salesmgmt.sales_task ADD COLUMN lead_id bigint;
COMMENT ON COLUMN salesmgmt.sales_task.lead_id IS 'Lead the task is about, if any (moves to the account on conversion).';

-- 0.1.0 -> 0.2.0: payments and activities carry their deal's owner (issue
-- 14).  The columns are added (at the end, as core.sql has them) and
-- filled here from the deals; the triggers that keep them and the read
-- policies that use them are in src/security_deal_owner.sql, a part that
-- the fresh install and this upgrade both run after this delta.
ALTER TABLE salesmgmt.payment ADD COLUMN deal_owner_rep_id bigint;
ALTER TABLE salesmgmt.activity ADD COLUMN deal_owner_rep_id bigint;
COMMENT ON COLUMN salesmgmt.payment.deal_owner_rep_id IS 'Owner of the deal, a copy of deal.owner_rep_id kept by the triggers payment_deal_owner_insert, payment_deal_owner_update and deal_owner_cascade (row-level security reads it instead of looking the deal up); not written by hand.';
COMMENT ON COLUMN salesmgmt.activity.deal_owner_rep_id IS 'Owner of the deal (null without a deal), a copy of deal.owner_rep_id kept by the triggers activity_deal_owner_insert, activity_deal_owner_update and deal_owner_cascade (row-level security reads it instead of looking the deal up); not written by hand.';
UPDATE salesmgmt.payment p SET deal_owner_rep_id = d.owner_rep_id
  FROM salesmgmt.deal d WHERE d.deal_id = p.deal_id;
UPDATE salesmgmt.activity a SET deal_owner_rep_id = d.owner_rep_id
  FROM salesmgmt.deal d WHERE d.deal_id = a.deal_id;

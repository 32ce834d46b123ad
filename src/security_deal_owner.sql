-- security_deal_owner.sql: the rows that hang off deals carry their deal's
-- owner (issue 14).  payment.deal_owner_rep_id and
-- activity.deal_owner_rep_id (columns in core.sql; the upgrade delta
-- upgrade/0.1.0--0.2.0/deal-owner.sql adds and fills them) are copies of
-- deal.owner_rep_id kept by the C triggers below (src/org_deal_owner.c),
-- so that the read policies decide from the row itself with the deal
-- table's own predicate, salesmgmt.deal_visible(deal_id, owner): the owner
-- is visible, or a credit split shares the deal with a visible rep.  No
-- look-up of the deal per row, no sub-select (the form Citus accepts).
--
-- Exact under concurrency: a child row's copy is read FOR KEY SHARE of its
-- deal (the foreign key's own lock), a reassignment first locks the deal
-- FOR UPDATE (so it waits for a child being written, and a child written
-- meanwhile waits for it and takes the new owner), then updates the deal's
-- children in its own transaction.  Every snapshot sees children that
-- agree with their deal; stage moves and children do not wait for each
-- other.

CREATE FUNCTION salesmgmt._deal_owner_copy()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'sm_deal_owner_copy';
COMMENT ON FUNCTION salesmgmt._deal_owner_copy() IS 'Internal trigger (BEFORE INSERT OR UPDATE of payment and activity): sets deal_owner_rep_id to the owner of the row''s deal, read FOR KEY SHARE as the table''s owner (null without a deal).';

CREATE FUNCTION salesmgmt._deal_owner_cascade()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'sm_deal_owner_cascade';
COMMENT ON FUNCTION salesmgmt._deal_owner_cascade() IS 'Internal trigger (AFTER UPDATE of deal when its owner changed): the deal''s payments and activities take the new owner in deal_owner_rep_id, in the same transaction.';

CREATE FUNCTION salesmgmt._deal_owner_lock()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'sm_deal_owner_lock';
COMMENT ON FUNCTION salesmgmt._deal_owner_lock() IS 'Internal trigger (BEFORE UPDATE of deal when its owner changes): locks the deal FOR UPDATE, so that the payments and activities being written finish first and those written meanwhile take the new owner.';

REVOKE ALL ON FUNCTION salesmgmt._deal_owner_copy(), salesmgmt._deal_owner_cascade(),
    salesmgmt._deal_owner_lock() FROM PUBLIC;

-- a new row; a row moved to another deal or whose copy was written by
-- hand (the cascade's own updates pass here too: they read the new owner)
CREATE TRIGGER payment_deal_owner_insert
    BEFORE INSERT ON salesmgmt.payment
    FOR EACH ROW EXECUTE FUNCTION salesmgmt._deal_owner_copy();
CREATE TRIGGER payment_deal_owner_update
    BEFORE UPDATE ON salesmgmt.payment FOR EACH ROW
    WHEN (OLD.deal_id IS DISTINCT FROM NEW.deal_id
          OR OLD.deal_owner_rep_id IS DISTINCT FROM NEW.deal_owner_rep_id)
    EXECUTE FUNCTION salesmgmt._deal_owner_copy();
CREATE TRIGGER activity_deal_owner_insert
    BEFORE INSERT ON salesmgmt.activity
    FOR EACH ROW EXECUTE FUNCTION salesmgmt._deal_owner_copy();
CREATE TRIGGER activity_deal_owner_update
    BEFORE UPDATE ON salesmgmt.activity FOR EACH ROW
    WHEN (OLD.deal_id IS DISTINCT FROM NEW.deal_id
          OR OLD.deal_owner_rep_id IS DISTINCT FROM NEW.deal_owner_rep_id)
    EXECUTE FUNCTION salesmgmt._deal_owner_copy();
-- a reassignment: the children follow
CREATE TRIGGER deal_owner_lock
    BEFORE UPDATE ON salesmgmt.deal FOR EACH ROW
    WHEN (OLD.owner_rep_id IS DISTINCT FROM NEW.owner_rep_id)
    EXECUTE FUNCTION salesmgmt._deal_owner_lock();
CREATE TRIGGER deal_owner_cascade
    AFTER UPDATE ON salesmgmt.deal FOR EACH ROW
    WHEN (OLD.owner_rep_id IS DISTINCT FROM NEW.owner_rep_id)
    EXECUTE FUNCTION salesmgmt._deal_owner_cascade();

COMMENT ON TRIGGER payment_deal_owner_insert ON salesmgmt.payment IS 'Row-level security: a new payment carries its deal''s owner (deal_owner_rep_id).';
COMMENT ON TRIGGER payment_deal_owner_update ON salesmgmt.payment IS 'Row-level security: a payment moved to another deal, or whose deal_owner_rep_id was written, carries its deal''s owner.';
COMMENT ON TRIGGER activity_deal_owner_insert ON salesmgmt.activity IS 'Row-level security: a new activity carries its deal''s owner (deal_owner_rep_id; null without a deal).';
COMMENT ON TRIGGER activity_deal_owner_update ON salesmgmt.activity IS 'Row-level security: an activity moved to another deal, or whose deal_owner_rep_id was written, carries its deal''s owner.';
COMMENT ON TRIGGER deal_owner_lock ON salesmgmt.deal IS 'Row-level security: a deal that changes owner is locked FOR UPDATE first, so that its payments and activities written meanwhile take the new owner.';
COMMENT ON TRIGGER deal_owner_cascade ON salesmgmt.deal IS 'Row-level security: when a deal changes owner, its payments and activities take the new owner in the same transaction.';

-- The read policies: the deal's own predicate on the carried owner (the
-- earlier form, deal_visible(deal_id), looked the owner up per row).
ALTER POLICY payment_read ON salesmgmt.payment
    USING (salesmgmt.deal_visible(deal_id, deal_owner_rep_id));
-- An activity's three ways of being seen in one call per row
-- (src/org_deal_owner.c): the expression
--   rep_visible(rep_id) OR deal_visible(deal_id, deal_owner_rep_id)
--   OR (deal_id IS NULL AND account_changeable(account_id))
-- made three calls for each row a manager does not see, which is most of
-- a regional manager's scan.
CREATE FUNCTION salesmgmt.activity_visible(p_rep_id bigint, p_deal_id bigint,
                                           p_deal_owner_rep_id bigint, p_account_id bigint)
RETURNS boolean
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_activity_visible';
COMMENT ON FUNCTION salesmgmt.activity_visible(bigint, bigint, bigint, bigint) IS 'Per-row policy predicate of activity: true when the current role sees the rep who did it, or the deal it is about (p_deal_owner_rep_id: the deal''s owner carried on the row), or, not about a deal, owns its account through a visible rep; the same as rep_visible(rep) OR deal_visible(deal, owner) OR (deal IS NULL AND account_changeable(account)) in one call; false where a null argument leaves nothing to see.';
GRANT EXECUTE ON FUNCTION salesmgmt.activity_visible(bigint, bigint, bigint, bigint)
    TO salesmgmt_admin, salesmgmt_manager, salesmgmt_rep;
ALTER POLICY activity_read ON salesmgmt.activity
    USING (salesmgmt.activity_visible(rep_id, deal_id, deal_owner_rep_id, account_id));

SELECT salesmgmt._apply_default_security();

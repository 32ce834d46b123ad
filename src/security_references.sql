-- security_references.sql: the rows a rep or manager refers to.  Foreign
-- keys check that a referenced row exists, as the table's owner and
-- whatever the writer may see; row-level security checks the new row's
-- own columns.  Neither stops a rep from filing an activity under a
-- colleague's deal (it then shows in the colleague's activity list) or
-- from pairing a deal with another customer's account.  These triggers do,
-- for every reference a rep or manager writes in activity and sales_task.
-- See docs/security.md, "What an attacker with a rep's login can and
-- cannot do".

-- BEFORE INSERT OR UPDATE; checks a row whose deal_id, account_id,
-- contact_id or lead_id is new or changed, found by column name (a concern
-- that adds such a column to a table with this trigger is covered).  Runs
-- with the writer's rights (not SECURITY DEFINER) so that it sees what the
-- writer sees.  How and why: src/security_references.c.
CREATE FUNCTION salesmgmt._check_references() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'sm_check_references';
COMMENT ON FUNCTION salesmgmt._check_references() IS 'Internal trigger: a rep or manager may refer only to deals, accounts, contacts and leads they can see (42501, the same for a row that does not exist), and the references must agree: the deal''s account and the contact''s account are the row''s account (23514). Admins are not checked.';

CREATE TRIGGER activity_references_visible
    BEFORE INSERT OR UPDATE ON salesmgmt.activity
    FOR EACH ROW WHEN (NOT pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE'))
    EXECUTE FUNCTION salesmgmt._check_references();
COMMENT ON TRIGGER activity_references_visible ON salesmgmt.activity IS 'A rep or manager records activities only about deals, accounts and contacts they see, and with the deal''s and the contact''s own account.';
CREATE TRIGGER sales_task_references_visible
    BEFORE INSERT OR UPDATE ON salesmgmt.sales_task
    FOR EACH ROW WHEN (NOT pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE'))
    EXECUTE FUNCTION salesmgmt._check_references();
COMMENT ON TRIGGER sales_task_references_visible ON salesmgmt.sales_task IS 'A rep or manager plans tasks only about deals and accounts they see, and with the deal''s own account.';

SELECT salesmgmt._apply_default_security();

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

-- Feedback: the same references (deal_id, account_id), as the writer, and
-- agreeing: feedback about a deal is about the deal's own account.  The
-- policy feedback_insert checks that the writer sees each of them; this
-- trigger also refuses a pair that disagrees (23514) with the error and
-- hint the activities and tasks give.
CREATE TRIGGER feedback_references_visible
    BEFORE INSERT OR UPDATE ON salesmgmt.feedback
    FOR EACH ROW WHEN (NOT pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE'))
    EXECUTE FUNCTION salesmgmt._check_references();
COMMENT ON TRIGGER feedback_references_visible ON salesmgmt.feedback IS 'A rep or manager records feedback only about deals and accounts they see, and with the deal''s own account.';

-- Times the server sets.  Reps and managers have no INSERT or UPDATE right
-- on created_at, updated_at, stage_entered_at, closed_at or completed_at
-- (src/security.sql): a rep who set them could date a deal won, a task done
-- or an account opened into whichever period a KPI or a contest counts.
-- The defaults and the pipeline trigger set the deal's; a task's completion
-- time is set here when it is marked done without one (always, for reps
-- and managers, who cannot write it; admins, imports and backfills may
-- still give their own) and cleared when a done task is reopened.
CREATE FUNCTION salesmgmt._sales_task_completed_at() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.status = 'done' AND NEW.completed_at IS NULL THEN
        NEW.completed_at := pg_catalog.now();
    ELSIF NEW.status <> 'done' AND TG_OP = 'UPDATE' AND OLD.status = 'done'
          AND NEW.completed_at IS NOT DISTINCT FROM OLD.completed_at THEN
        NEW.completed_at := NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION salesmgmt._sales_task_completed_at() IS 'Internal trigger: a task marked done without a completion time is completed now (reps and managers cannot write completed_at, so theirs always is); a done task reopened loses its completion time.';
CREATE TRIGGER sales_task_completed_at
    BEFORE INSERT OR UPDATE OF status ON salesmgmt.sales_task
    FOR EACH ROW EXECUTE FUNCTION salesmgmt._sales_task_completed_at();
COMMENT ON TRIGGER sales_task_completed_at ON salesmgmt.sales_task IS 'The server sets completed_at when a task is marked done without one, and clears it when the task is reopened.';

SELECT salesmgmt._apply_default_security();

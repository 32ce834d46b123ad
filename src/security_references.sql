-- security_references.sql: the rows a rep or manager refers to.  Foreign
-- keys check that a referenced row exists, as the table's owner and
-- whatever the writer may see; row-level security checks the new row's
-- own columns.  Neither stops a rep from filing an activity under a
-- colleague's deal (it then shows in the colleague's activity list) or
-- from pairing a deal with another customer's account.  These triggers do,
-- for every reference a rep or manager writes in activity and sales_task.
-- See docs/security.md, "What an attacker with a rep's login can and
-- cannot do".

-- BEFORE INSERT OR UPDATE of the reference columns.  SECURITY INVOKER on
-- purpose: visibility is checked by reading the referenced rows as the
-- writer, under the writer's own row-level security (a definer function
-- would read them as the owner and see everything).  A row the writer
-- cannot see and a row that does not exist get the same error, so the
-- check reveals nothing.  Admins (and superusers) write any reference:
-- imports and corrections.  The columns are read from the row by name, so
-- one function serves every table with some of deal_id, account_id and
-- contact_id.
CREATE FUNCTION salesmgmt._check_references() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_row             jsonb;
    v_deal            bigint;
    v_account         bigint;
    v_contact         bigint;
    v_deal_account    bigint;
    v_contact_account bigint;
BEGIN
    -- (the triggers' WHEN clause spares admins the call; this keeps the
    -- function right wherever it is used)
    IF pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE') THEN
        RETURN NEW;
    END IF;
    v_row := pg_catalog.to_jsonb(NEW);
    v_deal := (v_row ->> 'deal_id')::bigint;
    v_account := (v_row ->> 'account_id')::bigint;
    v_contact := (v_row ->> 'contact_id')::bigint;

    IF v_deal IS NOT NULL THEN
        SELECT d.account_id INTO v_deal_account FROM salesmgmt.deal d WHERE d.deal_id = v_deal;
        IF NOT FOUND THEN
            RAISE EXCEPTION '% refers to deal %, which is not a deal you can see', TG_TABLE_NAME, v_deal
                USING ERRCODE = '42501', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME, COLUMN = 'deal_id',
                      HINT = 'Refer only to deals you own, your team''s, or deals shared with you by a credit split.';
        END IF;
    END IF;
    IF v_account IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM salesmgmt.account a WHERE a.account_id = v_account)
    THEN
        RAISE EXCEPTION '% refers to account %, which is not an account you can see', TG_TABLE_NAME, v_account
            USING ERRCODE = '42501', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME, COLUMN = 'account_id',
                  HINT = 'Refer only to accounts you (or your team) own, or the accounts of deals you see.';
    END IF;
    IF v_contact IS NOT NULL THEN
        SELECT c.account_id INTO v_contact_account FROM salesmgmt.contact c WHERE c.contact_id = v_contact;
        IF NOT FOUND THEN
            RAISE EXCEPTION '% refers to contact %, which is not a contact you can see', TG_TABLE_NAME, v_contact
                USING ERRCODE = '42501', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME, COLUMN = 'contact_id',
                      HINT = 'Refer only to contacts of accounts you see.';
        END IF;
    END IF;

    -- the references must agree: one customer per row
    IF v_deal IS NOT NULL AND v_account IS NOT NULL AND v_deal_account <> v_account THEN
        RAISE EXCEPTION '% refers to deal % and account %, but the deal is with account %',
            TG_TABLE_NAME, v_deal, v_account, v_deal_account
            USING ERRCODE = '23514', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
                  HINT = 'Use the deal''s own account, or leave deal_id null.';
    END IF;
    IF v_contact IS NOT NULL AND coalesce(v_account, v_deal_account) <> v_contact_account THEN
        RAISE EXCEPTION '% refers to contact % of account %, but to account %',
            TG_TABLE_NAME, v_contact, v_contact_account, coalesce(v_account, v_deal_account)
            USING ERRCODE = '23514', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
                  HINT = 'Use a contact of the row''s account, or leave contact_id null.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION salesmgmt._check_references() IS 'Internal trigger: a rep or manager may refer only to deals, accounts and contacts they can see (42501, the same for a row that does not exist), and the references must agree: the deal''s account and the contact''s account are the row''s account (23514). Admins are not checked.';

CREATE TRIGGER activity_references_visible
    BEFORE INSERT OR UPDATE OF account_id, contact_id, deal_id ON salesmgmt.activity
    FOR EACH ROW WHEN (NOT pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE'))
    EXECUTE FUNCTION salesmgmt._check_references();
COMMENT ON TRIGGER activity_references_visible ON salesmgmt.activity IS 'A rep or manager records activities only about deals, accounts and contacts they see, and with the deal''s and the contact''s own account.';
CREATE TRIGGER sales_task_references_visible
    BEFORE INSERT OR UPDATE OF account_id, deal_id ON salesmgmt.sales_task
    FOR EACH ROW WHEN (NOT pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE'))
    EXECUTE FUNCTION salesmgmt._check_references();
COMMENT ON TRIGGER sales_task_references_visible ON salesmgmt.sales_task IS 'A rep or manager plans tasks only about deals and accounts they see, and with the deal''s own account.';

SELECT salesmgmt._apply_default_security();

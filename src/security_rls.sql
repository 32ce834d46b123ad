-- security_rls.sql: the building blocks every concern's row-level security
-- uses from 0.2.0 on.  Comes right after security.sql in the install script
-- and whole in the upgrade from 0.1.0 (it only adds objects).
--
--   * per-row visibility predicates, the one policy form a distributed
--     PostgreSQL (Citus) accepts: a policy calls
--     salesmgmt.rep_visible(owner_rep_id) or salesmgmt.deal_visible(deal_id)
--     instead of IN (SELECT ...) sub-selects;
--   * salesmgmt._apply_default_security(), which each concern added after
--     security.sql calls at the end of its part: default deny (row-level
--     security with the admin policy) for its tables, security_invoker
--     views readable by the three roles, its functions taken from PUBLIC
--     and given to admins.  A concern grants reps and managers what they
--     may do before calling it.

-- True when the current role sees the rows of the rep: admins every rep,
-- managers their team trees, reps themselves; null for a null rep.
CREATE FUNCTION salesmgmt.rep_visible(p_rep_id bigint)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN p_rep_id IS NULL THEN NULL
        WHEN pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE') THEN true
        ELSE p_rep_id IN (SELECT salesmgmt.visible_rep_ids())
    END;
$$;
COMMENT ON FUNCTION salesmgmt.rep_visible(bigint) IS 'Per-row policy predicate: true when the current role sees the rows of the rep (admins every rep, managers their team trees, reps themselves); null for a null rep.';

-- True when the current role sees the deal: its owner is visible, or the
-- deal is shared with a visible rep by a credit split.  Reads deal and
-- deal_split as the owner: a predicate that depended on the caller's own
-- policies on deal would recurse.
CREATE FUNCTION salesmgmt.deal_visible(p_deal_id bigint)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN p_deal_id IS NULL THEN NULL
        WHEN pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE') THEN
            EXISTS (SELECT 1 FROM salesmgmt.deal d WHERE d.deal_id = p_deal_id)
        ELSE EXISTS (SELECT 1 FROM salesmgmt.deal d
                      WHERE d.deal_id = p_deal_id
                        AND (d.owner_rep_id IN (SELECT salesmgmt.visible_rep_ids())
                             OR d.deal_id IN (SELECT salesmgmt.split_deal_ids())))
    END;
$$;
COMMENT ON FUNCTION salesmgmt.deal_visible(bigint) IS 'Per-row policy predicate: true when the deal exists and the current role sees it (its owner is visible, or a credit split shares it with a visible rep); null for a null deal.';

GRANT EXECUTE ON FUNCTION salesmgmt.rep_visible(bigint), salesmgmt.deal_visible(bigint)
    TO salesmgmt_admin, salesmgmt_manager, salesmgmt_rep;

-- The default security of everything a concern created: see the header.
-- Idempotent; objects already secured are left as they are.
CREATE FUNCTION salesmgmt._apply_default_security()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o regclass;
    f regprocedure;
BEGIN
    -- tables without row-level security: default deny, admins see all
    -- (the configuration that security.sql leaves readable by all is the
    -- exception, as there)
    FOR o IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind IN ('r', 'p')
           AND NOT c.relrowsecurity
           AND c.relname NOT IN ('currency', 'currency_rate', 'team', 'rep', 'pipeline', 'stage',
                                 'stage_transition')
         ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', o);
        EXECUTE pg_catalog.format(
            'CREATE POLICY admin_all ON %s TO salesmgmt_admin USING (true) WITH CHECK (true)', o);
        EXECUTE pg_catalog.format('COMMENT ON POLICY admin_all ON %s IS %L', o,
                                  'Admins see and change every row.');
    END LOOP;

    -- tables and sequences never granted: nothing for PUBLIC, all for admins
    FOR o IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind IN ('r', 'p', 'S')
           AND c.relacl IS NULL
         ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM PUBLIC', o);
        IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = o) = 'S' THEN
            EXECUTE pg_catalog.format('GRANT USAGE, SELECT ON SEQUENCE %s TO salesmgmt_admin', o);
        ELSE
            EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO salesmgmt_admin', o);
        END IF;
    END LOOP;

    -- views: with the reader's rights (policies apply), readable by all three
    FOR o IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind = 'v'
           AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)
         ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('ALTER VIEW %s SET (security_invoker = true)', o);
        EXECUTE pg_catalog.format('GRANT SELECT ON %s TO salesmgmt_admin, salesmgmt_manager, salesmgmt_rep', o);
    END LOOP;

    -- functions PUBLIC may still execute (CREATE FUNCTION grants that by
    -- default, and a GRANT to a role keeps it): not for PUBLIC, executable
    -- by admins
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'salesmgmt'::regnamespace
           AND EXISTS (SELECT 1
                         FROM pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
                        WHERE a.grantee = 0)
         ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO salesmgmt_admin', f);
    END LOOP;
END
$$;
COMMENT ON FUNCTION salesmgmt._apply_default_security() IS 'Internal: default deny for the extension''s objects not secured yet (row-level security with the admin policy, no PUBLIC rights, security_invoker views); each concern added after security.sql calls it at the end of its part.';

SELECT salesmgmt._apply_default_security();
REVOKE EXECUTE ON FUNCTION salesmgmt._apply_default_security() FROM salesmgmt_admin;

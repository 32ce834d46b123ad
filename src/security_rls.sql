-- security_rls.sql: the building blocks every concern's row-level security
-- uses from 0.2.0 on.  Comes right after security.sql in the install script
-- and whole in the upgrade from 0.1.0 (it only adds objects).
--
--   * (the per-row visibility predicates a concern's policies call,
--     salesmgmt.rep_visible(owner_rep_id), salesmgmt.deal_visible(deal_id)
--     and the others, are in src/security_org.sql, in C);
--   * salesmgmt._apply_default_security(), which each concern added after
--     security.sql calls at the end of its part: default deny (row-level
--     security with the admin policy) for its tables, security_invoker
--     views readable by the three roles, its functions taken from PUBLIC
--     and given to admins.  A concern grants reps and managers what they
--     may do before calling it.

-- BI logins: salesmgmt_analyst reads every row of every table and view but
-- the webhook secrets, writes nothing, and does not bypass row-level
-- security (a "true" read policy per table, made by the function below for
-- every concern's tables).  Cluster-wide, like the other three roles.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'salesmgmt_analyst') THEN
        CREATE ROLE salesmgmt_analyst NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA salesmgmt TO salesmgmt_analyst;

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

    -- the analyst: a read policy on every table with row-level security,
    -- SELECT on every table and view (secrets left out column by column)
    FOR o IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind IN ('r', 'p')
           AND c.relrowsecurity
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                            WHERE p.polrelid = c.oid AND p.polname = 'analyst_read')
         ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format(
            'CREATE POLICY analyst_read ON %s FOR SELECT TO salesmgmt_analyst USING (true)', o);
        EXECUTE pg_catalog.format('COMMENT ON POLICY analyst_read ON %s IS %L', o,
                                  'BI logins (salesmgmt_analyst) read every row.');
    END LOOP;
    FOR o IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
           AND NOT pg_catalog.has_any_column_privilege('salesmgmt_analyst', c.oid, 'SELECT')
         ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('GRANT SELECT (%s) ON %s TO salesmgmt_analyst',
            (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
               FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = o AND a.attnum > 0 AND NOT a.attisdropped
                AND a.attname !~ 'secret'), o);
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

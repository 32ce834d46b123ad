-- security: the roles, and the catalog rules every concern must follow.
-- Each query below lists violations, so new tables, views and functions
-- are checked as they are added to the extension.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;

-- the three group roles: NOLOGIN, no special powers
SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls
  FROM pg_roles WHERE rolname IN ('salesmgmt_admin', 'salesmgmt_manager', 'salesmgmt_rep')
 ORDER BY 1;

-- the objects of the extension, from the catalog
CREATE TEMP VIEW ext_object AS
SELECT d.classid, d.objid
  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'salesmgmt';

-- every SECURITY DEFINER function pins search_path to pg_catalog, pg_temp
SELECT count(*) > 0 AS has_definer_functions
  FROM ext_object o JOIN pg_proc p ON o.classid = 'pg_proc'::regclass AND p.oid = o.objid
 WHERE p.prosecdef;
SELECT p.oid::regprocedure AS definer_without_pinned_search_path, p.proconfig
  FROM ext_object o JOIN pg_proc p ON o.classid = 'pg_proc'::regclass AND p.oid = o.objid
 WHERE p.prosecdef
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
 ORDER BY p.oid::regprocedure::text;

-- a definer function must not be executable by PUBLIC, nor by reps unless
-- it is one of the visibility helpers (which answer only for the caller)
SELECT p.oid::regprocedure AS definer_open_to_reps
  FROM ext_object o JOIN pg_proc p ON o.classid = 'pg_proc'::regclass AND p.oid = o.objid
 WHERE p.prosecdef
   AND (has_function_privilege('salesmgmt_rep', p.oid, 'EXECUTE')
        OR has_function_privilege('salesmgmt_manager', p.oid, 'EXECUTE'))
 ORDER BY p.oid::regprocedure::text;

-- views run with the querying role's rights, so row-level security applies
SELECT c.oid::regclass AS view_without_security_invoker
  FROM ext_object o JOIN pg_class c ON o.classid = 'pg_class'::regclass AND c.oid = o.objid
 WHERE c.relkind = 'v' AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)
 ORDER BY 1;
SELECT c.oid::regclass AS matview_readable_by_reps
  FROM ext_object o JOIN pg_class c ON o.classid = 'pg_class'::regclass AND c.oid = o.objid
 WHERE c.relkind = 'm'
   AND (has_table_privilege('salesmgmt_rep', c.oid, 'SELECT')
        OR has_table_privilege('salesmgmt_manager', c.oid, 'SELECT'))
 ORDER BY 1;

-- nothing granted to PUBLIC
SELECT 'relation' AS kind, c.oid::regclass::text AS object, a.privilege_type
  FROM ext_object o JOIN pg_class c ON o.classid = 'pg_class'::regclass AND c.oid = o.objid,
       aclexplode(c.relacl) a WHERE a.grantee = 0
UNION ALL
SELECT 'function', p.oid::regprocedure::text, a.privilege_type
  FROM ext_object o JOIN pg_proc p ON o.classid = 'pg_proc'::regclass AND p.oid = o.objid,
       aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a WHERE a.grantee = 0
UNION ALL
SELECT 'schema', n.nspname::text, a.privilege_type
  FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
 WHERE n.nspname = 'salesmgmt' AND a.grantee = 0
ORDER BY 1, 2, 3;

-- every table has row-level security, except configuration readable by all
SELECT c.oid::regclass AS table_without_rls
  FROM ext_object o JOIN pg_class c ON o.classid = 'pg_class'::regclass AND c.oid = o.objid
 WHERE c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
   AND c.relname NOT IN ('currency', 'currency_rate', 'team', 'rep', 'pipeline', 'stage', 'stage_transition')
 ORDER BY 1;
-- and reps and managers may change no table without row-level security
SELECT c.oid::regclass AS writable_without_rls, r.rolname
  FROM ext_object o JOIN pg_class c ON o.classid = 'pg_class'::regclass AND c.oid = o.objid,
       pg_roles r
 WHERE c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
   AND r.rolname IN ('salesmgmt_rep', 'salesmgmt_manager')
   AND (has_table_privilege(r.oid, c.oid, 'DELETE, TRUNCATE')
        OR has_any_column_privilege(r.oid, c.oid, 'INSERT, UPDATE'))
 ORDER BY 1, 2;
-- a table with row-level security that reps may read has a policy for them
SELECT c.oid::regclass AS readable_without_rep_policy
  FROM ext_object o JOIN pg_class c ON o.classid = 'pg_class'::regclass AND c.oid = o.objid
 WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity
   AND has_table_privilege('salesmgmt_rep', c.oid, 'SELECT')
   AND NOT EXISTS (SELECT 1 FROM pg_policy pol
                    WHERE pol.polrelid = c.oid AND 'salesmgmt_rep'::regrole = ANY (pol.polroles))
 ORDER BY 1;

-- what reps and managers may do with each core table (RLS narrows the rows;
-- a and w: on some columns, see the next query)
SELECT c.relname AS "table", c.relrowsecurity AS rls,
       concat_ws(',', CASE WHEN has_table_privilege('salesmgmt_rep', c.oid, 'SELECT') THEN 'r' END,
                      CASE WHEN has_any_column_privilege('salesmgmt_rep', c.oid, 'INSERT') THEN 'a' END,
                      CASE WHEN has_any_column_privilege('salesmgmt_rep', c.oid, 'UPDATE') THEN 'w' END,
                      CASE WHEN has_table_privilege('salesmgmt_rep', c.oid, 'DELETE') THEN 'd' END) AS rep,
       concat_ws(',', CASE WHEN has_table_privilege('salesmgmt_manager', c.oid, 'SELECT') THEN 'r' END,
                      CASE WHEN has_any_column_privilege('salesmgmt_manager', c.oid, 'INSERT') THEN 'a' END,
                      CASE WHEN has_any_column_privilege('salesmgmt_manager', c.oid, 'UPDATE') THEN 'w' END,
                      CASE WHEN has_table_privilege('salesmgmt_manager', c.oid, 'DELETE') THEN 'd' END) AS manager,
       has_table_privilege('salesmgmt_admin', c.oid, 'SELECT, INSERT, UPDATE, DELETE') AS admin
  FROM ext_object o JOIN pg_class c ON o.classid = 'pg_class'::regclass AND c.oid = o.objid
 WHERE c.relkind IN ('r', 'p')
   AND c.relname IN ('currency', 'currency_rate', 'team', 'rep', 'account', 'contact', 'pipeline',
                     'stage', 'deal', 'deal_split', 'payment', 'activity', 'quota', 'sales_task',
                     'stage_transition', 'deal_stage_history')
 ORDER BY 1;
-- the columns of those tables reps and managers may not write: the ids
SELECT c.relname AS "table", a.attname AS "column",
       concat_ws(',', CASE WHEN NOT has_column_privilege(r, c.oid, a.attnum, 'INSERT') THEN 'no insert' END,
                      CASE WHEN NOT has_column_privilege(r, c.oid, a.attnum, 'UPDATE') THEN 'no update' END) AS refused,
       r AS "role"
  FROM ext_object o JOIN pg_class c ON o.classid = 'pg_class'::regclass AND c.oid = o.objid
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped,
       unnest(ARRAY['salesmgmt_rep', 'salesmgmt_manager']) AS r
 WHERE c.relkind IN ('r', 'p') AND has_any_column_privilege(r, c.oid, 'INSERT, UPDATE')
   AND c.relname IN ('account', 'contact', 'deal', 'deal_split', 'activity', 'sales_task')
   AND NOT (has_column_privilege(r, c.oid, a.attnum, 'INSERT') AND has_column_privilege(r, c.oid, a.attnum, 'UPDATE'))
 ORDER BY 1, 2, 4;

-- every view is readable by reps and managers (security_invoker, checked
-- above, leaves the rows to the tables' policies)
SELECT c.oid::regclass AS view_not_readable_by_reps
  FROM ext_object o JOIN pg_class c ON o.classid = 'pg_class'::regclass AND c.oid = o.objid
 WHERE c.relkind = 'v'
   AND NOT (has_table_privilege('salesmgmt_rep', c.oid, 'SELECT')
            AND has_table_privilege('salesmgmt_manager', c.oid, 'SELECT'))
 ORDER BY c.oid::regclass::text;

-- functions of the core, pipeline and security parts reps may call (the
-- other concerns' are granted in src/security.sql as they exist)
SELECT p.oid::regprocedure AS executable_by_reps, p.prosecdef AS definer
  FROM ext_object o JOIN pg_proc p ON o.classid = 'pg_proc'::regclass AND p.oid = o.objid
 WHERE has_function_privilege('salesmgmt_rep', p.oid, 'EXECUTE')
   AND p.proname NOT IN ('forecast', 'forecast_range', 'win_rates', 'commission_line_explanation',
                         '_commission_pct', '_commission_money', 'kpi_score', 'kpi_metrics',
                         'reporting_currency')
   -- the forecast_dist type's aggregate and functions: pure, granted to all
   AND p.proname <> 'forecast_dist_agg'
   AND NOT 'salesmgmt.forecast_dist'::regtype = ANY (p.proargtypes::oid[]::regtype[])
 ORDER BY p.oid::regprocedure::text;
-- functions managers may call beyond those
SELECT p.oid::regprocedure AS executable_by_managers_only
  FROM ext_object o JOIN pg_proc p ON o.classid = 'pg_proc'::regclass AND p.oid = o.objid
 WHERE has_function_privilege('salesmgmt_manager', p.oid, 'EXECUTE')
   AND NOT has_function_privilege('salesmgmt_rep', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;

-- policies on the core tables
SELECT tablename, policyname, cmd, roles
  FROM pg_policies
 WHERE schemaname = 'salesmgmt'
   AND tablename IN ('account', 'contact', 'deal', 'deal_split', 'payment', 'activity', 'quota',
                     'sales_task', 'deal_stage_history')
 ORDER BY 1, 2;

-- the plans: a rep's query calls one per-row C predicate (no sub-plan),
-- an admin's query carries no filter at all
CREATE ROLE regress_sec_rep;
CREATE ROLE regress_sec_admin;
GRANT salesmgmt_rep TO regress_sec_rep;
GRANT salesmgmt_admin TO regress_sec_admin;
SET ROLE regress_sec_rep;
EXPLAIN (COSTS OFF) SELECT count(*) FROM salesmgmt.deal;
SET ROLE regress_sec_admin;
EXPLAIN (COSTS OFF) SELECT count(*) FROM salesmgmt.deal;
RESET ROLE;

-- a rep row may not be mapped to a group or predefined role
\set VERBOSITY terse
INSERT INTO salesmgmt.rep (name, db_role) VALUES ('group', 'salesmgmt_manager');
INSERT INTO salesmgmt.rep (name, db_role) VALUES ('predefined', 'pg_read_all_data');
\set VERBOSITY default
SELECT count(*) FROM salesmgmt.rep;

DROP ROLE regress_sec_rep, regress_sec_admin;

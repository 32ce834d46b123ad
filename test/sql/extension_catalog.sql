-- extension_catalog.sql: the catalog of the salesmgmt extension as sorted
-- text, one query.  test/t/005_upgrade.pl runs it in a database upgraded
-- from the previous release and in a fresh install and compares the two
-- outputs line by line: every difference is an upgrade-script bug.
--
-- Covers the schema, tables and their columns (in order, with type, not
-- null, default, identity, generated, collation, options), relation options
-- and row-level security, constraints, indexes, triggers, policies, views,
-- sequences, types, functions with their definitions and attributes, ACLs
-- of relations, columns, functions, types, schema and sequences, default
-- privileges, comments on every object (columns and policies too),
-- extension membership and the pg_dump registrations (extconfig and
-- extcondition).  The installing role (the extension's owner) prints as
-- <installer>, so who installed does not matter; privileges are compared
-- as effective ACLs (a NULL ACL as its default).
SET search_path = pg_catalog;
WITH ext AS (
    SELECT oid, extowner, extnamespace FROM pg_extension WHERE extname = 'salesmgmt'
), member AS (		-- every object of the extension
    SELECT d.classid, d.objid FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), rel AS (
    SELECT c.* FROM pg_class c, ext WHERE c.relnamespace = ext.extnamespace
), fn AS (
    SELECT p.* FROM pg_proc p, ext WHERE p.pronamespace = ext.extnamespace
), acl AS (		-- (object, acl) pairs of everything that has one
    SELECT 'relation ' || c.oid::regclass AS obj, c.relowner AS owner,
           coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)) AS acl
      FROM rel c
    UNION ALL
    SELECT 'column ' || c.oid::regclass || '.' || quote_ident(a.attname), c.relowner, a.attacl
      FROM rel c JOIN pg_attribute a ON a.attrelid = c.oid
     WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure, p.proowner, coalesce(p.proacl, acldefault('f'::"char", p.proowner))
      FROM fn p
    UNION ALL
    SELECT 'schema ' || quote_ident(n.nspname), n.nspowner, coalesce(n.nspacl, acldefault('n'::"char", n.nspowner))
      FROM pg_namespace n, ext WHERE n.oid = ext.extnamespace
    UNION ALL
    SELECT 'type ' || t.oid::regtype, t.typowner, coalesce(t.typacl, acldefault('T'::"char", t.typowner))
      FROM pg_type t, ext WHERE t.typnamespace = ext.extnamespace AND t.typacl IS NOT NULL
)
SELECT line FROM (
    -- the extension and its schema
    SELECT 'extension ' || e.extname || ' ' || e.extversion || ' schema ' || e.extnamespace::regnamespace
           || ' relocatable ' || e.extrelocatable AS line
      FROM pg_extension e WHERE e.extname = 'salesmgmt'
    UNION ALL
    SELECT 'schema ' || n.nspname || ' owner '
           || CASE WHEN n.nspowner = ext.extowner THEN '<installer>' ELSE pg_get_userbyid(n.nspowner) END
      FROM pg_namespace n, ext WHERE n.oid = ext.extnamespace
    -- relations: kind, persistence, options, row-level security, owner
    UNION ALL
    SELECT format('relation %s kind %s persistence %s options %s rls %s force %s replident %s owner %s',
                  c.oid::regclass, c.relkind, c.relpersistence, c.reloptions, c.relrowsecurity,
                  c.relforcerowsecurity, c.relreplident,
                  CASE WHEN c.relowner = ext.extowner THEN '<installer>' ELSE pg_get_userbyid(c.relowner) END)
      FROM rel c, ext WHERE c.relkind NOT IN ('i', 'I')   -- indexes: below
    -- columns of tables, views and composite types, in order
    UNION ALL
    SELECT format('column %s #%s %s %s%s default %s identity %s generated %s collation %s options %s stats %s storage %s',
                  c.oid::regclass,
                  row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
                  quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
                  CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                  pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
                  CASE WHEN a.attcollation <> 0 THEN a.attcollation::regcollation::text END,
                  (SELECT array_agg(o ORDER BY o) FROM unnest(a.attoptions) o
                    WHERE o NOT LIKE 'pg\_attver=%'),   -- a per-column stamp of recent servers
                  a.attstattarget, a.attstorage)
      FROM rel c JOIN pg_attribute a ON a.attrelid = c.oid
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind NOT IN ('i', 'I', 'S')
    -- constraints of tables and domains
    UNION ALL
    SELECT format('constraint %s %s %s: %s', coalesce(co.conrelid::regclass::text, co.contypid::regtype::text),
                  quote_ident(co.conname), co.contype, pg_get_constraintdef(co.oid))
      FROM pg_constraint co, ext WHERE co.connamespace = ext.extnamespace
    -- indexes (those of constraints too)
    UNION ALL
    SELECT format('index %s: %s%s', c.oid::regclass, pg_get_indexdef(c.oid),
                  CASE WHEN i.indisclustered THEN ' clustered' ELSE '' END)
      FROM rel c JOIN pg_index i ON i.indexrelid = c.oid
    -- triggers
    UNION ALL
    SELECT format('trigger %s %s enabled %s: %s', t.tgrelid::regclass, quote_ident(t.tgname), t.tgenabled,
                  pg_get_triggerdef(t.oid))
      FROM pg_trigger t JOIN rel c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal
    -- event triggers the extension owns
    UNION ALL
    SELECT format('event trigger %s on %s enabled %s tags %s function %s', quote_ident(et.evtname), et.evtevent,
                  et.evtenabled, et.evttags, et.evtfoid::regprocedure)
      FROM pg_event_trigger et JOIN member m ON m.classid = 'pg_event_trigger'::regclass AND m.objid = et.oid
    -- policies
    UNION ALL
    SELECT format('policy %s %s cmd %s %s to %s using (%s) with check (%s)', p.polrelid::regclass,
                  quote_ident(p.polname), p.polcmd, CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END,
                  (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r) END, ',' ORDER BY 1)
                     FROM unnest(p.polroles) r),
                  pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
      FROM pg_policy p JOIN rel c ON c.oid = p.polrelid
    -- views and materialized views
    UNION ALL
    SELECT format('view %s: %s', c.oid::regclass, pg_get_viewdef(c.oid, true))
      FROM rel c WHERE c.relkind IN ('v', 'm')
    -- rules other than views' own
    UNION ALL
    SELECT format('rule %s %s: %s', r.ev_class::regclass, quote_ident(r.rulename), pg_get_ruledef(r.oid))
      FROM pg_rewrite r JOIN rel c ON c.oid = r.ev_class WHERE r.rulename <> '_RETURN'
    -- sequences and who owns them
    UNION ALL
    SELECT format('sequence %s type %s start %s increment %s min %s max %s cache %s cycle %s owned by %s',
                  s.seqrelid::regclass, s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
                  s.seqcache, s.seqcycle,
                  (SELECT d.refobjid::regclass || '.' || quote_ident(a.attname) || ' (' || d.deptype::text || ')'
                     FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
                      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
      FROM pg_sequence s JOIN rel c ON c.oid = s.seqrelid
    -- types: enums (labels in order), domains, composites, ranges, base
    UNION ALL
    SELECT format('type %s kind %s%s%s owner %s', t.oid::regtype, t.typtype,
                  CASE t.typtype
                      WHEN 'e' THEN ' labels ' || (SELECT string_agg(quote_literal(l.enumlabel), ',' ORDER BY l.enumsortorder)
                                                     FROM pg_enum l WHERE l.enumtypid = t.oid)
                      WHEN 'd' THEN format(' base %s not null %s default %s collation %s',
                                           format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
                                           CASE WHEN t.typcollation <> 0 THEN t.typcollation::regcollation::text END)
                      WHEN 'r' THEN (SELECT ' subtype ' || r.rngsubtype::regtype FROM pg_range r WHERE r.rngtypid = t.oid)
                      ELSE '' END,
                  CASE WHEN t.typrelid <> 0 THEN ' relation ' || t.typrelid::regclass ELSE '' END,
                  CASE WHEN t.typowner = ext.extowner THEN '<installer>' ELSE pg_get_userbyid(t.typowner) END)
      FROM pg_type t, ext
     WHERE t.typnamespace = ext.extnamespace
       AND t.typcategory <> 'A'                                   -- array types follow their element
       AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
    -- functions: the whole definition and every attribute
    UNION ALL
    SELECT format(E'function %s kind %s volatile %s parallel %s strict %s leakproof %s secdef %s cost %s rows %s config %s owner %s\n%s',
                  p.oid::regprocedure, p.prokind, p.provolatile, p.proparallel, p.proisstrict, p.proleakproof,
                  p.prosecdef, p.procost, p.prorows, p.proconfig,
                  CASE WHEN p.proowner = ext.extowner THEN '<installer>' ELSE pg_get_userbyid(p.proowner) END,
                  CASE WHEN p.prokind = 'a'
                       THEN (SELECT format('aggregate sfunc %s stype %s finalfunc %s combinefunc %s initcond %s',
                                           a.aggtransfn::regproc, a.aggtranstype::regtype, a.aggfinalfn::regproc,
                                           a.aggcombinefn::regproc, a.agginitval)
                               FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
                       ELSE pg_get_functiondef(p.oid) END)
      FROM fn p, ext
    -- privileges, one line per (object, grantee, privilege)
    UNION ALL
    SELECT format('grant %s to %s on %s by %s%s', x.privilege_type,
                  CASE WHEN x.grantee = 0 THEN 'PUBLIC' WHEN x.grantee = ext.extowner THEN '<installer>'
                       ELSE pg_get_userbyid(x.grantee) END,
                  a.obj,
                  CASE WHEN x.grantor = ext.extowner OR x.grantor = a.owner THEN '<installer>'
                       ELSE pg_get_userbyid(x.grantor) END,
                  CASE WHEN x.is_grantable THEN ' with grant option' ELSE '' END)
      FROM acl a CROSS JOIN LATERAL aclexplode(a.acl) x, ext
    -- default privileges set in the extension's schema
    UNION ALL
    SELECT format('default acl for %s in %s on %s: %s', pg_get_userbyid(d.defaclrole), d.defaclnamespace::regnamespace,
                  d.defaclobjtype, d.defaclacl)
      FROM pg_default_acl d, ext WHERE d.defaclnamespace = ext.extnamespace
    -- comments on every object of the database outside the system's own
    -- (columns, constraints, policies, triggers included)
    UNION ALL
    SELECT format('comment on %s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
      FROM pg_description d WHERE d.objoid >= 16384
    -- extension membership
    UNION ALL
    SELECT 'member ' || pg_describe_object(m.classid, m.objid, 0) FROM member m
    -- pg_dump registrations: the configuration tables and their conditions
    UNION ALL
    SELECT format('config dump %s where %s', c.cfg::regclass, quote_literal(c.cond))
      FROM pg_extension e CROSS JOIN LATERAL unnest(e.extconfig, e.extcondition) AS c(cfg, cond)
     WHERE e.extname = 'salesmgmt'
) lines
ORDER BY line COLLATE "C";

-- pgTAP: the write policies of reps and managers name their command
-- (FOR INSERT, FOR UPDATE, FOR DELETE), never FOR ALL, whose USING
-- PostgreSQL adds to every SELECT as well (a read would run the write
-- predicate on each row the read policy does not pass).  The split keeps
-- the rights exactly: what a rep or manager may insert, update, delete and
-- read is the same as with the FOR ALL policies of 0.1.0.
--
-- The world of test/sql/security_world.sql: m1 sees reps 1-6, m2 2-5, m3
-- 3-4, r4 only 4, m7 7-8; each rep r has account r, deals 10r+1 and
-- 10r+2, an activity (account r, deal 10r+1) and a task assigned by m1;
-- r8 holds a 0.3 share of r4's deal 42.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(52);

\ir ../sql/security_world.sql

-- ------------------------------------------------------------- catalog
SELECT is_empty($$
    SELECT a.polrelid::regclass || '.' || a.polname FROM pg_policy a
     WHERE a.polcmd = '*'
       AND a.polrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'salesmgmt'::regnamespace)
       AND EXISTS (SELECT 1 FROM pg_policy s
                    WHERE s.polrelid = a.polrelid AND s.polcmd = 'r' AND s.polroles && a.polroles)$$,
    'no FOR ALL policy on a table whose roles also have a FOR SELECT policy (each read would run both)');
SELECT is_empty($$
    SELECT a.polrelid::regclass || '.' || a.polname FROM pg_policy a
     WHERE a.polcmd = '*'
       AND a.polrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'salesmgmt'::regnamespace)
       AND a.polroles && ARRAY['salesmgmt_manager'::regrole::oid, 'salesmgmt_rep'::regrole::oid]
       AND a.polrelid NOT IN ('salesmgmt.deal_line'::regclass, 'salesmgmt.quote'::regclass,
                              'salesmgmt.quote_line'::regclass)$$,
    'reps and managers have FOR ALL policies only where they are the read policy (deal lines, quotes)');
SELECT results_eq($$
    SELECT tablename::text COLLATE "default", policyname::text COLLATE "default", cmd COLLATE "default" FROM pg_policies
     WHERE schemaname = 'salesmgmt' AND tablename IN ('activity', 'deal_split', 'sales_task', 'sales_plan')
       AND roles @> ARRAY['salesmgmt_rep'::name] AND cmd <> 'SELECT'
     ORDER BY 1, 3, 2$$,
    $$VALUES ('activity', 'activity_delete', 'DELETE'), ('activity', 'activity_insert', 'INSERT'),
             ('activity', 'activity_update', 'UPDATE'),
             ('deal_split', 'deal_split_delete', 'DELETE'), ('deal_split', 'deal_split_insert', 'INSERT'),
             ('deal_split', 'deal_split_update', 'UPDATE'),
             ('sales_plan', 'sales_plan_delete', 'DELETE'), ('sales_plan', 'sales_plan_insert', 'INSERT'),
             ('sales_plan', 'sales_plan_update', 'UPDATE'),
             ('sales_task', 'sales_task_delete', 'DELETE'), ('sales_task', 'sales_task_insert', 'INSERT'),
             ('sales_task', 'sales_task_update', 'UPDATE')$$,
    'the write policies of activity, deal_split, sales_task and sales_plan, one per command');

-- a rep's read of activity runs the read policy only
SET ROLE sec_r4;
SELECT is((SELECT count(*)::int FROM (SELECT 1 FROM salesmgmt.activity) a), 1, 'r4 reads its own activity');
RESET ROLE;
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text; p text := '';
BEGIN
    FOR r IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP p := p || r || E'\n'; END LOOP;
    RETURN p;
END $$;
SET ROLE sec_r4;
SELECT matches(pg_temp.plan_of('SELECT count(*) FROM salesmgmt.activity'),
               'Filter: salesmgmt\.activity_visible\(rep_id, deal_id, deal_owner_rep_id, account_id\)\n',
               'the read filter of activity is its read policy alone, one call per row');
SELECT unalike(pg_temp.plan_of('SELECT count(*) FROM salesmgmt.deal_split'), '%deal_changeable%',
               'nor does reading deal_split call deal_changeable');
SELECT unalike(pg_temp.plan_of('SELECT count(*) FROM salesmgmt.sales_task'), '%rep_visible(rep_id)%rep_visible(rep_id)%',
               'nor is the rep of a task tested twice');
RESET ROLE;

-- ------------------------------------------------------------- reads
-- one value from a statement that may change rows (WITH ... RETURNING),
-- run as the current role
CREATE FUNCTION pg_temp.one(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE v text; BEGIN EXECUTE q INTO v; RETURN v; END $$;
CREATE FUNCTION pg_temp.seen(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE n int; BEGIN EXECUTE 'SELECT count(*)::int FROM (' || q || ') x' INTO n; RETURN n; END $$;
SET ROLE sec_m2;
SELECT is(pg_temp.seen('SELECT * FROM salesmgmt.activity'), 4, 'm2 reads the activities of reps 2-5');
SELECT is(pg_temp.seen('SELECT * FROM salesmgmt.sales_task'), 4, 'and the tasks of reps 2-5 (m1, who assigned them, is not visible to m2)');
RESET ROLE;
SET ROLE sec_r8;
SELECT is(pg_temp.seen('SELECT * FROM salesmgmt.deal_split'), 2, 'r8 reads both splits of deal 42, which it shares');
SELECT is(pg_temp.seen('SELECT * FROM salesmgmt.activity'), 1, 'r8 reads its own activity');
RESET ROLE;

-- activity_visible(rep, deal, deal owner, account), the read policy of
-- activity in one call, answers as the expression it replaces, nulls
-- included, for every role
CREATE FUNCTION pg_temp.activity_visible_differs() RETURNS SETOF text LANGUAGE sql AS $$
    SELECT format('%s %s %s %s: %s', r, d, o, a, salesmgmt.activity_visible(r, d, o, a))
      FROM unnest(ARRAY[NULL, 3, 4, 5, 8, 99]::bigint[]) r,
           unnest(ARRAY[NULL, 41, 42, 51, 81, 999]::bigint[]) d,
           unnest(ARRAY[NULL, 4, 5, 8]::bigint[]) o,
           unnest(ARRAY[NULL, 4, 5, 8, 999]::bigint[]) a
     WHERE salesmgmt.activity_visible(r, d, o, a) IS DISTINCT FROM
           coalesce(salesmgmt.rep_visible(r) OR salesmgmt.deal_visible(d, o)
                    OR (d IS NULL AND salesmgmt.account_changeable(a)), false)
$$;
GRANT EXECUTE ON FUNCTION pg_temp.activity_visible_differs() TO PUBLIC;
SET ROLE sec_r4;
SELECT is_empty('SELECT * FROM pg_temp.activity_visible_differs()', 'activity_visible as r4: the expression''s answers');
SET ROLE sec_r8;
SELECT is_empty('SELECT * FROM pg_temp.activity_visible_differs()', 'as r8 (a split partner of deal 42)');
SET ROLE sec_m2;
SELECT is_empty('SELECT * FROM pg_temp.activity_visible_differs()', 'as m2');
SET ROLE sec_unmapped;
SELECT is_empty('SELECT * FROM pg_temp.activity_visible_differs()', 'as a rep role mapped to no rep');
SET ROLE sec_admin;
SELECT is_empty('SELECT * FROM pg_temp.activity_visible_differs()', 'as an admin');
RESET ROLE;
SELECT is(salesmgmt.activity_visible(NULL, NULL, NULL, NULL), false, 'activity_visible of nulls is false');

-- ------------------------------------------------------------- activity
SET ROLE sec_r4;
SELECT lives_ok($$INSERT INTO salesmgmt.activity (kind, account_id, rep_id) VALUES ('call', 4, 4)$$,
                'r4 records its own activity with its account');
SELECT throws_ok($$INSERT INTO salesmgmt.activity (kind, account_id, rep_id) VALUES ('call', 4, 5)$$,
                 '42501', NULL, 'but not one of r5');
SELECT throws_ok($$INSERT INTO salesmgmt.activity (kind, account_id, rep_id) VALUES ('call', 5, 4)$$,
                 '42501', NULL, 'nor one with r5''s account');
SELECT is(pg_temp.one($$WITH u AS (UPDATE salesmgmt.activity SET notes = 'r4' WHERE rep_id = 4 RETURNING 1)
                           SELECT count(*)::text FROM u$$), '2', 'r4 changes its own activities');
SELECT is(pg_temp.one($$WITH u AS (UPDATE salesmgmt.activity SET notes = 'r4' WHERE rep_id <> 4 RETURNING 1)
                           SELECT count(*)::text FROM u$$), '0', 'and no other rep''s');
SELECT throws_ok($$UPDATE salesmgmt.activity SET rep_id = 5 WHERE rep_id = 4$$,
                 '42501', NULL, 'nor hands its activities to r5');
SELECT is(pg_temp.one($$WITH d AS (DELETE FROM salesmgmt.activity WHERE rep_id <> 4 RETURNING 1)
                           SELECT count(*)::text FROM d$$), '0', 'r4 deletes no other rep''s activity');
SELECT is(pg_temp.one($$WITH d AS (DELETE FROM salesmgmt.activity WHERE rep_id = 4 AND deal_id IS NULL RETURNING 1)
                           SELECT count(*)::text FROM d$$), '1', 'r4 deletes its own');
RESET ROLE;
SET ROLE sec_m3;
SELECT is(pg_temp.one($$WITH u AS (UPDATE salesmgmt.activity SET notes = 'm3' RETURNING rep_id)
                           SELECT string_agg(rep_id::text, ',' ORDER BY rep_id) FROM u$$), '3,4',
                  'm3 changes the activities of reps 3-4 and no others');
SELECT is(pg_temp.one($$WITH d AS (DELETE FROM salesmgmt.activity WHERE rep_id = 5 RETURNING 1)
                           SELECT count(*)::text FROM d$$), '0', 'm3 deletes none of r5''s');
SELECT lives_ok($$INSERT INTO salesmgmt.activity (kind, account_id, rep_id) VALUES ('call', 4, 4)$$,
                'm3 records an activity of r4');
RESET ROLE;

-- ------------------------------------------------------------- deal_split
SET ROLE sec_r8;
SELECT is(pg_temp.one($$WITH u AS (UPDATE salesmgmt.deal_split SET share = share WHERE deal_id = 42 RETURNING 1)
                           SELECT count(*)::text FROM u$$), '0', 'the split partner r8 changes no split of deal 42');
SELECT is(pg_temp.one($$WITH d AS (DELETE FROM salesmgmt.deal_split WHERE deal_id = 42 RETURNING 1)
                           SELECT count(*)::text FROM d$$), '0', 'nor deletes one');
SELECT throws_ok($$INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share) VALUES (42, 7, 0.1)$$,
                 '42501', NULL, 'nor adds a share to it');
RESET ROLE;
SET ROLE sec_r4;
SELECT is(pg_temp.one($$WITH u AS (UPDATE salesmgmt.deal_split SET share = share WHERE deal_id = 42 RETURNING 1)
                           SELECT count(*)::text FROM u$$), '2', 'the owner r4 changes the splits of deal 42');
SELECT is(pg_temp.one($$WITH d AS (DELETE FROM salesmgmt.deal_split WHERE deal_id = 42 RETURNING 1)
                           SELECT count(*)::text FROM d$$), '2', 'and deletes them');
SELECT lives_ok($$INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share) VALUES (42, 4, 0.7), (42, 8, 0.3)$$,
                'and adds them again');
SELECT throws_ok($$INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share) VALUES (52, 4, 0.5)$$,
                 '42501', NULL, 'but splits no deal of r5');
RESET ROLE;
SET ROLE sec_m3;
SELECT is(pg_temp.one($$WITH u AS (UPDATE salesmgmt.deal_split SET share = share RETURNING deal_id)
                           SELECT string_agg(DISTINCT deal_id::text, ',') FROM u$$), '42',
                  'r4''s manager m3 changes the splits of r4''s deal');
RESET ROLE;

-- ------------------------------------------------------------- sales_task
SET ROLE sec_r4;
SELECT lives_ok($$INSERT INTO salesmgmt.sales_task (rep_id, title) VALUES (4, 'r4 plans')$$,
                'r4 plans a task of its own');
SELECT throws_ok($$INSERT INTO salesmgmt.sales_task (rep_id, title) VALUES (5, 'for r5')$$,
                 '42501', NULL, 'but none for r5');
SELECT throws_ok($$INSERT INTO salesmgmt.sales_task (rep_id, assigned_by, title) VALUES (4, 8, 'from r8')$$,
                 '42501', NULL, 'nor one assigned by r8, who does not manage it');
SELECT is(pg_temp.one($$WITH u AS (UPDATE salesmgmt.sales_task SET status = 'done' WHERE title = 'Call back 4' RETURNING 1)
                           SELECT count(*)::text FROM u$$), '1', 'r4 closes the task m1 assigned to it');
SELECT is(pg_temp.one($$WITH u AS (UPDATE salesmgmt.sales_task SET status = 'done' WHERE rep_id <> 4 RETURNING 1)
                           SELECT count(*)::text FROM u$$), '0', 'and no other rep''s task');
SELECT is(pg_temp.one($$WITH d AS (DELETE FROM salesmgmt.sales_task WHERE title = 'r4 plans' RETURNING 1)
                           SELECT count(*)::text FROM d$$), '1', 'r4 deletes its own task');
SELECT is(pg_temp.one($$WITH d AS (DELETE FROM salesmgmt.sales_task WHERE rep_id <> 4 RETURNING 1)
                           SELECT count(*)::text FROM d$$), '0', 'and no other rep''s');
RESET ROLE;
SET ROLE sec_m3;
SELECT lives_ok($$INSERT INTO salesmgmt.sales_task (rep_id, assigned_by, title) VALUES (4, 3, 'from m3')$$,
                'm3 assigns a task to r4');
SELECT throws_ok($$INSERT INTO salesmgmt.sales_task (rep_id, assigned_by, title) VALUES (5, 3, 'for r5')$$,
                 '42501', NULL, 'but none to r5, outside its tree');
RESET ROLE;

-- ------------------------------------------------------------- sales_plan
SET ROLE sec_r4;
SELECT lives_ok($$INSERT INTO salesmgmt.sales_plan (rep_id, period_start, period_end, title)
                  VALUES (4, '2026-01-01', '2026-03-31', 'r4 plan')$$, 'r4 writes its own plan');
SELECT throws_ok($$INSERT INTO salesmgmt.sales_plan (rep_id, period_start, period_end, title)
                   VALUES (5, '2026-01-01', '2026-03-31', 'for r5')$$, '42501', NULL, 'but not r5''s');
SELECT throws_ok($$INSERT INTO salesmgmt.sales_plan (team_id, period_start, period_end, title)
                   VALUES (3, '2026-01-01', '2026-03-31', 'Leaf')$$, '42501', NULL,
                 'nor its team''s (a rep is no manager)');
SELECT is(pg_temp.one($$WITH u AS (UPDATE salesmgmt.sales_plan SET status = 'active' RETURNING rep_id)
                           SELECT string_agg(rep_id::text, ',') FROM u$$), '4', 'r4 changes its own plan');
RESET ROLE;
SET ROLE sec_m3;
SELECT lives_ok($$INSERT INTO salesmgmt.sales_plan (team_id, period_start, period_end, title)
                  VALUES (3, '2026-01-01', '2026-03-31', 'Leaf')$$, 'm3 writes its team''s plan');
SELECT is(pg_temp.one($$WITH u AS (UPDATE salesmgmt.sales_plan SET status = 'closed' RETURNING title)
                           SELECT string_agg(title, ',' ORDER BY title) FROM u$$), 'Leaf,r4 plan',
                  'm3 changes the plans of r4 and of its team');
RESET ROLE;
SET ROLE sec_r5;
SELECT is(pg_temp.one($$WITH u AS (UPDATE salesmgmt.sales_plan SET status = 'draft' RETURNING 1)
                           SELECT count(*)::text FROM u$$), '0', 'r5 changes neither');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

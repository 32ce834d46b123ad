-- pgTAP: the per-row visibility predicates (src/org.c) and the policies
-- that call them: no policy holds a sub-select, the holes of issue 23 that
-- are about visibility stay closed, and the cached organisation follows
-- changes made in the same transaction.
--
-- The world of test/sql/security_world.sql, with the names of issue 23:
-- ada = r4 (team Leaf, manager boss = m3), bo = r5 (team Mid, manager m2),
-- cy = r8 (team Other, manager m7), and cy holds a split of ada's deal 42.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(56);

\ir ../sql/security_world.sql

-- ------------------------------------------------------------- catalog
SELECT is_empty($$SELECT polrelid::regclass || '.' || polname FROM pg_policy
                   WHERE polrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'salesmgmt'::regnamespace)
                     AND (polqual::text LIKE '%{SUBLINK%' OR coalesce(polwithcheck::text, '') LIKE '%{SUBLINK%')$$,
                'no policy of the extension holds a sub-select (Citus refuses them)');
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p
                   WHERE p.pronamespace = 'salesmgmt'::regnamespace
                     AND p.proname IN ('rep_visible', 'rep_managed', 'team_visible', 'team_managed',
                                       'deal_visible', 'deal_changeable', 'account_visible', 'account_changeable')
                     AND NOT (p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
                              AND p.provolatile = 's' AND p.proparallel = 's' AND p.proisstrict
                              AND NOT p.prosecdef AND p.proconfig IS NULL)$$,
                'the predicates are C, STABLE, PARALLEL SAFE, STRICT, without SET clauses');
SELECT ok(EXISTS (SELECT 1 FROM pg_policy WHERE polname = 'deal_read'
                     AND pg_get_expr(polqual, polrelid) LIKE '%deal_visible(deal_id, owner_rep_id)%'),
          'deal_read calls the per-row deal predicate');

-- ------------------------------------- issue 23, 1: history and id reuse
SET ROLE sec_r5;
SELECT is((salesmgmt.move_deal(51, 'Won', 'bo: private note')).stage_id, 2::bigint, 'bo wins deal 51');
RESET ROLE;
-- an admin deletes bo's deal; cy gets a deal with the same id (the holes
-- helper's column grants keep reps from choosing ids: the admin does it)
DELETE FROM salesmgmt.payment WHERE deal_id = 51;
DELETE FROM salesmgmt.activity WHERE deal_id = 51;
DELETE FROM salesmgmt.deal WHERE deal_id = 51;
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
VALUES (51, 'cy reuses 51', 8, 8, 1, 1, 7);
SET ROLE sec_r8;
SELECT is((SELECT array_agg(DISTINCT owner_rep_id) FROM salesmgmt.deal_stage_history WHERE deal_id = 51),
          ARRAY[8]::bigint[], 'cy, now holding deal id 51, reads only its own history of it, none of bo''s');
SELECT is_empty($$SELECT 1 FROM salesmgmt.deal_stage_history WHERE note = 'bo: private note'$$,
                'nor bo''s private change note');
SELECT is((SELECT coalesce(sum(closed_won), 0) FROM salesmgmt.forecast('2000-01-01', '2099-12-31', 'rep', now(), 'USD')),
          0::numeric, 'an as-of forecast shows cy none of bo''s won amount');
SELECT is((salesmgmt.move_deal(51, 'Won')).stage_id, 2::bigint, 'cy moves its own deal 51');
SELECT is((SELECT array_agg(DISTINCT owner_rep_id) FROM salesmgmt.deal_stage_history WHERE deal_id = 51),
          ARRAY[8]::bigint[], 'cy reads the history it made itself');
RESET ROLE;
SET ROLE sec_m2;
SELECT is((SELECT count(*)::int FROM salesmgmt.deal_stage_history WHERE deal_id = 51 AND owner_rep_id = 5), 2,
          'bo''s manager keeps reading bo''s history of the deleted deal');
RESET ROLE;
SET ROLE sec_r4;
SELECT is_empty($$SELECT * FROM salesmgmt.deal_stage_history WHERE deal_id = 51$$,
                'ada reads neither bo''s nor cy''s history');
RESET ROLE;

-- ----------------------- issue 23, 4: a split partner reads, not writes
SET ROLE sec_r8;
SELECT is((SELECT count(*)::int FROM salesmgmt.contact WHERE account_id = 4), 1,
          'cy reads the contact of ada''s account through the split');
WITH u AS (UPDATE salesmgmt.contact SET email = 'cy@evil.example' WHERE account_id = 4 RETURNING 1)
SELECT is(count(*)::int, 0, 'cy cannot change the email of ada''s contact') FROM u;
WITH u AS (UPDATE salesmgmt.contact SET account_id = 8 WHERE account_id = 4 RETURNING 1)
SELECT is(count(*)::int, 0, 'cy cannot move ada''s contact to its own account') FROM u;
SELECT throws_ok($$INSERT INTO salesmgmt.contact (account_id, name) VALUES (4, 'Planted')$$,
                 '42501', NULL, 'cy cannot add a contact to ada''s account');
WITH u AS (UPDATE salesmgmt.account SET name = 'Mine' WHERE account_id = 4 RETURNING 1)
SELECT is(count(*)::int, 0, 'cy cannot change ada''s account') FROM u;
RESET ROLE;
SET ROLE sec_r4;
WITH u AS (UPDATE salesmgmt.contact SET email = 'contact4@example.com' WHERE account_id = 4 RETURNING 1)
SELECT is(count(*)::int, 1, 'ada still changes her own contact') FROM u;
RESET ROLE;
SELECT is((SELECT account_id FROM salesmgmt.contact WHERE name = 'Contact 4'), 4::bigint,
          'ada''s contact stayed on her account');

-- -------------------- issue 23, 7: team-level forecast adjustments
INSERT INTO salesmgmt.forecast_adjustment (period_start, period_end, team_id, category, amount, currency, note)
VALUES ('2026-01-01', '2026-03-31', 3, 'commit', 500, 'USD', 'Leaf team upside');
SELECT adjusted_commit AS admin_leaf FROM salesmgmt.forecast('2026-01-01', '2026-03-31', 'team', NULL, 'USD') WHERE group_id = 3 \gset
SET ROLE sec_m3;
SELECT is((SELECT count(*)::int FROM salesmgmt.forecast_adjustment WHERE rep_id IS NULL AND team_id = 3), 1,
          'boss sees the team-level adjustment of the team it manages');
SELECT is((SELECT adjusted_commit FROM salesmgmt.forecast('2026-01-01', '2026-03-31', 'team', NULL, 'USD') WHERE group_id = 3),
          :'admin_leaf'::numeric, 'boss''s team forecast shows the adjusted commit the admin sees');
RESET ROLE;
SET ROLE sec_m2;
SELECT is((SELECT count(*)::int FROM salesmgmt.forecast_adjustment WHERE team_id = 3), 1,
          'the manager above sees it too');
RESET ROLE;
SET ROLE sec_r4;
SELECT is_empty($$SELECT * FROM salesmgmt.forecast_adjustment WHERE team_id = 3$$,
                'a rep does not see its team''s adjustment');
RESET ROLE;
SET ROLE sec_m7;
SELECT is_empty($$SELECT * FROM salesmgmt.forecast_adjustment WHERE team_id = 3$$,
                'another tree''s manager does not see it');
RESET ROLE;

-- --------------------- the cache follows changes in this transaction
SET ROLE sec_m7;
SELECT is((SELECT count(*)::int FROM salesmgmt.deal WHERE owner_rep_id = 6), 0, 'm7 does not see r6''s deals');
RESET ROLE;
UPDATE salesmgmt.rep SET team_id = 4 WHERE rep_id = 6;
SET ROLE sec_m7;
SELECT is((SELECT count(*)::int FROM salesmgmt.deal WHERE owner_rep_id = 6), 2, 'after r6 moved to m7''s team, m7 sees its deals');
RESET ROLE;
SET ROLE sec_m1;
SELECT is((SELECT count(*)::int FROM salesmgmt.deal WHERE owner_rep_id = 6), 0, 'and m1 no longer does');
RESET ROLE;
UPDATE salesmgmt.team SET parent_team_id = 4 WHERE team_id = 3;
SET ROLE sec_m7;
SELECT is((SELECT count(*)::int FROM salesmgmt.deal WHERE owner_rep_id = 3), 2, 'after team Leaf moved under Other, m7 sees its deals');
RESET ROLE;
SET ROLE sec_m2;
SELECT ok(NOT salesmgmt.rep_visible(4), 'and m2 no longer sees ada');
RESET ROLE;
UPDATE salesmgmt.rep SET active = false WHERE rep_id = 4;
SET ROLE sec_r4;
SELECT is_empty($$SELECT * FROM salesmgmt.deal$$, 'a deactivated rep sees no deals');
RESET ROLE;
SET ROLE sec_r5;
SELECT ok(NOT salesmgmt.deal_visible(41), 'r5 does not see ada''s deal 41');
RESET ROLE;
INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share) VALUES (41, 4, 0.5), (41, 5, 0.5);
SET ROLE sec_r5;
SELECT ok(salesmgmt.deal_visible(41), 'a split added in the transaction shows it');
SELECT ok(NOT salesmgmt.deal_changeable(41), 'but a split partner does not change it');
SELECT is((SELECT count(*)::int FROM salesmgmt.payment WHERE deal_id = 41), 1, 'and r5 reads its payments');
RESET ROLE;
REVOKE salesmgmt_manager FROM sec_m7;
GRANT salesmgmt_rep TO sec_m7;
SET ROLE sec_m7;
SELECT is((SELECT array_agg(DISTINCT owner_rep_id ORDER BY owner_rep_id) FROM salesmgmt.deal), ARRAY[7]::bigint[],
          'a manager whose manager role was revoked sees its own deals only');
RESET ROLE;
DELETE FROM salesmgmt.deal_split WHERE deal_id = 42;
SET ROLE sec_r8;
SELECT is_empty($$SELECT * FROM salesmgmt.deal WHERE deal_id = 42$$, 'a removed split hides the deal again');
SELECT ok(salesmgmt.rep_visible(NULL) IS NULL, 'null in, null out');
RESET ROLE;
SET ROLE sec_unmapped;
SELECT is_empty($$SELECT * FROM salesmgmt.deal_stage_history$$, 'an unmapped rep login sees no history');
RESET ROLE;

-- ------------------------------------------------ rights of issue 14
-- (the rights table of docs/security.md is tried cell by cell by
-- test/t/053_security_rights.pl; here the messages and the leaderboard)
SET ROLE sec_r5;
SELECT throws_ok($$SELECT salesmgmt.move_deal(41, 'Won')$$, '42501',
                 'deal 41 is visible to role "sec_r5" but may not be changed by it',
                 'move_deal on a split-shared deal names the deal (42501), not a silent no-op');
RESET ROLE;
SET ROLE sec_m3;
SELECT throws_ok($$INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) VALUES (3, '2026-04-01', '2026-06-30', 1)$$,
                 '42501', 'role "sec_m3" may not write its own quota row (rep 3)',
                 'a manager setting its own quota is refused');
SELECT lives_ok($$INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) VALUES (4, '2026-04-01', '2026-06-30', 1)$$,
                'a manager sets the quota of a rep of its team');
SELECT throws_ok($$INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) VALUES (8, '2026-04-01', '2026-06-30', 1)$$,
                 '42501', NULL, 'but not of a rep of another tree');
SELECT throws_ok($$INSERT INTO salesmgmt.review (review_id, rep_id, reviewer_rep_id, period_start, period_end, discipline)
                   VALUES (999, 4, 3, '2026-04-01', '2026-06-30', 3)$$,
                 '42501', NULL, 'a manager cannot choose a review id');
SELECT throws_ok($$INSERT INTO salesmgmt.review (rep_id, reviewer_rep_id, period_start, period_end, discipline)
                   VALUES (4, 2, '2026-04-01', '2026-06-30', 3)$$,
                 '42501', NULL, 'nor review in another manager''s name');
RESET ROLE;

-- leaderboards: scheme (default), team, private
INSERT INTO salesmgmt.kpi_scheme (scheme_id, name) VALUES (1, 'Contest');
SET session_replication_role = replica;
INSERT INTO salesmgmt.scorecard (scheme_id, rep_id, period_start, period_end, score, coverage, rank)
SELECT 1, r, '2026-01-01', '2026-03-31', 50 + r, 100, 9 - r FROM generate_series(1, 8) r;
SET session_replication_role = origin;
SET ROLE sec_r8;
SELECT is((SELECT count(*)::int FROM salesmgmt.leaderboard), 8, 'scheme: a rep sees every peer on the leaderboard');
SELECT is_empty($$SELECT * FROM salesmgmt.review WHERE rep_id <> 8$$, 'but no peer''s review');
SELECT is_empty($$SELECT * FROM salesmgmt.scorecard_item s JOIN salesmgmt.scorecard c USING (scorecard_id) WHERE c.rep_id <> 8$$,
                'nor the KPI values behind a peer''s score');
RESET ROLE;
UPDATE salesmgmt.kpi_scheme SET leaderboard_visibility = 'team' WHERE scheme_id = 1;
SET ROLE sec_r5;
SELECT set_eq('SELECT rep_id FROM salesmgmt.scorecard', ARRAY[2, 5]::bigint[],
              'team: a rep sees its teammates'' scorecards (r5 and m2 in Mid)');
RESET ROLE;
UPDATE salesmgmt.kpi_scheme SET leaderboard_visibility = 'private' WHERE scheme_id = 1;
SET ROLE sec_r5;
SELECT set_eq('SELECT rep_id FROM salesmgmt.scorecard', ARRAY[5]::bigint[], 'private: only its own');
RESET ROLE;

-- BI logins
CREATE ROLE sec_bi LOGIN;
GRANT salesmgmt_analyst TO sec_bi;
SET ROLE sec_bi;
SELECT is((SELECT count(*)::int FROM salesmgmt.deal), 16,
          'an analyst reads every deal');
SELECT throws_ok($$UPDATE salesmgmt.deal SET amount = 0$$, '42501', NULL, 'an analyst changes nothing');
SELECT throws_ok($$SELECT secret FROM salesmgmt.webhook_endpoint$$, '42501', NULL, 'an analyst does not read webhook secrets');
RESET ROLE;
SELECT ok(NOT rolbypassrls AND NOT rolcanlogin, 'salesmgmt_analyst does not bypass row-level security') FROM pg_roles WHERE rolname = 'salesmgmt_analyst';

-- many rows: past a few thousand look-ups a statement switches from
-- probes to one load of every deal owner / account; the answers agree
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id)
SELECT 10000 + i, 'bulk ' || i, CASE WHEN i % 2 = 0 THEN 8 ELSE 7 END FROM generate_series(1, 5000) i;
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
SELECT 10000 + i, 'bulk ' || i, 10000 + i, CASE WHEN i % 2 = 0 THEN 8 ELSE 7 END, 1, 1, 1 FROM generate_series(1, 5000) i;
INSERT INTO salesmgmt.payment (deal_id, amount, currency) SELECT 10000 + i, 1, 'USD' FROM generate_series(1, 5000) i;
SET ROLE sec_r8;
SELECT is((SELECT count(*)::int FROM salesmgmt.account WHERE name LIKE 'bulk %'), 2500,
          'a rep sees exactly its half of 5,000 accounts (probes, then one load)');
SELECT is((SELECT count(*)::int FROM salesmgmt.payment WHERE deal_id > 10000), 2500,
          'and exactly the payments of its half of 5,000 deals');
SELECT is((SELECT count(*)::int FROM salesmgmt.contact c JOIN salesmgmt.account a USING (account_id)), 1,
          'and the contacts of its own account');
RESET ROLE;
SET ROLE sec_m7;
SELECT is((SELECT count(*)::int FROM salesmgmt.payment WHERE deal_id > 10000), 2500,
          'm7 (a rep since its manager role was revoked) sees its own half');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

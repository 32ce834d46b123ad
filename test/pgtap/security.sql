-- pgTAP: row-level security acting as each role through SET ROLE.
--
-- The world: a 3-level team tree Root (managed by m1) > Mid (m2) > Leaf
-- (m3), reps r4 in Leaf, r5 in Mid, r6 in Root, and a second tree Other
-- (m7) with r8.  m1 sees reps 1-6, m2 sees 2-5, m3 sees 3-4, r4 only 4.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(79);

\ir ../sql/security_world.sql

-- ----------------------------------------------------------------- roles
SELECT ok(NOT rolcanlogin, 'role ' || rolname || ' is NOLOGIN')
  FROM pg_roles WHERE rolname IN ('salesmgmt_admin', 'salesmgmt_manager', 'salesmgmt_rep') ORDER BY rolname;

-- ------------------------------------------------------------ a plain rep
-- (as the session user too: SET ROLE and the helpers' checks look at it)
SET SESSION AUTHORIZATION sec_r4;
SELECT is(salesmgmt.current_rep_id(), 4::bigint, 'r4 is mapped to rep 4');
SELECT set_eq('SELECT deal_id FROM salesmgmt.deal', ARRAY[41, 42]::bigint[], 'r4 sees exactly its own deals');
SELECT is_empty('SELECT * FROM salesmgmt.deal WHERE deal_id = 51', 'r4 reading r5''s deal gets no rows');
SELECT is_empty('SELECT * FROM salesmgmt.deal_split WHERE rep_id = 5', 'r4 sees no splits of others');
SELECT set_eq('SELECT account_id FROM salesmgmt.account', ARRAY[4]::bigint[], 'r4 sees its own account only');
SELECT set_eq('SELECT account_id FROM salesmgmt.contact', ARRAY[4]::bigint[], 'r4 sees the contacts of its account only');
SELECT set_eq('SELECT deal_id FROM salesmgmt.payment', ARRAY[41]::bigint[], 'r4 sees payments of its deals only');
SELECT set_eq('SELECT rep_id FROM salesmgmt.activity', ARRAY[4]::bigint[], 'r4 sees its activities only');
SELECT set_eq('SELECT coalesce(rep_id, -team_id) FROM salesmgmt.quota', ARRAY[4, -3]::bigint[],
              'r4 sees its own quota and its team''s');
SELECT set_eq('SELECT rep_id FROM salesmgmt.sales_task', ARRAY[4]::bigint[], 'r4 sees its own tasks');
WITH u AS (UPDATE salesmgmt.deal SET amount = 0 WHERE deal_id = 51 RETURNING 1)
SELECT is(count(*)::int, 0, 'r4 updating r5''s deal affects nothing') FROM u;
WITH u AS (DELETE FROM salesmgmt.activity WHERE rep_id = 5 RETURNING 1)
SELECT is(count(*)::int, 0, 'r4 deleting r5''s activity affects nothing') FROM u;
WITH u AS (UPDATE salesmgmt.deal SET amount = 999 WHERE deal_id = 41 RETURNING 1)
SELECT is(count(*)::int, 1, 'r4 updates its own deal');
SELECT throws_ok($$INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id) VALUES ('x', 4, 5, 1, 1)$$,
                 '42501', NULL, 'r4 cannot create a deal owned by r5');
SELECT throws_ok($$UPDATE salesmgmt.deal SET owner_rep_id = 5 WHERE deal_id = 41$$,
                 '42501', NULL, 'r4 cannot hand its deal to r5');
SELECT throws_ok($$INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id) VALUES ('x', 5, 4, 1, 1)$$,
                 '42501', NULL, 'r4 cannot open a deal on an account it does not see');
SELECT throws_ok($$UPDATE salesmgmt.deal SET account_id = 5 WHERE deal_id = 41$$,
                 '42501', NULL, 'r4 cannot move its deal to an account it does not see');
SELECT throws_ok($$INSERT INTO salesmgmt.contact (account_id, name) VALUES (5, 'Spy')$$,
                 '42501', NULL, 'r4 cannot add a contact to an account it does not see');
SELECT throws_ok($$INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share) VALUES (51, 4, 0.5)$$,
                 '42501', NULL, 'r4 cannot give itself a share of r5''s deal');
SELECT throws_ok($$INSERT INTO salesmgmt.activity (kind, account_id, rep_id) VALUES ('call', 4, 5)$$,
                 '42501', NULL, 'r4 cannot record an activity as r5');
SELECT lives_ok($$INSERT INTO salesmgmt.activity (kind, account_id, rep_id) VALUES ('call', 4, 4)$$,
                'r4 records its own activity');
SELECT throws_ok($$INSERT INTO salesmgmt.payment (deal_id, amount, currency) VALUES (41, 5, 'USD')$$,
                 '42501', NULL, 'r4 cannot record payments');
SELECT throws_ok($$UPDATE salesmgmt.quota SET amount = 1 WHERE rep_id = 4$$,
                 '42501', NULL, 'r4 cannot change its quota');
SELECT throws_ok($$INSERT INTO salesmgmt.deal_stage_history (deal_id, pipeline_id, to_stage_id, owner_rep_id, new_amount, currency,
                        effective_probability, effective_category, changed_at)
                   VALUES (41, 1, 2, 4, 5000, 'USD', 1, 'closed', now())$$,
                 '42501', NULL, 'r4 cannot write deal history by hand');
SELECT is((salesmgmt.move_deal(42, 'Won', 'signed')).stage_id, 2::bigint, 'r4 moves its own deal with move_deal');
SELECT is((SELECT changed_by FROM salesmgmt.deal_stage_history WHERE deal_id = 42 ORDER BY history_id DESC LIMIT 1),
          'sec_r4'::name, 'the pipeline trigger recorded the move as r4, in history r4 can read');
SELECT set_eq('SELECT DISTINCT deal_id FROM salesmgmt.deal_stage_history', ARRAY[41, 42]::bigint[],
              'r4 reads the history of its own deals only');
SELECT throws_ok($$SELECT salesmgmt.move_deal(51, 'Won')$$, '42704', NULL,
                 'r4 cannot move r5''s deal: it does not exist for r4');
SELECT throws_ok($$SELECT * FROM salesmgmt.allowed_next_stages(51)$$, '42704', NULL,
                 'nor learn where r5''s deal may go');
SELECT is((SELECT sum(open_deals)::int FROM salesmgmt.pipeline_board), 1, 'the pipeline board counts r4''s open deals only');
SELECT throws_ok($$DELETE FROM salesmgmt.deal WHERE deal_id = 41$$, '42501', NULL, 'r4 cannot delete deals');

-- widening one's own view
SELECT throws_ok($$UPDATE salesmgmt.rep SET db_role = 'sec_r4' WHERE rep_id = 1$$,
                 '42501', NULL, 'r4 cannot map itself to a manager by editing rep.db_role');
SELECT throws_ok($$UPDATE salesmgmt.rep SET team_id = 1 WHERE rep_id = 4$$,
                 '42501', NULL, 'r4 cannot move itself to another team');
SELECT throws_ok($$UPDATE salesmgmt.team SET manager_rep_id = 4 WHERE team_id = 1$$,
                 '42501', NULL, 'r4 cannot make itself a team''s manager');
SELECT throws_ok($$INSERT INTO salesmgmt.rep (name, db_role) VALUES ('me too', 'sec_r4')$$,
                 '42501', NULL, 'r4 cannot add a rep row');
SELECT throws_ok($$SET ROLE salesmgmt_manager$$, '42501', NULL, 'r4 cannot become a manager');
SELECT throws_ok($$SELECT salesmgmt.current_rep_id('sec_m1')$$, '42501', NULL,
                 'r4 cannot ask for the rep of a role it cannot act as');
SELECT throws_ok($$SELECT * FROM salesmgmt.visible_rep_ids('sec_m1')$$, '42501', NULL,
                 'r4 cannot ask for the scope of a role it cannot act as');
SELECT is((SELECT count(*)::int FROM salesmgmt.rep), 8, 'r4 reads the rep directory');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT amount FROM salesmgmt.deal WHERE deal_id = 51), 501.00, 'r5''s deal is unchanged');
SELECT is((SELECT count(*)::int FROM salesmgmt.activity WHERE rep_id = 5), 1, 'r5''s activity is still there');
SELECT is((SELECT db_role FROM salesmgmt.rep WHERE rep_id = 1), 'sec_m1'::name, 'the mapping of m1 is unchanged');

-- a split partner in another tree reads the shared deal but cannot change it
SET ROLE sec_r8;
SELECT set_eq('SELECT deal_id FROM salesmgmt.deal', ARRAY[81, 82, 42]::bigint[], 'r8 sees its deals and the deal it shares');
SELECT set_eq('SELECT account_id FROM salesmgmt.account', ARRAY[8, 4]::bigint[], 'r8 sees the account of the shared deal');
SELECT set_eq('SELECT rep_id FROM salesmgmt.deal_split', ARRAY[4, 8]::bigint[], 'r8 sees the splits of the shared deal');
WITH u AS (UPDATE salesmgmt.deal SET amount = 1 WHERE deal_id = 42 RETURNING 1)
SELECT is(count(*)::int, 0, 'r8 cannot change the deal it only shares') FROM u;
WITH u AS (UPDATE salesmgmt.deal_split SET share = 0.9 WHERE deal_id = 42 AND rep_id = 8 RETURNING 1)
SELECT is(count(*)::int, 0, 'r8 cannot raise its own share') FROM u;
RESET ROLE;

-- --------------------------------------------------------------- managers
SET ROLE sec_m1;
SELECT set_eq('SELECT DISTINCT owner_rep_id FROM salesmgmt.deal', ARRAY[1, 2, 3, 4, 5, 6]::bigint[],
              'm1 sees the deals of its whole 3-level tree');
SELECT set_eq('SELECT * FROM salesmgmt.visible_rep_ids()', ARRAY[1, 2, 3, 4, 5, 6]::bigint[], 'm1 visible reps');
SELECT set_eq('SELECT DISTINCT coalesce(rep_id, -team_id) FROM salesmgmt.quota',
              ARRAY[1, 2, 3, 4, 5, 6, -1, -2, -3]::bigint[], 'm1 sees quotas of its reps and teams');
RESET ROLE;
SET ROLE sec_m2;
SELECT set_eq('SELECT DISTINCT owner_rep_id FROM salesmgmt.deal', ARRAY[2, 3, 4, 5]::bigint[],
              'm2 sees its subtree, not its manager''s team');
SELECT set_eq('SELECT DISTINCT rep_id FROM salesmgmt.activity', ARRAY[2, 3, 4, 5]::bigint[], 'm2 sees the activities of its subtree');
WITH u AS (UPDATE salesmgmt.deal SET amount = amount + 1 WHERE owner_rep_id IN (4, 6) RETURNING owner_rep_id)
SELECT is(array_agg(DISTINCT owner_rep_id), ARRAY[4]::bigint[], 'm2 updates the deals of its team, not of r6') FROM u;
SELECT lives_ok($$UPDATE salesmgmt.deal SET owner_rep_id = 5 WHERE deal_id = 41$$, 'm2 reassigns a deal within its tree');
SELECT is((SELECT owner_rep_id FROM salesmgmt.deal WHERE deal_id = 41), 5::bigint,
          'and the deal is r5''s now (not filtered out silently)');
SELECT lives_ok($$UPDATE salesmgmt.deal SET account_id = 5 WHERE deal_id = 41$$, 'm2 moves a deal to an account of its tree');
SELECT is((SELECT account_id FROM salesmgmt.deal WHERE deal_id = 41), 5::bigint,
          'and the deal is on account 5 now');
SELECT throws_ok($$UPDATE salesmgmt.deal SET account_id = 6 WHERE deal_id = 41$$, '42501', NULL,
                 'm2 cannot move a deal to an account outside its tree');
SELECT throws_ok($$UPDATE salesmgmt.deal SET owner_rep_id = 6 WHERE deal_id = 52$$, '42501', NULL,
                 'm2 cannot hand a deal outside its tree');
SELECT lives_ok($$INSERT INTO salesmgmt.sales_task (rep_id, assigned_by, title) VALUES (4, 2, 'Demo')$$,
                'm2 assigns a task to r4');
SELECT throws_ok($$INSERT INTO salesmgmt.sales_task (rep_id, assigned_by, title) VALUES (6, 2, 'Demo')$$,
                 '42501', NULL, 'm2 cannot assign a task outside its tree');
RESET ROLE;
SET ROLE sec_m3;
SELECT set_eq('SELECT deal_id FROM salesmgmt.deal', ARRAY[31, 32, 42]::bigint[],
              'm3 sees its leaf team (deal 41, now r5''s, is out of it)');
RESET ROLE;
SET ROLE sec_m7;
SELECT set_eq('SELECT DISTINCT owner_rep_id FROM salesmgmt.deal', ARRAY[7, 8, 4]::bigint[],
              'm7 sees its tree and the deal r8 shares');
RESET ROLE;

-- the team tree grants nothing without the manager role
GRANT salesmgmt_rep TO sec_m3;
REVOKE salesmgmt_manager FROM sec_m3;
SET ROLE sec_m3;
SELECT set_eq('SELECT DISTINCT owner_rep_id FROM salesmgmt.deal', ARRAY[3]::bigint[],
              'a team manager who is only granted salesmgmt_rep sees its own deals');
RESET ROLE;
-- moving a team moves the manager's view with it
UPDATE salesmgmt.team SET parent_team_id = 4 WHERE team_id = 3;
SET ROLE sec_m2;
SELECT set_eq('SELECT DISTINCT owner_rep_id FROM salesmgmt.deal', ARRAY[2, 5]::bigint[],
              'after Leaf moves under Other, m2 no longer sees it');
RESET ROLE;
UPDATE salesmgmt.team SET parent_team_id = 2 WHERE team_id = 3;

-- ------------------------------------------------- unmapped and outsiders
SET ROLE sec_unmapped;
SELECT is_empty('SELECT * FROM salesmgmt.deal', 'a rep role without a rep row sees no deals');
SELECT is((SELECT access FROM salesmgmt.current_access()), 'none', 'and current_access says so');
RESET ROLE;
UPDATE salesmgmt.rep SET active = false WHERE rep_id = 6;
SET ROLE sec_r6;
SELECT is_empty('SELECT * FROM salesmgmt.deal', 'an inactive rep sees nothing');
RESET ROLE;
SET ROLE sec_nobody;
SELECT throws_ok('SELECT * FROM salesmgmt.deal', '42501', NULL, 'a role outside the salesmgmt roles is refused');
SELECT throws_ok($$SELECT salesmgmt.convert_amount(1, 'USD', 'USD', '2026-01-01')$$, '42501', NULL,
                 'and cannot call the extension''s functions');
RESET ROLE;
SELECT throws_ok($$UPDATE salesmgmt.rep SET db_role = 'salesmgmt_rep' WHERE rep_id = 8$$, '23514', NULL,
                 'a rep cannot be mapped to a group role');

-- --------------------------------------------------------------- admins
SET ROLE sec_admin;
SELECT is((SELECT count(*)::int FROM salesmgmt.deal), 16, 'an admin sees every deal');
SELECT is((SELECT access FROM salesmgmt.current_access()), 'admin', 'current_access says admin');
SELECT lives_ok($$UPDATE salesmgmt.rep SET team_id = 2 WHERE rep_id = 4$$, 'an admin moves reps');
SELECT lives_ok($$INSERT INTO salesmgmt.payment (deal_id, amount, currency) VALUES (41, 5, 'USD')$$, 'an admin records payments');
RESET ROLE;

-- ----------------------------------------- integrity checks see every row
SET ROLE sec_r4;
-- (constraints are immediate since the set-up)
SELECT throws_ok($$UPDATE salesmgmt.deal_split SET share = 0.6 WHERE deal_id = 42 AND rep_id = 4$$, '23514', NULL,
                 'the split total check still holds for a rep''s change');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

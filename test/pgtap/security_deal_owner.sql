-- pgTAP: payments and activities carry their deal's owner
-- (deal_owner_rep_id, src/org_deal_owner.c, src/security_deal_owner.sql)
-- and their read policies decide from it: the copy is set on insert,
-- follows a reassignment in the same transaction, cannot be written by
-- hand, and what each role reads equals the visibility written by hand
-- over the deal (as bench/security_reference.sql does).
--
-- The world of test/sql/security_world.sql: m1 sees reps 1-6, m2 2-5,
-- m3 3-4, r4 only 4, m7 7-8; r8 shares r4's deal 42 by a split.  Deal
-- 10r+1 has a payment and an activity of rep r.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(29);

\ir ../sql/security_world.sql

-- the hand-written visibility of a role's rep (manager or not)
CREATE FUNCTION pg_temp.ref_payments(p_rep bigint, p_mgr boolean) RETURNS bigint[]
LANGUAGE sql AS $$
    WITH RECURSIVE tree(team_id) AS (
        SELECT t.team_id FROM salesmgmt.team t WHERE p_mgr AND t.manager_rep_id = p_rep
        UNION
        SELECT t.team_id FROM salesmgmt.team t JOIN tree ON t.parent_team_id = tree.team_id
    ), vis(rep_id) AS (
        SELECT p_rep UNION SELECT r.rep_id FROM salesmgmt.rep r JOIN tree USING (team_id)
    )
    SELECT coalesce(array_agg(p.payment_id ORDER BY p.payment_id), '{}')
      FROM salesmgmt.payment p JOIN salesmgmt.deal d ON d.deal_id = p.deal_id
     WHERE d.owner_rep_id IN (SELECT rep_id FROM vis)
        OR d.deal_id IN (SELECT s.deal_id FROM salesmgmt.deal_split s WHERE s.rep_id IN (SELECT rep_id FROM vis))
$$;
CREATE FUNCTION pg_temp.rls_payments(p_role name) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE v bigint[];
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', p_role);
    SELECT coalesce(array_agg(payment_id ORDER BY payment_id), '{}') INTO v FROM salesmgmt.payment;
    RESET ROLE;
    RETURN v;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.ref_payments(bigint, boolean), pg_temp.rls_payments(name) TO PUBLIC;

-- ------------------------------------------------------------- catalog
SELECT ok(EXISTS (SELECT 1 FROM pg_policy WHERE polname = 'payment_read'
                     AND pg_get_expr(polqual, polrelid) = 'salesmgmt.deal_visible(deal_id, deal_owner_rep_id)'),
          'payment_read calls the deal predicate on the carried owner');
SELECT ok(EXISTS (SELECT 1 FROM pg_policy WHERE polname = 'activity_read'
                     AND pg_get_expr(polqual, polrelid) = 'salesmgmt.activity_visible(rep_id, deal_id, deal_owner_rep_id, account_id)'),
          'activity_read calls the activity predicate on the carried owner');
SELECT is_empty($$SELECT 1 FROM salesmgmt.payment p JOIN salesmgmt.deal d USING (deal_id)
                   WHERE p.deal_owner_rep_id IS DISTINCT FROM d.owner_rep_id$$,
                'every payment carries its deal''s owner');
SELECT is_empty($$SELECT 1 FROM salesmgmt.activity a LEFT JOIN salesmgmt.deal d USING (deal_id)
                   WHERE a.deal_owner_rep_id IS DISTINCT FROM d.owner_rep_id$$,
                'every activity carries its deal''s owner');

-- ------------------------------------------------ same as the reference
SELECT is(pg_temp.rls_payments('sec_m1'), pg_temp.ref_payments(1, true), 'm1 reads the payments of the reference');
SELECT is(pg_temp.rls_payments('sec_m3'), pg_temp.ref_payments(3, true), 'm3 reads the payments of the reference');
SELECT is(pg_temp.rls_payments('sec_r4'), pg_temp.ref_payments(4, false), 'r4 reads the payments of the reference');
SELECT is(pg_temp.rls_payments('sec_r8'), pg_temp.ref_payments(8, false),
          'r8 reads the payments of the reference, the split-shared deal 42 among them');

-- ------------------------------------ a reassignment in one transaction
-- an admin hands r4's deal 41 to r5 (m2's tree, outside m3's)
SAVEPOINT reassign;
INSERT INTO salesmgmt.activity (kind, account_id, deal_id, rep_id) VALUES ('email', 4, 41, 5);
UPDATE salesmgmt.deal SET owner_rep_id = 5 WHERE deal_id = 41;
SELECT is((SELECT array_agg(DISTINCT deal_owner_rep_id) FROM salesmgmt.payment WHERE deal_id = 41),
          ARRAY[5]::bigint[], 'the payment follows the reassignment in the same transaction');
SELECT is((SELECT array_agg(DISTINCT deal_owner_rep_id) FROM salesmgmt.activity WHERE deal_id = 41),
          ARRAY[5]::bigint[], 'so do the activities');
SET ROLE sec_m3;
SELECT is_empty($$SELECT 1 FROM salesmgmt.payment WHERE deal_id = 41$$,
                'm3 no longer reads the payment of the deal handed outside its tree');
SELECT is((SELECT count(*)::int FROM salesmgmt.activity WHERE deal_id = 41), 1,
          'm3 reads only the activity its own rep r4 did on it');
RESET ROLE;
SET ROLE sec_r5;
SELECT is((SELECT count(*)::int FROM salesmgmt.payment WHERE deal_id = 41), 1, 'r5, the new owner, reads the payment');
RESET ROLE;
SELECT is(pg_temp.rls_payments('sec_m2'), pg_temp.ref_payments(2, true), 'm2 reads the payments of the reference');
SELECT is(pg_temp.rls_payments('sec_m3'), pg_temp.ref_payments(3, true), 'm3 too');
ROLLBACK TO SAVEPOINT reassign;
SELECT is((SELECT array_agg(DISTINCT deal_owner_rep_id) FROM salesmgmt.payment WHERE deal_id = 41),
          ARRAY[4]::bigint[], 'a rolled back reassignment leaves the payment with the first owner');

-- a manager reassigns within its tree (m2: r4 -> r5) through the policy
SAVEPOINT manager;
SET ROLE sec_m2;
UPDATE salesmgmt.deal SET owner_rep_id = 5 WHERE deal_id = 41;
RESET ROLE;
SELECT is((SELECT array_agg(DISTINCT deal_owner_rep_id) FROM salesmgmt.payment WHERE deal_id = 41),
          ARRAY[5]::bigint[], 'a manager''s reassignment moves the payment too (the cascade runs as the owner)');
ROLLBACK TO SAVEPOINT manager;

-- ---------------------------------------------------- the copy is exact
SAVEPOINT copy;
UPDATE salesmgmt.payment SET deal_owner_rep_id = 8 WHERE deal_id = 41;
SELECT is((SELECT array_agg(DISTINCT deal_owner_rep_id) FROM salesmgmt.payment WHERE deal_id = 41),
          ARRAY[4]::bigint[], 'an owner written by hand is replaced by the deal''s');
UPDATE salesmgmt.payment SET deal_owner_rep_id = NULL WHERE deal_id = 41;
SELECT is((SELECT array_agg(DISTINCT deal_owner_rep_id) FROM salesmgmt.payment WHERE deal_id = 41),
          ARRAY[4]::bigint[], 'so is a null written by hand');
UPDATE salesmgmt.activity SET deal_id = 81, account_id = 8 WHERE deal_id = 41;
SELECT is((SELECT array_agg(DISTINCT deal_owner_rep_id) FROM salesmgmt.activity WHERE deal_id = 81),
          ARRAY[8]::bigint[], 'an activity moved to another deal takes that deal''s owner');
UPDATE salesmgmt.activity SET deal_id = NULL WHERE deal_id = 81 AND account_id = 8;
SELECT is((SELECT count(*)::int FROM salesmgmt.activity WHERE deal_id IS NULL AND deal_owner_rep_id IS NOT NULL), 0,
          'an activity without a deal carries no owner');
INSERT INTO salesmgmt.payment (deal_id, amount, currency, deal_owner_rep_id) VALUES (41, 5, 'USD', 1);
SELECT is((SELECT array_agg(DISTINCT deal_owner_rep_id) FROM salesmgmt.payment WHERE deal_id = 41),
          ARRAY[4]::bigint[], 'a new payment takes its deal''s owner whatever it names');
ROLLBACK TO SAVEPOINT copy;

-- ------------------------------------------------------------ bad input
SELECT throws_ok($$INSERT INTO salesmgmt.payment (deal_id, amount, currency) VALUES (999, 5, 'USD')$$,
                 '23503', NULL, 'a payment of a deal that does not exist is refused by the foreign key');
SELECT throws_ok($$INSERT INTO salesmgmt.payment (deal_id, amount, currency) VALUES (NULL, 5, 'USD')$$,
                 '23502', NULL, 'a payment without a deal is refused');
CREATE TEMP TABLE no_deal (x int);
CREATE TRIGGER no_deal_copy BEFORE INSERT ON no_deal FOR EACH ROW EXECUTE FUNCTION salesmgmt._deal_owner_copy();
SELECT throws_ok($$INSERT INTO no_deal VALUES (1)$$, '42703', NULL,
                 'the copy trigger on a table without deal_id names the missing column');
CREATE TEMP TABLE deal_like (deal_id bigint, deal_owner_rep_id bigint);
CREATE TRIGGER deal_like_after AFTER INSERT ON deal_like FOR EACH ROW EXECUTE FUNCTION salesmgmt._deal_owner_copy();
SELECT throws_ok($$INSERT INTO deal_like VALUES (41, NULL)$$, '39P01', NULL,
                 'the copy trigger fired AFTER is refused');
CREATE TRIGGER deal_like_cascade BEFORE INSERT ON deal_like FOR EACH ROW EXECUTE FUNCTION salesmgmt._deal_owner_cascade();
DROP TRIGGER deal_like_after ON deal_like;
SELECT throws_ok($$INSERT INTO deal_like VALUES (41, NULL)$$, '39P01', NULL,
                 'the cascade trigger fired BEFORE is refused');
CREATE TRIGGER deal_like_lock AFTER INSERT ON deal_like FOR EACH ROW EXECUTE FUNCTION salesmgmt._deal_owner_lock();
DROP TRIGGER deal_like_cascade ON deal_like;
SELECT throws_ok($$INSERT INTO deal_like VALUES (41, NULL)$$, '39P01', NULL,
                 'the lock trigger fired AFTER is refused');
SELECT throws_ok($$SELECT salesmgmt._deal_owner_copy()$$, '39P01', NULL,
                 'the trigger functions are not called directly');

SELECT * FROM finish();
ROLLBACK;

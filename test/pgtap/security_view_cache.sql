-- pgTAP: the per-row predicates look the role's cached view up once per
-- call (src/org.c sm_org_view, src/org_deal_owner.c activity_visible) and
-- must never answer with a view that is not the caller's or not current:
-- two roles in one statement (a SECURITY DEFINER function switches the
-- current user row by row), another role in the next statement, and a
-- change of teams, splits, accounts or role membership in the same
-- session and transaction.  Each answer is compared with what the role
-- reads through the policy in a statement of its own.
--
-- The world of test/sql/security_world.sql: m3 sees reps 3-4, r4 only 4,
-- m7 7-8; r8 shares r4's deal 42 by a split.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(12);

\ir ../sql/security_world.sql

-- more activities: on r4's split-shared deal 42 by r4, on r5's deal 51,
-- and, not about a deal, by r5 with r5's account (a lead's activity)
INSERT INTO salesmgmt.activity (kind, account_id, deal_id, rep_id) VALUES ('call', 4, 42, 4), ('call', 5, 51, 5);
INSERT INTO salesmgmt.activity (kind, account_id, rep_id) VALUES ('note', 5, 5);

-- the rows without row-level security, for predicates called by hand
CREATE TEMP TABLE acts AS
    SELECT activity_id, rep_id, deal_id, deal_owner_rep_id, account_id FROM salesmgmt.activity;
GRANT SELECT ON acts TO PUBLIC;

-- what a role reads through the policy, in a statement of its own
CREATE FUNCTION pg_temp.rls_acts(p_role name) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE v bigint[];
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', p_role);
    SELECT coalesce(array_agg(activity_id ORDER BY activity_id), '{}') INTO v FROM salesmgmt.activity;
    RESET ROLE;
    RETURN v;
END
$$;
-- the predicate as sec_m7, whoever calls it
CREATE FUNCTION pg_temp.visible_to_m7(bigint, bigint, bigint, bigint) RETURNS boolean
LANGUAGE sql SECURITY DEFINER AS $$ SELECT salesmgmt.activity_visible($1, $2, $3, $4) $$;
ALTER FUNCTION pg_temp.visible_to_m7(bigint, bigint, bigint, bigint) OWNER TO sec_m7;
GRANT EXECUTE ON FUNCTION pg_temp.rls_acts(name), pg_temp.visible_to_m7(bigint, bigint, bigint, bigint) TO PUBLIC;
-- the predicate as the caller and as sec_m7, row by row in one statement
CREATE FUNCTION pg_temp.both_views(OUT mine bigint[], OUT m7 bigint[])
LANGUAGE sql AS $$
    SELECT coalesce(array_agg(activity_id ORDER BY activity_id)
                        FILTER (WHERE salesmgmt.activity_visible(rep_id, deal_id, deal_owner_rep_id, account_id)), '{}'),
           coalesce(array_agg(activity_id ORDER BY activity_id)
                        FILTER (WHERE pg_temp.visible_to_m7(rep_id, deal_id, deal_owner_rep_id, account_id)), '{}')
      FROM acts
$$;
GRANT EXECUTE ON FUNCTION pg_temp.both_views() TO PUBLIC;

-- the same visibility written by hand, for a rep's set of visible reps
CREATE FUNCTION pg_temp.ref_acts(p_reps bigint[]) RETURNS bigint[]
LANGUAGE sql AS $$
    SELECT coalesce(array_agg(a.activity_id ORDER BY a.activity_id), '{}')
      FROM salesmgmt.activity a
     WHERE a.rep_id = ANY (p_reps) OR a.deal_owner_rep_id = ANY (p_reps)
        OR a.deal_id IN (SELECT s.deal_id FROM salesmgmt.deal_split s WHERE s.rep_id = ANY (p_reps))
        OR (a.deal_id IS NULL AND a.account_id IN (SELECT c.account_id FROM salesmgmt.account c
                                                    WHERE c.owner_rep_id = ANY (p_reps)))
$$;
SELECT pg_temp.ref_acts('{4}') AS r4, pg_temp.ref_acts('{3,4}') AS m3, pg_temp.ref_acts('{7,8}') AS m7 \gset
SELECT is(pg_temp.rls_acts('sec_r4'), :'r4'::bigint[], 'r4 reads the activities of the reference');
SELECT is(pg_temp.rls_acts('sec_m7'), :'m7'::bigint[], 'm7 reads the activities of the reference');

-- ------------------------------------- two roles in one statement
SET ROLE sec_r4;
SELECT is((pg_temp.both_views()).mine, :'r4'::bigint[], 'r4''s rows, with m7''s view asked between them');
SELECT is((pg_temp.both_views()).m7, :'m7'::bigint[], 'm7''s rows, with r4''s view asked between them');
RESET ROLE;
SELECT isnt(:'r4'::bigint[], :'m7'::bigint[], 'r4 and m7 see different activities');

-- ---------------------------------- another role in the next statement
SET ROLE sec_m3;
SELECT is((pg_temp.both_views()).mine, :'m3'::bigint[], 'm3 right after r4 in the same session');
RESET ROLE;

-- --------------------- changes in the same transaction, seen at once
-- each change is checked against the policy, read in a statement of its
-- own, and the policy against what it was before (the change shows)
SET ROLE sec_m3;
SELECT count(*) AS m3_before FROM salesmgmt.activity \gset
RESET ROLE;
UPDATE salesmgmt.rep SET team_id = 3 WHERE rep_id = 5;   -- r5 moves into m3's Leaf
SELECT pg_temp.rls_acts('sec_m3') AS m3_moved \gset
SET ROLE sec_m3;
SELECT is((SELECT count(*) FROM salesmgmt.activity), (:m3_before + 3)::bigint, 'a rep moved into m3''s team: its activities show in the next statement');
SELECT is((pg_temp.both_views()).mine, :'m3_moved'::bigint[], 'the predicate called by hand agrees');
RESET ROLE;

INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share) VALUES (51, 5, 0.5), (51, 4, 0.5);
SET ROLE sec_r4;
SELECT is((SELECT count(*) FROM salesmgmt.activity WHERE deal_id = 51), 2::bigint, 'a split gives r4 the deal''s activities in the next statement');
RESET ROLE;

UPDATE salesmgmt.account SET owner_rep_id = 4 WHERE account_id = 5;
SET ROLE sec_r4;
SELECT is((SELECT count(*) FROM salesmgmt.activity WHERE deal_id IS NULL), 1::bigint,
          'an account handed to r4 gives it the activity not about a deal');
RESET ROLE;

REVOKE salesmgmt_manager FROM sec_m3;
GRANT salesmgmt_rep TO sec_m3;
SELECT pg_temp.rls_acts('sec_m3') AS m3_rep \gset
SET ROLE sec_m3;
SELECT is((SELECT array_agg(DISTINCT rep_id) FROM salesmgmt.activity), ARRAY[3]::bigint[],
          'm3 made a rep sees only its own activities in the next statement');
SELECT is((pg_temp.both_views()).mine, :'m3_rep'::bigint[], 'and so does the predicate called by hand');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

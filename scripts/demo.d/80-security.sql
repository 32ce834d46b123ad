-- Tour: who sees what.  Three logins mapped to reps of the demo
-- organisation (the VP, a regional manager, a rep of one of the region's
-- squads) run the same queries; row-level security decides the rows.
\pset footer off
\echo
\echo '================ security: who sees what ================'
SET client_min_messages = warning;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['demo_vp', 'demo_manager', 'demo_rep'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', r);
        END IF;
    END LOOP;
END
$$;
RESET client_min_messages;
GRANT salesmgmt_manager TO demo_vp, demo_manager;
GRANT salesmgmt_rep TO demo_rep;
UPDATE salesmgmt.rep SET db_role = NULL WHERE db_role IN ('demo_vp', 'demo_manager', 'demo_rep');
UPDATE salesmgmt.rep SET db_role = 'demo_vp' WHERE rep_id = 1;
UPDATE salesmgmt.rep SET db_role = 'demo_manager' WHERE rep_id = 2;
UPDATE salesmgmt.rep SET db_role = 'demo_rep'
 WHERE rep_id = (SELECT min(r.rep_id) FROM salesmgmt.rep r JOIN salesmgmt.team t USING (team_id)
                  WHERE t.parent_team_id = 2 AND t.manager_rep_id <> r.rep_id);

\echo
\echo '-- The logins and what they are to salesmgmt'
SELECT r.db_role AS login, r.rep_id, r.name, t.name AS team,
       CASE WHEN pg_has_role(r.db_role, 'salesmgmt_manager', 'USAGE') THEN 'manager' ELSE 'rep' END AS access,
       (SELECT count(*) FROM salesmgmt.visible_rep_ids(r.db_role)) AS visible_reps
  FROM salesmgmt.rep r JOIN salesmgmt.team t USING (team_id)
 WHERE r.db_role IN ('demo_vp', 'demo_manager', 'demo_rep')
 ORDER BY visible_reps DESC;

\echo
\echo '-- The same query as each login: SELECT count(*), sum(amount) FROM salesmgmt.deal ...'
CREATE TEMP TABLE demo_seen (login text, deals bigint, open_amount numeric, accounts bigint, activities bigint);
GRANT INSERT ON demo_seen TO demo_vp, demo_manager, demo_rep;
SET ROLE demo_vp;
INSERT INTO demo_seen SELECT current_user, (SELECT count(*) FROM salesmgmt.deal),
       (SELECT sum(amount) FROM salesmgmt.deal WHERE closed_at IS NULL),
       (SELECT count(*) FROM salesmgmt.account), (SELECT count(*) FROM salesmgmt.activity);
SET ROLE demo_manager;
INSERT INTO demo_seen SELECT current_user, (SELECT count(*) FROM salesmgmt.deal),
       (SELECT sum(amount) FROM salesmgmt.deal WHERE closed_at IS NULL),
       (SELECT count(*) FROM salesmgmt.account), (SELECT count(*) FROM salesmgmt.activity);
SET ROLE demo_rep;
INSERT INTO demo_seen SELECT current_user, (SELECT count(*) FROM salesmgmt.deal),
       (SELECT sum(amount) FROM salesmgmt.deal WHERE closed_at IS NULL),
       (SELECT count(*) FROM salesmgmt.account), (SELECT count(*) FROM salesmgmt.activity);
RESET ROLE;
SELECT * FROM demo_seen ORDER BY deals DESC;

\echo
\echo '-- The rep tries to read and change a colleague''s deal'
SELECT min(deal_id) AS other_deal FROM salesmgmt.deal
 WHERE owner_rep_id <> (SELECT rep_id FROM salesmgmt.rep WHERE db_role = 'demo_rep') \gset
SET ROLE demo_rep;
SELECT count(*) AS rows_seen FROM salesmgmt.deal WHERE deal_id = :other_deal;
WITH u AS (UPDATE salesmgmt.deal SET amount = 0 WHERE deal_id = :other_deal RETURNING 1)
SELECT count(*) AS rows_changed FROM u;
RESET ROLE;
DROP TABLE demo_seen;

-- security_reference.sql: the visibility the row-level security policies
-- give, written by hand in plain SQL, for bench/security.sh.  A superuser
-- (no RLS) runs each query, prefixed by the "with" section, with @REP@
-- replaced by the rep's id and @MGR@ by whether its role is a manager; the
-- answer must equal what the role gets from the same table through RLS.
-- Sections start with "-- @name".

-- @with
WITH RECURSIVE tree(team_id) AS (
    SELECT t.team_id FROM salesmgmt.team t WHERE @MGR@ AND t.manager_rep_id = @REP@
    UNION
    SELECT t.team_id FROM salesmgmt.team t JOIN tree ON t.parent_team_id = tree.team_id
), vis(rep_id) AS (
    SELECT @REP@::bigint UNION SELECT r.rep_id FROM salesmgmt.rep r JOIN tree USING (team_id)
), vis_deal(deal_id) AS (
    SELECT d.deal_id FROM salesmgmt.deal d WHERE d.owner_rep_id IN (SELECT rep_id FROM vis)
    UNION
    SELECT s.deal_id FROM salesmgmt.deal_split s WHERE s.rep_id IN (SELECT rep_id FROM vis)
)

-- @deals
SELECT count(*), sum(d.amount) FROM salesmgmt.deal d WHERE d.deal_id IN (SELECT deal_id FROM vis_deal)

-- @payments
SELECT count(*), sum(p.amount) FROM salesmgmt.payment p WHERE p.deal_id IN (SELECT deal_id FROM vis_deal)

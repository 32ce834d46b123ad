-- security_reference.sql: the visibility the row-level security policies
-- give, written by hand in plain SQL as a strong DBA would, for
-- bench/security.sh.  A superuser (no RLS) runs each query, prefixed by the
-- "with" section, with @REP@ replaced by the rep's id and @MGR@ by whether
-- its role is a manager; the answer must equal what the role gets from the
-- same table through RLS.  Sections start with "-- @name".
--
-- Each query reads deal once: the visible reps and the split-shared deals
-- are small hashed sets probed by one scan (an earlier version scanned
-- deal twice, once to list the visible deals and once to read them).

-- @with
WITH RECURSIVE tree(team_id) AS (
    SELECT t.team_id FROM salesmgmt.team t WHERE @MGR@ AND t.manager_rep_id = @REP@
    UNION
    SELECT t.team_id FROM salesmgmt.team t JOIN tree ON t.parent_team_id = tree.team_id
), vis(rep_id) AS (
    SELECT @REP@::bigint UNION SELECT r.rep_id FROM salesmgmt.rep r JOIN tree USING (team_id)
), shared(deal_id) AS (
    SELECT s.deal_id FROM salesmgmt.deal_split s WHERE s.rep_id IN (SELECT rep_id FROM vis)
)

-- @deals
SELECT count(*), sum(d.amount) FROM salesmgmt.deal d
 WHERE d.owner_rep_id IN (SELECT rep_id FROM vis) OR d.deal_id IN (SELECT deal_id FROM shared)

-- @payments
SELECT count(*), sum(p.amount) FROM salesmgmt.payment p JOIN salesmgmt.deal d ON d.deal_id = p.deal_id
 WHERE d.owner_rep_id IN (SELECT rep_id FROM vis) OR d.deal_id IN (SELECT deal_id FROM shared)

-- @history
SELECT count(*), sum(h.new_amount) FROM salesmgmt.deal_stage_history h
 WHERE h.owner_rep_id IN (SELECT rep_id FROM vis)

-- @activities
SELECT count(*) FROM salesmgmt.activity a
  LEFT JOIN salesmgmt.deal d ON d.deal_id = a.deal_id
  LEFT JOIN salesmgmt.account ac ON a.deal_id IS NULL AND ac.account_id = a.account_id
 WHERE a.rep_id IN (SELECT rep_id FROM vis)
    OR d.owner_rep_id IN (SELECT rep_id FROM vis) OR d.deal_id IN (SELECT deal_id FROM shared)
    OR ac.owner_rep_id IN (SELECT rep_id FROM vis)

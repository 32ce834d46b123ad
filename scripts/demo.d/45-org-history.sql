-- Tour, part 4b: the organisation as it was (issue #19).  Loads, once, a
-- past team for one squad rep (an import of an earlier reorganisation)
-- and shows what commissions, forecasts and scorecards see on a day before
-- and after it.  See docs/history-org.md.
\pset footer off
\set QUIET on
-- the first squad rep, and another squad (under another region if any)
SELECT r.rep_id AS demo_rep, r.team_id AS demo_team,
       (SELECT t.team_id FROM salesmgmt.team t
         WHERE t.team_id <> r.team_id AND t.parent_team_id IS NOT NULL
           AND EXISTS (SELECT 1 FROM salesmgmt.team c WHERE c.parent_team_id IS NOT NULL AND c.team_id = t.team_id)
         ORDER BY t.parent_team_id IS NOT DISTINCT FROM (SELECT parent_team_id FROM salesmgmt.team WHERE team_id = r.team_id),
                  t.team_id DESC LIMIT 1) AS demo_old_team
  FROM salesmgmt.rep r JOIN salesmgmt.team t ON t.team_id = r.team_id
 WHERE t.parent_team_id IS NOT NULL AND r.rep_id NOT IN (SELECT manager_rep_id FROM salesmgmt.team WHERE manager_rep_id IS NOT NULL)
 ORDER BY r.rep_id LIMIT 1 \gset
SELECT NOT EXISTS (SELECT 1 FROM salesmgmt.rep_team_history WHERE rep_id = :demo_rep AND valid_to < 'infinity')
       AS need_past \gset
\if :need_past
SELECT salesmgmt.backfill_rep_team(:demo_rep, :demo_old_team, current_date - 180, current_date - 60) \g /dev/null
\endif
\set QUIET off

\echo
\echo '-- A rep''s teams by day (salesmgmt.rep_team_history; today''s version kept by a trigger)'
SELECT h.team_id, t.name AS team, h.valid_from - current_date AS from_day, 
       CASE WHEN h.valid_to = 'infinity' THEN NULL ELSE h.valid_to - current_date END AS to_day
  FROM salesmgmt.rep_team_history h JOIN salesmgmt.team t USING (team_id)
 WHERE h.rep_id = :demo_rep AND h.valid_from > '-infinity' AND h.valid_to > current_date - 400
 ORDER BY h.valid_from;

\echo
\echo '-- Who would get an override on a win 90 days ago, and on one today (salesmgmt.org_as_of)'
SELECT 'today - 90' AS day, o.team_id, o.managers FROM salesmgmt.org_as_of(current_date - 90) o WHERE o.rep_id = :demo_rep
UNION ALL
SELECT 'today', o.team_id, o.managers FROM salesmgmt.org_as_of() o WHERE o.rep_id = :demo_rep;

\echo
\echo '-- A past quarter''s quota as it was (salesmgmt.quota_of_record): doubled today, in a transaction rolled back,'
\echo '-- quota_attainment keeps the amount the quarter ended with; today''s row has the new one'
SELECT q.quota_id AS demo_quota FROM salesmgmt.quota q
 WHERE q.rep_id IS NOT NULL AND q.period_end < current_date AND q.product_family IS NULL
 ORDER BY q.period_end DESC, q.quota_id LIMIT 1 \gset
BEGIN;
UPDATE salesmgmt.quota SET amount = amount * 2 WHERE quota_id = :demo_quota;
SELECT q.quota_id, q.period_start, q.period_end, q.amount AS amount_today,
       a.quota_amount AS attainment_quota, a.won_amount, a.attainment
  FROM salesmgmt.quota q JOIN salesmgmt.quota_attainment a USING (quota_id)
 WHERE q.quota_id = :demo_quota;
ROLLBACK;

-- 0.1.0 -> 0.2.0: the effective-dated organisation (issue #19).
--
-- The history tables, the triggers that keep them on rep, team, deal_split,
-- quota and deal, and the first versions recorded from the current state
-- are all in src/org_history.sql, a new part that the fresh install and
-- this upgrade both run (it comes after this delta in UPGRADE_PARTS; its
-- INSERT ... SELECT of the current rows is what back-fills an upgraded
-- database).  What 0.1.0 created and changes here: forecast's p_as_of now
-- also takes splits, quotas, teams and deletions as they were.
COMMENT ON FUNCTION salesmgmt.forecast(date, date, text, timestamptz, char) IS 'Forecast of the deals whose period (closed_at when closed, else expected close date) lies in [p_from, p_to], per rep, team (with sub-teams), pipeline, month, quarter or in total, in the reporting currency; p_as_of rebuilds it as it stood at a past moment: the deals from their history (deals deleted by then left out), the splits and quotas of that moment, the teams of its day (salesmgmt.deal_deletion, deal_split_history, quota_history, rep_team_history, team_history).';

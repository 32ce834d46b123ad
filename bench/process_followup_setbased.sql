-- bench/process_followup_setbased.sql: the plain-SQL reference of
-- bench/process.sh, the set-based statement a DBA would write for the
-- reminders of run_follow_up_rules' no_activity deal rules: each open
-- deal's last activity from one grouped pass over activity, the deals
-- quiet for remind_after_days and not yet reminded in this episode, their
-- tasks and follow_up_action rows in one INSERT ... SELECT each (one
-- statement, data-modifying CTEs).  Loaded after
-- bench/process_followup_reference.sql (schema process_bench).

CREATE FUNCTION process_bench.setbased(p_as_of timestamptz) RETURNS integer
LANGUAGE sql AS $$
WITH last_activity AS (
    SELECT a.deal_id, max(a.occurred_at) AS last
      FROM salesmgmt.activity a
     WHERE a.deal_id IS NOT NULL AND a.occurred_at <= p_as_of
     GROUP BY a.deal_id
), todo AS (
    SELECT r.rule_id, r.name AS rule, d.deal_id, d.owner_rep_id, d.account_id, d.name,
           greatest(la.last, d.created_at) AS since
      FROM salesmgmt.follow_up_rule r
      JOIN salesmgmt.deal d ON r.condition = '{}' OR salesmgmt.rule_matches_row(r.condition, d)
      JOIN salesmgmt.stage s ON s.stage_id = d.stage_id AND s.outcome = 'open'
      LEFT JOIN last_activity la ON la.deal_id = d.deal_id
     WHERE r.active AND r.subject = 'deal' AND r.trigger_on = 'no_activity'
       AND greatest(la.last, d.created_at) <= p_as_of - make_interval(days => r.remind_after_days)
       AND NOT EXISTS (SELECT 1 FROM salesmgmt.follow_up_action f
                        WHERE f.rule_id = r.rule_id AND f.subject = 'deal' AND f.subject_id = d.deal_id
                          AND f.quiet_since = greatest(la.last, d.created_at) AND f.action = 'remind')
), task AS (
    INSERT INTO salesmgmt.sales_task (rep_id, account_id, deal_id, title, description, due_date)
    SELECT t.owner_rep_id, t.account_id, t.deal_id, 'Follow up: ' || t.name,
           format('Rule "%s": quiet since %s.', t.rule, t.since), p_as_of::date
      FROM todo t
    RETURNING task_id, deal_id, rep_id, description
), action AS (
    INSERT INTO salesmgmt.follow_up_action (rule_id, subject, subject_id, action, quiet_since, acted_at, rep_id, task_id)
    SELECT t.rule_id, 'deal', t.deal_id, 'remind', t.since, p_as_of, k.rep_id, k.task_id
      FROM task k
      JOIN todo t ON t.deal_id = k.deal_id AND format('Rule "%s": quiet since %s.', t.rule, t.since) = k.description
    RETURNING 1
)
SELECT count(*)::integer FROM action
$$;

-- bench/process_followup_reference.sql: the follow-up rules of
-- bench/process.sh and a PL/pgSQL reference of run_follow_up_rules'
-- reminders, deal by deal: for each open deal, its last activity, and a
-- task when it is quiet and not yet reminded in this episode.

INSERT INTO salesmgmt.follow_up_rule (name, subject, trigger_on, remind_after_days, escalate_after_days, reassign_after_days)
VALUES ('Deals quiet for 30 days', 'deal', 'no_activity', 30, 7, 7);

DROP SCHEMA IF EXISTS process_bench CASCADE;
CREATE SCHEMA process_bench;

CREATE FUNCTION process_bench.reference(p_as_of timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_rule salesmgmt.follow_up_rule;
    v_deal record;
    v_last timestamptz;
    v_task bigint;
    v_n integer := 0;
BEGIN
    FOR v_rule IN SELECT * FROM salesmgmt.follow_up_rule WHERE active ORDER BY rule_id LOOP
        FOR v_deal IN SELECT d.* FROM salesmgmt.deal d JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
                       WHERE s.outcome = 'open' LOOP
            SELECT max(a.occurred_at) INTO v_last FROM salesmgmt.activity a
             WHERE a.deal_id = v_deal.deal_id AND a.occurred_at <= p_as_of;
            v_last := greatest(v_last, v_deal.created_at);
            CONTINUE WHEN v_last > p_as_of - make_interval(days => v_rule.remind_after_days);
            CONTINUE WHEN EXISTS (SELECT 1 FROM salesmgmt.follow_up_action f
                                   WHERE f.rule_id = v_rule.rule_id AND f.subject = 'deal'
                                     AND f.subject_id = v_deal.deal_id AND f.quiet_since = v_last
                                     AND f.action = 'remind');
            INSERT INTO salesmgmt.sales_task (rep_id, account_id, deal_id, title, description, due_date)
            VALUES (v_deal.owner_rep_id, v_deal.account_id, v_deal.deal_id, 'Follow up: ' || v_deal.name,
                    format('Rule "%s": quiet since %s.', v_rule.name, v_last), p_as_of::date)
            RETURNING task_id INTO v_task;
            INSERT INTO salesmgmt.follow_up_action (rule_id, subject, subject_id, action, quiet_since, acted_at, rep_id, task_id)
            VALUES (v_rule.rule_id, 'deal', v_deal.deal_id, 'remind', v_last, p_as_of, v_deal.owner_rep_id, v_task);
            v_n := v_n + 1;
        END LOOP;
    END LOOP;
    RETURN v_n;
END
$$;

-- one run of any of them (c: run_follow_up_rules, ref: deal by deal,
-- sql: bench/process_followup_setbased.sql), undone
CREATE FUNCTION process_bench.run(p_variant text, p_as_of timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_n bigint;
BEGIN
    BEGIN
        IF p_variant = 'c' THEN
            SELECT sum(items) INTO v_n FROM salesmgmt.run_follow_up_rules(p_as_of) WHERE action = 'remind';
        ELSIF p_variant = 'sql' THEN
            v_n := process_bench.setbased(p_as_of);
        ELSE
            v_n := process_bench.reference(p_as_of);
        END IF;
        RAISE EXCEPTION 'undo' USING ERRCODE = 'SMBEN';
    EXCEPTION WHEN SQLSTATE 'SMBEN' THEN
        NULL;
    END;
    RETURN v_n;
END
$$;

-- the reminders (action and task) any of them creates, as a digest, undone
CREATE FUNCTION process_bench.digest(p_variant text, p_as_of timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v text;
BEGIN
    BEGIN
        IF p_variant = 'c' THEN
            PERFORM salesmgmt.run_follow_up_rules(p_as_of);
        ELSIF p_variant = 'sql' THEN
            PERFORM process_bench.setbased(p_as_of);
        ELSE
            PERFORM process_bench.reference(p_as_of);
        END IF;
        SELECT count(*) || ' ' || md5(string_agg(concat_ws(':', f.subject_id, f.rep_id, f.quiet_since, f.acted_at,
                                                           t.rep_id, t.account_id, t.deal_id, t.title,
                                                           t.description, t.due_date),
                                                 ',' ORDER BY f.subject_id))
          INTO v FROM salesmgmt.follow_up_action f JOIN salesmgmt.sales_task t ON t.task_id = f.task_id
         WHERE f.action = 'remind';
        RAISE EXCEPTION 'undo' USING ERRCODE = 'SMBEN';
    EXCEPTION WHEN SQLSTATE 'SMBEN' THEN
        NULL;
    END;
    RETURN v;
END
$$;

-- pgTAP: follow-up discipline on leads (issue 16): next_follow_up, rules
-- on leads that remind, escalate and reassign a quiet lead back to its pool,
-- through the assignment rules or to the manager; idempotent runs and bad
-- rules.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(32);

-- structure
SELECT has_column('salesmgmt', 'lead', 'next_follow_up', 'lead.next_follow_up');
SELECT col_type_is('salesmgmt', 'lead', 'next_follow_up', 'date', 'a date, like account.next_follow_up');
SELECT ok(has_column_privilege('salesmgmt_rep', 'salesmgmt.lead', 'next_follow_up', 'UPDATE')
          AND has_column_privilege('salesmgmt_manager', 'salesmgmt.lead', 'next_follow_up', 'INSERT'),
          'reps and managers plan their next follow-up');
SELECT ok(obj_description('salesmgmt._follow_up_reassign_leads(salesmgmt.follow_up_rule)'::regprocedure, 'pg_proc') IS NOT NULL,
          'the lead reassignment has a comment');

-- a small world: manager 1 over team 1 (reps 2, 3), rep 4 elsewhere; a pool of team 1
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Inbound'), (2, 'Other');
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Mia', 1), (2, 'Ray', 1), (3, 'Sol', 1), (4, 'Tao', 2);
UPDATE salesmgmt.team SET manager_rep_id = 1 WHERE team_id = 1;
INSERT INTO salesmgmt.lead_pool (pool_id, name) VALUES (1, 'Web');
INSERT INTO salesmgmt.lead_pool_team (pool_id, team_id) VALUES (1, 1);
INSERT INTO salesmgmt.assignment_rule (entity, position, condition, target_kind, target_id)
VALUES ('lead', 1, '{"source": "event"}', 'rep', 4);
-- quiet for 30 days: web (pool), event (no pool: routed), referral (to the
-- manager), a disqualified one (ignored), one with activity (not quiet)
INSERT INTO salesmgmt.lead (lead_id, name, source, owner_rep_id, pool_id, status, disqualify_reason, created_at, assigned_at) VALUES
    (1, 'Web lead', 'web', 2, 1, 'working', NULL, now() - interval '30 days', now() - interval '30 days'),
    (2, 'Event lead', 'event', 2, NULL, 'new', NULL, now() - interval '30 days', now() - interval '30 days'),
    (3, 'Referral lead', 'referral', 3, NULL, 'new', NULL, now() - interval '30 days', now() - interval '30 days'),
    (4, 'Dropped lead', 'web', 2, 1, 'disqualified', 'no budget', now() - interval '30 days', now() - interval '30 days'),
    (5, 'Busy lead', 'cold', 2, 1, 'working', NULL, now() - interval '30 days', now() - interval '30 days');
INSERT INTO salesmgmt.activity (kind, lead_id, rep_id, occurred_at) VALUES ('call', 5, 2, now() - interval '1 day');

-- bad rules
SELECT throws_ok($$INSERT INTO salesmgmt.follow_up_rule (name, subject, remind_after_days, escalate_after_days, reassign_after_days, reassign_to)
                   VALUES ('Deals to a pool', 'deal', 1, 1, 1, 'pool')$$,
                 '23514', NULL, 'only leads go back to a pool');
SELECT throws_ok($$INSERT INTO salesmgmt.follow_up_rule (name, subject, remind_after_days, reassign_to)
                   VALUES ('Accounts by rules', 'account', 1, 'rules')$$,
                 '23514', NULL, 'or through the assignment rules');
SELECT throws_ok($$INSERT INTO salesmgmt.follow_up_rule (name, subject, condition, remind_after_days)
                   VALUES ('Unknown column', 'lead', '{"no_such_column": 1}', 1)$$,
                 '22023', NULL, 'a lead rule''s condition is validated against the lead table');
SELECT throws_ok($$INSERT INTO salesmgmt.follow_up_rule (name, subject, remind_after_days) VALUES ('Negative', 'lead', -1)$$,
                 '23514', NULL, 'negative days are refused');
SELECT throws_ok($$INSERT INTO salesmgmt.follow_up_rule (name, subject, remind_after_days) VALUES ('Bad subject', 'leads', 1)$$,
                 '23514', NULL, 'an unknown subject is refused');
SELECT is((SELECT count(*)::int FROM salesmgmt.follow_up_rule), 0, 'no bad rule was written');

INSERT INTO salesmgmt.follow_up_rule (rule_id, name, subject, condition, remind_after_days, escalate_after_days, reassign_after_days, reassign_to) VALUES
    (1, 'Web leads back to the pool', 'lead', '{"source": "web"}', 10, 5, 5, 'pool'),
    (2, 'Event leads rerouted', 'lead', '{"source": "event"}', 10, 5, 5, 'pool'),
    (3, 'Referral leads to the manager', 'lead', '{"source": "referral"}', 10, 5, 5, 'manager');

-- 12 days ago: reminders
SELECT results_eq($$SELECT rule_id, action, items FROM salesmgmt.run_follow_up_rules(now() - interval '12 days') WHERE action = 'remind' ORDER BY 1$$,
                  $$VALUES (1::bigint, 'remind'::text, 1), (2, 'remind', 1), (3, 'remind', 1)$$,
                  'each quiet open lead gets one reminder (not the disqualified one, nor the busy one)');
SELECT results_eq($$SELECT lead_id, rep_id, title FROM salesmgmt.sales_task WHERE lead_id IS NOT NULL ORDER BY lead_id$$,
                  $$VALUES (1::bigint, 2::bigint, 'Follow up: Web lead'::text), (2, 2, 'Follow up: Event lead'),
                           (3, 3, 'Follow up: Referral lead')$$,
                  'the reminder is a task of the owner about the lead');
-- 6 days ago: escalations
SELECT results_eq($$SELECT rule_id, items FROM salesmgmt.run_follow_up_rules(now() - interval '6 days') WHERE action = 'escalate' ORDER BY 1$$,
                  $$VALUES (1::bigint, 1), (2, 1), (3, 1)$$, 'still quiet five days later: escalated');
SELECT is((SELECT count(*)::int FROM salesmgmt.sales_task WHERE lead_id IS NOT NULL AND rep_id = 1 AND title LIKE 'Escalated: %'),
          3, 'the manager got a task about each lead');
SELECT is((SELECT count(*)::int FROM salesmgmt.follow_up_action WHERE subject = 'lead' AND action = 'escalate'),
          3, 'and the escalations are recorded');
-- now: reassignments
SELECT results_eq($$SELECT rule_id, items FROM salesmgmt.run_follow_up_rules() WHERE action = 'reassign' ORDER BY 1$$,
                  $$VALUES (1::bigint, 1), (2, 1), (3, 1)$$, 'still quiet five days after escalation: reassigned');
SELECT results_eq($$SELECT lead_id, owner_rep_id, pool_id FROM salesmgmt.lead WHERE lead_id IN (1, 2, 3) ORDER BY lead_id$$,
                  $$VALUES (1::bigint, NULL::bigint, 1::bigint), (2, 4, NULL), (3, 1, NULL)$$,
                  'the web lead is back in its pool, the event lead (no pool) routed by the rules, the referral lead with the manager');
SELECT is((SELECT assigned_at FROM salesmgmt.lead WHERE lead_id = 1), NULL, 'a lead back in its pool has no assignment time');
SELECT results_eq($$SELECT lead_id, kind, rep_id FROM salesmgmt.lead_history ORDER BY lead_id$$,
                  $$VALUES (1::bigint, 'reclaimed'::text, 2::bigint), (2, 'assigned', 4), (3, 'assigned', 1)$$,
                  'each reassignment is in the lead''s history');
SELECT results_eq($$SELECT subject_id, rep_id FROM salesmgmt.follow_up_action WHERE action = 'reassign' ORDER BY 1$$,
                  $$VALUES (1::bigint, NULL::bigint), (2, 4), (3, 1)$$, 'the actions name who got each lead');
SELECT is((SELECT count(*)::int FROM salesmgmt.lead WHERE lead_id = 4 AND owner_rep_id = 2), 1,
          'the disqualified lead stays with its owner');
-- an activity ends the quiet (a suspended rule, asked directly)
INSERT INTO salesmgmt.follow_up_rule (rule_id, name, subject, condition, remind_after_days, active)
VALUES (5, 'Cold leads', 'lead', '{"source": "cold"}', 10, false);
SELECT is((SELECT count(*)::int FROM salesmgmt._follow_up_quiet((SELECT r FROM salesmgmt.follow_up_rule r WHERE rule_id = 5), now())),
          0, 'a lead with an activity yesterday is not quiet');
SELECT is((SELECT quiet_since FROM salesmgmt._follow_up_quiet((SELECT r FROM salesmgmt.follow_up_rule r WHERE rule_id = 5), now() + interval '10 days')),
          (SELECT occurred_at FROM salesmgmt.activity WHERE lead_id = 5), 'it is quiet from that activity on');

-- idempotent
SELECT is((SELECT sum(items)::int FROM salesmgmt.run_follow_up_rules()), 0, 'a second run does nothing');
SELECT is((SELECT count(*)::int FROM salesmgmt.sales_task WHERE lead_id IS NOT NULL), 6, 'and creates no task');

-- overdue: past next_follow_up
INSERT INTO salesmgmt.lead (lead_id, name, source, owner_rep_id, next_follow_up)
VALUES (6, 'Promised a call', 'partner', 3, current_date - 5), (7, 'Later', 'partner', 3, current_date + 5);
INSERT INTO salesmgmt.follow_up_rule (rule_id, name, subject, condition, trigger_on, remind_after_days)
VALUES (4, 'Partner follow-ups', 'lead', '{"source": "partner"}', 'overdue', 2);
SELECT results_eq($$SELECT items FROM salesmgmt.run_follow_up_rules() WHERE rule_id = 4$$, $$VALUES (1)$$,
                  'a lead past its next_follow_up is reminded');
SELECT is((SELECT rep_id FROM salesmgmt.sales_task WHERE lead_id = 6), 3::bigint, 'its owner gets the task');
SELECT is((SELECT count(*)::int FROM salesmgmt.sales_task WHERE lead_id = 7), 0, 'a follow-up still ahead is not');

-- a new owner starts a new episode: the lead reassigned to the manager is
-- quiet again only from its assignment
SELECT is((SELECT count(*)::int FROM salesmgmt._follow_up_quiet((SELECT r FROM salesmgmt.follow_up_rule r WHERE rule_id = 3), now())),
          0, 'the reassigned lead is not quiet for its new owner yet');
SELECT is((SELECT count(*)::int FROM salesmgmt._follow_up_quiet((SELECT r FROM salesmgmt.follow_up_rule r WHERE rule_id = 3),
                                                                now() + interval '11 days')),
          1, 'but is ten days after the new owner got it');

-- a failed run leaves nothing behind
SELECT throws_ok($$SELECT * FROM salesmgmt.run_follow_up_rules(NULL)$$, '22004', NULL, 'a null as-of time is refused');
SELECT throws_ok($$SELECT * FROM salesmgmt.run_follow_up_rules(now() + interval '1 year')$$, '22023', NULL,
                 'a future as-of time is refused');

SELECT * FROM finish();
ROLLBACK;

-- pgTAP: the sales process: structure, every error code, bad input that
-- leaves nothing behind, and row-level security of the new tables.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(76);

-- structure
SELECT has_table('salesmgmt', t, 'table ' || t)
  FROM unnest(ARRAY['stage_task_template', 'approval_rule', 'approval_request', 'approval_step',
                    'approval_decision', 'follow_up_rule', 'follow_up_action', 'sales_plan',
                    'sales_plan_item', 'sales_plan_review']) t;
SELECT has_column('salesmgmt', 'sales_task', c, 'sales_task.' || c) FROM unnest(ARRAY['stage_id', 'template_id', 'required']) c;
SELECT has_column('salesmgmt', 'deal', c, 'deal.' || c) FROM unnest(ARRAY['next_step', 'next_step_due']) c;
SELECT has_column('salesmgmt', 'account', 'next_follow_up', 'account.next_follow_up');
SELECT has_view('salesmgmt', v, 'view ' || v)
  FROM unnest(ARRAY['overdue_tasks', 'deals_without_next_step', 'accounts_gone_quiet', 'plan_progress', 'approval_queue']) v;
SELECT ok((SELECT bool_and(('salesmgmt.' || t)::regclass = ANY (extconfig)) FROM pg_extension,
                 unnest(ARRAY['stage_task_template', 'approval_rule', 'approval_request', 'approval_step',
                              'approval_decision', 'follow_up_rule', 'follow_up_action', 'sales_plan',
                              'sales_plan_item', 'sales_plan_review']) t
            WHERE extname = 'salesmgmt'), 'every new table is kept by pg_dump');
SELECT is((SELECT count(*)::integer FROM pg_class c
            WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind = 'r' AND NOT c.relrowsecurity
              AND c.relname IN ('stage_task_template', 'approval_rule', 'approval_request', 'approval_step',
                                'approval_decision', 'follow_up_rule', 'follow_up_action', 'sales_plan',
                                'sales_plan_item', 'sales_plan_review')), 0,
          'row-level security on every new table');
SELECT is((SELECT count(*)::integer FROM pg_policies
            WHERE schemaname = 'salesmgmt'
              AND tablename IN ('stage_task_template', 'approval_rule', 'approval_request', 'approval_step',
                                'approval_decision', 'follow_up_rule', 'follow_up_action', 'sales_plan',
                                'sales_plan_item', 'sales_plan_review')
              AND (qual ILIKE '%select%' OR with_check ILIKE '%select%')), 0,
          'the new policies use per-row predicates, no sub-selects');
SELECT is((SELECT count(*)::integer FROM pg_class c
            WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind IN ('r', 'v')
              AND c.relname IN ('stage_task_template', 'approval_rule', 'approval_request', 'approval_step',
                                'approval_decision', 'follow_up_rule', 'follow_up_action', 'sales_plan',
                                'sales_plan_item', 'sales_plan_review', 'overdue_tasks',
                                'deals_without_next_step', 'accounts_gone_quiet', 'plan_progress', 'approval_queue')
              AND obj_description(c.oid, 'pg_class') IS NULL), 0, 'every new table and view has a comment');
SELECT is((SELECT count(*)::integer FROM pg_proc p
            WHERE p.pronamespace = 'salesmgmt'::regnamespace
              AND p.proname IN ('deal_checklist', 'request_approval', 'approve', 'reject', 'cancel_approval',
                                'run_follow_up_rules')
              AND obj_description(p.oid, 'pg_proc') IS NULL), 0, 'every new function has a comment');
SELECT is((SELECT count(*)::integer FROM salesmgmt.webhook_event_type
            WHERE event_type IN ('approval.requested', 'approval.approved', 'approval.rejected', 'followup.escalated')),
          4, 'the events are registered');

-- a small world
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'T');
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Mgr', 1), (2, 'Rep', 1);
UPDATE salesmgmt.team SET manager_rep_id = 1 WHERE team_id = 1;
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) VALUES (1, 'Acme', 2);
SELECT salesmgmt.create_pipeline('P', '[{"name": "Q", "probability": 0.1}, {"name": "R", "probability": 0.5},
    {"name": "W", "outcome": "won"}, {"name": "L", "outcome": "lost"}]');
INSERT INTO salesmgmt.stage_task_template (stage_id, title) VALUES (1, 'Qualify it');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
    VALUES (1, 'D1', 1, 2, 1, 1, 500);

-- stage tasks
SELECT is((SELECT count(*)::integer FROM salesmgmt.sales_task WHERE deal_id = 1 AND stage_id = 1 AND required), 1,
          'entering a stage creates its tasks');
SELECT throws_ok($$UPDATE salesmgmt.deal SET stage_id = 2 WHERE deal_id = 1$$, 'SM070', NULL, 'open required task: SM070');
SELECT throws_ok($$SELECT salesmgmt.move_deal(1, 'W')$$, 'SM070', NULL, 'to won as well');
SELECT is((SELECT stage_id FROM salesmgmt.deal WHERE deal_id = 1), 1::bigint, 'a refused move changes nothing');
SELECT throws_ok($$SELECT * FROM salesmgmt.deal_checklist(NULL)$$, '22004', NULL, 'deal_checklist(NULL): 22004');
SELECT throws_ok($$SELECT * FROM salesmgmt.deal_checklist(-1)$$, '42704', NULL, 'deal_checklist(unknown): 42704');
UPDATE salesmgmt.sales_task SET status = 'done', completed_at = now() WHERE deal_id = 1;
SELECT lives_ok($$UPDATE salesmgmt.deal SET stage_id = 2 WHERE deal_id = 1$$, 'moves once the task is done');

-- approvals
SELECT throws_ok($$INSERT INTO salesmgmt.approval_rule (name, stage_id, condition) VALUES ('x', 3, '{"colour": "red"}')$$,
                 '22023', NULL, 'a rule on an unknown column: 22023');
SELECT throws_ok($$INSERT INTO salesmgmt.approval_rule (name, stage_id, condition) VALUES ('x', 3, '{"amount": {"~~": 5}}')$$,
                 '22023', NULL, 'a rule with an unknown operator: 22023');
SELECT throws_ok($$INSERT INTO salesmgmt.approval_rule (name, stage_id, approver, approver_role) VALUES ('x', 3, 'role', 'regress_no_such_role')$$,
                 '42704', NULL, 'an unknown approver role: 42704');
INSERT INTO salesmgmt.approval_rule (name, stage_id, condition) VALUES ('big', 3, '{"amount": {">=": 100}}');
SELECT throws_ok($$SELECT salesmgmt.move_deal(1, 'W')$$, 'SM071', NULL, 'a move needing approval: SM071');
SELECT throws_ok($$SELECT salesmgmt.request_approval(NULL, 'W')$$, '22004', NULL, 'request_approval(NULL): 22004');
SELECT throws_ok($$SELECT salesmgmt.request_approval(99, 'W')$$, '42704', NULL, 'request_approval(unknown deal): 42704');
SELECT throws_ok($$SELECT salesmgmt.request_approval(1, 'Nope')$$, '42704', NULL, 'request_approval(unknown stage): 42704');
SELECT throws_ok($$SELECT salesmgmt.request_approval(1, 'R')$$, '55000', NULL, 'request_approval where no rule applies: 55000');
SELECT is(salesmgmt.request_approval(1, 'W', 'please'), 1::bigint, 'a request');
SELECT throws_ok($$SELECT salesmgmt.request_approval(1, 'W')$$, '55000', NULL, 'a second open request: 55000');
SELECT throws_ok($$UPDATE salesmgmt.deal SET amount = 50 WHERE deal_id = 1$$, 'SM072', NULL, 'amount locked while pending: SM072');
SELECT throws_ok($$SELECT salesmgmt.approve(1)$$, '42501', NULL, 'the requester does not approve: 42501');
SELECT throws_ok($$SELECT salesmgmt.approve(NULL)$$, '22004', NULL, 'approve(NULL): 22004');
SELECT throws_ok($$SELECT salesmgmt.approve(999)$$, '42704', NULL, 'approve(unknown): 42704');
CREATE ROLE regress_proc_tap_mgr;
UPDATE salesmgmt.rep SET db_role = 'regress_proc_tap_mgr' WHERE rep_id = 1;
GRANT salesmgmt_manager TO regress_proc_tap_mgr;
SET LOCAL ROLE regress_proc_tap_mgr;
SELECT is((salesmgmt.approve(1, 'ok')).status, 'approved', 'the manager approves');
SELECT throws_ok($$SELECT salesmgmt.reject(1)$$, '55000', NULL, 'an approved request is not decided again: 55000');
RESET ROLE;
SELECT lives_ok($$SELECT salesmgmt.move_deal(1, 'W')$$, 'the approved move goes through');
SELECT is((SELECT status FROM salesmgmt.approval_request WHERE request_id = 1), 'consumed', 'and consumes the approval');
SELECT throws_ok($$UPDATE salesmgmt.approval_decision SET comment = 'x'$$, '55000', NULL, 'decisions are append-only');

-- follow-up rules
SELECT throws_ok($$SELECT * FROM salesmgmt.run_follow_up_rules(NULL)$$, '22004', NULL, 'run_follow_up_rules(NULL): 22004');
SELECT throws_ok($$SELECT * FROM salesmgmt.run_follow_up_rules(now() + interval '1 year')$$, '22023', NULL, 'a future as-of: 22023');
SELECT throws_ok($$INSERT INTO salesmgmt.follow_up_rule (name, condition, remind_after_days) VALUES ('x', '{"nope": 1}', 3)$$,
                 '22023', NULL, 'a follow-up rule on an unknown column: 22023');
SELECT throws_ok($$INSERT INTO salesmgmt.follow_up_rule (name, remind_after_days) VALUES ('x', -3)$$,
                 '23514', NULL, 'negative days: 23514');

-- the search for quiet items (C, src/process_followup.c)
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, created_at, next_step_due)
VALUES (3, 'Big quiet', 1, 2, 1, 1, 8000, now() - interval '40 days', NULL),
       (4, 'Small quiet', 1, 2, 1, 1, 10, now() - interval '40 days', current_date - 10);
SELECT throws_ok($$SELECT * FROM salesmgmt._follow_up_quiet(NULL, now())$$, '22004', NULL, '_follow_up_quiet(NULL rule): 22004');
SELECT throws_ok($$SELECT * FROM salesmgmt._follow_up_quiet(
                     ROW(1, 'x', 'deal', '{}', 'no_activity', 3, NULL, NULL, 'manager', NULL, true, now())::salesmgmt.follow_up_rule,
                     NULL)$$, '22004', NULL, '_follow_up_quiet(rule, NULL): 22004');
SELECT throws_ok($$SELECT * FROM salesmgmt._follow_up_quiet(
                     ROW(1, 'x', 'deal', '{"nope": 1}', 'no_activity', 3, NULL, NULL, 'manager', NULL, true, now())::salesmgmt.follow_up_rule,
                     now())$$, '22023', NULL, 'a stored rule whose condition no longer compiles: 22023');
SELECT is((SELECT array_agg(q.subject_id ORDER BY q.subject_id) FROM salesmgmt._follow_up_quiet(
              ROW(1, 'x', 'deal', '{"amount": {">": 1000}}', 'no_activity', 30, NULL, NULL, 'manager', NULL, true, now())::salesmgmt.follow_up_rule,
              now()) q),
          ARRAY[3::bigint], 'quiet items: the condition is tested in C, in the rule language');
SELECT is((SELECT array_agg(q.quiet_since) FROM salesmgmt._follow_up_quiet(
              ROW(1, 'x', 'deal', '{}', 'overdue', 3, NULL, NULL, 'manager', NULL, true, now())::salesmgmt.follow_up_rule,
              now()) q),
          ARRAY[(current_date - 10)::timestamptz], 'overdue: quiet since the next step''s due date');
-- the pass over activity is made in C for a caller row-level security does
-- not apply to, and is the caller's grouped subquery otherwise: the same
-- items, quiet since the same time
INSERT INTO salesmgmt.activity (kind, account_id, deal_id, rep_id, occurred_at)
VALUES ('call', 1, 3, 2, now() - interval '35 days'), ('call', 1, 3, 2, now() + interval '1 hour');
CREATE TEMP TABLE tap_quiet AS SELECT * FROM salesmgmt._follow_up_quiet(
    ROW(1, 'x', 'deal', '{}', 'no_activity', 30, NULL, NULL, 'manager', NULL, true, now())::salesmgmt.follow_up_rule, now());
SELECT is((SELECT quiet_since FROM tap_quiet WHERE subject_id = 3), now() - interval '35 days',
          'quiet since the last activity up to the as-of time (read in C)');
CREATE ROLE regress_proc_tap_admin;
GRANT salesmgmt_admin TO regress_proc_tap_admin;
GRANT SELECT ON tap_quiet TO regress_proc_tap_admin;
SET LOCAL ROLE regress_proc_tap_admin;
SELECT results_eq($$SELECT * FROM salesmgmt._follow_up_quiet(
                      ROW(1, 'x', 'deal', '{}', 'no_activity', 30, NULL, NULL, 'manager', NULL, true, now())::salesmgmt.follow_up_rule,
                      now()) ORDER BY 1$$,
                  $$SELECT * FROM tap_quiet ORDER BY 1$$,
                  'an admin under row-level security finds the same quiet items through the grouped subquery');
RESET ROLE;
INSERT INTO salesmgmt.follow_up_rule (name, condition, remind_after_days) VALUES ('Big deals quiet', '{"amount": {">": 1000}}', 30);
SELECT salesmgmt.run_follow_up_rules();
SELECT salesmgmt.run_follow_up_rules();
SELECT is((SELECT array_agg(f.subject_id || ':' || t.title) FROM salesmgmt.follow_up_action f
             JOIN salesmgmt.sales_task t ON t.task_id = f.task_id),
          ARRAY['3:Follow up: Big quiet'], 'one reminder, for the matching quiet deal, however often the rules run');

-- the reminders written in bulk (salesmgmt._follow_up_remind, C): the run
-- above took that path (a superuser, only the extension's triggers)
SELECT is((SELECT t.status || ':' || (t.created_at IS NOT NULL) || ':' || t.required || ':' || t.due_date
             FROM salesmgmt.sales_task t JOIN salesmgmt.follow_up_action f ON f.task_id = t.task_id),
          'open:true:false:' || current_date, 'a bulk-written reminder has the columns'' defaults');
SET LOCAL enable_seqscan = off;
SELECT is((SELECT count(*)::int FROM salesmgmt.sales_task WHERE deal_id = 3 AND title LIKE 'Follow up:%'), 1,
          'and its index entries');
RESET enable_seqscan;
SELECT throws_ok($$SELECT salesmgmt._follow_up_remind(NULL, now())$$, '22004', NULL, '_follow_up_remind(NULL rule): 22004');
SELECT throws_ok($$SELECT salesmgmt._follow_up_remind(
                     ROW(1, 'x', 'deal', '{}', 'no_activity', 3, NULL, NULL, 'manager', NULL, true, now())::salesmgmt.follow_up_rule,
                     NULL)$$, '22004', NULL, '_follow_up_remind(rule, NULL): 22004');
SELECT throws_ok($$SELECT salesmgmt._follow_up_remind(
                     ROW(1, 'x', 'deals', '{}', 'no_activity', 3, NULL, NULL, 'manager', NULL, true, now())::salesmgmt.follow_up_rule,
                     now())$$, '22023', NULL, '_follow_up_remind with an unknown subject: 22023');
-- the foreign keys are checked per batch, as their triggers would
TRUNCATE pg_temp.sm_follow_up_quiet;
INSERT INTO pg_temp.sm_follow_up_quiet VALUES (4, 999, 'Small quiet', 1, now() - interval '50 days');
SELECT throws_ok($$SELECT salesmgmt._follow_up_remind(r, now()) FROM salesmgmt.follow_up_rule r WHERE r.name = 'Big deals quiet'$$,
                 '23503', NULL, 'a reminder for a rep that does not exist: 23503');
TRUNCATE pg_temp.sm_follow_up_quiet;
INSERT INTO pg_temp.sm_follow_up_quiet VALUES (999, 2, 'No such deal', 1, now() - interval '50 days');
SELECT throws_ok($$SELECT salesmgmt._follow_up_remind(r, now()) FROM salesmgmt.follow_up_rule r WHERE r.name = 'Big deals quiet'$$,
                 '23503', NULL, 'a reminder about a deal that does not exist: 23503');
SELECT is((SELECT count(*)::int FROM salesmgmt.sales_task WHERE rep_id = 999 OR deal_id = 999), 0, 'and nothing was written');
-- a trigger of the user's on sales_task: the row-by-row INSERT, which fires it
CREATE TABLE public.tap_seen_task (task_id bigint);
CREATE FUNCTION public.tap_note_task() RETURNS trigger LANGUAGE plpgsql
AS $$BEGIN INSERT INTO public.tap_seen_task VALUES (NEW.task_id); RETURN NEW; END$$;
CREATE TRIGGER tap_note_task AFTER INSERT ON salesmgmt.sales_task FOR EACH ROW EXECUTE FUNCTION public.tap_note_task();
TRUNCATE pg_temp.sm_follow_up_quiet;
SELECT is((SELECT salesmgmt._follow_up_remind(r, now()) FROM salesmgmt.follow_up_rule r WHERE r.name = 'Big deals quiet'),
          NULL, 'with a trigger of the user''s on sales_task, _follow_up_remind leaves the reminders to the INSERT');
UPDATE salesmgmt.deal SET amount = 9000 WHERE deal_id = 4;
SELECT is((SELECT items FROM salesmgmt.run_follow_up_rules() WHERE action = 'remind'), 1, 'the rules still remind');
SELECT is((SELECT array_agg(s.task_id) FROM public.tap_seen_task s),
          (SELECT array_agg(f.task_id) FROM salesmgmt.follow_up_action f WHERE f.subject_id = 4),
          'and the user''s trigger saw the reminder''s task');

SELECT * FROM finish();
ROLLBACK;

-- fill_every_table.sql: after scripts/datagen.sql, put at least one row in
-- every table of the extension that the generator leaves empty, so that
-- the dump/restore test (test/t/051_security_dump_restore.pl) covers every
-- table.  Each statement only acts on an empty table; the test fails on a
-- table still empty after this file, naming it.
\set ON_ERROR_STOP on

-- a backward move allowed by the forward policy
INSERT INTO salesmgmt.stage_transition (pipeline_id, from_stage_id, to_stage_id)
SELECT s.pipeline_id, s.stage_id, p.stage_id
  FROM salesmgmt.stage s JOIN salesmgmt.stage p
    ON p.pipeline_id = s.pipeline_id AND p.position = s.position - 1
 WHERE s.outcome = 'open' AND p.outcome = 'open'
   AND NOT EXISTS (SELECT 1 FROM salesmgmt.stage_transition)
 ORDER BY s.stage_id LIMIT 1;

-- history is written by the pipeline trigger; without it, one row by hand
INSERT INTO salesmgmt.deal_stage_history (deal_id, pipeline_id, to_stage_id, owner_rep_id, new_amount,
                                          currency, effective_probability, effective_category, changed_at)
SELECT d.deal_id, d.pipeline_id, d.stage_id, d.owner_rep_id, d.amount, d.currency, s.probability,
       s.forecast_category, d.stage_entered_at
  FROM salesmgmt.deal d JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.deal_stage_history)
 ORDER BY d.deal_id LIMIT 1;

-- The other concerns' tables, where the concern is built: through their
-- own functions where one writes the table.
SELECT to_regclass('salesmgmt.forecast_snapshot') IS NOT NULL AS have_forecast,
       to_regclass('salesmgmt.training_enrollment') IS NOT NULL
           AND to_regclass('salesmgmt.review') IS NOT NULL
           AND to_regclass('salesmgmt.csat_response') IS NOT NULL AS have_kpi,
       to_regclass('salesmgmt.scorecard_item') IS NOT NULL
           AND to_regclass('salesmgmt.recognition') IS NOT NULL AS have_scorecards,
       to_regclass('salesmgmt.webhook_delivery') IS NOT NULL AS have_webhook,
       to_regclass('salesmgmt.commission_line') IS NOT NULL AS have_commission,
       to_regclass('salesmgmt.feedback') IS NOT NULL AS have_feedback
\gset

-- the previous quarter, complete: what commissions and scorecards run over
SELECT (date_trunc('quarter', current_date) - interval '3 months')::date AS q_start,
       (date_trunc('quarter', current_date) - interval '1 day')::date AS q_end
\gset

\if :have_forecast
SELECT salesmgmt.snapshot_forecast(date_trunc('quarter', current_date)::date,
                                   (date_trunc('quarter', current_date) + interval '3 months - 1 day')::date, 'team')
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.forecast_snapshot) \g /dev/null
INSERT INTO salesmgmt.forecast_adjustment (period_start, period_end, rep_id, category, amount, currency, note)
SELECT date_trunc('quarter', current_date)::date,
       (date_trunc('quarter', current_date) + interval '3 months - 1 day')::date, 7, 'commit', 1000, 'USD',
       'late-breaking order'
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.forecast_adjustment);
\endif

\if :have_kpi
INSERT INTO salesmgmt.training_course (name, hours, required)
SELECT 'Data protection', 2, true WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.training_course);
INSERT INTO salesmgmt.training_enrollment (rep_id, course_id)
SELECT 7, min(course_id) FROM salesmgmt.training_course
HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.training_enrollment);
INSERT INTO salesmgmt.review (rep_id, reviewer_rep_id, period_start, period_end, discipline, teamwork, customer_service)
SELECT 7, 2, '2026-01-01', '2026-03-31', 4, 5, 4 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.review);
INSERT INTO salesmgmt.csat_response (account_id, deal_id, csat, nps)
SELECT d.account_id, d.deal_id, 5, 9 FROM salesmgmt.deal d
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.csat_response)
 ORDER BY d.deal_id LIMIT 1;
\endif

\if :have_scorecards
-- a KPI scheme, scored over the current quarter, and its top rep recognised
INSERT INTO salesmgmt.kpi (code, name, metric, direction, method, target, cap, unit)
SELECT 'revenue', 'Revenue', 'revenue_won', 'higher', 'achievement', 100000, 120, 'USD'
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.kpi);
INSERT INTO salesmgmt.kpi_scheme (name, grade_bands)
SELECT 'Field', '{"A": 90, "B": 75, "C": 60, "D": 40, "E": 0}'
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.kpi_scheme);
INSERT INTO salesmgmt.kpi_scheme_item (scheme_id, kpi_id, weight)
SELECT (SELECT min(scheme_id) FROM salesmgmt.kpi_scheme), (SELECT min(kpi_id) FROM salesmgmt.kpi), 100
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.kpi_scheme_item);
SELECT count(*) FROM salesmgmt.compute_scorecards((SELECT min(scheme_id) FROM salesmgmt.kpi_scheme),
                                                  date_trunc('quarter', current_date)::date,
                                                  (date_trunc('quarter', current_date) + interval '3 months - 1 day')::date)
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.scorecard) \g /dev/null
SELECT count(*) FROM salesmgmt.grant_recognitions((SELECT min(scheme_id) FROM salesmgmt.kpi_scheme),
                                                  date_trunc('quarter', current_date)::date,
                                                  (date_trunc('quarter', current_date) + interval '3 months - 1 day')::date,
                                                  1, 'award', 'Top performer')
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.recognition) \g /dev/null
\endif

\if :have_commission
-- a plan for every rep of the data set, a SPIFF and a draw, run for the
-- previous quarter (lines, and its period, written by run_commissions)
INSERT INTO salesmgmt.commission_plan (name, period)
SELECT 'Standard', 'quarter' WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.commission_plan);
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate)
SELECT min(plan_id), 0, NULL, 0.05 FROM salesmgmt.commission_plan
HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.commission_tier);
INSERT INTO salesmgmt.commission_spiff (plan_id, name, condition, amount)
SELECT min(plan_id), 'Renewals', '{"pipeline_id": 2}', 50 FROM salesmgmt.commission_plan
HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.commission_spiff);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from)
SELECT r.rep_id, (SELECT min(plan_id) FROM salesmgmt.commission_plan), '2000-01-01' FROM salesmgmt.rep r
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.commission_assignment);
INSERT INTO salesmgmt.commission_draw (rep_id, period_start, period_end, amount)
SELECT 7, :'q_start', :'q_end', 500 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.commission_draw);
SELECT count(*) FROM salesmgmt.run_commissions(:'q_start', :'q_end')
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.commission_line) \g /dev/null
\endif

\if :have_feedback
INSERT INTO salesmgmt.feedback (source, deal_id, category, sentiment, body)
SELECT 'customer', min(deal_id), 'service', 'negative', 'Nobody called back' FROM salesmgmt.deal
HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.feedback);
\endif

\if :have_webhook
-- an endpoint, and a deal change that queues an event and its delivery
-- (left pending: the restored database's worker must pick it up)
SELECT salesmgmt.create_webhook('https://hooks.example.com/salesmgmt')
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.webhook_endpoint) \g /dev/null
UPDATE salesmgmt.deal SET amount = amount + 1
 WHERE deal_id = (SELECT min(deal_id) FROM salesmgmt.deal)
   AND NOT EXISTS (SELECT 1 FROM salesmgmt.webhook_delivery);
\endif

-- a user's own event type (dumped: not builtin) and an event of it
SELECT to_regclass('salesmgmt.webhook_event_type') IS NOT NULL AS have_event_types \gset
\if :have_event_types
INSERT INTO salesmgmt.webhook_event_type (event_type, concern, description)
SELECT 'app.filled', 'app', 'Filled by test/sql/fill_every_table.sql.'
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.webhook_event_type WHERE NOT builtin);
-- an endpoint subscribed to the user's own types: the restore brings it back
-- whatever the order in which the two tables' rows are restored
SELECT salesmgmt.create_webhook('https://hooks.example.com/app', ARRAY['app.*'])
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.webhook_endpoint WHERE event_types = ARRAY['app.*']) \g /dev/null
SELECT salesmgmt.emit_event('app.filled', 'account', min(account_id), '{"filled": true}')
  FROM salesmgmt.account
HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.webhook_event WHERE event_type = 'app.filled') \g /dev/null
\endif

-- the sales process (src/process.sql)
SELECT to_regclass('salesmgmt.stage_task_template') IS NOT NULL AS have_process \gset
\if :have_process
INSERT INTO salesmgmt.stage_task_template (stage_id, title, due_days)
SELECT min(stage_id), 'Confirm the budget', 5 FROM salesmgmt.stage WHERE outcome = 'open'
HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.stage_task_template);
-- an approval rule on the next stage of an open deal, a request, a decision
INSERT INTO salesmgmt.approval_rule (name, stage_id, condition)
SELECT 'Filled: every deal', n.stage_id, '{}'
  FROM salesmgmt.deal d JOIN salesmgmt.stage s ON s.stage_id = d.stage_id AND s.outcome = 'open'
  JOIN salesmgmt.stage n ON n.pipeline_id = s.pipeline_id AND n.position > s.position
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.approval_rule)
 ORDER BY d.deal_id, n.position LIMIT 1;
SELECT salesmgmt.request_approval(d.deal_id, s.name, 'filled')
  FROM salesmgmt.approval_rule r JOIN salesmgmt.stage s ON s.stage_id = r.stage_id
  JOIN salesmgmt.deal d ON d.pipeline_id = s.pipeline_id
  JOIN salesmgmt.stage c ON c.stage_id = d.stage_id AND c.outcome = 'open' AND c.position < s.position
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.approval_request)
 ORDER BY d.deal_id LIMIT 1 \g /dev/null
-- a follow-up rule and what it did
INSERT INTO salesmgmt.follow_up_rule (name, subject, remind_after_days)
SELECT 'Filled: quiet deals', 'deal', 0 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.follow_up_rule);
SELECT count(*) FROM salesmgmt.run_follow_up_rules()
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.follow_up_action) \g /dev/null
-- a plan with an item and a review
INSERT INTO salesmgmt.sales_plan (rep_id, period_start, period_end, title)
SELECT min(rep_id), date_trunc('quarter', now())::date, (date_trunc('quarter', now()) + interval '3 months - 1 day')::date,
       'Filled plan' FROM salesmgmt.rep HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.sales_plan);
INSERT INTO salesmgmt.sales_plan_review (plan_id, notes)
SELECT min(plan_id), 'Filled review' FROM salesmgmt.sales_plan HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.sales_plan_review);
INSERT INTO salesmgmt.sales_plan_item (plan_id, kind, metric, target)
SELECT min(plan_id), 'target', 'calls', 10 FROM salesmgmt.sales_plan HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.sales_plan_item);
\endif

-- leads: a pool, a routing rule and a capacity, a routed lead (a turn, an
-- assignment in the history), a scoring rule and a learned model
SELECT to_regclass('salesmgmt.lead_model') IS NOT NULL AS have_leads \gset
\if :have_leads
INSERT INTO salesmgmt.lead_pool (name, max_claimed_per_rep, reclaim_after_days)
SELECT 'Fill pool', 10, 30 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.lead_pool);
INSERT INTO salesmgmt.lead_pool_team (pool_id, team_id)
SELECT min(p.pool_id), (SELECT min(team_id) FROM salesmgmt.team) FROM salesmgmt.lead_pool p
HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.lead_pool_team);
INSERT INTO salesmgmt.rep_capacity (rep_id, max_open_leads)
SELECT max(rep_id), 1000 FROM salesmgmt.rep HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.rep_capacity);
INSERT INTO salesmgmt.assignment_rule (entity, position, name, condition, target_kind, target_id)
SELECT 'lead', 1, 'fill: web', '{"source": "web", "extra": {"fill": true}}', 'team_round_robin', r.team_id
  FROM salesmgmt.rep r WHERE r.active AND r.team_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM salesmgmt.assignment_rule)
 ORDER BY r.rep_id DESC LIMIT 1;
INSERT INTO salesmgmt.lead (name, source, extra)
SELECT 'Fill lead', 'web', '{"fill": true}' WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.assignment_rotation);
SELECT salesmgmt.assign('lead', max(lead_id)) FROM salesmgmt.lead WHERE name = 'Fill lead'
HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.lead_history) \g /dev/null
INSERT INTO salesmgmt.lead_score_rule (name, kind, condition, points, half_life_days)
SELECT 'fill: calls', 'activity', '{"kind": "call"}', 5, 30 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.lead_score_rule);
-- (a data set from before leads existed has none to learn from: 40 closed ones)
INSERT INTO salesmgmt.lead (name, source, company_size, status, disqualify_reason, owner_rep_id,
                            converted_at, converted_account_id)
SELECT 'Fill closed ' || g, (ARRAY['web', 'cold'])[1 + g % 2], g * 10,
       CASE WHEN g % 3 = 0 THEN 'converted' ELSE 'disqualified' END,
       CASE WHEN g % 3 <> 0 THEN 'no budget' END, (SELECT min(rep_id) FROM salesmgmt.rep),
       CASE WHEN g % 3 = 0 THEN now() END,
       CASE WHEN g % 3 = 0 THEN (SELECT min(account_id) FROM salesmgmt.account) END
  FROM generate_series(1, 40) g
 WHERE (SELECT count(*) FROM salesmgmt.lead WHERE status IN ('converted', 'disqualified')) < 40;
SELECT salesmgmt.train_lead_model('1900-01-01') WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.lead_model) \g /dev/null
\endif

-- products (0.2.0): a catalogue, a default price book, a line on an open
-- deal and a sent quote of it (lines, quote lines and the year's counter)
SELECT to_regclass('salesmgmt.deal_line') IS NOT NULL AS have_products \gset
\if :have_products
INSERT INTO salesmgmt.product (sku, name, family)
SELECT 'FILL-1', 'Fill product', 'Fill' WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.product);
INSERT INTO salesmgmt.price_book (name, currency, is_default)
SELECT 'Fill USD', 'USD', true WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.price_book);
INSERT INTO salesmgmt.price_book_entry (price_book_id, product_id, unit_price)
SELECT b.price_book_id, (SELECT min(product_id) FROM salesmgmt.product), 100
  FROM salesmgmt.price_book b
 WHERE b.currency = 'USD' AND b.is_default AND NOT EXISTS (SELECT 1 FROM salesmgmt.price_book_entry);
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity, discount_pct)
SELECT max(d.deal_id), (SELECT min(product_id) FROM salesmgmt.product), 2, 10
  FROM salesmgmt.deal d WHERE d.closed_at IS NULL AND d.currency = 'USD'
HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.deal_line);
SELECT salesmgmt.send_quote(salesmgmt.create_quote(max(l.deal_id))) FROM salesmgmt.deal_line l
HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.quote) \g /dev/null
\endif

-- targeted training (0.2.0): a course's KPI, a threshold, a plan and a
-- stored effect estimate
SELECT to_regclass('salesmgmt.training_course_kpi') IS NOT NULL AS have_training \gset
\if :have_training
INSERT INTO salesmgmt.training_course_kpi (course_id, kpi_id)
SELECT min(c.course_id), min(k.kpi_id) FROM salesmgmt.training_course c, salesmgmt.kpi k
HAVING min(c.course_id) IS NOT NULL AND min(k.kpi_id) IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM salesmgmt.training_course_kpi);
INSERT INTO salesmgmt.training_need_threshold (scheme_id, min_score)
SELECT min(scheme_id), 70 FROM salesmgmt.kpi_scheme
HAVING min(scheme_id) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM salesmgmt.training_need_threshold);
INSERT INTO salesmgmt.training_plan_assignment (scheme_id, period_start, period_end, rep_id, course_id)
SELECT (SELECT min(scheme_id) FROM salesmgmt.kpi_scheme), '2026-01-01', '2026-03-31',
       (SELECT min(rep_id) FROM salesmgmt.rep), (SELECT min(course_id) FROM salesmgmt.training_course)
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.training_plan_assignment);
INSERT INTO salesmgmt.training_effect_estimate (course_id, kpi_id, window_days, reps, peers, reason)
SELECT min(course_id), min(kpi_id), 90, 0, 0, 'no rep completed the course 90 days or more ago'
  FROM salesmgmt.training_course_kpi
HAVING min(course_id) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM salesmgmt.training_effect_estimate);
\endif

-- subscriptions (0.2.0): a recurring product, a subscription of an account
-- (its first version is written by the trigger), a change, the settings and
-- a renewal (generate_renewals opens its deal)
SELECT to_regclass('salesmgmt.subscription') IS NOT NULL AS have_subscriptions \gset
\if :have_subscriptions
INSERT INTO salesmgmt.product (sku, name, family, recurring, billing_period)
SELECT 'FILL-SUB', 'Fill subscription', 'Fill', true, 'month'
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.product WHERE recurring);
INSERT INTO salesmgmt.subscription_setting (renewal_pipeline_id)
SELECT min(pipeline_id) FROM salesmgmt.pipeline
HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.subscription_setting);
INSERT INTO salesmgmt.subscription (account_id, product_id, quantity, mrr, currency, start_date, end_date)
SELECT a.account_id, (SELECT min(product_id) FROM salesmgmt.product WHERE recurring), 2, 100, 'USD',
       current_date - 30, current_date + 30
  FROM salesmgmt.account a
 WHERE a.owner_rep_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM salesmgmt.subscription)
 ORDER BY a.account_id LIMIT 1;
SELECT salesmgmt.change_subscription(min(subscription_id), current_date, 3, 150, 'fill')
  FROM salesmgmt.subscription
HAVING (SELECT count(*) FROM salesmgmt.subscription_version) < 2 \g /dev/null
SELECT salesmgmt.generate_renewals(90) WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.subscription_renewal) \g /dev/null
\endif

-- effective-dated organisation (0.2.0): the triggers wrote the versions of
-- the teams, reps, splits and quotas above; a past team of a rep loaded
-- with the back-fill, and a recorded deletion of a deal
SELECT to_regclass('salesmgmt.deal_deletion') IS NOT NULL AS have_org_history \gset
\if :have_org_history
SELECT salesmgmt.backfill_rep_team(r.rep_id, r.team_id, '2000-01-01', '2000-02-01')
  FROM salesmgmt.rep r
 WHERE r.rep_id = (SELECT min(rep_id) FROM salesmgmt.rep)
   AND NOT EXISTS (SELECT 1 FROM salesmgmt.rep_team_history h WHERE h.valid_to < 'infinity') \g /dev/null
INSERT INTO salesmgmt.deal_deletion (deal_id, owner_rep_id, deleted_at)
SELECT max(d.deal_id) + 1000000, min(d.owner_rep_id), '2000-01-01' FROM salesmgmt.deal d
HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.deal_deletion);
\endif

-- history (0.2.0): every audited insert above wrote salesmgmt.change_log;
-- one merge of a fresh duplicate account writes salesmgmt.merge_log
SELECT to_regclass('salesmgmt.merge_log') IS NOT NULL AS have_history \gset
\if :have_history
INSERT INTO salesmgmt.account (name, owner_rep_id)
SELECT 'Fill duplicate', min(rep_id) FROM salesmgmt.rep
HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.merge_log);
SELECT salesmgmt.merge_accounts(min(account_id), ARRAY[max(account_id)]) FROM salesmgmt.account
HAVING NOT EXISTS (SELECT 1 FROM salesmgmt.merge_log) \g /dev/null
\endif

-- pgTAP: subscriptions (issue 18): structure, recurring line amounts, won
-- deals becoming subscriptions, add-ons, versions (append-only, dated in
-- order), renewals once and only once, MRR movements computed by hand (the
-- C against the plain-SQL reference over generated data is
-- test/t/072_subscriptions.pl), every error code, bad inputs of every
-- function, row-level security.
BEGIN;
SET LOCAL salesmgmt.reporting_currency = 'USD';
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(108);

-- structure
SELECT has_table('salesmgmt', t, t || ' exists')
  FROM unnest(ARRAY['subscription', 'subscription_version', 'subscription_renewal', 'subscription_setting']) t;
SELECT has_view('salesmgmt', v, v || ' exists')
  FROM unnest(ARRAY['mrr_movements', 'arr_by', 'net_revenue_retention', 'renewal_pipeline', 'churn_risk',
                    'subscription_current']) v;
SELECT has_column('salesmgmt', 'product', 'default_term_months', 'product.default_term_months');
SELECT has_column('salesmgmt', 'deal_line', c, 'deal_line.' || c) FROM unnest(ARRAY['term_months', 'period_months']) c;
SELECT is((SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
            WHERE p.oid = 'salesmgmt._subscription_deal_closed'::regproc), 'c', 'the won-deal trigger is C');
SELECT is((SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
            WHERE p.oid = 'salesmgmt.mrr_movements_between'::regproc), 'c', 'mrr_movements_between is C');
SELECT is((SELECT count(*)::int FROM pg_class c
            WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind = 'r'
              AND c.relname LIKE 'subscription%' AND c.relrowsecurity), 4, 'every subscriptions table has row-level security');
SELECT is((SELECT count(*)::int FROM pg_extension e, unnest(e.extconfig) c
            WHERE e.extname = 'salesmgmt' AND c::regclass::text LIKE 'salesmgmt.subscription%'), 6,
          'every subscriptions table (and its identity sequences) is dumped with the data');
SELECT is((SELECT count(*)::int FROM pg_proc p
            WHERE p.pronamespace = 'salesmgmt'::regnamespace
              AND (p.proname LIKE '%subscription%' OR p.proname IN ('generate_renewals', 'mrr_movements_between', 'account_mrr'))
              AND obj_description(p.oid, 'pg_proc') IS NULL), 0, 'every subscriptions function has a comment');
SELECT is((SELECT count(*)::int FROM pg_proc p, aclexplode(p.proacl) a
            WHERE p.pronamespace = 'salesmgmt'::regnamespace AND a.grantee = 0
              AND (p.proname LIKE '%subscription%' OR p.proname IN ('generate_renewals', 'mrr_movements_between', 'account_mrr'))), 0,
          'no subscriptions function is executable by PUBLIC');
SELECT is((SELECT count(*)::int FROM salesmgmt.webhook_event_type WHERE event_type LIKE 'subscription.%'), 4,
          'four subscription event types are registered');

-- a small world
INSERT INTO salesmgmt.team (name) VALUES ('Sales');
INSERT INTO salesmgmt.rep (name, email, team_id) VALUES ('Ada', 'ada@example.com', 1), ('Bo', 'bo@example.com', 1);
INSERT INTO salesmgmt.account (name, owner_rep_id, segment) VALUES
    ('Acme', 1, 'SMB'), ('Globex', 2, 'Enterprise'), ('Initech', 1, 'SMB'), ('Umbrella', 1, 'SMB'), ('Hooli', NULL, 'SMB');
SELECT salesmgmt.create_pipeline('New', '[{"name": "Qualify", "probability": 0.2}, {"name": "Won", "outcome": "won"}, {"name": "Lost", "outcome": "lost"}]');
SELECT salesmgmt.create_pipeline('Renewals', '[{"name": "Due", "probability": 0.8}, {"name": "Renewed", "outcome": "won"}, {"name": "Churned", "outcome": "lost"}]');
INSERT INTO salesmgmt.product (sku, name, family, recurring, billing_period, default_term_months) VALUES
    ('SEAT', 'CRM seat', 'CRM', true, 'month', 12), ('SUP', 'Support', 'Services', true, 'year', 24);
INSERT INTO salesmgmt.product (sku, name, family) VALUES ('TRN', 'Training day', 'Services');
INSERT INTO salesmgmt.price_book (name, currency, is_default) VALUES ('List USD', 'USD', true);
INSERT INTO salesmgmt.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 50), (1, 2, 1200), (1, 3, 800);
INSERT INTO salesmgmt.webhook_endpoint (url, event_types) VALUES ('https://hooks.example.com/in', '{subscription.*}');

-- recurring line amounts: the value over the term
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id) VALUES
    ('Acme CRM', 1, 1, 1, 1), ('Acme more seats', 1, 1, 1, 1), ('Globex', 2, 2, 1, 1), ('Acme lost', 1, 1, 1, 1);
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (1, 1, 10), (1, 3, 1), (1, 2, 1);
SELECT results_eq('SELECT term_months, period_months, line_amount FROM salesmgmt.deal_line WHERE deal_id = 1 ORDER BY line_id',
                  $$VALUES (12, 1, 6000.00::numeric(18,2)), (NULL, NULL, 800.00), (24, 12, 2400.00)$$,
                  'recurring lines take the product''s term: 10 seats * 50 a month * 12; support 1200 a year * 2 years; one-off unchanged');
SELECT is((SELECT amount FROM salesmgmt.deal WHERE deal_id = 1), 9200.00, 'the deal amount is the sum over the terms');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity, term_months) VALUES (1, 3, 1, 12)',
                 'SM090', NULL, 'a term on a one-off product: SM090');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity, term_months) VALUES (1, 1, 1, 0)',
                 '23514', NULL, 'a term of 0 months: check violation');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity, term_months) VALUES (1, 1, 1, 121)',
                 '23514', NULL, 'a term over 120 months: check violation');
UPDATE salesmgmt.deal_line SET term_months = 6 WHERE deal_id = 1 AND product_id = 1;
SELECT is((SELECT line_amount FROM salesmgmt.deal_line WHERE deal_id = 1 AND product_id = 1), 3000.00, 'a shorter term, a smaller amount');
UPDATE salesmgmt.deal_line SET term_months = NULL WHERE deal_id = 1 AND product_id = 1;
SELECT is((SELECT term_months FROM salesmgmt.deal_line WHERE deal_id = 1 AND product_id = 1), 12, 'a term set back to null takes the default again');
SELECT throws_ok('UPDATE salesmgmt.deal_line SET term_months = 3 WHERE deal_id = 1 AND product_id = 3',
                 'SM090', NULL, 'a term on an existing one-off line: SM090');
SELECT is((SELECT amount FROM salesmgmt.deal WHERE deal_id = 1), 9200.00, 'the refused changes left the deal as it was');

-- won deals become subscriptions, in the same transaction
SELECT is((SELECT count(*)::int FROM salesmgmt.subscription), 0, 'no subscription before the deal is won');
SELECT lives_ok($$SELECT salesmgmt.move_deal(1, 'Won')$$, 'the deal is won');
SELECT results_eq('SELECT product_id, quantity, mrr, term_months, start_date, end_date, status, deal_id FROM salesmgmt.subscription ORDER BY subscription_id',
                  $$VALUES (1::bigint, 10.0000::numeric(18,4), 500.0000::numeric(18,4), 12, current_date, (current_date + interval '12 months')::date - 1, 'active', 1::bigint),
                           (2, 1.0000, 100.0000, 24, current_date, (current_date + interval '24 months')::date - 1, 'active', 1)$$,
                  'one subscription per recurring line: MRR = line_amount / term_months, from the close date for the term');
SELECT results_eq('SELECT subscription_id, version, kind, valid_from, mrr FROM salesmgmt.subscription_version ORDER BY 1, 2',
                  $$VALUES (1::bigint, 1, 'new', current_date, 500.0000::numeric(18,4)), (2, 1, 'new', current_date, 100.0000)$$,
                  'each has its first version, kind new');
SELECT is((SELECT count(*)::int FROM salesmgmt.webhook_event WHERE event_type = 'subscription.created'), 2,
          'subscription.created emitted for each');
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (2, 1, 5), (4, 1, 7);
SELECT lives_ok($$SELECT salesmgmt.move_deal(2, 'Won')$$, 'an add-on deal on the same account is won');
SELECT results_eq('SELECT version, kind, quantity, mrr, deal_id FROM salesmgmt.subscription_version WHERE subscription_id = 1 ORDER BY version',
                  $$VALUES (1, 'new', 10.0000::numeric(18,4), 500.0000::numeric(18,4), 1::bigint), (2, 'expansion', 15.0000, 750.0000, 2)$$,
                  'the add-on changes the existing subscription from the close date: a new version');
SELECT results_eq('SELECT quantity, mrr FROM salesmgmt.subscription WHERE subscription_id = 1',
                  $$VALUES (15.0000::numeric(18,4), 750.0000::numeric(18,4))$$, 'the subscription row is the latest version');
SELECT is((SELECT count(*)::int FROM salesmgmt.webhook_event WHERE event_type = 'subscription.changed'), 1, 'subscription.changed emitted');
SELECT lives_ok($$SELECT salesmgmt.move_deal(4, 'Lost')$$, 'a deal is lost');
SELECT is((SELECT count(*)::int FROM salesmgmt.subscription), 2, 'a lost deal makes no subscription');

-- versions: append-only, dated in order, the subscription only through them
SELECT throws_ok('UPDATE salesmgmt.subscription_version SET mrr = 1', 'SM094', NULL, 'versions cannot be updated: SM094');
SELECT throws_ok('DELETE FROM salesmgmt.subscription_version', 'SM094', NULL, 'versions cannot be deleted: SM094');
SELECT throws_ok('UPDATE salesmgmt.subscription SET mrr = 1 WHERE subscription_id = 1', 'SM094', NULL,
                 'the MRR of a subscription changes only through a version: SM094');
SELECT lives_ok('UPDATE salesmgmt.subscription SET auto_renew = true WHERE subscription_id = 1', 'auto_renew changes directly');
SELECT throws_ok($$INSERT INTO salesmgmt.subscription_version (subscription_id, kind, quantity, mrr, status) VALUES (1, 'new', 1, 1, 'active')$$,
                 'SM091', NULL, 'a second version of kind new: SM091');
SELECT throws_ok($$INSERT INTO salesmgmt.subscription_version (subscription_id, kind, quantity, mrr, status) VALUES (1, 'reactivation', 1, 1, 'active')$$,
                 'SM091', NULL, 'reactivating an active subscription: SM091');
SELECT throws_ok($$INSERT INTO salesmgmt.subscription_version (subscription_id, quantity, mrr, status) VALUES (99, 1, 1, 'active')$$,
                 '23503', NULL, 'a version of an unknown subscription: foreign key violation');

-- change_subscription and cancel_subscription, with their bad inputs
SELECT is((salesmgmt.change_subscription(1, current_date + 10, 3, 150, 'downgrade')).kind, 'contraction',
          'a lower MRR is a contraction');
SELECT is((salesmgmt.change_subscription(1, current_date + 10, 3, 150)).kind, 'change', 'the same MRR is a change');
SELECT throws_ok('SELECT salesmgmt.change_subscription(1, current_date, 3, 150)', 'SM092', NULL,
                 'a change dated before the latest version: SM092');
SELECT throws_ok('SELECT salesmgmt.change_subscription(NULL, current_date, 1, 1)', '22004', NULL, 'change_subscription(null id): 22004');
SELECT throws_ok('SELECT salesmgmt.change_subscription(1, NULL, 1, 1)', '22004', NULL, 'change_subscription(null date): 22004');
SELECT throws_ok('SELECT salesmgmt.change_subscription(1, current_date + 20, NULL, 1)', '22004', NULL, 'change_subscription(null quantity): 22004');
SELECT throws_ok('SELECT salesmgmt.change_subscription(1, current_date + 20, 1, NULL)', '22004', NULL, 'change_subscription(null mrr): 22004');
SELECT throws_ok('SELECT salesmgmt.change_subscription(1, current_date + 20, 0, 1)', '22023', NULL, 'change_subscription(quantity 0): 22023');
SELECT throws_ok('SELECT salesmgmt.change_subscription(1, current_date + 20, 1, -1)', '22023', NULL, 'change_subscription(negative mrr): 22023');
SELECT throws_ok('SELECT salesmgmt.change_subscription(99, current_date + 20, 1, 1)', '42704', NULL, 'change_subscription(unknown id): 42704');
SELECT throws_ok($$SELECT salesmgmt.change_subscription('x', current_date, 1, 1)$$, '22P02', NULL, 'change_subscription(text id): 22P02');
SELECT is((salesmgmt.cancel_subscription(2, current_date + 30, 'too expensive')).status, 'cancelled', 'a subscription is cancelled from a date');
SELECT results_eq('SELECT status, cancelled_on, cancel_reason FROM salesmgmt.subscription WHERE subscription_id = 2',
                  $$VALUES ('cancelled', current_date + 30, 'too expensive')$$, 'the subscription row says so');
SELECT is((SELECT count(*)::int FROM salesmgmt.webhook_event WHERE event_type = 'subscription.cancelled'), 1, 'subscription.cancelled emitted');
SELECT throws_ok('SELECT salesmgmt.cancel_subscription(2, current_date + 40)', 'SM091', NULL, 'cancelling a cancelled subscription: SM091');
SELECT throws_ok('SELECT salesmgmt.change_subscription(2, current_date + 40, 1, 1)', 'SM091', NULL, 'changing a cancelled subscription: SM091');
SELECT throws_ok('SELECT salesmgmt.cancel_subscription(NULL)', '22004', NULL, 'cancel_subscription(null id): 22004');
SELECT throws_ok('SELECT salesmgmt.cancel_subscription(1, NULL)', '22004', NULL, 'cancel_subscription(null date): 22004');
SELECT throws_ok('SELECT salesmgmt.cancel_subscription(99)', '42704', NULL, 'cancel_subscription(unknown id): 42704');
SELECT throws_ok('SELECT salesmgmt.cancel_subscription(1, current_date)', 'SM092', NULL, 'a cancellation before the latest version: SM092');

-- renewals: once and only once, winning extends, losing churns
SELECT throws_ok('SELECT * FROM salesmgmt.generate_renewals(NULL)', '22004', NULL, 'generate_renewals(null): 22004');
SELECT throws_ok('SELECT * FROM salesmgmt.generate_renewals(-1)', '22023', NULL, 'generate_renewals(-1): 22023');
SELECT throws_ok('SELECT * FROM salesmgmt.generate_renewals(100000)', '22023', NULL, 'generate_renewals(100000): 22023');
-- by hand: Hooli (no owner, no deal), Initech (a term ended in the past), Umbrella (auto-renew, ended)
INSERT INTO salesmgmt.subscription (account_id, product_id, quantity, mrr, currency, start_date, end_date)
VALUES (5, 1, 1, 10, 'USD', current_date - 10, current_date + 20);
SELECT throws_ok('SELECT * FROM salesmgmt.generate_renewals(90)', 'SM093', NULL,
                 'a subscription due without a renewal pipeline: SM093');
INSERT INTO salesmgmt.subscription_setting (renewal_pipeline_id) VALUES (2);
SELECT throws_ok('SELECT * FROM salesmgmt.generate_renewals(90)', 'SM095', NULL,
                 'a renewal deal without an owner: SM095');
SELECT lives_ok($$SELECT salesmgmt.cancel_subscription(3, current_date, 'gone')$$, 'the ownerless one is cancelled');
INSERT INTO salesmgmt.subscription (account_id, product_id, quantity, mrr, currency, term_months, start_date, end_date, auto_renew)
VALUES (3, 1, 2, 100, 'USD', 12, current_date - 400, current_date - 36, false),
       (4, 1, 2, 200, 'USD', 12, current_date - 400, current_date - 36, true);
SELECT results_eq('SELECT * FROM salesmgmt.generate_renewals(400)', 'VALUES (2, 2, 1, 1)',
                  'one run: renewal deals for Acme and Umbrella, Initech''s ended term expired, Umbrella''s renewed');
SELECT results_eq('SELECT * FROM salesmgmt.generate_renewals(400)', 'VALUES (0, 0, 0, 0)', 'idempotent: the second run does nothing');
SELECT results_eq('SELECT s.status, v.kind, v.valid_from FROM salesmgmt.subscription s JOIN salesmgmt.subscription_version v USING (subscription_id) WHERE s.subscription_id = 4 AND v.version = 2',
                  $$VALUES ('expired', 'expiry', current_date - 35)$$, 'the ended term expired the day after its end');
SELECT is((SELECT end_date FROM salesmgmt.subscription WHERE subscription_id = 5),
          ((current_date - 35) + interval '12 months')::date - 1, 'the auto-renewing one got a new term');
SELECT results_eq($$SELECT d.owner_rep_id, d.pipeline_id, d.amount, d.expected_close_date, s.outcome
                      FROM salesmgmt.deal d JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
                     WHERE d.deal_id = (SELECT deal_id FROM salesmgmt.subscription_renewal WHERE subscription_id = 1)$$,
                  $$VALUES (1::bigint, 2::bigint, 1800.00::numeric(18,2), (current_date + interval '12 months')::date - 1, 'open')$$,
                  'the renewal deal: the account owner''s, in the renewal pipeline''s first stage, amount = ARR due (12 * 150)');
SELECT is((SELECT count(*)::int FROM salesmgmt.webhook_event WHERE event_type = 'subscription.renewal_due'), 2,
          'subscription.renewal_due emitted per subscription');
SELECT lives_ok($$SELECT salesmgmt.move_deal((SELECT deal_id FROM salesmgmt.subscription_renewal WHERE subscription_id = 1), 'Renewed')$$,
                'the renewal is won');
SELECT results_eq('SELECT s.end_date, r.outcome, v.kind FROM salesmgmt.subscription s JOIN salesmgmt.subscription_renewal r USING (subscription_id) JOIN salesmgmt.subscription_version v ON v.subscription_id = s.subscription_id AND v.version = 5 WHERE s.subscription_id = 1',
                  $$VALUES ((current_date + interval '24 months')::date - 1, 'won', 'renewal')$$,
                  'winning extends the subscription by its term');
SELECT lives_ok($$SELECT salesmgmt.move_deal((SELECT deal_id FROM salesmgmt.subscription_renewal WHERE subscription_id = 5), 'Churned')$$,
                'the other renewal is lost');
SELECT is((SELECT outcome FROM salesmgmt.subscription_renewal WHERE subscription_id = 5), 'lost', 'its renewal is marked lost');

-- MRR movements computed by hand: Initech (USD) from 2025-01-10, EUR from 2025-02-01
INSERT INTO salesmgmt.currency_rate (currency, quote_currency, valid_from, rate) VALUES ('EUR', 'USD', '2025-01-01', 1.1);
INSERT INTO salesmgmt.subscription (account_id, product_id, quantity, mrr, currency, start_date, end_date)
VALUES (3, 1, 2, 100, 'USD', '2025-01-10', NULL), (3, 2, 1, 100, 'EUR', '2025-02-01', '2025-02-27');
INSERT INTO salesmgmt.subscription_version (subscription_id, valid_from, quantity, mrr, status) VALUES (6, '2025-03-05', 3, 150, 'active');
INSERT INTO salesmgmt.subscription_version (subscription_id, valid_from, kind, quantity, mrr, status) VALUES (6, '2025-05-01', 'cancellation', 3, 150, 'cancelled');
INSERT INTO salesmgmt.subscription_version (subscription_id, valid_from, kind, quantity, mrr, status) VALUES (6, '2025-08-20', 'reactivation', 2, 80, 'active');
SELECT results_eq($$SELECT month, starting_mrr, new_mrr, expansion_mrr, contraction_mrr, churned_mrr, reactivation_mrr, ending_mrr, accounts
                      FROM salesmgmt.mrr_movements_between('2025-01-01', '2025-09-30')$$,
                  $$VALUES ('2025-01-01'::date, 0.00, 100.00, 0.00, 0.00, 0.00, 0.00, 100.00, 1::bigint),
                           ('2025-02-01', 100.00, 0.00, 0.00, 0.00, 0.00, 0.00, 100.00, 1),
                           ('2025-03-01', 100.00, 0.00, 50.00, 0.00, 0.00, 0.00, 150.00, 1),
                           ('2025-04-01', 150.00, 0.00, 0.00, 0.00, 0.00, 0.00, 150.00, 1),
                           ('2025-05-01', 150.00, 0.00, 0.00, 0.00, -150.00, 0.00, 0.00, 0),
                           ('2025-06-01', 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0),
                           ('2025-07-01', 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0),
                           ('2025-08-01', 0.00, 0.00, 0.00, 0.00, 0.00, 80.00, 80.00, 1),
                           ('2025-09-01', 80.00, 0.00, 0.00, 0.00, 0.00, 0.00, 80.00, 1)$$,
                  'movements by hand: new, expansion, churn, reactivation (the EUR term ended before its first month end)');
INSERT INTO salesmgmt.subscription (account_id, product_id, quantity, mrr, currency, start_date, end_date)
VALUES (4, 2, 1, 100, 'EUR', '2025-02-01', NULL);
SELECT results_eq($$SELECT new_mrr, ending_mrr FROM salesmgmt.mrr_movements_between('2025-02-01', '2025-02-01')$$,
                  $$VALUES (110.00, 210.00)$$, 'a EUR subscription counts at the rate of its first day: 100 EUR = 110.00 USD');
SELECT is_empty($$SELECT month FROM salesmgmt.mrr_movements
                   WHERE starting_mrr + new_mrr + expansion_mrr + contraction_mrr + churned_mrr + reactivation_mrr <> ending_mrr$$,
                'starting + new + expansion + contraction + churned + reactivation = ending, every month');
SELECT is_empty($$SELECT month FROM salesmgmt.mrr_movements m
                   WHERE m.starting_mrr <> coalesce((SELECT p.ending_mrr FROM salesmgmt.mrr_movements p
                                                      WHERE p.month = (m.month - interval '1 month')::date), 0)$$,
                'each month starts where the month before ended');
SELECT results_eq($$SELECT month, mrr FROM salesmgmt.account_mrr('2025-01-01', '2025-09-30') WHERE account_id = 3$$,
                  $$VALUES ('2025-01-01'::date, 100.00), ('2025-02-01', 100.00), ('2025-03-01', 150.00), ('2025-04-01', 150.00),
                           ('2025-05-01', 0.00), ('2025-08-01', 80.00), ('2025-09-01', 80.00)$$,
                  'account_mrr: the month ends where the account or the month before had MRR');
SELECT throws_ok($$SELECT * FROM salesmgmt.mrr_movements_between('2025-02-01', '2025-01-01')$$, '22023', NULL,
                 'mrr_movements_between with p_to before p_from: 22023');
SELECT throws_ok($$SELECT * FROM salesmgmt.mrr_movements_between('infinity', NULL)$$, '22023', NULL,
                 'mrr_movements_between(infinity): 22023');
SELECT throws_ok($$SELECT * FROM salesmgmt.mrr_movements_between('0001-01-01', NULL)$$, '22023', NULL,
                 'mrr_movements_between over more than 100 years: 22023');
SELECT throws_ok($$SELECT * FROM salesmgmt.mrr_movements_between('x', NULL)$$, '22007', NULL, 'mrr_movements_between(''x''): 22007');
SELECT throws_ok($$SELECT * FROM salesmgmt.account_mrr('2025-02-01', '2025-01-01')$$, '22023', NULL,
                 'account_mrr with p_to before p_from: 22023');
SELECT throws_ok($$SELECT * FROM salesmgmt.account_mrr('-infinity', NULL)$$, '22023', NULL, 'account_mrr(-infinity): 22023');
INSERT INTO salesmgmt.subscription (account_id, product_id, quantity, mrr, currency, start_date)
VALUES (4, 2, 1, 100, 'CNY', '2025-02-01');
SELECT throws_ok('SELECT * FROM salesmgmt.mrr_movements_between()', '22023', NULL, 'a currency without a rate: 22023');

-- the other views
SELECT is((SELECT arr FROM salesmgmt.arr_by WHERE dimension = 'rep' AND value = 'Bo'), NULL::numeric,
          'arr_by: Bo''s account has no subscription');
SELECT ok((SELECT count(*) FROM salesmgmt.churn_risk) > 0, 'churn_risk lists the active subscriptions');
SELECT is((SELECT renewal_points FROM salesmgmt.churn_risk WHERE subscription_id = 5), 0::numeric,
          'a term a year away gives no renewal points');
SELECT is((SELECT sum(lost) FROM salesmgmt.renewal_pipeline)::int, 1, 'renewal_pipeline counts the lost renewal');

-- row-level security: subscriptions follow their account's owner
CREATE ROLE subs_tap_bo IN ROLE salesmgmt_rep;
UPDATE salesmgmt.rep SET db_role = 'subs_tap_bo' WHERE rep_id = 2;
SELECT lives_ok($$SELECT salesmgmt.move_deal(3, 'Won')$$, 'nothing to win for Globex: no lines');
INSERT INTO salesmgmt.subscription (account_id, product_id, quantity, mrr, currency) VALUES (2, 1, 1, 10, 'USD');
SET ROLE subs_tap_bo;
SELECT is((SELECT array_agg(DISTINCT account_id)::text FROM salesmgmt.subscription), '{2}', 'Bo sees the subscriptions of his account only');
SELECT is((SELECT array_agg(DISTINCT account_id)::text FROM salesmgmt.subscription_version), '{2}', 'and their versions only');
SELECT lives_ok('SELECT salesmgmt.change_subscription(10, current_date, 2, 20)', 'Bo changes his account''s subscription');
SELECT throws_ok('SELECT salesmgmt.change_subscription(1, current_date + 100, 2, 20)', '42704', NULL,
                 'Ada''s subscription does not exist for Bo');
SELECT throws_ok('UPDATE salesmgmt.subscription SET mrr = 1', '42501', NULL, 'Bo cannot write the MRR directly');
SELECT throws_ok('SELECT * FROM salesmgmt.generate_renewals()', '42501', NULL, 'only admins generate renewals');
RESET ROLE;

-- one UPDATE winning two deals of an account (as datagen closes deals in
-- bulk): the trigger's kept plans serve every row, the first deal creates
-- the subscription, the second adds to it; version 1 leaves the row as the
-- INSERT wrote it (no UPDATE in the change log), the add-on updates it
INSERT INTO salesmgmt.account (name, owner_rep_id, segment) VALUES ('Wayne', 1, 'SMB');
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id)
SELECT n, (SELECT account_id FROM salesmgmt.account WHERE name = 'Wayne'), 1, 1,
       (SELECT stage_id FROM salesmgmt.stage WHERE pipeline_id = 1 AND name = 'Qualify')
  FROM unnest(ARRAY['Wayne A', 'Wayne B']) n;
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity)
SELECT deal_id, 1, 5 FROM salesmgmt.deal WHERE name IN ('Wayne A', 'Wayne B');
UPDATE salesmgmt.deal SET stage_id = (SELECT stage_id FROM salesmgmt.stage WHERE pipeline_id = 1 AND name = 'Won')
 WHERE name IN ('Wayne A', 'Wayne B');
SELECT results_eq($$SELECT v.kind, v.quantity, s.quantity FROM salesmgmt.subscription_version v
                      JOIN salesmgmt.subscription s USING (subscription_id)
                     WHERE s.account_id = (SELECT account_id FROM salesmgmt.account WHERE name = 'Wayne')
                     ORDER BY v.version$$,
                  $$VALUES ('new', 5.0000::numeric(18,4), 10.0000::numeric(18,4)), ('expansion', 10.0000, 10.0000)$$,
                  'one UPDATE winning two deals: one subscription, created by the first and added to by the second');
SELECT results_eq($$SELECT c.operation, count(*)::int FROM salesmgmt.change_log c
                     WHERE c.table_name LIKE '%subscription'
                       AND c.row_id = (SELECT subscription_id FROM salesmgmt.subscription
                                        WHERE account_id = (SELECT account_id FROM salesmgmt.account WHERE name = 'Wayne'))
                     GROUP BY 1 ORDER BY 1$$,
                  $$VALUES ('INSERT', 1), ('UPDATE', 1)$$,
                  'its change log: the creation and the add-on''s update, none for version 1');

SELECT * FROM finish();
ROLLBACK;

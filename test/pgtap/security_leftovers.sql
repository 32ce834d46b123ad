-- pgTAP: holes closed after the 0.2.0 concerns landed, each reproduced as
-- the role named and shown closed: quotes written only by the quote
-- functions, times the server sets, the references of feedback, and a
-- deal created right in a stage that needs an approval.
--
-- The world is test/sql/security_world.sql: r4 (Leaf, managed by m3), r5,
-- and r8 in another tree holding a share of r4's deal 42.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(58);

\ir ../sql/security_world.sql
-- a second account of r4, for references that disagree
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) VALUES (9, 'Second of r4', 4);
DO $$
BEGIN
    PERFORM setval(pg_get_serial_sequence('salesmgmt.' || t, c), 100)
       FROM (VALUES ('account', 'account_id'), ('contact', 'contact_id'), ('deal', 'deal_id'),
                    ('activity', 'activity_id'), ('sales_task', 'task_id')) AS s(t, c);
END
$$;
INSERT INTO salesmgmt.product (product_id, sku, name, family) VALUES (1, 'SEAT', 'CRM seat', 'CRM');
INSERT INTO salesmgmt.price_book (price_book_id, name, currency, is_default) VALUES (1, 'List USD', 'USD', true);
INSERT INTO salesmgmt.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 100);
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (41, 1, 2), (51, 1, 3);

-- ------------------------------------------------------------------------
-- 1. Quotes: only through the quote functions
-- ------------------------------------------------------------------------

SELECT is_empty($$
    SELECT c.relname || ' ' || priv || ' by ' || r
      FROM unnest(ARRAY['quote', 'quote_line', 'quote_counter']) AS c(relname)
     CROSS JOIN unnest(ARRAY['salesmgmt_rep', 'salesmgmt_manager']) AS r
     CROSS JOIN unnest(ARRAY['INSERT', 'DELETE']) AS priv
     WHERE has_table_privilege(r, 'salesmgmt.' || c.relname, priv)
        OR has_any_column_privilege(r, 'salesmgmt.' || c.relname, 'INSERT')$$,
    'reps and managers insert no quote, quote line or counter row');
SELECT ok(NOT has_function_privilege('salesmgmt_rep', 'salesmgmt._next_quote_number(integer)', 'EXECUTE')
          AND NOT has_function_privilege('salesmgmt_manager', 'salesmgmt._next_quote_number(integer)', 'EXECUTE'),
          'nor take a quote number outside a quote (a gap)');
SELECT is((SELECT prosecdef FROM pg_proc WHERE oid = 'salesmgmt._quote_insert(bigint, integer, name)'::regprocedure),
          true, '_quote_insert runs as the owner');
SELECT ok((SELECT proconfig @> ARRAY['search_path=pg_catalog, pg_temp'] FROM pg_proc
            WHERE oid = 'salesmgmt._quote_insert(bigint, integer, name)'::regprocedure),
          'with a pinned search_path');

SET ROLE sec_r4;
SELECT throws_ok($$INSERT INTO salesmgmt.quote (deal_id, version, number, currency, valid_until, subtotal, discount_amount, total)
                   VALUES (41, 1, 'Q-2026-000001', 'USD', '2099-01-01', 200, 0, 200)$$,
                 '42501', 'permission denied for table quote', 'r4 cannot insert a quote with a number it chose');
SELECT throws_ok($$INSERT INTO salesmgmt.quote_line (deal_id, quote_id, line_no, product_id, sku, product_name,
                                                     quantity, unit_price, discount_pct, line_amount)
                   VALUES (41, 1, 1, 1, 'SEAT', 'x', 1, 1, 0, 1)$$,
                 '42501', 'permission denied for table quote_line', 'nor a quote line');
SELECT throws_ok($$SELECT salesmgmt._next_quote_number(2026)$$, '42501', NULL, 'nor take the next number');
SELECT lives_ok($$SELECT salesmgmt.create_quote(41)$$, 'r4 quotes its own deal with create_quote');
SELECT is((SELECT concat_ws(' ', number ~ '^Q-[0-9]{4}-000001$', total, created_by, status)
             FROM salesmgmt.quote WHERE deal_id = 41),
          't 200.00 sec_r4 draft', 'the first number of the year, the deal''s total, made by r4, a draft');
SELECT is((SELECT count(*)::int FROM salesmgmt.quote_line WHERE deal_id = 41), 1, 'with a snapshot of its line');
SELECT throws_ok($$SELECT salesmgmt.create_quote(51)$$, '42704', 'deal 51 does not exist',
                 'r4 cannot quote r5''s deal (it does not exist for r4)');
SELECT throws_ok($$SELECT salesmgmt._quote_insert(51, 30)$$, '42704', 'deal 51 does not exist',
                 'nor through the internal function, which checks the caller''s view');
SELECT throws_ok($$SELECT salesmgmt._quote_insert(41, 30, 'no_such_role')$$, '42704', NULL,
                 'nor for a role that does not exist (a role the session may not act as gets 42501)');
SELECT throws_ok($$SELECT salesmgmt._quote_insert(41, NULL)$$, '22004', NULL, 'a null validity is refused');
SELECT throws_ok($$SELECT salesmgmt._quote_insert(41, -1)$$, '22023', NULL, 'a negative validity is refused');
SELECT throws_ok($$SELECT salesmgmt._quote_insert(NULL, 30)$$, '22004', NULL, 'a null deal is refused');
SELECT throws_ok($$SELECT salesmgmt._quote_insert(999999, 30)$$, '42704', NULL, 'an unknown deal is refused');
SELECT lives_ok($$SELECT salesmgmt.send_quote((SELECT quote_id FROM salesmgmt.quote WHERE deal_id = 41))$$,
                'r4 sends its quote');
SELECT throws_ok($$UPDATE salesmgmt.quote SET total = 1 WHERE deal_id = 41$$, '42501', NULL,
                 'but cannot change its total');
RESET ROLE;
SET ROLE sec_m3;
SELECT lives_ok($$SELECT salesmgmt.create_quote(41)$$, 'r4''s manager quotes r4''s deal');
SELECT throws_ok($$SELECT salesmgmt.create_quote(51)$$, '42704', NULL, 'but not r5''s (outside its tree)');
RESET ROLE;
SELECT is((SELECT array_agg(version ORDER BY version) FROM salesmgmt.quote WHERE deal_id = 41), ARRAY[1, 2],
          'versions 1 and 2 of deal 41, no other quote');
SELECT is((SELECT last_number FROM salesmgmt.quote_counter), 2, 'two numbers given, no gap');

-- ------------------------------------------------------------------------
-- 2. Times the server sets
-- ------------------------------------------------------------------------

SELECT is_empty($$
    SELECT c.relname || '.' || a.attname || ' ' || priv || ' by ' || r
      FROM pg_class c
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     CROSS JOIN unnest(ARRAY['salesmgmt_rep', 'salesmgmt_manager']) AS r
     CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE']) AS priv
     WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind IN ('r', 'p')
       AND a.attname IN ('created_at', 'updated_at', 'stage_entered_at', 'closed_at', 'completed_at',
                         'assigned_at', 'converted_at', 'last_activity_at', 'sent_at', 'decided_at',
                         'triaged_at', 'resolved_at', 'enrolled_at', 'requested_at', 'granted_at')
       -- a manager records when a rep completed a course taken elsewhere
       AND (c.relname, a.attname) <> ('training_enrollment', 'completed_at')
       AND has_column_privilege(r, c.oid, a.attnum, priv)$$,
    'no time the server sets is writable by reps or managers');

SET ROLE sec_r4;
SELECT throws_ok($$INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, created_at)
                   VALUES ('Backdated', 4, 4, 1, 1, '2025-01-01')$$,
                 '42501', NULL, 'r4 cannot backdate a new deal');
SELECT throws_ok($$UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2026-01-02' WHERE deal_id = 41$$,
                 '42501', NULL, 'nor date a win into an earlier period');
SELECT throws_ok($$UPDATE salesmgmt.deal SET closed_at = '2026-01-02' WHERE deal_id = 42$$,
                 '42501', NULL, 'nor set closed_at');
SELECT throws_ok($$INSERT INTO salesmgmt.account (name, owner_rep_id, created_at) VALUES ('New', 4, '2025-01-01')$$,
                 '42501', NULL, 'nor backdate a new account');
SELECT throws_ok($$UPDATE salesmgmt.contact SET created_at = '2025-01-01' WHERE account_id = 4$$,
                 '42501', NULL, 'nor a contact');
SELECT throws_ok($$INSERT INTO salesmgmt.sales_task (rep_id, title, status, completed_at) VALUES (4, 'x', 'done', '2026-01-02')$$,
                 '42501', NULL, 'nor date a task done');
SELECT throws_ok($$INSERT INTO salesmgmt.lead (name, owner_rep_id, created_at) VALUES ('L', 4, '2025-01-01')$$,
                 '42501', NULL, 'nor backdate a lead');
SELECT lives_ok($$UPDATE salesmgmt.sales_task SET status = 'done' WHERE rep_id = 4$$,
                'r4 marks its task done without naming a time');
SELECT is((SELECT completed_at FROM salesmgmt.sales_task WHERE rep_id = 4), now(), 'the server sets completed_at');
SELECT lives_ok($$UPDATE salesmgmt.sales_task SET status = 'open' WHERE rep_id = 4$$, 'and may reopen it');
SELECT is((SELECT completed_at FROM salesmgmt.sales_task WHERE rep_id = 4), NULL, 'which clears completed_at');
SELECT lives_ok($$INSERT INTO salesmgmt.sales_task (rep_id, title, status) VALUES (4, 'Done already', 'done')$$,
                'a task filed as done');
SELECT is((SELECT completed_at FROM salesmgmt.sales_task WHERE title = 'Done already'), now(), 'is completed now');
RESET ROLE;
UPDATE salesmgmt.sales_task SET status = 'done', completed_at = '2026-01-02' WHERE title = 'Call back 5';
SELECT is((SELECT completed_at FROM salesmgmt.sales_task WHERE title = 'Call back 5'), '2026-01-02'::timestamptz,
          'an admin (an import) still records when a task was done');

-- ------------------------------------------------------------------------
-- 3. Feedback refers only to what the writer sees, consistently
-- ------------------------------------------------------------------------

SET ROLE sec_r4;
SELECT throws_ok($$INSERT INTO salesmgmt.feedback (source, deal_id, rep_id, category, sentiment, body)
                   VALUES ('rep', 51, 4, 'product', 'neutral', 'x')$$,
                 '42501', 'feedback refers to deal 51, which is not a deal you can see',
                 'r4 cannot file feedback about r5''s deal');
SELECT throws_ok($$INSERT INTO salesmgmt.feedback (source, account_id, rep_id, category, sentiment, body)
                   VALUES ('rep', 5, 4, 'product', 'neutral', 'x')$$,
                 '42501', 'feedback refers to account 5, which is not an account you can see',
                 'nor about r5''s account');
SELECT throws_ok($$INSERT INTO salesmgmt.feedback (source, deal_id, account_id, rep_id, category, sentiment, body)
                   VALUES ('rep', 41, 9, 4, 'product', 'neutral', 'x')$$,
                 '23514', NULL, 'nor pair its deal with another of its accounts');
SELECT throws_ok($$INSERT INTO salesmgmt.feedback (source, deal_id, rep_id, category, sentiment, body)
                   VALUES ('rep', 41, 5, 'product', 'neutral', 'x')$$,
                 '42501', NULL, 'nor file it under r5');
SELECT lives_ok($$INSERT INTO salesmgmt.feedback (source, deal_id, account_id, rep_id, category, sentiment, body)
                  VALUES ('rep', 41, 4, 4, 'product', 'neutral', 'More demos')$$,
                'r4 files feedback about its own deal and account');
RESET ROLE;
SET ROLE sec_r8;
SELECT lives_ok($$INSERT INTO salesmgmt.feedback (source, deal_id, rep_id, category, sentiment, body)
                  VALUES ('rep', 42, 8, 'product', 'neutral', 'Shared deal')$$,
                'r8 files feedback about the deal it shares by a split');
RESET ROLE;

-- ------------------------------------------------------------------------
-- 4. A deal created right in a stage that needs an approval
-- ------------------------------------------------------------------------

INSERT INTO salesmgmt.approval_rule (name, stage_id, condition) VALUES ('Big wins', 2, '{"amount": {">": 500}}');
SET ROLE sec_r4;
SELECT throws_ok($$INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
                   VALUES ('Straight to won', 4, 4, 1, 2, 1000)$$,
                 'SM071', NULL, 'r4 cannot create a big deal right in the guarded Won stage');
SELECT lives_ok($$INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
                  VALUES ('Small win', 4, 4, 1, 2, 100)$$,
                'a deal the rule does not match is created there');
RESET ROLE;
SELECT throws_ok($$INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
                   VALUES ('Admin import', 4, 4, 1, 2, 1000)$$,
                 'SM071', NULL, 'nor can an admin: the rule holds for every writer');
SELECT is((SELECT count(*)::int FROM salesmgmt.deal WHERE name IN ('Straight to won', 'Admin import')), 0,
          'nothing was written');

-- ------------------------------------------------------------------------
-- 5. lead_visible in C, with the pools' claimers cached and invalidated
-- ------------------------------------------------------------------------

SELECT is((SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
            WHERE p.oid = 'salesmgmt.lead_visible(bigint, bigint)'::regprocedure), 'c', 'lead_visible is C');
SELECT is((SELECT proparallel FROM pg_proc WHERE oid = 'salesmgmt.lead_visible(bigint, bigint)'::regprocedure), 's',
          'and parallel safe, like the other predicates');
INSERT INTO salesmgmt.lead_pool (pool_id, name) VALUES (1, 'Mid pool'), (2, 'Leaf pool');
INSERT INTO salesmgmt.lead_pool_team (pool_id, team_id) VALUES (1, 2), (2, 3);
INSERT INTO salesmgmt.lead (lead_id, name, pool_id) VALUES (1, 'Waiting in Mid', 1), (2, 'Waiting in Leaf', 2);
INSERT INTO salesmgmt.lead (lead_id, name, owner_rep_id) VALUES (3, 'Owned by r5', 5);
SET ROLE sec_r4;
SELECT is((SELECT array_agg(lead_id ORDER BY lead_id) FROM salesmgmt.lead), ARRAY[1, 2]::bigint[],
          'r4 (Leaf, below Mid) sees the waiting leads of both pools, not r5''s lead');
RESET ROLE;
SET ROLE sec_r5;
SELECT is((SELECT array_agg(lead_id ORDER BY lead_id) FROM salesmgmt.lead), ARRAY[1, 3]::bigint[],
          'r5 (Mid) sees the Mid pool and its own lead, not the Leaf pool');
RESET ROLE;
SET ROLE sec_m3;
SELECT is((SELECT array_agg(lead_id ORDER BY lead_id) FROM salesmgmt.lead), ARRAY[1, 2]::bigint[],
          'm3 sees the pools its reps may claim from');
RESET ROLE;
SET ROLE sec_r8;
SELECT is((SELECT count(*)::int FROM salesmgmt.lead), 0, 'r8 (another tree) sees none');
RESET ROLE;
INSERT INTO salesmgmt.lead_pool_team (pool_id, team_id) VALUES (2, 4);
SET ROLE sec_r8;
SELECT is((SELECT array_agg(lead_id) FROM salesmgmt.lead), ARRAY[2]::bigint[],
          'once its team may claim from the Leaf pool, r8 sees its lead (the cache was told)');
RESET ROLE;
UPDATE salesmgmt.rep SET active = false WHERE rep_id = 4;
SET ROLE sec_r4;
SELECT is((SELECT count(*)::int FROM salesmgmt.lead), 0, 'an inactive r4 sees no pool lead');
RESET ROLE;
UPDATE salesmgmt.rep SET active = true WHERE rep_id = 4;
DELETE FROM salesmgmt.lead_pool_team WHERE team_id = 4;
SET ROLE sec_r8;
SELECT is((SELECT count(*)::int FROM salesmgmt.lead), 0, 'and once the link is gone, r8 sees none again');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM salesmgmt.lead WHERE salesmgmt.lead_visible(NULL, NULL)), 3,
          'an admin (the superuser here) sees every lead, unrouted ones too');

SELECT * FROM finish();
ROLLBACK;

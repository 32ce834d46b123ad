-- pgTAP: products, price books, deal lines, quotes: structure, every rule,
-- every error code, and that a refused call leaves the data as it was.
BEGIN;
-- the figures below are in USD, whatever the database's reporting currency
SET LOCAL salesmgmt.reporting_currency = 'USD';
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(103);

-- structure
SELECT has_table('salesmgmt', t, t || ' exists')
  FROM unnest(ARRAY['product', 'price_book', 'price_book_entry', 'deal_line', 'quote', 'quote_line', 'quote_counter']) t;
SELECT col_is_pk('salesmgmt', 'deal_line', ARRAY['deal_id', 'line_id'], 'lines are keyed by deal first');
SELECT col_is_pk('salesmgmt', 'quote', ARRAY['deal_id', 'quote_id'], 'quotes are keyed by deal first');
SELECT col_type_is('salesmgmt', 'deal_line', 'line_amount', 'numeric(18,2)', 'line amounts are exact numeric');
SELECT has_column('salesmgmt', 'deal', c, 'deal.' || c) FROM unnest(ARRAY['price_book_id', 'max_discount_pct']) c;
SELECT is((SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
            WHERE p.oid = 'salesmgmt._deal_line_amounts'::regproc), 'c', 'the amount trigger is C');
SELECT is((SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
            WHERE p.oid = 'salesmgmt.product_affinity'::regproc), 'c', 'product_affinity is C');
SELECT is((SELECT count(*)::int FROM pg_class c
            WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind = 'r'
              AND c.relname IN ('product', 'price_book', 'price_book_entry', 'deal_line', 'quote', 'quote_line', 'quote_counter')
              AND c.relrowsecurity), 7, 'every products table has row-level security');
SELECT is((SELECT count(*)::int FROM pg_extension e, unnest(e.extconfig) c
            WHERE e.extname = 'salesmgmt' AND c::regclass::text IN ('salesmgmt.product', 'salesmgmt.price_book',
              'salesmgmt.price_book_entry', 'salesmgmt.deal_line', 'salesmgmt.quote', 'salesmgmt.quote_line',
              'salesmgmt.quote_counter')), 7, 'every products table is dumped with the data');
SELECT is((SELECT count(*)::int FROM pg_proc p
            WHERE p.pronamespace = 'salesmgmt'::regnamespace
              AND p.proname IN ('create_quote', 'send_quote', 'accept_quote', 'reject_quote', 'expire_quotes',
                                'product_affinity', 'next_best_products')
              AND obj_description(p.oid, 'pg_proc') IS NULL), 0, 'every products function has a comment');
SELECT is((SELECT count(*)::int FROM pg_proc p, aclexplode(p.proacl) a
            WHERE p.pronamespace = 'salesmgmt'::regnamespace AND a.grantee = 0
              AND p.proname IN ('create_quote', 'send_quote', 'accept_quote', 'reject_quote', 'expire_quotes',
                                'product_affinity', 'next_best_products', '_deal_line_check')), 0,
          'no products function is executable by PUBLIC');

-- a small world
INSERT INTO salesmgmt.team (name) VALUES ('Sales');
INSERT INTO salesmgmt.rep (name, email, team_id) VALUES ('Ada', 'ada@example.com', 1), ('Bo', 'bo@example.com', 1);
INSERT INTO salesmgmt.account (name, owner_rep_id) VALUES ('Acme', 1), ('Globex', 1), ('Initech', 1);
SELECT salesmgmt.create_pipeline('New', '[{"name": "Qualify", "probability": 0.2}, {"name": "Won", "outcome": "won"}, {"name": "Lost", "outcome": "lost"}]');
INSERT INTO salesmgmt.product (sku, name, family) VALUES
    ('SEAT', 'CRM seat', 'CRM'), ('ANL', 'Analytics', 'Analytics'), ('OLD', 'Old thing', 'Legacy'), ('TRN', 'Training day', 'Services');
UPDATE salesmgmt.product SET active = false WHERE sku = 'OLD';
INSERT INTO salesmgmt.price_book (name, currency, is_default) VALUES ('List USD', 'USD', true), ('List EUR', 'EUR', true);
INSERT INTO salesmgmt.price_book (name, currency, valid_until) VALUES ('Old USD', 'USD', '2000-12-31');
INSERT INTO salesmgmt.price_book_entry (price_book_id, product_id, min_quantity, unit_price) VALUES
    (1, 1, 0, 100), (1, 1, 50, 90), (1, 2, 0, 1000), (1, 3, 0, 5), (1, 4, 0, 800), (2, 1, 0, 95), (3, 1, 0, 1);
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount) VALUES
    ('D1', 1, 1, 1, 1, 777), ('D2 EUR', 2, 1, 1, 1, 0), ('D3 closed', 3, 1, 1, 1, 0);
UPDATE salesmgmt.deal SET currency = 'EUR' WHERE deal_id = 2;
UPDATE salesmgmt.deal SET stage_id = 3 WHERE deal_id = 3;

-- prices, tiers, the amount in the same statement
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity, discount_pct) VALUES (1, 1, 10, 0), (1, 1, 60, 10), (1, 2, 1, 25);
SELECT results_eq('SELECT unit_price FROM salesmgmt.deal_line WHERE deal_id = 1 ORDER BY line_id',
                  'VALUES (100.0000::numeric(18,4)), (90.0000), (1000.0000)',
                  'unit prices come from the default book, volume tier by quantity');
SELECT is((SELECT amount FROM salesmgmt.deal WHERE deal_id = 1), 6610.00, 'deal amount = sum of line amounts (1000 + 4860 + 750)');
SELECT is((SELECT max_discount_pct FROM salesmgmt.deal WHERE deal_id = 1), 25.00, 'max_discount_pct = largest line discount');
SELECT is((SELECT count(*)::int FROM salesmgmt.deal_stage_history WHERE deal_id = 1 AND old_amount = 777 AND new_amount = 6610), 1,
          'one history row for the amount change of a three-line insert');
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity, unit_price) VALUES (1, 4, 1, 500);
SELECT is((SELECT unit_price FROM salesmgmt.deal_line WHERE deal_id = 1 AND product_id = 4), 500.0000, 'a given unit price is kept');
UPDATE salesmgmt.deal_line SET quantity = 70 WHERE line_id = 1;
SELECT is((SELECT unit_price FROM salesmgmt.deal_line WHERE line_id = 1), 90.0000, 'a new quantity takes the price of its tier');
SELECT is((SELECT amount FROM salesmgmt.deal WHERE deal_id = 1), 12410.00, 'the amount follows an UPDATE of a line');
DELETE FROM salesmgmt.deal_line WHERE product_id = 4;
SELECT is((SELECT amount FROM salesmgmt.deal WHERE deal_id = 1), 11910.00, 'the amount follows a DELETE of a line');

-- direct changes of the maintained columns
SELECT throws_ok('UPDATE salesmgmt.deal SET amount = 5 WHERE deal_id = 1', 'SM083', NULL, 'amount of a deal with lines: SM083');
SELECT throws_ok('UPDATE salesmgmt.deal SET max_discount_pct = 0 WHERE deal_id = 1', 'SM083', NULL, 'max_discount_pct by hand: SM083');
SELECT throws_ok($$UPDATE salesmgmt.deal SET currency = 'EUR' WHERE deal_id = 1$$, 'SM083', NULL, 'currency of a deal with lines: SM083');
SELECT lives_ok($$UPDATE salesmgmt.deal SET name = 'D1 renamed' WHERE deal_id = 1$$, 'other columns change freely');
SELECT throws_ok($$INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, max_discount_pct)
                   VALUES ('X', 1, 1, 1, 1, 10)$$, 'SM083', NULL, 'max_discount_pct of a new deal: SM083');
SELECT lives_ok('UPDATE salesmgmt.deal SET amount = 5 WHERE deal_id = 2', 'a deal without lines keeps a typed amount');

-- bad lines: a clear error each, nothing written
CREATE TEMP TABLE before AS SELECT (SELECT count(*) FROM salesmgmt.deal_line) AS lines,
    (SELECT amount FROM salesmgmt.deal WHERE deal_id = 1) AS amount,
    (SELECT count(*) FROM salesmgmt.deal_stage_history) AS history;
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (2, 2, 1)', 'SM080', NULL,
                 'a product of another currency''s price book: SM080');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (1, 1, -1)', 'SM084', NULL, 'negative quantity: SM084');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (1, 1, 0)', 'SM084', NULL, 'zero quantity: SM084');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity, discount_pct) VALUES (1, 1, 1, 100.5)', 'SM084', NULL, 'discount above 100: SM084');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity, discount_pct) VALUES (1, 1, 1, -1)', 'SM084', NULL, 'negative discount: SM084');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity, unit_price) VALUES (1, 1, 1, -1)', 'SM084', NULL, 'negative unit price: SM084');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (1, 3, 1)', 'SM081', NULL, 'inactive product: SM081');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (3, 1, 1)', 'SM082', NULL, 'a line on a closed deal: SM082');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (99, 1, 1)', '23503', NULL, 'unknown deal: 23503');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (1, 99, 1)', '23503', NULL, 'unknown product: 23503');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (1, NULL, 1)', '23502', NULL, 'null product: 23502');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (1, 1, NULL)', '23502', NULL, 'null quantity: 23502');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (1, 1, 1), (1, 1, 1), (3, 1, 1)', 'SM082', NULL,
                 'one bad row refuses the whole statement');
SELECT throws_ok('UPDATE salesmgmt.deal_line SET discount_pct = 150 WHERE deal_id = 1', 'SM084', NULL, 'a bad bulk UPDATE: SM084');
UPDATE salesmgmt.deal SET price_book_id = 3 WHERE deal_id = 1;
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (1, 1, 1)', 'SM087', NULL, 'an expired price book: SM087');
UPDATE salesmgmt.deal SET price_book_id = NULL WHERE deal_id = 1;
SELECT throws_ok($$UPDATE salesmgmt.deal SET price_book_id = 2 WHERE deal_id = 1$$, '23503', NULL, 'a price book of another currency: 23503');
SELECT throws_ok($$INSERT INTO salesmgmt.price_book (name, currency, is_default) VALUES ('Second USD', 'USD', true)$$, '23505', NULL,
                 'one default price book per currency');
SELECT is((SELECT ROW(count(*), (SELECT amount FROM salesmgmt.deal WHERE deal_id = 1), (SELECT count(*) FROM salesmgmt.deal_stage_history))::text
             FROM salesmgmt.deal_line),
          (SELECT ROW(lines, amount, history)::text FROM before), 'refused lines left lines, amount and history as they were');

-- quotes
SELECT throws_ok('SELECT salesmgmt.create_quote(NULL)', '22004', NULL, 'create_quote(null): 22004');
SELECT throws_ok('SELECT salesmgmt.create_quote(99)', '42704', NULL, 'create_quote of an unknown deal: 42704');
SELECT throws_ok('SELECT salesmgmt.create_quote(1, 0)', '22023', NULL, 'create_quote valid for 0 days: 22023');
SELECT throws_ok('SELECT salesmgmt.create_quote(1, -5)', '22023', NULL, 'create_quote valid for negative days: 22023');
SELECT throws_ok('SELECT salesmgmt.create_quote(2)', 'SM085', NULL, 'create_quote of a deal without lines: SM085');
SELECT throws_ok('SELECT salesmgmt.create_quote(3)', 'SM082', NULL, 'create_quote of a closed deal: SM082');
SELECT is((SELECT count(*)::int FROM salesmgmt.quote_counter), 0, 'refused quotes take no number');
SELECT is(salesmgmt.create_quote(1), 1::bigint, 'create_quote returns the quote id');
SELECT is(salesmgmt.create_quote(1, 10), 2::bigint, 'a second quote of the deal');
SELECT results_eq('SELECT number, version, total, subtotal - discount_amount FROM salesmgmt.quote ORDER BY quote_id',
                  format('VALUES (%L, 1, 11910.00::numeric(18,2), 11910.00::numeric), (%L, 2, 11910.00, 11910.00)',
                         'Q-' || extract(year FROM current_date) || '-000001', 'Q-' || extract(year FROM current_date) || '-000002'),
                  'gapless numbers per year, versions per deal, totals');
SELECT is((SELECT count(*)::int FROM salesmgmt.quote_line WHERE quote_id = 1), 3, 'the quote snapshots the lines');
UPDATE salesmgmt.price_book_entry SET unit_price = 1 WHERE product_id = 2;
UPDATE salesmgmt.deal_line SET unit_price = NULL WHERE product_id = 2;
SELECT is((SELECT total FROM salesmgmt.quote WHERE quote_id = 1), 11910.00, 'later price changes do not alter a quote');
SELECT throws_ok('SELECT salesmgmt.accept_quote(1)', 'SM085', NULL, 'accepting a draft: SM085');
SELECT throws_ok('SELECT salesmgmt.send_quote(NULL)', '22004', NULL, 'send_quote(null): 22004');
SELECT throws_ok('SELECT salesmgmt.send_quote(99)', '42704', NULL, 'send_quote of an unknown quote: 42704');
SELECT salesmgmt.create_webhook('https://hooks.example.com/quotes', ARRAY['quote.*']) \g /dev/null
SELECT is((salesmgmt.send_quote(1)).status, 'sent', 'send_quote sends');
SELECT is((SELECT count(*)::int FROM salesmgmt.webhook_event WHERE event_type = 'quote.sent' AND subject_type = 'quote' AND subject_id = 1), 1,
          'quote.sent is in the outbox');
SELECT throws_ok('SELECT salesmgmt.send_quote(1)', 'SM085', NULL, 'sending twice: SM085');
SELECT throws_ok('SELECT salesmgmt.accept_quote(1, NULL)', '22004', NULL, 'accept_quote(id, null): 22004');
SELECT is((salesmgmt.accept_quote(1)).status, 'accepted', 'accept_quote accepts');
SELECT is((SELECT payload->'data'->>'total' FROM salesmgmt.webhook_event WHERE event_type = 'quote.accepted' AND subject_id = 1), '11910.00',
          'quote.accepted is in the outbox with the total');
SELECT is((SELECT amount FROM salesmgmt.deal WHERE deal_id = 1), 11910.00, 'the accepted quote''s lines are the deal''s again');
SELECT is((SELECT status FROM salesmgmt.quote WHERE quote_id = 2), 'rejected', 'the other open quote of the deal is rejected');
SELECT throws_ok('SELECT salesmgmt.accept_quote(2)', 'SM086', NULL, 'a second accepted quote for a deal: SM086');
SELECT throws_ok('SELECT salesmgmt.reject_quote(1)', 'SM085', NULL, 'rejecting an accepted quote: SM085');
SELECT throws_ok('UPDATE salesmgmt.quote SET status = ''draft'' WHERE quote_id = 2', 'SM085', NULL, 'a rejected quote stays rejected');
SELECT throws_ok('UPDATE salesmgmt.quote SET total = 1 WHERE quote_id = 1', 'SM085', NULL, 'only the status of a quote moves');
-- a quote whose validity passed: set up around the rules
ALTER TABLE salesmgmt.quote DISABLE TRIGGER quote_rules;
UPDATE salesmgmt.quote SET valid_until = current_date - 1, status = 'draft' WHERE quote_id = 2;
ALTER TABLE salesmgmt.quote ENABLE TRIGGER quote_rules;
SELECT throws_ok('SELECT salesmgmt.send_quote(2)', 'SM085', NULL, 'sending an expired quote: SM085');
SELECT is(salesmgmt.expire_quotes(), 1, 'expire_quotes expires the past-due draft');
SELECT is(salesmgmt.expire_quotes(), 0, 'expire_quotes is idempotent');

-- approval rules can test the largest discount
SELECT ok((SELECT max_discount_pct >= 20 FROM salesmgmt.deal WHERE deal_id = 1), 'a 25% line makes max_discount_pct >= 20');
SELECT ok(salesmgmt.rule_validate('{"max_discount_pct": {">=": 20}}', 'salesmgmt.deal'), 'the rule language knows max_discount_pct');
SELECT ok((SELECT salesmgmt.rule_matches('{"max_discount_pct": {">=": 20}}', to_jsonb(d)) FROM salesmgmt.deal d WHERE deal_id = 1),
          'a discount rule matches the deal');

-- a won deal keeps its lines
SELECT lives_ok($$SELECT salesmgmt.move_deal(1, 'Won')$$, 'the deal is won');
SELECT throws_ok('DELETE FROM salesmgmt.deal_line WHERE deal_id = 1', 'SM082', NULL, 'deleting lines of a closed deal: SM082');
SELECT throws_ok('UPDATE salesmgmt.deal_line SET quantity = 1 WHERE deal_id = 1', 'SM082', NULL, 'changing lines of a closed deal: SM082');

-- quotas of a product family count the family's share of each won deal
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount, currency, product_family)
SELECT 1, date_trunc('quarter', current_date)::date, (date_trunc('quarter', current_date) + interval '3 months - 1 day')::date,
       a, 'USD', f
  FROM (VALUES (20000, NULL), (1000, 'Analytics'), (5000, 'Services')) AS t(a, f);
SELECT is(round(salesmgmt.deal_family_share(1, 'CRM') * 11910, 2), 11160.00, 'deal_family_share: the CRM lines'' share of the deal');
SELECT is(salesmgmt.deal_family_share(1, NULL), 1::numeric, 'deal_family_share of all products is 1');
SELECT results_eq($$SELECT product_family, attained FROM salesmgmt.target_pacing WHERE rep_id = 1 ORDER BY product_family NULLS FIRST$$,
                  $$VALUES (NULL::text, 11910.00::numeric), ('Analytics', 750.00), ('Services', 0.00)$$,
                  'target_pacing: all products, the Analytics share, nothing of Services');
SELECT results_eq($$SELECT product_family, won_amount FROM salesmgmt.quota_attainment WHERE rep_id = 1 ORDER BY product_family NULLS FIRST$$,
                  $$VALUES (NULL::text, 11910.00::numeric), ('Analytics', 750.00), ('Services', 0.00)$$,
                  'quota_attainment: the same split');
SELECT throws_ok($$INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount, product_family)
                   VALUES (1, date_trunc('quarter', current_date), date_trunc('quarter', current_date) + interval '3 months - 1 day', 1, 'Analytics')$$,
                 '23505', NULL, 'one quota per rep, period and family');

-- needs analysis
SELECT throws_ok('SELECT * FROM salesmgmt.next_best_products(NULL)', '22004', NULL, 'next_best_products(null): 22004');
SELECT throws_ok('SELECT * FROM salesmgmt.next_best_products(99)', '42704', NULL, 'next_best_products of an unknown account: 42704');
SELECT throws_ok('SELECT * FROM salesmgmt.next_best_products(1, 0)', '22023', NULL, 'next_best_products with limit 0: 22023');
SELECT is((SELECT count(*)::int FROM salesmgmt.product_affinity(current_date + 1)), 0, 'no won deals after tomorrow: no rules');

-- row-level security: lines follow their deal
CREATE ROLE products_tap_r2 IN ROLE salesmgmt_rep;
UPDATE salesmgmt.rep SET db_role = 'products_tap_r2' WHERE rep_id = 2;
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id) VALUES (4, 'D4 of Bo', 1, 2, 1, 1);
INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share) VALUES (2, 1, 0.5), (2, 2, 0.5);
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (2, 1, 1);
SET ROLE products_tap_r2;
SELECT lives_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (4, 1, 2)', 'a rep adds lines to its own deal');
SELECT is((SELECT amount FROM salesmgmt.deal WHERE deal_id = 4), 200.00, 'and the amount follows, as the rep');
SELECT is((SELECT count(*)::int FROM salesmgmt.deal_line WHERE deal_id IN (1, 4)), 1, 'a rep sees the lines of its own deal, not those of others');
SELECT is((SELECT count(*)::int FROM salesmgmt.quote WHERE deal_id = 1), 0, 'nor their quotes');
SELECT throws_ok('INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (2, 1, 1)', '42501', NULL,
                 'a split partner cannot change the lines (the deal''s amount) of a deal it only shares');
SELECT throws_ok($$INSERT INTO salesmgmt.product (sku, name) VALUES ('X', 'X')$$, '42501', NULL, 'a rep cannot write the catalogue');
SELECT lives_ok('SELECT salesmgmt.send_quote(salesmgmt.create_quote(4))', 'a rep quotes and sends its own deal');
SELECT throws_ok('SELECT salesmgmt.emit_event(''quote.accepted'', ''quote'', 1, ''{}'')', '42501', NULL, 'a rep cannot emit quote events itself');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

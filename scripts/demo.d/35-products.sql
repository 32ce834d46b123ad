-- Tour, part 3b: products, price books, quotes (sales-process pillar) and
-- what customers buy (needs analysis).  Sets up a small catalogue and one
-- deal built from products (once), quotes it, accepts the quote and closes
-- the deal.  See docs/products.md.
\pset footer off
\set QUIET on
SELECT NOT EXISTS (SELECT 1 FROM salesmgmt.product WHERE sku = 'DEMO-PLT') AS need_catalogue \gset
\if :need_catalogue
INSERT INTO salesmgmt.product (sku, name, family, unit, recurring, billing_period) VALUES
    ('DEMO-PLT', 'Platform seat (demo)', 'Platform', 'seat', true, 'year'),
    ('DEMO-ANL', 'Analytics add-on (demo)', 'Analytics', 'seat', true, 'year'),
    ('DEMO-TRN', 'Training day (demo)', 'Training', 'day', false, NULL);
INSERT INTO salesmgmt.price_book (name, currency, is_default)
SELECT 'Demo list USD', 'USD', NOT EXISTS (SELECT 1 FROM salesmgmt.price_book WHERE currency = 'USD' AND is_default);
INSERT INTO salesmgmt.price_book_entry (price_book_id, product_id, min_quantity, unit_price)
SELECT b.price_book_id, p.product_id, t.min_quantity, t.unit_price
  FROM salesmgmt.price_book b
  JOIN salesmgmt.product p ON p.sku IN ('DEMO-PLT', 'DEMO-ANL', 'DEMO-TRN')
  JOIN (VALUES ('DEMO-PLT', 0, 1200), ('DEMO-PLT', 50, 1000), ('DEMO-ANL', 0, 600), ('DEMO-TRN', 0, 1500))
       AS t(sku, min_quantity, unit_price) ON t.sku = p.sku
 WHERE b.currency = 'USD' AND b.is_default;
-- a new deal with the first account, in the first open stage of New Business
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, currency, expected_close_date)
SELECT 'Demo: platform roll-out', a.account_id, a.owner_rep_id, 1, 1, 'USD', current_date + 30
  FROM salesmgmt.account a ORDER BY a.account_id LIMIT 1;
\endif
SELECT deal_id AS demo_deal FROM salesmgmt.deal WHERE name = 'Demo: platform roll-out' \gset
\set QUIET off

\echo
\echo '================ Products, quotes and line items ================'
\echo
\echo '-- A deal built from products: prices come from the price book (60 seats reach the 50-seat tier)'
\set QUIET on
SELECT NOT EXISTS (SELECT 1 FROM salesmgmt.deal_line WHERE deal_id = :demo_deal) AS need_lines \gset
\if :need_lines
INSERT INTO salesmgmt.deal_line (deal_id, position, product_id, quantity, discount_pct)
SELECT :demo_deal, t.position, p.product_id, t.quantity, t.discount_pct
  FROM (VALUES (1, 'DEMO-PLT', 60, 0), (2, 'DEMO-ANL', 60, 25), (3, 'DEMO-TRN', 2, 0)) AS t(position, sku, quantity, discount_pct)
  JOIN salesmgmt.product p ON p.sku = t.sku;
\endif
\set QUIET off
SELECT l.position, p.sku, p.family, l.quantity, l.unit_price, l.discount_pct AS "discount %", l.line_amount
  FROM salesmgmt.deal_line l JOIN salesmgmt.product p USING (product_id)
 WHERE l.deal_id = :demo_deal ORDER BY l.position;

\echo
\echo '-- The deal''s amount is the sum of its lines; max_discount_pct is what approval rules test'
\echo '-- (a rule condition {"max_discount_pct": {">=": 20}} asks the manager for this one)'
SELECT deal_id, amount, currency, max_discount_pct FROM salesmgmt.deal WHERE deal_id = :demo_deal;

\echo
\echo '-- Typing the amount by hand is refused while the deal has lines'
DO $$
BEGIN
    UPDATE salesmgmt.deal SET amount = 1 WHERE name = 'Demo: platform roll-out';
EXCEPTION WHEN SQLSTATE 'SM083' THEN
    RAISE NOTICE 'SM083: %', SQLERRM;
END
$$;

\echo
\echo '-- A quote with a 25% discount: winning the deal needs a manager''s approval (docs/process.md)'
\set QUIET on
SELECT NOT EXISTS (SELECT 1 FROM salesmgmt.quote WHERE deal_id = :demo_deal) AS need_quote \gset
\if :need_quote
SET client_min_messages = warning;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'demo_products_approver') THEN
        CREATE ROLE demo_products_approver LOGIN IN ROLE salesmgmt_manager;
    END IF;
END
$$;
RESET client_min_messages;
INSERT INTO salesmgmt.approval_rule (name, stage_id, condition, approver, approver_role)
SELECT 'Demo: discounts of 20% or more', s.stage_id, '{"max_discount_pct": {">=": 20}}', 'role', 'salesmgmt_manager'
  FROM salesmgmt.stage s WHERE s.pipeline_id = 1 AND s.outcome = 'won' ORDER BY s.position LIMIT 1;
SELECT salesmgmt.send_quote(salesmgmt.create_quote(:demo_deal, 30)) \g /dev/null
\set QUIET off
DO $$
BEGIN
    PERFORM salesmgmt.accept_quote(max(quote_id), true) FROM salesmgmt.quote
     WHERE deal_id = (SELECT deal_id FROM salesmgmt.deal WHERE name = 'Demo: platform roll-out');
EXCEPTION WHEN SQLSTATE 'SM071' THEN
    RAISE NOTICE 'SM071: %', SQLERRM;
END
$$;
\echo '-- The rep asks; a manager approves; the quote is accepted and the deal won through the stage rules'
SELECT salesmgmt.request_approval(:demo_deal, s.name, 'Reference customer: 25% on analytics') AS demo_request
  FROM salesmgmt.stage s WHERE s.pipeline_id = 1 AND s.outcome = 'won' ORDER BY s.position LIMIT 1 \gset
SET ROLE demo_products_approver;
SELECT request_id, status FROM salesmgmt.approve(:demo_request, 'Approved: reference customer');
RESET ROLE;
\set QUIET on
SELECT salesmgmt.accept_quote(max(quote_id), true) FROM salesmgmt.quote WHERE deal_id = :demo_deal \g /dev/null
-- the rule was for this tour: later sections move deals freely
UPDATE salesmgmt.approval_rule SET active = false WHERE name = 'Demo: discounts of 20% or more';
\endif
\set QUIET off
SELECT regexp_replace(q.number, '^Q-[0-9]{4}-', 'Q-YYYY-') AS number, q.version, q.status, q.subtotal,
       q.discount_amount, q.total, q.max_discount_pct
  FROM salesmgmt.quote q WHERE q.deal_id = :demo_deal ORDER BY q.quote_id;
SELECT s.name AS stage, d.amount, d.closed_at IS NOT NULL AS closed
  FROM salesmgmt.deal d JOIN salesmgmt.stage s USING (stage_id) WHERE d.deal_id = :demo_deal;

\echo
\echo '-- Its history: the amount change from the lines, then the move to won noted with the quote'
SELECT h.from_stage_id, h.to_stage_id, h.old_amount, h.new_amount,
       regexp_replace(h.note, 'Q-[0-9]{4}-', 'Q-YYYY-') AS note
  FROM salesmgmt.deal_stage_history h WHERE h.deal_id = :demo_deal ORDER BY h.history_id;

\echo
\echo '-- What customers buy: won lines by product (salesmgmt.product_sales)'
SELECT sku, family, sum(units) AS units, sum(revenue) AS revenue, round(avg(avg_discount_pct), 2) AS "avg discount %"
  FROM salesmgmt.product_sales WHERE sku LIKE 'DEMO-%'
 GROUP BY sku, family ORDER BY sku;

-- pgTAP: salesmgmt.product_affinity read straight from the heap (superuser,
-- owner) and through SQL where row-level security applies: hand-checked
-- rules, the same rules as a plain-SQL self-join for every caller, p_since,
-- and more than 64 families (several mask words).
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(11);

-- the plain-SQL self-join (bench/products_reference.sql), as the caller sees the rows
CREATE FUNCTION pg_temp.affinity_sql(p_since date DEFAULT NULL)
RETURNS TABLE (family text, other_family text, accounts bigint, support numeric, confidence numeric, lift numeric)
LANGUAGE sql STABLE AS $$
    WITH af AS (
        SELECT DISTINCT d.account_id, p.family
          FROM salesmgmt.deal d
          JOIN salesmgmt.stage s ON s.stage_id = d.stage_id AND s.outcome = 'won'
          JOIN salesmgmt.deal_line l ON l.deal_id = d.deal_id
          JOIN salesmgmt.product p ON p.product_id = l.product_id
         WHERE p_since IS NULL OR d.closed_at >= p_since
    ), n AS (SELECT count(DISTINCT account_id) AS n FROM af),
    f AS (SELECT af.family, count(*) AS n_f FROM af GROUP BY af.family),
    pairs AS (
        SELECT a.family, b.family AS other_family, count(*) AS both_n
          FROM af a JOIN af b ON b.account_id = a.account_id AND b.family <> a.family
         GROUP BY a.family, b.family
    )
    SELECT p.family, p.other_family, p.both_n,
           round(p.both_n::numeric / n.n, 4),
           round(p.both_n::numeric / fa.n_f, 4),
           round(p.both_n::numeric * n.n / (fa.n_f * fb.n_f), 4)
      FROM pairs p CROSS JOIN n
      JOIN f fa ON fa.family = p.family
      JOIN f fb ON fb.family = p.other_family
     ORDER BY p.both_n::numeric / (fa.n_f * fb.n_f) DESC, p.family, p.other_family;
$$;
GRANT EXECUTE ON FUNCTION pg_temp.affinity_sql(date) TO PUBLIC;

INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Ada', 1), (2, 'Bo', 1);
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'A1'), (2, 'A2'), (3, 'A3'), (4, 'A4'), (5, 'A5');
INSERT INTO salesmgmt.pipeline (pipeline_id, name) VALUES (1, 'New business');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (1, 1, 'Open', 1, 0.50, 'pipeline', 'open'), (2, 1, 'Won', 2, 1, 'closed', 'won'), (3, 1, 'Lost', 3, 0, 'omitted', 'lost');
INSERT INTO salesmgmt.product (product_id, sku, name, family) VALUES
    (1, 'PA', 'Product A', 'A'), (2, 'PB', 'Product B', 'B'), (3, 'PC', 'Product C', 'C');
INSERT INTO salesmgmt.price_book (price_book_id, name, currency, is_default) VALUES (1, 'List USD', 'USD', true);
INSERT INTO salesmgmt.price_book_entry (price_book_id, product_id, min_quantity, unit_price)
SELECT 1, product_id, 0, 10 FROM salesmgmt.product;

-- won: account 1 A and B (Ada), 2 A, B and C (Bo, two deals), 3 A (Ada,
-- in 2024), 4 C (Bo); a lost deal of account 4 with A counts for nothing
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
                            expected_close_date, stage_entered_at) VALUES
    (1, 'd1', 1, 1, 1, 1, 0, 'USD', '2025-03-01', '2025-01-01'),
    (2, 'd2', 2, 2, 1, 1, 0, 'USD', '2025-03-01', '2025-01-01'),
    (3, 'd3', 2, 2, 1, 1, 0, 'USD', '2025-03-01', '2025-01-01'),
    (4, 'd4', 3, 1, 1, 1, 0, 'USD', '2024-03-01', '2024-01-01'),
    (5, 'd5', 4, 2, 1, 1, 0, 'USD', '2025-03-01', '2025-01-01'),
    (6, 'd6', 4, 2, 1, 1, 0, 'USD', '2025-03-01', '2025-01-01');
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES
    (1, 1, 1), (1, 2, 1), (1, 1, 2), (2, 1, 1), (2, 2, 1), (3, 3, 1), (4, 1, 1), (5, 3, 1), (6, 1, 1);
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2025-02-01' WHERE deal_id IN (1, 2, 3, 5);
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2024-02-01' WHERE deal_id = 4;
UPDATE salesmgmt.deal SET stage_id = 3, stage_entered_at = '2025-02-01' WHERE deal_id = 6;

-- N = 4 accounts; n(A) = 3, n(B) = 2, n(C) = 2; A+B 2, A+C 1, B+C 1
SELECT results_eq($$SELECT * FROM salesmgmt.product_affinity()$$,
    $$VALUES ('A'::text, 'B'::text, 2::bigint, 0.5000::numeric, 0.6667::numeric, 1.3333::numeric),
             ('B', 'A', 2, 0.5000, 1.0000, 1.3333),
             ('B', 'C', 1, 0.2500, 0.5000, 1.0000),
             ('C', 'B', 1, 0.2500, 0.5000, 1.0000),
             ('A', 'C', 1, 0.2500, 0.3333, 0.6667),
             ('C', 'A', 1, 0.2500, 0.5000, 0.6667)$$,
    'hand-checked rules: support, confidence, lift, by lift then names');
SELECT results_eq($$SELECT * FROM salesmgmt.product_affinity()$$, $$SELECT * FROM pg_temp.affinity_sql()$$,
                  'the heap path equals the plain-SQL self-join');
SELECT results_eq($$SELECT * FROM salesmgmt.product_affinity('2025-01-01')$$,
                  $$SELECT * FROM pg_temp.affinity_sql('2025-01-01')$$,
                  'p_since leaves out account 3''s deal of 2024, as the SQL does');
SELECT is((SELECT lift FROM salesmgmt.product_affinity('2025-01-01') WHERE family = 'A' AND other_family = 'B'), 1.5000,
          'p_since: n(A) = 2 of N = 3, A+B 2: lift 2 x 3 / (2 x 2)');

-- row-level security: a rep sees its own deals' rules (accounts 2 and 4:
-- N = 2, A+B 1, n(A) = n(B) = 1: lift 2), an analyst everyone's
CREATE ROLE affinity_tap_bo IN ROLE salesmgmt_rep;
CREATE ROLE affinity_tap_an IN ROLE salesmgmt_analyst;
UPDATE salesmgmt.rep SET db_role = 'affinity_tap_bo' WHERE rep_id = 2;
SET ROLE affinity_tap_bo;
SELECT results_eq($$SELECT * FROM salesmgmt.product_affinity()$$, $$SELECT * FROM pg_temp.affinity_sql()$$,
                  'a rep: the rules of the rows the rep sees, as the SQL gives them');
SELECT is((SELECT lift FROM salesmgmt.product_affinity() WHERE family = 'A' AND other_family = 'B'), 2.0000,
          'a rep: accounts 2 and 4 only');
RESET ROLE;
SET ROLE affinity_tap_an;
SELECT results_eq($$SELECT * FROM salesmgmt.product_affinity()$$, $$SELECT * FROM pg_temp.affinity_sql()$$,
                  'an analyst: the same rules as the SQL');
RESET ROLE;

-- 70 families: account 5 buys the first and the last
INSERT INTO salesmgmt.product (product_id, sku, name, family)
SELECT 100 + i, 'F' || i, 'Family ' || i, 'F' || lpad(i::text, 2, '0') FROM generate_series(0, 69) i;
INSERT INTO salesmgmt.price_book_entry (price_book_id, product_id, min_quantity, unit_price)
SELECT 1, product_id, 0, 10 FROM salesmgmt.product WHERE product_id >= 100;
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
                            expected_close_date, stage_entered_at) VALUES
    (7, 'd7', 5, 1, 1, 1, 0, 'USD', '2025-03-01', '2025-01-01');
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (7, 100, 1), (7, 169, 1), (7, 2, 1);
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2025-02-01' WHERE deal_id = 7;
SELECT results_eq($$SELECT * FROM salesmgmt.product_affinity()$$, $$SELECT * FROM pg_temp.affinity_sql()$$,
                  'more than 64 families: several mask words per account');
SELECT is((SELECT accounts FROM salesmgmt.product_affinity() WHERE family = 'F00' AND other_family = 'F69'), 1::bigint,
          'families 0 and 69 bought together');

-- a line the query's snapshot does not see (deleted in this transaction)
-- counts for nothing: account 5 buys A, not C (the heap path checks each
-- tuple of a page that is not all-visible against the snapshot)
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
                            expected_close_date, stage_entered_at) VALUES
    (8, 'd8', 5, 1, 1, 1, 0, 'USD', '2025-03-01', '2025-01-01');
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (8, 3, 1), (8, 1, 1);
DELETE FROM salesmgmt.deal_line WHERE deal_id = 8 AND product_id = 3;
UPDATE salesmgmt.deal SET stage_id = 2, stage_entered_at = '2025-02-01' WHERE deal_id = 8;
SELECT results_eq($$SELECT * FROM salesmgmt.product_affinity()$$, $$SELECT * FROM pg_temp.affinity_sql()$$,
                  'a deleted line: the same rules as the SQL');
SELECT is((SELECT count(*) FROM salesmgmt.product_affinity() WHERE family = 'C' AND other_family = 'F00'), 0::bigint,
          'a deleted line counts for nothing');

SELECT * FROM finish();
ROLLBACK;

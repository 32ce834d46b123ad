-- bench/products_reference.sql: what a strong DBA would write instead of
-- salesmgmt's C for deal lines and the needs analysis, with the same
-- semantics, for bench/products.sh and test/t/070_products.pl.
--
--   products_bench.line_check()     PL/pgSQL BEFORE ROW: the same checks and
--                                   price lookup as sm_deal_line_check
--   products_bench.amount_row()     PL/pgSQL AFTER ROW: the deal's amount and
--                                   max_discount_pct recomputed per line
--   products_bench.amount_stmt()    PL/pgSQL AFTER STATEMENT with transition
--                                   tables: the same UPDATE as the C trigger
--   products_bench.use(variant)     c | ref_row | ref_stmt | plain: which
--                                   triggers are enabled (plain: none; the
--                                   caller updates the amounts by hand)
--   products_bench.affinity(since)  product_affinity as a plain-SQL self-join
--
-- Workload sets (psql -v bulk=N, default 100000): line_set holds 3 new lines
-- for each of N open deals; price_set the lines of N other open deals.
\set ON_ERROR_STOP on
\if :{?bulk} \else \set bulk 100000 \endif
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS products_bench CASCADE;
CREATE SCHEMA products_bench;
RESET client_min_messages;

CREATE FUNCTION products_bench.line_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    d record;
    p record;
    v_price numeric;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        IF (SELECT closed_at IS NOT NULL FROM salesmgmt.deal WHERE deal_id = OLD.deal_id) THEN
            RAISE EXCEPTION 'deal % is closed', OLD.deal_id USING ERRCODE = 'SM082';
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
    END IF;
    IF NEW.quantity <= 0 OR NEW.discount_pct NOT BETWEEN 0 AND 100 OR NEW.unit_price < 0 THEN
        RAISE EXCEPTION 'line out of range' USING ERRCODE = 'SM084';
    END IF;
    SELECT dl.closed_at IS NOT NULL AS closed, b.price_book_id,
           b.active AND coalesce(b.valid_from <= current_date, true) AND coalesce(b.valid_until >= current_date, true) AS usable
      INTO d
      FROM salesmgmt.deal dl
      LEFT JOIN salesmgmt.price_book b ON b.price_book_id = coalesce(dl.price_book_id,
           (SELECT pb.price_book_id FROM salesmgmt.price_book pb WHERE pb.currency = dl.currency AND pb.is_default))
     WHERE dl.deal_id = NEW.deal_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'deal % does not exist', NEW.deal_id USING ERRCODE = '23503';
    END IF;
    IF d.closed THEN
        RAISE EXCEPTION 'deal % is closed', NEW.deal_id USING ERRCODE = 'SM082';
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.deal_id = OLD.deal_id AND NEW.product_id = OLD.product_id
       AND NOT (NEW.unit_price IS NULL OR (NEW.unit_price = OLD.unit_price AND NEW.quantity <> OLD.quantity)) THEN
        RETURN NEW;
    END IF;
    IF d.price_book_id IS NULL OR NOT d.usable THEN
        RAISE EXCEPTION 'no price book' USING ERRCODE = 'SM087';
    END IF;
    SELECT pr.active, (SELECT e.unit_price FROM salesmgmt.price_book_entry e
                        WHERE e.price_book_id = d.price_book_id AND e.product_id = pr.product_id
                          AND e.min_quantity <= NEW.quantity ORDER BY e.min_quantity DESC LIMIT 1) AS price,
           EXISTS (SELECT 1 FROM salesmgmt.price_book_entry e
                    WHERE e.price_book_id = d.price_book_id AND e.product_id = pr.product_id) AS listed
      INTO p FROM salesmgmt.product pr WHERE pr.product_id = NEW.product_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'product % does not exist', NEW.product_id USING ERRCODE = '23503';
    END IF;
    IF NOT p.active AND (TG_OP = 'INSERT' OR NEW.product_id <> OLD.product_id) THEN
        RAISE EXCEPTION 'product inactive' USING ERRCODE = 'SM081';
    END IF;
    IF NOT p.listed THEN
        RAISE EXCEPTION 'product not in price book' USING ERRCODE = 'SM080';
    END IF;
    IF NEW.unit_price IS NULL OR (TG_OP = 'UPDATE' AND NEW.unit_price = OLD.unit_price) THEN
        IF p.price IS NULL THEN
            RAISE EXCEPTION 'no tier' USING ERRCODE = 'SM080';
        END IF;
        NEW.unit_price := p.price;
    END IF;
    RETURN NEW;
END
$$;

-- per line: the obvious trigger
CREATE FUNCTION products_bench.amount_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_deal bigint;
BEGIN
    FOREACH v_deal IN ARRAY CASE TG_OP WHEN 'INSERT' THEN ARRAY[NEW.deal_id]
                                       WHEN 'DELETE' THEN ARRAY[OLD.deal_id]
                                       ELSE ARRAY[NEW.deal_id, OLD.deal_id] END LOOP
        UPDATE salesmgmt.deal d SET amount = s.total, max_discount_pct = s.maxd
          FROM (SELECT coalesce(sum(l.line_amount), 0) AS total, max(l.discount_pct) AS maxd
                  FROM salesmgmt.deal_line l WHERE l.deal_id = v_deal) s
         WHERE d.deal_id = v_deal
           AND (d.amount IS DISTINCT FROM s.total OR d.max_discount_pct IS DISTINCT FROM s.maxd);
    END LOOP;
    RETURN NULL;
END
$$;

-- per statement: what a strong DBA writes (the same SQL as the C trigger)
CREATE FUNCTION products_bench.amount_stmt() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- (the benchmark's UPDATEs keep each line on its deal: new_lines suffices)
    UPDATE salesmgmt.deal d SET amount = c.total, max_discount_pct = c.maxd
      FROM (SELECT t.deal_id, coalesce(s.total, 0) AS total, s.maxd
              FROM (SELECT DISTINCT deal_id FROM new_lines) t
              LEFT JOIN (SELECT l.deal_id, sum(l.line_amount) AS total, max(l.discount_pct) AS maxd
                           FROM salesmgmt.deal_line l
                          WHERE l.deal_id IN (SELECT deal_id FROM new_lines) GROUP BY l.deal_id) s
                ON s.deal_id = t.deal_id) c
     WHERE d.deal_id = c.deal_id
       AND (d.amount IS DISTINCT FROM c.total OR d.max_discount_pct IS DISTINCT FROM c.maxd);
    RETURN NULL;
END
$$;

CREATE TRIGGER bench_line_check BEFORE INSERT OR UPDATE OR DELETE ON salesmgmt.deal_line
    FOR EACH ROW EXECUTE FUNCTION products_bench.line_check();
CREATE TRIGGER bench_amount_row AFTER INSERT OR UPDATE OR DELETE ON salesmgmt.deal_line
    FOR EACH ROW EXECUTE FUNCTION products_bench.amount_row();
CREATE TRIGGER bench_amount_stmt_insert AFTER INSERT ON salesmgmt.deal_line
    REFERENCING NEW TABLE AS new_lines FOR EACH STATEMENT EXECUTE FUNCTION products_bench.amount_stmt();
CREATE TRIGGER bench_amount_stmt_update AFTER UPDATE ON salesmgmt.deal_line
    REFERENCING NEW TABLE AS new_lines FOR EACH STATEMENT EXECUTE FUNCTION products_bench.amount_stmt();

CREATE FUNCTION products_bench.use(p_variant text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t text;
    v_on text[] := CASE p_variant
        WHEN 'c' THEN ARRAY['deal_line_check', 'deal_line_amounts_insert', 'deal_line_amounts_update',
                            'deal_line_amounts_delete']
        WHEN 'ref_row' THEN ARRAY['bench_line_check', 'bench_amount_row']
        WHEN 'ref_stmt' THEN ARRAY['bench_line_check', 'bench_amount_stmt_insert', 'bench_amount_stmt_update']
        WHEN 'plain' THEN ARRAY[]::text[] END;
BEGIN
    IF v_on IS NULL THEN
        RAISE EXCEPTION 'unknown variant %', p_variant;
    END IF;
    FOREACH t IN ARRAY ARRAY['deal_line_check', 'deal_line_amounts_insert', 'deal_line_amounts_update',
                             'deal_line_amounts_delete', 'bench_line_check', 'bench_amount_row',
                             'bench_amount_stmt_insert', 'bench_amount_stmt_update'] LOOP
        EXECUTE format('ALTER TABLE salesmgmt.deal_line %s TRIGGER %I',
                       CASE WHEN t = ANY (v_on) THEN 'ENABLE' ELSE 'DISABLE' END, t);
    END LOOP;
    -- the amount guard lets only the C trigger write amounts
    EXECUTE format('ALTER TABLE salesmgmt.deal %s TRIGGER deal_amount_from_lines',
                   CASE WHEN p_variant = 'c' THEN 'ENABLE' ELSE 'DISABLE' END);
END
$$;

-- the extension's own triggers until a benchmark chooses
SELECT products_bench.use('c') \g /dev/null

-- 3 new lines for each of :bulk open deals, and the lines of :bulk others
CREATE TABLE products_bench.line_set AS
SELECT d.deal_id, v.position, v.product_id, v.quantity, v.discount_pct
  FROM (SELECT deal_id FROM salesmgmt.deal WHERE closed_at IS NULL ORDER BY deal_id LIMIT :bulk) d,
       LATERAL (VALUES (11, 4, 1 + (d.deal_id % 7)::numeric, 0::numeric), (12, 7, 1, 10), (13, 10, 1 + (d.deal_id % 30)::numeric, 5)) AS v(position, product_id, quantity, discount_pct);
CREATE TABLE products_bench.price_set AS
SELECT l.deal_id, l.line_id
  FROM salesmgmt.deal_line l
 WHERE l.deal_id IN (SELECT deal_id FROM salesmgmt.deal WHERE closed_at IS NULL ORDER BY deal_id DESC LIMIT :bulk);
CREATE INDEX ON products_bench.price_set (deal_id, line_id);
ANALYZE products_bench.line_set, products_bench.price_set;

-- The timed operations.  Each runs in a subtransaction that is rolled back,
-- so every run starts from the same data.
CREATE FUNCTION products_bench.bulk_insert(p_variant text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    BEGIN
        IF p_variant = 'plain' THEN
            -- prices by hand, then the amounts by hand
            INSERT INTO salesmgmt.deal_line (deal_id, position, product_id, quantity, unit_price, discount_pct)
            SELECT s.deal_id, s.position, s.product_id, s.quantity,
                   (SELECT e.unit_price FROM salesmgmt.price_book_entry e
                     WHERE e.price_book_id = b.price_book_id AND e.product_id = s.product_id
                       AND e.min_quantity <= s.quantity ORDER BY e.min_quantity DESC LIMIT 1),
                   s.discount_pct
              FROM products_bench.line_set s
              JOIN salesmgmt.deal d ON d.deal_id = s.deal_id
              JOIN salesmgmt.price_book b ON b.currency = d.currency AND b.is_default;
            UPDATE salesmgmt.deal d SET amount = s.total, max_discount_pct = s.maxd
              FROM (SELECT l.deal_id, sum(l.line_amount) AS total, max(l.discount_pct) AS maxd
                      FROM salesmgmt.deal_line l
                     WHERE l.deal_id IN (SELECT deal_id FROM products_bench.line_set) GROUP BY l.deal_id) s
             WHERE d.deal_id = s.deal_id;
        ELSE
            INSERT INTO salesmgmt.deal_line (deal_id, position, product_id, quantity, discount_pct)
            SELECT deal_id, position, product_id, quantity, discount_pct FROM products_bench.line_set;
        END IF;
        GET DIAGNOSTICS n = ROW_COUNT;
        RAISE EXCEPTION USING ERRCODE = 'P0004', MESSAGE = 'undo';
    EXCEPTION WHEN assert_failure THEN
        RETURN n;
    END;
END
$$;

CREATE FUNCTION products_bench.bulk_price(p_variant text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    BEGIN
        UPDATE salesmgmt.deal_line l SET unit_price = round(l.unit_price * 1.05, 2)
          FROM products_bench.price_set s WHERE s.deal_id = l.deal_id AND s.line_id = l.line_id;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF p_variant = 'plain' THEN
            UPDATE salesmgmt.deal d SET amount = s.total, max_discount_pct = s.maxd
              FROM (SELECT l.deal_id, sum(l.line_amount) AS total, max(l.discount_pct) AS maxd
                      FROM salesmgmt.deal_line l
                     WHERE l.deal_id IN (SELECT deal_id FROM products_bench.price_set) GROUP BY l.deal_id) s
             WHERE d.deal_id = s.deal_id;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'P0004', MESSAGE = 'undo';
    EXCEPTION WHEN assert_failure THEN
        RETURN n;
    END;
END
$$;

-- product_affinity in plain SQL: families per account, then a self-join
CREATE FUNCTION products_bench.affinity(p_since date DEFAULT NULL)
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

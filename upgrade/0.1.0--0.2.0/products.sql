-- products: the deal columns that line items maintain (src/core.sql; their
-- constraint and triggers are in src/product.sql), quotas per product family,
-- and the two quota views that split deals by their lines.
ALTER TABLE salesmgmt.deal ADD COLUMN price_book_id bigint;
ALTER TABLE salesmgmt.deal ADD COLUMN max_discount_pct numeric(5,2);
COMMENT ON COLUMN salesmgmt.deal.price_book_id IS 'Price book that prices the deal''s lines (one of the deal''s currency); null for the default book of the currency.';
COMMENT ON COLUMN salesmgmt.deal.max_discount_pct IS 'Largest discount_pct of the deal''s lines, maintained with the lines (approval rules can test it); null without lines.';

-- quotas per product family
ALTER TABLE salesmgmt.quota ADD COLUMN product_family text
    CONSTRAINT quota_product_family_not_blank CHECK (btrim(product_family) <> '');
ALTER TABLE salesmgmt.quota DROP CONSTRAINT quota_unique_period;
ALTER TABLE salesmgmt.quota ADD CONSTRAINT quota_unique_period
    UNIQUE NULLS NOT DISTINCT (rep_id, team_id, period_start, period_end, product_family);
COMMENT ON COLUMN salesmgmt.quota.product_family IS 'Product family the target is for (product.family): only that family''s share of each deal counts toward it; null for all products.';

-- quota_attainment (src/analytics.sql) and target_pacing (src/kpi.sql)
-- split each deal by its lines for a family quota; product_family added at
-- the end of both
-- The share of a deal that counts toward a quota of a product family.
-- PL/pgSQL: its body is checked when it runs, and the deal lines it reads
-- are created later in the install script (src/product.sql).
CREATE FUNCTION salesmgmt.deal_family_share(p_deal_id bigint, p_family text)
RETURNS numeric
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_family IS NULL THEN
        RETURN 1;
    END IF;
    RETURN (SELECT coalesce(sum(l.line_amount) FILTER (WHERE p.family = p_family)
                            / nullif(sum(l.line_amount), 0), 0)
              FROM salesmgmt.deal_line l
              JOIN salesmgmt.product p ON p.product_id = l.product_id
             WHERE l.deal_id = p_deal_id);
END
$$;
COMMENT ON FUNCTION salesmgmt.deal_family_share(bigint, text) IS 'Share (0..1) of a deal''s line amounts that belongs to a product family: what of the deal counts toward a quota of that family (quota.product_family); 1 for a null family (all products), 0 for a deal without lines of it.';

CREATE OR REPLACE VIEW salesmgmt.quota_attainment WITH (security_invoker = true) AS
WITH won_credit AS (
    SELECT f.deal_id, coalesce(s.rep_id, f.owner_rep_id) AS rep_id, f.closed_at::date AS day,
           f.amount_reporting * coalesce(s.share, 1) AS amount
      FROM salesmgmt.deal_facts f
      LEFT JOIN salesmgmt.deal_split s ON s.deal_id = f.deal_id
     WHERE f.outcome = 'won'
),
won AS (
    SELECT qr.quota_id,
           sum(w.amount * CASE WHEN q.product_family IS NULL THEN 1
                               ELSE salesmgmt.deal_family_share(w.deal_id, q.product_family) END) AS amount
      FROM salesmgmt.quota_rep qr
      JOIN salesmgmt.quota q ON q.quota_id = qr.quota_id
      JOIN won_credit w ON w.rep_id = qr.rep_id AND w.day BETWEEN qr.period_start AND qr.period_end
     GROUP BY qr.quota_id
),
figures AS (
    SELECT q.quota_id, q.rep_id, q.team_id, q.period_start, q.period_end, q.product_family,
           CASE WHEN r.rate IS NULL
                THEN salesmgmt.convert_amount(q.amount, q.currency, salesmgmt.reporting_currency(), q.period_start)
                WHEN r.inverse THEN q.amount / r.rate
                ELSE q.amount * r.rate END AS quota_amount,
           coalesce(w.amount, 0) AS won_amount,
           q.period_end - q.period_start + 1 AS period_days,
           least(greatest(current_date - q.period_start + 1, 0), q.period_end - q.period_start + 1) AS elapsed_days
      FROM salesmgmt.quota q
      LEFT JOIN salesmgmt.reporting_rate r
             ON r.currency = q.currency AND q.period_start >= r.valid_from AND q.period_start < r.valid_until
      LEFT JOIN won w ON w.quota_id = q.quota_id
)
SELECT CASE WHEN rep_id IS NOT NULL THEN 'rep' ELSE 'team' END AS level,
       quota_id, rep_id, team_id, period_start, period_end,
       round(quota_amount, 2) AS quota_amount,
       round(won_amount, 2) AS won_amount,
       round(won_amount / nullif(quota_amount, 0), 4) AS attainment,
       round(greatest(quota_amount - won_amount, 0), 2) AS remaining_amount,
       period_days, elapsed_days,
       round(elapsed_days::numeric / period_days, 4) AS elapsed_share,
       round(won_amount * period_days / nullif(quota_amount * elapsed_days, 0), 4) AS pacing,
       round(won_amount * period_days / nullif(elapsed_days, 0), 2) AS projected_amount,
       salesmgmt.reporting_currency() AS currency,
       product_family
  FROM figures;
COMMENT ON VIEW salesmgmt.quota_attainment IS 'Per quota: the amount won in its period so far (credited by split shares; a team quota counts the reps of the team and all sub-teams; a product-family quota only that family''s share of each deal), attainment won / quota, and pacing: attainment against the share of the period elapsed.';
COMMENT ON COLUMN salesmgmt.quota_attainment.won_amount IS 'Credited amount of the deals won with closed_at in the period, reporting currency; for a product-family quota the family''s share of each deal (deal_family_share).';
COMMENT ON COLUMN salesmgmt.quota_attainment.product_family IS 'Product family of the quota; null for all products.';

CREATE OR REPLACE VIEW salesmgmt.target_pacing WITH (security_invoker = true) AS
SELECT q.quota_id,
       q.rep_id,
       q.team_id,
       q.period_start,
       q.period_end,
       q.amount,
       q.currency,
       a.attained,
       p.elapsed_pct,
       round(q.amount * p.elapsed_pct / 100, 2) AS expected,
       g.attained_pct,
       g.attained_pct - p.elapsed_pct AS gap_points,
       CASE WHEN g.attained_pct IS NULL OR g.attained_pct >= p.elapsed_pct THEN 'on_track'
            WHEN g.attained_pct > p.elapsed_pct - 10 THEN 'cautioned'
            ELSE 'off_track' END AS status,
       q.product_family
  FROM salesmgmt.quota q
  CROSS JOIN LATERAL (
        SELECT round(least(greatest(current_date - q.period_start, 0), q.period_end - q.period_start + 1)::numeric
                     * 100 / (q.period_end - q.period_start + 1), 2) AS elapsed_pct) p
  CROSS JOIN LATERAL (
        WITH RECURSIVE teams(team_id) AS (
            SELECT q.team_id WHERE q.team_id IS NOT NULL
            UNION
            SELECT t.team_id FROM salesmgmt.team t JOIN teams ON t.parent_team_id = teams.team_id
        ), reps(rep_id) AS (
            SELECT q.rep_id WHERE q.rep_id IS NOT NULL
            UNION ALL
            SELECT r.rep_id FROM salesmgmt.rep r JOIN teams ON r.team_id = teams.team_id
        ), credit(deal_id, amount, currency, closed_at) AS (
            -- deals without splits credit their owner in full
            SELECT d.deal_id, d.amount, d.currency, d.closed_at
              FROM reps
              JOIN salesmgmt.deal d ON d.owner_rep_id = reps.rep_id
              JOIN salesmgmt.stage st ON st.stage_id = d.stage_id AND st.outcome = 'won'
             WHERE d.closed_at >= q.period_start::timestamptz
               AND d.closed_at < (q.period_end + 1)::timestamptz
               AND NOT EXISTS (SELECT 1 FROM salesmgmt.deal_split sp WHERE sp.deal_id = d.deal_id)
            UNION ALL
            SELECT d.deal_id, d.amount * sp.share, d.currency, d.closed_at
              FROM reps
              JOIN salesmgmt.deal_split sp ON sp.rep_id = reps.rep_id
              JOIN salesmgmt.deal d ON d.deal_id = sp.deal_id
              JOIN salesmgmt.stage st ON st.stage_id = d.stage_id AND st.outcome = 'won'
             WHERE d.closed_at >= q.period_start::timestamptz
               AND d.closed_at < (q.period_end + 1)::timestamptz
        )
        SELECT round(coalesce(sum(CASE WHEN c.currency = q.currency THEN c.amount
                                       ELSE salesmgmt.convert_amount(c.amount, c.currency, q.currency, c.closed_at::date) END
                                  * CASE WHEN q.product_family IS NULL THEN 1
                                         ELSE salesmgmt.deal_family_share(c.deal_id, q.product_family) END),
                              0), 2) AS attained
          FROM credit c) a
  CROSS JOIN LATERAL (
        SELECT CASE WHEN q.amount > 0 THEN round(a.attained * 100 / q.amount, 2) END AS attained_pct) g;
COMMENT ON VIEW salesmgmt.target_pacing IS 'Each quota: won so far against the straight-line expectation for the elapsed share of its period (a product-family quota counts only that family''s share of each deal); status on_track, cautioned (behind) or off_track (10 points or more behind).';
COMMENT ON COLUMN salesmgmt.target_pacing.attained IS 'Won so far: credited amounts of deals won in the period, converted at each deal''s close date; for a product-family quota the family''s share of each deal (deal_family_share).';
COMMENT ON COLUMN salesmgmt.target_pacing.product_family IS 'Product family of the quota; null for all products.';


-- commission measure: quotas and commission plans may measure new ARR
-- (deal_new_arr: new plus expansion, net of contraction) instead of the
-- booked amount; clawback lines name the subscription that churned.  Plans
-- may weigh product families (family_weights), lines show the split
-- (families), SPIFF conditions may name products and families.
-- Columns at the end of their tables, in the order of src/core.sql and
-- src/commission.sql.
-- family_weights of a plan: an object of non-negative numbers
CREATE FUNCTION salesmgmt._commission_family_weights_valid(p jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN p IS NULL OR (pg_catalog.jsonb_typeof(p) = 'object'
                     AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_each(p) e
                                      WHERE pg_catalog.jsonb_typeof(e.value) <> 'number'
                                         OR (e.value)::numeric < 0));
COMMENT ON FUNCTION salesmgmt._commission_family_weights_valid(jsonb) IS 'Internal: true for a null commission_plan.family_weights or an object whose values are numbers of at least 0.';
ALTER TABLE salesmgmt.commission_plan ADD COLUMN credit_measure text NOT NULL DEFAULT 'booked'
    CONSTRAINT commission_plan_credit_measure_valid CHECK (credit_measure IN ('booked', 'new_arr'));
ALTER TABLE salesmgmt.commission_plan ADD COLUMN family_weights jsonb
    CONSTRAINT commission_plan_family_weights_valid CHECK (salesmgmt._commission_family_weights_valid(family_weights));
ALTER TABLE salesmgmt.commission_plan ADD CONSTRAINT commission_plan_new_arr_booking
    CHECK (credit_measure = 'booked' OR basis = 'booking');
ALTER TABLE salesmgmt.commission_line ADD COLUMN subscription_id bigint;
ALTER TABLE salesmgmt.commission_line ADD COLUMN families jsonb;
ALTER TABLE salesmgmt.quota ADD COLUMN measure text NOT NULL DEFAULT 'booked'
    CONSTRAINT quota_measure_valid CHECK (measure IN ('booked', 'new_arr'));
ALTER TABLE salesmgmt.quota DROP CONSTRAINT quota_unique_period;
ALTER TABLE salesmgmt.quota ADD CONSTRAINT quota_unique_period
    UNIQUE NULLS NOT DISTINCT (rep_id, team_id, period_start, period_end, product_family, measure);
COMMENT ON COLUMN salesmgmt.commission_plan.credit_measure IS 'What a won deal credits: booked (its amount) or new_arr (the new ARR it brought, new plus expansion net of contraction, salesmgmt.deal_new_arr; booking basis only). On a new_arr plan a subscription that churns (cancelled, or its renewal lost) within the clawback window of the win claws back its part of what was paid on the deal.';
COMMENT ON COLUMN salesmgmt.commission_plan.family_weights IS 'Weights by product family, e.g. {"Services": 0.5, "Analytics": 1.5}: a deal with lines credits each family''s part of its line amounts times the family''s weight (1 for a family not named), so the family earns the tier rate times its weight and counts as much toward attainment; the ledger line shows the split (commission_line.families). Null: every family weighs 1.';
COMMENT ON COLUMN salesmgmt.commission_line.families IS 'Lines of credit of a plan with family_weights on a deal with lines: per product family its line amount and weight ({"Services": {"amount": 2000.00, "weight": 0.5}, ...}); the credit is the weighted sum (times share, and the payment''s part of the deal on payment basis).';
COMMENT ON COLUMN salesmgmt.commission_spiff.condition IS 'Condition on the deal in the rule language (docs/rules.md): equality and containment as to_jsonb(deal) @> condition, e.g. {"extra": {"product": "analytics"}} or {"pipeline_id": 2}, and comparisons, in, all/any/not, e.g. {"amount": {">": 100000}}; at the top level also product_family, product_sku or product_id (a value or an array of values: the deal has a line of such a product); {} matches every deal. Keys must be deal columns or those three (22023 otherwise).';
COMMENT ON COLUMN salesmgmt.commission_line.subscription_id IS 'Clawbacks of reason churned: the subscription that churned (its part of the deal''s new ARR is clawed back).';
COMMENT ON COLUMN salesmgmt.commission_line.reason IS 'Why the line exists when kind does not say it all: late, changed, moved, removed (adjustments); lost, reopened, deleted, refund, churned (clawbacks); advance, guarantee, recovery (draws).';
COMMENT ON FUNCTION salesmgmt.commission_plan_check() IS 'Trigger: the basis, period, credit measure and family weights of a plan that paid final lines cannot change (SM010); rates, tiers and caps can, and apply to periods run afterwards.';
COMMENT ON COLUMN salesmgmt.quota.measure IS 'What counts toward the target: booked (the credited amount of won deals) or new_arr (the new ARR of won deals: new plus expansion, net of contraction, from the subscription versions the deals made; deal_new_arr).';

CREATE FUNCTION salesmgmt.deal_new_arr(p_deal_id bigint, p_currency text DEFAULT NULL,
                                       p_subscription_id bigint DEFAULT NULL)
RETURNS numeric
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_currency text;
    v_day date;
BEGIN
    SELECT d.currency, coalesce(d.closed_at::date, current_date) INTO v_currency, v_day
      FROM salesmgmt.deal d WHERE d.deal_id = p_deal_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_currency := coalesce(p_currency, v_currency);
    RETURN (SELECT coalesce(sum(CASE WHEN v.currency = v_currency THEN x.arr
                                     ELSE salesmgmt.convert_amount(x.arr, v.currency, v_currency, v_day) END), 0)
              FROM salesmgmt.subscription_version v
              CROSS JOIN LATERAL (
                    SELECT 12 * (v.mrr - coalesce((SELECT p.mrr FROM salesmgmt.subscription_version p
                                                    WHERE p.subscription_id = v.subscription_id
                                                      AND p.version = v.version - 1), 0)) AS arr) x
             WHERE v.deal_id = p_deal_id
               AND v.kind IN ('new', 'expansion', 'contraction')
               AND (p_subscription_id IS NULL OR v.subscription_id = p_subscription_id));
END
$$;
COMMENT ON FUNCTION salesmgmt.deal_new_arr(bigint, text, bigint) IS 'New ARR of a deal: 12 times the MRR change of every subscription version the deal made of kind new, expansion or contraction (contraction negative; renewals, reactivations and cancellations do not count), converted from the subscription''s currency into p_currency (null: the deal''s currency) at the deal''s close date; only the versions of subscription p_subscription_id when it is given. 0 for a deal without such versions, null for an unknown deal.';

-- quota_attainment (src/analytics.sql) and target_pacing (src/kpi.sql)
-- honour the quota's measure; measure added at the end of both
CREATE OR REPLACE VIEW salesmgmt.quota_attainment WITH (security_invoker = true) AS
WITH won_credit AS (
    SELECT f.deal_id, coalesce(s.rep_id, f.owner_rep_id) AS rep_id, f.closed_at::date AS day,
           f.amount_reporting * coalesce(s.share, 1) AS amount, coalesce(s.share, 1) AS share
      FROM salesmgmt.deal_facts f
      LEFT JOIN salesmgmt.deal_split s ON s.deal_id = f.deal_id
     WHERE f.outcome = 'won'
),
won AS (
    SELECT qr.quota_id,
           sum(CASE WHEN q.measure = 'new_arr'
                    THEN salesmgmt.deal_new_arr(w.deal_id, salesmgmt.reporting_currency()) * w.share
                    ELSE w.amount END
               * CASE WHEN q.product_family IS NULL THEN 1
                               ELSE salesmgmt.deal_family_share(w.deal_id, q.product_family) END) AS amount
      FROM salesmgmt.quota_rep qr
      JOIN salesmgmt.quota q ON q.quota_id = qr.quota_id
      JOIN won_credit w ON w.rep_id = qr.rep_id AND w.day BETWEEN qr.period_start AND qr.period_end
     GROUP BY qr.quota_id
),
figures AS (
    SELECT q.quota_id, q.rep_id, q.team_id, q.period_start, q.period_end, q.product_family, q.measure,
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
       product_family,
       measure
  FROM figures;
COMMENT ON COLUMN salesmgmt.quota_attainment.won_amount IS 'Credited amount of the deals won with closed_at in the period, reporting currency (for a new_arr quota their new ARR, deal_new_arr, times the split share); for a product-family quota the family''s share of each deal (deal_family_share).';
COMMENT ON COLUMN salesmgmt.quota_attainment.measure IS 'What the quota measures (quota.measure): booked amount or new_arr.';

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
       q.product_family,
       q.measure
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
            SELECT d.deal_id, CASE WHEN q.measure = 'new_arr' THEN salesmgmt.deal_new_arr(d.deal_id) ELSE d.amount END,
                   d.currency, d.closed_at
              FROM reps
              JOIN salesmgmt.deal d ON d.owner_rep_id = reps.rep_id
              JOIN salesmgmt.stage st ON st.stage_id = d.stage_id AND st.outcome = 'won'
             WHERE d.closed_at >= q.period_start::timestamptz
               AND d.closed_at < (q.period_end + 1)::timestamptz
               AND NOT EXISTS (SELECT 1 FROM salesmgmt.deal_split sp WHERE sp.deal_id = d.deal_id)
            UNION ALL
            SELECT d.deal_id,
                   CASE WHEN q.measure = 'new_arr' THEN salesmgmt.deal_new_arr(d.deal_id) ELSE d.amount END * sp.share,
                   d.currency, d.closed_at
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
COMMENT ON COLUMN salesmgmt.target_pacing.attained IS 'Won so far: credited amounts of deals won in the period (for a new_arr quota their new ARR, deal_new_arr), converted at each deal''s close date; for a product-family quota the family''s share of each deal (deal_family_share).';
COMMENT ON COLUMN salesmgmt.target_pacing.attained_pct IS 'Attained in percent of the quota; null for a zero quota.';
COMMENT ON COLUMN salesmgmt.target_pacing.measure IS 'What the quota measures (quota.measure): booked amount or new_arr.';

-- the explanation of a line shows the split of its credit by product family
CREATE OR REPLACE FUNCTION salesmgmt.commission_line_explanation(l salesmgmt.commission_line) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prefix text := CASE WHEN l.kind = 'adjustment' THEN format('adjustment (%s) of ', l.reason) ELSE '' END;
    v_event  text;
    v_what   text;
    v_tiers  text;
    v_cap    numeric;
BEGIN
    -- the credited event: a won deal, a payment or a refund
    IF l.deal_id IS NOT NULL THEN
        IF l.payment_id IS NOT NULL AND l.kind <> 'clawback' THEN
            v_event := format('%s %s of deal %s on %s',
                              coalesce((SELECT p.kind FROM salesmgmt.payment p WHERE p.payment_id = l.payment_id), 'payment'),
                              l.payment_id, l.deal_id, to_char(l.credited_at, 'YYYY-MM-DD'));
        ELSE
            v_event := format('deal %s won %s', l.deal_id, to_char(l.credited_at, 'YYYY-MM-DD'));
        END IF;
        IF l.share IS NOT NULL AND l.share <> 1 THEN
            v_event := v_event || format(' (share %s)', salesmgmt._commission_pct(l.share));
        END IF;
    END IF;

    IF l.kind IN ('earned', 'adjustment') AND l.spiff_id IS NULL AND l.source_rep_id IS NULL THEN
        IF l.tier IS NULL THEN
            v_tiers := 'the plan has no tiers';
        ELSIF l.tiers IS NULL THEN
            v_tiers := format('tier %s: %s x %s = %s', l.tier, salesmgmt._commission_money(l.credit),
                              salesmgmt._commission_pct(l.rate),
                              salesmgmt._commission_money(l.earned_after - l.earned_before));
        ELSE
            SELECT string_agg(format('tier %s [%s, %s) %s %s: %s x %s = %s%s',
                                     t->>'tier',
                                     salesmgmt._commission_pct((t->>'from')::numeric),
                                     coalesce(salesmgmt._commission_pct((t->>'to')::numeric), 'up'),
                                     salesmgmt._commission_pct((t->>'rate')::numeric), t->>'mode',
                                     salesmgmt._commission_money((t->>'credit')::numeric),
                                     salesmgmt._commission_pct((t->>'rate')::numeric),
                                     salesmgmt._commission_money((t->>'amount')::numeric),
                                     CASE WHEN t ? 'catch_up'
                                          THEN ', catch-up ' || salesmgmt._commission_money((t->>'catch_up')::numeric)
                                          ELSE '' END), '; ' ORDER BY n)
              INTO v_tiers
              FROM jsonb_array_elements(l.tiers) WITH ORDINALITY AS e(t, n);
        END IF;
        IF l.capped THEN
            SELECT p.cap INTO v_cap FROM salesmgmt.commission_plan p WHERE p.plan_id = l.plan_id;
        END IF;
        RETURN format('%s%s: credit %s%s; %s; %s; earnings of the period %s -> %s%s',
                      v_prefix, v_event, salesmgmt._commission_money(l.credit),
                      CASE WHEN l.families IS NOT NULL THEN
                           ' (by product family: ' || (SELECT string_agg(format('%s %s x %s', f.key,
                                   salesmgmt._commission_money((f.value->>'amount')::numeric),
                                   salesmgmt._commission_pct((f.value->>'weight')::numeric)), ', ' ORDER BY f.key)
                                 FROM jsonb_each(l.families) f) || ')'
                           ELSE '' END,
                      CASE WHEN l.quota IS NULL OR l.quota = 0 THEN 'no quota, the first tier applies'
                           ELSE format('attainment %s -> %s of quota %s',
                                       salesmgmt._commission_pct(l.attainment_before),
                                       salesmgmt._commission_pct(l.attainment_after),
                                       salesmgmt._commission_money(l.quota)) END,
                      v_tiers,
                      salesmgmt._commission_money(l.earned_before), salesmgmt._commission_money(l.earned_after),
                      CASE WHEN l.capped THEN ', capped at ' || coalesce(salesmgmt._commission_money(v_cap), 'the cap') ELSE '' END);
    END IF;

    -- what a SPIFF, override or clawback line is about
    IF l.spiff_id IS NOT NULL THEN
        v_what := format('SPIFF "%s"', coalesce((SELECT s.name FROM salesmgmt.commission_spiff s WHERE s.spiff_id = l.spiff_id),
                                               l.spiff_id::text));
    ELSIF l.source_rep_id IS NOT NULL THEN
        v_what := format('override on the credit of %s (rep %s)',
                         coalesce((SELECT r.name FROM salesmgmt.rep r WHERE r.rep_id = l.source_rep_id), 'a rep'),
                         l.source_rep_id);
    ELSE
        v_what := 'commission';
    END IF;

    RETURN CASE l.kind
        WHEN 'spiff' THEN format('%s on %s: %s x %s = %s', v_what, v_event, salesmgmt._commission_money(l.base),
                                 salesmgmt._commission_pct(l.rate), salesmgmt._commission_money(l.amount))
        WHEN 'override' THEN format('%s, %s: %s x %s = %s', v_what, v_event, salesmgmt._commission_money(l.base),
                                    salesmgmt._commission_pct(l.rate), salesmgmt._commission_money(l.amount))
        WHEN 'adjustment' THEN format('%s%s, %s: %s x %s = %s', v_prefix, v_what, v_event,
                                      salesmgmt._commission_money(l.base), salesmgmt._commission_pct(l.rate),
                                      salesmgmt._commission_money(l.amount))
        WHEN 'clawback' THEN format('clawback of %s on %s: %s %s (%s days after the win), %s of %s paid = %s',
                                    v_what, v_event,
                                    CASE l.reason WHEN 'refund' THEN format('refund %s paid', l.payment_id)
                                                  WHEN 'deleted' THEN 'deleted'
                                                  ELSE l.reason END,
                                    to_char(l.reversed_at, 'YYYY-MM-DD'),
                                    extract(day FROM l.reversed_at - l.credited_at)::int,
                                    salesmgmt._commission_pct(l.rate), salesmgmt._commission_money(l.base),
                                    salesmgmt._commission_money(l.amount))
        WHEN 'draw' THEN CASE l.reason
            WHEN 'advance' THEN format('recoverable draw %s advanced: %s', l.draw_id, salesmgmt._commission_money(l.amount))
            WHEN 'recovery' THEN format('recovery of outstanding recoverable draws from the earnings of the period (%s): %s',
                                        salesmgmt._commission_money(l.base), salesmgmt._commission_money(l.amount))
            WHEN 'guarantee' THEN format('guaranteed draw %s tops up the earnings of the period (%s): %s',
                                         l.draw_id, salesmgmt._commission_money(l.base), salesmgmt._commission_money(l.amount))
            ELSE 'draw' END
        ELSE l.kind END;
END
$$;

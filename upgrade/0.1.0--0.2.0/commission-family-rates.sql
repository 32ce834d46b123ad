-- 0.1.0 -> 0.2.0: rates and tier tables per product family (issue 17).
-- commission_plan.family_rates (at the end of the table, after
-- family_weights, as in src/commission.sql), its C check trigger, the
-- comments, and the explanation of a line earned by family.
ALTER TABLE salesmgmt.commission_plan ADD COLUMN family_rates jsonb;
COMMENT ON COLUMN salesmgmt.commission_plan.family_rates IS 'Rates or tier tables by product family, e.g. {"Services": 0.03, "Analytics": [{"from": 0, "to": 1, "rate": 0.05}, {"from": 1, "rate": 0.08}]}: a flat rate, or tiers of the shape of commission_tier (from and to in attainment, to absent on the open-ended top, rate, mode defaulting to the plan''s tier_mode). Each family''s part of a deal''s credit (its weighted line amounts over the deal''s, the split family_weights use) earns by its own table at the rep''s attainment on the plan (the plan period''s credit over quota, the one that picks the plan''s tier); families not named, and deals without lines, earn by the plan''s tiers; the cap applies to the sum. Checked when written (22023); may change like tiers (periods run afterwards use the new rates). Null: every family earns by the plan''s tiers.';
COMMENT ON COLUMN salesmgmt.commission_line.families IS 'Lines of credit of a plan with family_weights or family_rates on a deal with lines: per product family its line amount and weight ({"Services": {"amount": 2000.00, "weight": 0.5}, ...}); the credit is the weighted sum (times share, and the payment''s part of the deal on payment basis). With family_rates also the family''s part of the credit (credit), the table it earns by (table: family or plan), its tier after the line (tier, and tier_before when the line crossed a tier of that table), that tier''s rate, and what the part earned exactly (earned); the line''s tiers column is then null.';

CREATE FUNCTION salesmgmt.commission_plan_rates_check() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'sm_commission_plan_rates_check';
COMMENT ON FUNCTION salesmgmt.commission_plan_rates_check() IS 'Trigger: family_rates of a plan is an object of product families, each a rate of at least 0 or tiers of the shape of commission_tier (known keys, rates of at least 0, listed by attainment from 0 without gaps or overlaps, the last open-ended); 22023 with a hint otherwise.';
CREATE TRIGGER commission_plan_family_rates_valid
    BEFORE INSERT OR UPDATE ON salesmgmt.commission_plan
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.commission_plan_rates_check();

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
    v_rates  boolean := l.families IS NOT NULL
                        AND EXISTS (SELECT 1 FROM jsonb_each(l.families) f WHERE f.value ? 'table');
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
        IF v_rates THEN
            -- family_rates: each family's part of the credit by its table
            SELECT 'by product family: ' || string_agg(format('%s %s x %s = %s by %s, %s: %s',
                       f.key, salesmgmt._commission_money((f.value->>'amount')::numeric),
                       salesmgmt._commission_pct((f.value->>'weight')::numeric),
                       salesmgmt._commission_money((f.value->>'credit')::numeric),
                       CASE f.value->>'table' WHEN 'family' THEN 'its own rates' ELSE 'the plan''s tiers' END,
                       CASE WHEN NOT f.value ? 'tier' THEN 'no tiers'
                            WHEN f.value ? 'tier_before'
                            THEN format('tiers %s -> %s (%s)', f.value->>'tier_before', f.value->>'tier',
                                        salesmgmt._commission_pct((f.value->>'rate')::numeric))
                            ELSE format('tier %s at %s', f.value->>'tier',
                                        salesmgmt._commission_pct((f.value->>'rate')::numeric)) END,
                       salesmgmt._commission_money((f.value->>'earned')::numeric)), '; ' ORDER BY f.key)
              INTO v_tiers
              FROM jsonb_each(l.families) f;
        ELSIF l.tier IS NULL THEN
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
                      CASE WHEN l.families IS NOT NULL AND NOT v_rates THEN
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

-- bench/commission_reference_setbased.sql: the SET-BASED reference of
-- salesmgmt.run_commissions, the one bench/commission.sh publishes its
-- ratio against (bench/commission_reference.sql is the row-by-row PL/pgSQL
-- reference, kept beside it and labelled as such).
--
-- Scope: the same as the row-by-row reference and the benchmark's case: a
-- period run for the first time, made of whole plan periods, with no
-- finalized periods before it.  So there is no credit booked by other runs
-- to continue from, and no corrections of finalized periods (adjustments,
-- clawbacks of reopened, lost or deleted deals); the benchmark has none.
-- Everything else is here: splits, currency conversion at the rate of the
-- day (the pair, else the reverse pair divided by), tiers of any mix of
-- marginal and retroactive modes (decelerators, catch-ups, accelerators)
-- with cumulative rounding, caps, quotas prorated by days, SPIFFs (flat and
-- rate, booking and payment basis), overrides up the team tree, refund
-- clawbacks within the window, recoverable draws and guarantees.
--
-- How a strong DBA writes it, one statement per kind of line:
--   * the period's credited events are read once into a temporary table,
--     each with its credit converted through a table of the rate of every
--     day of the period (a hash join, no function call per event; payments
--     in another currency than their deal convert with convert_amount, as
--     the C engine does), the rep's plan on the day and its plan period;
--   * earned lines: an earned line depends only on the cumulative credit
--     of its rep, plan and plan period, so a window sum gives the credit
--     before and after each event, and E(x) is linear on each tier,
--     E(x) = c_k * quota + r_k * x, with c_k a constant of the plan
--     (the offsets a_k of docs/commissions.md are c_k * quota): the tier
--     before and after is a hash join on the plan's few tiers, the amount
--     round(least(E(x'), cap), 2) - round(least(E(x), cap), 2); only lines
--     that cross tiers build their tiers JSON (a subquery over the tiers
--     crossed);
--   * SPIFF lines and override lines: one INSERT ... SELECT each;
--   * refund clawbacks: a refund claws back the refunded fraction of what
--     is left of each component paid on the deal, so the refunds of a deal
--     depend on each other; a recursive CTE takes the i-th refund of every
--     refunded deal in step i (as many steps as a deal has refunds), all
--     components at once;
--   * draws: advances, recoveries and guarantees in one INSERT ... SELECT
--     (guarantees spread over a rep's guaranteed draws with a running sum).
-- Nothing is handled row by row.  Differences in corner cases the benchmark
-- cannot reach: a missing exchange rate gives a null credit here where the
-- C engine raises 22023; a comp of a refunded deal whose lines were paid
-- under two plans takes the highest plan_id (as the row-by-row reference).

DROP SCHEMA IF EXISTS commission_setbased CASCADE;
CREATE SCHEMA commission_setbased;

-- the reference's own ledger, shaped and indexed like salesmgmt's
CREATE TABLE commission_setbased.line
    (LIKE salesmgmt.commission_line INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS INCLUDING INDEXES);

CREATE FUNCTION commission_setbased.run(p_start date, p_end date)
RETURNS TABLE (rep_id bigint, credit numeric, quota numeric, attainment numeric,
               earned numeric, spiffs numeric, overrides numeric, adjustments numeric,
               clawbacks numeric, draws numeric, draw_recovery numeric, payout numeric)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_cur   char(3) := current_setting('salesmgmt.reporting_currency');
    v_from  timestamptz := p_start::timestamptz;
    v_to    timestamptz := (p_end + 1)::timestamptz;
BEGIN
    DELETE FROM commission_setbased.line l WHERE l.period_start = p_start AND l.period_end = p_end;
    IF to_regclass('pg_temp.sb_event') IS NOT NULL THEN    -- a second run in one transaction
        DROP TABLE pg_temp.sb_rate, pg_temp.sb_tier, pg_temp.sb_event, pg_temp.sb_state, pg_temp.sb_manager;
    END IF;

    -- the rate of every day of the period into the reporting currency:
    -- the pair's latest rate on or before the day, else the reverse pair's
    -- (each rate row covers the days up to the pair's next row)
    CREATE TEMP TABLE sb_rate ON COMMIT DROP AS
    WITH pair AS (
        SELECT r.currency AS code, r.valid_from, r.rate, false AS divide,
               lead(r.valid_from) OVER (PARTITION BY r.currency ORDER BY r.valid_from) AS next_from
          FROM salesmgmt.currency_rate r WHERE r.quote_currency = v_cur AND r.currency <> v_cur
        UNION ALL
        SELECT r.quote_currency, r.valid_from, r.rate, true,
               lead(r.valid_from) OVER (PARTITION BY r.quote_currency ORDER BY r.valid_from)
          FROM salesmgmt.currency_rate r WHERE r.currency = v_cur AND r.quote_currency <> v_cur)
    SELECT DISTINCT ON (p.code, g.day) p.code AS currency, g.day::date AS day, p.rate, p.divide
      FROM pair p
     CROSS JOIN LATERAL generate_series(greatest(p.valid_from, p_start)::timestamp,
                                        least(coalesce(p.next_from - 1, p_end), p_end)::timestamp,
                                        interval '1 day') AS g(day)
     WHERE p.valid_from <= p_end AND coalesce(p.next_from - 1, p_end) >= p_start
     ORDER BY p.code, g.day, p.divide;
    ANALYZE sb_rate;

    -- tiers of every plan: E_k(x) = c * quota + rate * x on tier k, where
    -- c restarts at 0 on the first tier and on every retroactive tier and
    -- adds (r_{k-1} - r_k) * from_k on a marginal one; with the
    -- neighbours' values the tiers JSON needs for catch-ups
    CREATE TEMP TABLE sb_tier ON COMMIT DROP AS
    WITH t AS (
        SELECT ct.plan_id, row_number() OVER w AS k, ct.attainment_from AS afrom, ct.attainment_to AS ato, ct.rate,
               coalesce(ct.mode, p.tier_mode) = 'retroactive' AS retro, lag(ct.rate) OVER w AS prev_rate
          FROM salesmgmt.commission_tier ct JOIN salesmgmt.commission_plan p USING (plan_id)
        WINDOW w AS (PARTITION BY ct.plan_id ORDER BY ct.attainment_from, ct.tier_id)),
    g AS (
        SELECT t.*, count(*) FILTER (WHERE t.k = 1 OR t.retro) OVER (PARTITION BY t.plan_id ORDER BY t.k) AS grp
          FROM t),
    c AS (
        SELECT g.*, sum(CASE WHEN g.k = 1 OR g.retro THEN 0 ELSE (g.prev_rate - g.rate) * g.afrom END)
                        OVER (PARTITION BY g.plan_id, g.grp ORDER BY g.k) AS c
          FROM g)
    SELECT c.plan_id, c.k, c.afrom, c.ato, c.rate, c.retro, c.c,
           lag(c.rate) OVER w AS prev_rate, lag(c.c) OVER w AS prev_c,
           lead(c.rate) OVER w AS next_rate, lead(c.c) OVER w AS next_c, lead(c.retro) OVER w AS next_retro
      FROM c
    WINDOW w AS (PARTITION BY c.plan_id ORDER BY c.k);
    ANALYZE sb_tier;

    -- the period's credited events, one row per credited rep, with credit,
    -- the rep's plan on the day (credited when the basis matches) and its
    -- plan period
    CREATE TEMP TABLE sb_event ON COMMIT DROP AS
    WITH e AS (
        SELECT coalesce(s.rep_id, d.owner_rep_id) AS rep_id, d.deal_id, NULL::bigint AS payment_id,
               d.closed_at AS at, d.closed_at::date AS day, d.amount * coalesce(s.share, 1::numeric) AS value,
               d.currency, s.share, 1 AS sign, NULL::numeric AS fraction, false AS is_payment
          FROM salesmgmt.deal d
          JOIN salesmgmt.stage st ON st.stage_id = d.stage_id AND st.outcome = 'won'
          LEFT JOIN salesmgmt.deal_split s ON s.deal_id = d.deal_id
         WHERE d.closed_at >= v_from AND d.closed_at < v_to
        UNION ALL
        SELECT coalesce(s.rep_id, d.owner_rep_id), p.deal_id, p.payment_id, p.paid_at, p.paid_at::date,
               p.amount * coalesce(s.share, 1::numeric), p.currency, s.share,
               CASE p.kind WHEN 'refund' THEN -1 ELSE 1 END,
               CASE WHEN d.amount > 0 THEN (CASE WHEN p.currency = d.currency THEN p.amount
                    ELSE salesmgmt.convert_amount(p.amount, p.currency, d.currency, p.paid_at::date) END) / d.amount END,
               true
          FROM salesmgmt.payment p
          JOIN salesmgmt.deal d ON d.deal_id = p.deal_id
          LEFT JOIN salesmgmt.deal_split s ON s.deal_id = d.deal_id
         WHERE p.paid_at >= v_from AND p.paid_at < v_to)
    SELECT e.rep_id, e.deal_id, e.payment_id, e.at, e.day, coalesce(e.share, 1::numeric) AS share,
           e.sign, e.fraction, e.is_payment,
           CASE WHEN e.currency = v_cur THEN e.value
                WHEN r.divide THEN e.value / r.rate ELSE e.value * r.rate END * e.sign AS credit,
           CASE WHEN (pl.basis = 'payment') = e.is_payment THEN pl.plan_id END AS plan_id,
           date_trunc(pl.period, e.day)::date AS pstart,
           (date_trunc(pl.period, e.day) + CASE pl.period WHEN 'month' THEN interval '1 month'
                WHEN 'quarter' THEN interval '3 months' ELSE interval '1 year' END - interval '1 day')::date AS pend
      FROM e
      LEFT JOIN sb_rate r ON r.currency = e.currency AND r.day = e.day
      LEFT JOIN salesmgmt.commission_assignment a
             ON a.rep_id = e.rep_id AND a.valid_from <= e.day AND coalesce(a.valid_to, 'infinity') >= e.day
      LEFT JOIN salesmgmt.commission_plan pl ON pl.plan_id = a.plan_id;
    ANALYZE sb_event;

    -- the plan periods met, with their quotas: the rep's quota rows that
    -- overlap, converted at their first day, prorated by days, to cents
    CREATE TEMP TABLE sb_state ON COMMIT DROP AS
    SELECT st.rep_id, st.plan_id, st.pstart, st.pend, q.quota
      FROM (SELECT DISTINCT e.rep_id, e.plan_id, e.pstart, e.pend FROM sb_event e WHERE e.plan_id IS NOT NULL) st
      LEFT JOIN LATERAL (
           SELECT sum(round(CASE WHEN x.ov = x.days THEN x.c ELSE x.c * x.ov / x.days END, 2)) AS quota
             FROM (SELECT salesmgmt.convert_amount(q.amount, q.currency, v_cur, q.period_start) AS c,
                          least(q.period_end, st.pend) - greatest(q.period_start, st.pstart) + 1 AS ov,
                          q.period_end - q.period_start + 1 AS days
                     FROM salesmgmt.quota q
                    WHERE q.rep_id = st.rep_id AND q.product_family IS NULL AND q.period_start <= st.pend AND q.period_end >= st.pstart) x) q ON true;
    ANALYZE sb_state;

    -- earned lines: cumulative credit per rep, plan and plan period
    INSERT INTO commission_setbased.line
           (period_start, period_end, rep_id, kind, deal_id, payment_id, plan_id, credited_at,
            plan_period_start, plan_period_end, share, credit, quota, attainment_before, attainment_after,
            tier, rate, tiers, earned_before, earned_after, capped, amount, currency)
    WITH cum AS (
        SELECT e.*, s.quota, CASE WHEN s.quota > 0 THEN s.quota END AS q,
               sum(e.credit) OVER (PARTITION BY e.rep_id, e.plan_id, e.pstart
                                   ORDER BY e.at, e.deal_id, e.payment_id NULLS FIRST ROWS UNBOUNDED PRECEDING) AS x1
          FROM sb_event e JOIN sb_state s USING (rep_id, plan_id, pstart)),
    x AS (
        SELECT cum.*, cum.x1 - cum.credit AS x0 FROM cum),
    ev AS (
        SELECT x.*, tb.k AS kb, ta.k AS ka, ta.rate AS rate_a,
               CASE WHEN tb.k IS NULL THEN 0 WHEN tb.k = 1 THEN tb.rate * x.x0 ELSE tb.c * x.q + tb.rate * x.x0 END AS e0,
               CASE WHEN ta.k IS NULL THEN 0 WHEN ta.k = 1 THEN ta.rate * x.x1 ELSE ta.c * x.q + ta.rate * x.x1 END AS e1,
               p.cap
          FROM x
          JOIN salesmgmt.commission_plan p ON p.plan_id = x.plan_id
          LEFT JOIN sb_tier tb ON tb.plan_id = x.plan_id
                AND (tb.k = 1 OR x.x0 >= tb.afrom * x.q) AND (tb.ato IS NULL OR x.q IS NULL OR x.x0 < tb.ato * x.q)
          LEFT JOIN sb_tier ta ON ta.plan_id = x.plan_id
                AND (ta.k = 1 OR x.x1 >= ta.afrom * x.q) AND (ta.ato IS NULL OR x.q IS NULL OR x.x1 < ta.ato * x.q))
    SELECT p_start, p_end, ev.rep_id, 'earned', ev.deal_id, ev.payment_id, ev.plan_id, ev.at,
           ev.pstart, ev.pend, ev.share, ev.credit, ev.quota,
           round(ev.x0 / ev.q, 4), round(ev.x1 / ev.q, 4),
           ev.ka, ev.rate_a,
           CASE WHEN ev.ka <> ev.kb THEN
               (SELECT jsonb_agg(jsonb_build_object(
                           'tier', t.k, 'from', t.afrom, 'to', t.ato, 'rate', t.rate,
                           'mode', CASE WHEN t.retro THEN 'retroactive' ELSE 'marginal' END,
                           'credit', sl.slice, 'amount', t.rate * sl.slice)
                       || CASE WHEN ev.ka > ev.kb AND t.k > ev.kb AND t.retro
                               THEN jsonb_build_object('catch_up', (t.c * ev.q + t.rate * t.afrom * ev.q)
                                                                 - (t.prev_c * ev.q + t.prev_rate * t.afrom * ev.q))
                               WHEN ev.ka < ev.kb AND t.k < ev.kb AND t.next_retro
                               THEN jsonb_build_object('catch_up', (t.c * ev.q + t.rate * t.ato * ev.q)
                                                                 - (t.next_c * ev.q + t.next_rate * t.ato * ev.q))
                               ELSE '{}'::jsonb END
                       ORDER BY CASE WHEN ev.ka > ev.kb THEN t.k ELSE -t.k END)
                  FROM sb_tier t
                 CROSS JOIN LATERAL (
                       SELECT CASE WHEN t.k = least(ev.ka, ev.kb) THEN least(ev.x0, ev.x1) ELSE t.afrom * ev.q END AS lo,
                              CASE WHEN t.k = greatest(ev.ka, ev.kb) THEN greatest(ev.x0, ev.x1) ELSE t.ato * ev.q END AS hi) b
                 CROSS JOIN LATERAL (SELECT CASE WHEN ev.ka > ev.kb THEN b.hi - b.lo ELSE b.lo - b.hi END AS slice) sl
                 WHERE t.plan_id = ev.plan_id AND t.k BETWEEN least(ev.ka, ev.kb) AND greatest(ev.ka, ev.kb))
           END,
           ev.e0, ev.e1, ev.cap IS NOT NULL AND ev.e1 > ev.cap,
           round(least(ev.e1, ev.cap), 2) - round(least(ev.e0, ev.cap), 2), v_cur
      FROM ev;

    -- SPIFF lines: the plan's SPIFFs valid on the day whose condition the
    -- deal contains (to_jsonb(deal) @> condition; the extra part tested on
    -- extra itself, so the row's JSON is built only for other keys)
    INSERT INTO commission_setbased.line
           (period_start, period_end, rep_id, kind, deal_id, payment_id, plan_id, spiff_id, credited_at,
            share, base, rate, amount, currency)
    SELECT p_start, p_end, e.rep_id, 'spiff', e.deal_id, e.payment_id, e.plan_id, x.spiff_id, e.at,
           e.share, v.base, v.rate, round(v.base * v.rate, 2), v_cur
      FROM sb_event e
      JOIN salesmgmt.commission_spiff x ON x.plan_id = e.plan_id
           AND coalesce(x.valid_from, '-infinity') <= e.day AND coalesce(x.valid_to, 'infinity') >= e.day
      JOIN salesmgmt.deal d ON d.deal_id = e.deal_id
     CROSS JOIN LATERAL (
           SELECT CASE WHEN x.rate IS NOT NULL THEN e.credit ELSE x.amount END AS base,
                  CASE WHEN x.rate IS NOT NULL THEN x.rate
                       WHEN e.is_payment THEN e.share * e.fraction * e.sign ELSE e.share END AS rate) v
     WHERE (NOT x.condition ? 'extra' OR d.extra @> (x.condition -> 'extra'))
       AND (x.condition - 'extra' = '{}'::jsonb OR to_jsonb(d) @> (x.condition - 'extra'))
       AND round(v.base * v.rate, 2) <> 0;

    -- override lines: every manager above the rep (nearest team up, each
    -- once, never the rep) on a plan with an override rate and the event's
    -- basis on the day
    CREATE TEMP TABLE sb_manager ON COMMIT DROP AS
    WITH RECURSIVE up AS (
        SELECT rp.rep_id, rp.team_id, 1 AS depth FROM salesmgmt.rep rp
        UNION ALL
        SELECT up.rep_id, t.parent_team_id, up.depth + 1
          FROM up JOIN salesmgmt.team t ON t.team_id = up.team_id
         WHERE t.parent_team_id IS NOT NULL AND up.depth < 1000)
    SELECT DISTINCT up.rep_id, t.manager_rep_id AS manager_id
      FROM up JOIN salesmgmt.team t ON t.team_id = up.team_id
     WHERE t.manager_rep_id IS NOT NULL AND t.manager_rep_id <> up.rep_id;
    ANALYZE sb_manager;
    INSERT INTO commission_setbased.line
           (period_start, period_end, rep_id, kind, deal_id, payment_id, plan_id, source_rep_id, credited_at,
            plan_period_start, plan_period_end, share, base, rate, amount, currency)
    SELECT p_start, p_end, m.manager_id, 'override', e.deal_id, e.payment_id, p.plan_id, e.rep_id, e.at,
           date_trunc(p.period, e.day)::date,
           (date_trunc(p.period, e.day) + CASE p.period WHEN 'month' THEN interval '1 month'
                WHEN 'quarter' THEN interval '3 months' ELSE interval '1 year' END - interval '1 day')::date,
           e.share, e.credit, p.override_rate, round(e.credit * p.override_rate, 2), v_cur
      FROM sb_event e
      JOIN sb_manager m ON m.rep_id = e.rep_id
      JOIN salesmgmt.commission_assignment a ON a.rep_id = m.manager_id
           AND a.valid_from <= e.day AND coalesce(a.valid_to, 'infinity') >= e.day
      JOIN salesmgmt.commission_plan p ON p.plan_id = a.plan_id
           AND p.override_rate > 0 AND (p.basis = 'payment') = e.is_payment
     WHERE round(e.credit * p.override_rate, 2) <> 0;

    -- refund clawbacks (booking basis, within the plan's window of the
    -- win): step i takes the i-th refund of every refunded deal and claws
    -- back its fraction of what each component (own commission, a SPIFF, an
    -- override on a rep below) was paid, never more than is left
    INSERT INTO commission_setbased.line
           (period_start, period_end, rep_id, kind, deal_id, payment_id, plan_id, spiff_id, source_rep_id,
            credited_at, credit, base, rate, reversed_at, amount, currency, reason)
    WITH RECURSIVE refund AS (
        SELECT p.deal_id, p.payment_id, p.paid_at,
               CASE WHEN d.amount > 0 THEN (CASE WHEN p.currency = d.currency THEN p.amount
                    ELSE salesmgmt.convert_amount(p.amount, p.currency, d.currency, p.paid_at::date) END) / d.amount END AS fraction,
               row_number() OVER (PARTITION BY p.deal_id ORDER BY p.paid_at, p.payment_id) AS i
          FROM salesmgmt.payment p JOIN salesmgmt.deal d ON d.deal_id = p.deal_id
         WHERE p.kind = 'refund' AND p.paid_at >= v_from AND p.paid_at < v_to),
    comp AS (
        SELECT l.rep_id, l.deal_id, l.spiff_id, l.source_rep_id, max(l.plan_id) AS plan_id,
               l.spiff_id IS NULL AND l.source_rep_id IS NULL AS own,
               sum(coalesce(l.credit, 0)) AS credit_net,
               coalesce(sum(l.credit) FILTER (WHERE l.kind <> 'clawback'), 0) AS credit_gross,
               sum(l.amount) AS amount_net,
               coalesce(sum(l.amount) FILTER (WHERE l.kind <> 'clawback'), 0) AS amount_gross,
               max(l.credited_at) AS at,
               array_agg(l.payment_id) FILTER (WHERE l.kind = 'clawback' AND l.reason = 'refund') AS clawed
          FROM commission_setbased.line l
         WHERE l.deal_id IN (SELECT r.deal_id FROM refund r) AND l.kind <> 'draw'
         GROUP BY l.rep_id, l.deal_id, l.spiff_id, l.source_rep_id),
    step AS (
        SELECT c.*, 0::bigint AS i, c.amount_net AS net, c.credit_net AS cnet,
               false AS emit, NULL::bigint AS payment_id, NULL::timestamptz AS reversed_at,
               NULL::numeric AS cc, NULL::numeric AS base, NULL::numeric AS rate, NULL::numeric AS claw
          FROM comp c
        UNION ALL
        SELECT s.rep_id, s.deal_id, s.spiff_id, s.source_rep_id, s.plan_id, s.own, s.credit_net, s.credit_gross,
               s.amount_net, s.amount_gross, s.at, s.clawed, r.i,
               CASE WHEN o.emit THEN s.net - o.claw ELSE s.net END,
               CASE WHEN o.emit AND s.own THEN s.cnet - o.cc ELSE s.cnet END,
               o.emit, r.payment_id, r.paid_at, o.cc, o.base, o.rate, o.claw
          FROM step s
          JOIN refund r ON r.deal_id = s.deal_id AND r.i = s.i + 1
          JOIN salesmgmt.commission_plan p ON p.plan_id = s.plan_id
         CROSS JOIN LATERAL (
               SELECT r.fraction IS NOT NULL AND p.basis = 'booking' AND coalesce(p.clawback_days, 0) > 0
                      AND r.paid_at >= s.at AND r.paid_at <= s.at + make_interval(days => p.clawback_days)
                      AND r.payment_id <> ALL (coalesce(s.clawed, '{}')) AND s.net > 0 AS ok,
                      round(s.amount_gross * r.fraction, 2) AS want) w
         CROSS JOIN LATERAL (
               SELECT w.ok AND least(w.want, s.net) <> 0 AS emit,
                      least(w.want, s.net) AS claw,
                      CASE WHEN w.want > s.net THEN s.net ELSE s.amount_gross END AS base,
                      CASE WHEN w.want > s.net THEN 1 ELSE r.fraction END AS rate,
                      CASE WHEN s.own THEN least(s.credit_gross * r.fraction, s.cnet) END AS cc) o)
    SELECT p_start, p_end, s.rep_id, 'clawback', s.deal_id, s.payment_id, s.plan_id, s.spiff_id, s.source_rep_id,
           s.at, -s.cc, s.base, s.rate, s.reversed_at, -s.claw, v_cur, 'refund'
      FROM step s
     WHERE s.emit;

    -- draws: recoverable draws advanced, the outstanding balance recovered
    -- from the period's earnings (never more), guarantees topped up
    INSERT INTO commission_setbased.line
           (period_start, period_end, rep_id, kind, draw_id, recoverable, base, amount, currency, reason)
    WITH dr AS (
        SELECT d.draw_id, d.rep_id, d.amount, d.recoverable,
               coalesce(sum(d.amount) FILTER (WHERE NOT d.recoverable)
                        OVER (PARTITION BY d.rep_id ORDER BY d.period_end, d.draw_id
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS guaranteed_before
          FROM salesmgmt.commission_draw d WHERE d.period_end BETWEEN p_start AND p_end),
    prior AS (
        SELECT l.rep_id, sum(l.amount) AS balance
          FROM commission_setbased.line l WHERE l.kind = 'draw' AND l.recoverable
         GROUP BY l.rep_id HAVING sum(l.amount) > 0),
    rep AS (
        SELECT x.rep_id,
               coalesce((SELECT sum(l.amount) FROM commission_setbased.line l
                          WHERE l.rep_id = x.rep_id AND l.period_start = p_start AND l.period_end = p_end
                            AND l.kind IN ('earned', 'spiff', 'override', 'adjustment', 'clawback')), 0) AS earnings,
               coalesce(pr.balance, 0) + coalesce((SELECT sum(d.amount) FROM dr d WHERE d.rep_id = x.rep_id AND d.recoverable), 0) AS balance,
               coalesce((SELECT sum(d.amount) FROM dr d WHERE d.rep_id = x.rep_id AND NOT d.recoverable), 0) AS guarantee
          FROM (SELECT dr.rep_id FROM dr UNION SELECT prior.rep_id FROM prior) x
          LEFT JOIN prior pr USING (rep_id))
    SELECT p_start, p_end, d.rep_id, 'draw', d.draw_id, true, NULL::numeric, d.amount, v_cur, 'advance'
      FROM dr d WHERE d.recoverable
    UNION ALL
    SELECT p_start, p_end, r.rep_id, 'draw', NULL, true, r.earnings, -least(r.balance, r.earnings), v_cur, 'recovery'
      FROM rep r WHERE r.earnings > 0 AND r.balance > 0
    UNION ALL
    SELECT p_start, p_end, d.rep_id, 'draw', d.draw_id, false, r.earnings,
           least(d.amount, t.topup - d.guaranteed_before), v_cur, 'guarantee'
      FROM dr d JOIN rep r USING (rep_id)
     CROSS JOIN LATERAL (SELECT r.guarantee - greatest(0, least(r.earnings, r.guarantee)) AS topup) t
     WHERE NOT d.recoverable AND t.topup - d.guaranteed_before > 0;

    -- one row per rep: reps on a plan during the period, and reps with lines
    RETURN QUERY
    WITH reps AS (
        SELECT a.rep_id FROM salesmgmt.commission_assignment a
         WHERE a.valid_from <= p_end AND coalesce(a.valid_to, 'infinity') >= p_start
        UNION
        SELECT d.rep_id FROM salesmgmt.commission_draw d WHERE d.period_end BETWEEN p_start AND p_end
        UNION
        SELECT l.rep_id FROM commission_setbased.line l WHERE l.period_start = p_start AND l.period_end = p_end),
    sums AS (
        SELECT l.rep_id,
               sum(l.credit) FILTER (WHERE l.kind = 'earned') AS credit,
               sum(l.amount) FILTER (WHERE l.kind = 'earned') AS earned,
               sum(l.amount) FILTER (WHERE l.kind = 'spiff') AS spiffs,
               sum(l.amount) FILTER (WHERE l.kind = 'override') AS overrides,
               sum(l.amount) FILTER (WHERE l.kind = 'adjustment') AS adjustments,
               sum(l.amount) FILTER (WHERE l.kind = 'clawback') AS clawbacks,
               sum(l.amount) FILTER (WHERE l.kind = 'draw' AND l.amount > 0) AS draws,
               sum(l.amount) FILTER (WHERE l.kind = 'draw' AND l.amount < 0) AS draw_recovery
          FROM commission_setbased.line l
         WHERE l.period_start = p_start AND l.period_end = p_end
         GROUP BY l.rep_id),
    quotas AS (
        SELECT q.rep_id,
               sum(round(CASE WHEN least(q.period_end, p_end) - greatest(q.period_start, p_start) + 1 = q.period_end - q.period_start + 1
                              THEN salesmgmt.convert_amount(q.amount, q.currency, v_cur, q.period_start)
                              ELSE salesmgmt.convert_amount(q.amount, q.currency, v_cur, q.period_start)
                                   * (least(q.period_end, p_end) - greatest(q.period_start, p_start) + 1)
                                   / (q.period_end - q.period_start + 1) END, 2)) AS quota
          FROM salesmgmt.quota q
         WHERE q.rep_id IN (SELECT a.rep_id FROM salesmgmt.commission_assignment a) AND q.product_family IS NULL
           AND q.period_start <= p_end AND q.period_end >= p_start
         GROUP BY q.rep_id)
    SELECT reps.rep_id, coalesce(s.credit, 0), q.quota,
           CASE WHEN q.quota > 0 THEN round(coalesce(s.credit, 0) / q.quota, 4) END,
           round(coalesce(s.earned, 0), 2), round(coalesce(s.spiffs, 0), 2), round(coalesce(s.overrides, 0), 2),
           round(coalesce(s.adjustments, 0), 2), round(coalesce(s.clawbacks, 0), 2), round(coalesce(s.draws, 0), 2),
           round(coalesce(s.draw_recovery, 0), 2),
           round(coalesce(s.earned, 0) + coalesce(s.spiffs, 0) + coalesce(s.overrides, 0) + coalesce(s.adjustments, 0)
                 + coalesce(s.clawbacks, 0) + coalesce(s.draws, 0) + coalesce(s.draw_recovery, 0), 2)
      FROM reps LEFT JOIN sums s USING (rep_id) LEFT JOIN quotas q USING (rep_id)
     ORDER BY reps.rep_id;
END
$$;

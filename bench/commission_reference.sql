-- bench/commission_reference.sql: the ROW-BY-ROW PL/pgSQL reference of
-- salesmgmt.run_commissions, kept beside the set-based reference
-- (bench/commission_reference_setbased.sql, the one whose ratio is
-- published) and timed in the same run by bench/commission.sh.  It loops over
-- the events and writes one line per INSERT, with per-event lookups of plan,
-- SPIFF containment, conversion and overrides: weaker than what a strong DBA
-- writes (issue #24), so its ratio to C is shown for comparison only.
-- Same semantics for a period that is run for the first time and covers
-- whole plan periods, with no finalized periods before it (the benchmark's
-- case): credited events in time order per rep, tiers (marginal,
-- retroactive, mixed) on exact numerics with cumulative rounding, caps,
-- quotas prorated by days and converted with salesmgmt.convert_amount,
-- SPIFFs (to_jsonb(deal) @> condition), overrides up the team tree,
-- booking-basis refund clawbacks and draws.  Corrections of finalized
-- periods (adjustments, clawbacks of reopened or lost deals) are left out:
-- the benchmark has none.  A loop over events in time order, the state of
-- the current plan period in variables.

DROP SCHEMA IF EXISTS commission_reference CASCADE;
CREATE SCHEMA commission_reference;

-- the reference's own ledger, shaped and indexed like salesmgmt's
CREATE TABLE commission_reference.line
    (LIKE salesmgmt.commission_line INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS INCLUDING INDEXES);

-- E(x) of a plan period: tiers as arrays, bounds and offsets precomputed
CREATE TYPE commission_reference.tiering AS (
    rate numeric[], retro boolean[], afrom numeric[], ato numeric[], bound numeric[], offs numeric[], nt int);

CREATE FUNCTION commission_reference.tiering(p_plan bigint, p_quota numeric)
RETURNS commission_reference.tiering LANGUAGE plpgsql STABLE AS $$
DECLARE
    t commission_reference.tiering;
    k int;
BEGIN
    SELECT array_agg(ct.rate ORDER BY ct.attainment_from), array_agg(coalesce(ct.mode, p.tier_mode) = 'retroactive' ORDER BY ct.attainment_from),
           array_agg(ct.attainment_from ORDER BY ct.attainment_from), array_agg(ct.attainment_to ORDER BY ct.attainment_from), count(*)
      INTO t.rate, t.retro, t.afrom, t.ato, t.nt
      FROM salesmgmt.commission_tier ct JOIN salesmgmt.commission_plan p USING (plan_id)
     WHERE ct.plan_id = p_plan;
    IF t.nt > 0 AND (p_quota IS NULL OR p_quota <= 0) THEN
        t.nt := 1;
    END IF;
    t.bound := ARRAY[0::numeric];
    t.offs := ARRAY[0::numeric];
    FOR k IN 2 .. t.nt LOOP
        t.bound[k] := t.afrom[k] * p_quota;
        t.offs[k] := CASE WHEN t.retro[k] THEN 0
                          ELSE t.offs[k - 1] + t.rate[k - 1] * t.bound[k] - t.rate[k] * t.bound[k] END;
    END LOOP;
    RETURN t;
END
$$;

CREATE FUNCTION commission_reference.tier_of(t commission_reference.tiering, x numeric)
RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    FOR k IN REVERSE t.nt .. 2 LOOP
        IF x >= t.bound[k] THEN
            RETURN k;
        END IF;
    END LOOP;
    RETURN 1;
END
$$;

CREATE FUNCTION commission_reference.earnings(t commission_reference.tiering, k int, x numeric)
RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN t.nt = 0 THEN 0 ELSE t.offs[k] + t.rate[k] * x END
$$;

-- last day of the month, quarter or year containing a day
CREATE FUNCTION commission_reference.period_end(p_period text, p_day date)
RETURNS date LANGUAGE sql IMMUTABLE AS $$
    SELECT (date_trunc(p_period, p_day)
            + CASE p_period WHEN 'month' THEN interval '1 month' WHEN 'quarter' THEN interval '3 months' ELSE interval '1 year' END
            - interval '1 day')::date
$$;

CREATE FUNCTION commission_reference.run(p_start date, p_end date)
RETURNS TABLE (rep_id bigint, credit numeric, quota numeric, attainment numeric,
               earned numeric, spiffs numeric, overrides numeric, adjustments numeric,
               clawbacks numeric, draws numeric, draw_recovery numeric, payout numeric)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_cur       char(3) := current_setting('salesmgmt.reporting_currency');
    v_from      timestamptz := p_start::timestamptz;
    v_to        timestamptz := (p_end + 1)::timestamptz;
    e           record;
    v_plan      salesmgmt.commission_plan;
    m           record;
    sp          record;
    r           record;
    c           record;
    -- the current state: rep, plan, plan period
    s_rep       bigint;
    s_plan      bigint;
    s_pstart    date;
    s_pend      date;
    s_quota     numeric;
    s_t         commission_reference.tiering;
    s_credit    numeric;
    s_earned    numeric;
    s_paid      numeric;
    s_att       numeric;
    v_pstart    date;
    v_pend      date;
    v_credit    numeric;
    v_after     numeric;
    v_kb        int;
    v_ka        int;
    v_earned    numeric;
    v_paid      numeric;
    v_att       numeric;
    v_tiers     jsonb;
    v_base      numeric;
    v_rate      numeric;
    v_amount    numeric;
    v_lo        numeric;
    v_hi        numeric;
    v_slice     numeric;
    v_j         int;
    v_obj       jsonb;
    v_earnings  numeric;
    v_balance   numeric;
    v_guarantee numeric;
    v_topup     numeric;
    v_claw      numeric;
    v_cc        numeric;
BEGIN
    DELETE FROM commission_reference.line l WHERE l.period_start = p_start AND l.period_end = p_end;

    -- managers above each rep, nearest first
    CREATE TEMP TABLE ref_manager ON COMMIT DROP AS
    WITH RECURSIVE up AS (
        SELECT rp.rep_id, rp.team_id, 1 AS depth FROM salesmgmt.rep rp
        UNION ALL
        SELECT up.rep_id, t.parent_team_id, up.depth + 1
          FROM up JOIN salesmgmt.team t ON t.team_id = up.team_id
         WHERE t.parent_team_id IS NOT NULL AND up.depth < 1000)
    SELECT up.rep_id, t.manager_rep_id AS manager_id, min(up.depth) AS depth
      FROM up JOIN salesmgmt.team t ON t.team_id = up.team_id
     WHERE t.manager_rep_id IS NOT NULL AND t.manager_rep_id <> up.rep_id
     GROUP BY up.rep_id, t.manager_rep_id;
    CREATE INDEX ON ref_manager (rep_id, depth);
    -- tier states of plan periods left and maybe met again
    CREATE TEMP TABLE ref_state (rep_id bigint, plan_id bigint, pstart date, pend date, quota numeric,
                                 t commission_reference.tiering, credit numeric, earned numeric,
                                 paid numeric, att numeric, PRIMARY KEY (rep_id, plan_id, pstart)) ON COMMIT DROP;

    FOR e IN
        SELECT coalesce(s.rep_id, d.owner_rep_id) AS rep_id, d.deal_id, NULL::bigint AS payment_id,
               d.closed_at AS at, d.closed_at::date AS day, d.amount, d.currency,
               coalesce(s.share, 1::numeric) AS share, 1 AS sign, NULL::numeric AS fraction, false AS is_payment,
               ARRAY(SELECT x.spiff_id FROM salesmgmt.commission_spiff x WHERE to_jsonb(d) @> x.condition) AS spiff_ids
          FROM salesmgmt.deal d
          JOIN salesmgmt.stage st ON st.stage_id = d.stage_id AND st.outcome = 'won'
          LEFT JOIN salesmgmt.deal_split s ON s.deal_id = d.deal_id
         WHERE d.closed_at >= v_from AND d.closed_at < v_to
        UNION ALL
        SELECT coalesce(s.rep_id, d.owner_rep_id), p.deal_id, p.payment_id, p.paid_at, p.paid_at::date,
               p.amount, p.currency, coalesce(s.share, 1::numeric), CASE p.kind WHEN 'refund' THEN -1 ELSE 1 END,
               CASE WHEN d.amount > 0 THEN (CASE WHEN p.currency = d.currency THEN p.amount
                    ELSE salesmgmt.convert_amount(p.amount, p.currency, d.currency, p.paid_at::date) END) / d.amount END,
               true,
               ARRAY(SELECT x.spiff_id FROM salesmgmt.commission_spiff x WHERE to_jsonb(d) @> x.condition)
          FROM salesmgmt.payment p
          JOIN salesmgmt.deal d ON d.deal_id = p.deal_id
          LEFT JOIN salesmgmt.deal_split s ON s.deal_id = d.deal_id
         WHERE p.paid_at >= v_from AND p.paid_at < v_to
         ORDER BY 1, 4, 2, 3 NULLS FIRST
    LOOP
        v_credit := NULL;
        SELECT p.* INTO v_plan
          FROM salesmgmt.commission_assignment a JOIN salesmgmt.commission_plan p USING (plan_id)
         WHERE a.rep_id = e.rep_id AND a.valid_from <= e.day AND coalesce(a.valid_to, 'infinity') >= e.day;
        IF FOUND AND (v_plan.basis = 'payment') = e.is_payment THEN
            v_credit := salesmgmt.convert_amount(e.amount * e.share, e.currency, v_cur, e.day) * e.sign;
            v_pstart := date_trunc(v_plan.period, e.day)::date;
            v_pend := commission_reference.period_end(v_plan.period, e.day);
            IF s_rep IS DISTINCT FROM e.rep_id OR s_plan IS DISTINCT FROM v_plan.plan_id OR s_pstart IS DISTINCT FROM v_pstart THEN
                IF s_rep IS NOT NULL THEN
                    INSERT INTO ref_state VALUES (s_rep, s_plan, s_pstart, s_pend, s_quota, s_t, s_credit, s_earned, s_paid, s_att)
                    ON CONFLICT ON CONSTRAINT ref_state_pkey DO UPDATE
                       SET credit = EXCLUDED.credit, earned = EXCLUDED.earned, paid = EXCLUDED.paid, att = EXCLUDED.att;
                END IF;
                SELECT * INTO r FROM ref_state x WHERE x.rep_id = e.rep_id AND x.plan_id = v_plan.plan_id AND x.pstart = v_pstart;
                IF FOUND THEN
                    s_quota := r.quota; s_t := r.t; s_credit := r.credit; s_earned := r.earned; s_paid := r.paid; s_att := r.att;
                ELSE
                    SELECT sum(round(CASE WHEN x.ov = x.days THEN x.c ELSE x.c * x.ov / x.days END, 2)) INTO s_quota
                      FROM (SELECT salesmgmt.convert_amount(q.amount, q.currency, v_cur, q.period_start) AS c,
                                   least(q.period_end, v_pend) - greatest(q.period_start, v_pstart) + 1 AS ov,
                                   q.period_end - q.period_start + 1 AS days
                              FROM salesmgmt.quota q
                             WHERE q.rep_id = e.rep_id AND q.product_family IS NULL AND q.period_start <= v_pend AND q.period_end >= v_pstart) x;
                    s_t := commission_reference.tiering(v_plan.plan_id, s_quota);
                    s_credit := 0;
                    s_earned := 0;
                    s_paid := 0;
                    s_att := CASE WHEN s_quota > 0 THEN 0 END;
                END IF;
                s_rep := e.rep_id; s_plan := v_plan.plan_id; s_pstart := v_pstart; s_pend := v_pend;
            END IF;

            -- the earned line
            v_after := s_credit + v_credit;
            v_kb := commission_reference.tier_of(s_t, s_credit);
            v_ka := commission_reference.tier_of(s_t, v_after);
            v_earned := commission_reference.earnings(s_t, v_ka, v_after);
            v_paid := round(CASE WHEN v_plan.cap IS NOT NULL AND v_earned > v_plan.cap THEN v_plan.cap ELSE v_earned END, 2);
            v_att := CASE WHEN s_quota > 0 THEN round(v_after / s_quota, 4) END;
            v_tiers := NULL;
            IF s_t.nt > 0 AND v_ka <> v_kb THEN
                v_tiers := '[]';
                v_j := v_kb;
                LOOP
                    v_lo := CASE WHEN v_j = least(v_ka, v_kb) THEN least(s_credit, v_after) ELSE s_t.bound[v_j] END;
                    v_hi := CASE WHEN v_j = greatest(v_ka, v_kb) THEN greatest(s_credit, v_after) ELSE s_t.bound[v_j + 1] END;
                    v_slice := CASE WHEN v_ka > v_kb THEN v_hi - v_lo ELSE v_lo - v_hi END;
                    v_obj := jsonb_build_object('tier', v_j, 'from', s_t.afrom[v_j], 'to', s_t.ato[v_j], 'rate', s_t.rate[v_j],
                                                'mode', CASE WHEN s_t.retro[v_j] THEN 'retroactive' ELSE 'marginal' END,
                                                'credit', v_slice, 'amount', s_t.rate[v_j] * v_slice);
                    IF v_ka > v_kb AND v_j > v_kb AND s_t.retro[v_j] THEN
                        v_obj := v_obj || jsonb_build_object('catch_up',
                            commission_reference.earnings(s_t, v_j, s_t.bound[v_j]) - commission_reference.earnings(s_t, v_j - 1, s_t.bound[v_j]));
                    ELSIF v_ka < v_kb AND v_j < v_kb AND s_t.retro[v_j + 1] THEN
                        v_obj := v_obj || jsonb_build_object('catch_up',
                            commission_reference.earnings(s_t, v_j, s_t.bound[v_j + 1]) - commission_reference.earnings(s_t, v_j + 1, s_t.bound[v_j + 1]));
                    END IF;
                    v_tiers := v_tiers || jsonb_build_array(v_obj);
                    EXIT WHEN v_j = v_ka;
                    v_j := v_j + CASE WHEN v_ka > v_kb THEN 1 ELSE -1 END;
                END LOOP;
            END IF;
            INSERT INTO commission_reference.line
                   (period_start, period_end, rep_id, kind, deal_id, payment_id, plan_id, credited_at,
                    plan_period_start, plan_period_end, share, credit, quota, attainment_before, attainment_after,
                    tier, rate, tiers, earned_before, earned_after, capped, amount, currency)
            VALUES (p_start, p_end, e.rep_id, 'earned', e.deal_id, e.payment_id, v_plan.plan_id, e.at,
                    s_pstart, s_pend, e.share, v_credit, s_quota, CASE WHEN s_quota > 0 THEN s_att END, v_att,
                    CASE WHEN s_t.nt > 0 THEN v_ka END, CASE WHEN s_t.nt > 0 THEN s_t.rate[v_ka] END, v_tiers,
                    s_earned, v_earned, v_plan.cap IS NOT NULL AND v_earned > v_plan.cap, v_paid - s_paid, v_cur);
            s_credit := v_after; s_earned := v_earned; s_paid := v_paid;
            IF v_att IS NOT NULL THEN
                s_att := v_att;
            END IF;

            -- SPIFFs of the plan that match the deal
            FOR sp IN
                SELECT x.* FROM salesmgmt.commission_spiff x
                 WHERE x.plan_id = v_plan.plan_id AND x.spiff_id = ANY (e.spiff_ids)
                   AND coalesce(x.valid_from, '-infinity') <= e.day AND coalesce(x.valid_to, 'infinity') >= e.day
                 ORDER BY x.spiff_id
            LOOP
                IF sp.rate IS NOT NULL THEN
                    v_base := v_credit;
                    v_rate := sp.rate;
                ELSE
                    v_base := sp.amount;
                    v_rate := CASE WHEN e.is_payment THEN e.share * e.fraction * e.sign ELSE e.share END;
                END IF;
                v_amount := round(v_base * v_rate, 2);
                CONTINUE WHEN v_amount IS NULL OR v_amount = 0;
                INSERT INTO commission_reference.line
                       (period_start, period_end, rep_id, kind, deal_id, payment_id, plan_id, spiff_id, credited_at,
                        share, base, rate, amount, currency)
                VALUES (p_start, p_end, e.rep_id, 'spiff', e.deal_id, e.payment_id, v_plan.plan_id, sp.spiff_id, e.at,
                        e.share, v_base, v_rate, v_amount, v_cur);
            END LOOP;
        END IF;

        -- overrides of the managers above
        FOR m IN
            SELECT rm.manager_id, p.plan_id, p.override_rate, p.period
              FROM ref_manager rm
              JOIN salesmgmt.commission_assignment a ON a.rep_id = rm.manager_id
                   AND a.valid_from <= e.day AND coalesce(a.valid_to, 'infinity') >= e.day
              JOIN salesmgmt.commission_plan p ON p.plan_id = a.plan_id
             WHERE rm.rep_id = e.rep_id AND p.override_rate > 0 AND (p.basis = 'payment') = e.is_payment
             ORDER BY rm.depth
        LOOP
            IF v_credit IS NULL THEN
                v_credit := salesmgmt.convert_amount(e.amount * e.share, e.currency, v_cur, e.day) * e.sign;
            END IF;
            v_amount := round(v_credit * m.override_rate, 2);
            CONTINUE WHEN v_amount = 0;
            INSERT INTO commission_reference.line
                   (period_start, period_end, rep_id, kind, deal_id, payment_id, plan_id, source_rep_id, credited_at,
                    plan_period_start, plan_period_end, share, base, rate, amount, currency)
            VALUES (p_start, p_end, m.manager_id, 'override', e.deal_id, e.payment_id, m.plan_id, e.rep_id, e.at,
                    date_trunc(m.period, e.day)::date,
                    commission_reference.period_end(m.period, e.day),
                    e.share, v_credit, m.override_rate, v_amount, v_cur);
        END LOOP;
    END LOOP;

    -- refunds of booking-basis deals within the clawback window
    FOR r IN
        SELECT p.deal_id, p.payment_id, p.paid_at,
               CASE WHEN d.amount > 0 THEN (CASE WHEN p.currency = d.currency THEN p.amount
                    ELSE salesmgmt.convert_amount(p.amount, p.currency, d.currency, p.paid_at::date) END) / d.amount END AS fraction
          FROM salesmgmt.payment p JOIN salesmgmt.deal d ON d.deal_id = p.deal_id
         WHERE p.kind = 'refund' AND p.paid_at >= v_from AND p.paid_at < v_to
         ORDER BY p.deal_id, p.paid_at, p.payment_id
    LOOP
        CONTINUE WHEN r.fraction IS NULL;
        FOR c IN
            SELECT l.rep_id, l.spiff_id, l.source_rep_id, max(l.plan_id) AS plan_id,
                   sum(coalesce(l.credit, 0)) AS credit_net,
                   coalesce(sum(l.credit) FILTER (WHERE l.kind <> 'clawback'), 0) AS credit_gross,
                   sum(l.amount) AS amount_net,
                   coalesce(sum(l.amount) FILTER (WHERE l.kind <> 'clawback'), 0) AS amount_gross,
                   max(l.credited_at) AS at,
                   bool_or(l.kind = 'clawback' AND l.payment_id = r.payment_id) AS done
              FROM commission_reference.line l
             WHERE l.deal_id = r.deal_id AND l.kind <> 'draw'
             GROUP BY l.rep_id, l.spiff_id, l.source_rep_id
        LOOP
            SELECT p.* INTO v_plan FROM salesmgmt.commission_plan p WHERE p.plan_id = c.plan_id;
            CONTINUE WHEN v_plan.basis <> 'booking' OR coalesce(v_plan.clawback_days, 0) <= 0
                       OR r.paid_at < c.at OR r.paid_at > c.at + make_interval(days => v_plan.clawback_days)
                       OR c.done OR c.amount_net <= 0;
            v_base := c.amount_gross;
            v_rate := r.fraction;
            v_claw := round(v_base * v_rate, 2);
            IF v_claw > c.amount_net THEN
                v_claw := c.amount_net; v_base := c.amount_net; v_rate := 1;
            END IF;
            v_cc := NULL;
            IF c.spiff_id IS NULL AND c.source_rep_id IS NULL THEN
                v_cc := least(c.credit_gross * r.fraction, c.credit_net);
            END IF;
            CONTINUE WHEN v_claw = 0;
            INSERT INTO commission_reference.line
                   (period_start, period_end, rep_id, kind, deal_id, payment_id, plan_id, spiff_id, source_rep_id,
                    credited_at, credit, base, rate, reversed_at, amount, currency, reason)
            VALUES (p_start, p_end, c.rep_id, 'clawback', r.deal_id, r.payment_id, c.plan_id, c.spiff_id, c.source_rep_id,
                    c.at, -v_cc, v_base, v_rate, r.paid_at, -v_claw, v_cur, 'refund');
        END LOOP;
    END LOOP;

    -- draws: advances, recovery of what is outstanding, guarantees
    FOR r IN
        SELECT x.rep_id,
               coalesce((SELECT sum(l.amount) FROM commission_reference.line l
                          WHERE l.rep_id = x.rep_id AND l.kind IN ('earned', 'spiff', 'override', 'adjustment', 'clawback')
                            AND l.period_start = p_start AND l.period_end = p_end), 0) AS earnings,
               coalesce((SELECT sum(l.amount) FROM commission_reference.line l
                          WHERE l.rep_id = x.rep_id AND l.kind = 'draw' AND l.recoverable), 0) AS balance
          FROM (SELECT d.rep_id FROM salesmgmt.commission_draw d WHERE d.period_end BETWEEN p_start AND p_end
                UNION
                SELECT l.rep_id FROM commission_reference.line l WHERE l.kind = 'draw' AND l.recoverable
                 GROUP BY l.rep_id HAVING sum(l.amount) > 0) x
    LOOP
        v_balance := r.balance;
        v_guarantee := 0;
        FOR sp IN SELECT * FROM salesmgmt.commission_draw d
                   WHERE d.rep_id = r.rep_id AND d.period_end BETWEEN p_start AND p_end
                   ORDER BY d.period_end, d.draw_id LOOP
            IF sp.recoverable THEN
                INSERT INTO commission_reference.line (period_start, period_end, rep_id, kind, draw_id, recoverable, amount, currency, reason)
                VALUES (p_start, p_end, r.rep_id, 'draw', sp.draw_id, true, sp.amount, v_cur, 'advance');
                v_balance := v_balance + sp.amount;
            ELSE
                v_guarantee := v_guarantee + sp.amount;
            END IF;
        END LOOP;
        IF r.earnings > 0 AND v_balance > 0 THEN
            INSERT INTO commission_reference.line (period_start, period_end, rep_id, kind, recoverable, base, amount, currency, reason)
            VALUES (p_start, p_end, r.rep_id, 'draw', true, r.earnings, -least(v_balance, r.earnings), v_cur, 'recovery');
        END IF;
        v_topup := v_guarantee - greatest(0, least(r.earnings, v_guarantee));
        FOR sp IN SELECT * FROM salesmgmt.commission_draw d
                   WHERE d.rep_id = r.rep_id AND d.period_end BETWEEN p_start AND p_end AND NOT d.recoverable
                   ORDER BY d.period_end, d.draw_id LOOP
            EXIT WHEN v_topup <= 0;
            INSERT INTO commission_reference.line (period_start, period_end, rep_id, kind, draw_id, recoverable, base, amount, currency, reason)
            VALUES (p_start, p_end, r.rep_id, 'draw', sp.draw_id, false, r.earnings, least(sp.amount, v_topup), v_cur, 'guarantee');
            v_topup := v_topup - least(sp.amount, v_topup);
        END LOOP;
    END LOOP;

    -- one row per rep: reps on a plan during the period, and reps with lines
    RETURN QUERY
    WITH reps AS (
        SELECT a.rep_id FROM salesmgmt.commission_assignment a
         WHERE a.valid_from <= p_end AND coalesce(a.valid_to, 'infinity') >= p_start
        UNION
        SELECT d.rep_id FROM salesmgmt.commission_draw d WHERE d.period_end BETWEEN p_start AND p_end
        UNION
        SELECT l.rep_id FROM commission_reference.line l WHERE l.period_start = p_start AND l.period_end = p_end),
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
          FROM commission_reference.line l
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

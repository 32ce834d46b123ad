-- bench/kpi_reference.sql: salesmgmt.compute_scorecards written in plain SQL
-- and PL/pgSQL, with the same semantics (docs/kpi-scorecards.md), for the
-- benchmark and for test/t/*_kpi_reference.pl, which checks that both give
-- identical scorecards.
--
--   psql -f bench/kpi_reference.sql DBNAME
--   SELECT * FROM kpi_ref.compute_scorecards(scheme_id, period_start, period_end);
--
-- It is written the way a strong DBA would without C: every built-in metric
-- is a set-oriented function of the custom-metric shape, (p_from, p_to) ->
-- one row per rep; the deal metrics share one pass over the credited deals
-- (kpi_ref.credit_pass); the scorecard function calls one metric per KPI of
-- the scheme, then scores, weights, grades, ranks and stores in SQL.  The
-- arithmetic is the extension's, step for step (multiply before dividing,
-- values rounded to 4 decimals, scores to 2), so the results are equal.

\set ON_ERROR_STOP on
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS kpi_ref CASCADE;
CREATE SCHEMA kpi_ref;
RESET client_min_messages;

-- kpi_score in PL/pgSQL (definitions are valid: the kpi table checks them)
CREATE FUNCTION kpi_ref.score(p_value numeric, p_target numeric, p_method text,
                              p_direction text, p_floor numeric, p_cap numeric)
RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_raw numeric;
BEGIN
    IF p_value IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_floor IS NOT NULL AND ((p_direction = 'higher' AND p_value < p_floor)
                                OR (p_direction = 'lower' AND p_value > p_floor)) THEN
        RETURN round(0::numeric, 2);
    END IF;
    v_raw := CASE p_method
        WHEN 'achievement' THEN p_value * 100 / p_target
        WHEN 'reduction' THEN 100 - (p_value - p_target) * 100 / p_target
        WHEN 'threshold' THEN CASE WHEN (p_direction = 'higher' AND p_value >= p_target)
                                     OR (p_direction = 'lower' AND p_value <= p_target) THEN 100 ELSE 0 END
        WHEN 'band' THEN (p_value - p_floor) * 100 / (p_target - p_floor)
    END;
    RETURN round(least(greatest(v_raw, 0), p_cap), 2);
END
$$;

-- an amount in the reporting currency on a day
CREATE FUNCTION kpi_ref.to_reporting(p_amount numeric, p_currency text, p_day date)
RETURNS numeric
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN p_amount IS NULL OR p_currency = current_setting('salesmgmt.reporting_currency')
                THEN p_amount
                ELSE salesmgmt.convert_amount(p_amount, p_currency::char(3),
                                              current_setting('salesmgmt.reporting_currency')::char(3), p_day) END
$$;

-- Credited deals closed (won or lost) or created in the period: the rows
-- every deal metric reads.  A deal without splits credits its owner.
CREATE FUNCTION kpi_ref.deal_credit(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, share numeric, amount numeric, currency text, created_at timestamptz,
               closed_at timestamptz, won boolean, lost boolean, created boolean)
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(sp.rep_id, d.owner_rep_id), coalesce(sp.share, 1), d.amount, d.currency::text,
           d.created_at, d.closed_at,
           st.outcome = 'won' AND d.closed_at >= p_from::timestamptz AND d.closed_at < (p_to + 1)::timestamptz,
           st.outcome = 'lost' AND d.closed_at >= p_from::timestamptz AND d.closed_at < (p_to + 1)::timestamptz,
           d.created_at >= p_from::timestamptz AND d.created_at < (p_to + 1)::timestamptz
      FROM salesmgmt.deal d
      JOIN salesmgmt.stage st ON st.stage_id = d.stage_id
      LEFT JOIN salesmgmt.deal_split sp ON sp.deal_id = d.deal_id
     WHERE (d.closed_at >= p_from::timestamptz AND d.closed_at < (p_to + 1)::timestamptz
            AND st.outcome IN ('won', 'lost'))
        OR (d.created_at >= p_from::timestamptz AND d.created_at < (p_to + 1)::timestamptz)
$$;

-- One pass over the credited deals: every deal metric's sums per rep, in
-- pg_temp.kpi_ref_credit, built once by compute_scorecards before the
-- metrics are read (a strong DBA scans the deals once, not once per KPI).
CREATE FUNCTION kpi_ref.credit_pass(p_from date, p_to date)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DROP TABLE IF EXISTS pg_temp.kpi_ref_credit;
    CREATE TEMP TABLE kpi_ref_credit AS
    SELECT rep_id,
           sum(kpi_ref.to_reporting(amount * share, currency, closed_at::date)) FILTER (WHERE won) AS revenue,
           sum(share) FILTER (WHERE won) AS won,
           sum(share) FILTER (WHERE won OR lost) AS closed,
           sum(share * extract(epoch FROM closed_at - created_at)) FILTER (WHERE won) AS seconds,
           sum(kpi_ref.to_reporting(amount * share, currency, created_at::date)) FILTER (WHERE created) AS created
      FROM kpi_ref.deal_credit(p_from, p_to) GROUP BY rep_id;
END
$$;

-- Each metric: one row per rep; seen = the rep has rows in the metric's
-- source tables in the period (a former rep is scored only then).  The deal
-- metrics read the one pass above (PL/pgSQL: the temporary table does not
-- exist when they are created).
CREATE FUNCTION kpi_ref.metric_revenue_won(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT r.rep_id, round(coalesce(c.revenue, 0), 4), c.rep_id IS NOT NULL
      FROM salesmgmt.rep r LEFT JOIN pg_temp.kpi_ref_credit c ON c.rep_id = r.rep_id;
END
$$;

CREATE FUNCTION kpi_ref.metric_deals_won(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT r.rep_id, round(coalesce(c.won, 0), 4), c.rep_id IS NOT NULL
      FROM salesmgmt.rep r LEFT JOIN pg_temp.kpi_ref_credit c ON c.rep_id = r.rep_id;
END
$$;

CREATE FUNCTION kpi_ref.metric_win_rate(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT r.rep_id,
           CASE WHEN c.closed > 0 THEN round(coalesce(c.won, 0) * 100 / c.closed, 4) END,
           c.rep_id IS NOT NULL
      FROM salesmgmt.rep r LEFT JOIN pg_temp.kpi_ref_credit c ON c.rep_id = r.rep_id;
END
$$;

CREATE FUNCTION kpi_ref.metric_avg_deal_size(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT r.rep_id, CASE WHEN c.won > 0 THEN round(c.revenue / c.won, 4) END, c.rep_id IS NOT NULL
      FROM salesmgmt.rep r LEFT JOIN pg_temp.kpi_ref_credit c ON c.rep_id = r.rep_id;
END
$$;

CREATE FUNCTION kpi_ref.metric_sales_cycle_days(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT r.rep_id, CASE WHEN c.won > 0 THEN round(c.seconds / (c.won * 86400), 4) END, c.rep_id IS NOT NULL
      FROM salesmgmt.rep r LEFT JOIN pg_temp.kpi_ref_credit c ON c.rep_id = r.rep_id;
END
$$;

CREATE FUNCTION kpi_ref.metric_pipeline_created(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT r.rep_id, round(coalesce(c.created, 0), 4), c.rep_id IS NOT NULL
      FROM salesmgmt.rep r LEFT JOIN pg_temp.kpi_ref_credit c ON c.rep_id = r.rep_id;
END
$$;

-- activities of the given kinds in the period (every activity makes the rep seen)
CREATE FUNCTION kpi_ref.activity_count(p_from date, p_to date, p_kinds text[])
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE sql STABLE AS $$
    SELECT r.rep_id, coalesce(a.n, 0)::numeric, a.rep_id IS NOT NULL
      FROM salesmgmt.rep r
      LEFT JOIN (SELECT a.rep_id, count(*) FILTER (WHERE a.kind = ANY (p_kinds)) AS n
                   FROM salesmgmt.activity a
                  WHERE a.occurred_at >= p_from::timestamptz AND a.occurred_at < (p_to + 1)::timestamptz
                  GROUP BY a.rep_id) a ON a.rep_id = r.rep_id
$$;
CREATE FUNCTION kpi_ref.metric_activities(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE sql STABLE AS $$ SELECT * FROM kpi_ref.activity_count(p_from, p_to, '{call,email,meeting,visit,demo}') $$;
CREATE FUNCTION kpi_ref.metric_meetings(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE sql STABLE AS $$ SELECT * FROM kpi_ref.activity_count(p_from, p_to, '{meeting,visit,demo}') $$;

CREATE FUNCTION kpi_ref.metric_quota_attainment(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT r.rep_id,
           CASE WHEN q.amount <> 0 THEN round(coalesce(c.revenue, 0) * 100 / q.amount, 4) END,
           c.rep_id IS NOT NULL OR q.rep_id IS NOT NULL
      FROM salesmgmt.rep r
      LEFT JOIN pg_temp.kpi_ref_credit c ON c.rep_id = r.rep_id
      LEFT JOIN (SELECT q.rep_id,
                        sum(kpi_ref.to_reporting(q.amount * (least(q.period_end, p_to) - greatest(q.period_start, p_from) + 1)
                                                 / (q.period_end - q.period_start + 1), q.currency::text, p_to)) AS amount
                   FROM salesmgmt.quota q
                  WHERE q.rep_id IS NOT NULL AND q.period_start <= p_to AND q.period_end >= p_from
                  GROUP BY q.rep_id) q ON q.rep_id = r.rep_id;
END
$$;

CREATE FUNCTION kpi_ref.metric_task_completion_rate(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE sql STABLE AS $$
    SELECT r.rep_id, t.rate, t.rep_id IS NOT NULL
      FROM salesmgmt.rep r
      LEFT JOIN (SELECT t.rep_id, round((count(*) FILTER (WHERE t.status = 'done'))::numeric * 100 / count(*), 4) AS rate
                   FROM salesmgmt.sales_task t
                  WHERE t.status <> 'cancelled' AND coalesce(t.due_date, t.created_at::date) BETWEEN p_from AND p_to
                  GROUP BY t.rep_id) t ON t.rep_id = r.rep_id
$$;

CREATE FUNCTION kpi_ref.metric_csat_avg(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE sql STABLE AS $$
    SELECT r.rep_id, c.v, c.rep_id IS NOT NULL
      FROM salesmgmt.rep r
      LEFT JOIN (SELECT c.rep_id, round(avg(c.csat), 4) AS v
                   FROM salesmgmt.csat_response c
                  WHERE c.responded_at >= p_from::timestamptz AND c.responded_at < (p_to + 1)::timestamptz
                  GROUP BY c.rep_id) c ON c.rep_id = r.rep_id
$$;

CREATE FUNCTION kpi_ref.metric_nps(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE sql STABLE AS $$
    SELECT r.rep_id, c.v, c.rep_id IS NOT NULL
      FROM salesmgmt.rep r
      LEFT JOIN (SELECT c.rep_id,
                        CASE WHEN count(c.nps) > 0 THEN
                             round((count(*) FILTER (WHERE c.nps >= 9) - count(*) FILTER (WHERE c.nps <= 6))::numeric
                                   * 100 / count(c.nps), 4) END AS v
                   FROM salesmgmt.csat_response c
                  WHERE c.responded_at >= p_from::timestamptz AND c.responded_at < (p_to + 1)::timestamptz
                  GROUP BY c.rep_id) c ON c.rep_id = r.rep_id
$$;

CREATE FUNCTION kpi_ref.metric_training_completion(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE sql STABLE AS $$
    WITH req AS (
        SELECT count(*) AS n FROM salesmgmt.training_course c
         WHERE c.required AND c.created_at < (p_to + 1)::timestamptz
    ), e AS (
        SELECT e.rep_id,
               count(*) FILTER (WHERE NOT (c.required AND c.created_at < (p_to + 1)::timestamptz)) AS extra,
               count(*) FILTER (WHERE e.status = 'completed' AND e.completed_at < (p_to + 1)::timestamptz) AS done
          FROM salesmgmt.training_enrollment e
          JOIN salesmgmt.training_course c ON c.course_id = e.course_id
         WHERE (c.required AND c.created_at < (p_to + 1)::timestamptz) OR e.enrolled_at < (p_to + 1)::timestamptz
         GROUP BY e.rep_id
    )
    SELECT r.rep_id,
           CASE WHEN req.n + coalesce(e.extra, 0) > 0
                THEN round(coalesce(e.done, 0)::numeric * 100 / (req.n + coalesce(e.extra, 0)), 4) END,
           e.rep_id IS NOT NULL
      FROM salesmgmt.rep r CROSS JOIN req LEFT JOIN e ON e.rep_id = r.rep_id
$$;

-- one of the three ratings of the reviews ending in the period
CREATE FUNCTION kpi_ref.attitude(p_from date, p_to date, p_rating text)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE sql STABLE AS $$
    SELECT r.rep_id, v.a, v.rep_id IS NOT NULL
      FROM salesmgmt.rep r
      LEFT JOIN (SELECT v.rep_id,
                        round(avg(CASE p_rating WHEN 'discipline' THEN v.discipline
                                                WHEN 'teamwork' THEN v.teamwork
                                                ELSE v.customer_service END), 4) AS a
                   FROM salesmgmt.review v
                  WHERE v.period_end BETWEEN p_from AND p_to GROUP BY v.rep_id) v ON v.rep_id = r.rep_id
$$;
CREATE FUNCTION kpi_ref.metric_attitude_discipline(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE sql STABLE AS $$ SELECT * FROM kpi_ref.attitude(p_from, p_to, 'discipline') $$;
CREATE FUNCTION kpi_ref.metric_attitude_teamwork(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE sql STABLE AS $$ SELECT * FROM kpi_ref.attitude(p_from, p_to, 'teamwork') $$;
CREATE FUNCTION kpi_ref.metric_attitude_customer_service(p_from date, p_to date)
RETURNS TABLE (rep_id bigint, value numeric, seen boolean)
LANGUAGE sql STABLE AS $$ SELECT * FROM kpi_ref.attitude(p_from, p_to, 'customer_service') $$;

-- the scorecards: one metric query per KPI, then scoring and storing in SQL
CREATE FUNCTION kpi_ref.compute_scorecards(p_scheme_id bigint, p_period_start date, p_period_end date)
RETURNS TABLE (rep_id bigint, score numeric, grade text, rank integer, details jsonb)
LANGUAGE plpgsql
AS $$
DECLARE
    v_bands jsonb;
    v_team  bigint;
    v_item  record;
BEGIN
    SELECT s.grade_bands, s.team_id INTO v_bands, v_team
      FROM salesmgmt.kpi_scheme s WHERE s.scheme_id = p_scheme_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'KPI scheme % does not exist', p_scheme_id USING ERRCODE = '42704';
    END IF;
    IF (SELECT coalesce(sum(i.weight), 0) FROM salesmgmt.kpi_scheme_item i WHERE i.scheme_id = p_scheme_id) <> 100 THEN
        RAISE EXCEPTION 'weights of KPI scheme % do not sum to 100', p_scheme_id USING ERRCODE = '55000';
    END IF;

    IF to_regclass('pg_temp.kpi_ref_value') IS NULL THEN
        CREATE TEMP TABLE kpi_ref_value (rep_id bigint, kpi_id bigint, value numeric, seen boolean);
    ELSE
        TRUNCATE pg_temp.kpi_ref_value;
    END IF;
    PERFORM kpi_ref.credit_pass(p_period_start, p_period_end);
    FOR v_item IN
        SELECT k.kpi_id, k.metric, k.metric_function
          FROM salesmgmt.kpi_scheme_item i JOIN salesmgmt.kpi k ON k.kpi_id = i.kpi_id
         WHERE i.scheme_id = p_scheme_id
    LOOP
        IF v_item.metric = 'custom' THEN
            EXECUTE format('INSERT INTO pg_temp.kpi_ref_value
                            SELECT r.rep_id, $3, round(f.value, 4), false
                              FROM salesmgmt.rep r LEFT JOIN %s($1, $2) AS f(rep_id, value) ON f.rep_id = r.rep_id',
                           to_regprocedure(v_item.metric_function || '(date, date)')::regproc)
                USING p_period_start, p_period_end, v_item.kpi_id;
        ELSE
            EXECUTE format('INSERT INTO pg_temp.kpi_ref_value SELECT m.rep_id, $3, m.value, m.seen FROM kpi_ref.%I($1, $2) m',
                           'metric_' || v_item.metric)
                USING p_period_start, p_period_end, v_item.kpi_id;
        END IF;
    END LOOP;

    IF to_regclass('pg_temp.kpi_ref_card') IS NOT NULL THEN
        DROP TABLE pg_temp.kpi_ref_card;
    END IF;
    CREATE TEMP TABLE kpi_ref_card AS
    WITH RECURSIVE teams(team_id) AS (
        SELECT v_team WHERE v_team IS NOT NULL
        UNION
        SELECT t.team_id FROM salesmgmt.team t JOIN teams ON t.parent_team_id = teams.team_id
    ), pop AS (
        SELECT r.rep_id FROM salesmgmt.rep r
         WHERE (v_team IS NULL OR r.team_id IN (SELECT team_id FROM teams))
           AND (r.active OR EXISTS (SELECT 1 FROM pg_temp.kpi_ref_value v WHERE v.rep_id = r.rep_id AND v.seen))
    ), scored AS (
        SELECT v.rep_id, v.kpi_id, k.code, k.metric, v.value, i.weight, k.method, k.direction, k.target, k.floor, k.cap,
               kpi_ref.score(v.value, k.target, k.method, k.direction, k.floor, k.cap) AS score
          FROM pg_temp.kpi_ref_value v
          JOIN pop ON pop.rep_id = v.rep_id
          JOIN salesmgmt.kpi k ON k.kpi_id = v.kpi_id
          JOIN salesmgmt.kpi_scheme_item i ON i.scheme_id = p_scheme_id AND i.kpi_id = v.kpi_id
    ), totals AS (
        SELECT s.rep_id, coalesce(sum(s.weight) FILTER (WHERE s.value IS NOT NULL), 0) AS coverage,
               round(sum(s.score * s.weight) FILTER (WHERE s.value IS NOT NULL)
                     / nullif(sum(s.weight) FILTER (WHERE s.value IS NOT NULL), 0), 2) AS total
          FROM scored s GROUP BY s.rep_id
    )
    SELECT s.*, t.coverage, t.total,
           CASE WHEN s.value IS NOT NULL THEN round(s.weight * 100 / t.coverage, 4) ELSE 0 END AS effective_weight
      FROM scored s JOIN totals t ON t.rep_id = s.rep_id;

    DELETE FROM salesmgmt.scorecard_item si USING salesmgmt.scorecard s
     WHERE si.scorecard_id = s.scorecard_id AND s.scheme_id = p_scheme_id
       AND s.period_start = p_period_start AND s.period_end = p_period_end;
    DELETE FROM salesmgmt.scorecard s
     WHERE s.scheme_id = p_scheme_id AND s.period_start = p_period_start AND s.period_end = p_period_end;

    WITH cards AS (
        SELECT DISTINCT c.rep_id, c.total, c.coverage FROM pg_temp.kpi_ref_card c
    ), ranked AS (
        SELECT c.*,
               CASE WHEN c.total IS NOT NULL THEN rank() OVER (ORDER BY c.total DESC NULLS LAST) END AS rnk,
               (SELECT b.key FROM jsonb_each(v_bands) b
                 WHERE c.total >= (b.value #>> '{}')::numeric
                 ORDER BY (b.value #>> '{}')::numeric DESC LIMIT 1) AS grade
          FROM cards c
    ), sc AS (
        INSERT INTO salesmgmt.scorecard (scheme_id, rep_id, period_start, period_end, score, grade, rank, coverage)
        SELECT p_scheme_id, r.rep_id, p_period_start, p_period_end, r.total, r.grade, r.rnk, r.coverage
          FROM ranked r
        RETURNING scorecard_id, scorecard.rep_id
    )
    INSERT INTO salesmgmt.scorecard_item (scorecard_id, kpi_id, value, score, weight, effective_weight,
                                          method, direction, target, floor, cap)
    SELECT sc.scorecard_id, c.kpi_id, c.value, c.score, c.weight, c.effective_weight,
           c.method, c.direction, c.target, c.floor, c.cap
      FROM pg_temp.kpi_ref_card c JOIN sc ON sc.rep_id = c.rep_id;

    RETURN QUERY
    SELECT s.rep_id, s.score, s.grade, s.rank, d.details
      FROM salesmgmt.scorecard s
      JOIN (SELECT c.rep_id,
                   jsonb_object_agg(c.code, jsonb_build_object('metric', c.metric, 'value', c.value, 'score', c.score,
                                                               'weight', c.weight, 'effective_weight', c.effective_weight)) AS details
              FROM pg_temp.kpi_ref_card c GROUP BY c.rep_id) d ON d.rep_id = s.rep_id
     WHERE s.scheme_id = p_scheme_id AND s.period_start = p_period_start AND s.period_end = p_period_end
     ORDER BY s.rank NULLS LAST, s.rep_id;
END
$$;

-- bench/training_reference.sql: the point estimate of
-- salesmgmt.training_effect in plain SQL, as a strong DBA would write it
-- (no bootstrap): the same completers, peers, windows and metrics
-- (src/training.c), the peers summed per day and turned into running
-- totals so each completer's windows are two look-ups.
CREATE SCHEMA IF NOT EXISTS training_bench;
CREATE OR REPLACE FUNCTION training_bench.effect(p_course_id bigint, p_window integer DEFAULT 90)
RETURNS TABLE (kpi_id bigint, reps integer, peers integer, estimate numeric)
LANGUAGE sql STABLE
AS $$
WITH kpis AS (
    SELECT k.kpi_id, k.metric
      FROM salesmgmt.training_course_kpi ck JOIN salesmgmt.kpi k ON k.kpi_id = ck.kpi_id
     WHERE ck.course_id = p_course_id AND k.metric IN ('win_rate', 'deals_won', 'activities', 'meetings')
), comp AS (
    SELECT e.rep_id, e.completed_at::date AS c
      FROM salesmgmt.training_enrollment e
     WHERE e.course_id = p_course_id AND e.status = 'completed' AND isfinite(e.completed_at)
       AND e.completed_at::date + p_window <= current_date
), span AS (
    SELECT min(c) - p_window AS lo, max(c) + p_window AS hi FROM comp
), peer AS (
    SELECT r.rep_id FROM salesmgmt.rep r
     WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.training_enrollment e
                        WHERE e.rep_id = r.rep_id AND e.course_id = p_course_id)
), ev AS (
    SELECT k.kpi_id, k.metric, x.rep_id, x.day, x.w AS den,
           CASE WHEN k.metric = 'activities' OR x.flag THEN x.w ELSE 0 END AS num
      FROM kpis k CROSS JOIN span s
      CROSS JOIN LATERAL (
          SELECT coalesce(sp.rep_id, d.owner_rep_id) AS rep_id, d.closed_at::date AS day,
                 coalesce(sp.share, 1)::float8 AS w, st.outcome = 'won' AS flag
            FROM salesmgmt.deal d
            JOIN salesmgmt.stage st ON st.stage_id = d.stage_id
            LEFT JOIN salesmgmt.deal_split sp ON sp.deal_id = d.deal_id
           WHERE k.metric IN ('win_rate', 'deals_won') AND st.outcome IN ('won', 'lost')
             AND d.closed_at >= s.lo::timestamptz AND d.closed_at < s.hi::timestamptz
          UNION ALL
          SELECT a.rep_id, a.occurred_at::date, 1::float8, a.kind IN ('meeting', 'visit', 'demo')
            FROM salesmgmt.activity a
           WHERE k.metric IN ('activities', 'meetings') AND a.kind NOT IN ('note', 'coaching')
             AND a.occurred_at >= s.lo::timestamptz AND a.occurred_at < s.hi::timestamptz) x
), peer_count AS (
    SELECT ev.kpi_id, count(DISTINCT ev.rep_id) AS n FROM ev JOIN peer p ON p.rep_id = ev.rep_id GROUP BY ev.kpi_id
), peer_day AS (
    SELECT ev.kpi_id, ev.day, sum(ev.num) AS num, sum(ev.den) AS den
      FROM ev JOIN peer p ON p.rep_id = ev.rep_id GROUP BY ev.kpi_id, ev.day
), running AS (   -- totals of the days before each day
    SELECT k.kpi_id, g.day::date AS day,
           coalesce(sum(pd.num) OVER w, 0) - coalesce(pd.num, 0) AS num,
           coalesce(sum(pd.den) OVER w, 0) - coalesce(pd.den, 0) AS den
      FROM kpis k CROSS JOIN span s
      CROSS JOIN generate_series(s.lo, s.hi, interval '1 day') AS g(day)
      LEFT JOIN peer_day pd ON pd.kpi_id = k.kpi_id AND pd.day = g.day::date
    WINDOW w AS (PARTITION BY k.kpi_id ORDER BY g.day)
), rep_win AS (
    SELECT k.kpi_id, k.metric, c.rep_id, c.c,
           coalesce(sum(e.num) FILTER (WHERE e.day < c.c), 0) AS nb,
           coalesce(sum(e.den) FILTER (WHERE e.day < c.c), 0) AS db,
           coalesce(sum(e.num) FILTER (WHERE e.day >= c.c), 0) AS na,
           coalesce(sum(e.den) FILTER (WHERE e.day >= c.c), 0) AS da
      FROM kpis k CROSS JOIN comp c
      LEFT JOIN ev e ON e.kpi_id = k.kpi_id AND e.rep_id = c.rep_id
                    AND e.day >= c.c - p_window AND e.day < c.c + p_window
     GROUP BY k.kpi_id, k.metric, c.rep_id, c.c
), did AS (
    SELECT r.kpi_id,
           CASE WHEN r.metric = 'win_rate'
                THEN (100 * r.na / nullif(r.da, 0) - 100 * r.nb / nullif(r.db, 0))
                     - (100 * (a2.num - a1.num) / nullif(a2.den - a1.den, 0)
                        - 100 * (a1.num - a0.num) / nullif(a1.den - a0.den, 0))
                ELSE (r.na - r.nb) - ((a2.num - a1.num) - (a1.num - a0.num)) / pc.n END AS did
      FROM rep_win r
      JOIN peer_count pc ON pc.kpi_id = r.kpi_id
      JOIN running a0 ON a0.kpi_id = r.kpi_id AND a0.day = r.c - p_window
      JOIN running a1 ON a1.kpi_id = r.kpi_id AND a1.day = r.c
      JOIN running a2 ON a2.kpi_id = r.kpi_id AND a2.day = r.c + p_window
)
SELECT k.kpi_id, count(d.did)::integer, coalesce(pc.n, 0)::integer,
       CASE WHEN count(d.did) >= 5 THEN round(avg(d.did)::numeric, 4) END
  FROM kpis k
  LEFT JOIN did d ON d.kpi_id = k.kpi_id
  LEFT JOIN peer_count pc ON pc.kpi_id = k.kpi_id
 GROUP BY k.kpi_id, pc.n
 ORDER BY k.kpi_id
$$;

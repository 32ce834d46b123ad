-- bench/forecast_reference.sql: plain SQL implementations of
-- salesmgmt.forecast(..., 'team') and salesmgmt.forecast_range with the
-- same semantics (docs/forecasting.md), for bench/forecast.sh to time and
-- to check the C functions against.  Loaded into a schema of its own;
-- not part of the extension.

CREATE SCHEMA IF NOT EXISTS forecast_ref;

-- The deals of a period, credited to reps by share, in the reporting
-- currency, with their effective category and probability.
CREATE OR REPLACE FUNCTION forecast_ref.credits(p_from date, p_to date)
RETURNS TABLE (deal_id bigint, rep_id bigint, outcome text, category text,
               probability numeric, amount numeric)
LANGUAGE sql STABLE AS $$
    WITH deals AS (
        SELECT d.deal_id, d.owner_rep_id, d.amount, d.currency, s.outcome,
               CASE WHEN s.outcome = 'won' AND d.closed_at IS NOT NULL
                    THEN d.closed_at::date ELSE d.expected_close_date END AS day,
               CASE WHEN coalesce(d.forecast_category, s.forecast_category) = 'closed' THEN 'commit'
                    ELSE coalesce(d.forecast_category, s.forecast_category) END AS category,
               coalesce(d.probability, s.probability) AS probability
          FROM salesmgmt.deal d
          JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
         WHERE s.outcome <> 'lost'
           AND (d.expected_close_date BETWEEN p_from AND p_to
                OR (d.closed_at >= p_from::timestamptz AND d.closed_at < (p_to + 1)::timestamptz))
    )
    SELECT d.deal_id, coalesce(sp.rep_id, d.owner_rep_id), d.outcome, d.category, d.probability,
           CASE WHEN d.currency = current_setting('salesmgmt.reporting_currency')
                THEN d.amount
                ELSE salesmgmt.convert_amount(d.amount, d.currency,
                                              current_setting('salesmgmt.reporting_currency')::char(3), d.day)
           END * coalesce(sp.share, 1)
      FROM deals d
      LEFT JOIN salesmgmt.deal_split sp ON sp.deal_id = d.deal_id
     WHERE d.day BETWEEN p_from AND p_to
$$;

CREATE OR REPLACE FUNCTION forecast_ref.forecast_team(p_from date, p_to date)
RETURNS TABLE (group_id bigint, group_name text, closed_won numeric, commit numeric,
               best_case numeric, pipeline numeric, omitted numeric, weighted numeric,
               commit_forecast numeric, best_case_forecast numeric, quota numeric,
               attainment numeric, gap numeric, deal_count bigint,
               adjusted_commit_forecast numeric)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE tree AS (
        -- (team, ancestor) for every team and every team above it, itself included
        SELECT t.team_id, t.team_id AS ancestor FROM salesmgmt.team t
        UNION ALL
        SELECT tree.team_id, t.parent_team_id
          FROM tree JOIN salesmgmt.team t ON t.team_id = tree.ancestor
         WHERE t.parent_team_id IS NOT NULL
    ), credit AS (
        SELECT tree.ancestor AS group_id, c.*
          FROM forecast_ref.credits(p_from, p_to) c
          LEFT JOIN salesmgmt.rep r ON r.rep_id = c.rep_id
          LEFT JOIN tree ON tree.team_id = r.team_id
    ), sums AS (
        SELECT c.group_id,
               round(coalesce(sum(c.amount) FILTER (WHERE c.outcome = 'won'), 0), 2) AS closed_won,
               round(coalesce(sum(c.amount) FILTER (WHERE c.outcome = 'open' AND c.category = 'commit'), 0), 2) AS commit,
               round(coalesce(sum(c.amount) FILTER (WHERE c.outcome = 'open' AND c.category = 'best_case'), 0), 2) AS best_case,
               round(coalesce(sum(c.amount) FILTER (WHERE c.outcome = 'open' AND c.category = 'pipeline'), 0), 2) AS pipeline,
               round(coalesce(sum(c.amount) FILTER (WHERE c.outcome = 'open' AND c.category = 'omitted'), 0), 2) AS omitted,
               round(coalesce(sum(c.amount * c.probability) FILTER (WHERE c.outcome = 'open'), 0), 2) AS weighted,
               count(DISTINCT c.deal_id) AS deal_count
          FROM credit c GROUP BY c.group_id
    ), qrow AS (
        SELECT q.rep_id, q.team_id,
               salesmgmt.convert_amount(q.amount, q.currency,
                                        current_setting('salesmgmt.reporting_currency')::char(3),
                                        q.period_start) AS amount
          FROM salesmgmt.quota q
         WHERE q.period_start >= p_from AND q.period_end <= p_to
    ), own AS (
        SELECT q.team_id, sum(q.amount) AS amount FROM qrow q WHERE q.team_id IS NOT NULL GROUP BY q.team_id
    ), team_quota AS (
        -- a team's quota: its own rows if any, else what its reps and
        -- sub-teams have, recursively.  Unrolled: the own rows of the teams
        -- below with no own rows on the way, plus the reps' rows of the
        -- teams below with no own rows on the way, the rep's team included.
        SELECT x.ancestor AS team_id, sum(x.amount) AS amount
          FROM (SELECT tr.ancestor, o.amount
                  FROM tree tr JOIN own o ON o.team_id = tr.team_id
                 WHERE NOT EXISTS (SELECT 1 FROM tree w1 JOIN tree w2 ON w2.team_id = w1.ancestor
                                     JOIN own ow ON ow.team_id = w1.ancestor
                                    WHERE w1.team_id = tr.team_id AND w1.ancestor <> tr.team_id
                                      AND w2.ancestor = tr.ancestor)
                UNION ALL
                SELECT tr.ancestor, q.amount
                  FROM qrow q JOIN salesmgmt.rep r ON r.rep_id = q.rep_id
                  JOIN tree tr ON tr.team_id = r.team_id
                 WHERE NOT EXISTS (SELECT 1 FROM tree w1 JOIN tree w2 ON w2.team_id = w1.ancestor
                                     JOIN own ow ON ow.team_id = w1.ancestor
                                    WHERE w1.team_id = tr.team_id AND w2.ancestor = tr.ancestor)) x
         GROUP BY x.ancestor
        UNION ALL
        SELECT NULL, sum(q.amount)
          FROM qrow q JOIN salesmgmt.rep r ON r.rep_id = q.rep_id
         WHERE r.team_id IS NULL
        HAVING count(*) > 0
    ), adj AS (
        SELECT tr.ancestor AS group_id,
               sum(salesmgmt.convert_amount(a.amount, a.currency,
                                            current_setting('salesmgmt.reporting_currency')::char(3),
                                            a.period_start)) FILTER (WHERE a.category = 'commit') AS commit
          FROM salesmgmt.forecast_adjustment a
          LEFT JOIN salesmgmt.rep r ON r.rep_id = a.rep_id
          JOIN tree tr ON tr.team_id = coalesce(a.team_id, r.team_id)
         WHERE a.period_start >= p_from AND a.period_end <= p_to
         GROUP BY tr.ancestor
    ), groups AS (
        SELECT s.group_id FROM sums s
        UNION SELECT q.team_id FROM team_quota q
        UNION SELECT a.group_id FROM adj a
    )
    SELECT g.group_id, coalesce(t.name, CASE WHEN g.group_id IS NULL THEN '(no team)' END),
           coalesce(s.closed_won, 0), coalesce(s.commit, 0), coalesce(s.best_case, 0),
           coalesce(s.pipeline, 0), coalesce(s.omitted, 0), coalesce(s.weighted, 0),
           coalesce(s.closed_won, 0) + coalesce(s.commit, 0),
           coalesce(s.closed_won, 0) + coalesce(s.commit, 0) + coalesce(s.best_case, 0),
           round(q.amount, 2),
           round(coalesce(s.closed_won, 0) / nullif(round(q.amount, 2), 0), 4),
           round(q.amount, 2) - coalesce(s.closed_won, 0) - coalesce(s.commit, 0),
           coalesce(s.deal_count, 0),
           coalesce(s.closed_won, 0) + round(coalesce(s.commit, 0) + coalesce(a.commit, 0), 2)
      FROM groups g
      LEFT JOIN salesmgmt.team t ON t.team_id = g.group_id
      LEFT JOIN sums s ON s.group_id IS NOT DISTINCT FROM g.group_id
      LEFT JOIN team_quota q ON q.team_id IS NOT DISTINCT FROM g.group_id
      LEFT JOIN adj a ON a.group_id IS NOT DISTINCT FROM g.group_id
     ORDER BY g.group_id NULLS LAST
$$;

-- Monte Carlo in SQL: every simulation joined with every open deal of
-- the scope, each won when random() < p.
CREATE OR REPLACE FUNCTION forecast_ref.forecast_range(p_from date, p_to date, p_team_id bigint,
                                                       p_simulations integer)
RETURNS TABLE (mean numeric, stddev numeric, p10 numeric, p50 numeric, p90 numeric,
               min numeric, max numeric, closed_won numeric, open_deals bigint)
LANGUAGE sql VOLATILE AS $$
    WITH RECURSIVE below AS (
        SELECT t.team_id FROM salesmgmt.team t WHERE t.team_id = p_team_id OR p_team_id IS NULL
        UNION
        SELECT t.team_id FROM salesmgmt.team t JOIN below b ON t.parent_team_id = b.team_id
    ), scoped AS (
        SELECT c.deal_id, c.outcome, max(c.probability) AS p, sum(c.amount) AS amount
          FROM forecast_ref.credits(p_from, p_to) c
          JOIN salesmgmt.rep r ON r.rep_id = c.rep_id
         WHERE p_team_id IS NULL OR r.team_id IN (SELECT b.team_id FROM below b)
         GROUP BY c.deal_id, c.outcome
    ), won AS (
        SELECT coalesce(sum(s.amount), 0) AS amount FROM scoped s WHERE s.outcome = 'won'
    ), open AS (
        SELECT s.amount, s.p FROM scoped s WHERE s.outcome = 'open'
    ), sims AS (
        SELECT g, sum(CASE WHEN random() < o.p THEN o.amount ELSE 0 END) AS total
          FROM generate_series(1, p_simulations) AS g CROSS JOIN open o
         GROUP BY g
    )
    SELECT round(won.amount + avg(s.total), 2), round(stddev_samp(s.total), 2),
           round(won.amount + percentile_cont(0.1) WITHIN GROUP (ORDER BY s.total)::numeric, 2),
           round(won.amount + percentile_cont(0.5) WITHIN GROUP (ORDER BY s.total)::numeric, 2),
           round(won.amount + percentile_cont(0.9) WITHIN GROUP (ORDER BY s.total)::numeric, 2),
           round(won.amount + min(s.total), 2), round(won.amount + max(s.total), 2),
           round(won.amount, 2), (SELECT count(*) FROM open)
      FROM sims s, won
     GROUP BY won.amount
$$;

-- bench/leads_reference.sql: what a strong DBA would write without the C
-- code, with the same semantics, for bench/leads.sh.  Conditions are
-- matched with salesmgmt.rule_matches_row (the C matcher on the row value,
-- without building its JSON, as docs/rules.md recommends: the reference
-- gets the fast part for free and pays for the rest in PL/pgSQL / SQL).
CREATE SCHEMA IF NOT EXISTS leads_ref;

-- Routing: a BEFORE INSERT trigger that tries the rules in order, takes a
-- turn from the team's rotation row (the same lock and counter), and picks
-- the rep by turn or by load within capacity.
CREATE OR REPLACE FUNCTION leads_ref.route() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r      record;
    v_turn bigint;
    v_rep  bigint;
BEGIN
    IF NEW.owner_rep_id IS NOT NULL OR NEW.pool_id IS NOT NULL THEN
        RETURN NEW;
    END IF;
    FOR r IN SELECT target_kind, target_id, condition FROM salesmgmt.assignment_rule
              WHERE entity = 'lead' AND active ORDER BY position LOOP
        CONTINUE WHEN NOT salesmgmt.rule_matches_row(r.condition, NEW);
        v_rep := NULL;
        IF r.target_kind = 'rep' THEN
            SELECT rep_id INTO v_rep FROM salesmgmt.rep WHERE rep_id = r.target_id AND active;
        ELSIF r.target_kind = 'pool' THEN
            NEW.pool_id := r.target_id;
            RETURN NEW;
        ELSE
            INSERT INTO salesmgmt.assignment_rotation AS t (team_id, turns) VALUES (r.target_id, 1)
            ON CONFLICT (team_id) DO UPDATE SET turns = t.turns + 1, updated_at = now()
            RETURNING turns INTO v_turn;
            IF r.target_kind = 'team_round_robin' THEN
                SELECT x.rep_id INTO v_rep
                  FROM (SELECT rep_id, row_number() OVER (ORDER BY rep_id) - 1 AS i, count(*) OVER () AS n
                          FROM salesmgmt.rep WHERE team_id = r.target_id AND active) x
                 WHERE x.i = (v_turn - 1) % x.n;
            ELSE
                SELECT x.rep_id INTO v_rep
                  FROM (SELECT p.rep_id, row_number() OVER (ORDER BY p.rep_id) - 1 AS i, count(*) OVER () AS n,
                               c.max_open_leads AS cap,
                               (SELECT count(*) FROM salesmgmt.lead l WHERE l.owner_rep_id = p.rep_id
                                   AND l.status IN ('new', 'working', 'nurturing', 'qualified')) AS load
                          FROM salesmgmt.rep p LEFT JOIN salesmgmt.rep_capacity c ON c.rep_id = p.rep_id
                         WHERE p.team_id = r.target_id AND p.active) x
                 WHERE x.cap IS NULL OR x.load < x.cap
                 ORDER BY x.load, (x.i - (v_turn - 1) % x.n + x.n) % x.n LIMIT 1;
            END IF;
        END IF;
        IF v_rep IS NOT NULL THEN
            NEW.owner_rep_id := v_rep;
            NEW.assigned_at := now();
            RETURN NEW;
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;

-- Scoring, set-based: attribute points by a join on the matcher, activity
-- points per lead and rule with the half-life decay, the explanation with
-- jsonb_agg, written where it changed.
CREATE OR REPLACE FUNCTION leads_ref.score_leads(p_as_of timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    WITH rules AS (
        SELECT rule_id, name, kind, condition, points, half_life_days
          FROM salesmgmt.lead_score_rule WHERE active
    ), open_leads AS (
        SELECT l.* FROM salesmgmt.lead l WHERE l.status IN ('new', 'working', 'nurturing', 'qualified')
    ), attr AS (
        SELECT l.lead_id, r.rule_id, r.name, r.points, NULL::bigint AS activities
          FROM open_leads l JOIN rules r ON r.kind = 'attribute' AND salesmgmt.rule_matches_row(r.condition, l)
    ), act AS (
        SELECT a.lead_id, r.rule_id, r.name,
               round(sum(r.points * CASE WHEN r.half_life_days IS NULL THEN 1
                                    ELSE power(0.5, greatest(extract(epoch FROM p_as_of - a.occurred_at), 0)
                                                   / 86400 / r.half_life_days) END)::numeric, 2) AS points,
               count(*) AS activities
          FROM salesmgmt.activity a
          JOIN open_leads l ON l.lead_id = a.lead_id
          JOIN rules r ON r.kind = 'activity' AND salesmgmt.rule_matches_row(r.condition, a)
         GROUP BY a.lead_id, r.rule_id, r.name
    ), parts AS (
        SELECT * FROM attr UNION ALL SELECT * FROM act
    ), scored AS (
        SELECT l.lead_id,
               round(coalesce(sum(p.points), 0), 2) AS score,
               coalesce(jsonb_agg(CASE WHEN p.activities IS NULL
                                       THEN jsonb_build_object('rule_id', p.rule_id, 'name', p.name, 'points', p.points)
                                       ELSE jsonb_build_object('rule_id', p.rule_id, 'name', p.name, 'points', p.points,
                                                               'activities', p.activities) END
                                  ORDER BY p.rule_id) FILTER (WHERE p.rule_id IS NOT NULL), '[]') AS expl
          FROM open_leads l LEFT JOIN parts p ON p.lead_id = l.lead_id
         GROUP BY l.lead_id
    )
    UPDATE salesmgmt.lead l SET score = s.score, score_explanation = s.expl
      FROM scored s
     WHERE l.lead_id = s.lead_id AND (l.score, l.score_explanation) IS DISTINCT FROM (s.score, s.expl);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- training.sql: targeted training and its measured effect (issue 22).  New
-- in 0.2.0; the install script and the upgrade from 0.1.0 both run this
-- file whole.  The columns it relies on in 0.1.0 tables (a course's
-- prerequisite and validity, an activity's KPI) are in kpi.sql and core.sql
-- and, for upgrades, upgrade/0.1.0--0.2.0/training.sql.  The effect
-- estimate (difference in differences with a bootstrap interval) is in
-- training.c.  See docs/training-and-recognition.md.

-- ---------------------------------------------------------------------------
-- What a course is for, and when a score calls for it
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.training_course_kpi (
    course_id   bigint NOT NULL REFERENCES salesmgmt.training_course (course_id) ON DELETE CASCADE,
    kpi_id      bigint NOT NULL REFERENCES salesmgmt.kpi (kpi_id),
    PRIMARY KEY (course_id, kpi_id)
);
CREATE INDEX ON salesmgmt.training_course_kpi (kpi_id);
COMMENT ON TABLE salesmgmt.training_course_kpi IS 'The KPIs a course is meant to improve: a low score on one of them makes the course a need (salesmgmt.training_needs), and salesmgmt.training_effect measures the course on them.';
COMMENT ON COLUMN salesmgmt.training_course_kpi.course_id IS 'Course.';
COMMENT ON COLUMN salesmgmt.training_course_kpi.kpi_id IS 'KPI the course is meant to improve.';

CREATE TABLE salesmgmt.training_need_threshold (
    scheme_id   bigint PRIMARY KEY REFERENCES salesmgmt.kpi_scheme (scheme_id) ON DELETE CASCADE,
    min_score   numeric(8,2) NOT NULL
                CONSTRAINT training_need_threshold_min_score_nonnegative CHECK (min_score >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE salesmgmt.training_need_threshold IS 'Per KPI scheme, the KPI score below which a course aimed at that KPI becomes a need; a scheme without a row uses 60.';
COMMENT ON COLUMN salesmgmt.training_need_threshold.scheme_id IS 'Scheme.';
COMMENT ON COLUMN salesmgmt.training_need_threshold.min_score IS 'Lowest KPI score (scorecard_item.score) that needs no training; a score below it is a need.';
COMMENT ON COLUMN salesmgmt.training_need_threshold.updated_at IS 'When the threshold was set.';

-- coaching sessions name the KPI they address (the column is in core.sql)
ALTER TABLE salesmgmt.activity
    ADD CONSTRAINT activity_kpi_fk FOREIGN KEY (kpi_id) REFERENCES salesmgmt.kpi (kpi_id),
    ADD CONSTRAINT activity_coaching_kpi CHECK ((kind = 'coaching') = (kpi_id IS NOT NULL));
CREATE INDEX activity_kpi_id_idx ON salesmgmt.activity (kpi_id) WHERE kpi_id IS NOT NULL;

-- ---------------------------------------------------------------------------
-- Needs
-- ---------------------------------------------------------------------------

-- The needs of the reps scored under a scheme for one period: every course
-- aimed at a KPI they scored below the threshold (evidence: the worst such
-- KPI, with the score and the median of the rep's team on it), and every
-- certification of theirs that expired.  Courses in progress, and courses
-- completed and still valid, are no needs.
CREATE FUNCTION salesmgmt.training_needs_for(p_scheme_id bigint, p_period_start date, p_period_end date)
RETURNS TABLE (scheme_id bigint, period_start date, period_end date, rep_id bigint, team_id bigint,
               course_id bigint, course_name text, need_rank bigint, reason text, kpi_id bigint,
               kpi_code text, score numeric, team_median numeric, threshold numeric, gap numeric,
               expired_at timestamptz, prerequisite_met boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH sc AS (
        SELECT s.scorecard_id, s.rep_id, r.team_id
          FROM salesmgmt.scorecard s
          JOIN salesmgmt.rep r ON r.rep_id = s.rep_id AND r.active
         WHERE s.scheme_id = p_scheme_id AND s.period_start = p_period_start AND s.period_end = p_period_end
    ), items AS (
        SELECT sc.rep_id, sc.team_id, i.kpi_id, i.score
          FROM sc JOIN salesmgmt.scorecard_item i ON i.scorecard_id = sc.scorecard_id
         WHERE i.score IS NOT NULL
    ), med AS (
        SELECT items.team_id, items.kpi_id,
               round((percentile_cont(0.5) WITHIN GROUP (ORDER BY items.score))::numeric, 2) AS median
          FROM items GROUP BY items.team_id, items.kpi_id
    ), thr AS (
        SELECT coalesce((SELECT t.min_score FROM salesmgmt.training_need_threshold t
                          WHERE t.scheme_id = p_scheme_id), 60) AS min_score
    ), low AS (
        SELECT DISTINCT ON (i.rep_id, ck.course_id)
               i.rep_id, i.team_id, ck.course_id, 'low_score'::text AS reason, i.kpi_id, i.score,
               m.median, thr.min_score, thr.min_score - i.score AS gap, NULL::timestamptz AS expired_at
          FROM items i
          JOIN med m ON m.team_id IS NOT DISTINCT FROM i.team_id AND m.kpi_id = i.kpi_id
          JOIN salesmgmt.training_course_kpi ck ON ck.kpi_id = i.kpi_id
          CROSS JOIN thr
         WHERE i.score < thr.min_score
           AND NOT EXISTS (SELECT 1 FROM salesmgmt.training_enrollment e
                             JOIN salesmgmt.training_course c ON c.course_id = e.course_id
                            WHERE e.rep_id = i.rep_id AND e.course_id = ck.course_id
                              AND (e.status = 'enrolled'
                                   OR (e.status = 'completed'
                                       AND (c.valid_days IS NULL
                                            OR e.completed_at + make_interval(days => c.valid_days) > now()))))
         ORDER BY i.rep_id, ck.course_id, thr.min_score - i.score DESC, i.kpi_id
    ), expired AS (
        SELECT sc.rep_id, sc.team_id, e.course_id, 'expired'::text, NULL::bigint, NULL::numeric,
               NULL::numeric, NULL::numeric, NULL::numeric,
               e.completed_at + make_interval(days => c.valid_days)
          FROM sc
          JOIN salesmgmt.training_enrollment e ON e.rep_id = sc.rep_id AND e.status = 'completed'
          JOIN salesmgmt.training_course c ON c.course_id = e.course_id
         WHERE c.valid_days IS NOT NULL
           AND e.completed_at + make_interval(days => c.valid_days) <= now()
    ), needs AS (
        SELECT * FROM low
        UNION ALL
        SELECT * FROM expired x
         WHERE NOT EXISTS (SELECT 1 FROM low l WHERE l.rep_id = x.rep_id AND l.course_id = x.course_id)
    )
    SELECT p_scheme_id, p_period_start, p_period_end, n.rep_id, n.team_id, n.course_id, c.name,
           row_number() OVER (PARTITION BY n.rep_id
                              ORDER BY (n.reason = 'expired') DESC, n.gap DESC NULLS LAST, n.course_id),
           n.reason, n.kpi_id, k.code, n.score, n.median, n.min_score, n.gap, n.expired_at,
           c.prerequisite_course_id IS NULL
           OR EXISTS (SELECT 1 FROM salesmgmt.training_enrollment p
                       WHERE p.rep_id = n.rep_id AND p.course_id = c.prerequisite_course_id
                         AND p.status = 'completed')
      FROM needs n
      JOIN salesmgmt.training_course c ON c.course_id = n.course_id
      LEFT JOIN salesmgmt.kpi k ON k.kpi_id = n.kpi_id
     ORDER BY n.rep_id, 8
$$;
COMMENT ON FUNCTION salesmgmt.training_needs_for(bigint, date, date) IS 'The training needs found in the scorecards of a scheme and period (see the view salesmgmt.training_needs, which applies it to each scheme''s latest period), ranked per rep; computed over the scorecards and enrollments the caller sees.';

CREATE VIEW salesmgmt.training_needs AS
SELECT n.*
  FROM salesmgmt.kpi_scheme k
  CROSS JOIN LATERAL (SELECT l.period_start, l.period_end
                        FROM salesmgmt.scorecard l
                       WHERE l.scheme_id = k.scheme_id
                       ORDER BY l.period_end DESC, l.period_start DESC
                       LIMIT 1) latest
  CROSS JOIN LATERAL salesmgmt.training_needs_for(k.scheme_id, latest.period_start, latest.period_end) n;
COMMENT ON VIEW salesmgmt.training_needs IS 'Per rep, the courses recommended by the latest scorecards of each scheme: courses aimed at a KPI the rep scored below the scheme''s threshold (salesmgmt.training_need_threshold, 60 by default) and certifications that expired; ranked by the gap (expired certifications first), with the evidence.';
COMMENT ON COLUMN salesmgmt.training_needs.scheme_id IS 'Scheme whose scorecards show the need.';
COMMENT ON COLUMN salesmgmt.training_needs.period_start IS 'First day of the scorecard period (the scheme''s latest).';
COMMENT ON COLUMN salesmgmt.training_needs.period_end IS 'Last day of the scorecard period.';
COMMENT ON COLUMN salesmgmt.training_needs.rep_id IS 'Rep who needs the course.';
COMMENT ON COLUMN salesmgmt.training_needs.team_id IS 'Current team of the rep (the median is over its members).';
COMMENT ON COLUMN salesmgmt.training_needs.course_id IS 'Course recommended.';
COMMENT ON COLUMN salesmgmt.training_needs.course_name IS 'Name of the course.';
COMMENT ON COLUMN salesmgmt.training_needs.need_rank IS 'Rank of the need among the rep''s needs, 1 = most urgent: expired certifications first, then by the gap, largest first.';
COMMENT ON COLUMN salesmgmt.training_needs.reason IS 'low_score (a KPI of the course scored below the threshold) or expired (the rep''s certification expired).';
COMMENT ON COLUMN salesmgmt.training_needs.kpi_id IS 'Evidence: the course''s KPI with the largest gap; null for an expired certification.';
COMMENT ON COLUMN salesmgmt.training_needs.kpi_code IS 'Code of that KPI.';
COMMENT ON COLUMN salesmgmt.training_needs.score IS 'Evidence: the rep''s score on the KPI in the period.';
COMMENT ON COLUMN salesmgmt.training_needs.team_median IS 'Evidence: the median score on the KPI of the rep''s team in the period (over the scorecards the reader sees).';
COMMENT ON COLUMN salesmgmt.training_needs.threshold IS 'The scheme''s threshold.';
COMMENT ON COLUMN salesmgmt.training_needs.gap IS 'threshold - score, in score points; null for an expired certification.';
COMMENT ON COLUMN salesmgmt.training_needs.expired_at IS 'When the certification expired (completion + valid_days); null for low scores.';
COMMENT ON COLUMN salesmgmt.training_needs.prerequisite_met IS 'False when the course has a prerequisite the rep has not completed (plan_training then skips it).';

-- ---------------------------------------------------------------------------
-- Planning
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.training_plan_assignment (
    scheme_id       bigint NOT NULL REFERENCES salesmgmt.kpi_scheme (scheme_id) ON DELETE CASCADE,
    period_start    date NOT NULL,
    period_end      date NOT NULL,
    rep_id          bigint NOT NULL REFERENCES salesmgmt.rep (rep_id),
    course_id       bigint NOT NULL REFERENCES salesmgmt.training_course (course_id) ON DELETE CASCADE,
    planned_at      timestamptz NOT NULL DEFAULT now(),
    planned_by      name NOT NULL DEFAULT current_user,
    PRIMARY KEY (scheme_id, period_start, period_end, rep_id)
);
CREATE INDEX ON salesmgmt.training_plan_assignment (rep_id);
CREATE INDEX ON salesmgmt.training_plan_assignment (course_id);
COMMENT ON TABLE salesmgmt.training_plan_assignment IS 'What salesmgmt.plan_training decided: per scheme, period and rep, the one course planned (so planning the same scorecards again plans nothing new).';
COMMENT ON COLUMN salesmgmt.training_plan_assignment.scheme_id IS 'Scheme whose scorecards were planned from.';
COMMENT ON COLUMN salesmgmt.training_plan_assignment.period_start IS 'First day of the scorecard period.';
COMMENT ON COLUMN salesmgmt.training_plan_assignment.period_end IS 'Last day of the scorecard period.';
COMMENT ON COLUMN salesmgmt.training_plan_assignment.rep_id IS 'Rep planned for.';
COMMENT ON COLUMN salesmgmt.training_plan_assignment.course_id IS 'Course planned: the rep''s top need whose prerequisite is met.';
COMMENT ON COLUMN salesmgmt.training_plan_assignment.planned_at IS 'When it was planned.';
COMMENT ON COLUMN salesmgmt.training_plan_assignment.planned_by IS 'Database role that ran plan_training.';

CREATE FUNCTION salesmgmt.plan_training(p_scheme_id bigint, p_period_start date, p_period_end date,
                                        p_due_days integer DEFAULT 30)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count integer;
BEGIN
    IF p_scheme_id IS NULL OR p_period_start IS NULL OR p_period_end IS NULL OR p_due_days IS NULL THEN
        RAISE EXCEPTION 'scheme, period and due days must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_period_end < p_period_start THEN
        RAISE EXCEPTION 'period end % is before its start %', p_period_end, p_period_start
            USING ERRCODE = '22023';
    END IF;
    IF p_due_days < 0 OR p_due_days > 3650 THEN
        RAISE EXCEPTION 'due days must be between 0 and 3650, not %', p_due_days
            USING ERRCODE = '22023', HINT = 'Give the number of days from today the courses are due.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM salesmgmt.kpi_scheme k WHERE k.scheme_id = p_scheme_id) THEN
        RAISE EXCEPTION 'KPI scheme % does not exist', p_scheme_id USING ERRCODE = '42704';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM salesmgmt.scorecard s
                    WHERE s.scheme_id = p_scheme_id AND s.period_start = p_period_start
                      AND s.period_end = p_period_end) THEN
        RAISE EXCEPTION 'no scorecards of scheme % for % to %', p_scheme_id, p_period_start, p_period_end
            USING ERRCODE = '55000',
                  HINT = 'Compute them first with salesmgmt.compute_scorecards.';
    END IF;
    -- one course per rep and period, planned once: the assignment's key
    -- makes a second run (even a concurrent one) plan nothing
    WITH top AS (
        SELECT DISTINCT ON (n.rep_id) n.rep_id, n.course_id
          FROM salesmgmt.training_needs_for(p_scheme_id, p_period_start, p_period_end) n
         WHERE n.prerequisite_met AND salesmgmt.rep_managed(n.rep_id)
         ORDER BY n.rep_id, n.need_rank
    ), planned AS (
        INSERT INTO salesmgmt.training_plan_assignment (scheme_id, period_start, period_end, rep_id, course_id)
        SELECT p_scheme_id, p_period_start, p_period_end, t.rep_id, t.course_id FROM top t
        ON CONFLICT DO NOTHING
        RETURNING rep_id, course_id
    ), enrolled AS (
        INSERT INTO salesmgmt.training_enrollment AS e (rep_id, course_id, due_date)
        SELECT p.rep_id, p.course_id, current_date + p_due_days FROM planned p
        ON CONFLICT (rep_id, course_id) DO UPDATE
           SET status = 'enrolled', score = NULL, completed_at = NULL, due_date = excluded.due_date
         WHERE e.status <> 'enrolled'
        RETURNING 1
    )
    SELECT count(*) INTO v_count FROM enrolled;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION salesmgmt.plan_training(bigint, date, date, integer) IS 'Enrolls each rep scored under the scheme for the period (managers: the reps of their trees) in their top need whose prerequisite is met, due p_due_days from today; a failed or expired course is re-opened. Plans each rep once per scheme and period (salesmgmt.training_plan_assignment), so running it again adds nothing; returns how many enrollments it made.';

-- ---------------------------------------------------------------------------
-- The effect (C)
-- ---------------------------------------------------------------------------

CREATE FUNCTION salesmgmt.training_effect(p_course_id bigint, p_window_days integer DEFAULT 90)
RETURNS TABLE (kpi_id bigint, kpi_code text, metric text, window_days integer, reps integer,
               peers integer, estimate numeric, ci_low numeric, ci_high numeric, reason text)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'sm_training_effect';
COMMENT ON FUNCTION salesmgmt.training_effect(bigint, integer) IS 'Effect of a course on each KPI it targets: for reps who completed it (with both windows over), the KPI''s value in the p_window_days before and after the completion day, minus the same change of the peers who never enrolled over the same calendar windows (difference in differences); the mean over reps, with a 95% bootstrap interval (1,000 resamples, seeded: the same data give the same interval). No estimate, and the reason, with fewer than 5 reps or a metric it cannot measure per window (win_rate, deals_won, activities and meetings are measured).';

CREATE TABLE salesmgmt.training_effect_estimate (
    course_id   bigint NOT NULL REFERENCES salesmgmt.training_course (course_id) ON DELETE CASCADE,
    kpi_id      bigint NOT NULL REFERENCES salesmgmt.kpi (kpi_id),
    window_days integer NOT NULL,
    reps        integer NOT NULL,
    peers       integer NOT NULL,
    estimate    numeric,
    ci_low      numeric,
    ci_high     numeric,
    reason      text,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (course_id, kpi_id, window_days),
    CONSTRAINT training_effect_estimate_or_reason CHECK ((estimate IS NULL) = (reason IS NOT NULL))
);
CREATE INDEX ON salesmgmt.training_effect_estimate (kpi_id);
COMMENT ON TABLE salesmgmt.training_effect_estimate IS 'The last estimate of salesmgmt.training_effect stored by salesmgmt.record_training_effect, per course, KPI and window; read by salesmgmt.training_summary.';
COMMENT ON COLUMN salesmgmt.training_effect_estimate.course_id IS 'Course.';
COMMENT ON COLUMN salesmgmt.training_effect_estimate.kpi_id IS 'KPI measured.';
COMMENT ON COLUMN salesmgmt.training_effect_estimate.window_days IS 'Days of the before and after windows.';
COMMENT ON COLUMN salesmgmt.training_effect_estimate.reps IS 'Completers with data in both windows.';
COMMENT ON COLUMN salesmgmt.training_effect_estimate.peers IS 'Reps who never enrolled in the course (the comparison group).';
COMMENT ON COLUMN salesmgmt.training_effect_estimate.estimate IS 'Difference in differences, in the KPI''s unit; null with a reason.';
COMMENT ON COLUMN salesmgmt.training_effect_estimate.ci_low IS 'Lower end of the 95% bootstrap interval.';
COMMENT ON COLUMN salesmgmt.training_effect_estimate.ci_high IS 'Upper end of the 95% bootstrap interval.';
COMMENT ON COLUMN salesmgmt.training_effect_estimate.reason IS 'Why there is no estimate; null when there is one.';
COMMENT ON COLUMN salesmgmt.training_effect_estimate.computed_at IS 'When it was computed.';

CREATE FUNCTION salesmgmt.record_training_effect(p_course_id bigint, p_window_days integer DEFAULT 90)
RETURNS SETOF salesmgmt.training_effect_estimate
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO salesmgmt.training_effect_estimate AS t
           (course_id, kpi_id, window_days, reps, peers, estimate, ci_low, ci_high, reason)
    SELECT p_course_id, e.kpi_id, e.window_days, e.reps, e.peers, e.estimate, e.ci_low, e.ci_high, e.reason
      FROM salesmgmt.training_effect(p_course_id, p_window_days) e
    ON CONFLICT (course_id, kpi_id, window_days) DO UPDATE
       SET reps = excluded.reps, peers = excluded.peers, estimate = excluded.estimate,
           ci_low = excluded.ci_low, ci_high = excluded.ci_high, reason = excluded.reason,
           computed_at = now()
    RETURNING t.*
$$;
COMMENT ON FUNCTION salesmgmt.record_training_effect(bigint, integer) IS 'Computes salesmgmt.training_effect for a course and stores it in salesmgmt.training_effect_estimate (replacing the earlier estimate of the same window), for salesmgmt.training_summary; returns the stored rows.';

CREATE VIEW salesmgmt.training_summary AS
SELECT c.course_id,
       c.name AS course_name,
       count(e.rep_id) AS enrolled,
       count(*) FILTER (WHERE e.status = 'completed') AS completed,
       count(*) FILTER (WHERE e.status = 'enrolled' AND e.due_date < current_date) AS overdue,
       round(avg(extract(epoch FROM e.completed_at - e.enrolled_at) / 86400)
             FILTER (WHERE e.status = 'completed')::numeric, 1) AS avg_days_to_complete,
       x.kpi_code AS effect_kpi,
       x.estimate AS effect_estimate,
       x.ci_low AS effect_ci_low,
       x.ci_high AS effect_ci_high,
       x.reps AS effect_reps,
       x.reason AS effect_reason,
       x.computed_at AS effect_computed_at
  FROM salesmgmt.training_course c
  LEFT JOIN salesmgmt.training_enrollment e ON e.course_id = c.course_id
  LEFT JOIN LATERAL (SELECT k.code AS kpi_code, t.estimate, t.ci_low, t.ci_high, t.reps, t.reason, t.computed_at
                       FROM salesmgmt.training_effect_estimate t
                       JOIN salesmgmt.kpi k ON k.kpi_id = t.kpi_id
                      WHERE t.course_id = c.course_id
                      ORDER BY t.computed_at DESC, t.kpi_id
                      LIMIT 1) x ON true
 GROUP BY c.course_id, c.name, x.kpi_code, x.estimate, x.ci_low, x.ci_high, x.reps, x.reason, x.computed_at;
COMMENT ON VIEW salesmgmt.training_summary IS 'Per course, for BI: enrollments, completions, overdue enrollments, average days to complete, and the latest stored effect estimate (salesmgmt.record_training_effect).';
COMMENT ON COLUMN salesmgmt.training_summary.course_id IS 'Course.';
COMMENT ON COLUMN salesmgmt.training_summary.course_name IS 'Name of the course.';
COMMENT ON COLUMN salesmgmt.training_summary.enrolled IS 'Enrollments in the course, whatever their status (over the enrollments the reader sees).';
COMMENT ON COLUMN salesmgmt.training_summary.completed IS 'Enrollments completed.';
COMMENT ON COLUMN salesmgmt.training_summary.overdue IS 'Enrollments in progress past their due date.';
COMMENT ON COLUMN salesmgmt.training_summary.avg_days_to_complete IS 'Average days from enrollment to completion of the completed enrollments, one decimal.';
COMMENT ON COLUMN salesmgmt.training_summary.effect_kpi IS 'KPI of the latest stored effect estimate.';
COMMENT ON COLUMN salesmgmt.training_summary.effect_estimate IS 'Latest stored effect (difference in differences, in the KPI''s unit); null without one.';
COMMENT ON COLUMN salesmgmt.training_summary.effect_ci_low IS 'Lower end of its 95% interval.';
COMMENT ON COLUMN salesmgmt.training_summary.effect_ci_high IS 'Upper end of its 95% interval.';
COMMENT ON COLUMN salesmgmt.training_summary.effect_reps IS 'Completers the estimate is over.';
COMMENT ON COLUMN salesmgmt.training_summary.effect_reason IS 'Why there is no estimate, if so.';
COMMENT ON COLUMN salesmgmt.training_summary.effect_computed_at IS 'When the estimate was stored.';

-- ---------------------------------------------------------------------------
-- pg_dump, row-level security, grants
-- ---------------------------------------------------------------------------

SELECT salesmgmt._register_config_table(t::regclass) FROM unnest(ARRAY[
    'salesmgmt.training_course_kpi', 'salesmgmt.training_need_threshold',
    'salesmgmt.training_plan_assignment', 'salesmgmt.training_effect_estimate']) AS t;

SELECT salesmgmt._apply_default_security();

-- configuration and the estimates: read by everyone, written by admins
GRANT SELECT ON salesmgmt.training_course_kpi, salesmgmt.training_need_threshold,
                salesmgmt.training_effect_estimate
    TO salesmgmt_manager, salesmgmt_rep;
CREATE POLICY training_course_kpi_read ON salesmgmt.training_course_kpi FOR SELECT
    TO salesmgmt_manager, salesmgmt_rep USING (true);
CREATE POLICY training_need_threshold_read ON salesmgmt.training_need_threshold FOR SELECT
    TO salesmgmt_manager, salesmgmt_rep USING (true);
CREATE POLICY training_effect_estimate_read ON salesmgmt.training_effect_estimate FOR SELECT
    TO salesmgmt_manager, salesmgmt_rep USING (true);
COMMENT ON POLICY training_course_kpi_read ON salesmgmt.training_course_kpi IS 'Everyone reads which KPIs a course targets; admins change it.';
COMMENT ON POLICY training_need_threshold_read ON salesmgmt.training_need_threshold IS 'Everyone reads the thresholds; admins change them.';
COMMENT ON POLICY training_effect_estimate_read ON salesmgmt.training_effect_estimate IS 'Everyone reads the stored course effects (aggregates over reps); admins store them.';

-- plans: reps see their own, managers their trees' and plan for them
GRANT SELECT ON salesmgmt.training_plan_assignment TO salesmgmt_manager, salesmgmt_rep;
GRANT INSERT (scheme_id, period_start, period_end, rep_id, course_id)
    ON salesmgmt.training_plan_assignment TO salesmgmt_manager;
CREATE POLICY training_plan_assignment_read ON salesmgmt.training_plan_assignment FOR SELECT
    TO salesmgmt_manager, salesmgmt_rep USING (salesmgmt.rep_visible(rep_id));
CREATE POLICY training_plan_assignment_manager_insert ON salesmgmt.training_plan_assignment FOR INSERT
    TO salesmgmt_manager WITH CHECK (salesmgmt.rep_managed(rep_id));
COMMENT ON POLICY training_plan_assignment_read ON salesmgmt.training_plan_assignment IS 'Reps see the courses planned for them, managers those of their trees.';
COMMENT ON POLICY training_plan_assignment_manager_insert ON salesmgmt.training_plan_assignment IS 'Managers plan (through plan_training) for the reps of the team trees they manage, never themselves.';

-- coaching: managers record it for the reps they manage; a session has
-- no account, which activity_insert asks for, so it has its own policy
GRANT INSERT (kpi_id), UPDATE (kpi_id) ON salesmgmt.activity TO salesmgmt_manager, salesmgmt_rep;
CREATE POLICY activity_coaching_insert ON salesmgmt.activity FOR INSERT TO salesmgmt_manager
    WITH CHECK (kind = 'coaching' AND account_id IS NULL AND deal_id IS NULL AND lead_id IS NULL
                AND salesmgmt.rep_managed(rep_id));
COMMENT ON POLICY activity_coaching_insert ON salesmgmt.activity IS 'Managers record coaching sessions (no account, deal or lead) with the reps of the team trees they manage.';

GRANT EXECUTE ON FUNCTION salesmgmt.training_needs_for(bigint, date, date)
    TO salesmgmt_manager, salesmgmt_rep, salesmgmt_analyst;
GRANT EXECUTE ON FUNCTION salesmgmt.plan_training(bigint, date, date, integer)
    TO salesmgmt_manager;
GRANT EXECUTE ON FUNCTION salesmgmt.training_effect(bigint, integer)
    TO salesmgmt_manager, salesmgmt_rep, salesmgmt_analyst;

SELECT salesmgmt._apply_default_security();

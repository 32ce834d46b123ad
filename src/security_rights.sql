-- security_rights.sql: the rights each role needs for its job (issue 14),
-- beyond reading.  Runs whole in both the install script and the upgrade
-- from 0.1.0 (right after security_rls.sql), so both create the very same
-- grants, policies and triggers.  docs/security.md has the rights table
-- (role x table x operation -> rows), and test/t/053_security_rights.pl
-- reads that table and tries every cell as each role.
--
--   * managers, for the reps of the team trees they manage and never for
--     themselves: quotas, attitude reviews, forecast adjustments (of those
--     reps and of the teams they manage), training enrollments and
--     completions, recognitions;
--   * reps and managers record feedback of visible reps;
--   * nobody but admins chooses the ids of these rows: the grants are
--     column privileges without the identity column.

-- The per-row predicates of src/security_org.sql, which every policy
-- calls as the querying role (granted here: this part runs in both the
-- install script and the upgrade, after the roles exist).
GRANT EXECUTE ON FUNCTION
    salesmgmt.rep_visible(bigint), salesmgmt.rep_managed(bigint), salesmgmt.rep_teammate(bigint),
    salesmgmt.rep_manages(bigint, bigint), salesmgmt.team_visible(bigint), salesmgmt.team_managed(bigint),
    salesmgmt.deal_visible(bigint), salesmgmt.deal_visible(bigint, bigint),
    salesmgmt.deal_changeable(bigint), salesmgmt.account_visible(bigint),
    salesmgmt.account_changeable(bigint), salesmgmt.scorecard_visible(bigint),
    salesmgmt.leaderboard_visible(bigint, bigint)
    TO salesmgmt_admin, salesmgmt_manager, salesmgmt_rep;

-- The cached leaderboard visibility of the schemes (here rather than in
-- security_org.sql: the upgrade adds the column in its delta, in between).
CREATE TRIGGER kpi_scheme_org_invalidate
    AFTER INSERT OR DELETE OR TRUNCATE ON salesmgmt.kpi_scheme
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._org_invalidate();
CREATE TRIGGER kpi_scheme_org_change_invalidate
    AFTER UPDATE ON salesmgmt.kpi_scheme FOR EACH ROW
    WHEN (OLD.scheme_id IS DISTINCT FROM NEW.scheme_id
          OR OLD.leaderboard_visibility IS DISTINCT FROM NEW.leaderboard_visibility)
    EXECUTE FUNCTION salesmgmt._org_invalidate();
COMMENT ON TRIGGER kpi_scheme_org_invalidate ON salesmgmt.kpi_scheme IS 'Row-level security cache: schemes added or removed.';
COMMENT ON TRIGGER kpi_scheme_org_change_invalidate ON salesmgmt.kpi_scheme IS 'Row-level security cache: a scheme''s leaderboard visibility changed.';

-- A manager's own rows are set by their own manager or an admin: refused
-- with a hint (the policies alone would say only "row-level security").
CREATE FUNCTION salesmgmt._not_own_row()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.rep_id IS NOT NULL
       AND NOT pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE')
       AND NEW.rep_id = salesmgmt.current_rep_id()
    THEN
        RAISE EXCEPTION 'role "%" may not write its own % row (rep %)', current_user, TG_TABLE_NAME, NEW.rep_id
            USING ERRCODE = '42501',
                  HINT = 'Your own manager (or an admin) sets your ' || TG_TABLE_NAME || ' rows; you set them for the reps of the teams you manage.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION salesmgmt._not_own_row() IS 'Internal trigger: a manager may not write quotas, reviews, forecast adjustments, training enrollments or recognitions for themselves (42501 with a hint); admins may.';

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['quota', 'review', 'forecast_adjustment', 'training_enrollment', 'recognition']
    LOOP
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER %I BEFORE INSERT OR UPDATE ON salesmgmt.%I FOR EACH ROW EXECUTE FUNCTION salesmgmt._not_own_row()',
            t || '_not_own_row', t);
        EXECUTE pg_catalog.format('COMMENT ON TRIGGER %I ON salesmgmt.%I IS %L', t || '_not_own_row', t,
                                  'A manager does not write their own rows of the table (42501 with a hint).');
    END LOOP;
END
$$;

-- quotas: of managed reps (team quotas stay with admins)
GRANT INSERT (rep_id, period_start, period_end, amount, currency),
      UPDATE (period_start, period_end, amount, currency)
    ON salesmgmt.quota TO salesmgmt_manager;
CREATE POLICY quota_manager_insert ON salesmgmt.quota FOR INSERT TO salesmgmt_manager
    WITH CHECK (salesmgmt.rep_managed(rep_id));
CREATE POLICY quota_manager_update ON salesmgmt.quota FOR UPDATE TO salesmgmt_manager
    USING (salesmgmt.rep_visible(rep_id))
    WITH CHECK (salesmgmt.rep_managed(rep_id));
COMMENT ON POLICY quota_manager_insert ON salesmgmt.quota IS 'Managers set quotas of the reps of the team trees they manage, never their own.';
COMMENT ON POLICY quota_manager_update ON salesmgmt.quota IS 'Managers change quotas of the reps of the team trees they manage (their own rows reach the trigger quota_not_own_row, which explains the refusal).';

-- attitude reviews: written by the manager, of managed reps
GRANT INSERT (rep_id, reviewer_rep_id, period_start, period_end, discipline, teamwork, customer_service, comment),
      UPDATE (discipline, teamwork, customer_service, comment)
    ON salesmgmt.review TO salesmgmt_manager;
CREATE POLICY review_manager_insert ON salesmgmt.review FOR INSERT TO salesmgmt_manager
    WITH CHECK (salesmgmt.rep_managed(rep_id) AND reviewer_rep_id = salesmgmt.current_rep_id());
CREATE POLICY review_manager_update ON salesmgmt.review FOR UPDATE TO salesmgmt_manager
    USING (salesmgmt.rep_visible(rep_id) AND reviewer_rep_id = salesmgmt.current_rep_id())
    WITH CHECK (salesmgmt.rep_managed(rep_id) AND reviewer_rep_id = salesmgmt.current_rep_id());
COMMENT ON POLICY review_manager_insert ON salesmgmt.review IS 'Managers review the reps of the team trees they manage, as themselves.';
COMMENT ON POLICY review_manager_update ON salesmgmt.review IS 'Managers change the reviews they wrote of the reps of the team trees they manage.';

-- forecast adjustments (append-only): of managed reps and managed teams
GRANT INSERT (period_start, period_end, rep_id, team_id, category, amount, currency, note)
    ON salesmgmt.forecast_adjustment TO salesmgmt_manager;
CREATE POLICY forecast_adjustment_manager_insert ON salesmgmt.forecast_adjustment FOR INSERT
    TO salesmgmt_manager
    WITH CHECK (salesmgmt.rep_managed(rep_id) OR (rep_id IS NULL AND salesmgmt.team_managed(team_id)));
COMMENT ON POLICY forecast_adjustment_manager_insert ON salesmgmt.forecast_adjustment IS 'Managers adjust the forecasts of the reps and teams of the trees they manage, never their own rep row.';

-- training: enrol managed reps, record their completions
GRANT INSERT (rep_id, course_id, due_date),
      UPDATE (status, score, due_date, completed_at)
    ON salesmgmt.training_enrollment TO salesmgmt_manager;
CREATE POLICY training_enrollment_manager_insert ON salesmgmt.training_enrollment FOR INSERT
    TO salesmgmt_manager
    WITH CHECK (salesmgmt.rep_managed(rep_id));
CREATE POLICY training_enrollment_manager_update ON salesmgmt.training_enrollment FOR UPDATE
    TO salesmgmt_manager
    USING (salesmgmt.rep_visible(rep_id))
    WITH CHECK (salesmgmt.rep_managed(rep_id));
COMMENT ON POLICY training_enrollment_manager_insert ON salesmgmt.training_enrollment IS 'Managers enrol the reps of the team trees they manage.';
COMMENT ON POLICY training_enrollment_manager_update ON salesmgmt.training_enrollment IS 'Managers record completions of the reps of the team trees they manage.';

-- recognitions: granted by the manager to managed reps
GRANT INSERT (rep_id, kind, title, period_start, amount, currency, reason, granted_by)
    ON salesmgmt.recognition TO salesmgmt_manager;
CREATE POLICY recognition_manager_insert ON salesmgmt.recognition FOR INSERT TO salesmgmt_manager
    WITH CHECK (salesmgmt.rep_managed(rep_id) AND granted_by = salesmgmt.current_rep_id());
COMMENT ON POLICY recognition_manager_insert ON salesmgmt.recognition IS 'Managers grant recognitions, as themselves, to the reps of the team trees they manage.';

-- feedback: reps and managers record it for visible reps, about accounts
-- and deals they see (triage and resolution stay with admins)
GRANT INSERT (source, account_id, deal_id, rep_id, category, sentiment, body)
    ON salesmgmt.feedback TO salesmgmt_manager, salesmgmt_rep;
CREATE POLICY feedback_insert ON salesmgmt.feedback FOR INSERT TO salesmgmt_manager, salesmgmt_rep
    WITH CHECK (salesmgmt.rep_visible(rep_id)
                AND (account_id IS NULL OR salesmgmt.account_visible(account_id))
                AND (deal_id IS NULL OR salesmgmt.deal_visible(deal_id)));
COMMENT ON POLICY feedback_insert ON salesmgmt.feedback IS 'Reps and managers record feedback of visible reps about accounts and deals they see.';

-- BI logins (salesmgmt_analyst, created by security_rls.sql): the read-only
-- functions reps may call (not move_deal: it writes)
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'salesmgmt'::regnamespace AND p.provolatile <> 'v'
           AND pg_catalog.has_function_privilege('salesmgmt_rep', p.oid, 'EXECUTE')
         ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO salesmgmt_analyst', f);
    END LOOP;
END
$$;

SELECT salesmgmt._apply_default_security();

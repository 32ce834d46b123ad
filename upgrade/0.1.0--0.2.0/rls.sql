-- rls.sql: 0.1.0 to 0.2.0, row-level security of the 0.1.0 tables.
-- The policies' IN (SELECT salesmgmt.visible_rep_ids()) sub-selects become
-- calls of the per-row predicates of src/security_org.sql (which the
-- upgrade script runs just before this file); names, commands and roles
-- stay, so ALTER POLICY gives the catalog a fresh install has.  Also:
--   * deal_stage_history follows the owner at the time of each row
--     (issue 23, 1);
--   * contacts are written by the account owner's side only, not by a
--     split partner (issue 23, 4);
--   * team-level forecast adjustments are visible to the team's managers
--     (issue 23, 7).

REVOKE ALL ON FUNCTION
    salesmgmt.rep_visible(bigint), salesmgmt.rep_managed(bigint),
    salesmgmt.team_visible(bigint), salesmgmt.team_managed(bigint),
    salesmgmt.deal_visible(bigint), salesmgmt.deal_visible(bigint, bigint),
    salesmgmt.deal_changeable(bigint), salesmgmt.account_visible(bigint),
    salesmgmt.account_changeable(bigint), salesmgmt.scorecard_visible(bigint),
    salesmgmt.rep_teammate(bigint), salesmgmt.leaderboard_visible(bigint, bigint),
    salesmgmt.rep_manages(bigint, bigint), salesmgmt._org_invalidate()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    salesmgmt.rep_visible(bigint), salesmgmt.rep_managed(bigint),
    salesmgmt.team_visible(bigint), salesmgmt.team_managed(bigint),
    salesmgmt.deal_visible(bigint), salesmgmt.deal_visible(bigint, bigint),
    salesmgmt.deal_changeable(bigint), salesmgmt.account_visible(bigint),
    salesmgmt.account_changeable(bigint), salesmgmt.scorecard_visible(bigint),
    salesmgmt.rep_teammate(bigint), salesmgmt.leaderboard_visible(bigint, bigint),
    salesmgmt.rep_manages(bigint, bigint)
    TO salesmgmt_admin, salesmgmt_manager, salesmgmt_rep;
GRANT EXECUTE ON FUNCTION salesmgmt._org_invalidate() TO salesmgmt_admin;

-- leaderboards: who sees a rep's scorecard besides the rep's side
ALTER TABLE salesmgmt.kpi_scheme ADD COLUMN leaderboard_visibility text NOT NULL DEFAULT 'scheme'
    CONSTRAINT kpi_scheme_leaderboard_visibility_valid
    CHECK (leaderboard_visibility IN ('private', 'team', 'scheme'));
COMMENT ON COLUMN salesmgmt.kpi_scheme.leaderboard_visibility IS 'Who sees a rep''s scorecard (rank, score, grade) of the scheme besides the rep and its managers: scheme = every rep (the default, as a contest shows its participants), team = the rep''s teammates, private = nobody.';

-- the core tables (security.sql)
ALTER POLICY account_read ON salesmgmt.account
    USING (salesmgmt.rep_visible(owner_rep_id) OR salesmgmt.account_visible(account_id));
ALTER POLICY account_insert ON salesmgmt.account
    WITH CHECK (salesmgmt.rep_visible(owner_rep_id));
ALTER POLICY account_update ON salesmgmt.account
    USING (salesmgmt.rep_visible(owner_rep_id))
    WITH CHECK (salesmgmt.rep_visible(owner_rep_id));
ALTER POLICY contact_read ON salesmgmt.contact
    USING (salesmgmt.account_visible(account_id));
ALTER POLICY contact_insert ON salesmgmt.contact
    WITH CHECK (salesmgmt.account_changeable(account_id));
ALTER POLICY contact_update ON salesmgmt.contact
    USING (salesmgmt.account_changeable(account_id))
    WITH CHECK (salesmgmt.account_changeable(account_id));
ALTER POLICY deal_read ON salesmgmt.deal
    USING (salesmgmt.deal_visible(deal_id, owner_rep_id));
ALTER POLICY deal_insert ON salesmgmt.deal
    WITH CHECK (salesmgmt.rep_visible(owner_rep_id) AND salesmgmt.account_visible(account_id));
ALTER POLICY deal_update ON salesmgmt.deal
    USING (salesmgmt.rep_visible(owner_rep_id))
    WITH CHECK (salesmgmt.rep_visible(owner_rep_id));
ALTER POLICY deal_split_read ON salesmgmt.deal_split
    USING (salesmgmt.rep_visible(rep_id) OR salesmgmt.deal_visible(deal_id));
ALTER POLICY deal_split_write ON salesmgmt.deal_split
    USING (salesmgmt.deal_changeable(deal_id))
    WITH CHECK (salesmgmt.deal_changeable(deal_id));
ALTER POLICY payment_read ON salesmgmt.payment
    USING (salesmgmt.deal_visible(deal_id));
ALTER POLICY deal_stage_history_read ON salesmgmt.deal_stage_history
    USING (salesmgmt.rep_visible(owner_rep_id));
ALTER POLICY activity_read ON salesmgmt.activity
    USING (salesmgmt.rep_visible(rep_id)
           OR salesmgmt.deal_visible(deal_id)
           OR (deal_id IS NULL AND salesmgmt.account_changeable(account_id)));
ALTER POLICY activity_write ON salesmgmt.activity
    USING (salesmgmt.rep_visible(rep_id))
    WITH CHECK (salesmgmt.rep_visible(rep_id) AND salesmgmt.account_visible(account_id));
ALTER POLICY quota_read ON salesmgmt.quota
    USING (salesmgmt.rep_visible(rep_id) OR salesmgmt.team_visible(team_id));
ALTER POLICY sales_task_read ON salesmgmt.sales_task
    USING (salesmgmt.rep_visible(rep_id) OR salesmgmt.rep_visible(assigned_by));
ALTER POLICY sales_task_write ON salesmgmt.sales_task
    USING (salesmgmt.rep_visible(rep_id))
    WITH CHECK (salesmgmt.rep_visible(rep_id)
                AND (assigned_by IS NULL OR salesmgmt.rep_visible(assigned_by)
                     OR salesmgmt.rep_manages(assigned_by, rep_id)));

-- the other concerns' read policies (generated by security.sql)
ALTER POLICY commission_line_read ON salesmgmt.commission_line USING (salesmgmt.rep_visible(rep_id));
ALTER POLICY commission_assignment_read ON salesmgmt.commission_assignment USING (salesmgmt.rep_visible(rep_id));
ALTER POLICY commission_draw_read ON salesmgmt.commission_draw USING (salesmgmt.rep_visible(rep_id));
ALTER POLICY scorecard_read ON salesmgmt.scorecard
    USING (salesmgmt.rep_visible(rep_id) OR salesmgmt.leaderboard_visible(scheme_id, rep_id));
ALTER POLICY training_enrollment_read ON salesmgmt.training_enrollment USING (salesmgmt.rep_visible(rep_id));
ALTER POLICY recognition_read ON salesmgmt.recognition USING (salesmgmt.rep_visible(rep_id));
ALTER POLICY csat_response_read ON salesmgmt.csat_response USING (salesmgmt.rep_visible(rep_id));
ALTER POLICY review_read ON salesmgmt.review
    USING (salesmgmt.rep_visible(rep_id) OR salesmgmt.rep_visible(reviewer_rep_id));
ALTER POLICY feedback_read ON salesmgmt.feedback
    USING (salesmgmt.rep_visible(rep_id) OR salesmgmt.rep_visible(assignee_rep_id));
ALTER POLICY forecast_adjustment_read ON salesmgmt.forecast_adjustment
    USING (salesmgmt.rep_visible(rep_id) OR (rep_id IS NULL AND salesmgmt.team_managed(team_id)));
ALTER POLICY scorecard_item_read ON salesmgmt.scorecard_item USING (salesmgmt.scorecard_visible(scorecard_id));

-- the comments that changed with them
COMMENT ON POLICY contact_insert ON salesmgmt.contact IS 'Reps and managers add contacts to accounts owned by a visible rep (a split partner does not).';
COMMENT ON POLICY contact_update ON salesmgmt.contact IS 'Reps and managers change contacts of accounts owned by a visible rep, and keep them there (a split partner does not).';
COMMENT ON POLICY deal_stage_history_read ON salesmgmt.deal_stage_history IS 'Reps and managers see the history rows written while a visible rep owned the deal (owner_rep_id of the row): history never passes to a later holder of the deal id.';
COMMENT ON POLICY forecast_adjustment_read ON salesmgmt.forecast_adjustment IS 'Reps and managers read the rows of visible reps (rep_id), and managers the team-level rows of the teams they manage; admins write.';
COMMENT ON POLICY scorecard_read ON salesmgmt.scorecard IS 'Reps and managers read the rows of visible reps (rep_id), and peers as the scheme''s leaderboard_visibility says; admins write.';

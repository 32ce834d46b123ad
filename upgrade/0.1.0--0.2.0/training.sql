-- Targeted training (issue 22): what 0.1.0 tables gain.  The new objects
-- (course KPIs, thresholds, needs, planning, the effect) are in
-- src/training.sql, which the install and this upgrade both run whole.

-- courses: a prerequisite and a validity period (certifications)
ALTER TABLE salesmgmt.training_course
    ADD COLUMN prerequisite_course_id bigint REFERENCES salesmgmt.training_course (course_id),
    ADD COLUMN valid_days integer
        CONSTRAINT training_course_valid_days_positive CHECK (valid_days > 0),
    ADD CONSTRAINT training_course_not_own_prerequisite CHECK (prerequisite_course_id <> course_id);
CREATE INDEX ON salesmgmt.training_course (prerequisite_course_id);
COMMENT ON COLUMN salesmgmt.training_course.prerequisite_course_id IS 'Course a rep must have completed before this one is planned for them (salesmgmt.plan_training); null for none.';
COMMENT ON COLUMN salesmgmt.training_course.valid_days IS 'Days a completion stays valid (a certification); after that the course is a need again (salesmgmt.training_needs, reason expired); null for a completion that never expires.';

-- coaching: an activity kind, with the KPI it addresses and no account
ALTER TABLE salesmgmt.activity DROP CONSTRAINT activity_kind_valid;
ALTER TABLE salesmgmt.activity ADD CONSTRAINT activity_kind_valid
    CHECK (kind IN ('call', 'email', 'meeting', 'visit', 'demo', 'note', 'coaching'));
ALTER TABLE salesmgmt.activity DROP CONSTRAINT activity_account_or_lead;
ALTER TABLE salesmgmt.activity ADD CONSTRAINT activity_account_or_lead
    CHECK (account_id IS NOT NULL OR lead_id IS NOT NULL OR kind = 'coaching');
ALTER TABLE salesmgmt.activity ADD COLUMN kpi_id bigint;
COMMENT ON COLUMN salesmgmt.activity.kind IS 'call, email, meeting, visit, demo or note; coaching for a manager''s one-to-one coaching session with the rep (rep_id), about a KPI (kpi_id).';
COMMENT ON COLUMN salesmgmt.activity.account_id IS 'Account the communication was with; null only for an activity on a lead not converted yet, or for coaching.';
COMMENT ON COLUMN salesmgmt.activity.kpi_id IS 'For coaching: the KPI the session addresses (required for coaching, null for every other kind).';

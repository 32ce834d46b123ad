-- security_org.sql: the per-row visibility predicates that every row-level
-- security policy calls, in C over a per-backend cache of the organisation
-- (src/org.c).  Comes right before security.sql in the install script (its
-- policies call them) and first in the upgrade from 0.1.0 (the delta
-- upgrade/0.1.0--0.2.0/rls.sql replaces the policies with calls to them);
-- it only adds objects.  The grants are in security.sql (a fresh install
-- creates the roles there) and in the delta.
--
-- A predicate answers for the current role (current_user inside a policy:
-- the role running the query).  They are STRICT (null in, null out), STABLE
-- and PARALLEL SAFE, and contain no sub-select: the one policy form a
-- distributed PostgreSQL (Citus) accepts.  They read the tables as the
-- schema's owner, so they never recurse into the caller's own policies.

CREATE FUNCTION salesmgmt.rep_visible(p_rep_id bigint)
RETURNS boolean
LANGUAGE c STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_rep_visible';
COMMENT ON FUNCTION salesmgmt.rep_visible(bigint) IS 'Per-row policy predicate: true when the current role sees the rows of the rep (admins every rep, managers themselves and every rep of the team trees they manage, reps themselves); null for a null rep.';

CREATE FUNCTION salesmgmt.rep_managed(p_rep_id bigint)
RETURNS boolean
LANGUAGE c STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_rep_managed';
COMMENT ON FUNCTION salesmgmt.rep_managed(bigint) IS 'Per-row policy predicate: true when the current role manages the rep (admins every rep; managers the reps of the team trees they manage, never themselves); null for a null rep.';

CREATE FUNCTION salesmgmt.team_visible(p_team_id bigint)
RETURNS boolean
LANGUAGE c STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_team_visible';
COMMENT ON FUNCTION salesmgmt.team_visible(bigint) IS 'Per-row policy predicate: true when the current role sees the team-level rows of the team (admins every team, a rep its own team, managers also every team of the trees they manage); null for a null team.';

CREATE FUNCTION salesmgmt.team_managed(p_team_id bigint)
RETURNS boolean
LANGUAGE c STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_team_managed';
COMMENT ON FUNCTION salesmgmt.team_managed(bigint) IS 'Per-row policy predicate: true when the current role manages the team (admins every team, managers the teams of the trees they manage); null for a null team.';

CREATE FUNCTION salesmgmt.deal_visible(p_deal_id bigint)
RETURNS boolean
LANGUAGE c STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_deal_visible';
COMMENT ON FUNCTION salesmgmt.deal_visible(bigint) IS 'Per-row policy predicate: true when the deal exists and the current role sees it (its owner is visible, or a credit split shares it with a visible rep); null for a null deal.';

CREATE FUNCTION salesmgmt.deal_visible(p_deal_id bigint, p_owner_rep_id bigint)
RETURNS boolean
LANGUAGE c STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_deal_row_visible';
COMMENT ON FUNCTION salesmgmt.deal_visible(bigint, bigint) IS 'Per-row policy predicate of the deal table itself: true when the current role sees a deal with this id and owner (the owner is visible, or a credit split shares the deal with a visible rep); saves looking the owner up.';

CREATE FUNCTION salesmgmt.deal_changeable(p_deal_id bigint)
RETURNS boolean
LANGUAGE c STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_deal_changeable';
COMMENT ON FUNCTION salesmgmt.deal_changeable(bigint) IS 'Per-row policy predicate: true when the deal exists and its owner is visible to the current role (the owner''s side of the deal; a split partner reads the deal but does not change it).';

CREATE FUNCTION salesmgmt.account_visible(p_account_id bigint)
RETURNS boolean
LANGUAGE c STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_account_visible';
COMMENT ON FUNCTION salesmgmt.account_visible(bigint) IS 'Per-row policy predicate: true when the current role sees the account (owned by a visible rep, or the account of a deal it sees, a split-shared one included).';

CREATE FUNCTION salesmgmt.account_changeable(p_account_id bigint)
RETURNS boolean
LANGUAGE c STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_account_changeable';
COMMENT ON FUNCTION salesmgmt.account_changeable(bigint) IS 'Per-row policy predicate: true when the account is owned by a rep visible to the current role: the owner''s side writes the account and its contacts, a split partner only reads them.';

-- scorecard_item rows follow their scorecard's rep (not the leaderboard:
-- peers see a score, not the KPI values behind it).  An invoker lookup.
CREATE FUNCTION salesmgmt.scorecard_visible(p_scorecard_id bigint)
RETURNS boolean
LANGUAGE plpgsql STRICT STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM salesmgmt.scorecard s
                    WHERE s.scorecard_id = p_scorecard_id AND salesmgmt.rep_visible(s.rep_id));
END
$$;
COMMENT ON FUNCTION salesmgmt.scorecard_visible(bigint) IS 'Per-row policy predicate of scorecard items: true when the current role sees the rows of the scorecard''s rep (a peer who sees the score on the leaderboard does not see the KPI values behind it).';

-- The cache's invalidation: a change of the organisation, the credit
-- splits, the owner or account of deals, or accounts tells every backend
-- at commit.  Ordinary deal updates (stage, amount) send nothing.
CREATE FUNCTION salesmgmt._org_invalidate()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'sm_org_invalidate';
COMMENT ON FUNCTION salesmgmt._org_invalidate() IS 'Internal statement trigger: sends a relcache invalidation for the table (or the salesmgmt relation named by the trigger''s argument) so that every backend reloads its cached organisation for row-level security.';

-- Rows added or removed: a statement trigger.  Rows changed: a row
-- trigger that fires only when a column the cache reads really changes
-- (an application that rewrites every column of a deal sends nothing);
-- one invalidation per statement however many rows fire it.
CREATE TRIGGER team_org_invalidate
    AFTER INSERT OR DELETE OR TRUNCATE ON salesmgmt.team
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._org_invalidate();
CREATE TRIGGER team_org_change_invalidate
    AFTER UPDATE ON salesmgmt.team FOR EACH ROW
    WHEN (OLD.team_id IS DISTINCT FROM NEW.team_id
          OR OLD.parent_team_id IS DISTINCT FROM NEW.parent_team_id
          OR OLD.manager_rep_id IS DISTINCT FROM NEW.manager_rep_id)
    EXECUTE FUNCTION salesmgmt._org_invalidate();
CREATE TRIGGER rep_org_invalidate
    AFTER INSERT OR DELETE OR TRUNCATE ON salesmgmt.rep
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._org_invalidate();
CREATE TRIGGER rep_org_change_invalidate
    AFTER UPDATE ON salesmgmt.rep FOR EACH ROW
    WHEN (OLD.rep_id IS DISTINCT FROM NEW.rep_id OR OLD.team_id IS DISTINCT FROM NEW.team_id
          OR OLD.active IS DISTINCT FROM NEW.active OR OLD.db_role IS DISTINCT FROM NEW.db_role)
    EXECUTE FUNCTION salesmgmt._org_invalidate();
CREATE TRIGGER deal_split_org_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON salesmgmt.deal_split
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._org_invalidate();
CREATE TRIGGER account_org_invalidate
    AFTER INSERT OR DELETE OR TRUNCATE ON salesmgmt.account
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._org_invalidate();
CREATE TRIGGER account_org_change_invalidate
    AFTER UPDATE ON salesmgmt.account FOR EACH ROW
    WHEN (OLD.account_id IS DISTINCT FROM NEW.account_id
          OR OLD.owner_rep_id IS DISTINCT FROM NEW.owner_rep_id)
    EXECUTE FUNCTION salesmgmt._org_invalidate();
-- deal owners and deletions: the deal owner cache (and the accounts seen)
CREATE TRIGGER deal_org_invalidate
    AFTER DELETE OR TRUNCATE ON salesmgmt.deal
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._org_invalidate();
CREATE TRIGGER deal_org_change_invalidate
    AFTER UPDATE ON salesmgmt.deal FOR EACH ROW
    WHEN (OLD.deal_id IS DISTINCT FROM NEW.deal_id
          OR OLD.owner_rep_id IS DISTINCT FROM NEW.owner_rep_id
          OR OLD.account_id IS DISTINCT FROM NEW.account_id)
    EXECUTE FUNCTION salesmgmt._org_invalidate();
-- new deals: only the accounts seen through them (new deal ids are
-- looked up when first asked for)
CREATE TRIGGER deal_insert_org_invalidate
    AFTER INSERT ON salesmgmt.deal
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._org_invalidate('account');

COMMENT ON TRIGGER team_org_invalidate ON salesmgmt.team IS 'Row-level security cache: teams added or removed.';
COMMENT ON TRIGGER team_org_change_invalidate ON salesmgmt.team IS 'Row-level security cache: the team tree or a team''s manager changed.';
COMMENT ON TRIGGER rep_org_invalidate ON salesmgmt.rep IS 'Row-level security cache: reps added or removed.';
COMMENT ON TRIGGER rep_org_change_invalidate ON salesmgmt.rep IS 'Row-level security cache: a rep''s team, login or activity changed.';
COMMENT ON TRIGGER deal_split_org_invalidate ON salesmgmt.deal_split IS 'Row-level security cache: credit splits changed.';
COMMENT ON TRIGGER account_org_invalidate ON salesmgmt.account IS 'Row-level security cache: accounts added or removed.';
COMMENT ON TRIGGER account_org_change_invalidate ON salesmgmt.account IS 'Row-level security cache: an account''s owner changed.';
COMMENT ON TRIGGER deal_org_invalidate ON salesmgmt.deal IS 'Row-level security cache: deals removed.';
COMMENT ON TRIGGER deal_org_change_invalidate ON salesmgmt.deal IS 'Row-level security cache: a deal''s owner or account changed.';
COMMENT ON TRIGGER deal_insert_org_invalidate ON salesmgmt.deal IS 'Row-level security cache: new deals may show their accounts to more roles.';

CREATE FUNCTION salesmgmt.rep_teammate(p_rep_id bigint)
RETURNS boolean
LANGUAGE c STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_rep_teammate';
COMMENT ON FUNCTION salesmgmt.rep_teammate(bigint) IS 'Per-row policy predicate: true when the rep is visible to the current role or in the same team as the current role''s rep.';

CREATE FUNCTION salesmgmt.rep_manages(p_manager_rep_id bigint, p_rep_id bigint)
RETURNS boolean
LANGUAGE c STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_rep_manages';
COMMENT ON FUNCTION salesmgmt.rep_manages(bigint, bigint) IS 'True when the first rep manages a team at or above the second rep''s team (is in its manager chain); for example a task assigned by one of the rep''s managers.';

-- Leaderboards: peers see each other's scorecard (rank, score, grade) as
-- the scheme's leaderboard_visibility says; the KPI values behind a score
-- (scorecard_item), reviews and commission lines stay with the rep's side.
CREATE FUNCTION salesmgmt.leaderboard_visible(p_scheme_id bigint, p_rep_id bigint)
RETURNS boolean
LANGUAGE c STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_leaderboard_visible';
COMMENT ON FUNCTION salesmgmt.leaderboard_visible(bigint, bigint) IS 'Per-row policy predicate of scorecards: true when the current role sees the rep''s scorecard of the scheme: its own side always; peers as the scheme''s leaderboard_visibility says (scheme: every rep, team: the same team, private: nobody).';

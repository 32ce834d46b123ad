-- security.sql: who may see and change what.  Comes last in the install
-- script, so it can cover every table, view and function the other concerns
-- created before it.  See docs/security.md.
--
-- The model:
--   * three NOLOGIN group roles: salesmgmt_admin (everything),
--     salesmgmt_manager (their own rows and those of every rep in the team
--     trees they manage), salesmgmt_rep (their own rows);
--   * a login role is a rep when salesmgmt.rep.db_role names it and it is a
--     member of salesmgmt_rep or salesmgmt_manager;
--   * row-level security on every table holding per-rep data; a policy for
--     salesmgmt_admin that is simply "true" (admins pay nothing), and one for
--     reps and managers that tests membership in sets computed once per
--     statement by SECURITY DEFINER helpers (hashed sub-plans, not per-row
--     function calls);
--   * configuration (pipelines, stages, currencies, the team tree and the
--     rep directory) readable by all three roles, writable by admins only;
--   * nothing granted to PUBLIC.

-- ---------------------------------------------------------------------------
-- Roles (cluster-wide: another database may have created them already)
-- ---------------------------------------------------------------------------

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['salesmgmt_admin', 'salesmgmt_manager', 'salesmgmt_rep']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;

-- A rep row mapped to a group role would hand its view to every member of
-- the group (they can all SET ROLE to it), and to a predefined role to
-- half the cluster.
ALTER TABLE salesmgmt.rep ADD CONSTRAINT rep_db_role_not_group
    CHECK (db_role NOT IN ('salesmgmt_admin', 'salesmgmt_manager', 'salesmgmt_rep', 'public')
           AND db_role !~ '^pg_');

-- ---------------------------------------------------------------------------
-- Visibility helpers
--
-- Each takes the role to answer for, defaulting to current_user: a default
-- is evaluated in the caller's context, so inside a policy it is the role
-- running the query, not the owner these functions run as.  A session may
-- only ask about roles it can act as (SET ROLE to), so nobody learns
-- another rep's scope.
-- ---------------------------------------------------------------------------

-- The rep a role is mapped to (active reps only), or null.
CREATE FUNCTION salesmgmt.current_rep_id(p_role name DEFAULT current_user)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rep bigint;
BEGIN
    IF p_role IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = p_role) THEN
        RETURN NULL;
    END IF;
    IF NOT pg_catalog.pg_has_role(session_user, p_role, 'MEMBER') THEN
        RAISE EXCEPTION 'role "%" may not ask which rep role "%" is', session_user, p_role
            USING ERRCODE = '42501',
                  HINT = 'Call the function without an argument to ask about the current role.';
    END IF;
    SELECT r.rep_id INTO v_rep FROM salesmgmt.rep r WHERE r.db_role = p_role AND r.active;
    RETURN v_rep;
END
$$;
COMMENT ON FUNCTION salesmgmt.current_rep_id(name) IS 'The active rep mapped to the role (default: the current role) through rep.db_role, or null; a session may only ask about roles it can SET ROLE to.';

-- Teams a rep manages and every team below them.  Internal: called by
-- the helpers below (as their owner), not granted to anyone.
CREATE FUNCTION salesmgmt._managed_team_ids(p_rep_id bigint)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- PL/pgSQL rather than SQL: the plan is kept across calls, and the
    -- policies call this once per statement
    RETURN QUERY
    WITH RECURSIVE tree(team_id) AS (
        SELECT t.team_id FROM salesmgmt.team t WHERE t.manager_rep_id = p_rep_id
        UNION
        SELECT t.team_id FROM salesmgmt.team t JOIN tree ON t.parent_team_id = tree.team_id
    )
    SELECT tree.team_id FROM tree;
END
$$;
COMMENT ON FUNCTION salesmgmt._managed_team_ids(bigint) IS 'Internal: the teams a rep manages and every team below them (UNION stops at a cycle).';

-- Reps whose rows the role sees: its own rep, and for members of
-- salesmgmt_manager every rep of every team below a team it manages.
CREATE FUNCTION salesmgmt.visible_rep_ids(p_role name DEFAULT current_user)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 20
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rep bigint := salesmgmt.current_rep_id(p_role);
BEGIN
    IF v_rep IS NULL THEN
        RETURN;
    END IF;
    RETURN NEXT v_rep;
    IF pg_catalog.pg_has_role(p_role, 'salesmgmt_manager', 'USAGE') THEN
        -- a join, not team_id = ANY (array): a VP's thousand teams would
        -- be searched linearly for every rep
        RETURN QUERY
        SELECT r.rep_id
          FROM salesmgmt.rep r JOIN salesmgmt._managed_team_ids(v_rep) AS t(team_id) ON t.team_id = r.team_id
         WHERE r.rep_id <> v_rep;
    END IF;
END
$$;
COMMENT ON FUNCTION salesmgmt.visible_rep_ids(name) IS 'Reps whose rows the role (default: the current role) sees: its own, and for managers every rep of the team trees they manage. Empty for an unmapped or inactive role.';

-- Teams whose team-level rows (quotas) the role sees: the rep's own team,
-- and for managers every team of the trees they manage.
CREATE FUNCTION salesmgmt.visible_team_ids(p_role name DEFAULT current_user)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 10
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rep bigint := salesmgmt.current_rep_id(p_role);
BEGIN
    IF v_rep IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT r.team_id FROM salesmgmt.rep r WHERE r.rep_id = v_rep AND r.team_id IS NOT NULL;
    IF pg_catalog.pg_has_role(p_role, 'salesmgmt_manager', 'USAGE') THEN
        RETURN QUERY SELECT salesmgmt._managed_team_ids(v_rep);
    END IF;
END
$$;
COMMENT ON FUNCTION salesmgmt.visible_team_ids(name) IS 'Teams whose team-level rows (quotas) the role sees: the rep''s own team and, for managers, every team of the trees they manage (a team may appear twice).';

-- Deals a visible rep holds a credit share of.  A definer function rather
-- than a sub-select in the deal policy: deal_split's own policy refers to
-- deal, and policies may not refer to each other in a circle.
CREATE FUNCTION salesmgmt.split_deal_ids(p_role name DEFAULT current_user)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 20
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reps bigint[] := ARRAY(SELECT salesmgmt.visible_rep_ids(p_role));
BEGIN
    -- a rep's few ids: index probes; a manager's many: one hashed scan
    IF pg_catalog.cardinality(v_reps) <= 1 THEN
        RETURN QUERY SELECT s.deal_id FROM salesmgmt.deal_split s WHERE s.rep_id = v_reps[1];
    ELSE
        RETURN QUERY SELECT DISTINCT s.deal_id FROM salesmgmt.deal_split s
                      WHERE s.rep_id IN (SELECT pg_catalog.unnest(v_reps));
    END IF;
END
$$;
COMMENT ON FUNCTION salesmgmt.split_deal_ids(name) IS 'Deals in which a rep visible to the role (default: the current role) holds a credit share.';

-- Whether the role may see (and put deals, contacts, activities on) an
-- account: owned by a visible rep, or the account of a deal it sees.  One
-- account at a time, for the checks of new rows: the whole set of a
-- manager's accounts would cost a scan of their deals per statement.
CREATE FUNCTION salesmgmt.account_in_scope(p_account_id bigint, p_role name DEFAULT current_user)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reps bigint[];
BEGIN
    IF p_account_id IS NULL THEN
        RETURN false;
    END IF;
    v_reps := ARRAY(SELECT salesmgmt.visible_rep_ids(p_role));
    RETURN EXISTS (SELECT 1 FROM salesmgmt.account a
                    WHERE a.account_id = p_account_id AND a.owner_rep_id = ANY (v_reps))
        OR EXISTS (SELECT 1 FROM salesmgmt.deal d
                    WHERE d.account_id = p_account_id AND d.owner_rep_id = ANY (v_reps))
        OR EXISTS (SELECT 1 FROM salesmgmt.deal d JOIN salesmgmt.deal_split s ON s.deal_id = d.deal_id
                    WHERE d.account_id = p_account_id AND s.rep_id = ANY (v_reps));
END
$$;
COMMENT ON FUNCTION salesmgmt.account_in_scope(bigint, name) IS 'True when the role (default: the current role) sees the account: owned by a visible rep, or the account of a deal it sees.';

-- A deal moved to another account must stay within the writer's accounts;
-- checked only when account_id changes, so ordinary updates pay nothing.
CREATE FUNCTION salesmgmt._deal_account_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE')
       AND NOT salesmgmt.account_in_scope(NEW.account_id)
    THEN
        RAISE EXCEPTION 'deal % cannot be moved to account %: the account is not one you can see',
            NEW.deal_id, NEW.account_id
            USING ERRCODE = '42501',
                  HINT = 'Move deals only to accounts owned by you (or your team), or ask an admin.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION salesmgmt._deal_account_check() IS 'Internal trigger: a rep or manager may move a deal only to an account they can see.';
CREATE TRIGGER deal_account_in_scope
    BEFORE UPDATE OF account_id ON salesmgmt.deal
    FOR EACH ROW WHEN (OLD.account_id IS DISTINCT FROM NEW.account_id)
    EXECUTE FUNCTION salesmgmt._deal_account_check();

CREATE FUNCTION salesmgmt.is_visible_rep(p_rep_id bigint)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN p_rep_id IS NULL THEN NULL
        WHEN pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE') THEN true
        ELSE p_rep_id IN (SELECT salesmgmt.visible_rep_ids())
    END;
$$;
COMMENT ON FUNCTION salesmgmt.is_visible_rep(bigint) IS 'True when the current role sees the rows of the rep: admins see every rep, managers their team trees, reps themselves.';

-- What the current role is to salesmgmt: for checking a login's mapping.
CREATE FUNCTION salesmgmt.current_access(
    OUT role_name name, OUT rep_id bigint, OUT rep_name text, OUT access text,
    OUT visible_reps bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT current_user,
           salesmgmt.current_rep_id(),
           (SELECT r.name FROM salesmgmt.rep r WHERE r.rep_id = salesmgmt.current_rep_id()),
           CASE WHEN pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE') THEN 'admin'
                WHEN salesmgmt.current_rep_id() IS NULL THEN 'none'
                WHEN pg_catalog.pg_has_role(current_user, 'salesmgmt_manager', 'USAGE') THEN 'manager'
                WHEN pg_catalog.pg_has_role(current_user, 'salesmgmt_rep', 'USAGE') THEN 'rep'
                ELSE 'none' END,
           (SELECT count(*) FROM salesmgmt.visible_rep_ids());
$$;
COMMENT ON FUNCTION salesmgmt.current_access() IS 'The current role, the rep it is mapped to, and its access (admin, manager, rep or none) with the number of reps whose rows it sees.';

-- ---------------------------------------------------------------------------
-- Integrity triggers must see every row, whatever the writer may see: a
-- check that the credit shares of a deal sum to 1 is no check if it only
-- counts the shares the writer can read.  Trigger functions cannot be
-- called directly, so running them as the owner lends nobody anything.
-- ---------------------------------------------------------------------------

ALTER FUNCTION salesmgmt.deal_split_check_total() SECURITY DEFINER;
ALTER FUNCTION salesmgmt.team_check_manager() SECURITY DEFINER;
ALTER FUNCTION salesmgmt.rep_check_not_manager() SECURITY DEFINER;
ALTER FUNCTION salesmgmt.team_check_cycle() SECURITY DEFINER;

-- ---------------------------------------------------------------------------
-- Privileges.  Start from nothing: no function of the extension is
-- executable by PUBLIC (CREATE FUNCTION grants that by default).
-- ---------------------------------------------------------------------------

REVOKE ALL ON SCHEMA salesmgmt FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA salesmgmt FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA salesmgmt FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA salesmgmt FROM PUBLIC;
GRANT USAGE ON SCHEMA salesmgmt TO salesmgmt_admin, salesmgmt_manager, salesmgmt_rep;

-- Admins: every table; sequences for inserts.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA salesmgmt TO salesmgmt_admin;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA salesmgmt TO salesmgmt_admin;

-- Configuration and directory: read by everyone, written by admins.
GRANT SELECT ON salesmgmt.currency, salesmgmt.currency_rate, salesmgmt.team, salesmgmt.rep,
                salesmgmt.pipeline, salesmgmt.stage, salesmgmt.stage_transition
    TO salesmgmt_manager, salesmgmt_rep;

-- Per-rep data: what reps and managers may do at all; RLS narrows the rows.
-- Writes are granted column by column, never on the id columns: a rep who
-- chose ids could take over the history of a deleted deal by reusing its
-- id, or take the next identity value so the next insert fails.  Without
-- table-level UPDATE a rep cannot LOCK these tables in a mode above ACCESS
-- SHARE (the tables they delete from: src/security_lock.c).  Identity
-- defaults need no sequence privilege, so reps and managers get none
-- (pg_sequences shows them no totals either).  Nor the times the server
-- sets (created_at, updated_at, stage_entered_at, closed_at, completed_at):
-- a rep who wrote them could date a deal won or a task done into the period
-- a KPI counts (src/security_references.sql sets completed_at for them).
GRANT SELECT ON salesmgmt.account, salesmgmt.contact, salesmgmt.deal, salesmgmt.deal_split,
                salesmgmt.activity, salesmgmt.sales_task
    TO salesmgmt_manager, salesmgmt_rep;
GRANT INSERT (name, industry, region, segment, owner_rep_id, extra),
      UPDATE (name, industry, region, segment, owner_rep_id, extra)
    ON salesmgmt.account TO salesmgmt_manager, salesmgmt_rep;
GRANT INSERT (account_id, name, email, phone, title),
      UPDATE (account_id, name, email, phone, title)
    ON salesmgmt.contact TO salesmgmt_manager, salesmgmt_rep;
GRANT INSERT (name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
              expected_close_date, probability, forecast_category, lost_reason, extra),
      UPDATE (name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
              expected_close_date, probability, forecast_category, lost_reason, extra)
    ON salesmgmt.deal TO salesmgmt_manager, salesmgmt_rep;
-- a split stays with its deal: a share of another deal is another split
GRANT INSERT (deal_id, rep_id, share), UPDATE (rep_id, share)
    ON salesmgmt.deal_split TO salesmgmt_manager, salesmgmt_rep;
GRANT INSERT (kind, account_id, contact_id, deal_id, rep_id, occurred_at, duration, outcome, notes),
      UPDATE (kind, account_id, contact_id, deal_id, rep_id, occurred_at, duration, outcome, notes)
    ON salesmgmt.activity TO salesmgmt_manager, salesmgmt_rep;
GRANT INSERT (rep_id, assigned_by, account_id, deal_id, title, description, due_date, status),
      UPDATE (rep_id, assigned_by, account_id, deal_id, title, description, due_date, status)
    ON salesmgmt.sales_task TO salesmgmt_manager, salesmgmt_rep;
GRANT DELETE ON salesmgmt.deal_split, salesmgmt.activity, salesmgmt.sales_task
    TO salesmgmt_manager, salesmgmt_rep;
GRANT SELECT ON salesmgmt.payment, salesmgmt.quota TO salesmgmt_manager, salesmgmt_rep;
-- history: read only; the pipeline trigger appends it as the table's owner
GRANT SELECT ON salesmgmt.deal_stage_history TO salesmgmt_manager, salesmgmt_rep;

-- Pipeline: reps and managers move the deals row-level security lets them
-- change (the boards and other views are granted with every view below).
GRANT EXECUTE ON FUNCTION
    salesmgmt.move_deal(bigint, text, text), salesmgmt.allowed_next_stages(bigint),
    salesmgmt._allowed_next_stage_ids(bigint)
    TO salesmgmt_manager, salesmgmt_rep;

-- Functions for everyone: the visibility helpers (policies call them as
-- the querying role) and the read-only utilities.
GRANT EXECUTE ON FUNCTION
    salesmgmt.current_rep_id(name), salesmgmt.visible_rep_ids(name),
    salesmgmt.visible_team_ids(name), salesmgmt.split_deal_ids(name),
    salesmgmt.account_in_scope(bigint, name), salesmgmt.is_visible_rep(bigint),
    salesmgmt.current_access(), salesmgmt.convert_amount(numeric, char, char, date)
    TO salesmgmt_admin, salesmgmt_manager, salesmgmt_rep;

-- ---------------------------------------------------------------------------
-- Row-level security.  Admins get one permissive "true" policy per table;
-- reps and managers the policies below.  A role that is both gets the
-- union, which the planner folds to "true".
--
-- Every policy calls per-row predicates (src/security_org.sql, in C over
-- a per-backend cache of the organisation) and contains no sub-select:
-- a row costs a few memory probes, and the policies are the form a
-- distributed PostgreSQL (Citus) accepts.
--
-- Write policies name their command (FOR INSERT, FOR UPDATE, FOR DELETE),
-- never FOR ALL: PostgreSQL adds a FOR ALL policy's USING to every SELECT
-- too, so a read would run the write predicate as well on each row it
-- does not pass (each write policy's USING is within its table's read
-- policy, so reads see the same rows either way).
-- ---------------------------------------------------------------------------

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['account', 'contact', 'deal', 'deal_split', 'payment', 'activity',
                             'quota', 'sales_task', 'deal_stage_history']
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE salesmgmt.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE pg_catalog.format(
            'CREATE POLICY admin_all ON salesmgmt.%I TO salesmgmt_admin USING (true) WITH CHECK (true)', t);
        EXECUTE pg_catalog.format(
            'COMMENT ON POLICY admin_all ON salesmgmt.%I IS %L', t,
            'Admins see and change every row.');
    END LOOP;
END
$$;

-- account: owned by a visible rep, or the account of a deal it sees;
-- reps and managers create and change accounts of visible owners only.
CREATE POLICY account_read ON salesmgmt.account FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(owner_rep_id) OR salesmgmt.account_visible(account_id));
CREATE POLICY account_insert ON salesmgmt.account FOR INSERT TO salesmgmt_manager, salesmgmt_rep
    WITH CHECK (salesmgmt.rep_visible(owner_rep_id));
CREATE POLICY account_update ON salesmgmt.account FOR UPDATE TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(owner_rep_id))
    WITH CHECK (salesmgmt.rep_visible(owner_rep_id));

-- contact: people of the accounts the role sees; only the account owner's
-- side adds and changes them (a split partner reads them).
CREATE POLICY contact_read ON salesmgmt.contact FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.account_visible(account_id));
CREATE POLICY contact_insert ON salesmgmt.contact FOR INSERT TO salesmgmt_manager, salesmgmt_rep
    WITH CHECK (salesmgmt.account_changeable(account_id));
CREATE POLICY contact_update ON salesmgmt.contact FOR UPDATE TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.account_changeable(account_id))
    WITH CHECK (salesmgmt.account_changeable(account_id));

-- deal: owned by a visible rep, or shared with one by a credit split.
-- Only the owner's side changes a deal (a split partner reads it); a new
-- deal is opened on an account the role sees (and the trigger
-- deal_account_in_scope keeps it so when its account changes).
CREATE POLICY deal_read ON salesmgmt.deal FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.deal_visible(deal_id, owner_rep_id));
CREATE POLICY deal_insert ON salesmgmt.deal FOR INSERT TO salesmgmt_manager, salesmgmt_rep
    WITH CHECK (salesmgmt.rep_visible(owner_rep_id) AND salesmgmt.account_visible(account_id));
CREATE POLICY deal_update ON salesmgmt.deal FOR UPDATE TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(owner_rep_id))
    WITH CHECK (salesmgmt.rep_visible(owner_rep_id));

-- deal_split: a rep reads its own shares and the splits of deals it sees;
-- only the owner's side (the owner, their managers) changes the splits.
CREATE POLICY deal_split_read ON salesmgmt.deal_split FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(rep_id) OR salesmgmt.deal_visible(deal_id));
CREATE POLICY deal_split_insert ON salesmgmt.deal_split FOR INSERT TO salesmgmt_manager, salesmgmt_rep
    WITH CHECK (salesmgmt.deal_changeable(deal_id));
CREATE POLICY deal_split_update ON salesmgmt.deal_split FOR UPDATE TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.deal_changeable(deal_id))
    WITH CHECK (salesmgmt.deal_changeable(deal_id));
CREATE POLICY deal_split_delete ON salesmgmt.deal_split FOR DELETE TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.deal_changeable(deal_id));

-- payment: money of the deals the role sees (written by admins).
CREATE POLICY payment_read ON salesmgmt.payment FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.deal_visible(deal_id));

-- deal_stage_history: a row belongs to the rep who owned the deal when it
-- was written (owner_rep_id), not to whoever holds the deal id now: a
-- deleted deal's history never passes to a later deal with the same id,
-- and a deal handed to another rep keeps its earlier history with the
-- earlier owner's side (appended by the pipeline trigger as the table's
-- owner; nobody else writes it).
CREATE POLICY deal_stage_history_read ON salesmgmt.deal_stage_history FOR SELECT
    TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(owner_rep_id));

-- activity: done by a visible rep, about a deal the role sees, or (not
-- about a deal) with an account a visible rep owns; a rep records only
-- activities of visible reps with accounts it sees.
CREATE POLICY activity_read ON salesmgmt.activity FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(rep_id)
           OR salesmgmt.deal_visible(deal_id)
           OR (deal_id IS NULL AND salesmgmt.account_changeable(account_id)));
CREATE POLICY activity_insert ON salesmgmt.activity FOR INSERT TO salesmgmt_manager, salesmgmt_rep
    WITH CHECK (salesmgmt.rep_visible(rep_id) AND salesmgmt.account_visible(account_id));
CREATE POLICY activity_update ON salesmgmt.activity FOR UPDATE TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(rep_id))
    WITH CHECK (salesmgmt.rep_visible(rep_id) AND salesmgmt.account_visible(account_id));
CREATE POLICY activity_delete ON salesmgmt.activity FOR DELETE TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(rep_id));

-- quota: targets of visible reps and teams (set by admins).
CREATE POLICY quota_read ON salesmgmt.quota FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(rep_id) OR salesmgmt.team_visible(team_id));

-- sales_task: assigned to or by a visible rep; a manager assigns tasks to
-- the team, a rep plans its own and works (closes) those its managers
-- assigned to it.
CREATE POLICY sales_task_read ON salesmgmt.sales_task FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(rep_id) OR salesmgmt.rep_visible(assigned_by));
CREATE POLICY sales_task_insert ON salesmgmt.sales_task FOR INSERT TO salesmgmt_manager, salesmgmt_rep
    WITH CHECK (salesmgmt.rep_visible(rep_id)
                AND (assigned_by IS NULL OR salesmgmt.rep_visible(assigned_by)
                     OR salesmgmt.rep_manages(assigned_by, rep_id)));
CREATE POLICY sales_task_update ON salesmgmt.sales_task FOR UPDATE TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(rep_id))
    WITH CHECK (salesmgmt.rep_visible(rep_id)
                AND (assigned_by IS NULL OR salesmgmt.rep_visible(assigned_by)
                     OR salesmgmt.rep_manages(assigned_by, rep_id)));
CREATE POLICY sales_task_delete ON salesmgmt.sales_task FOR DELETE TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(rep_id));

COMMENT ON POLICY account_read ON salesmgmt.account IS 'Reps and managers see accounts owned by a visible rep and the accounts of deals they see.';
COMMENT ON POLICY account_insert ON salesmgmt.account IS 'Reps and managers create accounts owned by a visible rep.';
COMMENT ON POLICY account_update ON salesmgmt.account IS 'Reps and managers change accounts owned by a visible rep, and cannot hand them outside their scope.';
COMMENT ON POLICY contact_read ON salesmgmt.contact IS 'Reps and managers see the contacts of accounts they see.';
COMMENT ON POLICY contact_insert ON salesmgmt.contact IS 'Reps and managers add contacts to accounts owned by a visible rep (a split partner does not).';
COMMENT ON POLICY contact_update ON salesmgmt.contact IS 'Reps and managers change contacts of accounts owned by a visible rep, and keep them there (a split partner does not).';
COMMENT ON POLICY deal_read ON salesmgmt.deal IS 'Reps and managers see deals owned by a visible rep or shared with one by a credit split.';
COMMENT ON POLICY deal_insert ON salesmgmt.deal IS 'Reps and managers create deals owned by a visible rep on an account they see.';
COMMENT ON POLICY deal_update ON salesmgmt.deal IS 'Reps and managers change deals owned by a visible rep, and cannot hand them outside their scope (the account is checked by the trigger deal_account_in_scope).';
COMMENT ON POLICY deal_split_read ON salesmgmt.deal_split IS 'Reps and managers see their own credit shares and the splits of deals they see.';
COMMENT ON POLICY deal_split_insert ON salesmgmt.deal_split IS 'Only the owner''s side of a deal (the owner, their managers) adds its splits.';
COMMENT ON POLICY deal_split_update ON salesmgmt.deal_split IS 'Only the owner''s side of a deal (the owner, their managers) changes its splits.';
COMMENT ON POLICY deal_split_delete ON salesmgmt.deal_split IS 'Only the owner''s side of a deal (the owner, their managers) removes its splits.';
COMMENT ON POLICY payment_read ON salesmgmt.payment IS 'Reps and managers see payments of deals they see; admins record them.';
COMMENT ON POLICY deal_stage_history_read ON salesmgmt.deal_stage_history IS 'Reps and managers see the history rows written while a visible rep owned the deal (owner_rep_id of the row): history never passes to a later holder of the deal id.';
COMMENT ON POLICY activity_read ON salesmgmt.activity IS 'Reps and managers see activities of visible reps, about deals they see, and (not about a deal) with accounts a visible rep owns.';
COMMENT ON POLICY activity_insert ON salesmgmt.activity IS 'Reps and managers record activities of visible reps with accounts they see.';
COMMENT ON POLICY activity_update ON salesmgmt.activity IS 'Reps and managers change activities of visible reps, keeping them with visible reps and accounts they see.';
COMMENT ON POLICY activity_delete ON salesmgmt.activity IS 'Reps and managers delete activities of visible reps.';
COMMENT ON POLICY quota_read ON salesmgmt.quota IS 'Reps and managers see the quotas of visible reps and teams; admins set them.';
COMMENT ON POLICY sales_task_read ON salesmgmt.sales_task IS 'Reps and managers see tasks assigned to or by a visible rep.';
COMMENT ON POLICY sales_task_insert ON salesmgmt.sales_task IS 'Managers assign tasks within their team trees; reps plan their own.';
COMMENT ON POLICY sales_task_update ON salesmgmt.sales_task IS 'Reps and managers change tasks of visible reps (a rep closes those assigned to it), keeping them within their scope.';
COMMENT ON POLICY sales_task_delete ON salesmgmt.sales_task IS 'Reps and managers delete tasks of visible reps.';

-- ---------------------------------------------------------------------------
-- The tables of the other concerns (forecast, commission, kpi, analytics).
-- Each rule applies when its table (and column) exists, so the install
-- script is the same whatever subset of concerns is built; a table without
-- a rule falls to the default deny below (admins only).
--   config  readable by everyone, written by admins
--   rep     the rows of visible reps (the columns are ORed); read only
--   child   rows of a parent row the role sees (first column refers to
--           the parent's key of the same name)
-- ---------------------------------------------------------------------------

DO $$
DECLARE
    r record;
    v_cols text[];
    v_qual text;
BEGIN
    FOR r IN
        SELECT * FROM (VALUES
            ('commission_plan', 'config', NULL::text[], NULL::text, NULL::text, NULL::text),
            ('commission_tier', 'config', NULL, NULL, NULL, NULL),
            ('commission_spiff', 'config', NULL, NULL, NULL, NULL),
            ('commission_period', 'config', NULL, NULL, NULL, NULL),
            ('training_course', 'config', NULL, NULL, NULL, NULL),
            ('kpi', 'config', NULL, NULL, NULL, NULL),
            ('kpi_scheme', 'config', NULL, NULL, NULL, NULL),
            ('kpi_scheme_item', 'config', NULL, NULL, NULL, NULL),
            ('commission_line', 'rep', ARRAY['rep_id'], NULL, NULL, NULL),
            ('commission_assignment', 'rep', ARRAY['rep_id'], NULL, NULL, NULL),
            ('commission_draw', 'rep', ARRAY['rep_id'], NULL, NULL, NULL),
            ('scorecard', 'rep', ARRAY['rep_id'], NULL,
             -- leaderboards: peers as the scheme's leaderboard_visibility says
             'salesmgmt.leaderboard_visible(scheme_id, rep_id)',
             'and peers as the scheme''s leaderboard_visibility says'),
            ('training_enrollment', 'rep', ARRAY['rep_id'], NULL, NULL, NULL),
            ('recognition', 'rep', ARRAY['rep_id'], NULL, NULL, NULL),
            ('csat_response', 'rep', ARRAY['rep_id'], NULL, NULL, NULL),
            ('review', 'rep', ARRAY['rep_id', 'reviewer_rep_id'], NULL, NULL, NULL),
            ('feedback', 'rep', ARRAY['rep_id', 'assignee_rep_id'], NULL, NULL, NULL),
            ('forecast_adjustment', 'rep', ARRAY['rep_id'], NULL,
             -- team-level adjustments: the managers of the team (issue 23, 7)
             '(rep_id IS NULL AND salesmgmt.team_managed(team_id))',
             'and managers the team-level rows of the teams they manage'),
            ('scorecard_item', 'child', ARRAY['scorecard_id'], 'scorecard', NULL, NULL)
        ) AS rule(tbl, kind, cols, parent, extra, extra_note)
    LOOP
        CONTINUE WHEN pg_catalog.to_regclass('salesmgmt.' || r.tbl) IS NULL;
        -- the rule's columns that the table has
        SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attnum) INTO v_cols
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = pg_catalog.to_regclass('salesmgmt.' || r.tbl)
           AND a.attname = ANY (r.cols) AND NOT a.attisdropped;
        CONTINUE WHEN r.kind <> 'config' AND v_cols IS NULL;
        CONTINUE WHEN r.kind = 'child' AND pg_catalog.to_regclass('salesmgmt.' || r.parent) IS NULL;

        EXECUTE pg_catalog.format('ALTER TABLE salesmgmt.%I ENABLE ROW LEVEL SECURITY', r.tbl);
        EXECUTE pg_catalog.format(
            'CREATE POLICY admin_all ON salesmgmt.%I TO salesmgmt_admin USING (true) WITH CHECK (true)', r.tbl);
        EXECUTE pg_catalog.format('COMMENT ON POLICY admin_all ON salesmgmt.%I IS %L', r.tbl,
                                  'Admins see and change every row.');
        v_qual := CASE r.kind
            WHEN 'config' THEN 'true'
            WHEN 'rep' THEN (SELECT pg_catalog.string_agg(
                                 pg_catalog.format('salesmgmt.rep_visible(%I)', c), ' OR ')
                               FROM pg_catalog.unnest(v_cols) AS c)
                            || coalesce(' OR ' || r.extra, '')
            WHEN 'child' THEN pg_catalog.format('salesmgmt.%I(%I)', r.parent || '_visible', v_cols[1])
        END;
        EXECUTE pg_catalog.format(
            'CREATE POLICY %I ON salesmgmt.%I FOR SELECT TO salesmgmt_manager, salesmgmt_rep USING (%s)',
            r.tbl || '_read', r.tbl, v_qual);
        EXECUTE pg_catalog.format('COMMENT ON POLICY %I ON salesmgmt.%I IS %L', r.tbl || '_read', r.tbl,
            CASE r.kind
                WHEN 'config' THEN 'Configuration: reps and managers read every row; admins write.'
                WHEN 'rep' THEN 'Reps and managers read the rows of visible reps (' || pg_catalog.array_to_string(v_cols, ', ') || ')'
                                || coalesce(', ' || r.extra_note, '')
                                || '; admins write.'
                ELSE 'Reps and managers read the rows of ' || r.parent || ' rows they see; admins write.'
            END);
        EXECUTE pg_catalog.format('GRANT SELECT ON salesmgmt.%I TO salesmgmt_manager, salesmgmt_rep', r.tbl);
    END LOOP;
END
$$;

-- Functions of the other concerns that reps and managers may call: they
-- run with the caller's rights, so they compute over the rows the caller
-- sees.  (run_commissions, compute_scorecards, snapshot_forecast and the
-- webhook functions stay with admins.)
DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'salesmgmt.forecast(date,date,text,timestamptz,character)',
        'salesmgmt.forecast_range(date,date,bigint,integer,bigint)',
        'salesmgmt.win_rates(bigint,date,timestamptz)',
        'salesmgmt.commission_line_explanation(salesmgmt.commission_line)',
        'salesmgmt._commission_pct(numeric)',
        'salesmgmt._commission_money(numeric)',
        'salesmgmt.kpi_score(numeric,numeric,text,text,numeric,numeric)',
        'salesmgmt.kpi_metrics()',
        'salesmgmt.reporting_currency()']
    LOOP
        BEGIN
            -- to_regprocedure still raises for an argument type that does
            -- not exist (the concern that defines it is not built)
            IF pg_catalog.to_regprocedure(f) IS NOT NULL THEN
                EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO salesmgmt_manager, salesmgmt_rep',
                                          pg_catalog.to_regprocedure(f));
            END IF;
        EXCEPTION WHEN undefined_object THEN
            NULL;
        END;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- Default deny for anything not decided above: a table of the extension
-- without row-level security gets it with the admin policy only (and no
-- grant to reps or managers), except the configuration tables readable by
-- all; every function is executable by admins, none by PUBLIC.  A concern
-- that adds a table or function is thus safe before this file learns what
-- reps and managers may do with it.
-- ---------------------------------------------------------------------------

DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'salesmgmt'::regnamespace
           AND c.relkind IN ('r', 'p')
           AND NOT c.relrowsecurity
           AND c.relname NOT IN ('currency', 'currency_rate', 'team', 'rep', 'pipeline', 'stage',
                                 'stage_transition')
         ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE pg_catalog.format(
            'CREATE POLICY admin_all ON %s TO salesmgmt_admin USING (true) WITH CHECK (true)', t);
        EXECUTE pg_catalog.format('COMMENT ON POLICY admin_all ON %s IS %L', t,
                                  'Admins see and change every row.');
    END LOOP;
END
$$;

-- A view reads its tables with its owner's rights unless it is
-- security_invoker; owned by the superuser that installed the extension, it
-- would show every row to anyone allowed to read it.
DO $$
DECLARE
    v regclass;
BEGIN
    FOR v IN
        SELECT c.oid::regclass
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind = 'v'
           AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)
         ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('ALTER VIEW %s SET (security_invoker = true)', v);
    END LOOP;
END
$$;

-- With that, a view cannot show more than its tables' policies allow the
-- reader, so every view is readable by all three roles (one over admin-only
-- tables still refuses reps, with "permission denied" for the table).
DO $$
DECLARE
    v regclass;
BEGIN
    FOR v IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind = 'v'
         ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('GRANT SELECT ON %s TO salesmgmt_manager, salesmgmt_rep', v);
    END LOOP;
END
$$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA salesmgmt TO salesmgmt_admin;
REVOKE EXECUTE ON FUNCTION salesmgmt._register_config_table(regclass, text),
    salesmgmt._managed_team_ids(bigint) FROM salesmgmt_admin;

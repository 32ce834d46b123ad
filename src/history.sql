-- history.sql: the field-level audit trail.  New in 0.2.0; the install
-- script and the upgrade from 0.1.0 both run this file whole.  One
-- generic C trigger (src/history.c) writes salesmgmt.change_log for every
-- table attached with salesmgmt._audit_table; history_of and row_as_of
-- read it back.  See docs/history.md.

-- ---------------------------------------------------------------------------
-- The log
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.change_log (
    change_id       bigint GENERATED ALWAYS AS IDENTITY (CACHE 100),
    table_name      text NOT NULL,
    row_id          bigint,
    operation       text NOT NULL
                    CONSTRAINT change_log_operation_valid CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
    changed_columns text[] NOT NULL,
    old_values      jsonb,
    new_values      jsonb,
    txid            bigint NOT NULL,
    changed_at      timestamptz NOT NULL,
    changed_by      name NOT NULL,
    owner_rep_id    bigint,
    account_id      bigint
);
-- one index, on a bigint: a bulk UPDATE of 100,000 rows writes 100,000
-- entries, and a text key or a primary key on change_id would double
-- their cost; history_of filters the table by the heap
CREATE INDEX change_log_row_idx ON salesmgmt.change_log (row_id);
COMMENT ON TABLE salesmgmt.change_log IS 'Append-only field-level audit trail of the audited tables: one row per inserted or deleted row and per changed row of an UPDATE, written by the trigger salesmgmt._audit_trigger; purged only by salesmgmt.purge_change_log.';
COMMENT ON COLUMN salesmgmt.change_log.change_id IS 'Increasing identity (unique, not indexed); orders the changes of a row (also within a transaction).';
COMMENT ON COLUMN salesmgmt.change_log.table_name IS 'Qualified name of the table changed (e.g. salesmgmt.account).';
COMMENT ON COLUMN salesmgmt.change_log.row_id IS 'Value of the table''s id column for the row (for deal_split the deal, for price_book_entry the price book).';
COMMENT ON COLUMN salesmgmt.change_log.operation IS 'INSERT, UPDATE or DELETE.';
COMMENT ON COLUMN salesmgmt.change_log.changed_columns IS 'Columns whose value changed (UPDATE); every column for INSERT and DELETE.';
COMMENT ON COLUMN salesmgmt.change_log.old_values IS 'Values before the change: the changed columns for UPDATE, the whole row for DELETE, null for INSERT (as to_jsonb writes them).';
COMMENT ON COLUMN salesmgmt.change_log.new_values IS 'Values after the change: the changed columns for UPDATE, the whole row for INSERT, null for DELETE.';
COMMENT ON COLUMN salesmgmt.change_log.txid IS 'Transaction that made the change (txid_current()).';
COMMENT ON COLUMN salesmgmt.change_log.changed_at IS 'When the change was made: the start of its transaction (now()).';
COMMENT ON COLUMN salesmgmt.change_log.changed_by IS 'Database role that made the change (the role in force outside SECURITY DEFINER functions).';
COMMENT ON COLUMN salesmgmt.change_log.owner_rep_id IS 'Rep owning the row after the change (before it, for a delete); decides who reads the change.';
COMMENT ON COLUMN salesmgmt.change_log.account_id IS 'Account of the row, for tables that belong to an account; decides who reads the change.';

CREATE FUNCTION salesmgmt._audit_trigger() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'sm_audit_trigger';
COMMENT ON FUNCTION salesmgmt._audit_trigger() IS 'Internal trigger (AFTER INSERT, UPDATE or DELETE FOR EACH STATEMENT with transition tables; arguments: id column, owner rep column, account column, then the columns whose updates are not logged): writes the changes of the statement to salesmgmt.change_log. Attach it with salesmgmt._audit_table.';

CREATE FUNCTION salesmgmt._change_log_guard() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'sm_change_log_guard';
COMMENT ON FUNCTION salesmgmt._change_log_guard() IS 'Internal trigger: keeps salesmgmt.change_log append-only (UPDATE, DELETE and TRUNCATE refused) but for salesmgmt.purge_change_log.';

CREATE TRIGGER change_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON salesmgmt.change_log
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._change_log_guard();

CREATE FUNCTION salesmgmt.purge_change_log(p_before timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE c SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'sm_purge_change_log';
COMMENT ON FUNCTION salesmgmt.purge_change_log(timestamptz) IS 'Deletes the changes made before p_before (null: before now() minus salesmgmt.change_log_retention) from salesmgmt.change_log and returns how many; for admins.';

-- ---------------------------------------------------------------------------
-- Attaching the trigger
-- ---------------------------------------------------------------------------

-- One call per table, from this part or a later concern's: three statement
-- triggers (a trigger with transition tables has one event).  Idempotent.
CREATE FUNCTION salesmgmt._audit_table(
    p_table regclass,
    p_owner_column name DEFAULT NULL,
    p_account_column name DEFAULT NULL,
    p_events text[] DEFAULT ARRAY['INSERT', 'UPDATE', 'DELETE'],
    p_id_column name DEFAULT NULL,
    p_unlogged_columns name[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id name := p_id_column;
    v_col name;
    v_event text;
BEGIN
    IF p_table IS NULL THEN
        RAISE EXCEPTION 'the table to audit is null' USING ERRCODE = '22004';
    END IF;
    IF v_id IS NULL THEN
        SELECT a.attname INTO v_id
          FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = p_table AND i.indisprimary AND i.indnatts = 1;
        IF v_id IS NULL THEN
            RAISE EXCEPTION 'table % has no one-column primary key', p_table
                USING ERRCODE = '22023', HINT = 'Name the id column with p_id_column.';
        END IF;
    END IF;
    FOREACH v_col IN ARRAY ARRAY[v_id, p_owner_column, p_account_column] LOOP
        IF v_col IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = p_table AND a.attname = v_col AND NOT a.attisdropped
               AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype))
        THEN
            RAISE EXCEPTION 'table % has no integer column %', p_table, v_col
                USING ERRCODE = '42703',
                      HINT = 'The id, owner and account columns are integer columns of the table.';
        END IF;
    END LOOP;
    FOREACH v_col IN ARRAY coalesce(p_unlogged_columns, '{}') LOOP
        IF v_col IS NULL OR v_col = v_id OR NOT EXISTS (
            SELECT 1 FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = p_table AND a.attname = v_col AND a.attnum > 0 AND NOT a.attisdropped)
        THEN
            RAISE EXCEPTION 'table % has no column % whose changes could go unlogged', p_table, coalesce(v_col, 'null')
                USING ERRCODE = '42703',
                      HINT = 'Name columns of the table other than its id column.';
        END IF;
    END LOOP;
    IF p_events IS NULL OR cardinality(p_events) = 0
       OR NOT p_events <@ ARRAY['INSERT', 'UPDATE', 'DELETE'] THEN
        RAISE EXCEPTION 'events to audit must be among INSERT, UPDATE and DELETE, not %', p_events
            USING ERRCODE = '22023';
    END IF;
    FOREACH v_event IN ARRAY ARRAY['INSERT', 'UPDATE', 'DELETE'] LOOP
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                    WHERE t.tgrelid = p_table AND t.tgname = 'audit_' || lower(v_event)) THEN
            EXECUTE format('DROP TRIGGER %I ON %s', 'audit_' || lower(v_event), p_table);
        END IF;
        CONTINUE WHEN NOT v_event = ANY (p_events);
        EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s REFERENCING %s'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._audit_trigger(%L, %L, %L%s)',
                       'audit_' || lower(v_event), v_event, p_table,
                       CASE v_event WHEN 'INSERT' THEN 'NEW TABLE AS audit_new'
                                    WHEN 'DELETE' THEN 'OLD TABLE AS audit_old'
                                    ELSE 'OLD TABLE AS audit_old NEW TABLE AS audit_new' END,
                       v_id, coalesce(p_owner_column, ''), coalesce(p_account_column, ''),
                       (SELECT string_agg(format(', %L', c), '' ORDER BY o)
                          FROM unnest(p_unlogged_columns) WITH ORDINALITY AS u(c, o)));
    END LOOP;
END
$$;
COMMENT ON FUNCTION salesmgmt._audit_table(regclass, name, name, text[], name, name[]) IS 'Internal: attaches the audit trigger to a table (the events given; the id column defaults to the one-column primary key; the owner rep and account columns feed the change log''s row-level security; changes of p_unlogged_columns, derived values such as lead scores, are not logged: an update of only them logs nothing, inserts and deletes still log whole rows). A concern added later audits its tables with one call.';

-- The id column of an audited table, and whether it identifies one row.
CREATE FUNCTION salesmgmt._audit_config(p_table regclass, OUT id_column name, OUT id_unique boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT split_part(encode(t.tgargs, 'escape'), '\000', 1) INTO id_column
      FROM pg_catalog.pg_trigger t
     WHERE t.tgrelid = p_table AND t.tgfoid = 'salesmgmt._audit_trigger()'::regprocedure
     ORDER BY t.tgname LIMIT 1;
    IF id_column IS NULL THEN
        RAISE EXCEPTION 'table % is not audited', p_table
            USING ERRCODE = '22023',
                  HINT = 'salesmgmt.change_log records the tables listed in docs/history.md.';
    END IF;
    id_unique := EXISTS (
        SELECT 1 FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = p_table AND i.indisunique AND i.indnatts = 1 AND a.attname = id_column);
END
$$;
COMMENT ON FUNCTION salesmgmt._audit_config(regclass) IS 'Internal: the id column of an audited table and whether it identifies one row; 22023 for a table that is not audited.';

-- ---------------------------------------------------------------------------
-- Reading the log
-- ---------------------------------------------------------------------------

CREATE FUNCTION salesmgmt.history_of(p_table regclass, p_id bigint)
RETURNS TABLE (change_id bigint, operation text, changed_columns text[],
               old_values jsonb, new_values jsonb, changed_at timestamptz,
               changed_by name, txid bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_table IS NULL OR p_id IS NULL THEN
        RAISE EXCEPTION 'history_of needs a table and an id, not null'
            USING ERRCODE = '22004';
    END IF;
    PERFORM salesmgmt._audit_config(p_table);
    RETURN QUERY
        SELECT c.change_id, c.operation, c.changed_columns, c.old_values, c.new_values,
               c.changed_at, c.changed_by, c.txid
          FROM salesmgmt.change_log c
         WHERE c.table_name = p_table::text AND c.row_id = p_id
         ORDER BY c.change_id;
END
$$;
COMMENT ON FUNCTION salesmgmt.history_of(regclass, bigint) IS 'Every recorded change of one row of an audited table, oldest first (the changes the caller may read: row-level security of salesmgmt.change_log applies).';

-- The row as it was: the current row (if any), with the changes made
-- after p_at undone newest first.
CREATE FUNCTION salesmgmt.row_as_of(p_table regclass, p_id bigint, p_at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cfg record;
    v_row jsonb;
    c record;
BEGIN
    IF p_table IS NULL OR p_id IS NULL OR p_at IS NULL THEN
        RAISE EXCEPTION 'row_as_of needs a table, an id and a moment, not null'
            USING ERRCODE = '22004';
    END IF;
    IF NOT isfinite(p_at) THEN
        RAISE EXCEPTION 'row_as_of needs a finite moment, not %', p_at USING ERRCODE = '22023';
    END IF;
    v_cfg := salesmgmt._audit_config(p_table);
    IF NOT v_cfg.id_unique THEN
        RAISE EXCEPTION 'rows of % are not identified by % alone', p_table, v_cfg.id_column
            USING ERRCODE = '0A000',
                  HINT = 'Read the changes with salesmgmt.history_of(table, id).';
    END IF;
    EXECUTE format('SELECT to_jsonb(t) FROM %s t WHERE t.%I = $1', p_table, v_cfg.id_column)
       INTO v_row USING p_id;
    FOR c IN
        SELECT l.operation, l.old_values FROM salesmgmt.change_log l
         WHERE l.table_name = p_table::text AND l.row_id = p_id AND l.changed_at > p_at
         ORDER BY l.change_id DESC
    LOOP
        v_row := CASE c.operation
                     WHEN 'INSERT' THEN NULL
                     WHEN 'DELETE' THEN c.old_values
                     ELSE coalesce(v_row, '{}') || c.old_values
                 END;
    END LOOP;
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION salesmgmt.row_as_of(regclass, bigint, timestamptz) IS 'The row of an audited table as it was at p_at, as jsonb (null when it did not exist then): the current row with the later changes undone. Rows that existed before auditing began are known from then on.';

-- ---------------------------------------------------------------------------
-- The audited tables
-- ---------------------------------------------------------------------------

SELECT salesmgmt._audit_table('salesmgmt.account', 'owner_rep_id', 'account_id');
SELECT salesmgmt._audit_table('salesmgmt.contact', NULL, 'account_id');
-- a lead's score and its explanation are derived (score_leads recomputes
-- them from the rules and the activities) and change for every open lead
-- at each scoring run: logging them would add a row per lead per run
SELECT salesmgmt._audit_table('salesmgmt.lead', 'owner_rep_id', 'converted_account_id',
                              p_unlogged_columns => ARRAY['score', 'score_explanation']::name[]);
SELECT salesmgmt._audit_table('salesmgmt.rep', 'rep_id');
SELECT salesmgmt._audit_table('salesmgmt.team', 'manager_rep_id');
SELECT salesmgmt._audit_table('salesmgmt.quota', 'rep_id');
SELECT salesmgmt._audit_table('salesmgmt.deal_split', 'rep_id', NULL,
                              ARRAY['INSERT', 'UPDATE', 'DELETE'], 'deal_id');
SELECT salesmgmt._audit_table('salesmgmt.commission_plan');
SELECT salesmgmt._audit_table('salesmgmt.commission_tier');
SELECT salesmgmt._audit_table('salesmgmt.commission_assignment', 'rep_id');
SELECT salesmgmt._audit_table('salesmgmt.price_book_entry', NULL, NULL,
                              ARRAY['INSERT', 'UPDATE', 'DELETE'], 'price_book_id');
SELECT salesmgmt._audit_table('salesmgmt.deal', 'owner_rep_id', 'account_id', ARRAY['DELETE']);
-- subscriptions (src/subscription.sql): the owner is the account's
SELECT salesmgmt._audit_table('salesmgmt.subscription', NULL, 'account_id');

-- ---------------------------------------------------------------------------
-- pg_dump, row-level security, grants
-- ---------------------------------------------------------------------------

SELECT salesmgmt._register_config_table('salesmgmt.change_log');

SELECT salesmgmt._apply_default_security();

-- a rep reads the changes of rows of reps they see (their own; a
-- manager's team trees) or of accounts they see; the rest is for admins
GRANT SELECT ON salesmgmt.change_log TO salesmgmt_manager, salesmgmt_rep;
CREATE POLICY change_log_read ON salesmgmt.change_log FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(owner_rep_id) OR salesmgmt.account_visible(account_id));
COMMENT ON POLICY change_log_read ON salesmgmt.change_log IS 'Reps read the changes of their own rows and of accounts they see; managers those of the reps of their team trees; admins (admin_all) every change.';
GRANT EXECUTE ON FUNCTION salesmgmt.history_of(regclass, bigint),
    salesmgmt.row_as_of(regclass, bigint, timestamptz), salesmgmt._audit_config(regclass)
    TO salesmgmt_manager, salesmgmt_rep;

SELECT salesmgmt._apply_default_security();

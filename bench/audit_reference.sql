-- bench/audit_reference.sql: the audit trigger a strong DBA would write in
-- PL/pgSQL (a row trigger diffing to_jsonb(OLD) and to_jsonb(NEW)), into a
-- log table of the same shape as salesmgmt.change_log; bench/audit.sh
-- times it against salesmgmt._audit_trigger and against no trigger.
CREATE SCHEMA audit_bench;
CREATE TABLE audit_bench.change_log (LIKE salesmgmt.change_log INCLUDING DEFAULTS);
ALTER TABLE audit_bench.change_log
    ALTER change_id ADD GENERATED ALWAYS AS IDENTITY (CACHE 100),
    ALTER change_id SET NOT NULL;
CREATE INDEX ON audit_bench.change_log (row_id);

CREATE FUNCTION audit_bench.audit_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_old jsonb := to_jsonb(OLD);
    v_new jsonb := to_jsonb(NEW);
    v_cols text[];
    v_o jsonb;
    v_n jsonb;
BEGIN
    SELECT array_agg(n.key), jsonb_object_agg(n.key, v_old -> n.key), jsonb_object_agg(n.key, n.value)
      INTO v_cols, v_o, v_n
      FROM jsonb_each(v_new) n
     WHERE v_old -> n.key IS DISTINCT FROM n.value;
    IF v_cols IS NOT NULL THEN
        INSERT INTO audit_bench.change_log (table_name, row_id, operation, changed_columns, old_values,
                                            new_values, txid, changed_at, changed_by, owner_rep_id, account_id)
        VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, NEW.account_id, TG_OP, v_cols, v_o, v_n,
                txid_current(), now(), current_user, NEW.owner_rep_id, NEW.account_id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_reference AFTER UPDATE ON salesmgmt.account
    FOR EACH ROW EXECUTE FUNCTION audit_bench.audit_row();
ALTER TABLE salesmgmt.account DISABLE TRIGGER audit_reference;

-- which audit trigger the next UPDATE fires: none, c or ref
CREATE FUNCTION audit_bench.use(p_variant text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE salesmgmt.account %s TRIGGER audit_update',
                   CASE WHEN p_variant = 'c' THEN 'ENABLE' ELSE 'DISABLE' END);
    EXECUTE format('ALTER TABLE salesmgmt.account %s TRIGGER audit_reference',
                   CASE WHEN p_variant = 'ref' THEN 'ENABLE' ELSE 'DISABLE' END);
END
$$;

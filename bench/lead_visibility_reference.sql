-- bench/lead_visibility_reference.sql: the PL/pgSQL lead_visible that the
-- C predicate (src/lead_visible.c) replaced, for bench/lead_visibility.sh.
-- Same semantics: admins see every lead; an owned lead when its owner is
-- visible; a waiting pool lead when a rep the role sees may claim from the
-- pool (rep_may_claim); an unrouted lead only admins.
CREATE SCHEMA IF NOT EXISTS lv_ref;

CREATE OR REPLACE FUNCTION lv_ref.lead_visible(p_owner_rep_id bigint, p_pool_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE') THEN
        RETURN true;
    ELSIF p_owner_rep_id IS NOT NULL THEN
        RETURN coalesce(salesmgmt.rep_visible(p_owner_rep_id), false);
    ELSIF p_pool_id IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT 1 FROM salesmgmt.visible_rep_ids() v(rep_id)
                    WHERE salesmgmt.rep_may_claim(p_pool_id, v.rep_id));
END
$$;

-- scaleout.sql: reading on replicas and, later, across Citus nodes.  New in
-- 0.2.0; the install script and the upgrade from 0.1.0 both run this file
-- whole.  See docs/scale-out.md.

-- BI logins (salesmgmt_analyst) read every row of every view
-- (docs/security.md): the views that call these read-only helpers failed
-- for them with "permission denied" (pipeline_coverage, quota_attainment,
-- target_pacing: deal_family_share; plan_progress: _plan_actual), and
-- product_affinity is an analysis over every account's won lines.  Found by
-- test/t/080_scaleout_standby.pl, which runs every view as a BI login on a
-- standby and on the primary.
GRANT EXECUTE ON FUNCTION
    salesmgmt.deal_family_share(bigint, text),
    salesmgmt.deal_new_arr(bigint, text, bigint),
    salesmgmt._plan_actual(text, bigint, bigint, date, date),
    salesmgmt.product_affinity(date)
    TO salesmgmt_analyst;

SELECT salesmgmt._apply_default_security();

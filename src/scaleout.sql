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


-- salesmgmt on Citus (docs/scale-out.md#salesmgmt-on-citus): run once on
-- the coordinator, after citus_add_node.  The configuration and
-- organisation tables become reference tables, the tables that hang off a
-- deal (deal_id NOT NULL) are distributed by deal_id and co-located with
-- deal.  To avoid Citus's cascade through foreign keys (which converts the
-- connected local tables and would drop the extension's views), every
-- foreign key between salesmgmt's tables is dropped first and re-added once
-- each table has its final kind; the keys Citus refuses (from a reference
-- table to a distributed one) stay dropped and are reported.  On a
-- deal-side table a unique or exclusion constraint without deal_id cannot
-- be enforced across shards: a primary key gets deal_id in front, the
-- others are dropped and reported (their ids come from sequences, unique by
-- construction).  A second call finds every table converted and changes
-- nothing.  Superuser only: Citus converts only tables the caller owns.

-- webhook_stats, the deliveries by endpoint (a webhook view of 0.1.0, whose
-- other objects are in src/webhook.sql), measured latency from the commit
-- of the event's transaction with pg_xact_commit_timestamp(xmin), and the
-- analyst's column grants cannot cover the system column xmin: BI logins
-- got "permission denied for table webhook_event".  The commit time now
-- comes from this definer function (one event, its commit time only).  The
-- view is defined here only; the upgrade from 0.1.0, which runs this file
-- whole too, replaces the one of 0.1.0 (same columns), hence CREATE OR
-- REPLACE and its comments and 0.1.0 rights restated.
CREATE FUNCTION salesmgmt._webhook_event_committed_at(p_event_id uuid)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT pg_xact_commit_timestamp(ev.xmin) FROM salesmgmt.webhook_event ev WHERE ev.event_id = p_event_id
$fn$;
COMMENT ON FUNCTION salesmgmt._webhook_event_committed_at(uuid) IS
    'internal to salesmgmt.webhook_stats: the commit time of the transaction that wrote a webhook event (needs track_commit_timestamp), for readers without rights on the system column xmin';
REVOKE ALL ON FUNCTION salesmgmt._webhook_event_committed_at(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION salesmgmt._webhook_event_committed_at(uuid) TO salesmgmt_admin, salesmgmt_analyst;

-- Latency is measured from the commit of the changing transaction when
-- track_commit_timestamp is on, else from the event's time (the start of
-- that transaction); for a replay or a retry-from-dead from the delivery's
-- creation.
CREATE OR REPLACE VIEW salesmgmt.webhook_stats WITH (security_invoker = true) AS
WITH lat AS (
    SELECT d.endpoint_id,
           extract(epoch FROM d.delivered_at - greatest(d.created_at,
               CASE WHEN current_setting('track_commit_timestamp')::boolean
                    THEN coalesce(salesmgmt._webhook_event_committed_at(ev.event_id), ev.occurred_at)
                    ELSE ev.occurred_at END)) * 1000 AS ms
      FROM salesmgmt.webhook_delivery d
      JOIN salesmgmt.webhook_event ev ON ev.event_id = d.event_id
     WHERE d.state = 'delivered'
), att AS (
    SELECT a.endpoint_id, count(*) AS attempts,
           count(*) FILTER (WHERE a.status BETWEEN 200 AND 299) AS successes
      FROM salesmgmt.webhook_attempt a
     GROUP BY a.endpoint_id
)
SELECT e.endpoint_id, e.url, e.active,
       count(d.*) FILTER (WHERE d.state IN ('pending', 'in_flight')) AS pending,
       count(d.*) FILTER (WHERE d.state = 'delivered') AS delivered,
       count(d.*) FILTER (WHERE d.state = 'failed') AS failed,
       count(d.*) FILTER (WHERE d.state = 'dead') AS dead,
       coalesce(att.attempts, 0) AS attempts,
       round(att.successes::numeric / nullif(att.attempts, 0), 4) AS success_rate,
       (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY l.ms)::numeric, 1)
          FROM lat l WHERE l.endpoint_id = e.endpoint_id) AS p50_latency_ms,
       (SELECT round(percentile_cont(0.99) WITHIN GROUP (ORDER BY l.ms)::numeric, 1)
          FROM lat l WHERE l.endpoint_id = e.endpoint_id) AS p99_latency_ms,
       max(d.delivered_at) AS last_delivered_at
  FROM salesmgmt.webhook_endpoint e
  LEFT JOIN salesmgmt.webhook_delivery d ON d.endpoint_id = e.endpoint_id
  LEFT JOIN att ON att.endpoint_id = e.endpoint_id
 GROUP BY e.endpoint_id, e.url, e.active, att.attempts, att.successes
 ORDER BY e.endpoint_id;
COMMENT ON VIEW salesmgmt.webhook_stats IS 'Per endpoint: deliveries by state, attempts and their success rate, and p50/p99 latency from commit to delivery over the delivered rows still kept.';
COMMENT ON COLUMN salesmgmt.webhook_stats.endpoint_id IS 'Endpoint.';
COMMENT ON COLUMN salesmgmt.webhook_stats.url IS 'Its URL.';
COMMENT ON COLUMN salesmgmt.webhook_stats.active IS 'Whether it is active.';
COMMENT ON COLUMN salesmgmt.webhook_stats.pending IS 'Deliveries waiting for their first attempt or in flight.';
COMMENT ON COLUMN salesmgmt.webhook_stats.delivered IS 'Deliveries answered with 2xx (kept for salesmgmt.webhook_retention).';
COMMENT ON COLUMN salesmgmt.webhook_stats.failed IS 'Deliveries that failed and will be retried.';
COMMENT ON COLUMN salesmgmt.webhook_stats.dead IS 'Deliveries that exhausted their retries or met 410 Gone.';
COMMENT ON COLUMN salesmgmt.webhook_stats.attempts IS 'Attempts recorded.';
COMMENT ON COLUMN salesmgmt.webhook_stats.success_rate IS 'Share of the recorded attempts answered with 2xx.';
COMMENT ON COLUMN salesmgmt.webhook_stats.p50_latency_ms IS 'Median milliseconds from commit to delivery.';
COMMENT ON COLUMN salesmgmt.webhook_stats.p99_latency_ms IS '99th percentile milliseconds from commit to delivery.';
COMMENT ON COLUMN salesmgmt.webhook_stats.last_delivered_at IS 'Time of the latest delivery.';
-- the rights 0.1.0 gave it (security.sql: admins the four table privileges
-- on every relation, managers and reps SELECT on every view); the
-- analyst's column grants come from _apply_default_security() below
GRANT SELECT, INSERT, UPDATE, DELETE ON salesmgmt.webhook_stats TO salesmgmt_admin;
GRANT SELECT ON salesmgmt.webhook_stats TO salesmgmt_manager, salesmgmt_rep;

-- DDL on a salesmgmt table before Citus knows it: run here and on every
-- worker, where CREATE EXTENSION made the same local table (Citus keeps an
-- extension's own table as the worker's shell instead of creating one).
CREATE FUNCTION salesmgmt._distribute_ddl(p_sql text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    r record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'citus is not installed in this database' USING ERRCODE = 'SM121';
    END IF;
    IF p_sql IS NULL OR btrim(p_sql) = '' THEN
        RAISE EXCEPTION 'no statement to run' USING ERRCODE = '22023';
    END IF;
    EXECUTE p_sql;
    FOR r IN SELECT * FROM run_command_on_workers(p_sql) WHERE NOT success LOOP
        RAISE EXCEPTION 'on worker %:%: %', r.nodename, r.nodeport, r.result
            USING ERRCODE = 'SM123', DETAIL = p_sql;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION salesmgmt._distribute_ddl(text) IS
    'internal to salesmgmt.distribute(): runs one DDL statement on the coordinator and on every Citus worker';
REVOKE ALL ON FUNCTION salesmgmt._distribute_ddl(text) FROM PUBLIC;

CREATE FUNCTION salesmgmt.distribute(p_shard_count int DEFAULT 32)
RETURNS TABLE (table_name text, citus_table_type text, note text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_deal regclass;
    v_dist boolean;
    r record;
BEGIN
    IF p_shard_count IS NULL OR p_shard_count < 1 OR p_shard_count > 64000 THEN
        RAISE EXCEPTION 'shard count must be between 1 and 64000, not %', coalesce(p_shard_count::text, 'null')
            USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'citus is not installed in this database'
            USING ERRCODE = 'SM121',
                  DETAIL = 'salesmgmt.distribute() makes salesmgmt''s tables Citus reference and distributed tables.',
                  HINT = 'Add citus to shared_preload_libraries, CREATE EXTENSION citus, add the worker nodes, then call it on the coordinator.';
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'salesmgmt.distribute() must be run by a superuser'
            USING ERRCODE = '42501',
                  DETAIL = 'Citus converts only tables the caller owns; salesmgmt''s tables belong to the superuser that created the extension.';
    END IF;
    IF (SELECT groupid FROM pg_dist_local_group) <> 0 THEN
        RAISE EXCEPTION 'salesmgmt.distribute() runs on the coordinator, not on a worker'
            USING ERRCODE = 'SM122';
    END IF;

    DROP TABLE IF EXISTS sm_dist_plan, sm_dist_report, sm_dist_fk, sm_dist_trigger;
    -- the plan: every table of the schema and the kind it gets
    CREATE TEMP TABLE sm_dist_plan ON COMMIT DROP AS
    SELECT c.oid::regclass AS rel, c.relname::text AS relname,
           coalesce(a.attnotnull, false) AS distributed,
           p.partmethod IS NOT NULL AS done
      FROM pg_class c
      LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'deal_id' AND NOT a.attisdropped
      LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid
     WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind = 'r';
    CREATE TEMP TABLE sm_dist_report (table_name text, citus_table_type text, note text) ON COMMIT DROP;

    IF EXISTS (SELECT 1 FROM sm_dist_plan WHERE NOT done) THEN
        v_deal := 'salesmgmt.deal'::regclass;
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);

        -- 1. every foreign key between salesmgmt's tables, dropped
        CREATE TEMP TABLE sm_dist_fk ON COMMIT DROP AS
        SELECT k.conrelid::regclass AS rel, k.conname::text AS conname, pg_get_constraintdef(k.oid) AS def,
               pf.distributed AS from_dist, pt.distributed AS to_dist,
               pt.distributed AND NOT (SELECT bool_or(attname = 'deal_id') FROM pg_attribute
                                        WHERE attrelid = k.confrelid AND attnum = ANY (k.confkey)) AS needs_deal_id
          FROM pg_constraint k
          JOIN sm_dist_plan pf ON pf.rel = k.conrelid
          JOIN sm_dist_plan pt ON pt.rel = k.confrelid
         WHERE k.contype = 'f';
        FOR r IN SELECT * FROM sm_dist_fk LOOP
            PERFORM salesmgmt._distribute_ddl(format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', r.rel, r.conname));
        END LOOP;

        -- 2. unique and exclusion constraints of deal-side tables without deal_id
        FOR r IN SELECT k.conrelid::regclass AS rel, k.conname::text AS conname, k.contype,
                        pg_get_constraintdef(k.oid) AS def, pl.relname
                   FROM pg_constraint k JOIN sm_dist_plan pl ON pl.rel = k.conrelid
                  WHERE pl.distributed AND NOT pl.done AND k.contype IN ('p', 'u', 'x')
                    AND NOT EXISTS (SELECT 1 FROM pg_attribute
                                     WHERE attrelid = k.conrelid AND attnum = ANY (k.conkey) AND attname = 'deal_id')
                  ORDER BY k.conrelid::regclass::text, k.conname LOOP
            PERFORM salesmgmt._distribute_ddl(format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', r.rel, r.conname));
            IF r.contype = 'p' THEN
                PERFORM salesmgmt._distribute_ddl(format('ALTER TABLE %s ADD CONSTRAINT %I %s', r.rel, r.conname,
                               regexp_replace(r.def, '^PRIMARY KEY \(', 'PRIMARY KEY (deal_id, ')));
                INSERT INTO sm_dist_report VALUES (r.relname, NULL, format('primary key is now %s',
                    regexp_replace(r.def, '^PRIMARY KEY \(', 'PRIMARY KEY (deal_id, ')));
            ELSE
                INSERT INTO sm_dist_report VALUES (r.relname, NULL, format('constraint %s dropped (Citus cannot enforce it across shards): %s', r.conname, r.def));
            END IF;
        END LOOP;

        -- 3. reference tables, then deal, then the tables co-located with it;
        -- the triggers off while Citus copies the rows into the shards (the
        -- copy would fire them on every placement: history versions twice)
        CREATE TEMP TABLE sm_dist_trigger ON COMMIT DROP AS
        SELECT t.tgrelid::regclass AS rel, t.tgname::text AS tgname
          FROM pg_trigger t JOIN sm_dist_plan pl ON pl.rel = t.tgrelid
         WHERE NOT pl.done AND NOT t.tgisinternal AND t.tgenabled = 'O';
        FOR r IN SELECT DISTINCT rel FROM sm_dist_trigger LOOP
            PERFORM salesmgmt._distribute_ddl(format('ALTER TABLE %s DISABLE TRIGGER USER', r.rel));
        END LOOP;
        FOR r IN SELECT * FROM sm_dist_plan WHERE NOT done
                  ORDER BY distributed, rel <> v_deal, relname LOOP
            IF NOT r.distributed THEN
                PERFORM create_reference_table(r.rel);
            ELSIF r.rel = v_deal THEN
                PERFORM create_distributed_table(r.rel, 'deal_id', shard_count => p_shard_count);
            ELSE
                PERFORM create_distributed_table(r.rel, 'deal_id', colocate_with => 'salesmgmt.deal');
            END IF;
        END LOOP;

        -- 4. the foreign keys back, on deal_id too between deal-side tables
        FOR r IN SELECT * FROM sm_dist_fk ORDER BY rel::text, conname LOOP
            IF r.from_dist IS FALSE AND r.to_dist THEN
                INSERT INTO sm_dist_report VALUES (r.rel::text, NULL,
                    format('foreign key %s dropped (Citus refuses keys from a reference table to a distributed one): %s', r.conname, r.def));
                CONTINUE;
            END IF;
            IF r.needs_deal_id THEN
                r.def := regexp_replace(r.def, '^FOREIGN KEY \(([^)]*)\) REFERENCES ([^(]+)\(([^)]*)\)',
                                        'FOREIGN KEY (deal_id, \1) REFERENCES \2(deal_id, \3)');
                INSERT INTO sm_dist_report VALUES (r.rel::text, NULL, format('foreign key %s is now %s', r.conname, r.def));
            END IF;
            EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', r.rel, r.conname, r.def);
        END LOOP;

        -- 5. identity sequences of the distributed tables: a trigger on a
        -- worker's shard (the history of a deal) takes the next id from
        -- that worker's own sequence, which CREATE EXTENSION started at 1
        -- like the coordinator's; each node gets its own range, as Citus
        -- gives the sequences of the tables it creates (group id << 48)
        FOR r IN SELECT pg_get_serial_sequence(pl.rel::text, a.attname) AS seq
                   FROM sm_dist_plan pl JOIN pg_attribute a ON a.attrelid = pl.rel
                  WHERE pl.distributed AND NOT pl.done AND a.attnum > 0 AND NOT a.attisdropped
                    AND pg_get_serial_sequence(pl.rel::text, a.attname) IS NOT NULL LOOP
            PERFORM * FROM run_command_on_workers(format(
                'SELECT pg_catalog.setval(%L, greatest((SELECT last_value FROM %s), '
                '(SELECT groupid FROM pg_catalog.pg_dist_local_group)::bigint << 48))', r.seq, r.seq));
        END LOOP;

        -- 6. the triggers back on (Citus passes this on to the shards)
        FOR r IN SELECT * FROM sm_dist_trigger ORDER BY rel::text, tgname LOOP
            EXECUTE format('ALTER TABLE %s ENABLE TRIGGER %I', r.rel, r.tgname);
        END LOOP;
    END IF;

    RETURN QUERY
    SELECT pl.relname,
           CASE WHEN dp.partmethod = 'h' THEN 'distributed'
                WHEN dp.repmodel = 't' THEN 'reference'
                WHEN dp.logicalrelid IS NOT NULL THEN 'local' END,
           NULL::text
      FROM sm_dist_plan pl LEFT JOIN pg_dist_partition dp ON dp.logicalrelid = pl.rel
    UNION ALL
    SELECT regexp_replace(rp.table_name, '^salesmgmt\.', ''), NULL, rp.note FROM sm_dist_report rp
     ORDER BY 1, 3 NULLS FIRST;
END
$fn$;
COMMENT ON FUNCTION salesmgmt.distribute(int) IS
    'Citus: makes the configuration and organisation tables reference tables and distributes the deal-side tables by deal_id, co-located with deal, in p_shard_count shards; idempotent; superuser on the coordinator (docs/scale-out.md)';
REVOKE ALL ON FUNCTION salesmgmt.distribute(int) FROM PUBLIC;

SELECT salesmgmt._apply_default_security();

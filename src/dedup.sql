-- dedup.sql: duplicate accounts, contacts and leads: found, checked on
-- insert and update, and merged.  New in 0.2.0; the install script and the
-- upgrade from 0.1.0 both run this file whole.  Name similarity comes from
-- the pg_trgm contrib module (the control file's "requires"); its schema
-- is wherever the DBA installed it, so the queries that use its operator
-- are built with that schema at run time.  The setting
-- salesmgmt.duplicate_check is in dedup.c.  See docs/history.md.

-- ---------------------------------------------------------------------------
-- Normalised keys (immutable: the indexes below are built on them)
-- ---------------------------------------------------------------------------

CREATE FUNCTION salesmgmt.dedup_name(p_name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(pg_catalog.regexp_replace(pg_catalog.btrim(pg_catalog.regexp_replace(
           pg_catalog.lower(p_name), '[^[:alnum:]]+', ' ', 'g')),
           '( (inc|incorporated|ltd|limited|llc|gmbh|corp|corporation|co|company|plc|ag|sa|srl|bv|oy|ab|kg))+$', ''), '');
COMMENT ON FUNCTION salesmgmt.dedup_name(text) IS 'A name as duplicate checks compare it: lower case, punctuation as single spaces, legal suffixes (Inc, Ltd, GmbH, ...) dropped; null when nothing is left.';

CREATE FUNCTION salesmgmt.dedup_email(p_email text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(pg_catalog.regexp_replace(pg_catalog.lower(pg_catalog.btrim(p_email)), '\+[^@]*@', '@'), '');
COMMENT ON FUNCTION salesmgmt.dedup_email(text) IS 'An e-mail address as duplicate checks compare it: trimmed, lower case, without a +tag in the local part.';

CREATE FUNCTION salesmgmt.dedup_phone(p_phone text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN pg_catalog.length(pg_catalog.regexp_replace(p_phone, '[^0-9]', '', 'g')) >= 6
            THEN pg_catalog.right(pg_catalog.regexp_replace(p_phone, '[^0-9]', '', 'g'), 9) END;
COMMENT ON FUNCTION salesmgmt.dedup_phone(text) IS 'A phone number as duplicate checks compare it: its last nine digits (country and trunk prefixes vary), null under six digits.';

CREATE FUNCTION salesmgmt.dedup_domain(p_web text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(pg_catalog.regexp_replace(pg_catalog.regexp_replace(pg_catalog.lower(pg_catalog.btrim(p_web)),
           '^([a-z][a-z0-9+.-]*://)?([^@/]*@)?(www\.)?', ''), '[/:?#].*$', ''), '');
COMMENT ON FUNCTION salesmgmt.dedup_domain(text) IS 'The web domain of a web address or an e-mail address: lower case, without scheme, www., user, port and path.';

-- ---------------------------------------------------------------------------
-- The entities, as duplicate checks see them
-- ---------------------------------------------------------------------------

-- One row per record: normalised name, email, phone, domain, and a group
-- (the contact's account, the lead's company) that adds evidence.
-- Accounts keep a web site and a phone in extra ("website", "phone").
CREATE FUNCTION salesmgmt._dedup_source(p_entity text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN CASE p_entity
        WHEN 'account' THEN
            'SELECT account_id AS id, name, salesmgmt.dedup_name(name) AS nname, NULL::text AS email,'
            ' salesmgmt.dedup_phone(extra ->> ''phone'') AS phone,'
            ' salesmgmt.dedup_domain(extra ->> ''website'') AS domain, NULL::text AS grp,'
            ' owner_rep_id AS owner FROM salesmgmt.account'
        WHEN 'contact' THEN
            'SELECT c.contact_id AS id, c.name, salesmgmt.dedup_name(c.name) AS nname,'
            ' salesmgmt.dedup_email(c.email) AS email, salesmgmt.dedup_phone(c.phone) AS phone,'
            ' NULL::text AS domain, c.account_id::text AS grp, a.owner_rep_id AS owner'
            ' FROM salesmgmt.contact c JOIN salesmgmt.account a ON a.account_id = c.account_id'
        WHEN 'lead' THEN
            'SELECT lead_id AS id, name, salesmgmt.dedup_name(name) AS nname,'
            ' salesmgmt.dedup_email(email) AS email, salesmgmt.dedup_phone(phone) AS phone,'
            ' NULL::text AS domain, salesmgmt.dedup_name(company) AS grp, owner_rep_id AS owner'
            ' FROM salesmgmt.lead'
    END;
END
$$;
COMMENT ON FUNCTION salesmgmt._dedup_source(text) IS 'Internal: the query giving the normalised keys (id, name, nname, email, phone, domain, grp, owner) of every account, contact or lead; null for another entity.';

CREATE INDEX account_dedup_name_trgm ON salesmgmt.account USING gin (salesmgmt.dedup_name(name) gin_trgm_ops);
CREATE INDEX account_dedup_phone ON salesmgmt.account (salesmgmt.dedup_phone(extra ->> 'phone'))
    WHERE salesmgmt.dedup_phone(extra ->> 'phone') IS NOT NULL;
CREATE INDEX account_dedup_domain ON salesmgmt.account (salesmgmt.dedup_domain(extra ->> 'website'))
    WHERE salesmgmt.dedup_domain(extra ->> 'website') IS NOT NULL;
CREATE INDEX contact_dedup_name_trgm ON salesmgmt.contact USING gin (salesmgmt.dedup_name(name) gin_trgm_ops);
CREATE INDEX contact_dedup_email ON salesmgmt.contact (salesmgmt.dedup_email(email))
    WHERE salesmgmt.dedup_email(email) IS NOT NULL;
CREATE INDEX contact_dedup_phone ON salesmgmt.contact (salesmgmt.dedup_phone(phone))
    WHERE salesmgmt.dedup_phone(phone) IS NOT NULL;
CREATE INDEX lead_dedup_name_trgm ON salesmgmt.lead USING gin (salesmgmt.dedup_name(name) gin_trgm_ops);
CREATE INDEX lead_dedup_email ON salesmgmt.lead (salesmgmt.dedup_email(email))
    WHERE salesmgmt.dedup_email(email) IS NOT NULL;
CREATE INDEX lead_dedup_phone ON salesmgmt.lead (salesmgmt.dedup_phone(phone))
    WHERE salesmgmt.dedup_phone(phone) IS NOT NULL;

-- The schema of pg_trgm, quoted, for its operator and functions.
CREATE FUNCTION salesmgmt._trgm_schema()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text;
BEGIN
    SELECT quote_ident(n.nspname) INTO v
      FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_trgm';
    IF v IS NULL THEN
        RAISE EXCEPTION 'the pg_trgm extension is not installed'
            USING ERRCODE = '55000', HINT = 'CREATE EXTENSION pg_trgm (salesmgmt requires it).';
    END IF;
    RETURN v;
END
$$;
COMMENT ON FUNCTION salesmgmt._trgm_schema() IS 'Internal: the schema of the pg_trgm extension, quoted for dynamic SQL.';

-- ---------------------------------------------------------------------------
-- Scores
-- ---------------------------------------------------------------------------

-- The evidence of a pair combined as independent signals: same e-mail
-- 0.95, same phone 0.7, same web domain 0.7, same group 0.3, and the name
-- similarity s (pg_trgm, 0..1) counted from 0.5 up, to 0.8 for equal names.
CREATE FUNCTION salesmgmt._dedup_score(p_same boolean[], p_similarity real)
RETURNS real
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (1 - (1 - CASE WHEN p_same[1] THEN 0.95 ELSE 0 END)
          * (1 - CASE WHEN p_same[2] THEN 0.7 ELSE 0 END)
          * (1 - CASE WHEN p_same[3] THEN 0.7 ELSE 0 END)
          * (1 - CASE WHEN p_same[4] THEN 0.3 ELSE 0 END)
          * (1 - greatest(0, (coalesce(p_similarity, 0) - 0.5) * 1.6)))::real;
COMMENT ON FUNCTION salesmgmt._dedup_score(boolean[], real) IS 'Internal: the duplicate score of a pair from its evidence (same e-mail 0.95, phone 0.7, web domain 0.7, group 0.3: p_same in that order; name similarity above 0.5 up to 0.8), combined as independent signals.';

CREATE FUNCTION salesmgmt._dedup_reasons(p_same boolean[], p_group text, p_similarity real)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN pg_catalog.array_remove(ARRAY[
    CASE WHEN p_same[1] THEN 'same email' END,
    CASE WHEN p_same[2] THEN 'same phone' END,
    CASE WHEN p_same[3] THEN 'same web domain' END,
    CASE WHEN p_same[4] THEN p_group END,
    CASE WHEN p_similarity >= 1 THEN 'same name'
         WHEN p_similarity > 0.5 THEN 'similar name (' || pg_catalog.round(p_similarity::numeric, 2) || ')' END], NULL);
COMMENT ON FUNCTION salesmgmt._dedup_reasons(boolean[], text, real) IS 'Internal: the reasons of a duplicate pair, as find_duplicates lists them (p_same: same e-mail, phone, web domain, group; p_group names the group).';

-- ---------------------------------------------------------------------------
-- find_duplicates
-- ---------------------------------------------------------------------------

-- Candidates, never a cross join: records with an equal normalised e-mail,
-- phone, web domain or name (by hashing; groups of more than 50 equal keys
-- are left out: a switchboard number or a shared domain says nothing), and
-- for misspelt names the sorted neighbourhood: each record against the
-- next three in the order of its normalised name and in the order of the
-- name read backwards (a typo leaves one end of the name in place).  Each
-- candidate pair is then scored on all its evidence, the name by pg_trgm
-- trigram similarity.
CREATE FUNCTION salesmgmt.find_duplicates(p_entity text, p_min_score real DEFAULT 0.6)
RETURNS TABLE (id_a bigint, id_b bigint, score real, reasons text[])
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- the planner cannot know that the candidate pairs are few (it estimates
-- the joins on the materialized records blindly): JIT would compile for
-- a query of billions of rows
SET jit = off
AS $$
DECLARE
    v_src text := salesmgmt._dedup_source(p_entity);
    v_trgm text := salesmgmt._trgm_schema();
    v_group text := CASE p_entity WHEN 'contact' THEN 'same account' WHEN 'lead' THEN 'same company' END;
BEGIN
    IF p_entity IS NULL OR p_min_score IS NULL THEN
        RAISE EXCEPTION 'find_duplicates needs an entity and a minimum score, not null' USING ERRCODE = '22004';
    END IF;
    IF v_src IS NULL THEN
        RAISE EXCEPTION 'unknown entity "%" for find_duplicates', p_entity
            USING ERRCODE = '22023', HINT = 'Use account, contact or lead.';
    END IF;
    IF p_min_score <= 0 OR p_min_score > 1 OR p_min_score = 'NaN' THEN
        RAISE EXCEPTION 'minimum score % is out of range', p_min_score
            USING ERRCODE = '22023', HINT = 'Pass a score above 0 and at most 1 (0.6 by default).';
    END IF;
    RETURN QUERY EXECUTE format($q$
        WITH e AS MATERIALIZED (%1$s),
        keyed AS (
            SELECT 'e' AS k, email AS v, id FROM e WHERE email IS NOT NULL
            UNION ALL SELECT 'p', phone, id FROM e WHERE phone IS NOT NULL
            UNION ALL SELECT 'd', domain, id FROM e WHERE domain IS NOT NULL
            UNION ALL SELECT 'n', nname, id FROM e WHERE nname IS NOT NULL),
        groups AS (
            SELECT array_agg(id) AS ids FROM keyed GROUP BY k, v HAVING count(*) BETWEEN 2 AND 50),
        near AS (
            SELECT id, lead(id, 1) OVER f AS f1, lead(id, 2) OVER f AS f2, lead(id, 3) OVER f AS f3,
                   lead(id, 1) OVER b AS b1, lead(id, 2) OVER b AS b2, lead(id, 3) OVER b AS b3
              FROM e WHERE nname IS NOT NULL
            WINDOW f AS (ORDER BY nname COLLATE "C", id), b AS (ORDER BY reverse(nname) COLLATE "C", id)),
        cand AS (
            SELECT a AS x, b AS y FROM groups, unnest(ids) a, unnest(ids) b WHERE a < b
            UNION
            SELECT least(n.id, v.y), greatest(n.id, v.y)
              FROM near n, LATERAL (VALUES (n.f1), (n.f2), (n.f3), (n.b1), (n.b2), (n.b3)) v (y)
             WHERE v.y IS NOT NULL),
        scored AS MATERIALIZED (
            SELECT c.x, c.y, a.email = b.email AS se, a.phone = b.phone AS sp, a.domain = b.domain AS sd,
                   a.grp = b.grp AS sg,
                   CASE WHEN a.nname = b.nname THEN 1 ELSE least(%2$s.similarity(a.nname, b.nname), 0.99) END AS sim
              FROM cand c JOIN e a ON a.id = c.x JOIN e b ON b.id = c.y)
        SELECT x, y, salesmgmt._dedup_score(ARRAY[se, sp, sd, sg], sim),
               salesmgmt._dedup_reasons(ARRAY[se, sp, sd, sg], %3$L, sim)
          FROM scored
         WHERE salesmgmt._dedup_score(ARRAY[se, sp, sd, sg], sim) >= %4$s
         ORDER BY 3 DESC, 1, 2$q$, v_src, v_trgm, v_group, p_min_score);
END
$$;
COMMENT ON FUNCTION salesmgmt.find_duplicates(text, real) IS 'Likely duplicate pairs of accounts, contacts or leads (id_a < id_b) with a score from 0 to 1 and its reasons (same email, phone or web domain after normalising, same account or company, similar name by pg_trgm trigram similarity), best first; only pairs scoring at least p_min_score. Runs with the caller''s rights (row-level security applies).';

-- ---------------------------------------------------------------------------
-- The duplicate check
-- ---------------------------------------------------------------------------

-- The likeliest duplicate of one record, from the indexes.
CREATE FUNCTION salesmgmt._dedup_best_match(p_entity text, p_id bigint, p_name text, p_email text,
                                            p_phone text, p_domain text, p_group text,
                                            OUT match_id bigint, OUT match_name text,
                                            OUT score real, OUT reasons text[])
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_trgm text := salesmgmt._trgm_schema();
    v_nname text := salesmgmt.dedup_name(p_name);
    v_threshold text := current_setting('pg_trgm.similarity_threshold', true);
BEGIN
    IF salesmgmt._dedup_source(p_entity) IS NULL THEN
        RAISE EXCEPTION 'unknown entity "%" for duplicate checks', p_entity
            USING ERRCODE = '22023', HINT = 'Use account, contact or lead.';
    END IF;
    PERFORM set_config('pg_trgm.similarity_threshold', '0.875', true);
    EXECUTE format($q$
        WITH cand AS (
            SELECT * FROM (%1$s) e WHERE e.nname OPERATOR(%2$s.%%) $2
            UNION SELECT * FROM (%1$s) e WHERE e.email = $3
            UNION SELECT * FROM (%1$s) e WHERE e.phone = $4
            UNION SELECT * FROM (%1$s) e WHERE e.domain = $5),
        scored AS (
            SELECT c.id, c.name,
                   salesmgmt._dedup_score(ARRAY[c.email = $3, c.phone = $4, c.domain = $5, c.grp = $6],
                                          CASE WHEN c.nname = $2 THEN 1
                                               ELSE least(%2$s.similarity(c.nname, $2), 0.99) END) AS s,
                   salesmgmt._dedup_reasons(ARRAY[c.email = $3, c.phone = $4, c.domain = $5, c.grp = $6], %3$L,
                                            CASE WHEN c.nname = $2 THEN 1
                                                 ELSE least(%2$s.similarity(c.nname, $2), 0.99) END) AS r
              FROM cand c WHERE c.id IS DISTINCT FROM $1)
        SELECT id, name, s, r FROM scored ORDER BY s DESC, id LIMIT 1$q$,
        salesmgmt._dedup_source(p_entity), v_trgm,
        CASE p_entity WHEN 'contact' THEN 'same account' WHEN 'lead' THEN 'same company' END)
       INTO match_id, match_name, score, reasons
       USING p_id, v_nname, salesmgmt.dedup_email(p_email), salesmgmt.dedup_phone(p_phone),
             salesmgmt.dedup_domain(p_domain), p_group;
    PERFORM set_config('pg_trgm.similarity_threshold', coalesce(v_threshold, '0.3'), true);
END
$$;
COMMENT ON FUNCTION salesmgmt._dedup_best_match(text, bigint, text, text, text, text, text) IS 'Internal: the likeliest duplicate of a record given by its fields (the record itself excluded), its score and reasons; nulls when there is none.';

-- BEFORE INSERT OR UPDATE of the compared fields: warns or refuses (SM100)
-- when salesmgmt.duplicate_check says so for the entity and a record
-- scores 0.6 or more.  Runs as the schema's owner: a likely duplicate
-- owned by another rep is exactly the one to report.
CREATE FUNCTION salesmgmt._duplicate_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_entity text := TG_ARGV[0];
    v_mode text := salesmgmt._duplicate_mode(v_entity);
    m record;
BEGIN
    IF v_mode = 'off' THEN
        RETURN NEW;
    END IF;
    IF v_entity = 'account' THEN
        m := salesmgmt._dedup_best_match('account', NEW.account_id, NEW.name, NULL,
                                         NEW.extra ->> 'phone', NEW.extra ->> 'website', NULL);
    ELSIF v_entity = 'contact' THEN
        m := salesmgmt._dedup_best_match('contact', NEW.contact_id, NEW.name, NEW.email,
                                         NEW.phone, NULL, NEW.account_id::text);
    ELSE
        m := salesmgmt._dedup_best_match('lead', NEW.lead_id, NEW.name, NEW.email,
                                         NEW.phone, NULL, salesmgmt.dedup_name(NEW.company));
    END IF;
    IF m.score >= 0.6 THEN
        IF v_mode = 'refuse' THEN
            RAISE EXCEPTION '% "%" is a likely duplicate of % %', v_entity, NEW.name, v_entity, m.match_id
                USING ERRCODE = 'SM100',
                      DETAIL = format('%s %s "%s" scores %s: %s.', v_entity, m.match_id, m.match_name,
                                      round(m.score::numeric, 2), array_to_string(m.reasons, ', ')),
                      HINT = format('Use %s %s, merge the two with salesmgmt.merge_%ss, or set salesmgmt.duplicate_check to warn or off for this change.',
                                    v_entity, m.match_id, v_entity);
        END IF;
        RAISE WARNING '% "%" is a likely duplicate of % %', v_entity, NEW.name, v_entity, m.match_id
            USING ERRCODE = 'SM100',
                  DETAIL = format('%s %s "%s" scores %s: %s.', v_entity, m.match_id, m.match_name,
                                  round(m.score::numeric, 2), array_to_string(m.reasons, ', '));
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION salesmgmt._duplicate_check() IS 'Internal trigger (argument: account, contact or lead): warns about or refuses (SM100) a record that scores 0.6 or more against an existing one, as salesmgmt.duplicate_check says for the entity.';

CREATE FUNCTION salesmgmt._duplicate_mode(p_entity text)
RETURNS text
LANGUAGE c STRICT STABLE
AS 'MODULE_PATHNAME', 'sm_duplicate_mode';
COMMENT ON FUNCTION salesmgmt._duplicate_mode(text) IS 'Internal: off, warn or refuse: what salesmgmt.duplicate_check says for account, contact or lead.';

CREATE TRIGGER account_duplicate_check
    BEFORE INSERT OR UPDATE OF name, extra ON salesmgmt.account
    FOR EACH ROW WHEN (salesmgmt._duplicate_mode('account') <> 'off') EXECUTE FUNCTION salesmgmt._duplicate_check('account');
CREATE TRIGGER contact_duplicate_check
    BEFORE INSERT OR UPDATE OF name, email, phone ON salesmgmt.contact
    FOR EACH ROW WHEN (salesmgmt._duplicate_mode('contact') <> 'off') EXECUTE FUNCTION salesmgmt._duplicate_check('contact');
CREATE TRIGGER lead_duplicate_check
    BEFORE INSERT OR UPDATE OF name, email, phone, company ON salesmgmt.lead
    FOR EACH ROW WHEN (salesmgmt._duplicate_mode('lead') <> 'off') EXECUTE FUNCTION salesmgmt._duplicate_check('lead');

-- ---------------------------------------------------------------------------
-- Merges
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.merge_log (
    merge_id        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    entity          text NOT NULL
                    CONSTRAINT merge_log_entity_valid CHECK (entity IN ('account', 'contact', 'lead')),
    kept_id         bigint NOT NULL,
    merged_id       bigint NOT NULL,
    merged_row      jsonb NOT NULL,
    repointed       jsonb NOT NULL DEFAULT '{}',
    left_rows       jsonb NOT NULL DEFAULT '[]',
    owner_rep_id    bigint,
    merged_at       timestamptz NOT NULL DEFAULT now(),
    merged_by       name NOT NULL
);
CREATE INDEX ON salesmgmt.merge_log (entity, kept_id);
CREATE INDEX ON salesmgmt.merge_log (entity, merged_id);
COMMENT ON TABLE salesmgmt.merge_log IS 'One row per record merged into another by merge_accounts, merge_contacts or merge_leads: the merged record''s content, what was re-pointed, who and when.';
COMMENT ON COLUMN salesmgmt.merge_log.merge_id IS 'Identity of the log row.';
COMMENT ON COLUMN salesmgmt.merge_log.entity IS 'account, contact or lead.';
COMMENT ON COLUMN salesmgmt.merge_log.kept_id IS 'Record that was kept (the survivor).';
COMMENT ON COLUMN salesmgmt.merge_log.merged_id IS 'Record merged into it and deleted; its change history stays in salesmgmt.change_log under this id.';
COMMENT ON COLUMN salesmgmt.merge_log.merged_row IS 'The merged record as it was, as jsonb.';
COMMENT ON COLUMN salesmgmt.merge_log.repointed IS 'Rows re-pointed from the merged record to the kept one, per referencing column ("salesmgmt.deal.account_id": 3).';
COMMENT ON COLUMN salesmgmt.merge_log.left_rows IS 'Referencing rows that could not be re-pointed (append-only history, a unique key the kept record already holds), as they were: [{"table", "row"}].';
COMMENT ON COLUMN salesmgmt.merge_log.owner_rep_id IS 'Owner of the kept record when merged (the row-level security of the log).';
COMMENT ON COLUMN salesmgmt.merge_log.merged_at IS 'When the merge was made.';
COMMENT ON COLUMN salesmgmt.merge_log.merged_by IS 'Database role that merged.';

CREATE TRIGGER merge_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON salesmgmt.merge_log
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._append_only();

CREATE FUNCTION salesmgmt._outer_role()
RETURNS name
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'sm_outer_role';
COMMENT ON FUNCTION salesmgmt._outer_role() IS 'Internal: the role in force outside SECURITY DEFINER functions (current_user of the caller).';

-- The merge itself: every single-column foreign key of the catalog that
-- points at the entity's table is re-pointed, so tables added later are
-- covered.  Runs as the schema's owner after checking the caller's right.
CREATE FUNCTION salesmgmt._merge(p_entity text, p_keep bigint, p_merge bigint[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table regclass := CASE p_entity WHEN 'account' THEN 'salesmgmt.account'::regclass
                                      WHEN 'contact' THEN 'salesmgmt.contact'::regclass
                                      WHEN 'lead' THEN 'salesmgmt.lead'::regclass END;
    v_id text := p_entity || '_id';
    v_owner_sql text := CASE p_entity
        WHEN 'contact' THEN 'SELECT a.owner_rep_id FROM salesmgmt.contact c JOIN salesmgmt.account a USING (account_id) WHERE c.contact_id = ANY ($1)'
        ELSE format('SELECT owner_rep_id FROM %s WHERE %I = ANY ($1)', v_table, v_id) END;
    v_role name := salesmgmt._outer_role();
    v_rep bigint;
    v_ids bigint[];
    v_found bigint[];
    v_owner bigint;
    v_keep_owner bigint;
    v_merged bigint;
    v_row jsonb;
    v_repointed jsonb;
    v_left jsonb;
    v_n bigint;
    fk record;
    r record;
BEGIN
    IF v_table IS NULL THEN
        RAISE EXCEPTION 'unknown entity "%" to merge', p_entity
            USING ERRCODE = '22023', HINT = 'Merge accounts, contacts or leads.';
    END IF;
    IF p_keep IS NULL OR p_merge IS NULL OR array_position(p_merge, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'merge_%s needs the record to keep and the records to merge, not null', p_entity
            USING ERRCODE = '22004';
    END IF;
    IF cardinality(p_merge) = 0 THEN
        RAISE EXCEPTION 'merge_%s needs at least one record to merge', p_entity USING ERRCODE = '22023';
    END IF;
    IF p_keep = ANY (p_merge) THEN
        RAISE EXCEPTION '% % cannot be merged into itself', p_entity, p_keep
            USING ERRCODE = '22023', HINT = 'List the records to merge without the one to keep.';
    END IF;
    v_ids := ARRAY(SELECT DISTINCT x FROM unnest(p_keep || p_merge) x ORDER BY x);
    -- lock every record involved, in id order (no deadlock between merges)
    EXECUTE format('SELECT array_agg(%1$I ORDER BY %1$I) FROM (SELECT %1$I FROM %2$s WHERE %1$I = ANY ($1) ORDER BY %1$I FOR UPDATE) s',
                   v_id, v_table) INTO v_found USING v_ids;
    IF v_found IS DISTINCT FROM v_ids THEN
        RAISE EXCEPTION 'no % %', p_entity,
              (SELECT min(x) FROM unnest(v_ids) x WHERE NOT x = ANY (coalesce(v_found, '{}')))
            USING ERRCODE = 'P0002', HINT = 'Merge records that exist.';
    END IF;

    -- the right to merge: admins, or a manager over every owner involved
    IF NOT (pg_has_role(v_role, 'salesmgmt_admin', 'MEMBER')
            OR (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = v_role)) THEN
        SELECT rep_id INTO v_rep FROM salesmgmt.rep WHERE db_role = v_role;
        FOR v_owner IN EXECUTE v_owner_sql USING v_ids LOOP
            IF v_rep IS NULL OR NOT pg_has_role(v_role, 'salesmgmt_manager', 'MEMBER')
               OR v_owner IS NULL
               OR NOT (v_owner = v_rep OR salesmgmt.rep_manages(v_rep, v_owner)) THEN
                RAISE EXCEPTION 'role % may not merge these %s', v_role, p_entity
                    USING ERRCODE = 'SM101',
                          DETAIL = format('Owner rep %s of one of them is not managed by the role.', coalesce(v_owner::text, 'none')),
                          HINT = 'Admins merge any records; a manager merges records owned by the reps of the teams they manage.';
            END IF;
        END LOOP;
    END IF;

    EXECUTE v_owner_sql INTO v_keep_owner USING ARRAY[p_keep];
    FOREACH v_merged IN ARRAY ARRAY(SELECT DISTINCT x FROM unnest(p_merge) x ORDER BY x) LOOP
        EXECUTE format('SELECT to_jsonb(t) FROM %s t WHERE %I = $1', v_table, v_id) INTO v_row USING v_merged;
        v_repointed := '{}';
        v_left := '[]';
        FOR fk IN
            SELECT c.conrelid::regclass AS tbl, a.attname AS col
              FROM pg_catalog.pg_constraint c
              JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
             WHERE c.contype = 'f' AND c.confrelid = v_table AND cardinality(c.conkey) = 1
             ORDER BY c.conrelid::regclass::text, a.attname
        LOOP
            BEGIN
                EXECUTE format('UPDATE %s SET %I = $1 WHERE %I = $2', fk.tbl, fk.col, fk.col)
                   USING p_keep, v_merged;
                GET DIAGNOSTICS v_n = ROW_COUNT;
            EXCEPTION WHEN OTHERS THEN
                -- row by row: what cannot move stays as it was, and is logged
                v_n := 0;
                FOR r IN EXECUTE format('SELECT ctid AS tid, to_jsonb(t) AS j FROM %s t WHERE %I = $1', fk.tbl, fk.col)
                         USING v_merged LOOP
                    BEGIN
                        EXECUTE format('UPDATE %s SET %I = $1 WHERE ctid = $2', fk.tbl, fk.col) USING p_keep, r.tid;
                        v_n := v_n + 1;
                    EXCEPTION WHEN OTHERS THEN
                        v_left := v_left || jsonb_build_array(jsonb_build_object(
                            'table', fk.tbl::text, 'row', r.j, 'reason', SQLERRM));
                    END;
                END LOOP;
            END;
            IF v_n > 0 THEN
                v_repointed := v_repointed || jsonb_build_object(fk.tbl::text || '.' || fk.col, v_n);
            END IF;
        END LOOP;
        INSERT INTO salesmgmt.merge_log (entity, kept_id, merged_id, merged_row, repointed, left_rows,
                                         owner_rep_id, merged_by)
        VALUES (p_entity, p_keep, v_merged, v_row, v_repointed, v_left, v_keep_owner, v_role);
        EXECUTE format('DELETE FROM %s WHERE %I = $1', v_table, v_id) USING v_merged;
    END LOOP;
    RETURN cardinality(ARRAY(SELECT DISTINCT x FROM unnest(p_merge) x));
END
$$;
COMMENT ON FUNCTION salesmgmt._merge(text, bigint, bigint[]) IS 'Internal: merges records of an entity into one (see merge_accounts); every single-column foreign key pointing at the table is re-pointed.';

CREATE FUNCTION salesmgmt.merge_accounts(p_keep bigint, p_merge bigint[])
RETURNS integer LANGUAGE sql
RETURN salesmgmt._merge('account', p_keep, p_merge);
COMMENT ON FUNCTION salesmgmt.merge_accounts(bigint, bigint[]) IS 'Merges the accounts p_merge into p_keep in one locked transaction: every row referencing them (deals, contacts, activities, tasks, ... found from the catalog''s foreign keys) is re-pointed, their content kept in salesmgmt.merge_log, and they are deleted; returns how many were merged. Admins, or a manager over every owner involved (SM101).';

CREATE FUNCTION salesmgmt.merge_contacts(p_keep bigint, p_merge bigint[])
RETURNS integer LANGUAGE sql
RETURN salesmgmt._merge('contact', p_keep, p_merge);
COMMENT ON FUNCTION salesmgmt.merge_contacts(bigint, bigint[]) IS 'Merges the contacts p_merge into p_keep as merge_accounts does accounts (the owner of a contact is its account''s).';

CREATE FUNCTION salesmgmt.merge_leads(p_keep bigint, p_merge bigint[])
RETURNS integer LANGUAGE sql
RETURN salesmgmt._merge('lead', p_keep, p_merge);
COMMENT ON FUNCTION salesmgmt.merge_leads(bigint, bigint[]) IS 'Merges the leads p_merge into p_keep as merge_accounts does accounts; lead history that cannot move is kept in merge_log.left_rows.';

-- ---------------------------------------------------------------------------
-- pg_dump, row-level security, grants
-- ---------------------------------------------------------------------------

SELECT salesmgmt._register_config_table('salesmgmt.merge_log');

SELECT salesmgmt._apply_default_security();

GRANT SELECT ON salesmgmt.merge_log TO salesmgmt_manager, salesmgmt_rep;
CREATE POLICY merge_log_read ON salesmgmt.merge_log FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (salesmgmt.rep_visible(owner_rep_id));
COMMENT ON POLICY merge_log_read ON salesmgmt.merge_log IS 'Reps read the merges into their own records, managers those of the reps of their team trees; admins every merge.';
GRANT EXECUTE ON FUNCTION salesmgmt.find_duplicates(text, real),
    salesmgmt.merge_accounts(bigint, bigint[]), salesmgmt.merge_contacts(bigint, bigint[]),
    salesmgmt.merge_leads(bigint, bigint[]), salesmgmt._merge(text, bigint, bigint[]),
    salesmgmt.dedup_name(text), salesmgmt.dedup_email(text), salesmgmt.dedup_phone(text),
    salesmgmt.dedup_domain(text),
    salesmgmt._dedup_source(text), salesmgmt._trgm_schema(),
    salesmgmt._dedup_score(boolean[], real), salesmgmt._dedup_reasons(boolean[], text, real),
    salesmgmt._duplicate_mode(text), salesmgmt._outer_role()
    TO salesmgmt_manager, salesmgmt_rep;

SELECT salesmgmt._apply_default_security();

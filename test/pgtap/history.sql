-- pgTAP: the audit trail (change_log, history_of, row_as_of, purge) and
-- duplicates (find_duplicates, the duplicate check, merges): structure,
-- behaviour, row-level security, and the bad inputs of every function.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(103);

-- structure
SELECT has_table('salesmgmt', t, t || ' exists') FROM unnest(ARRAY['change_log', 'merge_log']) t;
SELECT is((SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
            WHERE p.oid = 'salesmgmt._audit_trigger'::regproc), 'c', 'the audit trigger is C');
SELECT is((SELECT count(DISTINCT t.tgrelid)::int FROM pg_trigger t
            WHERE t.tgfoid = 'salesmgmt._audit_trigger'::regproc), 13, 'thirteen tables are audited (subscriptions too)');
SELECT is((SELECT array_agg(t.tgname::text ORDER BY t.tgname) FROM pg_trigger t
            WHERE t.tgfoid = 'salesmgmt._audit_trigger'::regproc AND t.tgrelid = 'salesmgmt.deal'::regclass),
          ARRAY['audit_delete'], 'deals are audited on delete only');
SELECT is((SELECT count(*)::int FROM pg_class c
            WHERE c.oid IN ('salesmgmt.change_log'::regclass, 'salesmgmt.merge_log'::regclass) AND c.relrowsecurity),
          2, 'both tables have row-level security');
SELECT is((SELECT count(*)::int FROM pg_extension e, unnest(e.extconfig) c
            WHERE e.extname = 'salesmgmt' AND c::regclass::text IN ('salesmgmt.change_log', 'salesmgmt.merge_log')),
          2, 'both tables are dumped with the data');
SELECT is((SELECT count(*)::int FROM pg_proc p
            WHERE p.pronamespace = 'salesmgmt'::regnamespace
              AND p.proname IN ('history_of', 'row_as_of', 'purge_change_log', 'find_duplicates', 'merge_accounts',
                                'merge_contacts', 'merge_leads', '_audit_table', '_merge', 'dedup_name')
              AND obj_description(p.oid, 'pg_proc') IS NULL), 0, 'every function has a comment');
SELECT is((SELECT count(*)::int FROM pg_proc p, aclexplode(p.proacl) a
            WHERE p.pronamespace = 'salesmgmt'::regnamespace AND a.grantee = 0
              AND p.proname IN ('history_of', 'row_as_of', 'purge_change_log', 'find_duplicates',
                                'merge_accounts', '_merge', '_audit_table')), 0,
          'no function is executable by PUBLIC');
SELECT ok(NOT has_function_privilege('salesmgmt_manager', 'salesmgmt.purge_change_log(timestamptz)', 'EXECUTE'),
          'managers cannot purge the change log');
SELECT ok(EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                   WHERE d.classid = 'pg_extension'::regclass AND e.extname = 'pg_trgm'
                     AND d.objid = (SELECT oid FROM pg_extension WHERE extname = 'salesmgmt')),
          'salesmgmt depends on pg_trgm');

-- a small world: Mia manages team North (Ada, Bo); Cy is in South
INSERT INTO salesmgmt.team (name) VALUES ('North'), ('South');
INSERT INTO salesmgmt.rep (name, email, team_id) VALUES
    ('Mia', 'mia@example.com', 1), ('Ada', 'ada@example.com', 1), ('Bo', 'bo@example.com', 1), ('Cy', 'cy@example.com', 2);
UPDATE salesmgmt.team SET manager_rep_id = 1 WHERE team_id = 1;
INSERT INTO salesmgmt.account (name, owner_rep_id, extra) VALUES
    ('Acme Industries', 2, '{"website": "https://www.acme.example/", "phone": "+1 555 0100 200"}'),
    ('ACME Industries, Inc.', 3, '{}'),
    ('Globex', 4, '{"website": "acme.example"}'),
    ('Initech', 4, '{"phone": "(555) 0100-200"}'),
    ('Umbrella', 2, '{}');
INSERT INTO salesmgmt.contact (account_id, name, email, phone) VALUES
    (1, 'Jo Smith', 'jo@acme.example', NULL), (2, 'Joe Smith', 'JO+news@acme.example', NULL),
    (3, 'Kim Lee', 'kim@globex.example', '555 123 4567');
SELECT salesmgmt.create_pipeline('New', '[{"name": "Qualify", "probability": 0.2}, {"name": "Won", "outcome": "won"}, {"name": "Lost", "outcome": "lost"}]');
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount) VALUES
    ('D1', 2, 3, 1, 1, 100), ('D2', 5, 2, 1, 1, 50);
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) VALUES (2, '2026-01-01', '2026-03-31', 1000);

-- ------------------------------------------------------------ the trail
SELECT is((SELECT count(*)::int FROM salesmgmt.change_log WHERE table_name = 'salesmgmt.account' AND operation = 'INSERT'),
          5, 'one INSERT row per account inserted');
SELECT is((SELECT new_values ->> 'name' FROM salesmgmt.change_log WHERE table_name = 'salesmgmt.account' AND row_id = 1),
          'Acme Industries', 'an insert logs the whole row');
UPDATE salesmgmt.account SET region = 'EMEA', segment = 'SMB' WHERE account_id IN (1, 5);
UPDATE salesmgmt.account SET name = name WHERE account_id = 1;
SELECT results_eq($$SELECT operation, changed_columns, old_values, new_values
                      FROM salesmgmt.history_of('salesmgmt.account', 1) WHERE operation = 'UPDATE'$$,
                  $$VALUES ('UPDATE'::text, ARRAY['region', 'segment'], '{"region": null, "segment": null}'::jsonb,
                            '{"region": "EMEA", "segment": "SMB"}'::jsonb)$$,
                  'an update logs the changed columns only; an update changing nothing logs nothing');
SELECT is((SELECT count(*)::int FROM salesmgmt.change_log WHERE operation = 'UPDATE' AND table_name = 'salesmgmt.account'),
          2, 'a bulk update logs one row per changed row');
SELECT is((SELECT changed_by FROM salesmgmt.change_log ORDER BY change_id DESC LIMIT 1), current_user,
          'the role is recorded');
SELECT is((SELECT txid FROM salesmgmt.change_log ORDER BY change_id DESC LIMIT 1), txid_current(),
          'the transaction is recorded');
SELECT is((SELECT owner_rep_id FROM salesmgmt.change_log WHERE table_name = 'salesmgmt.account' AND row_id = 5 LIMIT 1),
          2::bigint, 'the owner of the row is recorded');
UPDATE salesmgmt.quota SET amount = 1200 WHERE rep_id = 2;
SELECT is((SELECT new_values FROM salesmgmt.history_of('salesmgmt.quota', 1) WHERE operation = 'UPDATE'),
          '{"amount": 1200.00}'::jsonb, 'quota changes are logged, numbers as numbers');
UPDATE salesmgmt.rep SET team_id = 2 WHERE rep_id = 3;
SELECT is((SELECT old_values || new_values FROM salesmgmt.history_of('salesmgmt.rep', 3) WHERE operation = 'UPDATE'),
          '{"team_id": 2}'::jsonb, 'a rep''s team change is logged');
UPDATE salesmgmt.rep SET team_id = 1 WHERE rep_id = 3;
DELETE FROM salesmgmt.deal WHERE deal_id = 2;
SELECT is((SELECT old_values ->> 'name' FROM salesmgmt.history_of('salesmgmt.deal', 2) WHERE operation = 'DELETE'),
          'D2', 'a deal deletion logs the deleted deal');
UPDATE salesmgmt.deal SET amount = 150 WHERE deal_id = 1;
SELECT is((SELECT count(*)::int FROM salesmgmt.change_log WHERE table_name = 'salesmgmt.deal' AND operation <> 'DELETE'),
          0, 'deal updates are left to the deal history');
INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share) VALUES (1, 3, 0.5), (1, 2, 0.5);
SELECT is((SELECT count(*)::int FROM salesmgmt.history_of('salesmgmt.deal_split', 1)), 2,
          'deal splits are logged under their deal');

-- append-only
SELECT throws_ok('UPDATE salesmgmt.change_log SET row_id = 0', '42501', NULL, 'the change log cannot be updated');
SELECT throws_ok('DELETE FROM salesmgmt.change_log', '42501', NULL, 'the change log cannot be deleted from');
SELECT throws_ok('TRUNCATE salesmgmt.change_log', '42501', NULL, 'the change log cannot be truncated');

-- row_as_of: a row with a past of its own (log rows written by hand)
INSERT INTO salesmgmt.account (name, owner_rep_id) VALUES ('Time Travel', 2);
INSERT INTO salesmgmt.change_log (table_name, row_id, operation, changed_columns, old_values, new_values,
                                  txid, changed_at, changed_by)
OVERRIDING SYSTEM VALUE
SELECT 'salesmgmt.account', a.account_id, op, cols, o, n, 1, at, 'tester'
  FROM salesmgmt.account a,
       (VALUES ('UPDATE', ARRAY['name'], '{"name": "First name"}'::jsonb, '{"name": "Second name"}'::jsonb, now() + interval '1 hour'),
               ('UPDATE', ARRAY['name'], '{"name": "Second name"}'::jsonb, '{"name": "Time Travel"}'::jsonb, now() + interval '2 hours'))
       v (op, cols, o, n, at)
 WHERE a.name = 'Time Travel';
SELECT is(salesmgmt.row_as_of('salesmgmt.account', (SELECT account_id FROM salesmgmt.account WHERE name = 'Time Travel'),
                              now() + interval '90 minutes') ->> 'name', 'Second name', 'row_as_of undoes the later changes');
SELECT is(salesmgmt.row_as_of('salesmgmt.account', (SELECT account_id FROM salesmgmt.account WHERE name = 'Time Travel'),
                              now() + interval '30 minutes') ->> 'name', 'First name', 'row_as_of undoes every later change');
SELECT is(salesmgmt.row_as_of('salesmgmt.account', (SELECT account_id FROM salesmgmt.account WHERE name = 'Time Travel'),
                              now() - interval '1 minute'), NULL, 'a row not yet inserted is null');
SELECT is(salesmgmt.row_as_of('salesmgmt.deal', 2, now() + interval '1 minute') ->> 'name', NULL,
          'a deal deleted before the moment is null');
SELECT is(salesmgmt.row_as_of('salesmgmt.deal', 2, now() - interval '1 minute') ->> 'name', 'D2',
          'a deal deleted after the moment was there (deal inserts are not logged)');
SELECT is(salesmgmt.row_as_of('salesmgmt.account', 999999, now()), NULL, 'an unknown id is null');

-- bad inputs: history_of, row_as_of
SELECT throws_ok($$SELECT * FROM salesmgmt.history_of(NULL, 1)$$, '22004', NULL, 'history_of: null table');
SELECT throws_ok($$SELECT * FROM salesmgmt.history_of('salesmgmt.account', NULL)$$, '22004', NULL, 'history_of: null id');
SELECT throws_ok($$SELECT * FROM salesmgmt.history_of('salesmgmt.deal_stage_history', 1)$$, '22023', NULL,
                 'history_of: a table that is not audited');
SELECT is((SELECT count(*)::int FROM salesmgmt.history_of('salesmgmt.account', -1)), 0, 'history_of: a negative id has no history');
SELECT throws_ok($$SELECT salesmgmt.history_of('salesmgmt.nothing', 1)$$, '42P01', NULL, 'history_of: an unknown table');
SELECT throws_ok($$SELECT salesmgmt.row_as_of(NULL, 1, now())$$, '22004', NULL, 'row_as_of: null table');
SELECT throws_ok($$SELECT salesmgmt.row_as_of('salesmgmt.account', 1, NULL)$$, '22004', NULL, 'row_as_of: null moment');
SELECT throws_ok($$SELECT salesmgmt.row_as_of('salesmgmt.account', 1, 'infinity')$$, '22023', NULL, 'row_as_of: infinite moment');
SELECT throws_ok($$SELECT salesmgmt.row_as_of('salesmgmt.deal_split', 1, now())$$, '0A000', NULL,
                 'row_as_of: a table whose id is not the whole key');
SELECT throws_ok($$SELECT salesmgmt.row_as_of('salesmgmt.payment', 1, now())$$, '22023', NULL, 'row_as_of: a table not audited');

-- _audit_table
SELECT throws_ok($$SELECT salesmgmt._audit_table(NULL)$$, '22004', NULL, '_audit_table: null table');
SELECT throws_ok($$SELECT salesmgmt._audit_table('salesmgmt.account', 'no_such_column')$$, '42703', NULL,
                 '_audit_table: unknown owner column');
SELECT throws_ok($$SELECT salesmgmt._audit_table('salesmgmt.account', NULL, NULL, ARRAY['SELECT'])$$, '22023', NULL,
                 '_audit_table: unknown event');
SELECT throws_ok($$SELECT salesmgmt._audit_table('salesmgmt.deal_split')$$, '22023', NULL,
                 '_audit_table: no one-column key and no id column');
CREATE TABLE salesmgmt.audit_probe (id int PRIMARY KEY, rep_id bigint, v text);
SELECT lives_ok($$SELECT salesmgmt._audit_table('salesmgmt.audit_probe', 'rep_id')$$, 'a later table is audited with one call');
INSERT INTO salesmgmt.audit_probe VALUES (1, 2, 'a');
UPDATE salesmgmt.audit_probe SET v = 'b';
SELECT is((SELECT array_agg(operation ORDER BY change_id) FROM salesmgmt.history_of('salesmgmt.audit_probe', 1)),
          ARRAY['INSERT', 'UPDATE'], 'and its changes are logged');
SELECT throws_ok($$SELECT salesmgmt._audit_table('salesmgmt.audit_probe', 'rep_id', p_unlogged_columns => ARRAY['nope']::name[])$$,
                 '42703', NULL, '_audit_table: unknown unlogged column');
SELECT throws_ok($$SELECT salesmgmt._audit_table('salesmgmt.audit_probe', 'rep_id', p_unlogged_columns => ARRAY['id']::name[])$$,
                 '42703', NULL, '_audit_table: the id column cannot go unlogged');
SELECT throws_ok($$SELECT salesmgmt._audit_table('salesmgmt.audit_probe', 'rep_id', p_unlogged_columns => ARRAY[NULL]::name[])$$,
                 '42703', NULL, '_audit_table: a null unlogged column');
SELECT lives_ok($$SELECT salesmgmt._audit_table('salesmgmt.audit_probe', 'rep_id', p_unlogged_columns => ARRAY['v']::name[])$$,
                'a derived column goes unlogged');
UPDATE salesmgmt.audit_probe SET v = 'c';
UPDATE salesmgmt.audit_probe SET v = 'd', rep_id = 3;
SELECT is((SELECT array_agg(changed_columns::text ORDER BY change_id) FROM salesmgmt.history_of('salesmgmt.audit_probe', 1)),
          ARRAY['{id,rep_id,v}', '{v}', '{rep_id}'],
          'an update of only an unlogged column logs nothing; with others, only they are logged');
DROP TABLE salesmgmt.audit_probe;

-- purge
SELECT throws_ok($$SELECT salesmgmt.purge_change_log(NULL)$$, '22004', NULL, 'purge: null without a retention setting');
SELECT throws_ok($$SELECT salesmgmt.purge_change_log('infinity')$$, '22023', NULL, 'purge: infinite moment');
SELECT throws_ok($$SELECT salesmgmt.purge_change_log(now() + interval '1 day')$$, '22023', NULL, 'purge: future moment');
SELECT throws_ok($$SET salesmgmt.change_log_retention = 'forever'$$, '22023', NULL, 'the retention is an interval');
SELECT is(salesmgmt.purge_change_log(now() - interval '1 day'), 0::bigint, 'purge: nothing older than a day');
SET LOCAL salesmgmt.change_log_retention = '0 seconds';
SELECT is(salesmgmt.purge_change_log(), 0::bigint, 'purge by the retention setting: changes of this transaction stay');

-- ------------------------------------------------------------ duplicates
SELECT results_eq($$SELECT id_a, id_b, reasons FROM salesmgmt.find_duplicates('account') ORDER BY 1, 2$$,
                  $$VALUES (1::bigint, 2::bigint, ARRAY['same name']), (1, 3, ARRAY['same web domain']),
                           (1, 4, ARRAY['same phone'])$$,
                  'find_duplicates: same name after normalising, same domain, same phone');
SELECT is((SELECT count(*)::int FROM salesmgmt.find_duplicates('account', 0.75)), 1, 'a higher minimum score keeps fewer pairs');
SELECT results_eq($$SELECT id_a, id_b, reasons[1] FROM salesmgmt.find_duplicates('contact')$$,
                  $$VALUES (1::bigint, 2::bigint, 'same email')$$, 'contacts: the same address with a +tag and in capitals');
SELECT is(salesmgmt.dedup_name('  ACME Industries, Inc. '), 'acme industries', 'dedup_name drops case, punctuation, legal suffixes');
SELECT is(salesmgmt.dedup_phone('+1 (555) 0100-200'), salesmgmt.dedup_phone('555.0100.200'), 'dedup_phone: the last nine digits');
SELECT is(salesmgmt.dedup_domain('https://user@www.Acme.example:8080/x'), 'acme.example', 'dedup_domain: the host');
SELECT is(salesmgmt.dedup_phone('12'), NULL, 'dedup_phone: too short is null');
SELECT throws_ok($$SELECT * FROM salesmgmt.find_duplicates(NULL)$$, '22004', NULL, 'find_duplicates: null entity');
SELECT throws_ok($$SELECT * FROM salesmgmt.find_duplicates('account', NULL)$$, '22004', NULL, 'find_duplicates: null score');
SELECT throws_ok($$SELECT * FROM salesmgmt.find_duplicates('deal')$$, '22023', NULL, 'find_duplicates: unknown entity');
SELECT throws_ok($$SELECT * FROM salesmgmt.find_duplicates('account', 0)$$, '22023', NULL, 'find_duplicates: zero score');
SELECT throws_ok($$SELECT * FROM salesmgmt.find_duplicates('account', -0.5)$$, '22023', NULL, 'find_duplicates: negative score');
SELECT throws_ok($$SELECT * FROM salesmgmt.find_duplicates('account', 1.5)$$, '22023', NULL, 'find_duplicates: score above 1');

-- the duplicate check
SELECT throws_ok($$SET salesmgmt.duplicate_check = 'sometimes'$$, '22023', NULL, 'the setting refuses an unknown mode');
SELECT throws_ok($$SET salesmgmt.duplicate_check = 'deal=refuse'$$, '22023', NULL, 'the setting refuses an unknown entity');
SELECT throws_ok($$SELECT salesmgmt._duplicate_mode('deal')$$, '22023', NULL, '_duplicate_mode: unknown entity');
SELECT lives_ok($$INSERT INTO salesmgmt.account (name, owner_rep_id) VALUES ('Acme Industries Ltd', 2)$$,
                'off by default: a duplicate is inserted');
SET LOCAL salesmgmt.duplicate_check = 'account=refuse, lead=warn';
SELECT is(salesmgmt._duplicate_mode('contact'), 'off', 'an entity the list does not name is off');
SELECT throws_ok($$INSERT INTO salesmgmt.account (name, owner_rep_id) VALUES ('Acme Industries GmbH', 2)$$,
                 'SM100', NULL, 'refuse: a likely duplicate is refused with SM100');
SELECT throws_like($$UPDATE salesmgmt.account SET extra = '{"website": "http://acme.example"}' WHERE account_id = 5$$,
                   '%likely duplicate of account 1%', 'an update to a duplicate web site is refused, naming the duplicate');
SELECT lives_ok($$INSERT INTO salesmgmt.account (name, owner_rep_id) VALUES ('Hooli', 2)$$, 'refuse: a new name passes');
SET LOCAL salesmgmt.duplicate_check = 'warn';
SELECT lives_ok($$INSERT INTO salesmgmt.account (name, owner_rep_id) VALUES ('Acme Industries AG', 2)$$,
                'warn: a likely duplicate is inserted');
SET LOCAL salesmgmt.duplicate_check = 'off';

-- ------------------------------------------------------------ merges
CREATE ROLE history_tap_mia IN ROLE salesmgmt_manager;
CREATE ROLE history_tap_ada IN ROLE salesmgmt_rep;
CREATE ROLE history_tap_cy IN ROLE salesmgmt_manager;
UPDATE salesmgmt.rep SET db_role = 'history_tap_mia' WHERE rep_id = 1;
UPDATE salesmgmt.rep SET db_role = 'history_tap_ada' WHERE rep_id = 2;
UPDATE salesmgmt.rep SET db_role = 'history_tap_cy' WHERE rep_id = 4;

SET ROLE history_tap_ada;
SELECT throws_ok($$SELECT salesmgmt.merge_accounts(1, ARRAY[2])$$, 'SM101', NULL, 'a rep cannot merge');
SELECT is((SELECT count(*)::int FROM salesmgmt.change_log WHERE owner_rep_id <> 2 AND account_id IS NULL), 0,
          'a rep reads no change of another rep''s rows');
SELECT ok((SELECT count(*) FROM salesmgmt.change_log WHERE owner_rep_id = 2) > 0, 'a rep reads the changes of its own rows');
SELECT is((SELECT count(*)::int FROM salesmgmt.history_of('salesmgmt.rep', 4)), 0, 'history_of shows a rep nothing of others');
RESET ROLE;
SET ROLE history_tap_cy;
SELECT throws_ok($$SELECT salesmgmt.merge_accounts(3, ARRAY[1])$$, 'SM101', NULL,
                 'a manager cannot merge an account of a rep outside its tree');
RESET ROLE;
SET ROLE history_tap_mia;
SELECT is((SELECT count(*)::int FROM salesmgmt.history_of('salesmgmt.rep', 3)), 3, 'a manager reads the history of its reps');
SELECT is(salesmgmt.merge_accounts(1, ARRAY[2]), 1, 'a manager merges accounts of the reps it manages');
RESET ROLE;
SELECT is((SELECT account_id FROM salesmgmt.deal WHERE deal_id = 1), 1::bigint, 'the deal of the merged account is re-pointed');
SELECT is((SELECT count(*)::int FROM salesmgmt.contact WHERE account_id = 1), 2, 'its contacts too');
SELECT is((SELECT count(*)::int FROM salesmgmt.account WHERE account_id = 2), 0, 'the merged account is gone');
SELECT results_eq($$SELECT entity, kept_id, merged_id, merged_row ->> 'name', repointed, merged_by
                      FROM salesmgmt.merge_log$$,
                  $$VALUES ('account'::text, 1::bigint, 2::bigint, 'ACME Industries, Inc.',
                            '{"salesmgmt.deal.account_id": 1, "salesmgmt.contact.account_id": 1}'::jsonb,
                            'history_tap_mia'::name)$$,
                  'merge_log keeps the merged account, what moved and who merged');
SELECT is((SELECT array_agg(operation ORDER BY change_id) FROM salesmgmt.history_of('salesmgmt.account', 2)),
          ARRAY['INSERT', 'DELETE'], 'the merged account''s history stays in the change log');
SELECT throws_ok($$UPDATE salesmgmt.merge_log SET kept_id = 0$$, '55000', NULL, 'merge_log is append-only');
SELECT is(salesmgmt.merge_contacts(1, ARRAY[2]), 1, 'contacts merge');

-- bad inputs: merges
SELECT throws_ok($$SELECT salesmgmt.merge_accounts(NULL, ARRAY[1])$$, '22004', NULL, 'merge: null kept record');
SELECT throws_ok($$SELECT salesmgmt.merge_accounts(1, NULL)$$, '22004', NULL, 'merge: null list');
SELECT throws_ok($$SELECT salesmgmt.merge_accounts(1, ARRAY[NULL::bigint])$$, '22004', NULL, 'merge: null in the list');
SELECT throws_ok($$SELECT salesmgmt.merge_accounts(1, '{}')$$, '22023', NULL, 'merge: empty list');
SELECT throws_ok($$SELECT salesmgmt.merge_accounts(1, ARRAY[1])$$, '22023', NULL, 'merge: into itself');
SELECT throws_ok($$SELECT salesmgmt.merge_accounts(1, ARRAY[-4])$$, 'P0002', NULL, 'merge: unknown record');
SELECT throws_ok($$SELECT salesmgmt.merge_leads(1, ARRAY[2])$$, 'P0002', NULL, 'merge: unknown leads');
SELECT throws_ok($$SELECT salesmgmt._merge('deal', 1, ARRAY[2])$$, '22023', NULL, 'merge: unknown entity');

SELECT * FROM finish();
ROLLBACK;

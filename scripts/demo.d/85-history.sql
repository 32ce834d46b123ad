-- Tour, part 8b: data quality and history.  The field-level audit trail
-- of an account, a duplicate planted once and found, checked and merged.
-- See docs/history.md.
\pset footer off
\set QUIET on
SELECT min(account_id) AS demo_account FROM salesmgmt.account \gset
UPDATE salesmgmt.account SET segment = CASE WHEN segment = 'Enterprise' THEN 'Mid-Market' ELSE 'Enterprise' END
 WHERE account_id = :demo_account;
SELECT NOT EXISTS (SELECT 1 FROM salesmgmt.merge_log) AS need_duplicate \gset
\if :need_duplicate
INSERT INTO salesmgmt.account (name, industry, region, owner_rep_id)
SELECT upper(name) || ', Inc.', industry, region, owner_rep_id FROM salesmgmt.account WHERE account_id = :demo_account;
\endif
\set QUIET off

\echo
\echo '== The audit trail: every change of the tables that pay or measure people, column by column'
SELECT change_id, operation, changed_columns, old_values, new_values, changed_by
  FROM salesmgmt.history_of('salesmgmt.account', :demo_account)
 WHERE operation = 'UPDATE'
 ORDER BY change_id DESC LIMIT 3;

\echo
\echo '== Likely duplicate accounts (normalised names, domains, phones; pg_trgm similarity)'
SELECT d.id_a, a.name AS name_a, d.id_b, b.name AS name_b, round(d.score::numeric, 2) AS score, d.reasons
  FROM salesmgmt.find_duplicates('account', 0.7) d
  JOIN salesmgmt.account a ON a.account_id = d.id_a
  JOIN salesmgmt.account b ON b.account_id = d.id_b
 WHERE d.id_a = :demo_account OR d.reasons @> ARRAY['same name']
 ORDER BY d.score DESC, d.id_a LIMIT 5;

\echo
\echo '== With salesmgmt.duplicate_check = refuse, a third spelling is refused (SM100)'
SET salesmgmt.duplicate_check = 'account=refuse';
SELECT set_config('demo.account', :'demo_account', false) \g /dev/null
DO $$
BEGIN
    INSERT INTO salesmgmt.account (name, owner_rep_id)
    SELECT name || ' Ltd', owner_rep_id FROM salesmgmt.account
     WHERE account_id = current_setting('demo.account')::bigint;
EXCEPTION WHEN SQLSTATE 'SM100' THEN
    RAISE NOTICE 'SM100: %', SQLERRM;
END
$$;
RESET salesmgmt.duplicate_check;

\echo
\echo '== Merging the duplicate into the original: every referencing row follows, the merged row is kept in merge_log'
SELECT salesmgmt.merge_accounts(:demo_account, array_agg(account_id)) AS merged
  FROM salesmgmt.account
 WHERE account_id <> :demo_account
   AND salesmgmt.dedup_name(name) = (SELECT salesmgmt.dedup_name(name) FROM salesmgmt.account WHERE account_id = :demo_account)
HAVING count(*) > 0;
SELECT kept_id, merged_id, merged_row ->> 'name' AS merged_name, repointed, merged_by
  FROM salesmgmt.merge_log ORDER BY merge_id DESC LIMIT 1;

-- pgTAP: row-level security over the other concerns' tables (commission
-- lines, scorecards, reviews, webhooks, forecasts), acting as each role.
-- Each part runs when its concern is built (the install script applies
-- their rules when the tables exist); the plan counts the parts that run.
-- Rows are written by hand as the superuser with triggers off
-- (session_replication_role = replica): the engines that normally write
-- them are tested by their own suites; here only who sees them matters.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SET salesmgmt.reporting_currency = 'USD';  -- the test relies on the default, whatever postgresql.conf says
SELECT to_regclass('salesmgmt.commission_line') IS NOT NULL AS have_commission,
       to_regclass('salesmgmt.scorecard_item') IS NOT NULL
           AND to_regclass('salesmgmt.review') IS NOT NULL AS have_kpi,
       to_regclass('salesmgmt.webhook_endpoint') IS NOT NULL AS have_webhook,
       to_regprocedure('salesmgmt.forecast(date,date,text,timestamptz,character)') IS NOT NULL AS have_forecast
\gset
SELECT plan(2 + CASE WHEN :'have_commission'::boolean THEN 6 ELSE 0 END
              + CASE WHEN :'have_kpi'::boolean THEN 7 ELSE 0 END
              + CASE WHEN :'have_webhook'::boolean THEN 4 ELSE 0 END
              + CASE WHEN :'have_forecast'::boolean THEN 2 ELSE 0 END);

\ir ../sql/security_world.sql

-- every table of the extension has row-level security but configuration,
-- and every function is closed to PUBLIC, whatever concerns are built
SELECT is_empty($$SELECT c.relname FROM pg_class c
                   WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind IN ('r', 'p')
                     AND NOT c.relrowsecurity
                     AND c.relname NOT IN ('currency', 'currency_rate', 'team', 'rep', 'pipeline',
                                           'stage', 'stage_transition')$$,
                'every table but the core configuration has row-level security');
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p
                   WHERE p.pronamespace = 'salesmgmt'::regnamespace
                     AND has_function_privilege('public', p.oid, 'EXECUTE')$$,
                'no function of the extension is executable by PUBLIC');

\if :have_commission
SET session_replication_role = replica;
INSERT INTO salesmgmt.commission_line (period_start, period_end, rep_id, kind, amount, currency)
SELECT '2026-01-01', '2026-03-31', r, 'earned', 100 * r, 'USD' FROM generate_series(1, 8) r;
SET session_replication_role = origin;
SET ROLE sec_r4;
SELECT set_eq('SELECT rep_id FROM salesmgmt.commission_line', ARRAY[4]::bigint[],
              'r4 sees its own commission lines only');
SELECT is_empty('SELECT * FROM salesmgmt.commission_line WHERE rep_id = 5',
                'r4 reading r5''s commission line gets no rows');
SELECT throws_ok($$UPDATE salesmgmt.commission_line SET amount = 1e6 WHERE rep_id = 4$$, '42501', NULL,
                 'r4 cannot change its own commission line');
SELECT throws_ok($$SELECT * FROM salesmgmt.run_commissions('2026-01-01', '2026-03-31')$$, '42501', NULL,
                 'r4 cannot run commissions');
RESET ROLE;
SET ROLE sec_m2;
SELECT set_eq('SELECT rep_id FROM salesmgmt.commission_line', ARRAY[2, 3, 4, 5]::bigint[],
              'm2 sees the commission lines of its tree');
RESET ROLE;
SET ROLE sec_admin;
SELECT is((SELECT count(*)::int FROM salesmgmt.commission_line), 8, 'an admin sees every commission line');
RESET ROLE;
\endif

\if :have_kpi
SET session_replication_role = replica;
INSERT INTO salesmgmt.scorecard (scorecard_id, scheme_id, rep_id, period_start, period_end, score, coverage, rank)
SELECT r, 1, r, '2026-01-01', '2026-03-31', 50 + r, 100, r FROM generate_series(1, 8) r;
INSERT INTO salesmgmt.scorecard_item (scorecard_id, kpi_id, value, score, weight, effective_weight, method, direction, target, cap)
SELECT r, 1, 10, 50, 1, 1, 'linear', 'higher', 20, 100 FROM generate_series(1, 8) r;
INSERT INTO salesmgmt.review (rep_id, reviewer_rep_id, period_start, period_end, discipline)
VALUES (4, 3, '2026-01-01', '2026-03-31', 4), (5, 2, '2026-01-01', '2026-03-31', 2);
SET session_replication_role = origin;
SET ROLE sec_r4;
SELECT set_eq('SELECT rep_id FROM salesmgmt.scorecard', ARRAY[4]::bigint[], 'r4 sees its own scorecard only');
SELECT set_eq('SELECT scorecard_id FROM salesmgmt.scorecard_item', ARRAY[4]::bigint[],
              'r4 sees the items of its own scorecard only');
SELECT set_eq('SELECT rep_id FROM salesmgmt.review', ARRAY[4]::bigint[], 'r4 sees its own review, not r5''s');
SELECT throws_ok('DELETE FROM salesmgmt.scorecard WHERE rep_id = 5', '42501', NULL,
                 'r4 cannot delete r5''s scorecard');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM salesmgmt.scorecard), 8, 'every scorecard is still there');
SET ROLE sec_m3;
SELECT set_eq('SELECT rep_id FROM salesmgmt.review', ARRAY[4]::bigint[], 'm3 sees the review it wrote of r4');
RESET ROLE;
SET ROLE sec_m1;
SELECT set_eq('SELECT rep_id FROM salesmgmt.scorecard', ARRAY[1, 2, 3, 4, 5, 6]::bigint[],
              'm1 sees the scorecards of its 3-level tree');
RESET ROLE;
\endif

\if :have_webhook
SET session_replication_role = replica;
INSERT INTO salesmgmt.webhook_endpoint (url, secret) VALUES ('https://hooks.example.com/in', 'whsec_c2VjcmV0');
SET session_replication_role = origin;
SET ROLE sec_r4;
SELECT throws_ok('SELECT secret FROM salesmgmt.webhook_endpoint', '42501', NULL, 'r4 cannot read webhook secrets');
SELECT throws_ok('SELECT * FROM salesmgmt.webhook_delivery', '42501', NULL, 'r4 cannot read webhook deliveries');
RESET ROLE;
SET ROLE sec_m1;
SELECT throws_ok('SELECT secret FROM salesmgmt.webhook_endpoint', '42501', NULL, 'nor can a manager');
RESET ROLE;
SET ROLE sec_admin;
SELECT is((SELECT secret FROM salesmgmt.webhook_endpoint), 'whsec_c2VjcmV0', 'an admin reads them');
RESET ROLE;
\endif

\if :have_forecast
SET ROLE sec_r4;
SELECT set_eq($$SELECT group_id FROM salesmgmt.forecast('2000-01-01', '2099-12-31', 'rep') WHERE deal_count > 0$$,
              ARRAY[4, 8]::bigint[], 'a rep''s forecast covers its own deals only (r8: its share of deal 42)');
RESET ROLE;
SET ROLE sec_m2;
SELECT set_eq($$SELECT group_id FROM salesmgmt.forecast('2000-01-01', '2099-12-31', 'rep') WHERE deal_count > 0$$,
              ARRAY[2, 3, 4, 5, 8]::bigint[], 'a manager''s forecast covers its tree (and r8''s share of deal 42)');
RESET ROLE;
\endif

SELECT * FROM finish();
ROLLBACK;

-- pgTAP: the scale-out helpers on a server without Citus: distribute()
-- refuses with SM121 (test/citus/run.sh runs it on a Citus cluster), bad
-- input, rights, and webhook_stats readable by a BI login.
BEGIN;
SET LOCAL salesmgmt.reporting_currency = 'USD';
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(10);

SELECT has_function('salesmgmt', 'distribute', ARRAY['integer'], 'distribute(p_shard_count) exists');
SELECT throws_ok('SELECT * FROM salesmgmt.distribute()', 'SM121', 'citus is not installed in this database',
                 'without citus distribute() refuses with SM121');
SELECT throws_ok('SELECT * FROM salesmgmt.distribute(32)', 'SM121', NULL, 'the same with a shard count');
SELECT throws_ok('SELECT * FROM salesmgmt.distribute(NULL)', '22023', NULL, 'a null shard count is refused');
SELECT throws_ok('SELECT * FROM salesmgmt.distribute(0)', '22023', NULL, 'a shard count below 1 is refused');
SELECT throws_ok('SELECT * FROM salesmgmt.distribute(-5)', '22023', NULL, 'a negative shard count is refused');
SELECT throws_ok($$SELECT * FROM salesmgmt.distribute('many')$$, '22P02', NULL, 'a text shard count is refused');
SELECT ok(NOT has_function_privilege('salesmgmt_admin', 'salesmgmt.distribute(integer)', 'EXECUTE')
          AND NOT has_function_privilege('salesmgmt_analyst', 'salesmgmt.distribute(integer)', 'EXECUTE'),
          'only superusers run distribute()');

-- webhook_stats as a BI login (it measured latency from xmin, which column grants cannot cover)
SET LOCAL session_replication_role = replica;
INSERT INTO salesmgmt.webhook_endpoint (url, secret) VALUES ('https://hooks.example.com/in', 'whsec_c2VjcmV0');
SET LOCAL session_replication_role = origin;
SET LOCAL ROLE salesmgmt_analyst;
SELECT lives_ok('SELECT * FROM salesmgmt.webhook_stats', 'a BI login reads webhook_stats');
SELECT is((SELECT count(*)::int FROM salesmgmt.webhook_stats), 1, 'and sees the endpoint');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

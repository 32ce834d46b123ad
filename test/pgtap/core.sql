-- pgTAP: the core data model's structure and rules.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(44);

-- structure the other concerns build on
SELECT has_table('salesmgmt', t, 'table salesmgmt.' || t || ' exists')
  FROM unnest(ARRAY['team','rep','account','contact','activity','pipeline','stage','deal',
                    'deal_split','payment','quota','sales_task','currency','currency_rate']) AS t;
SELECT col_is_pk('salesmgmt', 'deal_split', ARRAY['deal_id', 'rep_id'], 'deal_split is keyed by deal first');
SELECT col_is_pk('salesmgmt', 'payment', ARRAY['deal_id', 'payment_id'], 'payment is keyed by deal first');
SELECT col_type_is('salesmgmt', 'deal', 'amount', 'numeric(18,2)', 'deal amounts are exact numeric');
SELECT col_type_is('salesmgmt', 'deal', 'deal_id', 'bigint', 'deal keys are bigint');
SELECT is((SELECT count(*)::int FROM pg_constraint c
            WHERE c.contype = 'f' AND c.connamespace = 'salesmgmt'::regnamespace
              AND NOT EXISTS (SELECT 1 FROM pg_index i
                               WHERE i.indrelid = c.conrelid
                                 AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] = c.conkey)),
          0, 'every foreign key has an index that leads with its columns');
SELECT is((SELECT count(*)::int FROM pg_extension e, unnest(e.extconfig) AS cfg
            WHERE e.extname = 'salesmgmt'
              AND cfg IN ('salesmgmt.deal'::regclass, 'salesmgmt.account'::regclass,
                          'salesmgmt.payment'::regclass, 'salesmgmt.quota'::regclass)),
          4, 'user tables are registered for pg_dump');
SELECT ok((SELECT bool_and(cfg_seq) FROM (
             SELECT pg_get_serial_sequence('salesmgmt.deal', 'deal_id')::regclass
                    = ANY (e.extconfig) AS cfg_seq FROM pg_extension e WHERE e.extname = 'salesmgmt') s),
          'identity sequences are registered for pg_dump');
SELECT is((SELECT extrelocatable FROM pg_extension WHERE extname = 'salesmgmt'), false, 'not relocatable');

-- a small world
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Root'), (2, 'Mid'), (3, 'Leaf');
UPDATE salesmgmt.team SET parent_team_id = 1 WHERE team_id = 2;
UPDATE salesmgmt.team SET parent_team_id = 2 WHERE team_id = 3;
INSERT INTO salesmgmt.rep (rep_id, name, email, team_id) VALUES (1, 'A', 'a@x.example', 3), (2, 'B', 'b@x.example', 3);
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) VALUES (1, 'Acme', 1);
INSERT INTO salesmgmt.pipeline (pipeline_id, name) VALUES (1, 'P'), (2, 'Q');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome)
VALUES (1, 1, 'Open', 1, 0.3, 'pipeline', 'open'), (2, 1, 'Won', 2, 1, 'closed', 'won'),
       (3, 2, 'Other', 1, 0.5, 'pipeline', 'open');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
VALUES (1, 'D', 1, 1, 1, 1, 100);

-- bad input is refused with the named constraint, and changes nothing
SELECT throws_ok($$INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount) VALUES ('x', 1, 1, 1, 1, -1)$$,
                 '23514', NULL, 'negative amount refused');
SELECT throws_ok($$INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, currency) VALUES ('x', 1, 1, 1, 1, 'XYZ')$$,
                 '23503', NULL, 'unknown currency refused');
SELECT throws_ok($$INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, currency) VALUES ('x', 1, 1, 1, 1, 'usd')$$,
                 '23503', NULL, 'lower-case currency refused');
SELECT throws_ok($$INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, probability) VALUES ('x', 1, 1, 1, 1, 1.5)$$,
                 '23514', NULL, 'probability 1.5 refused');
SELECT throws_ok($$INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id) VALUES ('x', 1, 1, 1, 3)$$,
                 'SM003', NULL, 'a stage of another pipeline is refused (SM003, pipeline trigger)');
SELECT throws_ok($$INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id) VALUES (NULL, 1, 1, 1, 1)$$,
                 '23502', NULL, 'a deal needs a name');
SELECT throws_ok($$INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, forecast_category) VALUES ('x', 1, 1, 1, 1, 'maybe')$$,
                 '23514', NULL, 'unknown forecast category refused');
SELECT throws_ok($$UPDATE salesmgmt.team SET parent_team_id = 3 WHERE team_id = 1$$,
                 '23514', 'team 1 cannot report to team 3: that would make it its own ancestor',
                 'a team cannot be its own ancestor through two levels');
SELECT is((SELECT parent_team_id FROM salesmgmt.team WHERE team_id = 1), NULL, 'the team tree is unchanged');
SELECT throws_ok($$INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) VALUES (1, '2026-01-01', '2026-03-31', -1)$$,
                 '23514', NULL, 'negative quota refused');
SELECT lives_ok($$INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) VALUES (1, '2026-01-01', '2026-03-31', 1000)$$,
                'a quota for a rep');
SELECT throws_ok($$INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) VALUES (1, '2026-01-01', '2026-03-31', 5)$$,
                 '23505', NULL, 'one quota per rep and period');
SELECT throws_ok($$INSERT INTO salesmgmt.contact (account_id, name) VALUES (42, 'Nobody')$$,
                 '23503', NULL, 'contact of an unknown account refused');
SELECT throws_ok($$INSERT INTO salesmgmt.sales_task (rep_id, title, status, completed_at) VALUES (1, 'T', 'open', now())$$,
                 '23514', NULL, 'an open task has no completion time');
SELECT throws_ok($$INSERT INTO salesmgmt.currency_rate VALUES ('EUR', 'USD', '2026-01-01', 0)$$,
                 '23514', NULL, 'a zero exchange rate is refused');

-- split shares: checked at commit, here forced with SET CONSTRAINTS
SAVEPOINT s;
INSERT INTO salesmgmt.deal_split VALUES (1, 1, 0.5), (1, 2, 0.4);
SELECT throws_ok('SET CONSTRAINTS ALL IMMEDIATE', '23514', 'credit shares of deal 1 sum to 0.9000, not 1',
                 'shares summing to 0.9 are refused');
ROLLBACK TO SAVEPOINT s;
INSERT INTO salesmgmt.deal_split VALUES (1, 1, 0.5), (1, 2, 0.5);
SELECT lives_ok('SET CONSTRAINTS ALL IMMEDIATE', 'shares summing to 1 are accepted');
SET CONSTRAINTS ALL DEFERRED;
SELECT throws_ok($$INSERT INTO salesmgmt.deal_split VALUES (1, 1, 0)$$, '23514', NULL, 'a zero share is refused');

-- conversions
INSERT INTO salesmgmt.currency_rate VALUES ('CNY', 'USD', '2026-01-01', 0.14);
SELECT is(salesmgmt.convert_amount(1000, 'CNY', 'USD', '2026-06-30'), 140.0000000000::numeric, 'CNY to USD');
SELECT is(salesmgmt.convert_amount(140, 'USD', 'CNY', '2026-06-30'), 1000::numeric, 'USD to CNY by the inverse rate');
SELECT throws_ok($$SELECT salesmgmt.convert_amount(1, 'CNY', 'USD', '2025-06-30')$$, '22023',
                 'no exchange rate from CNY to USD on 2025-06-30', 'no rate before the first valid day');
SELECT is(salesmgmt.convert_amount(NULL, 'CNY', 'USD', '2026-06-30'), NULL, 'null amount converts to null');

SELECT * FROM finish();
ROLLBACK;

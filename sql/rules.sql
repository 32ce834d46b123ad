-- rules: the one rule language (src/rules.c, docs/rules.md).  Compatible
-- with SPIFF conditions (to_jsonb(row) @> condition), extended with
-- comparisons, "in", nested keys and all/any/not; the jsonb and the tuple
-- evaluation agree; validation refuses what would silently never match.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';

-- rows with the column types rules meet
CREATE TEMP TABLE r (
    id int, name text, amount numeric(18,2), qty bigint, currency char(3),
    won boolean, closed_on date, closed_at timestamptz, ratio float8, extra jsonb);
INSERT INTO r VALUES
    (1, 'Acme', 120000.00, 5, 'USD', true, '2026-03-01', '2026-03-01 10:00+00', 0.5,
     '{"region": "EMEA", "tags": ["a", "b"], "score": 7, "nested": {"x": {"y": 1}}}'),
    (2, 'Beta', 99999.99, 0, 'EUR', false, NULL, NULL, NULL, '{"region": "APAC", "score": 3.5}'),
    (3, 'Gamma', 100000.00, -2, 'USD', NULL, '2025-12-31', '2025-12-31 23:59+00', 1e10, '{}'),
    (4, NULL, 0, NULL, 'GBP', true, '2026-01-15', NULL, -1.5, '{"region": null, "tags": []}');

CREATE TEMP TABLE c (cid int, cond jsonb);
INSERT INTO c VALUES
    -- the SPIFF forms: equality and containment
    (1, '{}'), (2, '{"currency": "USD"}'), (3, '{"qty": 5}'), (4, '{"won": true}'),
    (5, '{"extra": {"region": "EMEA"}}'), (6, '{"extra": {"tags": ["a"]}}'),
    (7, '{"extra": {}}'), (8, '{"name": null}'), (9, '{"extra": {"region": null}}'),
    (10, '{"amount": 100000}'), (11, '{"currency": "USD", "won": true}'),
    (12, '{"extra": {"nested": {"x": {"y": 1}}}}'), (13, '{"extra": {"score": 3.50}}'),
    (14, '{"closed_on": "2026-03-01"}'), (15, '{"closed_at": "2026-03-01T10:00:00+00:00"}'),
    (16, '{"extra": {"tags": []}}'), (17, '{"ratio": 0.5}'),
    -- comparisons
    (20, '{"amount": {">": 100000}}'), (21, '{"amount": {">=": 100000}}'),
    (22, '{"amount": {"<": 100000}}'), (23, '{"amount": {"<=": 100000}}'),
    (24, '{"amount": {"=": 100000}}'), (25, '{"amount": {"<>": 100000}}'),
    (26, '{"amount": {">": 50000, "<=": 100000}}'), (27, '{"qty": {">": 0}}'),
    (28, '{"qty": {"<>": 5}}'), (29, '{"qty": {">=": -2.5}}'), (30, '{"qty": {"<": 0.5}}'),
    (31, '{"currency": {"in": ["USD", "GBP"]}}'), (32, '{"name": {"in": ["Beta", null]}}'),
    (33, '{"closed_on": {">=": "2026-01-01"}}'), (34, '{"closed_at": {"<": "2026-01-01"}}'),
    (35, '{"extra": {"score": {">": 5}}}'), (36, '{"extra": {"region": {"in": ["EMEA", "APAC"]}}}'),
    (37, '{"name": {">": "B"}}'), (38, '{"won": {"<>": true}}'), (39, '{"ratio": {">": 1}}'),
    (40, '{"extra": {"nested": {"x": {"y": {">=": 1}}}}}'), (41, '{"qty": {"in": [0, 5]}}'),
    -- combinations
    (50, '{"any": [{"currency": "EUR"}, {"amount": {">": 110000}}]}'),
    (51, '{"all": [{"currency": "USD"}, {"not": {"won": true}}]}'),
    (52, '{"not": {"extra": {"region": "EMEA"}}}'), (53, '{"any": []}'), (54, '{"all": []}'),
    (55, '{"currency": "USD", "any": [{"qty": {">": 1}}, {"qty": {"<": -1}}]}'),
    (56, '{"not": {"any": [{"currency": "USD"}, {"currency": "EUR"}]}}');

-- the matches of every condition, by the jsonb and by the tuple path
SELECT c.cid, c.cond::text,
       array_agg(r.id ORDER BY r.id) FILTER (WHERE salesmgmt.rule_matches(c.cond, to_jsonb(r))) AS matches
  FROM c CROSS JOIN r GROUP BY c.cid, c.cond::text ORDER BY c.cid;

-- the two paths agree on every pair
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE salesmgmt.rule_matches(c.cond, to_jsonb(r)) IS DISTINCT FROM
                              salesmgmt.rule_matches_row(c.cond, r)) AS disagree
  FROM c CROSS JOIN r;

-- without operators the language is exactly jsonb containment (SPIFFs)
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE salesmgmt.rule_matches(c.cond, to_jsonb(r)) IS DISTINCT FROM
                              (to_jsonb(r) @> c.cond)) AS differ
  FROM c CROSS JOIN r WHERE c.cid < 20;

-- many rows through one compiled condition
SELECT count(*) FROM generate_series(1, 10000) g
 WHERE salesmgmt.rule_matches('{"n": {">": 2500, "<=": 7500}, "not": {"m": 0}}',
                              jsonb_build_object('n', g, 'm', g % 2));

-- validation against a table: valid conditions
SELECT salesmgmt.rule_validate('{}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{"amount": {">": 100000}, "currency": {"in": ["USD", "EUR"]},
    "extra": {"region": "EMEA", "size": {">=": 50}}, "closed_at": null,
    "any": [{"pipeline_id": 2}, {"not": {"expected_close_date": {"<": "2026-01-01"}}}]}', 'salesmgmt.deal');

-- bad conditions: 22023 naming the mistake
SELECT salesmgmt.rule_validate('{"amout": {">": 1}}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{"amount": {"~": 1}}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{"amount": {"between": [1, 2]}}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{"extra": {"size": {"=>": 5}}}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{"amount": {">": "big"}}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{"amount": {">": null}}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{"name": {">": 5}}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{"amount": {">": [1]}}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{"currency": {"in": "USD"}}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{"currency": ["USD"]}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{"amount": {">": 1, "x": 2}}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{">": 1}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{"any": {"amount": 1}}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{"not": [{"amount": 1}]}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{"all": [1]}', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('[]', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('"x"', 'salesmgmt.deal');
SELECT salesmgmt.rule_validate(NULL, 'salesmgmt.deal');
SELECT salesmgmt.rule_validate('{}', NULL);
SELECT salesmgmt.rule_validate('{}', 0::oid::regclass);
-- rule_matches without a table refuses only malformed structure
SELECT salesmgmt.rule_matches('{"a": {">": 1, "b": 2}}', '{"a": 2}');
SELECT salesmgmt.rule_matches('{"a": {"in": 3}}', '{"a": 3}');
SELECT salesmgmt.rule_matches('{"a": 1}', '[1]');
SELECT salesmgmt.rule_matches(NULL, '{}') IS NULL AS null_in_null_out;
-- type mismatches never match: a string is not a number
SELECT salesmgmt.rule_matches('{"a": {">": 1}}', '{"a": "2"}') AS string_vs_number,
       salesmgmt.rule_matches('{"a": {"<>": 1}}', '{"a": null}') AS ne_null,
       salesmgmt.rule_matches('{"a": {"<>": 1}}', '{}') AS ne_missing,
       salesmgmt.rule_matches('{"not": {"a": 1}}', '{}') AS not_missing;

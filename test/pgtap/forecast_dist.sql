-- pgTAP: salesmgmt.forecast_dist, its aggregate and its statistics: merge
-- order does not change the result, the text form and the serialised
-- state round-trip, a parallel plan equals the serial one, forecast_range
-- equals the aggregate over the same deals, and every bad input.
BEGIN;
SET LOCAL salesmgmt.reporting_currency = 'USD';
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(61);

-- structure
SELECT has_type('salesmgmt', 'forecast_dist', 'the type forecast_dist exists');
SELECT has_function('salesmgmt', 'forecast_dist_agg', ARRAY['bigint', 'numeric', 'numeric', 'bigint', 'integer'],
                    'forecast_dist_agg(deal_id, amount, probability, seed, simulations) exists');
SELECT is((SELECT array[a.aggcombinefn::text, a.aggtranstype::regtype::text]
             FROM pg_aggregate a WHERE a.aggfnoid = 'salesmgmt.forecast_dist_agg'::regproc),
          ARRAY['salesmgmt._forecast_dist_combine', 'salesmgmt.forecast_dist'],
          'the aggregate has a combine function and the type itself as its state (which Citus needs to push it down)');
SELECT is((SELECT array[t.typsend::text, t.typreceive::text] FROM pg_type t WHERE t.oid = 'salesmgmt.forecast_dist'::regtype),
          ARRAY['salesmgmt.forecast_dist_send', 'salesmgmt.forecast_dist_recv'], 'the type has a binary form');
SELECT is((SELECT count(*)::int FROM pg_proc p
            WHERE p.pronamespace = 'salesmgmt'::regnamespace AND p.proparallel <> 's'
              AND (p.proname LIKE '%forecast_dist%' OR p.proname IN ('percentile', 'mean', 'stddev', 'histogram', 'simulations', 'deals'))),
          0, 'the aggregate and every function on the type are PARALLEL SAFE');
SELECT is((SELECT count(*)::int FROM pg_proc p
            WHERE p.pronamespace = 'salesmgmt'::regnamespace
              AND (p.proname LIKE '%forecast_dist%' OR p.proname IN ('percentile', 'mean', 'stddev', 'histogram', 'simulations', 'deals'))
              AND obj_description(p.oid, 'pg_proc') IS NULL), 0, 'every function of the type has a comment');
SELECT ok(has_function_privilege('salesmgmt_analyst', 'salesmgmt.forecast_dist_agg(bigint, numeric, numeric, bigint, integer)', 'EXECUTE')
          AND NOT has_function_privilege('public', 'salesmgmt.forecast_dist_agg(bigint, numeric, numeric, bigint, integer)', 'EXECUTE'),
          'BI logins may aggregate, PUBLIC may not');

-- 3,000 deals in three parts, amounts and probabilities of every kind
CREATE TABLE fd_deal AS
SELECT i::bigint AS deal_id, i % 3 AS part,
       round((i * 7919 % 100000) / 3.0, 3) AS amount,     -- some with a third decimal: rounded to cents
       CASE WHEN i % 50 = 0 THEN 0 WHEN i % 45 = 0 THEN 1 ELSE (i * 31 % 9999 + 1) / 10000.0 END AS p
  FROM generate_series(1, 3000) i;

CREATE TEMP TABLE fd AS
SELECT (SELECT salesmgmt.forecast_dist_agg(deal_id, amount, p, 7, 500 ORDER BY deal_id) FROM fd_deal) AS up,
       (SELECT salesmgmt.forecast_dist_agg(deal_id, amount, p, 7, 500 ORDER BY deal_id DESC) FROM fd_deal) AS down,
       (SELECT salesmgmt.forecast_dist_agg(deal_id, amount, p, 7, 500 ORDER BY md5(deal_id::text)) FROM fd_deal) AS shuffled,
       (SELECT salesmgmt.forecast_dist_agg(deal_id, amount, p, 7, 500) FROM fd_deal WHERE part = 0) AS p0,
       (SELECT salesmgmt.forecast_dist_agg(deal_id, amount, p, 7, 500) FROM fd_deal WHERE part = 1) AS p1,
       (SELECT salesmgmt.forecast_dist_agg(deal_id, amount, p, 7, 500) FROM fd_deal WHERE part = 2) AS p2;

-- merge order
SELECT is((SELECT down::text FROM fd), (SELECT up::text FROM fd), 'the order of the rows does not change the result');
SELECT is((SELECT shuffled::text FROM fd), (SELECT up::text FROM fd), 'nor does a shuffled order');
SELECT is((SELECT (p0 OPERATOR(salesmgmt.+) p1 OPERATOR(salesmgmt.+) p2)::text FROM fd), (SELECT up::text FROM fd),
          'three partial states add up to the state of all the deals');
SELECT is((SELECT (p2 OPERATOR(salesmgmt.+) (p0 OPERATOR(salesmgmt.+) p1))::text FROM fd), (SELECT up::text FROM fd),
          'in any order and grouping');
SELECT is((SELECT salesmgmt.forecast_dist_add(p1, p0)::text FROM fd), (SELECT salesmgmt.forecast_dist_add(p0, p1)::text FROM fd),
          'forecast_dist_add is commutative');
SELECT is((SELECT salesmgmt.deals(up) FROM fd), 3000::bigint, 'deals counts every deal');
SELECT is((SELECT salesmgmt.simulations(up) FROM fd), 500, 'simulations as asked');
SELECT isnt((SELECT salesmgmt.forecast_dist_agg(deal_id, amount, p, 8, 500)::text FROM fd_deal), (SELECT up::text FROM fd),
            'another seed draws otherwise');

-- the text form
SELECT is((SELECT up::text::salesmgmt.forecast_dist::text FROM fd), (SELECT up::text FROM fd), 'the text form round-trips');
SELECT ok((SELECT up::text::jsonb ? 'totals' AND jsonb_array_length(up::text::jsonb -> 'totals') = 500 FROM fd),
          'the text form is JSON with one total per simulation');
SELECT is('{"seed": -3, "deals": 2, "totals": [0.05, -1.50, 12]}'::salesmgmt.forecast_dist::text,
          '{"seed": -3, "deals": 2, "totals": [0.05, -1.50, 12.00]}', 'negative totals, whole amounts');
SELECT is(' { "seed":9223372036854775807,"deals" :0 , "totals":[ -92233720368547758.08 ] } '::salesmgmt.forecast_dist::text,
          '{"seed": 9223372036854775807, "deals": 0, "totals": [-92233720368547758.08]}', 'the extremes of int64, spaces anywhere');

-- the binary form round-trips (COPY BINARY out and in again)
CREATE TABLE fd_bin (d salesmgmt.forecast_dist);
DO $$
DECLARE f text := current_setting('data_directory') || '/fd_test.bin';
BEGIN
    EXECUTE format('COPY (SELECT up FROM fd UNION ALL SELECT p1 FROM fd) TO %L (FORMAT binary)', f);
    EXECUTE format('COPY fd_bin FROM %L (FORMAT binary)', f);
END $$;
SELECT is((SELECT array_agg(d::text ORDER BY salesmgmt.deals(d) DESC) FROM fd_bin), (SELECT ARRAY[up::text, p1::text] FROM fd),
          'the binary form round-trips');

-- the statistics against plain SQL over the totals
CREATE TEMP TABLE fd_t AS SELECT (t ->> 0)::numeric AS t FROM fd, jsonb_array_elements(up::text::jsonb -> 'totals') AS e(t);
SELECT is((SELECT salesmgmt.mean(up) FROM fd), (SELECT round(avg(t), 2) FROM fd_t), 'mean is the exact mean');
SELECT ok((SELECT abs(salesmgmt.stddev(up) - (SELECT stddev_samp(t) FROM fd_t)) <= 0.01 FROM fd), 'stddev is the sample standard deviation');
SELECT ok((SELECT bool_and(abs(salesmgmt.percentile(up, q) - (SELECT percentile_cont(q) WITHIN GROUP (ORDER BY t::float8) FROM fd_t)::numeric) <= 0.01)
             FROM fd, unnest(ARRAY[0, 0.1, 0.5, 0.9, 0.999, 1]) q),
          'percentile interpolates like percentile_cont');
SELECT is((SELECT array[salesmgmt.percentile(up, 0), salesmgmt.percentile(up, 1)] FROM fd),
          (SELECT array[min(t), max(t)] FROM fd_t), 'percentile 0 and 1 are the lowest and highest totals');
SELECT is((SELECT array[count(*), sum(h.simulations)]::int[] FROM fd, salesmgmt.histogram(up, 20) h), ARRAY[20, 500],
          'the histogram has the buckets asked for and counts every simulation');
SELECT is((SELECT array[min(h.lower), max(h.upper)] FROM fd, salesmgmt.histogram(up, 20) h),
          (SELECT array[min(t), max(t)] FROM fd_t), 'from the lowest to the highest total');
SELECT ok((SELECT bool_and(h.simulations = (SELECT count(*) FROM fd_t WHERE t >= h.lower AND (t < h.upper OR h.bucket = 20)))
             FROM fd, salesmgmt.histogram(up, 20) h),
          'each bucket holds the totals between its bounds');
SELECT is((SELECT array_agg(row(h.bucket, h.lower, h.upper, h.simulations)::text)
             FROM salesmgmt.histogram('{"seed": 0, "deals": 1, "totals": [5.00, 5.00]}', 10) h),
          ARRAY['(1,5.00,5.00,2)'], 'all totals equal: one bucket');
-- the simulation is right: the mean near the exact sum(a p)
SELECT ok((SELECT abs(salesmgmt.mean(up) - e.m) < 4 * e.sd / sqrt(500)
             FROM fd, (SELECT sum(round(amount, 2) * p) AS m, sqrt(sum(round(amount, 2) ^ 2 * p * (1 - p))) AS sd FROM fd_deal) e),
          'the simulated mean is within 4 standard errors of the exact expected value');
SELECT is((SELECT salesmgmt.forecast_dist_agg(deal_id, amount, 1, 3, 4)::text FROM fd_deal WHERE deal_id <= 2),
          '{"seed": 3, "deals": 2, "totals": [7919.00, 7919.00, 7919.00, 7919.00]}',
          'probability 1: won in every simulation (amounts rounded to cents)');
SELECT is((SELECT salesmgmt.forecast_dist_agg(deal_id, amount, 0, 3, 2)::text FROM fd_deal),
          '{"seed": 3, "deals": 3000, "totals": [0.00, 0.00]}', 'probability 0: never');

-- a parallel plan gives exactly the serial answer (the states of the
-- workers are serialised, sent to the leader, deserialised and combined)
ALTER TABLE fd_deal SET (parallel_workers = 2);
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE l text; r text := '';
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP r := r || l || E'\n'; END LOOP;
    RETURN r;
END $$;
SELECT matches(pg_temp.plan_of('SELECT salesmgmt.forecast_dist_agg(deal_id, amount, p, 7, 500) FROM fd_deal'),
               'Partial Aggregate', 'the aggregate runs as a parallel partial aggregate');
SELECT is((SELECT salesmgmt.forecast_dist_agg(deal_id, amount, p, 7, 500)::text FROM fd_deal), (SELECT up::text FROM fd),
          'the parallel plan equals the serial one');
SELECT is((SELECT string_agg(x::text, ',' ORDER BY part)
             FROM (SELECT part, salesmgmt.forecast_dist_agg(deal_id, amount, p, 7, 500) AS x FROM fd_deal GROUP BY part) g),
          (SELECT concat_ws(',', p0, p1, p2) FROM fd), 'per group too');
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT doesnt_match(pg_temp.plan_of('SELECT salesmgmt.forecast_dist_agg(deal_id, amount, p, 7, 500) FROM fd_deal'),
                    'Partial Aggregate', 'without workers the plan is serial');
RESET max_parallel_workers_per_gather;

-- forecast_range draws the same: its range is closed_won + the aggregate's
INSERT INTO salesmgmt.team (name) VALUES ('Sales');
INSERT INTO salesmgmt.rep (name, email, team_id) VALUES ('Ada', 'ada@example.com', 1);
INSERT INTO salesmgmt.account (name, owner_rep_id) VALUES ('Acme', 1);
SELECT salesmgmt.create_pipeline('New', '[{"name": "Qualify", "probability": 0.2}, {"name": "Propose", "probability": 0.55},
                                          {"name": "Won", "outcome": "won"}, {"name": "Lost", "outcome": "lost"}]');
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount, expected_close_date, probability)
SELECT 'D' || i, 1, 1, 1, 1 + i % 2, 1000 + i * 37.25, '2025-02-01'::date + i % 40, CASE WHEN i % 7 = 0 THEN 0.9 END
  FROM generate_series(1, 60) i;
UPDATE salesmgmt.deal SET stage_id = 3 WHERE deal_id IN (5, 9);
CREATE TEMP TABLE fd_range AS SELECT * FROM salesmgmt.forecast_range('2025-02-01', '2025-03-31', NULL, 1000, 11);
CREATE TEMP TABLE fd_open AS
SELECT salesmgmt.forecast_dist_agg(d.deal_id, d.amount, coalesce(d.probability, s.probability), 11, 1000) AS x
  FROM salesmgmt.deal d JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
 WHERE s.outcome = 'open' AND d.expected_close_date BETWEEN '2025-02-01' AND '2025-03-31';
SELECT is((SELECT array[r.p10, r.p50, r.p90, r.min, r.max, r.mean, r.stddev] FROM fd_range r),
          (SELECT array[r.closed_won + salesmgmt.percentile(x, 0.1), r.closed_won + salesmgmt.percentile(x, 0.5),
                        r.closed_won + salesmgmt.percentile(x, 0.9), r.closed_won + salesmgmt.percentile(x, 0),
                        r.closed_won + salesmgmt.percentile(x, 1), r.closed_won + salesmgmt.mean(x), salesmgmt.stddev(x)]
             FROM fd_open, fd_range r),
          'forecast_range is closed_won plus the distribution forecast_dist_agg builds from the same deals and seed');
SELECT is((SELECT open_deals FROM fd_range), (SELECT salesmgmt.deals(x) FROM fd_open), 'over the same open deals');

-- 58 open deals x 200,000 simulations are above the ten million draws from
-- which forecast_range simulates with parallel workers: the same to the cent
SET LOCAL max_parallel_workers_per_gather = 2;
CREATE TEMP TABLE fd_range_parallel AS SELECT * FROM salesmgmt.forecast_range('2025-02-01', '2025-03-31', NULL, 200000, 11);
SET LOCAL max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE fd_range_serial AS SELECT * FROM salesmgmt.forecast_range('2025-02-01', '2025-03-31', NULL, 200000, 11);
RESET max_parallel_workers_per_gather;
SELECT is((SELECT r::text FROM fd_range_parallel r), (SELECT r::text FROM fd_range_serial r),
          'forecast_range simulated by parallel workers equals one process, every column');
SELECT is((SELECT array[r.p10, r.p50, r.p90, r.mean] FROM fd_range_parallel r),
          (SELECT array[r.closed_won + salesmgmt.percentile(x, 0.1), r.closed_won + salesmgmt.percentile(x, 0.5),
                        r.closed_won + salesmgmt.percentile(x, 0.9), r.closed_won + salesmgmt.mean(x)]
             FROM (SELECT salesmgmt.forecast_dist_agg(d.deal_id, d.amount, coalesce(d.probability, s.probability), 11, 200000) AS x
                     FROM salesmgmt.deal d JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
                    WHERE s.outcome = 'open' AND d.expected_close_date BETWEEN '2025-02-01' AND '2025-03-31') a,
                  fd_range_parallel r),
          'and equals closed_won plus forecast_dist_agg of the same deals');

-- bad input
SELECT throws_ok($$SELECT salesmgmt.forecast_dist_agg(NULL, 1, 0.5, 1, 10)$$, '22004',
                 'deal id, seed and number of simulations must not be null', 'null deal id: 22004');
SELECT throws_ok($$SELECT salesmgmt.forecast_dist_agg(1, 1, 0.5, NULL, 10)$$, '22004', NULL, 'null seed: 22004');
SELECT throws_ok($$SELECT salesmgmt.forecast_dist_agg(1, 1, 0.5, 1, NULL)$$, '22004', NULL, 'null simulations: 22004');
SELECT throws_ok($$SELECT salesmgmt.forecast_dist_agg(1, 1, 0.5, 1, 0)$$, '22023',
                 'number of simulations must be between 1 and 10000000, not 0', 'no simulations: 22023');
SELECT throws_ok($$SELECT salesmgmt.forecast_dist_agg(1, 1, 0.5, 1, 10000001)$$, '22023', NULL, 'too many simulations: 22023');
SELECT throws_ok($$SELECT salesmgmt.forecast_dist_agg(1, 1, 1.5, 1, 10)$$, '22023',
                 'probability must be between 0 and 1, not 1.5', 'probability above 1: 22023');
SELECT throws_ok($$SELECT salesmgmt.forecast_dist_agg(1, 1, -0.01, 1, 10)$$, '22023', NULL, 'negative probability: 22023');
SELECT throws_ok($$SELECT salesmgmt.forecast_dist_agg(1, 'NaN', 0.5, 1, 10)$$, '22023', NULL, 'NaN amount: 22023');
SELECT throws_ok($$SELECT salesmgmt.forecast_dist_agg(i, 1, 0.5, i, 10) FROM generate_series(1, 2) i$$, 'SM120', NULL,
                 'a seed that changes between rows: SM120');
SELECT is((SELECT salesmgmt.forecast_dist_agg(i, NULL, 0.5, 1, 2)::text FROM generate_series(1, 2) i),
          '{"seed": 1, "deals": 0, "totals": [0.00, 0.00]}', 'rows with a null amount are skipped');
SELECT ok((SELECT salesmgmt.forecast_dist_agg(i, 1, 0.5, 1, 2) IS NULL FROM generate_series(1, 0) i), 'no rows: null');
SELECT throws_ok($$SELECT '{"seed": 1, "deals": 1, "totals": [1]}'::salesmgmt.forecast_dist OPERATOR(salesmgmt.+) '{"seed": 2, "deals": 1, "totals": [1]}'$$,
                 'SM120', 'forecast distributions of different seeds or simulation counts do not add up', 'adding other seeds: SM120');
SELECT throws_ok($$SELECT '{"seed": 1, "deals": 1, "totals": [1]}'::salesmgmt.forecast_dist OPERATOR(salesmgmt.+) '{"seed": 1, "deals": 1, "totals": [1, 2]}'$$,
                 'SM120', NULL, 'adding other simulation counts: SM120');
SELECT throws_ok($$SELECT '{"seed": 1, "deals": 1, "totals": [92233720368547758.07]}'::salesmgmt.forecast_dist OPERATOR(salesmgmt.+) '{"seed": 1, "deals": 1, "totals": [0.01]}'$$,
                 '22003', 'forecast distribution total out of range', 'an overflowing sum: 22003, never a wrapped number');
SELECT throws_ok($$SELECT salesmgmt.forecast_dist_agg(i, 92233720368547758, 1, 1, 2) FROM generate_series(1, 2) i$$,
                 '22003', NULL, 'an overflowing aggregate: 22003');
CREATE FUNCTION pg_temp.fd_valid(s text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM s::salesmgmt.forecast_dist;
    RETURN true;
EXCEPTION WHEN invalid_text_representation THEN
    RETURN false;
END $$;
SELECT is((SELECT count(*)::int FROM unnest(ARRAY['', '{}', '{"seed": 1}', '{"seed": 1, "deals": 1, "totals": []}',
                                                 '{"seed": 1, "deals": -1, "totals": [1]}', '{"seed": 1, "deals": 1, "totals": [1.234]}',
                                                 '{"seed": 1, "deals": 1, "totals": [1.]}', '{"seed": 1, "deals": 1, "totals": [1] } x',
                                                 '{"seed": 99999999999999999999, "deals": 1, "totals": [1]}',
                                                 '{"seed": 1, "deals": 1, "totals": [92233720368547758.08]}',
                                                 '{"deals": 1, "seed": 1, "totals": [1]}']) s
            WHERE NOT pg_temp.fd_valid(s)), 11, 'malformed text forms are refused');
SELECT throws_ok($$SELECT '{"seed": 1, "deals": 1, "totals": [1.234]}'::salesmgmt.forecast_dist$$, '22P02',
                 'invalid input syntax for type forecast_dist: "{"seed": 1, "deals": 1, "totals": [1.234]}"', 'bad text: 22P02');
SELECT throws_ok($$SELECT salesmgmt.percentile('{"seed": 1, "deals": 1, "totals": [1]}', 1.5)$$, '22023',
                 'percentile must be between 0 and 1, not 1.5', 'percentile above 1: 22023');
SELECT throws_ok($$SELECT salesmgmt.percentile('{"seed": 1, "deals": 1, "totals": [1]}', 'NaN')$$, '22023', NULL, 'NaN percentile: 22023');
SELECT throws_ok($$SELECT * FROM salesmgmt.histogram('{"seed": 1, "deals": 1, "totals": [1]}', 0)$$, '22023',
                 'number of buckets must be between 1 and 10000, not 0', 'no buckets: 22023');
SELECT ok(salesmgmt.percentile(NULL, 0.5) IS NULL, 'a null distribution gives null');
SELECT throws_ok($$SELECT salesmgmt.forecast_dist_agg(1, 'x'::text, 0.5, 1, 10)$$, '42883', NULL, 'a text amount: no such aggregate');

SELECT * FROM finish();
ROLLBACK;

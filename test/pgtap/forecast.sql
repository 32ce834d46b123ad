-- pgTAP: the forecast's interface, its invariants over a random data set
-- (rollups add up, every grouping sums to the total, the C figures equal
-- plain SQL sums), the Monte Carlo statistics against the exact mean and
-- variance, and the errors applications catch.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(54);
SET salesmgmt.reporting_currency = 'USD';

-- ---------------------------------------------------------------- interface
SELECT has_function('salesmgmt', 'forecast', ARRAY['date', 'date', 'text', 'timestamp with time zone', 'character'],
                    'forecast(p_from, p_to, p_group, p_as_of, p_currency) exists');
SELECT has_function('salesmgmt', 'forecast_range', ARRAY['date', 'date', 'bigint', 'integer', 'bigint'],
                    'forecast_range(p_from, p_to, p_team_id, p_simulations, p_seed) exists');
SELECT has_function('salesmgmt', 'win_rates', ARRAY['bigint', 'date', 'timestamp with time zone'],
                    'win_rates(p_pipeline_id, p_since, p_as_of) exists');
SELECT has_function('salesmgmt', 'snapshot_forecast', ARRAY['date', 'date', 'text'],
                    'snapshot_forecast(p_from, p_to, p_group) exists');
SELECT function_returns('salesmgmt', 'snapshot_forecast', ARRAY['date', 'date', 'text'], 'bigint',
                        'snapshot_forecast returns the snapshot id');
SELECT volatility_is('salesmgmt', 'forecast', ARRAY['date', 'date', 'text', 'timestamp with time zone', 'character'],
                     'stable', 'forecast is stable: one snapshot for all it reads');
SELECT is((SELECT array_agg(a.attname::text ORDER BY a.attnum)
             FROM pg_proc p, unnest(p.proargnames, p.proargmodes) WITH ORDINALITY AS a(attname, mode, attnum)
            WHERE p.oid = 'salesmgmt.forecast(date, date, text, timestamptz, char)'::regprocedure
              AND a.mode = 't'),
          ARRAY['group_id', 'group_name', 'closed_won', 'commit', 'best_case', 'pipeline', 'omitted',
                'weighted', 'commit_forecast', 'best_case_forecast', 'quota', 'attainment', 'gap',
                'deal_count', 'period_start', 'period_end', 'adjusted_commit', 'adjusted_best_case',
                'adjusted_pipeline', 'adjusted_commit_forecast', 'adjusted_best_case_forecast',
                'adjusted_gap', 'currency'],
          'forecast returns the documented columns in order');
SELECT has_table('salesmgmt', 'forecast_adjustment', 'table forecast_adjustment exists');
SELECT has_table('salesmgmt', 'forecast_snapshot', 'table forecast_snapshot exists');
SELECT has_view('salesmgmt', 'forecast_accuracy', 'view forecast_accuracy exists');
SELECT col_is_pk('salesmgmt', 'forecast_snapshot', ARRAY['snapshot_id', 'line_no'], 'snapshot rows are keyed by snapshot');
SELECT col_type_is('salesmgmt', 'forecast_adjustment', 'amount', 'numeric(18,2)', 'adjustments are exact money');
SELECT trigger_is('salesmgmt', 'forecast_adjustment', 'forecast_adjustment_append_only',
                  'salesmgmt', '_append_only', 'adjustments are append-only');
SELECT trigger_is('salesmgmt', 'forecast_snapshot', 'forecast_snapshot_append_only',
                  'salesmgmt', '_append_only', 'snapshots are append-only');
SELECT ok((SELECT 'salesmgmt.forecast_snapshot'::regclass = ANY (e.extconfig)
              AND 'salesmgmt.forecast_adjustment'::regclass = ANY (e.extconfig)
              AND 'salesmgmt.forecast_snapshot_id_seq'::regclass = ANY (e.extconfig)
             FROM pg_extension e WHERE e.extname = 'salesmgmt'),
          'forecast tables and the snapshot sequence are dumped with their data');

-- ------------------------------------------------- a random organisation
SELECT setseed(0.42);
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES
    (1, 'Org', NULL), (2, 'North', 1), (3, 'South', 1), (4, 'North A', 2), (5, 'North B', 2), (6, 'South A', 3);
INSERT INTO salesmgmt.rep (rep_id, name, team_id)
SELECT r, 'Rep ' || r, CASE WHEN r <= 18 THEN (ARRAY[1, 4, 5, 6])[1 + r % 4] END FROM generate_series(1, 20) AS r;
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Customer');
INSERT INTO salesmgmt.pipeline (pipeline_id, name) VALUES (1, 'P1'), (2, 'P2');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (1, 1, 'a', 1, 0.15, 'pipeline', 'open'), (2, 1, 'b', 2, 0.45, 'best_case', 'open'),
    (3, 1, 'c', 3, 0.85, 'commit', 'open'), (4, 1, 'won', 4, 1, 'closed', 'won'),
    (5, 1, 'lost', 5, 0, 'omitted', 'lost'),
    (6, 2, 'x', 1, 0.6, 'best_case', 'open'), (7, 2, 'won', 2, 1, 'closed', 'won'),
    (8, 2, 'lost', 3, 0, 'omitted', 'lost');
INSERT INTO salesmgmt.currency_rate VALUES ('EUR', 'USD', '2023-01-01', 1.0832), ('EUR', 'USD', '2024-02-01', 1.0917);
-- 600 deals over 2024, a fifth in EUR, some with overrides; closed deals
-- closed 60 days before their expected close date
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
                            expected_close_date, probability, forecast_category, stage_entered_at, closed_at)
SELECT d, 'deal ' || d, 1, 1 + (random() * 19)::int, p, st,
       round((100 + random() * 50000)::numeric, 2),
       CASE WHEN random() < 0.2 THEN 'EUR' ELSE 'USD' END,
       day,
       CASE WHEN random() < 0.1 AND st IN (1, 2, 3, 6) THEN round(random()::numeric, 4) END,
       CASE WHEN random() < 0.05 AND st IN (1, 2, 3, 6) THEN 'commit' END,
       (day - 60)::timestamptz,
       CASE WHEN st IN (4, 5, 7, 8) THEN (day - 60)::timestamptz END
  FROM generate_series(1, 600) AS d,
       LATERAL (SELECT CASE WHEN random() < 0.8 THEN 1 ELSE 2 END AS p, d AS dd) x,
       LATERAL (SELECT CASE WHEN x.p = 1 THEN (ARRAY[1, 2, 3, 4, 5])[1 + floor(random() * 5)::int]
                            ELSE (ARRAY[6, 7, 8])[1 + floor(random() * 3)::int] END AS st,
                       date '2024-01-01' + floor(random() * 366)::int AS day, x.dd AS ddd) y;
INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share)
SELECT d.deal_id, s.rep_id, s.share
  FROM salesmgmt.deal d,
       LATERAL (VALUES (d.owner_rep_id, 0.6), (1 + (d.owner_rep_id % 20), 0.4)) s(rep_id, share)
 WHERE d.deal_id % 7 = 0;
SET CONSTRAINTS ALL IMMEDIATE;
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount, currency)
SELECT r, q, (q + interval '3 months - 1 day')::date, 100000, CASE WHEN r % 4 = 0 THEN 'EUR' ELSE 'USD' END
  FROM generate_series(1, 20) AS r, generate_series(date '2024-01-01', '2024-10-01', interval '3 months') AS q;
INSERT INTO salesmgmt.quota (team_id, period_start, period_end, amount, currency)
VALUES (4, '2024-01-01', '2024-12-31', 2000000, 'USD');

-- the period's deals in plain SQL: period date, converted amount, effective
-- category and probability
CREATE TEMP VIEW fc_deals AS
SELECT d.deal_id, s.outcome,
       CASE WHEN s.outcome = 'won' THEN d.closed_at::date ELSE d.expected_close_date END AS day,
       d.amount * CASE WHEN d.currency = 'USD' THEN 1
                       ELSE (SELECT r.rate FROM salesmgmt.currency_rate r
                              WHERE r.currency = d.currency AND r.quote_currency = 'USD'
                                AND r.valid_from <= CASE WHEN s.outcome = 'won' THEN d.closed_at::date ELSE d.expected_close_date END
                              ORDER BY r.valid_from DESC LIMIT 1) END AS amount,
       CASE WHEN coalesce(d.forecast_category, s.forecast_category) = 'closed' THEN 'commit'
            ELSE coalesce(d.forecast_category, s.forecast_category) END AS category,
       coalesce(d.probability, s.probability) AS p
  FROM salesmgmt.deal d JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
 WHERE s.outcome <> 'lost';

CREATE TEMP TABLE fc_total AS SELECT * FROM salesmgmt.forecast('2024-04-01', '2024-09-30', 'total');
CREATE TEMP TABLE fc_team AS SELECT * FROM salesmgmt.forecast('2024-04-01', '2024-09-30', 'team');
CREATE TEMP TABLE fc_rep AS SELECT * FROM salesmgmt.forecast('2024-04-01', '2024-09-30', 'rep');
CREATE TEMP TABLE fc_pipe AS SELECT * FROM salesmgmt.forecast('2024-04-01', '2024-09-30', 'pipeline');
CREATE TEMP TABLE fc_month AS SELECT * FROM salesmgmt.forecast('2024-04-01', '2024-09-30', 'month');

-- ----------------------------------------------- the C figures equal SQL sums
SELECT is((SELECT closed_won FROM fc_total),
          (SELECT round(coalesce(sum(amount), 0), 2) FROM fc_deals
            WHERE outcome = 'won' AND day BETWEEN '2024-04-01' AND '2024-09-30'),
          'closed_won is the converted sum of the won deals of the period');
SELECT is((SELECT array[commit, best_case, pipeline, omitted] FROM fc_total),
          (SELECT array[round(coalesce(sum(amount) FILTER (WHERE category = 'commit'), 0), 2),
                        round(coalesce(sum(amount) FILTER (WHERE category = 'best_case'), 0), 2),
                        round(coalesce(sum(amount) FILTER (WHERE category = 'pipeline'), 0), 2),
                        round(coalesce(sum(amount) FILTER (WHERE category = 'omitted'), 0), 2)]
             FROM fc_deals WHERE outcome = 'open' AND day BETWEEN '2024-04-01' AND '2024-09-30'),
          'the category columns are the converted sums of the open deals by effective category');
SELECT is((SELECT weighted FROM fc_total),
          (SELECT round(sum(amount * p), 2) FROM fc_deals
            WHERE outcome = 'open' AND day BETWEEN '2024-04-01' AND '2024-09-30'),
          'weighted is the sum of amount x effective probability');
SELECT is((SELECT deal_count FROM fc_total),
          (SELECT count(*) FROM fc_deals WHERE day BETWEEN '2024-04-01' AND '2024-09-30'),
          'deal_count counts the won and open deals of the period');
SELECT is((SELECT array[commit_forecast, best_case_forecast] FROM fc_total),
          (SELECT array[closed_won + commit, closed_won + commit + best_case] FROM fc_total),
          'commit_forecast and best_case_forecast add up the displayed columns');
SELECT is((SELECT quota FROM fc_total),
          (SELECT round(sum(q.amount * CASE WHEN q.currency = 'USD' THEN 1 ELSE 1.0917 END), 2)
             FROM salesmgmt.quota q WHERE q.rep_id IS NOT NULL
              AND q.period_start >= '2024-04-01' AND q.period_end <= '2024-09-30'),
          'the total quota sums the rep quotas of the period (the team quota spans the year)');

-- ------------------------------------------------------ rollups add up
SELECT ok((SELECT abs(t.closed_won - r.closed_won) <= 0.20 AND abs(t.commit - r.commit) <= 0.20
                  AND abs(t.weighted - r.weighted) <= 0.20
             FROM fc_total t,
                  (SELECT sum(closed_won) AS closed_won, sum(commit) AS commit, sum(weighted) AS weighted
                     FROM fc_rep) r),
          'the reps add up to the total (within a cent per rep)');
SELECT ok((SELECT bool_and(abs(a - b) <= 0.02)
             FROM (SELECT unnest(array[r.closed_won + n.closed_won, r.commit + n.commit, r.weighted + n.weighted]) AS a,
                          unnest(array[t.closed_won, t.commit, t.weighted]) AS b
                     FROM fc_team r, fc_team n, fc_total t
                    WHERE r.group_id = 1 AND n.group_id IS NULL) x),
          'the root team and the reps without a team make the total');
SELECT ok((SELECT bool_and(abs(p.closed_won - (c1.closed_won + c2.closed_won)) <= 0.02
                       AND abs(p.weighted - (c1.weighted + c2.weighted)) <= 0.02)
             FROM fc_team p, fc_team c1, fc_team c2
            WHERE p.group_id = 2 AND c1.group_id = 4 AND c2.group_id = 5),
          'North (no reps of its own) is North A + North B');
SELECT is((SELECT deal_count FROM fc_team WHERE group_id = 1) + (SELECT deal_count FROM fc_team WHERE group_id IS NULL)
          - (SELECT count(*) FROM fc_deals d WHERE d.day BETWEEN '2024-04-01' AND '2024-09-30'
                AND EXISTS (SELECT 1 FROM salesmgmt.deal_split s JOIN salesmgmt.rep r ON r.rep_id = s.rep_id
                             WHERE s.deal_id = d.deal_id AND r.team_id IS NULL)
                AND EXISTS (SELECT 1 FROM salesmgmt.deal_split s JOIN salesmgmt.rep r ON r.rep_id = s.rep_id
                             WHERE s.deal_id = d.deal_id AND r.team_id IS NOT NULL)),
          (SELECT deal_count FROM fc_total),
          'a split deal counts once per team, however many of its reps are in it');
SELECT ok((SELECT abs(sum(p.closed_won) - t.closed_won) <= 0.02 AND abs(sum(p.weighted) - t.weighted) <= 0.02
                  AND sum(p.deal_count) = t.deal_count
             FROM fc_pipe p, fc_total t GROUP BY t.closed_won, t.weighted, t.deal_count),
          'the pipelines add up to the total');
SELECT ok((SELECT count(*) = 6 AND abs(sum(m.closed_won) - t.closed_won) <= 0.06
                  AND abs(sum(m.weighted) - t.weighted) <= 0.06 AND sum(m.deal_count) = t.deal_count
                  AND sum(m.quota) IS NULL
             FROM fc_month m, fc_total t GROUP BY t.closed_won, t.weighted, t.deal_count),
          'the six months add up to the total; quarterly quotas lie in no month');
SELECT is((SELECT quota FROM salesmgmt.forecast('2024-01-01', '2024-12-31', 'team') WHERE group_id = 4),
          2000000.00, 'a team with its own quota row uses it, not its reps''');
SELECT is((SELECT quota FROM salesmgmt.forecast('2024-01-01', '2024-12-31', 'team') WHERE group_id = 2),
          (SELECT 2000000.00 + quota FROM salesmgmt.forecast('2024-01-01', '2024-12-31', 'team') WHERE group_id = 5),
          'a team without quota rows sums its sub-teams''');
SELECT is((SELECT count(*)::int FROM fc_rep WHERE quota IS NOT NULL), 20, 'every rep with a quota has a row');

-- ---------------------------------------------------- Monte Carlo vs exact
CREATE TEMP TABLE fc_range AS
SELECT * FROM salesmgmt.forecast_range('2024-04-01', '2024-09-30', NULL, 20000, 7);
CREATE TEMP TABLE fc_exact AS
SELECT (SELECT sum(amount) FROM fc_deals WHERE outcome = 'won' AND day BETWEEN '2024-04-01' AND '2024-09-30')
       + sum(amount * p) AS mean,
       sqrt(sum(amount ^ 2 * p * (1 - p))) AS sd,
       count(*) AS n
  FROM fc_deals WHERE outcome = 'open' AND day BETWEEN '2024-04-01' AND '2024-09-30';
SELECT is((SELECT expected FROM fc_range), (SELECT round(mean, 2) FROM fc_exact),
          'expected is the exact closed_won + sum(a * p)');
SELECT ok((SELECT abs(r.expected_stddev - e.sd) < 0.01 * e.sd FROM fc_range r, fc_exact e),
          'expected_stddev is sqrt(sum(a^2 p (1 - p)))');
SELECT ok((SELECT abs(r.mean - e.mean) < 4 * e.sd / sqrt(20000) FROM fc_range r, fc_exact e),
          'the simulated mean is within 4 standard errors of the exact mean');
SELECT ok((SELECT abs(r.stddev ^ 2 / e.sd ^ 2 - 1) < 0.05 FROM fc_range r, fc_exact e),
          'the simulated variance is within 5% of the exact variance');
SELECT ok((SELECT abs(r.p50 - e.mean) < 0.1 * e.sd AND r.p10 < e.mean - 0.9 * e.sd AND r.p10 > e.mean - 1.7 * e.sd
                  AND r.p90 > e.mean + 0.9 * e.sd AND r.p90 < e.mean + 1.7 * e.sd
             FROM fc_range r, fc_exact e),
          'P10, P50 and P90 sit where a sum of many independent deals puts them (about -1.28, 0, +1.28 sd)');
SELECT is((SELECT open_deals FROM fc_range), (SELECT n FROM fc_exact), 'every open deal of the period is simulated');
SELECT is((SELECT row(mean, stddev, p10, p50, p90, min, max)::text FROM salesmgmt.forecast_range('2024-04-01', '2024-09-30', NULL, 20000, 7)),
          (SELECT row(mean, stddev, p10, p50, p90, min, max)::text FROM fc_range),
          'the same seed gives the same answer');
SELECT ok((SELECT abs(expected - (t.closed_won + t.weighted)) <= 0.01
             FROM salesmgmt.forecast_range('2024-04-01', '2024-09-30', 2), fc_team t
            WHERE t.group_id = 2),
          'a team''s expected value is its closed_won + weighted of the forecast');
-- every open deal certain: no spread at all
UPDATE salesmgmt.deal SET probability = 1 WHERE stage_id IN (1, 2, 3, 6);
SELECT ok((SELECT stddev = 0 AND min = max AND abs(mean - expected) <= 0.005 * open_deals
             FROM salesmgmt.forecast_range('2024-04-01', '2024-09-30', NULL, 100)),
          'with every probability 1 all simulations give the expected value (to the cent per deal)');
UPDATE salesmgmt.deal SET probability = 0 WHERE stage_id IN (1, 2, 3, 6);
SELECT ok((SELECT stddev = 0 AND mean = closed_won FROM salesmgmt.forecast_range('2024-04-01', '2024-09-30', NULL, 100)),
          'with every probability 0 the range is the closed revenue');

-- amounts and probabilities at the edges of their types are read exactly
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
                            expected_close_date, probability)
SELECT 1000 + i, 'edge ' || i, 1, 1, 1, 3, a, 'USD', '2030-01-15', p
  FROM unnest(ARRAY[9999999999999999.99, 0.01, 0, 1234.5, 10000, 0.10, 100000000, 12345678.9, 99.99, 1],
              ARRAY[NULL, 0.0001, 1, 0.5, NULL, 0.9999, 0.1, 0, 0.0010, 0.12]::numeric[])
       WITH ORDINALITY AS e(a, p, i);
SELECT is((SELECT array[commit, weighted, deal_count] FROM salesmgmt.forecast('2030-01-01', '2030-01-31', 'total')),
          (SELECT array[sum(d.amount), round(sum(d.amount * coalesce(d.probability, 0.85)), 2), count(*)]
             FROM salesmgmt.deal d WHERE d.deal_id > 1000),
          'amounts up to 9999999999999999.99 and probabilities down to 0.0001 are summed exactly');

-- ------------------------------------------------- errors applications catch
SELECT throws_ok($$SELECT * FROM salesmgmt.forecast('2024-02-01', '2024-01-01')$$, '22023',
                 'forecast period ends before it starts', 'p_to before p_from: 22023');
SELECT throws_ok($$SELECT * FROM salesmgmt.forecast('2024-01-01', '2024-02-01', 'week')$$, '22023',
                 'unknown forecast grouping "week"', 'unknown grouping: 22023');
SELECT throws_ok($$SELECT * FROM salesmgmt.forecast(NULL, '2024-02-01')$$, '22004',
                 'forecast period must not be null', 'null period: 22004');
SELECT throws_ok($$SELECT * FROM salesmgmt.forecast_range('2024-01-01', '2024-02-01', NULL, -1)$$, '22023',
                 'number of simulations must be between 1 and 10000000, not -1', 'negative simulations: 22023');
SELECT throws_ok($$SELECT * FROM salesmgmt.forecast_range('2024-01-01', '2024-02-01', 12345)$$, '42704',
                 'team 12345 does not exist', 'unknown team: 42704');
SELECT throws_ok($$SELECT * FROM salesmgmt.win_rates(12345)$$, '42704',
                 'pipeline 12345 does not exist', 'unknown pipeline: 42704');
SELECT throws_like($$SELECT * FROM salesmgmt.forecast('2024-01-01', '2024-12-31', 'total', NULL, 'JPY')$$,
                   'no exchange rate from % to JPY on 2024-%',
                   'a missing rate is an error naming the pair and the date');
SELECT throws_ok($$SELECT * FROM salesmgmt.forecast('0001-01-01', '9999-12-31', 'month')$$, '54000',
                 NULL, 'too many month rows: 54000');
INSERT INTO salesmgmt.forecast_adjustment (period_start, period_end, rep_id, category, amount)
VALUES ('2024-04-01', '2024-06-30', 3, 'commit', 1000);
SELECT throws_ok($$UPDATE salesmgmt.forecast_adjustment SET amount = 0$$, '55000',
                 'salesmgmt.forecast_adjustment is append-only: UPDATE is not allowed',
                 'changing an adjustment: 55000');
SELECT salesmgmt.snapshot_forecast('2024-04-01', '2024-06-30') AS snap \gset
SELECT results_eq(
    format($$SELECT line_no, group_id, commit_forecast, best_case_forecast, weighted, deal_count
               FROM salesmgmt.forecast_snapshot WHERE snapshot_id = %s ORDER BY line_no$$, :snap),
    $$SELECT ordinality::integer, group_id, commit_forecast, best_case_forecast, weighted, deal_count
        FROM salesmgmt.forecast('2024-04-01', '2024-06-30', 'rep') WITH ORDINALITY$$,
    'a snapshot stores the forecast it was taken of, row for row');
SELECT throws_ok($$DELETE FROM salesmgmt.forecast_snapshot$$, '55000', NULL, 'deleting a snapshot: 55000');
SELECT throws_ok($$TRUNCATE salesmgmt.forecast_snapshot$$, '55000', NULL, 'truncating the snapshots: 55000');
SELECT is((SELECT adjusted_commit - commit FROM salesmgmt.forecast('2024-04-01', '2024-09-30', 'rep') WHERE group_id = 3),
          1000.00, 'an adjustment inside the period moves the rep''s adjusted commit');

SELECT * FROM finish();
ROLLBACK;

-- pgTAP: the analytics views agree with independent, naive computations of
-- their definitions over a generated world (team tree, splits, currencies,
-- open and closed deals over two years), and the feedback workflow keeps
-- its rules.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SET TimeZone = 'UTC';
SET salesmgmt.reporting_currency = 'USD';
SELECT plan(58);

SELECT has_view('salesmgmt', v, 'view salesmgmt.' || v || ' exists')
  FROM unnest(ARRAY['win_rates_by', 'sales_velocity', 'pipeline_coverage', 'quota_attainment',
                    'customer_summary', 'customer_satisfaction', 'activity_summary', 'account_last_touch',
                    'cohort_conversion', 'feedback_summary', 'deal_facts', 'team_closure', 'reporting_rate',
                    'quota_rep', 'rep_rollup']) AS v;
SELECT has_table('salesmgmt', 'feedback', 'table salesmgmt.feedback exists');
SELECT has_function('salesmgmt', 'resolve_feedback', ARRAY['bigint', 'text'], 'resolve_feedback(bigint, text) exists');

-- --------------------------------------------------------------- the world
-- teams: 1 > 2 > 3, 1 > 4 > 5, and 6 alone; reps spread over them, some
-- without a team
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'T1'), (6, 'T6');
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES (2, 'T2', 1), (4, 'T4', 1);
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES (3, 'T3', 2), (5, 'T5', 4);
INSERT INTO salesmgmt.rep (rep_id, name, email, team_id)
SELECT i, 'Rep ' || i, 'r' || i || '@x.example', nullif(i % 7, 0) FROM generate_series(1, 13) i;
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id)
SELECT i, 'Account ' || i, 1 + i % 13 FROM generate_series(1, 45) i;
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (1, 'P1', 'free'), (2, 'P2', 'free');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (1, 1, 'Open A', 1, 0.3, 'pipeline', 'open'), (2, 1, 'Open B', 2, 0.6, 'commit', 'open'),
    (3, 1, 'Won', 3, 1, 'closed', 'won'), (4, 1, 'Lost', 4, 0, 'omitted', 'lost'),
    (5, 2, 'Open', 1, 0.5, 'best_case', 'open'), (6, 2, 'Won', 2, 1, 'closed', 'won'), (7, 2, 'Lost', 3, 0, 'omitted', 'lost');
-- EUR->USD monthly; GBP only as USD->GBP until 300 days ago, then GBP->USD
-- directly: conversions must prefer the direct pair once it exists
INSERT INTO salesmgmt.currency_rate (currency, quote_currency, valid_from, rate)
SELECT 'EUR', 'USD', (current_date - 1000 + 30 * k), 1.05 + k / 100.0 FROM generate_series(0, 40) k;
INSERT INTO salesmgmt.currency_rate VALUES ('USD', 'GBP', current_date - 1000, 0.80), ('USD', 'GBP', current_date - 500, 0.75),
                                           ('GBP', 'USD', current_date - 300, 1.30);

CREATE TEMP TABLE g AS
SELECT i,
       now() - make_interval(days => 5 + (i * 37) % 700, hours => i % 24) AS created,
       (i * 13) % 150 AS len,
       CASE i % 5 WHEN 0 THEN 'won' WHEN 1 THEN 'won' WHEN 2 THEN 'lost' ELSE 'open' END AS outcome,
       1 + (i % 3 = 0)::int AS pipeline_id
  FROM generate_series(1, 420) i;
-- a deal that would close in the future stays open
UPDATE g SET outcome = 'open' WHERE created + make_interval(days => len) > now() - interval '1 hour';
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
                            probability, expected_close_date, created_at, stage_entered_at, closed_at)
SELECT i, 'D' || i, 1 + (i * 17) % 40, 1 + i % 13, pipeline_id,
       CASE WHEN pipeline_id = 1 THEN CASE outcome WHEN 'won' THEN 3 WHEN 'lost' THEN 4 ELSE 1 + i % 2 END
            ELSE CASE outcome WHEN 'won' THEN 6 WHEN 'lost' THEN 7 ELSE 5 END END,
       100 + (i * 7919) % 10000,
       CASE i % 10 WHEN 0 THEN 'EUR' WHEN 1 THEN 'GBP' ELSE 'USD' END,
       CASE WHEN outcome = 'open' AND i % 7 = 0 THEN 0.15 END,
       CASE WHEN outcome = 'open' THEN current_date + (i % 120) - 20 END,
       created,
       CASE WHEN outcome = 'open' THEN created ELSE created + make_interval(days => len) END,
       CASE WHEN outcome = 'open' THEN NULL ELSE created + make_interval(days => len) END
  FROM g;
INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share)
SELECT d.deal_id, s.rep_id, 0.5
  FROM salesmgmt.deal d, LATERAL (VALUES (d.owner_rep_id), (1 + d.owner_rep_id % 13)) s(rep_id)
 WHERE d.deal_id % 11 = 0;
INSERT INTO salesmgmt.quota (rep_id, team_id, period_start, period_end, amount, currency)
SELECT r, NULL, q::date, (q + interval '3 months' - interval '1 day')::date, 5000 + 100 * r, CASE WHEN r % 4 = 0 THEN 'EUR' ELSE 'USD' END
  FROM generate_series(1, 13) r,
       generate_series(date_trunc('quarter', now() - interval '2 years'), date_trunc('quarter', now()) + interval '3 months', interval '3 months') q;
INSERT INTO salesmgmt.quota (rep_id, team_id, period_start, period_end, amount, currency)
SELECT NULL, t, current_date - 40, current_date + 50, 20000, 'USD' FROM generate_series(1, 6) t;
INSERT INTO salesmgmt.payment (deal_id, kind, amount, currency, paid_at)
SELECT deal_id, 'payment', amount, currency, closed_at + interval '1 hour'
  FROM salesmgmt.deal WHERE closed_at IS NOT NULL AND stage_id IN (3, 6);
INSERT INTO salesmgmt.payment (deal_id, kind, amount, currency, paid_at)
SELECT deal_id, 'refund', round(amount / 3, 2), currency, closed_at + interval '2 hours'
  FROM salesmgmt.deal WHERE closed_at IS NOT NULL AND stage_id IN (3, 6) AND deal_id % 4 = 0;
INSERT INTO salesmgmt.activity (kind, account_id, rep_id, occurred_at, duration)
SELECT (ARRAY['call','email','meeting','visit','demo','note'])[1 + i % 6], 1 + (i * 7) % 42, 1 + i % 13,
       now() - make_interval(days => (i * 29) % 400, hours => i % 11) + CASE WHEN i % 50 = 0 THEN interval '20 days' ELSE interval '0' END,
       CASE WHEN i % 3 = 0 THEN NULL ELSE make_interval(mins => 5 + i % 60) END
  FROM generate_series(1, 900) i;
INSERT INTO salesmgmt.csat_response (account_id, rep_id, csat, nps, responded_at)
SELECT 1 + i % 40, 1 + i % 13, CASE WHEN i % 6 <> 0 THEN 1 + i % 5 END, CASE WHEN i % 4 <> 0 OR i % 6 = 0 THEN i % 11 END,
       now() - make_interval(days => (i * 31) % 300)
  FROM generate_series(1, 200) i;

-- the team tree, computed here by walking reps up to the root
CREATE TEMP VIEW rep_ancestor AS
WITH RECURSIVE up(rep_id, team_id) AS (
    SELECT rep_id, team_id FROM salesmgmt.rep WHERE team_id IS NOT NULL
    UNION ALL
    SELECT up.rep_id, t.parent_team_id FROM up JOIN salesmgmt.team t ON t.team_id = up.team_id
     WHERE t.parent_team_id IS NOT NULL
)
SELECT * FROM up;
CREATE TEMP VIEW credit AS
SELECT d.deal_id, coalesce(s.rep_id, d.owner_rep_id) AS rep_id, coalesce(s.share, 1) AS share
  FROM salesmgmt.deal d LEFT JOIN salesmgmt.deal_split s ON s.deal_id = d.deal_id;

SELECT ok((SELECT count(*) FROM salesmgmt.deal WHERE closed_at IS NOT NULL) > 150
          AND (SELECT count(*) FROM salesmgmt.deal WHERE closed_at IS NULL) > 50,
          'the world has closed and open deals');

-- ------------------------------------------------------------- currencies
SELECT is_empty($$
    SELECT f.deal_id FROM salesmgmt.deal_facts f
     WHERE f.amount_reporting IS DISTINCT FROM
           salesmgmt.convert_amount(f.amount, f.currency, 'USD', coalesce(f.closed_at::date, current_date))$$,
    'every deal converts as convert_amount does, on its close date or today');
SELECT is_empty($$
    SELECT c.code, day FROM (VALUES ('EUR'), ('GBP'), ('USD')) c(code) CROSS JOIN
           (SELECT current_date + k AS day FROM generate_series(-990, 30, 3) k) dd
      LEFT JOIN salesmgmt.reporting_rate r
             ON r.currency = c.code AND day >= r.valid_from AND day < r.valid_until
     WHERE CASE WHEN r.inverse THEN 1000 / r.rate ELSE 1000 * r.rate END
           IS DISTINCT FROM salesmgmt.convert_amount(1000, c.code, 'USD', day::date)$$,
    'rate ranges match convert_amount on every day, direct pair before reverse pair');
SELECT is((SELECT count(*)::int FROM salesmgmt.reporting_rate r, (SELECT current_date + k AS day FROM generate_series(-990, 0) k) dd
            WHERE r.currency = 'GBP' AND day >= r.valid_from AND day < r.valid_until),
          991, 'rate ranges of a currency never overlap');
SET salesmgmt.reporting_currency = 'EUR';
SELECT is_empty($$
    SELECT day FROM (SELECT current_date + k AS day FROM generate_series(-990, 0, 7) k) dd
      JOIN salesmgmt.reporting_rate r ON r.currency = 'USD' AND day >= r.valid_from AND day < r.valid_until
     WHERE 1000 / r.rate IS DISTINCT FROM salesmgmt.convert_amount(1000, 'USD', 'EUR', day::date) OR NOT r.inverse$$,
    'with EUR as reporting currency USD divides by the EUR->USD rate');
SELECT throws_ok('SELECT count(*) FROM salesmgmt.win_rates_by', '22023', NULL,
                 'a currency without a rate to the reporting currency is an error, not a silent gap');
RESET salesmgmt.reporting_currency;
SET salesmgmt.reporting_currency = 'USD';

-- ------------------------------------------------------------- team tree
SELECT set_eq('SELECT ancestor_team_id, team_id FROM salesmgmt.team_closure',
              $$VALUES (1,1),(1,2),(1,3),(1,4),(1,5),(2,2),(2,3),(3,3),(4,4),(4,5),(5,5),(6,6)$$,
              'team_closure holds each team with every team at or below it');

-- ---------------------------------------------------------------- win rates
CREATE TEMP TABLE naive_closed AS
SELECT d.owner_rep_id AS rep_id, d.pipeline_id, date_trunc('quarter', d.closed_at)::date AS quarter,
       s.outcome, d.deal_id
  FROM salesmgmt.deal d JOIN salesmgmt.stage s USING (stage_id) WHERE s.outcome <> 'open';
SELECT set_eq(
    $$SELECT rep_id, pipeline_id, quarter, won_deals, lost_deals FROM salesmgmt.win_rates_by
       WHERE level = 'rep' AND won_deals + lost_deals > 0$$,
    $$SELECT rep_id, pipeline_id, quarter, count(*) FILTER (WHERE outcome = 'won') AS won, count(*) FILTER (WHERE outcome = 'lost') AS lost
        FROM naive_closed GROUP BY GROUPING SETS ((rep_id, pipeline_id, quarter), (rep_id, quarter))$$,
    'rep win rates count the deals each rep owns, per pipeline and in all');
SELECT set_eq(
    $$SELECT team_id, pipeline_id, quarter, won_deals, lost_deals FROM salesmgmt.win_rates_by
       WHERE level = 'team' AND won_deals + lost_deals > 0$$,
    $$SELECT a.team_id, n.pipeline_id, n.quarter, count(*) FILTER (WHERE outcome = 'won') AS won, count(*) FILTER (WHERE outcome = 'lost') AS lost
        FROM naive_closed n JOIN rep_ancestor a ON a.rep_id = n.rep_id
       GROUP BY GROUPING SETS ((a.team_id, n.pipeline_id, n.quarter), (a.team_id, n.quarter))$$,
    'team win rates count every rep of the team and of its sub-teams');
SELECT is((SELECT count(*)::int FROM salesmgmt.win_rates_by),
          (SELECT ((SELECT count(*) FROM salesmgmt.rep) + (SELECT count(*) FROM salesmgmt.team))
                  * ((SELECT count(*) FROM salesmgmt.pipeline) + 1)
                  * (SELECT count(*) FROM generate_series((SELECT min(quarter) FROM naive_closed),
                                                          date_trunc('quarter', current_date)::date, interval '3 months')))::int,
          'win rates are dense: every rep and team, every pipeline and all, every quarter to now');
SELECT is_empty($$SELECT 1 FROM salesmgmt.win_rates_by
                   WHERE win_rate IS DISTINCT FROM round(won_deals::numeric / nullif(won_deals + lost_deals, 0), 4)$$,
                'win_rate is won / (won + lost), null when nothing closed');
SELECT ok((SELECT bool_and(won_amount = coalesce((SELECT round(sum(f.amount_reporting), 2) FROM salesmgmt.deal_facts f
                                                  WHERE f.owner_rep_id = w.rep_id AND f.outcome = 'won'
                                                    AND date_trunc('quarter', f.closed_at)::date = w.quarter), 0))
             FROM salesmgmt.win_rates_by w WHERE level = 'rep' AND pipeline_id IS NULL),
          'won_amount is the sum of the won deals in the reporting currency');

-- ------------------------------------------------------------ sales velocity
SELECT is_empty($$
    SELECT v.level, v.rep_id, v.team_id, v.quarter, v.open_deals
      FROM salesmgmt.sales_velocity v
     WHERE v.open_deals <> (
            SELECT count(*) FROM salesmgmt.deal d
             WHERE (v.level = 'rep' AND d.owner_rep_id = v.rep_id
                    OR v.level = 'team' AND d.owner_rep_id IN (SELECT rep_id FROM rep_ancestor a WHERE a.team_id = v.team_id))
               AND least(d.created_at, coalesce(d.closed_at, d.created_at)) < v.quarter + interval '3 months'
               AND (d.closed_at IS NULL OR d.closed_at >= v.quarter))$$,
    'open_deals counts the deals in play during the quarter, for reps and team trees');
SELECT is_empty($$
    SELECT 1 FROM salesmgmt.sales_velocity v
     WHERE v.avg_cycle_days IS DISTINCT FROM (
            SELECT round(avg(extract(epoch FROM d.closed_at - d.created_at) / 86400), 2)
              FROM salesmgmt.deal d JOIN salesmgmt.stage s USING (stage_id)
             WHERE s.outcome = 'won' AND date_trunc('quarter', d.closed_at)::date = v.quarter
               AND (v.level = 'rep' AND d.owner_rep_id = v.rep_id
                    OR v.level = 'team' AND d.owner_rep_id IN (SELECT rep_id FROM rep_ancestor a WHERE a.team_id = v.team_id)))$$,
    'avg_cycle_days averages creation-to-close of the deals won in the quarter');
SELECT is_empty($$
    SELECT 1 FROM salesmgmt.sales_velocity v,
           LATERAL (SELECT count(*) FILTER (WHERE f.outcome = 'won') AS won,
                           count(*) FILTER (WHERE f.outcome = 'lost') AS lost,
                           sum(f.amount_reporting) FILTER (WHERE f.outcome = 'won') AS amount,
                           sum(extract(epoch FROM f.closed_at - f.created_at) / 86400) FILTER (WHERE f.outcome = 'won') AS days
                      FROM salesmgmt.deal_facts f
                     WHERE f.outcome <> 'open' AND date_trunc('quarter', f.closed_at)::date = v.quarter
                       AND (v.level = 'rep' AND f.owner_rep_id = v.rep_id
                            OR v.level = 'team' AND f.owner_rep_id IN (SELECT rep_id FROM rep_ancestor a WHERE a.team_id = v.team_id))) n
     WHERE v.velocity_per_day IS DISTINCT FROM
           round(v.open_deals * (n.amount / nullif(n.won, 0)) * (n.won::numeric / nullif(n.won + n.lost, 0))
                 / nullif(n.days / nullif(n.won, 0), 0), 2)$$,
    'velocity is open deals x average won amount x win rate / average cycle');
SELECT ok((SELECT count(*) FROM salesmgmt.sales_velocity WHERE velocity_per_day IS NOT NULL) > 10,
          'velocity is known in quarters with wins');

-- ----------------------------------------------------- quotas and coverage
SELECT is_empty($$
    SELECT q.quota_id FROM salesmgmt.quota_attainment q
     WHERE q.won_amount <> round(coalesce((
            SELECT sum(f.amount_reporting * c.share)
              FROM salesmgmt.deal_facts f JOIN credit c ON c.deal_id = f.deal_id
             WHERE f.outcome = 'won' AND f.closed_at::date BETWEEN q.period_start AND q.period_end
               AND (c.rep_id = q.rep_id OR c.rep_id IN (SELECT rep_id FROM rep_ancestor a WHERE a.team_id = q.team_id))), 0), 2)$$,
    'won_amount credits split shares within the period, and a team''s whole tree');
SELECT is_empty($$
    SELECT q.quota_id FROM salesmgmt.quota_attainment q JOIN salesmgmt.quota o USING (quota_id)
     WHERE q.quota_amount <> round(salesmgmt.convert_amount(o.amount, o.currency, 'USD', o.period_start), 2)
        OR q.attainment IS DISTINCT FROM round(q.won_amount / nullif(q.quota_amount, 0), 4)
        OR q.elapsed_days <> least(greatest(current_date - o.period_start + 1, 0), o.period_end - o.period_start + 1)$$,
    'quota in the reporting currency at the period start, attainment and elapsed days');
SELECT ok((SELECT count(*) FILTER (WHERE elapsed_days = 0 AND pacing IS NULL) > 0
              AND count(*) FILTER (WHERE elapsed_days = period_days) > 0
              AND count(*) FILTER (WHERE elapsed_days BETWEEN 1 AND period_days - 1 AND pacing IS NOT NULL) > 0
             FROM salesmgmt.quota_attainment),
          'past, current and future periods are all represented; future ones have no pacing');
SELECT is_empty($$
    SELECT p.quota_id FROM salesmgmt.pipeline_coverage p JOIN salesmgmt.quota q USING (quota_id)
     WHERE p.open_pipeline <> round(coalesce((
            SELECT sum(f.amount_reporting * c.share)
              FROM salesmgmt.deal_facts f JOIN credit c ON c.deal_id = f.deal_id
             WHERE f.outcome = 'open' AND f.expected_close_date BETWEEN greatest(q.period_start, current_date) AND q.period_end
               AND (c.rep_id = q.rep_id OR c.rep_id IN (SELECT rep_id FROM rep_ancestor a WHERE a.team_id = q.team_id))), 0), 2)
        OR p.coverage IS DISTINCT FROM round(p.open_pipeline / nullif(p.remaining_amount, 0), 2)$$,
    'open pipeline covers the rest of the period only; coverage divides by the remaining quota');
SELECT ok((SELECT count(*) FROM salesmgmt.pipeline_coverage WHERE open_pipeline > 0) >= 3,
          'some quotas have open pipeline to cover them');

-- ------------------------------------------------------------- customers
SELECT is_empty($$
    SELECT c.account_id FROM salesmgmt.customer_summary c
     WHERE c.won_deals <> (SELECT count(*) FROM salesmgmt.deal_facts f WHERE f.account_id = c.account_id AND f.outcome = 'won')
        OR c.revenue <> round(coalesce((SELECT sum(f.amount_reporting) FROM salesmgmt.deal_facts f
                                         WHERE f.account_id = c.account_id AND f.outcome = 'won'), 0), 2)
        OR c.refunds <> round(coalesce((SELECT sum(salesmgmt.convert_amount(p.amount, p.currency, 'USD', p.paid_at::date))
                                         FROM salesmgmt.payment p JOIN salesmgmt.deal d USING (deal_id)
                                        WHERE d.account_id = c.account_id AND p.kind = 'refund'), 0), 2)
        OR c.lifetime_value <> c.revenue - c.refunds
        OR c.last_activity_at IS DISTINCT FROM (SELECT max(occurred_at) FROM salesmgmt.activity a
                                                  WHERE a.account_id = c.account_id AND a.occurred_at <= now())$$,
    'purchases, revenue, refunds, lifetime value and last activity per account');
-- score = 1 + floor(5 * (number of buyers with a smaller value) / buyers)
SELECT is_empty($$
    WITH b AS (SELECT * FROM salesmgmt.customer_summary WHERE won_deals > 0)
    SELECT b.account_id FROM b
     WHERE b.recency_score <> 1 + 5 * (SELECT count(*) FROM b o WHERE o.last_purchase_at < b.last_purchase_at) / (SELECT count(*) FROM b)
        OR b.frequency_score <> 1 + 5 * (SELECT count(*) FROM b o WHERE o.won_deals < b.won_deals) / (SELECT count(*) FROM b)
        OR b.monetary_score <> 1 + 5 * (SELECT count(*) FROM b o WHERE o.lifetime_value < b.lifetime_value) / (SELECT count(*) FROM b)$$,
    'RFM scores are quintiles among the accounts that bought, ties sharing a score');
-- the segment grid of docs/bi.md, R down, F across
SELECT is_empty($$
    WITH grid(r, segments) AS (VALUES
        (5, ARRAY['New customers', 'Potential loyalists', 'Potential loyalists', 'Champions', 'Champions']),
        (4, ARRAY['Promising', 'Potential loyalists', 'Potential loyalists', 'Loyal customers', 'Loyal customers']),
        (3, ARRAY['About to sleep', 'About to sleep', 'Need attention', 'Loyal customers', 'Loyal customers']),
        (2, ARRAY['Hibernating', 'Hibernating', 'At risk', 'At risk', 'Cannot lose them']),
        (1, ARRAY['Hibernating', 'Hibernating', 'At risk', 'At risk', 'Cannot lose them']))
    SELECT c.account_id FROM salesmgmt.customer_summary c LEFT JOIN grid g ON g.r = c.recency_score
     WHERE c.segment IS DISTINCT FROM coalesce(g.segments[c.frequency_score], 'Prospect')$$,
    'segments follow the R x F grid; accounts that never bought are prospects');
SELECT ok((SELECT count(DISTINCT segment) >= 4 FROM salesmgmt.customer_summary), 'several segments occur');
SELECT is_empty($$
    SELECT t.account_id FROM salesmgmt.account_last_touch t
      LEFT JOIN (SELECT DISTINCT ON (account_id) * FROM salesmgmt.activity WHERE occurred_at <= now()
                  ORDER BY account_id, occurred_at DESC, activity_id DESC) a ON a.account_id = t.account_id
     WHERE t.last_touch_at IS DISTINCT FROM a.occurred_at OR t.last_touch_kind IS DISTINCT FROM a.kind
        OR t.last_touch_rep_id IS DISTINCT FROM a.rep_id
        OR t.touches_30_days <> (SELECT count(*) FROM salesmgmt.activity x WHERE x.account_id = t.account_id
                                   AND x.occurred_at > now() - interval '30 days' AND x.occurred_at <= now())$$,
    'the last touch is the latest activity up to now; future ones do not count');

-- ---------------------------------------------------- activities, cohorts
SELECT set_eq(
    $$SELECT rep_id, week, total, calls + emails + meetings + visits + demos + notes AS kinds FROM salesmgmt.activity_summary WHERE level = 'rep'$$,
    $$SELECT rep_id, date_trunc('week', occurred_at)::date AS week, count(*) AS total, count(*) AS kinds FROM salesmgmt.activity GROUP BY 1, 2$$,
    'activity_summary counts each rep''s records per week, every kind in its column');
SELECT set_eq(
    $$SELECT team_id, week, total, hours FROM salesmgmt.activity_summary WHERE level = 'team'$$,
    $$SELECT a.team_id, date_trunc('week', x.occurred_at)::date AS week, count(*) AS total,
             round(extract(epoch FROM coalesce(sum(x.duration), interval '0')) / 3600, 2) AS hours
        FROM salesmgmt.activity x JOIN rep_ancestor a ON a.rep_id = x.rep_id GROUP BY 1, 2$$,
    'team activity adds up the team tree');
SELECT set_eq(
    $$SELECT cohort_month, pipeline_id, created_deals, won_within_30_days, won_within_90_days, won_to_date
        FROM salesmgmt.cohort_conversion WHERE created_deals > 0$$,
    $$SELECT date_trunc('month', d.created_at)::date AS month, d.pipeline_id, count(*) AS created,
             count(*) FILTER (WHERE s.outcome = 'won' AND d.closed_at - d.created_at <= interval '30 days') AS won30,
             count(*) FILTER (WHERE s.outcome = 'won' AND d.closed_at - d.created_at <= interval '90 days') AS won90,
             count(*) FILTER (WHERE s.outcome = 'won') AS won
        FROM salesmgmt.deal d JOIN salesmgmt.stage s USING (stage_id)
       GROUP BY GROUPING SETS ((1, 2), (1))$$,
    'cohorts count deals by creation month and their wins within 30 and 90 days');
SELECT is_empty($$
    SELECT 1 FROM salesmgmt.cohort_conversion
     WHERE (share_won_30_days IS NOT NULL) <> (created_deals > 0 AND (cohort_month + interval '1 month 30 days')::timestamptz <= now())$$,
    'a 30-day share is known exactly once the cohort has had 30 days, and never for an empty month');

-- ------------------------------------------------------------ satisfaction
SELECT set_eq(
    $$SELECT level, coalesce(rep_id, team_id) AS unit, month, csat_avg, nps FROM salesmgmt.customer_satisfaction WHERE responses > 0$$,
    $$SELECT 'rep' AS level, rep_id AS unit, date_trunc('month', responded_at)::date AS month, round(avg(csat), 2) AS csat,
             round(100.0 * (count(*) FILTER (WHERE nps >= 9) - count(*) FILTER (WHERE nps <= 6)) / nullif(count(nps), 0), 2) AS nps
        FROM salesmgmt.csat_response WHERE rep_id IS NOT NULL GROUP BY 2, 3
      UNION ALL
      SELECT 'team', a.team_id, date_trunc('month', responded_at)::date, round(avg(csat), 2),
             round(100.0 * (count(*) FILTER (WHERE nps >= 9) - count(*) FILTER (WHERE nps <= 6)) / nullif(count(nps), 0), 2)
        FROM salesmgmt.csat_response c JOIN rep_ancestor a ON a.rep_id = c.rep_id GROUP BY 2, 3$$,
    'CSAT average and NPS per rep and team tree and month');

-- --------------------------------------------------------------- feedback
INSERT INTO salesmgmt.feedback (feedback_id, source, account_id, category, sentiment, body)
VALUES (1, 'customer', 1, 'service', 'negative', 'Late delivery'), (2, 'rep', NULL, 'product', 'neutral', 'Needs an API');
SELECT throws_ok($$SELECT salesmgmt.resolve_feedback(1, '')$$, '22023', NULL, 'a blank resolution is refused');
SELECT throws_ok($$SELECT salesmgmt.resolve_feedback(42, 'done')$$, '42704', NULL, 'unknown feedback is refused');
SELECT throws_ok($$SELECT salesmgmt.resolve_feedback(NULL, 'done')$$, '22004', NULL, 'a null id is refused');
SELECT is((SELECT status FROM salesmgmt.triage_feedback(1, 3)), 'triaged', 'open feedback is triaged');
SELECT throws_ok($$UPDATE salesmgmt.feedback SET status = 'open' WHERE feedback_id = 1$$, 'SM050', NULL,
                 'status cannot move back from triaged to open');
SELECT is((SELECT status || ' ' || (resolved_at = now())::text FROM salesmgmt.resolve_feedback(1, 'Refunded shipping')),
          'resolved true', 'triaged feedback is resolved and stamped now');
SELECT throws_ok($$SELECT salesmgmt.resolve_feedback(1, 'again')$$, 'SM051', NULL, 'resolving twice is refused');
SELECT throws_ok($$UPDATE salesmgmt.feedback SET status = 'triaged' WHERE feedback_id = 1$$, 'SM051', NULL,
                 'resolved feedback cannot be reopened');
SELECT is((SELECT resolution FROM salesmgmt.feedback WHERE feedback_id = 1), 'Refunded shipping',
          'the refused changes left the resolution as it was');

-- ----------------------------------------------------------- privileges
-- the views read the tables with the querying user's rights (security_invoker)
CREATE ROLE analytics_tap_reader;
GRANT USAGE ON SCHEMA salesmgmt TO analytics_tap_reader;
GRANT SELECT ON salesmgmt.win_rates_by TO analytics_tap_reader;
SET LOCAL ROLE analytics_tap_reader;
SELECT throws_ok('SELECT count(*) FROM salesmgmt.win_rates_by', '42501', NULL,
                 'a role that may read the view but not the deals gets no figures');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

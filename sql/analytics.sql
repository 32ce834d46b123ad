-- analytics: every view's formulas against a small world computed by hand.
--
-- The views look at "today" (the current quarter ends the grids, quotas
-- pace against today), so the world is placed relative to now and the
-- output shows offsets (quarters before the current one, days before this
-- Monday) instead of dates.  Every number below is checked in the comments.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET salesmgmt.reporting_currency = 'USD';
\set VERBOSITY terse

-- an empty database: every view answers, with no rows and no error
SELECT (SELECT count(*) FROM salesmgmt.win_rates_by) AS win_rates,
       (SELECT count(*) FROM salesmgmt.sales_velocity) AS velocity,
       (SELECT count(*) FROM salesmgmt.pipeline_coverage) AS coverage,
       (SELECT count(*) FROM salesmgmt.quota_attainment) AS attainment,
       (SELECT count(*) FROM salesmgmt.customer_summary) AS customers,
       (SELECT count(*) FROM salesmgmt.customer_satisfaction) AS csat,
       (SELECT count(*) FROM salesmgmt.activity_summary) AS activities,
       (SELECT count(*) FROM salesmgmt.account_last_touch) AS touches,
       (SELECT count(*) FROM salesmgmt.cohort_conversion) AS cohorts,
       (SELECT count(*) FROM salesmgmt.feedback_summary) AS feedback;

-- anchors: q(n) is the start of the quarter n quarters from the current
-- one, w(d) is this Monday plus d days; qoff/woff/moff turn dates back into
-- offsets for the output
CREATE FUNCTION pg_temp.q(n int) RETURNS timestamptz LANGUAGE sql
    AS $$ SELECT date_trunc('quarter', now()) + make_interval(months => 3 * n) $$;
CREATE FUNCTION pg_temp.w(d float8) RETURNS timestamptz LANGUAGE sql
    AS $$ SELECT date_trunc('week', now()) + d * interval '1 day' $$;
CREATE FUNCTION pg_temp.months(d date, base timestamptz) RETURNS int LANGUAGE sql
    AS $$ SELECT ((extract(year FROM d) - extract(year FROM base)) * 12
                 + extract(month FROM d) - extract(month FROM base))::int $$;
CREATE FUNCTION pg_temp.qoff(d date) RETURNS int LANGUAGE sql
    AS $$ SELECT pg_temp.months(d, date_trunc('quarter', now())) / 3 $$;
CREATE FUNCTION pg_temp.woff(d date) RETURNS int LANGUAGE sql
    AS $$ SELECT (d - date_trunc('week', now())::date) / 7 $$;

-- the organisation: Sales > East > East Enterprise, Sales > West
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES (2, 'East', 1), (3, 'East Enterprise', 2), (4, 'West', 1);
INSERT INTO salesmgmt.rep (rep_id, name, email, team_id) VALUES
    (1, 'Ada', 'ada@example.com', 1), (2, 'Bo', 'bo@example.com', 3), (3, 'Cy', 'cy@example.com', 3),
    (4, 'Di', 'di@example.com', 4), (5, 'Eve', 'eve@example.com', NULL);
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id)
SELECT i, 'Account ' || i, 2 FROM generate_series(1, 8) i;
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (1, 'New business', 'free'), (2, 'Renewals', 'free');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (1, 1, 'Qualify', 1, 0.2, 'pipeline', 'open'), (2, 1, 'Propose', 2, 0.5, 'best_case', 'open'),
    (3, 1, 'Won', 3, 1, 'closed', 'won'), (4, 1, 'Lost', 4, 0, 'omitted', 'lost'),
    (5, 2, 'Renewal due', 1, 0.6, 'best_case', 'open'),
    (6, 2, 'Renewed', 2, 1, 'closed', 'won'), (7, 2, 'Churned', 3, 0, 'omitted', 'lost');
-- EUR is worth 1.10 USD, from the previous quarter on 1.20; only USD->GBP
-- is known (0.8), so GBP converts by division: 800 GBP = 1000 USD
INSERT INTO salesmgmt.currency_rate VALUES
    ('EUR', 'USD', pg_temp.q(-8)::date, 1.10), ('EUR', 'USD', pg_temp.q(-1)::date, 1.20),
    ('USD', 'GBP', pg_temp.q(-8)::date, 0.8);

-- closed deals: created and closed at noon, so cycles are whole days
CREATE TEMP TABLE plan (deal_id int, account_id int, rep_id int, pipeline_id int, stage_id int,
                        amount numeric, currency char(3), created timestamptz, closed timestamptz);
INSERT INTO plan VALUES
    --  id acc rep pipe stage amount cur   created                                  closed
    ( 1, 1, 2, 1, 3, 1000, 'USD', pg_temp.q(-4) + interval '5 days 12h',  pg_temp.q(-4) + interval '25 days 12h'),
    ( 2, 5, 4, 1, 4,  500, 'USD', pg_temp.q(-4) + interval '5 days 12h',  pg_temp.q(-4) + interval '15 days 12h'),
    ( 9, 7, 4, 1, 3,  400, 'USD', pg_temp.q(-4) + interval '1 day 12h',   pg_temp.q(-4) + interval '3 days 12h'),
    (10, 8, 2, 2, 6,  600, 'USD', pg_temp.q(-4) + interval '2 days 12h',  pg_temp.q(-4) + interval '8 days 12h'),
    ( 3, 1, 2, 1, 3, 2000, 'USD', pg_temp.q(-2) + interval '10 days 12h', pg_temp.q(-2) + interval '40 days 12h'),
    ( 4, 1, 2, 1, 4, 1000, 'USD', pg_temp.q(-2) + interval '10 days 12h', pg_temp.q(-2) + interval '20 days 12h'),
    ( 5, 2, 3, 1, 3, 1000, 'EUR', pg_temp.q(-2) + interval '2 days 12h',  pg_temp.q(-2) + interval '12 days 12h'),
    ( 6, 2, 3, 2, 6,  800, 'GBP', pg_temp.q(-2) + interval '1 day 12h',   pg_temp.q(-2) + interval '61 days 12h'),
    ( 7, 2, 4, 1, 3, 3000, 'USD', pg_temp.q(-1) - interval '10 days' + interval '12h', pg_temp.q(-1) + interval '45 days 12h'),
    ( 8, 3, 4, 2, 7,  600, 'EUR', pg_temp.q(-1) - interval '5 days' + interval '12h',  pg_temp.q(-1) + interval '10 days 12h'),
    (13, 4, 5, 1, 3, 1500, 'USD', pg_temp.q(0), now());
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
                            created_at, stage_entered_at, closed_at)
SELECT deal_id, 'Deal ' || deal_id, account_id, rep_id, pipeline_id, stage_id, amount, currency, created, closed, closed
  FROM plan ORDER BY deal_id;
-- open deals: expected to close relative to today
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
                            probability, expected_close_date, created_at, stage_entered_at) VALUES
    (12, 'Deal 12', 3, 2, 2, 5, 1000, 'EUR', NULL, current_date - 5,   pg_temp.q(-2) + interval '3 days 12h', pg_temp.q(-2) + interval '3 days 12h'),
    (14, 'Deal 14', 4, 5, 1, 2, 4000, 'USD', NULL, current_date + 10,  pg_temp.q(0), pg_temp.q(0)),
    (15, 'Deal 15', 4, 5, 1, 1, 5000, 'USD', 0.4,  current_date + 20,  pg_temp.q(0), pg_temp.q(0)),
    (16, 'Deal 16', 4, 5, 2, 5, 1000, 'EUR', NULL, current_date - 5,   pg_temp.q(0), pg_temp.q(0)),
    (17, 'Deal 17', 4, 5, 1, 1, 2000, 'USD', NULL, current_date + 100, pg_temp.q(0), pg_temp.q(0)),
    (18, 'Deal 18', 5, 4, 1, 2, 3000, 'USD', NULL, current_date + 5,   pg_temp.q(0), pg_temp.q(0));
-- credit splits: deal 3 60/40 between Bo and Cy, deal 18 half and half
INSERT INTO salesmgmt.deal_split VALUES (3, 2, 0.6), (3, 3, 0.4), (18, 4, 0.5), (18, 5, 0.5);

-- every deal in the reporting currency: EUR 1.10 before the previous
-- quarter, 1.20 since (open deals: today); GBP divided by 0.8.  (Deal 13
-- closed just now: its cycle moves with the clock.)
SELECT deal_id, outcome, amount, currency, amount_reporting::numeric(12,2) AS usd, probability,
       CASE WHEN deal_id <> 13 THEN cycle_days END AS cycle_days
  FROM salesmgmt.deal_facts ORDER BY deal_id;

-- ---------------------------------------------------------------- win rates
-- by rep, all pipelines.  Quarter -4: Bo won 1000 and 600 (2/2 = 1);
-- Di won 400, lost 500 (1/2, by amount 400/900 = 0.4444).  Quarter -3:
-- nothing closed anywhere: rows with zeros and null rates.  Quarter -2:
-- Bo won 2000, lost 1000 (0.5, 2000/3000 = 0.6667); Cy won 1100 and 1000.
-- Quarter -1: Di won 3000, lost 720 (0.5, 3000/3720 = 0.8065).  This
-- quarter: Eve won 1500.  Ada never sold: null every quarter.
SELECT pg_temp.qoff(quarter) AS q, rep_id, team_id, won_deals AS won, lost_deals AS lost, win_rate,
       won_amount, lost_amount, win_rate_by_amount, currency
  FROM salesmgmt.win_rates_by WHERE level = 'rep' AND pipeline_id IS NULL
 ORDER BY q, rep_id;
-- by team and pipeline: East Enterprise (Bo, Cy) in quarter -2 won deals
-- 3 and 5 (2000 + 1100) and lost deal 4 in New business (2/3 = 0.6667,
-- 3100/4100 = 0.7561) and won deal 6 in Renewals; all pipelines 3/4 =
-- 0.75, 4100/5100 = 0.8039.  East has no reps of its own: it shows East
-- Enterprise's figures.  Sales adds everyone with a team: quarter -4
-- 3 won (2000) 1 lost (500) = 0.75, 2000/2500 = 0.8.  Eve has no team, so
-- this quarter is empty for every team.
SELECT pg_temp.qoff(quarter) AS q, team_id, pipeline_id, won_deals AS won, lost_deals AS lost, win_rate,
       won_amount, lost_amount, win_rate_by_amount
  FROM salesmgmt.win_rates_by WHERE level = 'team'
 ORDER BY team_id, q, pipeline_id NULLS LAST;

-- ------------------------------------------------------------ sales velocity
-- velocity = open_deals * avg_won_amount * win_rate / avg_cycle_days
-- Bo, quarter -4: deals 1 and 10 in play, both won (1000 in 20 days, 600
--   in 6 days): 2 * 800 * 1 / 13 = 123.08.  Quarter -3: none in play.
--   Quarter -2: deals 3, 4, 12 in play (3), won 2000 in 30 days, lost one:
--   3 * 2000 * 0.5 / 30 = 100.  Quarters -1 and 0: deal 12 still open, nothing
--   closed: null.
-- Cy, quarter -2: 2 in play, won 1100 (10 days) and 1000 (60 days):
--   2 * 1050 * 1 / 35 = 60.
-- Di, quarter -4: deals 2, 9: 2 * 400 * 0.5 / 2 = 200.  Quarter -2: deals 7
--   and 8 were created in its last month: 2 in play, nothing closed.
--   Quarter -1: won 3000 in 55 days, lost one: 2 * 3000 * 0.5 / 55 = 54.55.
--   This quarter: deal 18 in play.
-- Eve (this quarter: 5 deals in play, one won) is checked apart below: her
-- cycle depends on the time of day the test runs.
SELECT pg_temp.qoff(quarter) AS q, rep_id, team_id, open_deals, won_deals, lost_deals, win_rate,
       won_amount, avg_won_amount, avg_cycle_days, velocity_per_day, currency
  FROM salesmgmt.sales_velocity WHERE level = 'rep' AND rep_id <> 5
 ORDER BY rep_id, q;
SELECT pg_temp.qoff(quarter) AS q, open_deals, won_deals, win_rate, avg_won_amount,
       avg_cycle_days > 0 AS cycle_known, velocity_per_day > 0 AS velocity_known
  FROM salesmgmt.sales_velocity WHERE level = 'rep' AND rep_id = 5
 ORDER BY q;
-- teams: East Enterprise, quarter -2: 5 in play, won 4100 in 3 deals
-- (30 + 10 + 60 = 100 days), lost 1: 5 * 4100/3 * 0.75 / (100/3) = 153.75.
-- Sales, quarter -4: 4 in play, won 2000 in 3 deals (20 + 6 + 2 = 28
-- days), lost 1: 4 * 2000/3 * 0.75 / (28/3) = 214.29.  Quarter -2: 7 in
-- play: 7 * 4100 * 0.75 / 100 = 215.25.  Quarter -1: 3 in play (deals 7, 8,
-- 12): 3 * 3000 * 0.5 / 55 = 81.82.  This quarter: 2 in play (12, 18).
SELECT pg_temp.qoff(quarter) AS q, team_id, open_deals, won_deals, lost_deals, win_rate,
       won_amount, avg_won_amount, avg_cycle_days, velocity_per_day
  FROM salesmgmt.sales_velocity WHERE level = 'team'
 ORDER BY team_id, q;

-- ------------------------------------------------- quotas: attainment, pacing
-- 1: Bo, quarter -2, 4000: credited 60% of deal 3 = 1200: 0.3.
-- 2: Cy, quarter -2, 2000 EUR = 2200 USD at the period's start: 40% of
--    deal 3 (800) + 1100 + 1000 = 2900: 1.3182, nothing remains.
-- 3: East, quarter -2, 10000: deals 3, 5, 6 in full = 4100: 0.41.
-- 4: Eve, from 30 days ago to 59 days ahead (90 days, 31 elapsed), 9000:
--    won 1500 today: 0.1667; pacing 1500 * 90 / (9000 * 31) = 0.4839;
--    projected 1500 * 90 / 31 = 4354.84.
-- 5: West, the same period, 5000: nothing won yet: 0, pacing 0.
-- 6: Sales, a period starting in 60 days: nothing elapsed, pacing and
--    projection null.
-- 7: Ada, a zero quota: attainment and pacing null, not an error.
INSERT INTO salesmgmt.quota (quota_id, rep_id, team_id, period_start, period_end, amount, currency) VALUES
    (1, 2, NULL, pg_temp.q(-2)::date, pg_temp.q(-1)::date - 1, 4000, 'USD'),
    (2, 3, NULL, pg_temp.q(-2)::date, pg_temp.q(-1)::date - 1, 2000, 'EUR'),
    (3, NULL, 2, pg_temp.q(-2)::date, pg_temp.q(-1)::date - 1, 10000, 'USD'),
    (4, 5, NULL, current_date - 30, current_date + 59, 9000, 'USD'),
    (5, NULL, 4, current_date - 30, current_date + 59, 5000, 'USD'),
    (6, NULL, 1, current_date + 60, current_date + 149, 1000, 'USD'),
    (7, 1, NULL, current_date - 30, current_date + 59, 0, 'USD');
SELECT quota_id, level, rep_id, team_id, quota_amount, won_amount, attainment, remaining_amount,
       elapsed_share, pacing, projected_amount, currency
  FROM salesmgmt.quota_attainment ORDER BY quota_id;
SELECT quota_id, period_days, elapsed_days FROM salesmgmt.quota_attainment WHERE quota_id >= 4 ORDER BY quota_id;

-- --------------------------------------------------------- pipeline coverage
-- Open deals expected in the rest of the period (today .. period_end):
-- 4: Eve: deal 14 (4000 at 0.5), deal 15 (5000 at its own 0.4), half of
--    deal 18 (1500 at 0.5); not deal 16 (overdue) nor 17 (after the period):
--    10500 / 7500 = 1.40, weighted 4750 / 7500 = 0.63.
-- 5: West: Di's half of deal 18: 1500 / 5000 = 0.30, weighted 0.15.
-- 6: Sales, next period: Eve's deal 17 falls in it but Eve has no team: 0.
-- 1-3: periods over: nothing left to close in them, coverage 0; quota 2 is
--    met (nothing remains): null.  7: zero quota: null.
SELECT quota_id, days_left, quota_amount, won_amount, remaining_amount, open_pipeline,
       weighted_pipeline, coverage, weighted_coverage
  FROM salesmgmt.pipeline_coverage ORDER BY quota_id;

-- ------------------------------------------------------------- customers
INSERT INTO salesmgmt.payment (deal_id, kind, amount, currency, paid_at) VALUES
    (1, 'payment', 1000, 'USD', pg_temp.q(-4) + interval '30 days'),
    (3, 'payment', 2000, 'USD', pg_temp.q(-2) + interval '45 days'),
    (3, 'refund',   500, 'USD', pg_temp.q(-2) + interval '50 days'),
    (5, 'payment', 1000, 'EUR', pg_temp.q(-2) + interval '20 days'),
    (7, 'payment', 1500, 'USD', pg_temp.q(-1) + interval '50 days'),
    (9, 'payment',  400, 'USD', pg_temp.q(-4) + interval '10 days'),
    (10, 'payment', 600, 'USD', pg_temp.q(-4) + interval '10 days'),
    (10, 'refund',  600, 'USD', pg_temp.q(-4) + interval '20 days');
-- communication records, placed from this Monday (w(0)) so that the last
-- 30 and 90 days hold the same ones whatever the weekday
INSERT INTO salesmgmt.activity (activity_id, kind, account_id, rep_id, occurred_at, duration, outcome) VALUES
    (1, 'call',    1, 2, pg_temp.w(-13) + interval '10h', '30 minutes', 'interested'),
    (2, 'email',   1, 2, pg_temp.w(-12) + interval '11h', NULL, 'sent offer'),
    (3, 'meeting', 1, 3, pg_temp.w(-40) + interval '9h', '90 minutes', 'positive'),
    (4, 'visit',   2, 4, pg_temp.w(-6) + interval '15h', '2 hours', 'positive'),
    (5, 'demo',    2, 4, pg_temp.w(-100) + interval '10h', '45 minutes', 'follow-up'),
    (6, 'meeting', 4, 5, pg_temp.w(8) + interval '10h', NULL, 'planned'),
    (7, 'call',    1, 2, pg_temp.w(-14) + interval '9h', '15 minutes', 'no answer');
-- Buyers: accounts 1, 2, 4, 7, 8 (n = 5), score = 1 + floor(5 * (rank - 1) / 5).
-- Recency (last purchase, oldest first): 7 (q-4 +3d), 8 (q-4 +8d), 1 (q-2
--   +40d), 2 (q-1 +45d), 4 (today): R = 1, 2, 3, 4, 5.
-- Frequency: 4, 7, 8 bought once (rank 1: F = 1), 1 twice (rank 4: F = 4),
--   2 three times (rank 5: F = 5).
-- Lifetime value = revenue - refunds: 8: 600 - 600 = 0; 7: 400; 4: 1500;
--   1: 3000 - 500 = 2500; 2: 1100 + 1000 + 3000 = 5100: M = 1, 2, 3, 4, 5.
-- Segments (R, F): 7 (1,1) and 8 (2,1) Hibernating, 1 (3,4) and 2 (4,5)
--   Loyal customers, 4 (5,1) New customers; 3, 5, 6 never bought: Prospect.
-- Payments: 1: 1000 + 2000 = 3000, refunds 500; 2: 1000 EUR at 1.10 + 1500 = 2600.
-- Open pipeline (today's EUR rate 1.20): 3: 1200; 4: 4000 + 5000 + 1200 + 2000.
-- Last activity: account 1 the e-mail of Monday - 12 days; account 2 the
--   visit of Monday - 6 days; account 4 only has a future meeting: null.
SELECT account_id, won_deals, revenue, payments, refunds, net_payments, lifetime_value,
       open_deals, open_pipeline,
       days_since_last_activity - (current_date - date_trunc('week', now())::date) AS days_before_monday,
       recency_score AS r, frequency_score AS f, monetary_score AS m, rfm_cell, segment, currency
  FROM salesmgmt.customer_summary ORDER BY account_id;
SELECT account_id, days_since_last_purchase FROM salesmgmt.customer_summary WHERE account_id = 4;

-- the last touch: account 1: the e-mail (Bo, Monday - 12 days); in the last
-- 30 days activities 1, 2, 7 (3), in 90 days also 3 (4).  Account 2: the
-- visit (Monday - 6 days); the demo 100 days back is outside 90 days.
-- Account 4: a future meeting is no touch yet.
SELECT account_id, owner_rep_id,
       days_since_last_touch - (current_date - date_trunc('week', now())::date) AS days_before_monday,
       last_touch_kind, last_touch_rep_id, last_touch_outcome, touches_30_days, touches_90_days, touches_total
  FROM salesmgmt.account_last_touch ORDER BY account_id;

-- per rep and week (weeks from this one): Bo, 2 weeks ago: two calls
-- (15 + 30 minutes) and an e-mail: 3 records, 0.75 h.  Cy, 6 weeks ago
-- (Monday - 40 days): a meeting, 1.5 h.  Di: a visit last week (2 h), a
-- demo 15 weeks ago (0.75 h).  Eve: a meeting planned next week, no
-- duration.  Teams add up their subtree; Eve has no team.
SELECT level, rep_id, team_id, pg_temp.woff(week) AS week, calls, emails, meetings, visits, demos, notes, total, hours
  FROM salesmgmt.activity_summary
 ORDER BY level, rep_id, team_id, week;

-- ---------------------------------------------------------------- cohorts
-- Months from the start of the current quarter (-12 is the first month of
-- quarter -4).  Month -12: deals 1, 2, 9, 10 created; 1 won after 20 days,
-- 9 after 2, 10 after 6; 2 lost: 3/4 within 30 days.  Month -6: deals 3
-- (won after exactly 30 days: counts within 30), 4 (lost), 5 (won after 10),
-- 6 (won after 60), 12 (open): 2/5, 3/5, 3/5.  Month -4: deals 7 (won after
-- 55 days) and 8 (lost): 0, 1/2, 1/2.  Months without deals: null shares.
-- (Cohorts of this quarter are still maturing and are not shown.)
SELECT pg_temp.months(cohort_month, date_trunc('quarter', now())) AS month, pipeline_id, created_deals,
       won_within_30_days AS won30, won_within_60_days AS won60, won_within_90_days AS won90,
       won_to_date, lost_to_date, open_deals,
       share_won_30_days AS share30, share_won_60_days AS share60, share_won_90_days AS share90,
       share_won_to_date
  FROM salesmgmt.cohort_conversion
 WHERE cohort_month < date_trunc('quarter', now())
   AND (pipeline_id IS NULL OR created_deals > 0)
 ORDER BY month, pipeline_id NULLS LAST;
-- the grid reaches the current month; this quarter's cohort holds deals
-- 13-18 and its 90-day share is not known yet
SELECT count(DISTINCT cohort_month) = 13 + pg_temp.months(current_date, date_trunc('quarter', now())) AS months_to_now,
       sum(created_deals) FILTER (WHERE pipeline_id IS NULL AND cohort_month >= date_trunc('quarter', now())) AS created_this_quarter,
       bool_and(share_won_90_days IS NULL) FILTER (WHERE cohort_month >= date_trunc('quarter', now())) AS immature
  FROM salesmgmt.cohort_conversion;

-- ------------------------------------------------- customer satisfaction
-- Month -3 (from the current month): Bo: CSAT 5, 4, 2 and one response
-- without CSAT: 11/3 = 3.67, 2 of 3 satisfied; NPS 10, 9, 3, 7: promoters
-- 2, passive 1, detractor 1: 100 * (2 - 1) / 4 = 25.  Cy: CSAT 3, no NPS:
-- NPS null.  Month -1: Di: CSAT 1, NPS 0: -100.  Eve has no team: her
-- response counts for no team.  Months without responses: nulls.
INSERT INTO salesmgmt.csat_response (account_id, rep_id, csat, nps, responded_at) VALUES
    (1, 2, 5, 10, date_trunc('month', now()) - interval '3 months' + interval '5 days'),
    (1, 2, 4, 9,  date_trunc('month', now()) - interval '3 months' + interval '6 days'),
    (1, 2, 2, 3,  date_trunc('month', now()) - interval '3 months' + interval '7 days'),
    (1, 2, NULL, 7, date_trunc('month', now()) - interval '3 months' + interval '8 days'),
    (2, 3, 3, NULL, date_trunc('month', now()) - interval '3 months' + interval '9 days'),
    (2, 4, 1, 0,  date_trunc('month', now()) - interval '1 month' + interval '2 days'),
    (4, 5, 5, 10, date_trunc('month', now()) - interval '3 months' + interval '2 days');
SELECT level, rep_id, team_id, pg_temp.months(month, date_trunc('month', now())) AS month,
       responses, csat_responses, csat_avg, csat_satisfied_share, nps_responses, promoters, passives,
       detractors, nps
  FROM salesmgmt.customer_satisfaction
 ORDER BY level, rep_id, team_id, month;

-- ----------------------------------------------------------------- feedback
-- Month -2: pricing: resolved after 2 and 4 days, one open; 2 of 3
-- negative; median 3 days.  product: one triaged, one resolved after 1.5
-- days.  All categories: 5 received, 3 negative, median of 1.5, 2, 4 = 2
-- days.  Month -1: nothing: zeros, null shares.  This month: one open
-- complaint about service.
INSERT INTO salesmgmt.feedback (feedback_id, source, account_id, category, sentiment, body, status, resolution,
                                created_at, triaged_at, resolved_at) VALUES
    (1, 'customer', 1, 'pricing', 'negative', 'Too expensive', 'resolved', 'Volume discount offered',
        date_trunc('month', now()) - interval '2 months' + interval '1 day', NULL,
        date_trunc('month', now()) - interval '2 months' + interval '3 days'),
    (2, 'rep', 2, 'pricing', 'neutral', 'Asks for annual billing', 'resolved', 'Annual billing enabled',
        date_trunc('month', now()) - interval '2 months' + interval '2 days', NULL,
        date_trunc('month', now()) - interval '2 months' + interval '6 days'),
    (3, 'customer', 3, 'pricing', 'negative', 'Price rise not announced', 'open', NULL,
        date_trunc('month', now()) - interval '2 months' + interval '5 days', NULL, NULL),
    (4, 'manager', NULL, 'product', 'positive', 'Demo went well', 'triaged', NULL,
        date_trunc('month', now()) - interval '2 months' + interval '6 days',
        date_trunc('month', now()) - interval '2 months' + interval '7 days', NULL),
    (5, 'customer', 2, 'product', 'negative', 'Export is slow', 'resolved', 'Fixed in release 2.1',
        date_trunc('month', now()) - interval '2 months' + interval '7 days', NULL,
        date_trunc('month', now()) - interval '2 months' + interval '8 days 12 hours');
INSERT INTO salesmgmt.feedback (feedback_id, source, deal_id, category, sentiment, body)
    VALUES (6, 'customer', 18, 'service', 'negative', 'Nobody called back');
SELECT pg_temp.months(month, date_trunc('month', now())) AS month, category, received, open_count,
       triaged_count, resolved_count, negative_count, negative_share, median_time_to_resolve,
       median_days_to_resolve
  FROM salesmgmt.feedback_summary ORDER BY month, category NULLS LAST;

-- the workflow: feedback on a deal is about the deal's account
SELECT feedback_id, account_id, status, triaged_at IS NULL AS not_triaged, resolved_at IS NULL AS not_resolved
  FROM salesmgmt.feedback WHERE feedback_id = 6;
SELECT feedback_id, status, assignee_rep_id, triaged_at IS NOT NULL AS triaged_stamped
  FROM salesmgmt.triage_feedback(6, 4);
-- reassigning triaged feedback keeps it triaged
SELECT feedback_id, status, assignee_rep_id FROM salesmgmt.triage_feedback(6, 1);
SELECT feedback_id, status, resolution, resolved_at = now() AS resolved_now
  FROM salesmgmt.resolve_feedback(6, 'Called back, apologised, escalated to support');
-- open feedback may skip triage
SELECT feedback_id, status, triaged_at IS NULL AS triage_skipped FROM salesmgmt.resolve_feedback(3, 'Announced in the newsletter');

-- refused: each with its own error, nothing changes
SELECT salesmgmt.resolve_feedback(6, 'Again');
UPDATE salesmgmt.feedback SET resolution = 'Rewritten' WHERE feedback_id = 6;
UPDATE salesmgmt.feedback SET status = 'open' WHERE feedback_id = 4;
UPDATE salesmgmt.feedback SET status = 'triaged' WHERE feedback_id = 1;
SELECT salesmgmt.triage_feedback(1, 2);
SELECT salesmgmt.resolve_feedback(4, '   ');
SELECT salesmgmt.resolve_feedback(4, NULL);
SELECT salesmgmt.resolve_feedback(NULL, 'x');
SELECT salesmgmt.resolve_feedback(999, 'x');
SELECT salesmgmt.triage_feedback(4, 999);
SELECT salesmgmt.triage_feedback(4, NULL);
INSERT INTO salesmgmt.feedback (source, category, sentiment, body) VALUES ('partner', 'x', 'neutral', 'x');
INSERT INTO salesmgmt.feedback (source, category, sentiment, body) VALUES ('customer', 'x', 'angry', 'x');
INSERT INTO salesmgmt.feedback (source, category, sentiment, body) VALUES ('customer', ' ', 'neutral', 'x');
INSERT INTO salesmgmt.feedback (source, category, sentiment, body) VALUES ('customer', 'x', 'neutral', '');
INSERT INTO salesmgmt.feedback (source, category, sentiment, body, status) VALUES ('customer', 'x', 'neutral', 'x', 'resolved');
INSERT INTO salesmgmt.feedback (source, category, sentiment, body, resolved_at) VALUES ('customer', 'x', 'neutral', 'x', now());
INSERT INTO salesmgmt.feedback (source, deal_id, account_id, category, sentiment, body) VALUES ('customer', 18, 1, 'x', 'neutral', 'x');
INSERT INTO salesmgmt.feedback (source, category, sentiment, body, status, resolution, resolved_at)
    VALUES ('customer', 'x', 'neutral', 'x', 'resolved', 'done', now() + interval '1 day');
SELECT feedback_id, status, assignee_rep_id, resolution FROM salesmgmt.feedback ORDER BY feedback_id;

-- ------------------------------------------------------- currencies
-- a deal in a currency without a rate: the views say which rate is missing
BEGIN;
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
                            created_at, stage_entered_at, closed_at)
VALUES (99, 'Yen deal', 1, 2, 1, 3, 100000, 'JPY', '2020-01-10 12:00+00', '2020-01-15 12:00+00', '2020-01-15 12:00+00');
SELECT count(*) FROM salesmgmt.win_rates_by;
ROLLBACK;
-- another reporting currency: conversions do not chain through a third
-- currency, so GBP needs a rate to EUR; USD converts by dividing by the
-- EUR->USD rate of the day (deal 1: 1000 / 1.10 = 909.09, deal 3: 2000 /
-- 1.10 = 1818.18, deal 4: 909.09)
SET salesmgmt.reporting_currency = 'EUR';
DO $$
BEGIN
    PERFORM count(*) FROM salesmgmt.win_rates_by;
EXCEPTION WHEN invalid_parameter_value THEN
    -- the day is deal 6's close, which moves with the calendar
    RAISE NOTICE '%', regexp_replace(SQLERRM, '\d{4}-\d{2}-\d{2}', 'its close date');
END
$$;
INSERT INTO salesmgmt.currency_rate VALUES ('GBP', 'EUR', pg_temp.q(-8)::date, 1.25);
SELECT pg_temp.qoff(quarter) AS q, won_amount, lost_amount, currency
  FROM salesmgmt.win_rates_by WHERE level = 'rep' AND rep_id = 2 AND pipeline_id = 1 AND won_deals + lost_deals > 0
 ORDER BY q;
RESET salesmgmt.reporting_currency;

-- every view and column of the analytics is documented, and every view
-- reads with the querying user's rights
CREATE TEMP TABLE analytics_view AS
SELECT v::regclass AS oid FROM unnest(ARRAY['salesmgmt.reporting_rate', 'salesmgmt.team_closure', 'salesmgmt.deal_facts',
    'salesmgmt.win_rates_by', 'salesmgmt.sales_velocity', 'salesmgmt.quota_rep', 'salesmgmt.quota_attainment',
    'salesmgmt.pipeline_coverage', 'salesmgmt.customer_summary', 'salesmgmt.customer_satisfaction', 'salesmgmt.rep_rollup',
    'salesmgmt.activity_summary', 'salesmgmt.account_last_touch', 'salesmgmt.cohort_conversion',
    'salesmgmt.feedback_summary']) AS v;
SELECT c.relname, a.attname
  FROM pg_class c
  JOIN analytics_view v ON v.oid = c.oid
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE col_description(c.oid, a.attnum) IS NULL OR obj_description(c.oid, 'pg_class') IS NULL;
SELECT c.relname, c.reloptions FROM pg_class c JOIN analytics_view v ON v.oid = c.oid
 WHERE NOT coalesce(c.reloptions @> ARRAY['security_invoker=true'], false);

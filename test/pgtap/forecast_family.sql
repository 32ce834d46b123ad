-- pgTAP: salesmgmt.forecast(..., p_group => 'product_family'): each deal's
-- amount split by its lines' share per family, the deals without lines in
-- "(none)", the quotas of each family, the as-of path, snapshots by family
-- and their accuracy, and bad input.
-- Every figure below is computed by hand in the comments.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SELECT plan(23);
SET LOCAL salesmgmt.reporting_currency = 'USD';

INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Ada', 1), (2, 'Bo', 1);
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
INSERT INTO salesmgmt.pipeline (pipeline_id, name) VALUES (1, 'New business');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (1, 1, 'Qualify', 1, 0.10, 'pipeline', 'open'),
    (2, 1, 'Propose', 2, 0.50, 'best_case', 'open'),
    (3, 1, 'Commit', 3, 0.80, 'commit', 'open'),
    (4, 1, 'Won', 4, 1, 'closed', 'won'),
    (5, 1, 'Lost', 5, 0, 'omitted', 'lost');
INSERT INTO salesmgmt.product (product_id, sku, name, family) VALUES
    (1, 'SEAT', 'CRM seat', 'CRM'), (2, 'ANL', 'Analytics', 'Analytics'), (3, 'TRN', 'Training day', 'Services');
INSERT INTO salesmgmt.price_book (price_book_id, name, currency, is_default) VALUES (1, 'List USD', 'USD', true);
INSERT INTO salesmgmt.price_book_entry (price_book_id, product_id, min_quantity, unit_price) VALUES
    (1, 1, 0, 100), (1, 2, 0, 1000), (1, 3, 0, 800);

-- D1 Ada: proposal on Jan 10th, 2000 = CRM 1000 + Analytics 1000, commit on Feb 1st
-- D3 Bo: proposal on Jan 5th at 1000; its lines now add up to 300 (100 per family)
-- D4 Ada: no lines, 500, qualified Jan 15th, won Feb 5th
-- D5 Bo: proposal Jan 20th, 2800 = CRM 2000 + Services 800, won Feb 20th
-- D6 Bo: proposal Jan 20th at 100, one Analytics line (1000), lost Feb 21st
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id,
                            amount, currency, expected_close_date, stage_entered_at) VALUES
    (1, 'D1', 1, 1, 1, 2, 2000, 'USD', '2025-02-15', '2025-01-10'),
    (3, 'D3', 1, 2, 1, 2, 1000, 'USD', '2025-03-10', '2025-01-05'),
    (4, 'D4', 1, 1, 1, 1,  500, 'USD', '2025-03-31', '2025-01-15'),
    (5, 'D5', 1, 2, 1, 2, 2800, 'USD', '2025-02-28', '2025-01-20'),
    (6, 'D6', 1, 2, 1, 2,  100, 'USD', '2025-02-28', '2025-01-20');
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity, unit_price) VALUES
    (1, 1, 10, NULL), (1, 2, 1, NULL),
    (3, 1, 1, 100), (3, 2, 1, 100), (3, 3, 1, 100),
    (5, 1, 20, NULL), (5, 3, 1, NULL),
    (6, 2, 1, NULL);
UPDATE salesmgmt.deal SET stage_id = 3, stage_entered_at = '2025-02-01 09:00' WHERE deal_id = 1;
UPDATE salesmgmt.deal SET stage_id = 4, stage_entered_at = '2025-02-05 10:00' WHERE deal_id = 4;
UPDATE salesmgmt.deal SET stage_id = 4, stage_entered_at = '2025-02-20 10:00' WHERE deal_id = 5;
UPDATE salesmgmt.deal SET stage_id = 5, stage_entered_at = '2025-02-21 10:00' WHERE deal_id = 6;
SELECT results_eq($$SELECT deal_id, amount FROM salesmgmt.deal ORDER BY deal_id$$,
                  $$VALUES (1::bigint, 2000.00::numeric), (3, 300.00), (4, 500.00), (5, 2800.00), (6, 1000.00)$$,
                  'the deals with lines have the sum of their lines as amount');

-- quotas: CRM per rep (Ada 4000 + Bo 1000 roll up to 5000), Analytics set
-- for the team (5000), Services for Bo (1600), Training for Ada (300, no
-- deal), and an all-products quota (10000) that belongs to no family
INSERT INTO salesmgmt.quota (rep_id, team_id, period_start, period_end, amount, product_family) VALUES
    (1, NULL, '2025-01-01', '2025-03-31', 4000, 'CRM'),
    (2, NULL, '2025-01-01', '2025-03-31', 1000, 'CRM'),
    (NULL, 1, '2025-01-01', '2025-03-31', 5000, 'Analytics'),
    (2, NULL, '2025-01-01', '2025-03-31', 1600, 'Services'),
    (1, NULL, '2025-01-01', '2025-03-31', 300, 'Training'),
    (1, NULL, '2025-01-01', '2025-03-31', 10000, NULL);

-- now: D1 commit 1000 + 1000 (weighted 800 each), D3 best case 100 per
-- family (weighted 50), D5 won 2000 CRM + 800 Services, D4 won 500 without lines
SELECT results_eq(
    $$SELECT group_id, group_name, closed_won, commit, best_case, pipeline, weighted, quota, attainment, gap, deal_count
        FROM salesmgmt.forecast('2025-01-01', '2025-03-31', 'product_family')$$,
    $$VALUES (NULL::bigint, 'Analytics'::text, 0.00::numeric, 1000.00::numeric, 100.00::numeric, 0.00::numeric, 850.00::numeric,
              5000.00::numeric, 0.0000::numeric, 4000.00::numeric, 2::bigint),
             (NULL, 'CRM', 2000.00, 1000.00, 100.00, 0.00, 850.00, 5000.00, 0.4000, 2000.00, 3),
             (NULL, 'Services', 800.00, 0.00, 100.00, 0.00, 50.00, 1600.00, 0.5000, 800.00, 2),
             (NULL, 'Training', 0.00, 0.00, 0.00, 0.00, 0.00, 300.00, 0.0000, 300.00, 0),
             (NULL, '(none)', 500.00, 0.00, 0.00, 0.00, 0.00, NULL, NULL, NULL, 1)$$,
    'by product family: the deals split by their lines, families by name, (none) last');
SELECT results_eq(
    $$SELECT sum(closed_won), sum(commit), sum(best_case), sum(weighted)
        FROM salesmgmt.forecast('2025-01-01', '2025-03-31', 'product_family')$$,
    $$SELECT closed_won, commit, best_case, weighted FROM salesmgmt.forecast('2025-01-01', '2025-03-31', 'total')$$,
    'the families add up to the total');
SELECT is((SELECT quota FROM salesmgmt.forecast('2025-01-01', '2025-03-31', 'total')), 10000.00,
          'the total''s quota is the all-products quota: family quotas are not added to it');
SELECT is((SELECT quota FROM salesmgmt.forecast('2025-01-01', '2025-03-31', 'rep') WHERE group_id = 2), NULL::numeric,
          'a rep with family quotas only has no all-products quota');
SELECT results_eq(
    $$SELECT adjusted_commit, adjusted_commit_forecast, adjusted_gap, period_start, period_end, currency
        FROM salesmgmt.forecast('2025-01-01', '2025-03-31', 'product_family') WHERE group_name = 'CRM'$$,
    $$VALUES (NULL::numeric, NULL::numeric, NULL::numeric, '2025-01-01'::date, '2025-03-31'::date, 'USD'::char(3))$$,
    'adjustments are per rep or team: null per family');
SELECT is((SELECT string_agg(group_name || '=' || closed_won, ',' ORDER BY group_name)
             FROM salesmgmt.forecast('2025-02-01', '2025-02-28', 'product_family')),
          '(none)=500.00,Analytics=0.00,CRM=2000.00,Services=800.00',
          'a shorter period: only its deals (the quarter''s Training quota is not inside it)');

-- as of January 31st: D1 best case 2000 (1000 + 1000); D3 best case at its
-- amount then, 1000.00, split by its lines now in thirds: 333.33 each and
-- the cent left to the family first by name (Analytics 333.34); D5 best
-- case 2000 + 800; D6, lost only on Feb 21st, best case at its amount then,
-- 100, all Analytics;
-- D4 in the pipeline at 10% (500, weighted 50).
-- Weighted CRM: 500 + 166.665 + 1000 = 1666.665, rounded once: 1666.67.
SELECT results_eq(
    $$SELECT group_name, closed_won, commit, best_case, pipeline, weighted, deal_count
        FROM salesmgmt.forecast('2025-01-01', '2025-03-31', 'product_family', '2025-01-31')$$,
    $$VALUES ('Analytics'::text, 0.00::numeric, 0.00::numeric, 1433.34::numeric, 0.00::numeric, 716.67::numeric, 3::bigint),
             ('CRM', 0.00, 0.00, 3333.33, 0.00, 1666.67, 3),
             ('Services', 0.00, 0.00, 1133.33, 0.00, 566.67, 2),
             ('Training', 0.00, 0.00, 0.00, 0.00, 0.00, 0),
             ('(none)', 0.00, 0.00, 0.00, 500.00, 50.00, 1)$$,
    'as of a past moment: the amount then split by the lines'' shares, parts in whole cents');
SELECT is((SELECT sum(best_case) FROM salesmgmt.forecast('2025-01-01', '2025-03-31', 'product_family', '2025-01-31')),
          (SELECT best_case FROM salesmgmt.forecast('2025-01-01', '2025-03-31', 'total', '2025-01-31')),
          'as of: the parts add up to the deals, cent for cent');

-- another currency: the split happens before the conversion
INSERT INTO salesmgmt.currency_rate VALUES ('USD', 'EUR', '2025-01-01', 0.5);
SELECT results_eq(
    $$SELECT group_name, closed_won, commit FROM salesmgmt.forecast('2025-01-01', '2025-03-31', 'product_family', NULL, 'EUR')
       WHERE group_name IN ('CRM', '(none)')$$,
    $$VALUES ('CRM'::text, 1000.00::numeric, 500.00::numeric), ('(none)', 250.00, 0.00)$$,
    'in another reporting currency');

-- no lines at all: every deal in (none)
DELETE FROM salesmgmt.quota;
SAVEPOINT nolines;
ALTER TABLE salesmgmt.deal_line DISABLE TRIGGER USER;
DELETE FROM salesmgmt.deal_line;
ALTER TABLE salesmgmt.deal_line ENABLE TRIGGER USER;
SELECT results_eq(
    $$SELECT group_name, closed_won, commit, deal_count FROM salesmgmt.forecast('2025-01-01', '2025-03-31', 'product_family')$$,
    $$VALUES ('(none)'::text, 3300.00::numeric, 2000.00::numeric, 4::bigint)$$,
    'without lines every deal counts in (none)');
ROLLBACK TO SAVEPOINT nolines;

-- snapshots by product family: families have no id (group_id null),
-- group_name carries the family, and forecast_accuracy matches each family
-- row with what that family has won since, by name.  Training has a quota
-- and no deal; Analytics never wins.
INSERT INTO salesmgmt.quota (rep_id, team_id, period_start, period_end, amount, product_family) VALUES
    (1, NULL, '2025-01-01', '2025-03-31', 300, 'Training');
-- at the snapshot: D1 commit 1000 CRM + 1000 Analytics, D3 best case 100
-- per family, D5 won 2000 CRM + 800 Services, D4 won 500 without lines,
-- Training has a quota and no deal
SELECT ok(salesmgmt.snapshot_forecast('2025-01-01', '2025-03-31', 'product_family') > 0,
          'snapshot_forecast takes the product_family grouping');
SELECT results_eq(
    $$SELECT line_no, group_kind, group_id, group_name, closed_won, commit, commit_forecast, quota, deal_count
        FROM salesmgmt.forecast_snapshot ORDER BY line_no$$,
    $$VALUES (1, 'product_family'::text, NULL::bigint, 'Analytics'::text, 0.00::numeric, 1000.00::numeric, 1000.00::numeric, NULL::numeric, 2::bigint),
             (2, 'product_family', NULL, 'CRM', 2000.00, 1000.00, 3000.00, NULL, 3),
             (3, 'product_family', NULL, 'Services', 800.00, 0.00, 800.00, NULL, 2),
             (4, 'product_family', NULL, 'Training', 0.00, 0.00, 0.00, 300.00, 0),
             (5, 'product_family', NULL, '(none)', 500.00, 0.00, 500.00, NULL, 1)$$,
    'one snapshot row per family: group_id null, the family in group_name, (none) last');

-- since: D1 is lost on March 1st (Analytics never wins anything); D7, Bo,
-- 800 of Services, won March 5th; D8, Ada, 250 without lines, won March 6th
UPDATE salesmgmt.deal SET stage_id = 5, stage_entered_at = '2025-03-01 09:00' WHERE deal_id = 1;
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id,
                            amount, currency, expected_close_date, stage_entered_at) VALUES
    (7, 'D7', 1, 2, 1, 2, 800, 'USD', '2025-03-05', '2025-02-01'),
    (8, 'D8', 1, 1, 1, 2, 250, 'USD', '2025-03-06', '2025-02-01');
INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) VALUES (7, 3, 1);
UPDATE salesmgmt.deal SET stage_id = 4, stage_entered_at = '2025-03-05 10:00' WHERE deal_id = 7;
UPDATE salesmgmt.deal SET stage_id = 4, stage_entered_at = '2025-03-06 10:00' WHERE deal_id = 8;

-- Analytics: forecast 1000, won 0: error -1000, accuracy null
-- CRM: forecast 3000, won 2000 (D5): error -1000, accuracy 1 - 1000/2000 = 0.5
-- Services: forecast 800, won 1600 (D5 + D7): error 800, accuracy 0.5
-- Training: forecast 0, won 0: accuracy null
-- (none): forecast 500, won 750 (D4 + D8): accuracy 1 - 250/750 = 0.6667
SELECT results_eq(
    $$SELECT line_no, group_name, forecast, actual, error, accuracy
        FROM salesmgmt.forecast_accuracy ORDER BY line_no$$,
    $$VALUES (1, 'Analytics'::text, 1000.00::numeric, 0::numeric, -1000.00::numeric, NULL::numeric),
             (2, 'CRM', 3000.00, 2000.00, -1000.00, 0.5000),
             (3, 'Services', 800.00, 1600.00, 800.00, 0.5000),
             (4, 'Training', 0.00, 0, 0.00, NULL),
             (5, '(none)', 500.00, 750.00, 250.00, 0.6667)$$,
    'forecast_accuracy matches each family with what that family won since, by name, once');
SELECT is((SELECT count(*) FROM salesmgmt.forecast_accuracy), 5::bigint,
          'one accuracy row per snapshot row (families are not matched on their null group_id)');

-- a snapshot by rep beside it still matches by id
SELECT ok(salesmgmt.snapshot_forecast('2025-01-01', '2025-03-31', 'rep') > 0, 'a snapshot by rep beside it');
SELECT results_eq(
    $$SELECT group_id, actual FROM salesmgmt.forecast_accuracy WHERE group_kind = 'rep' ORDER BY line_no$$,
    $$VALUES (1::bigint, 750.00::numeric), (2, 3600.00)$$,
    'rows by rep are matched by id as before');

-- bad input
SELECT throws_ok($$SELECT salesmgmt.snapshot_forecast('2025-01-01', '2025-03-31', 'family')$$, '22023',
                 NULL, 'an unknown grouping: 22023, nothing stored');
SELECT throws_ok($$SELECT salesmgmt.snapshot_forecast('2025-01-01', '2025-03-31', NULL)$$, '22004',
                 NULL, 'a null grouping: 22004');
SELECT is((SELECT count(*) FROM salesmgmt.forecast_snapshot), 7::bigint,
          'the refused snapshots stored nothing');

-- bad input
SELECT throws_ok($$SELECT * FROM salesmgmt.forecast('2025-01-01', '2025-03-31', 'family')$$, '22023',
                 'unknown forecast grouping "family"', 'an unknown grouping name: 22023');
SELECT throws_ok($$SELECT * FROM salesmgmt.forecast('2025-01-01', '2025-03-31', 'Product_Family')$$, '22023',
                 NULL, 'grouping names are lower case: 22023');
SELECT throws_ok($$SELECT * FROM salesmgmt.forecast('2025-03-31', '2025-01-01', 'product_family')$$, '22023',
                 NULL, 'a period that ends before it starts: 22023');

SELECT * FROM finish();
ROLLBACK;

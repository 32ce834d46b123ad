-- test/sql/commission_edges.sql: a small hand-made data set for
-- test/t/040_commission_reference.pl that reaches what the generated
-- benchmark year does not: payments and refunds crossing tiers downwards
-- (negative catch-ups of a retroactive tier), a plan without quota, a zero
-- quota, quarterly quotas prorated into a monthly plan and converted by
-- the reverse pair, plans without tiers paying overrides only, an override
-- plan on payment basis, flat and rate SPIFFs with validity windows, a
-- payment in another currency than its deal, two refunds of one deal (the
-- second clawback limited to what is left), two guarantees of one rep and a
-- recoverable draw outstanding into the next period.
-- Two quarters, 2025-Q1 and 2025-Q2, are run one after the other.
\set ON_ERROR_STOP on
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Company');
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES (2, 'West', 1);
INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES
  (1, 'Vera', 1), (2, 'Rita', 2), (3, 'Ada', 2), (4, 'Ben', 2), (5, 'Cy', 2), (6, 'Dee', 2);
UPDATE salesmgmt.team SET manager_rep_id = team_id;
INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (1, 'Sales', 'free');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
  (1, 1, 'Negotiation', 1, 0.6, 'commit', 'open'),
  (2, 1, 'Won', 2, 1, 'closed', 'won'),
  (3, 1, 'Lost', 3, 0, 'omitted', 'lost');
INSERT INTO salesmgmt.currency_rate (currency, quote_currency, valid_from, rate) VALUES
  ('EUR', 'USD', '2024-12-01', 1.0800000000), ('EUR', 'USD', '2025-02-10', 1.1100000000),
  ('USD', 'GBP', '2024-12-01', 0.7900000000), ('USD', 'GBP', '2025-03-01', 0.7700000000),
  ('EUR', 'GBP', '2024-12-01', 0.8500000000);

INSERT INTO salesmgmt.commission_plan (plan_id, name, basis, period, tier_mode, cap, clawback_days, override_rate) VALUES
  (1, 'Collections retro', 'payment', 'month', 'marginal', 60, NULL, NULL),
  (2, 'No quota', 'booking', 'quarter', 'marginal', NULL, 30, NULL),
  (3, 'Zero quota', 'booking', 'month', 'retroactive', NULL, 90, NULL),
  (4, 'Prorated', 'booking', 'month', 'marginal', NULL, 90, NULL),
  (5, 'Team lead', 'booking', 'quarter', 'marginal', NULL, 90, 0.03),
  (6, 'Company', 'payment', 'quarter', 'marginal', NULL, NULL, 0.01);
INSERT INTO salesmgmt.commission_tier (plan_id, attainment_from, attainment_to, rate, mode) VALUES
  (1, 0, 0.5, 0.02, NULL), (1, 0.5, 1.0, 0.05, 'retroactive'), (1, 1.0, NULL, 0.08, NULL),
  (2, 0, 1.0, 0.04, NULL), (2, 1.0, NULL, 0.10, NULL),
  (3, 0, 1.0, 0.03, NULL), (3, 1.0, NULL, 0.06, NULL),
  (4, 0, 0.5, 0.01, 'retroactive'), (4, 0.5, 1.0, 0.04, 'retroactive'), (4, 1.0, NULL, 0.07, 'marginal');
INSERT INTO salesmgmt.commission_spiff (spiff_id, plan_id, name, condition, amount, rate, valid_from, valid_to) VALUES
  (1, 2, 'Everything', '{}', 100, NULL, NULL, NULL),
  (2, 2, 'Pipeline one in February', '{"pipeline_id": 1}', NULL, 0.01, '2025-02-01', '2025-02-28'),
  (3, 1, 'Analytics collections', '{"extra": {"product": "analytics"}}', 300, NULL, NULL, NULL),
  (4, 4, 'Big analytics', '{"extra": {"product": "analytics"}, "account_id": 1}', NULL, 0.02, NULL, NULL);
INSERT INTO salesmgmt.commission_assignment (rep_id, plan_id, valid_from, valid_to) VALUES
  (1, 6, '2025-01-01', NULL), (2, 5, '2025-01-01', NULL),
  (3, 1, '2025-01-01', NULL), (4, 2, '2025-01-01', NULL),
  (5, 3, '2025-01-01', '2025-02-28'), (5, 4, '2025-03-01', NULL), (6, 4, '2025-01-01', NULL);
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount, currency) VALUES
  (3, '2025-01-01', '2025-01-31', 10000, 'USD'), (3, '2025-02-01', '2025-02-28', 10000, 'USD'),
  (5, '2025-01-01', '2025-03-31', 0, 'USD'),
  (6, '2025-01-01', '2025-03-31', 30000, 'GBP'), (6, '2025-04-01', '2025-06-30', 12000, 'EUR');
INSERT INTO salesmgmt.commission_draw (draw_id, rep_id, period_start, period_end, amount, recoverable) VALUES
  (1, 4, '2025-01-01', '2025-01-31', 500, false), (2, 4, '2025-02-01', '2025-02-28', 700, false),
  (3, 6, '2025-01-01', '2025-03-31', 5000, true), (4, 6, '2025-04-01', '2025-06-30', 1000, true);

INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency,
                            created_at, stage_entered_at, closed_at, extra) VALUES
  -- Ada, payment basis: paid 6,000 + 5,000 (in EUR), refunded 3,000 and 4,000
  (1, 'Ada collections', 1, 3, 1, 2, 12000, 'USD', '2025-01-01', '2025-01-03', '2025-01-03', '{"product": "analytics"}'),
  (2, 'Ada February', 1, 3, 1, 2, 9000, 'USD', '2025-01-20', '2025-02-01', '2025-02-01', '{}'),
  -- Ben, no quota, EUR, refunded twice (60% and 60%: the second is limited)
  (3, 'Ben EUR', 1, 4, 1, 2, 20000, 'EUR', '2025-01-02', '2025-02-12', '2025-02-12', '{}'),
  (4, 'Ben small', 1, 4, 1, 2, 2500, 'USD', '2025-01-02', '2025-01-15', '2025-01-15', '{}'),
  -- Cy: zero quota in January and February, then the prorated plan; split with Dee
  (5, 'Cy zero', 1, 5, 1, 2, 7000, 'USD', '2025-01-02', '2025-01-25', '2025-01-25', '{}'),
  (6, 'Cy and Dee', 1, 5, 1, 2, 16000, 'GBP', '2025-02-01', '2025-03-05', '2025-03-05', '{"product": "analytics"}'),
  -- Dee: prorated monthly quota 10,000 GBP; retroactive tiers crossed up, then a refund
  (7, 'Dee one', 1, 6, 1, 2, 6000, 'USD', '2025-01-02', '2025-01-10', '2025-01-10', '{"product": "analytics"}'),
  (8, 'Dee two', 1, 6, 1, 2, 9000, 'USD', '2025-01-02', '2025-01-28', '2025-01-28', '{}'),
  (9, 'Dee April', 1, 6, 1, 2, 4000, 'EUR', '2025-04-01', '2025-04-08', '2025-04-08', '{}');
INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share) VALUES (6, 5, 0.6), (6, 6, 0.4);
INSERT INTO salesmgmt.payment (deal_id, payment_id, kind, amount, currency, paid_at) VALUES
  (1, 1, 'payment', 6000, 'USD', '2025-01-05 10:00'),
  (1, 2, 'payment', 4600, 'EUR', '2025-01-12 10:00'),
  (1, 3, 'refund', 3000, 'USD', '2025-01-20 10:00'),
  (1, 4, 'refund', 4000, 'USD', '2025-01-27 10:00'),
  (2, 5, 'payment', 9000, 'USD', '2025-02-03 10:00'),
  (2, 6, 'refund', 9000, 'USD', '2025-02-05 10:00'),
  (3, 7, 'refund', 12000, 'EUR', '2025-02-20 10:00'),
  (3, 8, 'refund', 12000, 'EUR', '2025-02-25 10:00'),
  (8, 9, 'refund', 4500, 'USD', '2025-02-10 10:00'),
  (7, 10, 'refund', 3000, 'USD', '2025-04-05 10:00');

-- core: the CRM data model holds its constraints and refuses bad input
-- with a clear error, leaving nothing behind.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- a small world: a team tree, reps, an account, a pipeline
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES (2, 'East', 1), (3, 'East Enterprise', 2);
INSERT INTO salesmgmt.rep (rep_id, name, email, team_id) VALUES
    (1, 'Ada Manager', 'ada@example.com', 1),
    (2, 'Bo Rep', 'bo@example.com', 3),
    (3, 'Cy Rep', 'cy@example.com', 3);
UPDATE salesmgmt.team SET manager_rep_id = 1 WHERE team_id = 1;
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id, industry) VALUES (1, 'Acme Ltd', 2, 'Manufacturing');
INSERT INTO salesmgmt.contact (account_id, name, email, title) VALUES (1, 'Dee Buyer', 'dee@acme.example', 'CFO');
INSERT INTO salesmgmt.pipeline (pipeline_id, name) VALUES (1, 'New business');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (1, 1, 'Qualify', 1, 0.10, 'pipeline', 'open'),
    (2, 1, 'Propose', 2, 0.50, 'best_case', 'open'),
    (3, 1, 'Won', 3, 1, 'closed', 'won'),
    (4, 1, 'Lost', 4, 0, 'omitted', 'lost');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency)
    VALUES (1, 'Acme rollout', 1, 2, 1, 1, 1000.00, 'USD');

-- bad input: each refused with a constraint that says what was violated
\set VERBOSITY terse
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
    VALUES ('negative', 1, 2, 1, 1, -5);
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount, currency)
    VALUES ('bad currency', 1, 2, 1, 1, 5, 'XYZ');
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount, probability)
    VALUES ('too likely', 1, 2, 1, 1, 5, 1.5);
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id)
    VALUES ('no such account', 999, 2, 1, 1);
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id)
    VALUES ('   ', 1, 2, 1, 1);
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, extra)
    VALUES ('extra not an object', 1, 2, 1, 1, '[1,2]');
INSERT INTO salesmgmt.stage (pipeline_id, name, position, probability) VALUES (1, 'Odd', 9, -0.1);
INSERT INTO salesmgmt.stage (pipeline_id, name, position, probability, outcome, forecast_category)
    VALUES (1, 'Won again', 9, 1, 'won', 'commit');
INSERT INTO salesmgmt.pipeline (name, transition_policy) VALUES ('p', 'anything');
INSERT INTO salesmgmt.activity (kind, account_id, rep_id) VALUES ('fax', 1, 2);
INSERT INTO salesmgmt.activity (kind, account_id, rep_id, duration) VALUES ('call', 1, 2, '-5 minutes');
INSERT INTO salesmgmt.payment (deal_id, kind, amount, currency) VALUES (1, 'payment', 0, 'USD');
INSERT INTO salesmgmt.payment (deal_id, kind, amount, currency) VALUES (1, 'chargeback', 10, 'USD');
INSERT INTO salesmgmt.quota (rep_id, team_id, period_start, period_end, amount) VALUES (2, 1, '2026-01-01', '2026-03-31', 10);
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) VALUES (2, '2026-03-31', '2026-01-01', 10);
INSERT INTO salesmgmt.sales_task (rep_id, title, status, completed_at) VALUES (2, 'Call Dee', 'open', now());
INSERT INTO salesmgmt.rep (name, email) VALUES ('No Mail', 'not-an-email');

\set VERBOSITY default
-- a team cannot be its own ancestor, directly or through the tree
UPDATE salesmgmt.team SET parent_team_id = 1 WHERE team_id = 1;
UPDATE salesmgmt.team SET parent_team_id = 3 WHERE team_id = 1;

-- split shares must sum to 1 at commit; 0.9 is refused as a whole
BEGIN;
INSERT INTO salesmgmt.deal_split VALUES (1, 2, 0.6), (1, 3, 0.3);
COMMIT;
SELECT count(*) AS splits_after_refused_commit FROM salesmgmt.deal_split;
-- entered one by one in a transaction, a correct split is accepted
BEGIN;
INSERT INTO salesmgmt.deal_split VALUES (1, 2, 0.6);
INSERT INTO salesmgmt.deal_split VALUES (1, 3, 0.4);
COMMIT;
SELECT deal_id, rep_id, share FROM salesmgmt.deal_split ORDER BY rep_id;
-- removing one side alone breaks the total
DELETE FROM salesmgmt.deal_split WHERE rep_id = 3;
SELECT count(*) AS splits_kept FROM salesmgmt.deal_split;

-- currency conversion uses the rate valid on the day, in either direction
INSERT INTO salesmgmt.currency_rate VALUES ('EUR', 'USD', '2026-01-01', 1.10), ('EUR', 'USD', '2026-02-01', 1.20);
SELECT salesmgmt.convert_amount(100, 'EUR', 'USD', '2026-01-15') AS jan,
       salesmgmt.convert_amount(100, 'EUR', 'USD', '2026-02-15') AS feb,
       round(salesmgmt.convert_amount(120, 'USD', 'EUR', '2026-02-15'), 2) AS back,
       salesmgmt.convert_amount(100, 'USD', 'USD', '2026-02-15') AS same;
SELECT salesmgmt.convert_amount(100, 'EUR', 'USD', '2025-12-31');
SELECT salesmgmt.convert_amount(100, 'GBP', 'USD', '2026-02-15');
SELECT salesmgmt.convert_amount(100, NULL, 'USD', '2026-02-15');

-- nothing of the refused statements was left behind
SELECT (SELECT count(*) FROM salesmgmt.deal) AS deals,
       (SELECT count(*) FROM salesmgmt.stage) AS stages,
       (SELECT count(*) FROM salesmgmt.payment) AS payments,
       (SELECT count(*) FROM salesmgmt.activity) AS activities,
       (SELECT count(*) FROM salesmgmt.quota) AS quotas,
       (SELECT count(*) FROM salesmgmt.rep) AS reps;

-- every table and column of the extension is documented
SELECT c.relname, a.attname
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'salesmgmt'
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'v', 'm', 'p')
   AND col_description(c.oid, a.attnum) IS NULL
 ORDER BY 1, 2;
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'salesmgmt' AND c.relkind IN ('r', 'v', 'm', 'p')
   AND obj_description(c.oid, 'pg_class') IS NULL;

-- a team's manager must be a rep; a rep who manages a team cannot be deleted
UPDATE salesmgmt.team SET manager_rep_id = 999 WHERE team_id = 2;
DELETE FROM salesmgmt.rep WHERE rep_id = 1;
SELECT team_id, manager_rep_id FROM salesmgmt.team ORDER BY team_id;

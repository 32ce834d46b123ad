-- security_world.sql: the world of the security pgTAP suites, included
-- (\ir) after plan(): roles sec_* and a 3-level team tree Root (managed
-- by m1) > Mid (m2) > Leaf (m3), reps r4 in Leaf, r5 in Mid, r6 in Root,
-- and a second tree Other (m7) with r8.  m1 sees reps 1-6, m2 sees 2-5, m3
-- sees 3-4, r4 only 4.  Each rep r has account r and deals 10r+1, 10r+2;
-- r8 holds a 0.3 share of r4's deal 42.  Everything is rolled back with
-- the suite's transaction.

-- pgTAP keeps its bookkeeping in temporary tables of this session; the
-- roles we switch to must be able to write them.
DO $$
BEGIN
    EXECUTE format('GRANT ALL ON ALL TABLES IN SCHEMA %I TO PUBLIC', pg_my_temp_schema()::regnamespace);
    EXECUTE format('GRANT ALL ON ALL SEQUENCES IN SCHEMA %I TO PUBLIC', pg_my_temp_schema()::regnamespace);
END
$$;

CREATE ROLE sec_m1 LOGIN; CREATE ROLE sec_m2 LOGIN; CREATE ROLE sec_m3 LOGIN;
CREATE ROLE sec_r4 LOGIN; CREATE ROLE sec_r5 LOGIN; CREATE ROLE sec_r6 LOGIN;
CREATE ROLE sec_m7 LOGIN; CREATE ROLE sec_r8 LOGIN;
CREATE ROLE sec_admin LOGIN; CREATE ROLE sec_nobody LOGIN; CREATE ROLE sec_unmapped LOGIN;
GRANT salesmgmt_manager TO sec_m1, sec_m2, sec_m3, sec_m7;
GRANT salesmgmt_rep TO sec_r4, sec_r5, sec_r6, sec_r8, sec_unmapped;
GRANT salesmgmt_admin TO sec_admin;

INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Root'), (4, 'Other');
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES (2, 'Mid', 1);
INSERT INTO salesmgmt.team (team_id, name, parent_team_id) VALUES (3, 'Leaf', 2);
INSERT INTO salesmgmt.rep (rep_id, name, team_id, db_role) VALUES
    (1, 'M1', 1, 'sec_m1'), (2, 'M2', 2, 'sec_m2'), (3, 'M3', 3, 'sec_m3'),
    (4, 'R4', 3, 'sec_r4'), (5, 'R5', 2, 'sec_r5'), (6, 'R6', 1, 'sec_r6'),
    (7, 'M7', 4, 'sec_m7'), (8, 'R8', 4, 'sec_r8');
UPDATE salesmgmt.team SET manager_rep_id = team_id WHERE team_id IN (1, 2, 3);
UPDATE salesmgmt.team SET manager_rep_id = 7 WHERE team_id = 4;
INSERT INTO salesmgmt.pipeline (pipeline_id, name) VALUES (1, 'P');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
    (1, 1, 'Open', 1, 0.2, 'pipeline', 'open'), (2, 1, 'Won', 2, 1, 'closed', 'won');
-- one account and two deals per rep: deal 10*r+1 and 10*r+2 on account r
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) SELECT r, 'Account ' || r, r FROM generate_series(1, 8) r;
INSERT INTO salesmgmt.contact (account_id, name) SELECT r, 'Contact ' || r FROM generate_series(1, 8) r;
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, expected_close_date)
SELECT 10 * r + k, 'Deal ' || r || '-' || k, r, r, 1, 1, 100 * r + k, date '2026-02-15'
  FROM generate_series(1, 8) r, generate_series(1, 2) k;
-- r8 (other tree) shares deal 42 of r4 by a split
INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share) VALUES (42, 4, 0.7), (42, 8, 0.3);
INSERT INTO salesmgmt.payment (deal_id, amount, currency) SELECT 10 * r + 1, 10, 'USD' FROM generate_series(1, 8) r;
INSERT INTO salesmgmt.activity (kind, account_id, deal_id, rep_id) SELECT 'call', r, 10 * r + 1, r FROM generate_series(1, 8) r;
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount) SELECT r, '2026-01-01', '2026-03-31', 1000 FROM generate_series(1, 8) r;
INSERT INTO salesmgmt.quota (team_id, period_start, period_end, amount) SELECT t, '2026-01-01', '2026-03-31', 5000 FROM generate_series(1, 4) t;
INSERT INTO salesmgmt.sales_task (rep_id, assigned_by, title) SELECT r, 1, 'Call back ' || r FROM generate_series(1, 8) r;
SET CONSTRAINTS ALL IMMEDIATE;


-- core_shared: the shared core that every concern uses.  Conversion is one
-- C implementation (convert_amount, forecasts, commissions, scorecards);
-- the default reporting currency is defined once, in the library; a
-- set-returning function refuses an SQL declaration whose columns are not
-- those its C code fills.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS salesmgmt CASCADE;
CREATE EXTENSION salesmgmt;
RESET client_min_messages;
SET salesmgmt.reporting_currency = 'USD';  -- the test relies on it, whatever postgresql.conf says
\set VERBOSITY default
\set SHOW_CONTEXT never
SET DateStyle = ISO;

INSERT INTO salesmgmt.currency_rate VALUES
    ('EUR', 'USD', '2026-01-01', 1.10), ('EUR', 'USD', '2026-02-01', 1.20),
    ('USD', 'JPY', '2026-01-01', 150);

-- the direct pair multiplies, the reverse pair divides, the latest rate
-- valid on the day applies, the same currency and a null amount pass
SELECT salesmgmt.convert_amount(100, 'EUR', 'USD', '2026-01-31') AS jan,
       salesmgmt.convert_amount(100, 'EUR', 'USD', '2026-02-01') AS feb,
       salesmgmt.convert_amount(110, 'USD', 'EUR', '2026-01-15') AS back,
       salesmgmt.convert_amount(300, 'JPY', 'USD', '2026-03-01') AS yen,
       salesmgmt.convert_amount(7, 'GBP', 'GBP', '2020-01-01') AS same,
       salesmgmt.convert_amount(NULL, 'EUR', 'USD', '2026-01-31') IS NULL AS null_amount;

-- no rate on the day in either direction: 22023 naming the pair and day
SELECT salesmgmt.convert_amount(100, 'EUR', 'USD', '2025-12-31');
SELECT salesmgmt.convert_amount(100, 'GBP', 'EUR', '2026-02-15');
-- a null currency or day is refused (22004)
SELECT salesmgmt.convert_amount(100, 'EUR', 'USD', NULL);

-- the reporting currency: the setting, whose built-in default (defined once,
-- in the library) is USD
SELECT boot_val FROM pg_settings WHERE name = 'salesmgmt.reporting_currency';
SELECT salesmgmt.reporting_currency();
SET salesmgmt.reporting_currency = 'EUR';
SELECT salesmgmt.reporting_currency();
-- forecast adjustments default to it
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.forecast_adjustment (period_start, period_end, team_id, category, amount)
    VALUES ('2026-01-01', '2026-03-31', 1, 'commit', 100) RETURNING currency;
RESET salesmgmt.reporting_currency;
SELECT salesmgmt.reporting_currency() = current_setting('salesmgmt.reporting_currency')::char(3) AS follows_the_setting;
SET salesmgmt.reporting_currency = 'USD';

-- the result columns of a set-returning function are checked against the
-- SQL declaration: a function declared with other columns is refused
CREATE FUNCTION pg_temp.forecast_wrong(p_from date, p_to date, p_group text, p_as_of timestamptz, p_currency char(3))
RETURNS TABLE (group_id bigint, group_name text)
AS '$libdir/salesmgmt', 'sm_forecast' LANGUAGE C STABLE;
SELECT * FROM pg_temp.forecast_wrong('2026-01-01', '2026-03-31', 'total', NULL, NULL);
CREATE FUNCTION pg_temp.metrics_renamed(OUT metric text, OUT unit text, OUT direction text, OUT description text, OUT no_data text)
RETURNS SETOF record
AS '$libdir/salesmgmt', 'sm_kpi_metrics' LANGUAGE C;
SELECT count(*) FROM pg_temp.metrics_renamed();
-- the real declarations match
SELECT count(*) > 0 AS has_metrics FROM salesmgmt.kpi_metrics();
SELECT count(*) AS forecast_rows FROM salesmgmt.forecast('2026-01-01', '2026-03-31', 'total');

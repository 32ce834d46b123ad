-- 0.1.0 -> 0.2.0: the default reporting currency is defined once, in C
-- (SM_DEFAULT_CURRENCY): salesmgmt.reporting_currency() returns the setting
-- from the library, and forecast adjustments default to it.
-- (Fresh installs: src/core.sql, src/forecast.sql.)
CREATE OR REPLACE FUNCTION salesmgmt.reporting_currency() RETURNS char(3)
AS 'MODULE_PATHNAME', 'sm_reporting_currency_sql'
LANGUAGE C STABLE PARALLEL SAFE;
ALTER TABLE salesmgmt.forecast_adjustment
    ALTER COLUMN currency SET DEFAULT salesmgmt.reporting_currency();

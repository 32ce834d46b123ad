-- 0.1.0 -> 0.2.0: salesmgmt.convert_amount is the C implementation that
-- forecasts, commissions and scorecards share (src/core_currency.c); same
-- signature, same results and errors as the PL/pgSQL body of 0.1.0.
-- (Fresh installs: src/core.sql.)
CREATE OR REPLACE FUNCTION salesmgmt.convert_amount(p_amount numeric, p_from char(3), p_to char(3), p_on date)
RETURNS numeric
AS 'MODULE_PATHNAME', 'sm_convert_amount'
LANGUAGE C STABLE PARALLEL SAFE;

-- forecast_dist.sql: salesmgmt.forecast_dist, the state of a Monte Carlo
-- forecast as a value that merges, its aggregate and its statistics.  New
-- in 0.2.0; the install script and the upgrade from 0.1.0 both run this
-- file whole.  C in forecast_dist.c (forecast_range.c simulates with the
-- same code).  See docs/scale-out.md and docs/forecasting.md.

CREATE TYPE salesmgmt.forecast_dist;

CREATE FUNCTION salesmgmt.forecast_dist_in(cstring)
RETURNS salesmgmt.forecast_dist
AS 'MODULE_PATHNAME', 'sm_forecast_dist_in'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION salesmgmt.forecast_dist_in(cstring) IS 'Input of forecast_dist: {"seed": 42, "deals": 3, "totals": [100.00, 250.50, 0.00]}, one total in currency units per simulation.';

CREATE FUNCTION salesmgmt.forecast_dist_out(salesmgmt.forecast_dist)
RETURNS cstring
AS 'MODULE_PATHNAME', 'sm_forecast_dist_out'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION salesmgmt.forecast_dist_out(salesmgmt.forecast_dist) IS 'Output of forecast_dist: JSON with the seed, the number of deals and one total per simulation (in currency units, 2 decimals).';

CREATE FUNCTION salesmgmt.forecast_dist_recv(internal)
RETURNS salesmgmt.forecast_dist
AS 'MODULE_PATHNAME', 'sm_forecast_dist_recv'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION salesmgmt.forecast_dist_recv(internal) IS 'Binary input of forecast_dist (COPY BINARY, the binary protocol): layout version, simulations, seed, deals, totals in cents; checked.';

CREATE FUNCTION salesmgmt.forecast_dist_send(salesmgmt.forecast_dist)
RETURNS bytea
AS 'MODULE_PATHNAME', 'sm_forecast_dist_send'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION salesmgmt.forecast_dist_send(salesmgmt.forecast_dist) IS 'Binary output of forecast_dist: layout version, simulations, seed, deals, totals in cents, in network byte order.';

CREATE TYPE salesmgmt.forecast_dist (
    INPUT = salesmgmt.forecast_dist_in,
    OUTPUT = salesmgmt.forecast_dist_out,
    RECEIVE = salesmgmt.forecast_dist_recv,
    SEND = salesmgmt.forecast_dist_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = extended
);
COMMENT ON TYPE salesmgmt.forecast_dist IS 'State of a Monte Carlo forecast: per simulation, the total of the deals won (whole cents). Deal d is won in simulation i by a draw that depends only on (seed, d, i), so states over disjoint deals add up (+) to exactly the state of all of them.';

-- The aggregate's support functions.  The state is a forecast_dist, not
-- internal: Citus pushes a custom aggregate down to the shards only when
-- its state has a real type, and PostgreSQL's parallel workers then pass
-- their states to the leader as values, so the type's own text and binary
-- forms are the serialisation (PostgreSQL accepts SERIALFUNC/DESERIALFUNC
-- only for internal states).
CREATE FUNCTION salesmgmt._forecast_dist_sfunc(salesmgmt.forecast_dist, bigint, numeric, numeric, bigint, integer)
RETURNS salesmgmt.forecast_dist
AS 'MODULE_PATHNAME', 'sm_forecast_dist_sfunc'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION salesmgmt._forecast_dist_sfunc(salesmgmt.forecast_dist, bigint, numeric, numeric, bigint, integer) IS 'Internal: transition function of forecast_dist_agg (adds one deal to every simulation, in place).';

CREATE FUNCTION salesmgmt._forecast_dist_combine(salesmgmt.forecast_dist, salesmgmt.forecast_dist)
RETURNS salesmgmt.forecast_dist
AS 'MODULE_PATHNAME', 'sm_forecast_dist_combine'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION salesmgmt._forecast_dist_combine(salesmgmt.forecast_dist, salesmgmt.forecast_dist) IS 'Internal: combine function of forecast_dist_agg (element-wise sum of two partial states; parallel workers, Citus shards).';

CREATE FUNCTION salesmgmt._forecast_dist_final(salesmgmt.forecast_dist)
RETURNS salesmgmt.forecast_dist
AS 'MODULE_PATHNAME', 'sm_forecast_dist_final'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION salesmgmt._forecast_dist_final(salesmgmt.forecast_dist) IS 'Internal: final function of forecast_dist_agg (a copy of the state).';

-- The deal id is an argument because it seeds the deal's draws: without
-- it a deal's outcomes would depend on the rows before it, and partial
-- states would not merge into the single-process answer.
CREATE AGGREGATE salesmgmt.forecast_dist_agg(
    deal_id bigint, amount numeric, probability numeric, seed bigint, simulations integer) (
    SFUNC = salesmgmt._forecast_dist_sfunc,
    STYPE = salesmgmt.forecast_dist,
    FINALFUNC = salesmgmt._forecast_dist_final,
    COMBINEFUNC = salesmgmt._forecast_dist_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE salesmgmt.forecast_dist_agg(bigint, numeric, numeric, bigint, integer) IS 'Monte Carlo forecast of a set of deals: in each of the simulations every deal (deal_id, amount rounded to cents, probability 0..1) is won by a draw seeded by (seed, deal_id, simulation); rows with a null amount or probability are skipped; null when there are no rows. Parallel plans and Citus shards give exactly the serial answer.';

CREATE FUNCTION salesmgmt.forecast_dist_add(salesmgmt.forecast_dist, salesmgmt.forecast_dist)
RETURNS salesmgmt.forecast_dist
AS 'MODULE_PATHNAME', 'sm_forecast_dist_plus'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION salesmgmt.forecast_dist_add(salesmgmt.forecast_dist, salesmgmt.forecast_dist) IS 'Merge two forecast distributions over disjoint sets of deals (same seed and number of simulations, else SM120): the element-wise sum of their totals.';

CREATE OPERATOR salesmgmt.+ (
    LEFTARG = salesmgmt.forecast_dist,
    RIGHTARG = salesmgmt.forecast_dist,
    FUNCTION = salesmgmt.forecast_dist_add,
    COMMUTATOR = OPERATOR(salesmgmt.+)
);
COMMENT ON OPERATOR salesmgmt.+ (salesmgmt.forecast_dist, salesmgmt.forecast_dist) IS 'Merge two forecast distributions over disjoint sets of deals (forecast_dist_add).';

CREATE FUNCTION salesmgmt.percentile(salesmgmt.forecast_dist, double precision)
RETURNS numeric
AS 'MODULE_PATHNAME', 'sm_forecast_dist_percentile'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION salesmgmt.percentile(salesmgmt.forecast_dist, double precision) IS 'The q-quantile (0..1) of the simulated totals, interpolated like percentile_cont, rounded to cents.';

CREATE FUNCTION salesmgmt.mean(salesmgmt.forecast_dist)
RETURNS numeric
AS 'MODULE_PATHNAME', 'sm_forecast_dist_mean'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION salesmgmt.mean(salesmgmt.forecast_dist) IS 'Mean of the simulated totals (exact, rounded to cents).';

CREATE FUNCTION salesmgmt.stddev(salesmgmt.forecast_dist)
RETURNS numeric
AS 'MODULE_PATHNAME', 'sm_forecast_dist_stddev'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION salesmgmt.stddev(salesmgmt.forecast_dist) IS 'Sample standard deviation of the simulated totals (double precision, rounded to cents; 0 for one simulation).';

CREATE FUNCTION salesmgmt.simulations(salesmgmt.forecast_dist)
RETURNS integer
AS 'MODULE_PATHNAME', 'sm_forecast_dist_simulations'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION salesmgmt.simulations(salesmgmt.forecast_dist) IS 'Number of simulations the distribution holds.';

CREATE FUNCTION salesmgmt.deals(salesmgmt.forecast_dist)
RETURNS bigint
AS 'MODULE_PATHNAME', 'sm_forecast_dist_deals'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION salesmgmt.deals(salesmgmt.forecast_dist) IS 'Number of deals added up in the distribution.';

CREATE FUNCTION salesmgmt.histogram(p_dist salesmgmt.forecast_dist, p_buckets integer)
RETURNS TABLE (
    bucket      integer,
    lower       numeric,
    upper       numeric,
    simulations integer)
AS 'MODULE_PATHNAME', 'sm_forecast_dist_histogram'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 20;
COMMENT ON FUNCTION salesmgmt.histogram(salesmgmt.forecast_dist, integer) IS 'Histogram of the simulated totals: p_buckets buckets of equal width from the lowest to the highest total (one when all are equal), with the number of simulations in each.';

GRANT EXECUTE ON FUNCTION
    salesmgmt.forecast_dist_agg(bigint, numeric, numeric, bigint, integer),
    salesmgmt.forecast_dist_add(salesmgmt.forecast_dist, salesmgmt.forecast_dist),
    salesmgmt.percentile(salesmgmt.forecast_dist, double precision),
    salesmgmt.mean(salesmgmt.forecast_dist),
    salesmgmt.stddev(salesmgmt.forecast_dist),
    salesmgmt.simulations(salesmgmt.forecast_dist),
    salesmgmt.deals(salesmgmt.forecast_dist),
    salesmgmt.histogram(salesmgmt.forecast_dist, integer)
    TO salesmgmt_manager, salesmgmt_rep, salesmgmt_analyst;

SELECT salesmgmt._apply_default_security();

-- bench/subscriptions_reference.sql: what a strong DBA would write instead
-- of salesmgmt's C for the MRR movements, with the same semantics, for
-- bench/subscriptions.sh and test/pgtap/subscriptions.sql.
--
--   subs_bench.mrr_movements(p_from, p_to)  mrr_movements_between in plain SQL:
--       each version's MRR converted at the rate of its valid_from day and
--       rounded to the cent (salesmgmt.reporting_rate), its validity up to
--       the next version (window function), joined to the month ends, summed
--       per account, and classified against the month before (lag) and any
--       earlier month end (a running bool_or)
--   subs_bench.renewals_once(p_days)         generate_renewals in a
--       subtransaction that is rolled back, so every timed run does the work
\set ON_ERROR_STOP on
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS subs_bench CASCADE;
CREATE SCHEMA subs_bench;
RESET client_min_messages;

CREATE FUNCTION subs_bench.mrr_movements(p_from date DEFAULT NULL, p_to date DEFAULT NULL)
RETURNS TABLE (month date, starting_mrr numeric, new_mrr numeric, expansion_mrr numeric,
               contraction_mrr numeric, churned_mrr numeric, reactivation_mrr numeric,
               ending_mrr numeric, accounts bigint)
LANGUAGE sql STABLE
AS $$
WITH b0 AS (
    SELECT coalesce(min(v.valid_from), current_date) AS oldest FROM salesmgmt.subscription_version v
), b AS (
    SELECT least(date_trunc('month', b0.oldest), date_trunc('month', coalesce(p_from, b0.oldest)))::date AS first,
           date_trunc('month', coalesce(p_from, b0.oldest))::date AS out_from,
           greatest(date_trunc('month', coalesce(p_to, current_date)),
                    date_trunc('month', coalesce(p_from, b0.oldest)))::date AS out_to
      FROM b0
), months AS (
    SELECT m::date AS month, (m + interval '1 month')::date - 1 AS month_end
      FROM b, generate_series(b.first::timestamp, b.out_to::timestamp, interval '1 month') m
), ranges AS (
    SELECT v.account_id, v.valid_from, v.end_date, v.status,
           round(CASE WHEN rr.inverse THEN v.mrr / rr.rate ELSE v.mrr * rr.rate END, 2) AS mrr,
           lead(v.valid_from) OVER (PARTITION BY v.subscription_id ORDER BY v.valid_from, v.version) AS next_from
      FROM salesmgmt.subscription_version v
      JOIN salesmgmt.reporting_rate rr
        ON rr.currency = v.currency AND v.valid_from >= rr.valid_from AND v.valid_from < rr.valid_until
), acct_month AS (
    SELECT r.account_id, m.month, sum(r.mrr) AS mrr
      FROM ranges r
      JOIN months m ON m.month_end >= r.valid_from AND (r.next_from IS NULL OR m.month_end < r.next_from)
     WHERE r.status = 'active' AND (r.end_date IS NULL OR m.month_end <= r.end_date)
     GROUP BY r.account_id, m.month
), grid AS (
    SELECT a.account_id, m.month, coalesce(am.mrr, 0) AS mrr
      FROM (SELECT DISTINCT v.account_id FROM salesmgmt.subscription_version v) a
     CROSS JOIN months m
      LEFT JOIN acct_month am ON am.account_id = a.account_id AND am.month = m.month
), lagged AS (
    SELECT g.month, g.mrr AS e,
           coalesce(lag(g.mrr) OVER w, 0.00) AS s,
           coalesce(bool_or(g.mrr > 0) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false) AS ever
      FROM grid g
    WINDOW w AS (PARTITION BY g.account_id ORDER BY g.month)
)
SELECT l.month, sum(l.s),
       coalesce(sum(l.e) FILTER (WHERE l.s = 0 AND l.e > 0 AND NOT l.ever), 0.00),
       coalesce(sum(l.e - l.s) FILTER (WHERE l.s > 0 AND l.e > l.s), 0.00),
       coalesce(sum(l.e - l.s) FILTER (WHERE l.s > 0 AND l.e > 0 AND l.e < l.s), 0.00),
       coalesce(-sum(l.s) FILTER (WHERE l.s > 0 AND l.e = 0), 0.00),
       coalesce(sum(l.e) FILTER (WHERE l.s = 0 AND l.e > 0 AND l.ever), 0.00),
       sum(l.e), count(*) FILTER (WHERE l.e > 0)
  FROM lagged l, b
 WHERE l.month >= b.out_from
 GROUP BY l.month
 ORDER BY l.month
$$;

CREATE FUNCTION subs_bench.renewals_once(p_days integer DEFAULT 90)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v text;
BEGIN
    BEGIN
        SELECT r::text INTO v FROM salesmgmt.generate_renewals(p_days) r;
        RAISE EXCEPTION USING ERRCODE = 'P0004', MESSAGE = v;
    EXCEPTION WHEN assert_failure THEN
        v := SQLERRM;
    END;
    RETURN v;
END
$$;

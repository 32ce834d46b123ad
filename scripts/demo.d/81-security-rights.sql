-- Tour: the rights of each role (docs/security.md, "The rights table").
-- The regional manager of the previous part sets a quota for the rep of
-- one of its squads and reviews the rep; it cannot set its own quota; the
-- rep sees its peers' rank, score and grade on the leaderboard.
\pset footer off
\echo
\echo '================ security: the rights of each role ================'
SELECT rep_id AS demo_rep_id FROM salesmgmt.rep WHERE db_role = 'demo_rep' \gset
SELECT rep_id AS demo_manager_id FROM salesmgmt.rep WHERE db_role = 'demo_manager' \gset

\echo
\echo '-- The regional manager sets next quarter''s quota of the rep and reviews the rep'
SET ROLE demo_manager;
INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount)
VALUES (:demo_rep_id, date_trunc('quarter', now() + interval '3 months')::date,
        (date_trunc('quarter', now() + interval '6 months') - interval '1 day')::date, 150000)
ON CONFLICT ON CONSTRAINT quota_unique_period DO UPDATE SET amount = excluded.amount
RETURNING rep_id, period_start, period_end, amount;
INSERT INTO salesmgmt.review (rep_id, reviewer_rep_id, period_start, period_end,
                              discipline, teamwork, customer_service, comment)
VALUES (:demo_rep_id, :demo_manager_id, date_trunc('quarter', now())::date,
        (date_trunc('quarter', now() + interval '3 months') - interval '1 day')::date,
        4, 5, 4, 'Strong discovery calls; follow up faster after demos.')
ON CONFLICT ON CONSTRAINT review_unique_period DO UPDATE
   SET discipline = excluded.discipline, teamwork = excluded.teamwork,
       customer_service = excluded.customer_service, comment = excluded.comment
RETURNING rep_id, reviewer_rep_id, discipline, teamwork, customer_service;

\echo
\echo '-- ... but not its own quota: refused with a hint'
DO $$
BEGIN
    INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount)
    VALUES (salesmgmt.current_rep_id(), '2030-01-01', '2030-03-31', 1);
EXCEPTION WHEN insufficient_privilege THEN
    DECLARE
        v_hint text;
    BEGIN
        GET STACKED DIAGNOSTICS v_hint = PG_EXCEPTION_HINT;
        RAISE NOTICE '% (%) HINT: %', SQLERRM, SQLSTATE, v_hint;
    END;
END
$$;
RESET ROLE;

\echo
\echo '-- The rep on the leaderboard of its scheme: its peers'' rank, score and grade'
\echo '-- (kpi_scheme.leaderboard_visibility = scheme), not their reviews or commissions'
SET ROLE demo_rep;
SELECT scheme_name, rank, rep_name, score, grade,
       CASE WHEN rep_id = :demo_rep_id THEN '<- me' ELSE '' END AS who
  FROM salesmgmt.leaderboard
 ORDER BY rep_id = :demo_rep_id DESC, scheme_name, rank NULLS LAST, rep_id
 LIMIT 6;
SELECT count(*) AS reviews_seen, count(DISTINCT rep_id) AS reps_in_them FROM salesmgmt.review;
RESET ROLE;

-- Tour, part 0: what the demo data set holds (customer relationship pillar).
\pset footer off
\echo
\echo '================ salesmgmt demo tour ================'
\echo
\echo '-- The data set: a 3-level sales organisation, customers and their history'
SELECT (SELECT count(*) FROM salesmgmt.team) AS teams,
       (SELECT count(*) FROM salesmgmt.rep) AS reps,
       (SELECT count(*) FROM salesmgmt.account) AS accounts,
       (SELECT count(*) FROM salesmgmt.contact) AS contacts,
       (SELECT count(*) FROM salesmgmt.deal) AS deals,
       (SELECT count(*) FROM salesmgmt.activity) AS activities,
       (SELECT count(*) FROM salesmgmt.payment) AS payments;

\echo
\echo '-- The team tree (top two levels) and who manages each team'
WITH RECURSIVE tree AS (
    SELECT team_id, name, manager_rep_id, 0 AS depth, name::text AS path
      FROM salesmgmt.team WHERE parent_team_id IS NULL
    UNION ALL
    SELECT t.team_id, t.name, t.manager_rep_id, tree.depth + 1, tree.path || ' > ' || t.name
      FROM salesmgmt.team t JOIN tree ON t.parent_team_id = tree.team_id
)
SELECT repeat('  ', depth) || tree.name AS team, r.name AS manager,
       (SELECT count(*) FROM salesmgmt.team s WHERE s.parent_team_id = tree.team_id) AS sub_teams
  FROM tree LEFT JOIN salesmgmt.rep r ON r.rep_id = tree.manager_rep_id
 WHERE depth <= 1 ORDER BY path;

\echo
\echo '-- One customer: its contacts, deals and latest communication records'
SELECT a.name AS account, a.industry, a.region, a.segment, r.name AS owner
  FROM salesmgmt.account a JOIN salesmgmt.rep r ON r.rep_id = a.owner_rep_id
 WHERE a.account_id = 1;
SELECT d.name AS deal, s.name AS stage, d.amount, d.currency, d.expected_close_date
  FROM salesmgmt.deal d JOIN salesmgmt.stage s USING (stage_id)
 WHERE d.account_id = 1 ORDER BY d.deal_id LIMIT 5;
SELECT a.occurred_at::date AS day, a.kind, a.outcome, c.name AS contact, r.name AS rep
  FROM salesmgmt.activity a
  JOIN salesmgmt.rep r ON r.rep_id = a.rep_id
  LEFT JOIN salesmgmt.contact c ON c.contact_id = a.contact_id
 WHERE a.account_id = 1 ORDER BY a.occurred_at DESC LIMIT 5;

\echo
\echo '-- Transaction history: payments and refunds of the last 90 days, by currency'
SELECT currency, kind, count(*) AS transactions, sum(amount) AS total
  FROM salesmgmt.payment WHERE paid_at > now() - interval '90 days'
 GROUP BY currency, kind ORDER BY currency, kind;

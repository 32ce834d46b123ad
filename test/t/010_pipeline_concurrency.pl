# Many sessions move the same few deals at once (pgbench), while another
# keeps changing a stage gate.  Afterwards every deal and its history agree:
# the last history row is the deal's current state, consecutive rows chain
# (each starts where the previous one ended), time in stage matches the
# recorded change times, and every stage change is one the pipeline allows.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('pipeline_concurrency');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'salesmgmt'\nmax_connections = 40\n");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION salesmgmt CASCADE;
	INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'T');
	INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'A', 1), (2, 'B', 1);
	INSERT INTO salesmgmt.account (account_id, name) VALUES (1, 'Acme');
	SELECT salesmgmt.create_pipeline('P', '[{"name": "S1", "probability": 0.1},
		{"name": "S2", "probability": 0.3}, {"name": "S3", "probability": 0.6},
		{"name": "S4", "probability": 0.8}, {"name": "Won", "outcome": "won"}]');
	-- the way back from S4 to S1, so deals cycle forever
	INSERT INTO salesmgmt.stage_transition VALUES (1, 4, 1);
	INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount,
	                            stage_entered_at)
	SELECT i, 'D' || i, 1, 1, 1, 1, 100, now() - interval '1 day' FROM generate_series(1, 10) i;
});

# movers: the next stage of a random deal, sometimes also a new amount or owner
my $mover = q{
\set id random(1, 10)
\set amount random(1, 1000)
\set owner random(1, 2)
UPDATE salesmgmt.deal SET stage_id = CASE stage_id WHEN 4 THEN 1 ELSE stage_id + 1 END WHERE deal_id = :id;
UPDATE salesmgmt.deal SET amount = :amount, owner_rep_id = :owner WHERE deal_id = :id;
};
# the administrator: a gate on S3 that the deals always meet, switched on and off
my $admin = q{
UPDATE salesmgmt.stage SET required_fields = CASE WHEN required_fields IS NULL THEN '{amount}'::text[] END WHERE stage_id = 3;
};
$node->pgbench(
	'--no-vacuum --client=6 --jobs=2 --transactions=150',
	0,
	[qr{processed: 900/900}],
	[qr{^$}],
	'concurrent moves and configuration changes all succeed',
	{
		'010_pipeline_mover\@9' => $mover,
		'010_pipeline_admin\@1' => $admin,
	});

is($node->safe_psql('postgres', q{
	SELECT count(*) FROM salesmgmt.deal d
	  JOIN LATERAL (SELECT * FROM salesmgmt.deal_stage_history h WHERE h.deal_id = d.deal_id
	                 ORDER BY history_id DESC LIMIT 1) h ON true
	 WHERE (h.to_stage_id, h.new_amount, h.owner_rep_id)
	       IS DISTINCT FROM (d.stage_id, d.amount, d.owner_rep_id)}),
	'0', 'the last history row of every deal is its current state');

is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	    SELECT h.*, lag(h.to_stage_id) OVER w AS prev_to, lag(h.new_amount) OVER w AS prev_amount
	      FROM salesmgmt.deal_stage_history h WINDOW w AS (PARTITION BY deal_id ORDER BY history_id)) x
	 WHERE x.from_stage_id IS DISTINCT FROM x.prev_to OR x.old_amount IS DISTINCT FROM x.prev_amount}),
	'0', 'consecutive history rows chain: each change starts where the previous ended');

is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	    SELECT h.*, lag(h.changed_at) OVER w AS prev_at
	      FROM salesmgmt.deal_stage_history h
	     WHERE h.from_stage_id IS DISTINCT FROM h.to_stage_id
	    WINDOW w AS (PARTITION BY deal_id ORDER BY history_id)) x
	 WHERE x.from_stage_id IS NOT NULL AND x.time_in_previous_stage <> x.changed_at - x.prev_at}),
	'0', 'time in the previous stage is the time between the stage changes');

is($node->safe_psql('postgres', q{
	SELECT count(*) FROM salesmgmt.deal_stage_history h
	 WHERE h.from_stage_id <> h.to_stage_id
	   AND NOT (h.to_stage_id = h.from_stage_id + 1 OR (h.from_stage_id = 4 AND h.to_stage_id = 1))}),
	'0', 'every recorded move is one the pipeline allows');

cmp_ok($node->safe_psql('postgres', q{
	SELECT count(*) FROM salesmgmt.deal_stage_history WHERE from_stage_id <> to_stage_id}),
	'>=', 750, 'the moves were recorded (each mover transaction moves a deal)');

$node->stop;
done_testing();

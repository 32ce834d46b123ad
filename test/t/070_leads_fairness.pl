# Lead routing under real concurrency (pgbench): 8 sessions insert 10,000
# leads into a round-robin team of 7 reps, one lead per transaction; every
# rep gets 1,428 or 1,429.  A mix with rolled-back inserts leaves no gaps
# (the reps' counts differ by at most one), and load-balanced routing by 8
# sessions never gives a rep more than its capacity.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('leads_fairness');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'salesmgmt'\nmax_connections = 40\n");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION salesmgmt CASCADE;
	INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Round'), (2, 'Mixed'), (3, 'Balanced');
	INSERT INTO salesmgmt.rep (rep_id, name, team_id) SELECT r, 'R' || r, 1 FROM generate_series(1, 7) r;
	INSERT INTO salesmgmt.rep (rep_id, name, team_id) SELECT r, 'M' || r, 2 FROM generate_series(8, 12) r;
	INSERT INTO salesmgmt.rep (rep_id, name, team_id) SELECT r, 'B' || r, 3 FROM generate_series(13, 16) r;
	INSERT INTO salesmgmt.rep_capacity SELECT r, r - 10 FROM generate_series(13, 16) r;  -- 3, 4, 5, 6
	INSERT INTO salesmgmt.lead_pool (pool_id, name) VALUES (1, 'Overflow');
	INSERT INTO salesmgmt.assignment_rule (entity, position, condition, target_kind, target_id) VALUES
		('lead', 1, '{"source": "web"}', 'team_round_robin', 1),
		('lead', 2, '{"source": "event"}', 'team_round_robin', 2),
		('lead', 3, '{"source": "partner"}', 'team_load_balanced', 3),
		('lead', 4, '{}', 'pool', 1);
});

$node->pgbench(
	'--no-vacuum --client=8 --jobs=2 --transactions=1250',
	0,
	[qr{processed: 10000/10000}],
	[qr{^$}],
	'8 sessions insert 10,000 round-robin leads',
	{ '070_leads_web' => q{INSERT INTO salesmgmt.lead (name, source) VALUES ('web lead', 'web');} });

is($node->safe_psql('postgres', q{
	SELECT string_agg(owner_rep_id || ':' || n, ' ' ORDER BY owner_rep_id)
	  FROM (SELECT owner_rep_id, count(*) AS n FROM salesmgmt.lead WHERE source = 'web' GROUP BY 1) x}),
	'1:1429 2:1429 3:1429 4:1429 5:1428 6:1428 7:1428',
	'every rep of the round-robin team got 1,428 or 1,429 leads, in turn order');

$node->pgbench(
	'--no-vacuum --client=8 --jobs=2 --transactions=300',
	0,
	[qr{processed: 2400/2400}],
	[qr{^$}],
	'inserts that commit and inserts that roll back, at once',
	{
		'070_leads_commit@3' => q{INSERT INTO salesmgmt.lead (name, source) VALUES ('event lead', 'event');},
		'070_leads_rollback@1' => q{BEGIN; INSERT INTO salesmgmt.lead (name, source) VALUES ('lost', 'event'); ROLLBACK;},
	});
is($node->safe_psql('postgres', q{
	SELECT max(n) - min(n) <= 1 AND count(*) = 5 AND sum(n) = (SELECT turns FROM salesmgmt.assignment_rotation WHERE team_id = 2)
	  FROM (SELECT owner_rep_id, count(*) AS n FROM salesmgmt.lead WHERE source = 'event' GROUP BY 1) x}),
	't', 'rolled-back routings leave no gaps: the five reps differ by at most one lead');

$node->pgbench(
	'--no-vacuum --client=8 --jobs=2 --transactions=10',
	0,
	[qr{processed: 80/80}],
	[qr{^$}],
	'8 sessions route 80 leads into a load-balanced team',
	{ '070_leads_partner' => q{INSERT INTO salesmgmt.lead (name, source) VALUES ('partner lead', 'partner');} });
is($node->safe_psql('postgres', q{
	SELECT string_agg(r.rep_id || ':' || (SELECT count(*) FROM salesmgmt.lead l WHERE l.owner_rep_id = r.rep_id)
	                  || '/' || c.max_open_leads, ' ' ORDER BY r.rep_id)
	  FROM salesmgmt.rep r JOIN salesmgmt.rep_capacity c USING (rep_id)}),
	'13:3/3 14:4/4 15:5/5 16:6/6', 'load-balanced reps are filled exactly to capacity, never over');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM salesmgmt.lead WHERE source = 'partner' AND owner_rep_id IS NULL AND pool_id = 1}),
	'62', 'the leads beyond capacity went to the pool');

$node->stop;
done_testing();

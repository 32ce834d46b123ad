# Failover without loss.  The outbox is WAL-logged, so a streaming
# standby holds every queued event; its webhook worker waits quietly (no
# error, no write) while the server is a standby, and delivers after the
# promotion, starting where the old primary stopped.  2,000 events are
# queued for a slow receiver, the primary is stopped ('immediate') in the
# middle of the deliveries, the standby is promoted, and every event id
# reaches the receiver at least once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SmWebhookReceiver;

my $events = 2000;
my $primary = PostgreSQL::Test::Cluster->new('webhook_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'salesmgmt'
salesmgmt.webhook_database = 'wh'
salesmgmt.webhook_allow_private_networks = on
salesmgmt.webhook_retry_schedule = '200ms, 400ms, 800ms, 1s, 1s, 1s, 1s, 1s'
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE DATABASE wh');
$primary->safe_psql('wh', qq{
CREATE EXTENSION salesmgmt;
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, email, team_id) VALUES (1, 'Ada', 'ada\@example.com', 1);
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) VALUES (1, 'Acme', 1);
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (1, 'New business', 'free');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability) VALUES
  (1, 1, 'Qualify', 1, 0.2), (2, 1, 'Propose', 2, 0.6);
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
SELECT g, 'Deal ' || g, 1, 1, 1, 1, 1000 FROM generate_series(1, $events) g;
});

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('webhook_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

my $worker_q = q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'salesmgmt webhook worker'};
ok($primary->poll_query_until('wh', $worker_q), 'the primary\'s worker runs');
ok($standby->poll_query_until('wh', $worker_q), 'the standby\'s worker runs too');
ok($standby->poll_query_until('wh', q{SELECT wait_event = 'Extension' FROM pg_stat_activity
	WHERE backend_type = 'salesmgmt webhook worker'}), 'and waits');
my $standby_worker = $standby->safe_psql('wh',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'salesmgmt webhook worker'});

my $rx = SmWebhookReceiver->new;
$rx->start;
$rx->plan('200 delay=50');
$primary->safe_psql('wh', "SELECT salesmgmt.create_webhook('" . $rx->url . "')");
$primary->safe_psql('wh', 'UPDATE salesmgmt.deal SET stage_id = 2');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('wh', 'SELECT count(*) FROM salesmgmt.webhook_delivery'), $events,
	"the standby holds the $events queued deliveries");
ok($primary->poll_query_until('wh', q{
	SELECT count(*) FILTER (WHERE state = 'delivered') >= 50 AND count(*) FILTER (WHERE state = 'in_flight') > 0
	  FROM salesmgmt.webhook_delivery}),
	'deliveries are being sent from the primary, some in flight');

$primary->stop('immediate');
my $before = scalar($rx->requests);
cmp_ok($before, '<', $events, 'the primary stopped in the middle of the deliveries');

my $standby_log = slurp_file($standby->logfile);
like($standby_log, qr/salesmgmt webhook worker waits: the server is a standby/, 'the standby\'s worker said it waits');
# (the WAL receiver's errors about the vanished primary are expected)
unlike($standby_log, qr/\[$standby_worker\] (?:ERROR|FATAL|WARNING)|read-only transaction|salesmgmt.*(?:ERROR|FATAL)/,
	'the standby\'s worker logged no error and attempted no write');

$standby->promote;
ok($standby->poll_query_until('wh',
		q{SELECT count(*) = 0 FROM salesmgmt.webhook_delivery WHERE state <> 'delivered'}),
	'after the promotion, every delivery is delivered')
  or diag($standby->safe_psql('wh', 'SELECT state, count(*) FROM salesmgmt.webhook_delivery GROUP BY 1'));
like(slurp_file($standby->logfile), qr/the server was promoted, deliveries start/, 'the worker noticed the promotion');
cmp_ok(scalar($rx->requests), '>', $before, 'the promoted standby sent deliveries');
my @ids = split /\n/, $standby->safe_psql('wh', 'SELECT event_id FROM salesmgmt.webhook_event');
my %got = map { $_->{headers}{'webhook-id'} => 1 } $rx->requests;
is(scalar(@ids), $events, 'no event lost by the failover');
is(scalar(grep { !$got{$_} } @ids), 0, 'every event id reached the receiver at least once');

$rx->stop;
$standby->stop;
done_testing();

# Nothing committed is lost when the worker dies with deliveries in
# flight: killed with SIGKILL (the postmaster restarts the cluster),
# stopped with an immediate shutdown, or terminated.  After the restart
# every committed event reaches the receiver at least once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use SmWebhookFixture;
use SmWebhookReceiver;

my $node = PostgreSQL::Test::Cluster->new('webhook_crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'salesmgmt'
salesmgmt.webhook_database = 'wh'
salesmgmt.webhook_allow_private_networks = on
salesmgmt.webhook_retry_schedule = '200ms, 400ms, 800ms, 1s, 1s, 1s, 1s, 1s'
salesmgmt.webhook_concurrency = 4
restart_after_crash = on
});
$node->start;
SmWebhookFixture::create_deals($node, 60);
ok($node->poll_query_until('wh',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'salesmgmt webhook worker'}),
	'worker runs');

my $rx = SmWebhookReceiver->new;
$rx->start;
# slow answers: requests stay in flight long enough to be interrupted
$rx->plan('200 delay=1500');
$node->safe_psql('wh', "SELECT salesmgmt.create_webhook('" . $rx->url . "')");

sub worker_pid
{
	return $node->safe_psql('wh',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'salesmgmt webhook worker'});
}

# commit n events (one transaction each) for deals [from, to]; wait until
# some are in flight
sub commit_events_and_wait_in_flight
{
	my ($from, $to) = @_;
	$node->safe_psql('wh', "UPDATE salesmgmt.deal SET stage_id = 2 WHERE deal_id = $_") foreach $from .. $to;
	ok($node->poll_query_until('wh',
			q{SELECT count(*) > 0 FROM salesmgmt.webhook_delivery WHERE state = 'in_flight'}),
		"deliveries of deals $from..$to are in flight");
}

# every committed event of deals [from, to] is delivered and was received
sub check_all_arrived
{
	my ($from, $to, $what) = @_;
	ok($node->poll_query_until('wh', qq{
			SELECT count(*) = 0 FROM salesmgmt.webhook_delivery d JOIN salesmgmt.webhook_event e USING (event_id)
			 WHERE e.deal_id BETWEEN $from AND $to AND d.state <> 'delivered'}),
		"$what: every delivery is delivered after the restart")
	  or diag($node->safe_psql('wh', 'SELECT delivery_id, state, attempts, last_error FROM salesmgmt.webhook_delivery ORDER BY 1'));
	my @ids = split /\n/, $node->safe_psql('wh',
		"SELECT event_id FROM salesmgmt.webhook_event WHERE deal_id BETWEEN $from AND $to ORDER BY 1");
	is(scalar(@ids), $to - $from + 1, "$what: one event per committed change");
	my %got = map { $_->{headers}{'webhook-id'} => 1 } $rx->requests;
	is(scalar(grep { !$got{$_} } @ids), 0, "$what: the receiver got every one of them at least once");
}

# ---------------------------------------------------- SIGKILL of the worker
commit_events_and_wait_in_flight(1, 20);
my $pid = worker_pid();
kill 'KILL', $pid;
ok($node->poll_query_until('wh',
		qq{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'salesmgmt webhook worker' AND pid <> $pid}),
	'the postmaster restarted after the crash, and the worker with it');
check_all_arrived(1, 20, 'killed worker');
like(slurp_file($node->logfile), qr/sent \d+ in-flight deliveries back to pending/,
	'the new worker released the dead one\'s leases');

# ------------------------------------------------------- immediate shutdown
commit_events_and_wait_in_flight(21, 40);
$node->stop('immediate');
$node->start;
check_all_arrived(21, 40, 'immediate shutdown');

# ------------------------------------------ terminated worker, started again
commit_events_and_wait_in_flight(41, 60);
$pid = worker_pid();
$node->safe_psql('wh', "SELECT pg_terminate_backend($pid)");
ok($node->poll_query_until('wh',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'salesmgmt webhook worker'}),
	'a terminated worker is not restarted by the postmaster');
isnt($node->safe_psql('wh', 'SELECT salesmgmt.webhook_worker_start()'), $pid,
	'webhook_worker_start starts a new one');
check_all_arrived(41, 60, 'terminated worker');

$rx->stop;
$node->stop;
done_testing();

# The worker exits with the postmaster.  Deliveries are in flight to a
# slow receiver (3,000 events, answers after 50 ms, a long request
# timeout) when the postmaster is killed with SIGKILL (a crash, the OOM
# killer): every child process, the webhook worker included, is gone
# within a second, the server restarts at once (no "pre-existing shared
# memory block is still in use"), and every event reaches the receiver at
# least once afterwards.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use POSIX qw(WNOHANG);
use SmWebhookReceiver;

plan skip_all => 'needs /proc (Linux)' unless -d '/proc/self';

# Become the reaper of orphans (prctl PR_SET_CHILD_SUBREAPER), as init is
# on a real machine: the killed postmaster and its children are reparented
# to this process and reaped here, so a dead postmaster's pid does not
# linger as a zombie that pg_ctl would take for a running server.
my $sys_prctl = eval { require 'syscall.ph'; &SYS_prctl } // 157;
syscall($sys_prctl, 36, 1, 0, 0, 0) == 0
  or plan skip_all => "cannot become a child subreaper: $!";

my $events = 3000;
my $node = PostgreSQL::Test::Cluster->new('webhook_pm_death');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'salesmgmt'
salesmgmt.webhook_database = 'wh'
salesmgmt.webhook_allow_private_networks = on
salesmgmt.webhook_timeout = '60s'
salesmgmt.webhook_retry_schedule = '200ms, 400ms, 800ms, 1s, 1s, 1s, 1s, 1s'
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE wh');
$node->safe_psql('wh', qq{
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
ok($node->poll_query_until('wh',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'salesmgmt webhook worker'}),
	'worker runs');

my $rx = SmWebhookReceiver->new;
$rx->start;
$rx->plan('200 delay=50');
$node->safe_psql('wh', "SELECT salesmgmt.create_webhook('" . $rx->url . "')");
$node->safe_psql('wh', 'UPDATE salesmgmt.deal SET stage_id = 2');
is($node->safe_psql('wh', 'SELECT count(*) FROM salesmgmt.webhook_event'), $events, "$events events queued");
ok($node->poll_query_until('wh', q{
	SELECT count(*) FILTER (WHERE state = 'delivered') >= 50 AND count(*) FILTER (WHERE state = 'in_flight') > 0
	  FROM salesmgmt.webhook_delivery}),
	'deliveries are being sent, some in flight');
my $worker = $node->safe_psql('wh',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'salesmgmt webhook worker'});

# the postmaster's children, read from /proc
sub proc_stat
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return;
	my $line = <$fh>;
	close $fh;
	return unless defined $line && $line =~ /\)\s+(\S)\s+(\d+)/;
	return ($1, $2);			# state, parent pid
}

sub alive
{
	my ($pid) = @_;
	my ($state) = proc_stat($pid);
	return defined $state && $state ne 'Z' && $state ne 'X';
}

my $postmaster = $node->{_pid};
opendir(my $dh, '/proc') or die $!;
my @children = grep { my (undef, $ppid) = proc_stat($_); defined $ppid && $ppid == $postmaster }
  grep { /^\d+$/ } readdir $dh;
closedir $dh;
ok((grep { $_ == $worker } @children), 'the webhook worker is a child of the postmaster')
  or diag("children: @children; worker: $worker");
cmp_ok(scalar(@children), '>=', 4, 'the postmaster has its usual children');

kill 'KILL', $postmaster;
my $killed_at = time;
my @left = @children;
while (@left && time - $killed_at < 10)
{
	1 while waitpid(-1, WNOHANG) > 0;
	@left = grep { alive($_) } @left;
	usleep(10_000) if @left;
}
my $took = time - $killed_at;
is(scalar(@left), 0, 'every child of the killed postmaster exited')
  or diag('still alive: ' . join(' ', map { my ($s) = proc_stat($_); "$_($s)" } @left));
cmp_ok($took, '<', 1, 'within one second of the postmaster\'s death');
diag(sprintf('children gone %.0f ms after the SIGKILL', $took * 1000));
ok(!alive($worker), 'the webhook worker among them');

# restart at once: no child holds the shared memory any more
1 while waitpid(-1, WNOHANG) > 0;
$node->{_pid} = undef;
ok($node->start(fail_ok => 1), 'the server restarts immediately after the crash');
unlike(slurp_file($node->logfile), qr/pre-existing shared memory block/, 'no process held the old shared memory');

ok($node->poll_query_until('wh',
		q{SELECT count(*) = 0 FROM salesmgmt.webhook_delivery WHERE state <> 'delivered'}),
	'every delivery is delivered after the restart')
  or diag($node->safe_psql('wh', 'SELECT state, count(*) FROM salesmgmt.webhook_delivery GROUP BY 1'));
my @ids = split /\n/, $node->safe_psql('wh', 'SELECT event_id FROM salesmgmt.webhook_event');
my %got = map { $_->{headers}{'webhook-id'} => 1 } $rx->requests;
is(scalar(@ids), $events, 'no event lost');
is(scalar(grep { !$got{$_} } @ids), 0, 'the receiver got every event at least once');

$rx->stop;
$node->stop;
done_testing();

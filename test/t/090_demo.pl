# The demo runs to the end inside the test suite: scripts/demo, pointed at a
# throwaway node through PGHOST/PGDATABASE, builds nothing new, loads the
# demo data set, prints every section of scripts/demo.d and ends with
# "Tour complete."; the analysis section leaves its feedback loop behind.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $node = PostgreSQL::Test::Cluster->new('demo');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'salesmgmt'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE salesmgmt_demo');

my ($stdout, $stderr) = ('', '');
{
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'salesmgmt_demo';
	local $ENV{SM_DEMO_SCALE} = 3000;    # the tour is the same at any size
	my $ok = IPC::Run::run([ "$root/scripts/demo" ], '<', \undef, '>', \$stdout, '2>', \$stderr);
	ok($ok, 'scripts/demo exits with success') or diag("stderr:\n$stderr\nstdout tail:\n" . substr($stdout, -2000));
}
like($stdout, qr/Tour complete\.\s*\z/, 'the tour runs to the end');
unlike($stderr, qr/\b(ERROR|FATAL|PANIC)\b/, 'no error on the way');

# every section printed its first heading
foreach my $file (sort glob("$root/scripts/demo.d/*.sql"))
{
	(my $name = $file) =~ s{^.*/}{};
	my ($heading) = slurp_file($file) =~ /^\\echo '(-- [^']+)'/m;
	next unless defined $heading;
	ok(index($stdout, $heading) >= 0, "$name: prints \"$heading\"");
}

# the analysis part shows real figures, not an empty data set
like($stdout, qr/All pipelines \|\s+\d+ \|\s+\d+ \|\s+0\.\d{4}/, 'win rates of the organisation are shown');
like($stdout, qr/SM051: feedback \d+ is already resolved/, 'the feedback loop is closed and a second resolution refused');
like($stdout, qr/reviews, CSAT\/NPS\s*\n?.*synthetic/, 'the tour says the scored reviews and CSAT answers are synthetic');
like($stdout, qr/All figures below come from synthetic data/, 'and so are the analysis figures');
is($node->safe_psql('salesmgmt_demo',
		q{SELECT count(*) > 0 AND bool_or(status = 'resolved') FROM salesmgmt.feedback}),
	't', 'the tour recorded and resolved feedback');
is($node->safe_psql('salesmgmt_demo',
		q{SELECT count(DISTINCT segment) >= 5 FROM salesmgmt.customer_summary}),
	't', 'customers fall into several RFM segments');

$node->stop;
done_testing();

# The upgrade from the previous release: install it, fill every table,
# ALTER EXTENSION salesmgmt UPDATE, and the database must equal a fresh
# install of the current version, catalog object for catalog object
# (test/sql/extension_catalog.sql, run in both, compared line by line),
# with every row still there.  Then the regression and pgTAP suites run on
# the upgrade path: each script's CREATE EXTENSION becomes "CREATE the
# previous release, then UPDATE".
use strict;
use warnings;
use File::Basename;
use File::Copy;
use File::Path qw(make_path);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $prev = '0.1.0';
my ($cur) = slurp_file("$root/salesmgmt.control") =~ /^default_version\s*=\s*'([^']+)'/m
  or die "no default_version in salesmgmt.control";
my $tmp = $PostgreSQL::Test::Utils::tmp_check;

# the release's version is the same everywhere it is written
my $meta = JSON::PP::decode_json(slurp_file("$root/META.json"));
my ($make_version) = slurp_file("$root/Makefile") =~ /^EXTVERSION\s*=\s*(\S+)/m;
is("$meta->{version} $meta->{provides}{salesmgmt}{version} $make_version", "$cur $cur $cur",
	"META.json, its provides and the Makefile say $cur like salesmgmt.control");

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
# the server's webhook worker serves the database that gets the previous
# release: this library's worker must wait for the update, then deliver
# (the other settings: not the defaults, see the regression run below)
$node->append_conf('postgresql.conf', qq{shared_preload_libraries = 'salesmgmt'
salesmgmt.webhook_database = 'upgraded'
salesmgmt.webhook_allow_private_networks = on
salesmgmt.webhook_retry_schedule = '1s,2s'
salesmgmt.webhook_concurrency = 2
salesmgmt.webhook_retention = 60
salesmgmt.webhook_timeout = 1000
salesmgmt.webhook_connect_timeout = 500
});
$node->start;

# ------------------------------------------------ the previous release, filled
$node->safe_psql('postgres', 'CREATE DATABASE upgraded');
$node->safe_psql('upgraded', "CREATE EXTENSION salesmgmt VERSION '$prev' CASCADE");
is($node->safe_psql('upgraded', q{SELECT extversion FROM pg_extension WHERE extname = 'salesmgmt'}),
	$prev, "installed the previous release $prev");
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'scale=200', '-v', 'seed=5', '-f', "$root/scripts/datagen.sql",
	  '-d', $node->connstr('upgraded') ],
	"demo data loaded into $prev");
$node->command_ok(
	[ 'psql', '-X', '-q', '-f', "$root/test/sql/fill_every_table.sql", '-d', $node->connstr('upgraded') ],
	"every table of $prev filled");
# the one table only the webhook worker writes: an attempt, as $prev's
# worker would have recorded it (written against $prev's frozen schema);
# the endpoint now points at a closed local port
$node->safe_psql('upgraded', q{
	WITH d AS (UPDATE salesmgmt.webhook_delivery SET attempts = 1
	            WHERE delivery_id = (SELECT min(delivery_id) FROM salesmgmt.webhook_delivery)
	              AND NOT EXISTS (SELECT 1 FROM salesmgmt.webhook_attempt)
	           RETURNING delivery_id, endpoint_id)
	INSERT INTO salesmgmt.webhook_attempt (delivery_id, attempt, endpoint_id, started_at, duration, status, error)
	SELECT delivery_id, 1, endpoint_id, now(), interval '20 ms', 503, 'HTTP 503' FROM d;
	UPDATE salesmgmt.webhook_endpoint SET url = 'http://127.0.0.1:1/hook'});

# ------------------------- this library with the previous release's SQL
# (the DBA installed the new package and restarted, but has not updated)
my $waits = qr/salesmgmt webhook worker waits for ALTER EXTENSION salesmgmt UPDATE in database "upgraded".*\n.*DETAIL:  The database has salesmgmt \Q$prev\E; the library is \Q$cur\E/;
ok($node->wait_for_log($waits), "the webhook worker waits for the update of a database at $prev");
my ($wrc, $wout, $werr) = $node->psql('upgraded', "\\set VERBOSITY verbose\nSELECT salesmgmt.webhook_worker_start()");
like($werr, qr/ERROR:  55000: salesmgmt.webhook_worker_start\(\) needs salesmgmt \Q$cur\E in this database, which has \Q$prev\E/,
	"a function that needs $cur refuses with 55000 on $prev");
like($werr, qr/HINT:  Run ALTER EXTENSION salesmgmt UPDATE in this database\./, 'and hints at the update');
my $attempts_sql = 'SELECT count(*) FROM salesmgmt.webhook_attempt';
my $attempts_before = $node->safe_psql('upgraded', $attempts_sql);

my $tables_sql = q{
	SELECT c.oid::regclass FROM pg_class c
	 WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind IN ('r', 'p')
	 ORDER BY 1};
my @old_tables = split /\n/, $node->safe_psql('upgraded', $tables_sql);
# one query: "table count" lines
my $counts_sql = join("\nUNION ALL ", map { "SELECT '$_', count(*) FROM $_" } @old_tables) . ";\n";
my $before = $node->safe_psql('upgraded', $counts_sql);
my @empty = map { (split /\|/)[0] } grep { /\|0$/ } split /\n/, $before;
is("@empty", '', 'every table of ' . scalar(@old_tables) . " in $prev holds rows before the update");

# ------------------------------------------------------------- the update
# the counts after it in the same transaction: the worker, which starts
# delivering once the update commits, must not change them first
my ($rc, $out, $err) = $node->psql('upgraded',
	"BEGIN;\nALTER EXTENSION salesmgmt UPDATE;\n$counts_sql COMMIT;", on_error_stop => 1);
is($rc, 0, "ALTER EXTENSION salesmgmt UPDATE from $prev") or diag($err);
is($node->safe_psql('upgraded', q{SELECT extversion FROM pg_extension WHERE extname = 'salesmgmt'}),
	$cur, "the database is at $cur");
is($out, $before, 'every row survives the update (row counts per table equal)');

# the waiting worker goes on and delivers; the function works
ok($node->wait_for_log(qr/salesmgmt webhook worker goes on: database "upgraded" has salesmgmt \Q$cur\E/),
	'the webhook worker goes on after the update');
ok($node->poll_query_until('upgraded', "SELECT count(*) > $attempts_before FROM salesmgmt.webhook_attempt"),
	'and attempts the pending deliveries');
like($node->safe_psql('upgraded', 'SELECT salesmgmt.webhook_worker_start()'), qr/^[1-9]\d*$/,
	'salesmgmt.webhook_worker_start() works after the update');
# the tables new in this version get rows too (the file only fills empty tables)
$node->command_ok(
	[ 'psql', '-X', '-q', '-f', "$root/test/sql/fill_every_table.sql", '-d', $node->connstr('upgraded') ],
	"every table of $cur filled after the update");

# ------------------------------------------- the same catalog as a fresh install
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION salesmgmt CASCADE');
my %catalog;
foreach my $db (qw(upgraded fresh))
{
	my ($crc, $cout, $cerr) = $node->psql($db, slurp_file("$root/test/sql/extension_catalog.sql"),
		on_error_stop => 1);
	is($crc, 0, "catalog query runs in $db") or diag($cerr);
	$catalog{$db} = "$cout\n";
	append_to_file("$tmp/catalog.$db", $catalog{$db});
}
my $lines = () = $catalog{fresh} =~ /\n/g;
cmp_ok($lines, '>', 1000, "the catalog of a fresh install has $lines lines");
if (!ok($catalog{upgraded} eq $catalog{fresh}, 'the upgraded database has the catalog of a fresh install'))
{
	my ($stdout, $stderr);
	IPC::Run::run([ 'diff', '-u', "$tmp/catalog.fresh", "$tmp/catalog.upgraded" ], '>', \$stdout, '2>', \$stderr);
	diag("--- fresh install\n+++ upgraded from $prev\n$stdout");
}

# ----------------------------------- the suites, on the upgrade path each time
# Each script of sql/ and test/pgtap/ creates the extension itself; a copy
# of it (and of its expected output) installs the previous release and
# updates it instead.
my $via_update = "CREATE EXTENSION salesmgmt VERSION '$prev' CASCADE; ALTER EXTENSION salesmgmt UPDATE;";
sub copy_via_update
{
	my ($from, $to) = @_;
	my $text = slurp_file($from);
	my $n = ($text =~ s/^CREATE EXTENSION salesmgmt;$/$via_update/mg);
	make_path(dirname($to));
	append_to_file($to, $text);
	return $n;
}

my $regress = "$tmp/regress_via_update";
my @regress = map { basename($_, '.sql') } sort glob("$root/sql/*.sql");
my $changed = 0;
foreach my $t (@regress)
{
	# (a script that installs a release by name tests an upgrade itself)
	$changed += copy_via_update("$root/sql/$t.sql", "$regress/sql/$t.sql") > 0
	  || slurp_file("$root/sql/$t.sql") =~ /^CREATE EXTENSION salesmgmt VERSION /m;
	copy_via_update("$root/expected/$t.out", "$regress/expected/$t.out");
}
# (scripts that read the documentation find it beside their sql/ folder)
symlink("$root/docs", "$regress/docs") or die "symlink: $!";
is($changed, scalar(@regress), "every regression script (" . scalar(@regress) . ") goes through an update");
# and with settings other than the defaults (the node has
# webhook_allow_private_networks on): each test sets what it relies on, so
# `make installcheck` passes whatever a DBA's postgresql.conf says
# (the session settings for the database; the worker's, which only the
# server's configuration may set, in postgresql.conf)
my $odd_settings = q{
	SET salesmgmt.reporting_currency = 'EUR';
	SET salesmgmt.change_note = 'set for the database'};
$node->safe_psql('postgres', 'CREATE DATABASE regress_upgraded');
$node->safe_psql('postgres', $odd_settings =~ s/\bSET\b/ALTER DATABASE regress_upgraded SET/gr);
$node->append_conf('postgresql.conf', q{
salesmgmt.webhook_retry_schedule = '1s,2s'
salesmgmt.webhook_concurrency = 2
salesmgmt.webhook_retention = 60
salesmgmt.webhook_timeout = 1000
salesmgmt.webhook_connect_timeout = 500
});
$node->reload;
my $regress_ok = $node->command_ok(
	[ $ENV{PG_REGRESS}, '--bindir=', "--inputdir=$regress", "--outputdir=$regress",
	  '--use-existing', '--host=' . $node->host, '--port=' . $node->port,
	  '--dbname=regress_upgraded', @regress ],
	'the regression suite passes on the upgrade path, with settings other than the defaults');
diag(slurp_file("$regress/regression.diffs")) if !$regress_ok && -e "$regress/regression.diffs";

my $pgtap = "$tmp/pgtap_via_update";
# the pgTAP scripts include fixtures from test/sql by relative path
make_path("$pgtap/test");
symlink("$root/test/sql", "$pgtap/test/sql") or die "symlink: $!";
$node->safe_psql('postgres', 'CREATE DATABASE pgtap_upgraded');
$node->safe_psql('postgres', $odd_settings =~ s/\bSET\b/ALTER DATABASE pgtap_upgraded SET/gr);
$node->safe_psql('pgtap_upgraded', 'CREATE EXTENSION pgtap');
foreach my $f (sort glob("$root/test/pgtap/*.sql"))
{
	my $copy = "$pgtap/test/pgtap/" . basename($f);
	is(copy_via_update($f, $copy), 1, basename($f) . ' creates the extension once, now through the update');
	$node->command_ok([ 'pg_prove', '-d', 'pgtap_upgraded', $copy ],
		'pgTAP ' . basename($f) . ' passes on the upgrade path');
}

$node->stop;
done_testing();

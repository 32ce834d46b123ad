# The bad-input sweep: every SQL-callable function of the extension, found
# from the catalog (so new functions are covered without touching this
# file), is called with NULLs, zero, negative, huge and malformed arguments
# (test/sql/sweep_calls.sql makes the calls), first as a superuser, then
# as a rep.  Each call must return or raise an error with a meaningful
# SQLSTATE: not an internal error (class XX, e.g. an elog without errcode,
# "cache lookup failed", an invalid memory request), not a system error
# (58), not a statement timeout (5 s).  The server must never crash, and
# the data is unchanged afterwards (each call runs in a subtransaction that
# is rolled back, so anything left behind escaped the transaction).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use SmCluster;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $node = SmCluster::node_with_db('sweep', 'sweep');
SmCluster::psql_file_ok($node, 'sweep', "$root/scripts/datagen.sql", 'demo data loaded',
	'scale=300', 'seed=3');
$node->safe_psql('sweep', q{
	CREATE ROLE sweep_rep LOGIN;
	GRANT salesmgmt_rep TO sweep_rep;
	UPDATE salesmgmt.rep SET db_role = 'sweep_rep' WHERE rep_id = 7;
});

# every table of the extension: row count and a digest of its rows
sub fingerprint
{
	my @tables = split /\n/, $node->safe_psql('sweep', q{
		SELECT c.oid::regclass FROM pg_class c
		 WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind IN ('r', 'p')
		 ORDER BY 1});
	return join("\n", map {
		"$_ " . $node->safe_psql('sweep',
			"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM $_ t")
	} @tables);
}
my $before = fingerprint();

my @calls = map { [ split /\t/, $_, 3 ] }
  split /\n/, $node->safe_psql('sweep', slurp_file("$root/test/sql/sweep_calls.sql"),
	extra_params => [ '-F', "\t" ]);
my %func_calls;
push @{ $func_calls{ $_->[1] } }, $_->[0] foreach @calls;
cmp_ok(scalar(keys %func_calls), '>=', 5,
	'found the functions of the extension (' . scalar(keys %func_calls) . ' functions, '
	  . scalar(@calls) . ' calls)');

# One DO block per call.  The call runs in a block whose handler reports
# the outcome; a call that returns raises ZZ999 so that it, too, is
# rolled back.  WHEN OTHERS does not catch a cancelled statement, hence
# its own handler.
sub script
{
	my $s = "SET statement_timeout = '5s';\nSET client_min_messages = notice;\n";
	foreach my $c (@calls)
	{
		my ($n, $func, $stmt) = @$c;
		$s .= "DO \$sweep\$ BEGIN $stmt; RAISE EXCEPTION USING ERRCODE = 'ZZ999'; "
		  . "EXCEPTION WHEN query_canceled THEN RAISE NOTICE 'sweep $n 57014 %', SQLERRM; "
		  . "WHEN OTHERS THEN RAISE NOTICE 'sweep $n % %', SQLSTATE, "
		  . "replace(left(SQLERRM, 200), E'\\n', ' '); END \$sweep\$;\n";
	}
	return $s;
}

sub sweep
{
	my ($who, @user) = @_;
	my ($out, $err) = ('', '');
	$node->psql('sweep', script(), stdout => \$out, stderr => \$err,
		extra_params => [@user]);
	my %outcome;
	while ($err =~ /NOTICE:  sweep (\d+) (\w{5}) ?(.*)$/mg)
	{
		$outcome{$1} = [ $2, $3 ];
	}
	my %codes;
	foreach my $func (sort keys %func_calls)
	{
		my @bad;
		foreach my $n (@{ $func_calls{$func} })
		{
			my ($call) = grep { $_->[0] == $n } @calls;
			my $o = $outcome{$n};
			if (!defined $o)
			{
				push @bad, "no outcome (server gone?): $call->[2]";
				next;
			}
			$codes{ $o->[0] }++;
			push @bad, "$o->[0] $o->[1]: $call->[2]"
			  if $o->[0] =~ /^(XX|58)/        # internal or system error
			  || $o->[0] eq '57014'           # did not finish in 5 s
			  || $o->[0] =~ /^(42883|42725)$/;    # the sweep's own call did not resolve
		}
		ok(!@bad, "$who: $func handles hostile input") or diag(join("\n", @bad));
	}
	note("$who outcomes: " . join(', ', map { "$_=$codes{$_}" } sort keys %codes));
	unlike($err, qr/server closed the connection|terminating connection|no connection to the server/,
		"$who: the connection survived the sweep");
	return \%codes;
}

sweep('superuser');
my $rep_codes = sweep('rep', '-U', 'sweep_rep');
cmp_ok($rep_codes->{'42501'} // 0, '>', 0, 'rep: calls of admin-only functions are refused with 42501');

is($node->safe_psql('sweep', 'SELECT 1'), '1', 'server is up after the sweep');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|was terminated|PANIC|server process .* exited with exit code/,
	'server log shows no crash');
is(fingerprint(), $before, 'data unchanged after the sweep');

$node->stop;
done_testing();

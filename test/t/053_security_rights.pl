# The rights table of docs/security.md, enforced: this test reads the
# table from the page (so the documentation and the policies cannot drift
# apart) and tries every cell as each role against three kinds of rows:
# the role's own (subject "self"), a rep in a team it manages ("managed")
# and a rep of another tree ("other").  A cell says which of them the
# operation must reach:
#   all       every row                  tree     self and managed
#   managed   managed only (not self)    own      self only
#   leaderboard  every row here (the scheme's leaderboard_visibility is
#             'scheme'; test/pgtap/security_rls.sql covers team/private)
#   none      nothing
# "Reaches" means: a select counts the subject's rows, an insert succeeds,
# an update or delete changes a row, a function call returns.  Refusals
# are 42501 (no privilege, a policy, a trigger's hint), 42704 (a deal the
# role does not see) or no rows; any other error is a broken probe and
# fails.  Every probe runs in a subtransaction that is rolled back.
#
# The world is test/sql/security_world.sql: manager m2 (rep 2) manages
# teams Mid and Leaf (reps 3, 4, 5), rep r4 is rep 4, r8 (rep 8) is in
# another tree; sec_admin is an admin, sec_bi an analyst.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";

# ------------------------------------------------------------ the table
my @rows;
my @roles;
foreach my $line (split /\n/, slurp_file("$root/docs/security.md"))
{
	if ($line =~ /^\| table or function \| operation \| (.*) \|$/)
	{
		@roles = split / \| /, $1;
		next;
	}
	next unless @roles && $line =~ /^\| `(\w+)` \| (\w+) \| (.*) \|$/;
	my ($object, $op, $cells) = ($1, $2, $3);
	my @cells = split / \| /, $cells;
	die "row $object $op has " . scalar(@cells) . " cells for " . scalar(@roles) . " roles"
	  unless @cells == @roles;
	push @rows, [ $object, $op, { map { $roles[$_] => $cells[$_] } 0 .. $#roles } ];
}
is_deeply(\@roles, [qw(salesmgmt_admin salesmgmt_manager salesmgmt_rep salesmgmt_analyst)],
	'the rights table has a column per role');
cmp_ok(scalar(@rows), '>=', 30, 'the rights table has its rows (' . scalar(@rows) . ')');

# ------------------------------------------------------------ the probes
# %X%: the subject rep; %ME%: the role's own rep (1 for roles without one)
my %probe = (
	'deal select' => 'SELECT count(*) FROM salesmgmt.deal WHERE owner_rep_id = %X%',
	'deal insert' => q{INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id)
	                   VALUES ('probe', %X%, %X%, 1, 1)},
	'deal update' => 'UPDATE salesmgmt.deal SET amount = amount WHERE owner_rep_id = %X%',
	'deal delete' => 'DELETE FROM salesmgmt.deal WHERE deal_id = 10 * %X% + 2',
	'move_deal execute' => q{SELECT count(*) FROM salesmgmt.move_deal(10 * %X% + 2, 'Won')},
	'account select' => 'SELECT count(*) FROM salesmgmt.account WHERE owner_rep_id = %X%',
	'account insert' => q{INSERT INTO salesmgmt.account (name, owner_rep_id) VALUES ('probe', %X%)},
	'account update' => 'UPDATE salesmgmt.account SET name = name WHERE owner_rep_id = %X%',
	'contact select' => 'SELECT count(*) FROM salesmgmt.contact WHERE account_id = %X%',
	'contact insert' => q{INSERT INTO salesmgmt.contact (account_id, name) VALUES (%X%, 'probe')},
	'contact update' => 'UPDATE salesmgmt.contact SET name = name WHERE account_id = %X%',
	'payment select' => 'SELECT count(*) FROM salesmgmt.payment WHERE deal_id = 10 * %X% + 1',
	'payment insert' => q{INSERT INTO salesmgmt.payment (deal_id, amount, currency) VALUES (10 * %X% + 1, 1, 'USD')},
	'deal_stage_history select' => 'SELECT count(*) FROM salesmgmt.deal_stage_history WHERE owner_rep_id = %X%',
	'activity select' => 'SELECT count(*) FROM salesmgmt.activity WHERE rep_id = %X%',
	'activity insert' => q{INSERT INTO salesmgmt.activity (kind, account_id, rep_id) VALUES ('call', %X%, %X%)},
	'activity update' => 'UPDATE salesmgmt.activity SET outcome = outcome WHERE rep_id = %X%',
	'activity delete' => 'DELETE FROM salesmgmt.activity WHERE rep_id = %X%',
	'sales_task select' => 'SELECT count(*) FROM salesmgmt.sales_task WHERE rep_id = %X%',
	'sales_task insert' => q{INSERT INTO salesmgmt.sales_task (rep_id, title) VALUES (%X%, 'probe')},
	'sales_task update' => 'UPDATE salesmgmt.sales_task SET status = status WHERE rep_id = %X%',
	'sales_task delete' => 'DELETE FROM salesmgmt.sales_task WHERE rep_id = %X%',
	'quota select' => 'SELECT count(*) FROM salesmgmt.quota WHERE rep_id = %X%',
	'quota insert' => q{INSERT INTO salesmgmt.quota (rep_id, period_start, period_end, amount)
	                    VALUES (%X%, '2026-04-01', '2026-06-30', 10)},
	'quota update' => 'UPDATE salesmgmt.quota SET amount = amount + 1 WHERE rep_id = %X%',
	'review select' => 'SELECT count(*) FROM salesmgmt.review WHERE rep_id = %X%',
	'review insert' => q{INSERT INTO salesmgmt.review (rep_id, reviewer_rep_id, period_start, period_end, discipline)
	                     VALUES (%X%, %ME%, '2026-04-01', '2026-06-30', 3)},
	'review update' => 'UPDATE salesmgmt.review SET comment = coalesce(comment, \'\') WHERE rep_id = %X%',
	'forecast_adjustment select' => 'SELECT count(*) FROM salesmgmt.forecast_adjustment WHERE rep_id = %X%',
	'forecast_adjustment insert' => q{INSERT INTO salesmgmt.forecast_adjustment
	                                  (period_start, period_end, rep_id, category, amount, currency)
	                                  VALUES ('2026-01-01', '2026-03-31', %X%, 'commit', 5, 'USD')},
	'training_enrollment select' => 'SELECT count(*) FROM salesmgmt.training_enrollment WHERE rep_id = %X%',
	'training_enrollment insert' => 'INSERT INTO salesmgmt.training_enrollment (rep_id, course_id) VALUES (%X%, 2)',
	'training_enrollment update' => q{UPDATE salesmgmt.training_enrollment
	                                  SET status = 'completed', score = 90, completed_at = now()
	                                  WHERE rep_id = %X% AND course_id = 1},
	'training_plan_assignment select' => 'SELECT count(*) FROM salesmgmt.training_plan_assignment WHERE rep_id = %X%',
	'recognition select' => 'SELECT count(*) FROM salesmgmt.recognition WHERE rep_id = %X%',
	'recognition insert' => q{INSERT INTO salesmgmt.recognition (rep_id, kind, title, granted_by)
	                          VALUES (%X%, 'badge', 'probe', %ME%)},
	'scorecard select' => 'SELECT count(*) FROM salesmgmt.scorecard WHERE rep_id = %X%',
	'commission_line select' => 'SELECT count(*) FROM salesmgmt.commission_line WHERE rep_id = %X%',
	'feedback select' => 'SELECT count(*) FROM salesmgmt.feedback WHERE rep_id = %X%',
	'feedback insert' => q{INSERT INTO salesmgmt.feedback (source, rep_id, category, sentiment, body)
	                       VALUES ('rep', %X%, 'probe', 'neutral', 'probe')},
	'create_quote execute' => 'SELECT count(*) FROM salesmgmt.create_quote(10 * %X% + 2)',
	'subscription select' => 'SELECT count(*) FROM salesmgmt.subscription WHERE account_id = %X%',
	'subscription_version select' => 'SELECT count(*) FROM salesmgmt.subscription_version WHERE account_id = %X%',
	'change_subscription execute' => 'SELECT count(*) FROM salesmgmt.change_subscription(%X%, current_date, 2, 20)',
	'cancel_subscription execute' => 'SELECT count(*) FROM salesmgmt.cancel_subscription(%X%)',
	'generate_renewals execute' => 'SELECT count(*) FROM salesmgmt.generate_renewals(0)',
	'rep_team_history select' => 'SELECT count(*) FROM salesmgmt.rep_team_history WHERE rep_id = %X%',
	'quota_history select' => 'SELECT count(*) FROM salesmgmt.quota_history WHERE rep_id = %X%',
	'backfill_rep_team execute' => q{SELECT count(*) FROM salesmgmt.backfill_rep_team(%X%, NULL, '2000-01-01', '2000-02-01')},
	'change_log select' => 'SELECT count(*) FROM salesmgmt.change_log WHERE owner_rep_id = %X% AND account_id IS NULL',
);

# the login of each role, its rep, and the subjects it is tried on
my %login = (
	salesmgmt_admin => [ 'sec_admin', undef, { other => 8, other2 => 4 } ],
	salesmgmt_manager => [ 'sec_m2', 2, { self => 2, managed => 4, other => 8 } ],
	salesmgmt_rep => [ 'sec_r4', 4, { self => 4, other => 8, peer_manager => 3 } ],
	salesmgmt_analyst => [ 'sec_bi', undef, { other => 8, other2 => 4 } ],
);
my %reaches = (
	all => sub { 1 },
	leaderboard => sub { 1 },
	tree => sub { $_[0] eq 'self' || $_[0] eq 'managed' },
	managed => sub { $_[0] eq 'managed' },
	own => sub { $_[0] eq 'self' },
	none => sub { 0 },
);

# ------------------------------------------------------------ the world
my $node = PostgreSQL::Test::Cluster->new('rights');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'salesmgmt'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE rights');
$node->safe_psql('rights', 'CREATE EXTENSION salesmgmt CASCADE');
# the world file grants on the session's temporary schema (pgTAP's tables):
# give it one
$node->safe_psql('rights', 'CREATE TEMP TABLE t (); BEGIN; \i ' . "$root/test/sql/security_world.sql" . "\nCOMMIT;");
$node->safe_psql('rights', q{
	-- the world chose its ids: the probes' rows take new ones
	SELECT setval(pg_get_serial_sequence('salesmgmt.' || t, c), 1000)
	  FROM (VALUES ('account', 'account_id'), ('contact', 'contact_id'), ('deal', 'deal_id'),
	               ('team', 'team_id'), ('rep', 'rep_id')) AS s(t, c);
	CREATE ROLE sec_bi LOGIN;
	GRANT salesmgmt_analyst TO sec_bi;
	INSERT INTO salesmgmt.training_course (course_id, name, hours) VALUES (1, 'Discovery calls', 2), (2, 'Negotiation', 3);
	INSERT INTO salesmgmt.kpi_scheme (scheme_id, name) VALUES (1, 'Q1 contest');
	SET session_replication_role = replica;  -- rows the engines normally write
	INSERT INTO salesmgmt.scorecard (scheme_id, rep_id, period_start, period_end, score, coverage, rank)
	SELECT 1, r, '2026-01-01', '2026-03-31', 50 + r, 100, 9 - r FROM generate_series(1, 8) r;
	INSERT INTO salesmgmt.commission_line (period_start, period_end, rep_id, kind, amount, currency)
	SELECT '2026-01-01', '2026-03-31', r, 'earned', 100 * r, 'USD' FROM generate_series(1, 8) r;
	SET session_replication_role = origin;
	INSERT INTO salesmgmt.review (rep_id, reviewer_rep_id, period_start, period_end, discipline)
	VALUES (2, 1, '2026-01-01', '2026-03-31', 4), (3, 2, '2026-01-01', '2026-03-31', 4),
	       (4, 2, '2026-01-01', '2026-03-31', 4), (8, 7, '2026-01-01', '2026-03-31', 4);
	INSERT INTO salesmgmt.forecast_adjustment (period_start, period_end, rep_id, category, amount, currency)
	SELECT '2026-01-01', '2026-03-31', r, 'commit', 10, 'USD' FROM generate_series(1, 8) r;
	INSERT INTO salesmgmt.training_enrollment (rep_id, course_id) SELECT r, 1 FROM generate_series(1, 8) r;
	INSERT INTO salesmgmt.training_plan_assignment (scheme_id, period_start, period_end, rep_id, course_id)
	SELECT 1, '2026-01-01', '2026-03-31', r, 1 FROM generate_series(1, 8) r;
	INSERT INTO salesmgmt.recognition (rep_id, kind, title, granted_by)
	SELECT r, 'award', 'Rookie', 1 FROM generate_series(2, 8) r;
	INSERT INTO salesmgmt.feedback (source, rep_id, category, sentiment, body)
	SELECT 'rep', r, 'product', 'neutral', 'More demos' FROM generate_series(1, 8) r;
	-- a product line on each rep's second deal, to quote
	INSERT INTO salesmgmt.product (product_id, sku, name, family) VALUES (1, 'SEAT', 'Seat', 'CRM');
	INSERT INTO salesmgmt.price_book (price_book_id, name, currency, is_default) VALUES (1, 'List USD', 'USD', true);
	INSERT INTO salesmgmt.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 100);
	INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) SELECT 10 * r + 2, 1, 1 FROM generate_series(1, 8) r;
	-- subscription r of account r (docs/subscriptions.md)
	INSERT INTO salesmgmt.product (product_id, sku, name, recurring, billing_period) VALUES (2, 'SUB', 'Subscription', true, 'month');
	INSERT INTO salesmgmt.subscription (subscription_id, account_id, product_id, quantity, mrr, currency)
	SELECT r, r, (SELECT product_id FROM salesmgmt.product WHERE sku = 'SUB'), 1, 10, 'USD' FROM generate_series(1, 8) r;
});

# One probe: as the role, in a subtransaction rolled back by raising ZZ999
# (created in the session that runs the probes: pg_temp).

my $function = q{
	CREATE FUNCTION pg_temp.probe(p_role name, p_sql text) RETURNS text LANGUAGE plpgsql AS $f$
	DECLARE
	    n bigint;
	BEGIN
	    BEGIN
	        EXECUTE format('SET LOCAL ROLE %I', p_role);
	        IF p_sql ~* '^\s*select' THEN
	            EXECUTE p_sql INTO n;
	        ELSE
	            EXECUTE p_sql;
	            GET DIAGNOSTICS n = ROW_COUNT;
	        END IF;
	        RAISE EXCEPTION '%', n USING ERRCODE = 'ZZ999';
	    EXCEPTION WHEN SQLSTATE 'ZZ999' THEN
	        RETURN CASE WHEN SQLERRM::bigint > 0 THEN 'reached' ELSE 'refused: no rows' END;
	    WHEN insufficient_privilege OR undefined_object THEN
	        RETURN 'refused: ' || SQLSTATE;
	    WHEN OTHERS THEN
	        RETURN 'broken: ' || SQLSTATE || ' ' || SQLERRM;
	    END;
	END
	$f$;
};

# every cell, every subject: one script, one line of output per probe
my @checks;
my $script = $function;
foreach my $row (@rows)
{
	my ($object, $op, $cells) = @$row;
	my $sql = $probe{"$object $op"};
	ok(defined $sql, "the test has a probe for $object $op") or next;
	foreach my $role (@roles)
	{
		my ($login, $me, $subjects) = @{ $login{$role} };
		my $cell = $cells->{$role};
		ok(exists $reaches{$cell}, "cell '$cell' of $object $op for $role is one the test knows") or next;
		foreach my $subject (sort keys %$subjects)
		{
			(my $q = $sql) =~ s/%X%/$subjects->{$subject}/g;
			my $mine = $me // 1;
			$q =~ s/%ME%/$mine/g;
			$q =~ s/\s+/ /g;
			push @checks, [ "$role $object $op on $subject\'s rows", $reaches{$cell}->($subject), $cell ];
			$script .= "SELECT pg_temp.probe('$login', \$q\$$q\$q\$);\n";
		}
	}
}
my @outcomes = split /\n/, $node->safe_psql('rights', $script);
is(scalar(@outcomes), scalar(@checks), 'every probe ran');
for my $i (0 .. $#checks)
{
	my ($name, $expect, $cell) = @{ $checks[$i] };
	my $got = $outcomes[$i] // 'missing';
	if ($got =~ /^broken/)
	{
		fail("$name: the probe works ($got)");
	}
	elsif ($expect)
	{
		is($got, 'reached', "$name: allowed ($cell)");
	}
	else
	{
		like($got, qr/^refused/, "$name: refused ($cell)");
	}
}

done_testing();

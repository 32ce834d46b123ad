# Products on a generated data set (scripts/datagen.sql -v products=1):
# the amounts of the loaded deals are the sums of their lines; the
# affinities the generator plants between product families are found by
# product_affinity, which agrees with the plain-SQL self-join of the
# benchmark (bench/products_reference.sql); next_best_products recommends
# the planted family; and pg_dump/pg_restore keeps catalogue, lines, quotes
# and amounts as they were, with the triggers working afterwards.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use SmCluster;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $node = SmCluster::node_with_db('products', 'src');
SmCluster::psql_file_ok($node, 'src', "$root/scripts/datagen.sql", 'data set with products loaded',
	'ON_ERROR_STOP=1', 'scale=2000', 'seed=5', 'products=1', 'anchor=2026-06-15');
SmCluster::psql_file_ok($node, 'src', "$root/bench/products_reference.sql", 'reference loaded',
	'ON_ERROR_STOP=1', 'bulk=50');

is($node->safe_psql('src', q{
	SELECT count(*) FILTER (WHERE n.lines = 0), count(*) FILTER (WHERE d.amount <> n.total),
	       count(*) FILTER (WHERE d.max_discount_pct IS DISTINCT FROM n.maxd)
	  FROM salesmgmt.deal d
	  CROSS JOIN LATERAL (SELECT count(*) AS lines, sum(l.line_amount) AS total, max(l.discount_pct) AS maxd
	                        FROM salesmgmt.deal_line l WHERE l.deal_id = d.deal_id) n}),
	'0|0|0', 'every deal has lines; amount and max_discount_pct follow them');

# the planted affinities
my $top = $node->safe_psql('src', q{
	SELECT string_agg(family || '>' || other_family, ' ' ORDER BY family)
	  FROM (SELECT * FROM salesmgmt.product_affinity() LIMIT 2) r});
is($top, 'Analytics>Training Training>Analytics', 'the strongest rule is the planted Analytics/Training pair');
is($node->safe_psql('src', q{
	SELECT confidence FROM salesmgmt.product_affinity() WHERE family = 'Training' AND other_family = 'Analytics'}),
	'1.0000', 'whoever bought Training bought Analytics');
is($node->safe_psql('src', q{
	SELECT confidence FROM salesmgmt.product_affinity() WHERE family = 'Hardware' AND other_family = 'Support'}),
	'1.0000', 'whoever bought Hardware bought Support');
ok($node->safe_psql('src', q{
	SELECT lift FROM salesmgmt.product_affinity() WHERE family = 'Analytics' AND other_family = 'Training'}) > 3,
	'Analytics => Training has a lift above 3');
is($node->safe_psql('src', q{
	SELECT count(*) FROM salesmgmt.product_affinity() WHERE family = 'Training' AND other_family = 'Hardware'}),
	'0', 'Training never meets Hardware');

foreach my $since ('NULL', q{'2026-01-01'}, q{'2030-01-01'})
{
	is($node->safe_psql('src', qq{
		SELECT (SELECT coalesce(md5(string_agg(a::text, '|')), '') FROM salesmgmt.product_affinity($since) a)
		     = (SELECT coalesce(md5(string_agg(a::text, '|')), '') FROM products_bench.affinity($since) a)}),
		't', "product_affinity($since) equals the plain-SQL self-join");
}

# an account that has won Analytics only is offered Training first
$node->safe_psql('src', q{
	INSERT INTO salesmgmt.account (name, owner_rep_id) VALUES ('Fresh Analytics buyer', 6);
	INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id)
	SELECT 'first buy', max(account_id), 6, 1, 1 FROM salesmgmt.account;
	INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) SELECT max(deal_id), 4, 10 FROM salesmgmt.deal;
	SELECT salesmgmt.move_deal(max(deal_id), 'Closed Won') FROM salesmgmt.deal;});
my $reco = $node->safe_psql('src', q{
	SELECT family || ' ' || array_to_string(because_of, ',') || ' ' || (example_sku IS NOT NULL)
	  FROM salesmgmt.next_best_products((SELECT max(account_id) FROM salesmgmt.account), 1)});
is($reco, 'Training Analytics true', 'next_best_products: Training, because of Analytics, with an example product');

# a quote, then dump and restore
$node->safe_psql('src', q{
	SELECT salesmgmt.send_quote(salesmgmt.create_quote(min(deal_id))) FROM salesmgmt.deal WHERE closed_at IS NULL});
$node->safe_psql('src', 'DROP SCHEMA products_bench CASCADE');
SmCluster::dump_restore($node, 'products.dump');
foreach my $t ('product', 'price_book', 'price_book_entry', 'deal_line', 'quote', 'quote_line', 'quote_counter', 'deal',
	'deal_stage_history')
{
	my $q = "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM salesmgmt.$t t";
	is($node->safe_psql('dst', $q), $node->safe_psql('src', $q), "table $t restored with the same rows");
}
is($node->safe_psql('dst', q{
	WITH d AS (SELECT min(deal_id) AS id FROM salesmgmt.deal WHERE closed_at IS NULL AND currency = 'USD')
	INSERT INTO salesmgmt.deal_line (deal_id, product_id, quantity) SELECT id, 6, 1 FROM d RETURNING unit_price}),
	'1800.0000', 'after restore a new line is priced from the book');
is($node->safe_psql('dst', q{
	SELECT d.amount = sum(l.line_amount) FROM salesmgmt.deal d JOIN salesmgmt.deal_line l USING (deal_id)
	 WHERE d.deal_id = (SELECT min(deal_id) FROM salesmgmt.deal WHERE closed_at IS NULL AND currency = 'USD') GROUP BY d.amount}),
	't', 'and the deal amount follows');
like(($node->psql('dst', q{SELECT salesmgmt.create_quote(min(deal_id)) FROM salesmgmt.deal WHERE closed_at IS NULL}))[1],
	qr/^\d+$/, 'quotes are made after restore');
is($node->safe_psql('dst', q{SELECT string_agg(number, ' ' ORDER BY quote_id) FROM salesmgmt.quote}),
	'Q-' . $node->safe_psql('dst', q{SELECT extract(year FROM current_date)}) . '-000001 Q-'
	  . $node->safe_psql('dst', q{SELECT extract(year FROM current_date)}) . '-000002',
	'and numbered after the restored ones');

$node->stop;
done_testing();

# Webhook deliveries end to end: a real server with the worker started by
# the postmaster, a real HTTP receiver on 127.0.0.1 started here, and
# signatures checked with openssl, independently of the extension.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use IPC::Run;
use Time::HiRes qw(usleep time);
use SmWebhookReceiver;

my $node = PostgreSQL::Test::Cluster->new('webhook');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'salesmgmt'
salesmgmt.webhook_database = 'wh'
salesmgmt.webhook_allow_private_networks = on
salesmgmt.webhook_retry_schedule = '300ms, 600ms, 900ms'
salesmgmt.webhook_connect_timeout = '1s'
salesmgmt.webhook_timeout = '5s'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE wh');
$node->safe_psql('wh', q{
CREATE EXTENSION salesmgmt CASCADE;
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, email, team_id) VALUES (1, 'Ada', 'ada@example.com', 1);
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) VALUES (1, 'Acme', 1);
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (1, 'New business', 'free');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability, forecast_category, outcome) VALUES
  (1, 1, 'Qualify', 1, 0.2, 'pipeline', 'open'), (2, 1, 'Propose', 2, 0.6, 'best_case', 'open'),
  (3, 1, 'Won', 3, 1, 'closed', 'won'), (4, 1, 'Lost', 4, 0, 'omitted', 'lost');
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
SELECT g, 'Deal ' || g, 1, 1, 1, 1, 1000 FROM generate_series(1, 50) g;
});

# the worker the postmaster started is connected to the database
ok($node->poll_query_until('wh',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'salesmgmt webhook worker'}),
	'worker runs in the configured database');

my $rx = SmWebhookReceiver->new;
$rx->start;

sub sql { return $node->safe_psql('wh', $_[0]) }

sub wait_state
{
	my ($cond, $what) = @_;
	ok($node->poll_query_until('wh', "SELECT $cond"), $what)
	  or diag(sql(q{SELECT delivery_id, state, attempts, last_status, last_error FROM salesmgmt.webhook_delivery ORDER BY 1}));
}

# ------------------------------------------------------------------ signed
my ($endpoint, $secret) = split /\|/, sql("SELECT endpoint_id, secret FROM salesmgmt.create_webhook('" . $rx->url . "')");
sql('UPDATE salesmgmt.deal SET stage_id = 2 WHERE deal_id = 1');
ok($rx->wait_requests(1), 'the receiver got the delivery');
my ($req) = $rx->requests;
my ($event_id, $payload) = split /\|/, sql(q{SELECT event_id, payload FROM salesmgmt.webhook_event WHERE deal_id = 1});
is($req->{method}, 'POST', 'POST');
is($req->{path}, '/hook', 'to the endpoint path');
is($req->{headers}{'content-type'}, 'application/json', 'JSON body');
is($req->{headers}{'webhook-id'}, $event_id, 'webhook-id is the event id');
like($req->{headers}{'webhook-timestamp'}, qr/^\d{10}$/, 'webhook-timestamp in seconds');
cmp_ok(abs($req->{headers}{'webhook-timestamp'} - time()), '<', 60, 'webhook-timestamp is now');
is($req->{body}, $payload, 'the body is the stored payload, byte for byte');
is($req->{headers}{'webhook-signature'}, $rx->openssl_signature($secret, $req),
	'signature verified with openssl (HMAC-SHA256 over id.timestamp.body with the decoded secret)');
my $body = decode_json($req->{body});
is($body->{type}, 'deal.stage_changed', 'event type in the body');
is($body->{data}{deal}{stage_id}, 2, 'the deal after the change');
is($body->{data}{previous}{stage_id}, 1, 'the changed fields before: the stage');
ok(exists $body->{data}{previous}{stage_entered_at} && !exists $body->{data}{previous}{amount},
	'and only the fields that changed');
is($body->{data}{sequence}, 1, 'per-deal sequence');
wait_state(q{state = 'delivered' AND attempts = 1 AND last_status = 200 FROM salesmgmt.webhook_delivery WHERE delivery_id = 1},
	'delivery recorded as delivered');
is(sql(q{SELECT count(*) FROM salesmgmt.webhook_attempt WHERE delivery_id = 1 AND status = 200 AND duration > '0'}),
	1, 'the attempt is recorded with status and duration');

# ------------------------------------------------------------- rolled back
sql(q{BEGIN; UPDATE salesmgmt.deal SET amount = 111 WHERE deal_id = 2; ROLLBACK;});
sql(q{UPDATE salesmgmt.deal SET amount = 222 WHERE deal_id = 2});
ok($rx->wait_requests(2), 'the committed change arrives');
my @amounts = map { decode_json($_->{body})->{data}{deal}{amount} } grep { decode_json($_->{body})->{data}{deal}{deal_id} == 2 } $rx->requests;
is_deeply(\@amounts, [222], 'nothing was sent for the rolled-back change');

# ------------------------------------------------------------ 500 then 200
$rx->plan('500', '200');
my $n = scalar($rx->requests);
sql(q{UPDATE salesmgmt.deal SET stage_id = 3 WHERE deal_id = 3});
wait_state(q{state = 'delivered' FROM salesmgmt.webhook_delivery d JOIN salesmgmt.webhook_event e USING (event_id) WHERE e.deal_id = 3},
	'delivered after a 500');
my @got = grep { decode_json($_->{body})->{data}{deal}{deal_id} == 3 } $rx->requests;
is(scalar(@got), 2, 'the receiver got the event twice');
is($got[0]{headers}{'webhook-id'}, $got[1]{headers}{'webhook-id'}, 'with the same webhook-id');
is(sql(q{SELECT string_agg(a.status::text, ',' ORDER BY a.attempt) FROM salesmgmt.webhook_attempt a
       JOIN salesmgmt.webhook_delivery d USING (delivery_id) JOIN salesmgmt.webhook_event e USING (event_id) WHERE e.deal_id = 3}),
	'500,200', 'both attempts recorded');
is(sql(q{SELECT decode_json_type FROM (SELECT payload->>'type' AS decode_json_type FROM salesmgmt.webhook_event WHERE deal_id = 3) x}),
	'deal.won', 'a move into a won stage is deal.won');

# -------------------------------------------------------- down, then up
$rx->stop;
sql(q{UPDATE salesmgmt.deal SET amount = amount + 1 WHERE deal_id BETWEEN 10 AND 14});
wait_state(q{count(*) = 5 FROM salesmgmt.webhook_delivery d JOIN salesmgmt.webhook_event e USING (event_id)
             WHERE e.deal_id BETWEEN 10 AND 14 AND d.state = 'failed' AND d.last_error IS NOT NULL AND d.last_status IS NULL},
	'deliveries fail while the receiver is down');
like(sql(q{SELECT last_error FROM salesmgmt.webhook_delivery d JOIN salesmgmt.webhook_event e USING (event_id) WHERE e.deal_id = 10}),
	qr/connect/i, 'the error says the connection failed');
$rx->start;
wait_state(q{count(*) = 5 FROM salesmgmt.webhook_delivery d JOIN salesmgmt.webhook_event e USING (event_id)
             WHERE e.deal_id BETWEEN 10 AND 14 AND d.state = 'delivered'},
	'everything is delivered once the receiver is back');
my %seen = map { decode_json($_->{body})->{data}{deal}{deal_id} => 1 } $rx->requests;
is(scalar(grep { $seen{$_} } 10 .. 14), 5, 'the receiver has all five events');

# ----------------------------------------------------- Retry-After honoured
$rx->plan('503 Retry-After: 3', '200');
sql(q{UPDATE salesmgmt.deal SET amount = 5 WHERE deal_id = 4});
wait_state(q{count(*) = 1 FROM salesmgmt.webhook_attempt a JOIN salesmgmt.webhook_delivery d USING (delivery_id)
             JOIN salesmgmt.webhook_event e USING (event_id) WHERE e.deal_id = 4 AND a.status = 503},
	'503 recorded');
cmp_ok(sql(q{SELECT extract(epoch FROM d.next_attempt_at - (a.started_at + a.duration)) FROM salesmgmt.webhook_delivery d
           JOIN salesmgmt.webhook_attempt a USING (delivery_id) JOIN salesmgmt.webhook_event e USING (event_id)
          WHERE e.deal_id = 4 AND a.status = 503 AND d.state = 'failed'}), '>=', 2.9,
	'the next attempt waits for Retry-After (3 s), not the 300 ms schedule');
wait_state(q{state = 'delivered' FROM salesmgmt.webhook_delivery d JOIN salesmgmt.webhook_event e USING (event_id) WHERE e.deal_id = 4},
	'then delivered');

# ------------------------------------------------- dead after the schedule
$rx->plan('500');
sql(q{UPDATE salesmgmt.deal SET amount = 6 WHERE deal_id = 5});
wait_state(q{state = 'dead' AND attempts = 4 AND last_status = 500 FROM salesmgmt.webhook_delivery d
             JOIN salesmgmt.webhook_event e USING (event_id) WHERE e.deal_id = 5},
	'dead after the first attempt and three retries');
$rx->plan('200');
my $dead = sql(q{SELECT d.delivery_id FROM salesmgmt.webhook_delivery d JOIN salesmgmt.webhook_event e USING (event_id) WHERE e.deal_id = 5});
sql("SELECT salesmgmt.webhook_retry($dead)");
wait_state("state = 'delivered' AND attempts = 5 FROM salesmgmt.webhook_delivery WHERE delivery_id = $dead",
	'webhook_retry sends a dead delivery again');

# -------------------------------------------------- redirect not followed
$rx->plan('302 Location: ' . $rx->url('/elsewhere'), '200');
sql(q{UPDATE salesmgmt.deal SET amount = 7 WHERE deal_id = 6});
wait_state(q{count(*) = 1 FROM salesmgmt.webhook_attempt a JOIN salesmgmt.webhook_delivery d USING (delivery_id)
             JOIN salesmgmt.webhook_event e USING (event_id) WHERE e.deal_id = 6 AND a.status = 302},
	'302 recorded as a failed attempt');
like(sql(q{SELECT a.error FROM salesmgmt.webhook_attempt a JOIN salesmgmt.webhook_delivery d USING (delivery_id)
         JOIN salesmgmt.webhook_event e USING (event_id) WHERE e.deal_id = 6 AND a.status = 302}),
	qr{redirect to http://127\.0\.0\.1:\d+/elsewhere not followed}, 'the error names the redirect');
wait_state(q{state = 'delivered' FROM salesmgmt.webhook_delivery d JOIN salesmgmt.webhook_event e USING (event_id) WHERE e.deal_id = 6},
	'delivered on the retry to the same URL');
is(scalar(grep { $_->{path} eq '/elsewhere' } $rx->requests), 0, 'the redirect target was never requested');

# ----------------------------------------------------------------- ping
my $ping = sql("SELECT delivery_id FROM salesmgmt.webhook_ping($endpoint)");
wait_state("state = 'delivered' FROM salesmgmt.webhook_delivery WHERE delivery_id = $ping", 'ping delivered');
is(scalar(grep { decode_json($_->{body})->{type} eq 'webhook.ping' } $rx->requests), 1, 'the receiver got the ping');

# ------------------------------------------------------------- 410 Gone
$rx->plan('410');
sql(q{UPDATE salesmgmt.deal SET amount = 8 WHERE deal_id = 7});
wait_state("NOT active FROM salesmgmt.webhook_endpoint WHERE endpoint_id = $endpoint", '410 disables the endpoint');
like(sql("SELECT disabled_reason FROM salesmgmt.webhook_endpoint WHERE endpoint_id = $endpoint"), qr/410/, 'with the reason');
is(sql(q{SELECT state FROM salesmgmt.webhook_delivery d JOIN salesmgmt.webhook_event e USING (event_id) WHERE e.deal_id = 7}),
	'dead', 'the delivery that met 410 is dead');
sql(q{UPDATE salesmgmt.deal SET amount = 9 WHERE deal_id = 8});
is(sql(q{SELECT count(*) FROM salesmgmt.webhook_event WHERE deal_id = 8}), 0, 'no events for a disabled endpoint');
$rx->plan('200');

# --------------------------------------- loopback refused unless allowed
$node->safe_psql('wh', 'ALTER SYSTEM SET salesmgmt.webhook_allow_private_networks = off');
$node->reload;
my ($rc, $out, $err) = $node->psql('wh', "SELECT salesmgmt.create_webhook('" . $rx->url . "')");
like($err, qr/points to a loopback address/, 'a literal loopback URL is refused when created');
# a name that resolves to loopback passes creation, but not the connection
my $by_name = sql("SELECT endpoint_id FROM salesmgmt.create_webhook('http://localhost:" . $rx->port . "/by-name')");
my $before = scalar($rx->requests);
sql(q{UPDATE salesmgmt.deal SET amount = 10 WHERE deal_id = 9});
wait_state("state = 'failed' FROM salesmgmt.webhook_delivery WHERE endpoint_id = $by_name",
	'the delivery to a name resolving to loopback fails');
like(sql("SELECT last_error FROM salesmgmt.webhook_delivery WHERE endpoint_id = $by_name"),
	qr/refused to connect to (127\.0\.0\.1|::1), a loopback address/, 'refused on the address connected to');
is(scalar($rx->requests), $before, 'nothing reached the receiver');
$node->safe_psql('wh', 'ALTER SYSTEM SET salesmgmt.webhook_allow_private_networks = on');
$node->reload;
wait_state("state = 'delivered' FROM salesmgmt.webhook_delivery WHERE endpoint_id = $by_name",
	'delivered once the setting allows private networks (read on reload)');

# ------------------------------------------------------------ retention
$node->safe_psql('wh', q{ALTER SYSTEM SET salesmgmt.webhook_retention = '1s'});
$node->reload;
wait_state(q{count(*) = 0 FROM salesmgmt.webhook_delivery WHERE state = 'delivered'}, 'delivered rows purged after the retention');
is(sql(q{SELECT count(*) FROM salesmgmt.webhook_delivery WHERE state = 'dead'}), 1, 'the dead delivery is kept');
is(sql(q{SELECT count(*) FROM salesmgmt.webhook_event e WHERE NOT EXISTS
        (SELECT 1 FROM salesmgmt.webhook_delivery d WHERE d.event_id = e.event_id)}), 0,
	'events without deliveries are purged with them');
is(sql(q{SELECT count(*) FROM salesmgmt.webhook_attempt a WHERE NOT EXISTS
        (SELECT 1 FROM salesmgmt.webhook_delivery d WHERE d.delivery_id = a.delivery_id)}), 0,
	'and their attempts');

# ------------------------------------- events of emit_event, any concern
my ($ev_endpoint, $ev_secret) = split /\|/, sql(q{
INSERT INTO salesmgmt.webhook_event_type (event_type, concern, description) VALUES ('app.thing_done', 'app', 'A thing was done.');
SELECT endpoint_id, secret FROM salesmgmt.create_webhook('} . $rx->url('/events') . q{', ARRAY['app.*'])});
my $ev_id = sql(q{SELECT salesmgmt.emit_event('app.thing_done', 'thing', 7, '{"n": 7}')});
wait_state(qq{state = 'delivered' FROM salesmgmt.webhook_delivery WHERE event_id = '$ev_id' AND endpoint_id = $ev_endpoint},
	'an emit_event event is delivered');
my ($ev_req) = grep { $_->{path} eq '/events' } $rx->requests;
is($ev_req->{headers}{'webhook-id'}, $ev_id, 'with its event id');
is($ev_req->{headers}{'webhook-signature'}, $rx->openssl_signature($ev_secret, $ev_req), 'signed');
my $ev_body = decode_json($ev_req->{body});
is_deeply([ sort keys %$ev_body ], [ 'data', 'timestamp', 'type' ], 'body: type, timestamp, data');
is($ev_body->{type}, 'app.thing_done', 'the type');
is_deeply($ev_body->{data}, { n => 7 }, 'the data as given');

# ------------------------------------------- a cap on requests in flight
# max_in_flight = 1: each request starts only after the previous answer,
# so they arrive at least the receiver's delay apart.
$rx->plan('200 delay=300');
my $capped = sql(q{
INSERT INTO salesmgmt.webhook_event_type (event_type, concern, description) VALUES ('cap.test', 'app', 'Capped.');
INSERT INTO salesmgmt.webhook_endpoint (url, event_types, max_in_flight) VALUES ('} . $rx->url('/capped') . q{', '{cap.*}', 1)
RETURNING endpoint_id});
sql(q{SELECT salesmgmt.emit_event('cap.test', NULL, NULL, jsonb_build_object('n', g)) FROM generate_series(1, 4) g});
wait_state(qq{count(*) = 4 FROM salesmgmt.webhook_delivery WHERE endpoint_id = $capped AND state = 'delivered'},
	'the capped endpoint got its deliveries');
my @arrivals = sort { $a <=> $b } map { $_->{time} } grep { $_->{path} eq '/capped' } $rx->requests;
is(scalar(@arrivals), 4, 'four requests');
ok(!grep({ $arrivals[$_] - $arrivals[$_ - 1] < 0.29 } 1 .. $#arrivals),
	'one at a time: each after the previous answer')
  or diag("arrivals: @arrivals");
$rx->plan('200');

# ---------------------- a transaction that writes long after it started
# The claim scans the queue index from a floor: the oldest start of the
# transactions that have written something.  This one starts, writes
# nothing for 2 s while other events are committed and claimed (the floor
# moves past its start), then emits an event: its next_attempt_at is
# before the floor, and the claims from the floor never see it; the
# sweep, a claim from the beginning at least once a second, must.
my $late = IPC::Run::start(
	[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('wh'),
	  '-c', q{BEGIN; SELECT pg_sleep(2); SELECT salesmgmt.emit_event('app.thing_done', 'thing', 99, '{"n": 99}'); COMMIT;} ],
	'>', \my $late_out, '2>', \my $late_err);
for my $i (1 .. 12)
{
	sql(qq{SELECT salesmgmt.emit_event('app.thing_done', 'thing', 100 + $i, '{"n": $i}')});
	usleep(250_000);
}
$late->finish;
my $late_committed = time();
is($late_err // '', '', 'the long transaction committed its event');
# (the retention set above purges it once delivered: ask the receiver)
my ($late_req);
foreach (1 .. 600)
{
	($late_req) = grep { $_->{path} eq '/events' && decode_json($_->{body})->{data}{n} == 99 } $rx->requests;
	last if $late_req;
	usleep(100_000);
}
ok($late_req, 'its event is delivered');
cmp_ok($late_req ? $late_req->{time} - $late_committed : 999, '<', 10, 'within seconds of its commit');

# ------------------------------ docs/webhooks.md lists every event type
# one row per type registered by the extension, exactly as generated here
# from salesmgmt.webhook_event_type: type, concern, description, JSON Schema
my $doc = slurp_file("$ENV{SM_ROOT}/docs/webhooks.md");
my @rows = split /\n/, sql(q{
SELECT format('| `%s` | %s | %s | `%s` |', t.event_type, t.concern,
              replace(t.description, '|', '\|'), t.data_schema::text)
  FROM salesmgmt.webhook_event_type t WHERE t.builtin ORDER BY t.event_type});
cmp_ok(scalar(@rows), '>=', 10, 'the registered event types');
my @missing = grep { index($doc, $_) < 0 } @rows;
is(scalar(@missing), 0, 'docs/webhooks.md has the row of each, with its data schema')
  or diag("missing or different in docs/webhooks.md:\n" . join("\n", @missing));

# ------------------------------------------------ worker started on demand
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION salesmgmt CASCADE');
my $pid = $node->safe_psql('other', 'SELECT salesmgmt.webhook_worker_start()');
like($pid, qr/^\d+$/, 'webhook_worker_start starts a worker in another database');
is($node->safe_psql('other', 'SELECT salesmgmt.webhook_worker_start()'), $pid, 'a second call returns the running one');
is($node->safe_psql('wh', 'SELECT count(*) FROM pg_stat_activity WHERE backend_type = \'salesmgmt webhook worker\''),
	2, 'one worker per database');
$node->safe_psql('other', "SELECT pg_terminate_backend($pid)");
ok($node->poll_query_until('other',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'salesmgmt webhook worker' AND datname = 'other'}),
	'a terminated worker stays stopped');

ok(!grep({ $_->{headers}{'webhook-signature'} ne $rx->openssl_signature($secret, $_) }
		grep { $_->{path} eq '/hook' } $rx->requests),
	'every request to the first endpoint carried a valid signature');

$rx->stop;
$node->stop;
done_testing();

# SmWebhookReceiver: a real HTTP receiver for the webhook TAP tests.
#
# Runs scripts/demo-webhook-receiver on 127.0.0.1 as a child process,
# logs every request it gets (one JSON line each) and answers as its plan
# file says.  Verifies signatures independently of the extension, with
# the openssl command-line tool.
package SmWebhookReceiver;

use strict;
use warnings;
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

sub new
{
	my ($class, %args) = @_;
	my $dir = $args{dir} // PostgreSQL::Test::Utils::tempdir();
	my $self = bless {
		port => $args{port} // PostgreSQL::Test::Cluster::get_free_port(),
		log  => "$dir/requests.log",
		plan => "$dir/plan",
		dir  => $dir,
	}, $class;
	return $self;
}

sub port { return $_[0]->{port} }
sub url { my ($self, $path) = @_; return "http://127.0.0.1:$self->{port}" . ($path // '/hook') }

sub start
{
	my ($self) = @_;
	my $script = "$ENV{SM_ROOT}/scripts/demo-webhook-receiver";
	$self->{h} = IPC::Run::start(
		[ $script, '--port', $self->{port}, '--log', $self->{log}, '--plan', $self->{plan}, '--quiet' ],
		'<', \undef, '>', "$self->{dir}/receiver.out", '2>', "$self->{dir}/receiver.err");
	foreach (1 .. 100)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port}, Proto => 'tcp');
		if ($s) { close $s; return; }
		usleep(50_000);
	}
	die "receiver did not start on port $self->{port}: " . slurp_file("$self->{dir}/receiver.err");
}

sub stop
{
	my ($self) = @_;
	return unless $self->{h};
	$self->{h}->signal('TERM');
	eval { $self->{h}->finish; 1 } or $self->{h}->kill_kill;
	delete $self->{h};
}

# the receiver never outlives the test, whatever happens to it
sub DESTROY { $_[0]->stop }

# plan(LINES...): how the next requests are answered (the last line repeats)
sub plan
{
	my ($self, @lines) = @_;
	open(my $fh, '>', "$self->{plan}.new") or die $!;
	print $fh map { "$_\n" } @lines;
	close $fh;
	rename("$self->{plan}.new", $self->{plan}) or die $!;
}

# every request received so far, as hashes (headers have lower-case names)
sub requests
{
	my ($self) = @_;
	return () unless -e $self->{log};
	open(my $fh, '<', $self->{log}) or die $!;
	my @r = map { JSON::PP->new->utf8(0)->decode($_) } grep { /\S/ } <$fh>;
	close $fh;
	return @r;
}

# wait until at least n requests arrived (true) or timeout seconds passed
sub wait_requests
{
	my ($self, $n, $timeout) = @_;
	$timeout //= 60;
	foreach (1 .. $timeout * 10)
	{
		return 1 if scalar($self->requests) >= $n;
		usleep(100_000);
	}
	return 0;
}

# Standard Webhooks signature of a request, computed with openssl from the
# secret: HMAC-SHA256 keyed with the base64-decoded part after "whsec_",
# over "id.timestamp.body", base64-encoded.
sub openssl_signature
{
	my ($self, $secret, $req) = @_;
	(my $b64 = $secret) =~ s/^whsec_//;
	my $hexkey = unpack('H*', decode_base64($b64));
	my $file = "$self->{dir}/signed-content";
	open(my $fh, '>:raw', $file) or die $!;
	print $fh join('.', $req->{headers}{'webhook-id'}, $req->{headers}{'webhook-timestamp'}, $req->{body});
	close $fh;
	my ($out, $err);
	IPC::Run::run([ 'openssl', 'dgst', '-sha256', '-mac', 'HMAC', '-macopt', "hexkey:$hexkey", '-binary', $file ],
		'|', [ 'openssl', 'base64', '-A' ], '>', \$out, '2>', \$err)
	  or die "openssl failed: $err";
	return "v1,$out";
}

1;

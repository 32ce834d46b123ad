# SmWebhookFixture: the data the webhook TAP tests deliver events about.
package SmWebhookFixture;

use strict;
use warnings;

# create_deals(NODE, N): database "wh" with the extension, one rep, one
# account, a free pipeline of two open stages (1, 2) and N deals in stage 1
sub create_deals
{
	my ($node, $n) = @_;
	$node->safe_psql('postgres', 'CREATE DATABASE wh');
	$node->safe_psql('wh', qq{
CREATE EXTENSION salesmgmt CASCADE;
INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
INSERT INTO salesmgmt.rep (rep_id, name, email, team_id) VALUES (1, 'Ada', 'ada\@example.com', 1);
INSERT INTO salesmgmt.account (account_id, name, owner_rep_id) VALUES (1, 'Acme', 1);
INSERT INTO salesmgmt.pipeline (pipeline_id, name, transition_policy) VALUES (1, 'New business', 'free');
INSERT INTO salesmgmt.stage (stage_id, pipeline_id, name, position, probability) VALUES
  (1, 1, 'Qualify', 1, 0.2), (2, 1, 'Propose', 2, 0.6);
INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
SELECT g, 'Deal ' || g, 1, 1, 1, 1, 1000 FROM generate_series(1, $n) g;
});
}

1;

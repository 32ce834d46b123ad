-- fill_every_table.sql: after scripts/datagen.sql, put at least one row in
-- every table of the extension that the generator leaves empty, so that
-- the dump/restore test (test/t/051_security_dump_restore.pl) covers every
-- table.  Each statement only acts on an empty table; the test fails on a
-- table still empty after this file, naming it.
\set ON_ERROR_STOP on

-- a backward move allowed by the forward policy
INSERT INTO salesmgmt.stage_transition (pipeline_id, from_stage_id, to_stage_id)
SELECT s.pipeline_id, s.stage_id, p.stage_id
  FROM salesmgmt.stage s JOIN salesmgmt.stage p
    ON p.pipeline_id = s.pipeline_id AND p.position = s.position - 1
 WHERE s.outcome = 'open' AND p.outcome = 'open'
   AND NOT EXISTS (SELECT 1 FROM salesmgmt.stage_transition)
 ORDER BY s.stage_id LIMIT 1;

-- history is written by the pipeline trigger; without it, one row by hand
INSERT INTO salesmgmt.deal_stage_history (deal_id, pipeline_id, to_stage_id, owner_rep_id, new_amount,
                                          currency, effective_probability, effective_category, changed_at)
SELECT d.deal_id, d.pipeline_id, d.stage_id, d.owner_rep_id, d.amount, d.currency, s.probability,
       s.forecast_category, d.stage_entered_at
  FROM salesmgmt.deal d JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
 WHERE NOT EXISTS (SELECT 1 FROM salesmgmt.deal_stage_history)
 ORDER BY d.deal_id LIMIT 1;

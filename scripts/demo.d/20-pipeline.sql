-- Tour, part 2: the sales process (pipelines, enforced stage moves, history).
\pset footer off
\echo
\echo '================ Sales process: pipelines ================'
\echo
\echo '-- The pipeline board: open deals per stage (amounts per currency, weighted by probability)'
SELECT pipeline, stage, currency, open_deals, amount, weighted_amount
  FROM salesmgmt.pipeline_board
 WHERE currency IS NOT NULL
 ORDER BY pipeline_id, position, currency;

\echo
\echo '-- The funnel, from the stage history: how many deals reached each stage, how many went on, how many were won'
SELECT pipeline, stage, deals_reached,
       round(100 * next_stage_share, 1) AS "went on %",
       round(100 * won_share, 1) AS "won %"
  FROM salesmgmt.stage_funnel
 ORDER BY pipeline_id, position;

\echo
\echo '-- Time in each stage (completed stays)'
SELECT pipeline, stage, completed_stays, avg_days, median_days
  FROM salesmgmt.stage_durations
 WHERE completed_stays > 0
 ORDER BY pipeline_id, position;

\echo
\echo '-- Stalled deals: longest past their stage''s limit'
SELECT deal, pipeline, stage, owner, amount, currency, days_in_stage, max_days_in_stage AS "limit"
  FROM salesmgmt.stalled_deals
 ORDER BY days_over DESC, deal_id
 LIMIT 5;

\echo
\echo '-- The database enforces the process: a deal cannot skip back, and the error says where it may go'
SELECT d.deal_id AS deal FROM salesmgmt.deal d JOIN salesmgmt.stage s USING (stage_id)
 WHERE d.pipeline_id = 1 AND s.name = 'Proposal'
 ORDER BY d.deal_id LIMIT 1 \gset demo_
SELECT d.deal_id, d.name, s.name AS stage, d.amount, d.currency
  FROM salesmgmt.deal d JOIN salesmgmt.stage s USING (stage_id) WHERE d.deal_id = :demo_deal;
SELECT set_config('demo.deal', :'demo_deal', false) \g /dev/null
DO $$
DECLARE
    v_state text; v_msg text; v_detail text; v_hint text;
BEGIN
    PERFORM salesmgmt.move_deal(current_setting('demo.deal')::bigint, 'Prospecting');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                            v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
    RAISE NOTICE E'refused with SQLSTATE %: %\n  detail: %\n  hint: %', v_state, v_msg, v_detail, v_hint;
END
$$;
\echo
\echo '-- ... and a legal move is recorded in the history with its note (rolled back here)'
BEGIN;
SELECT deal_id, stage_id FROM salesmgmt.move_deal(:demo_deal, 'Negotiation', 'demo: pricing agreed') \g /dev/null
SELECT f.name AS "from", t.name AS "to", h.new_amount AS amount, h.effective_probability AS probability,
       date_trunc('minute', h.time_in_previous_stage) AS time_in_previous_stage, h.note
  FROM salesmgmt.deal_stage_history h
  LEFT JOIN salesmgmt.stage f ON f.stage_id = h.from_stage_id
  JOIN salesmgmt.stage t ON t.stage_id = h.to_stage_id
 WHERE h.deal_id = :demo_deal ORDER BY h.history_id;
ROLLBACK;

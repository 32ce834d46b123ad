#!/usr/bin/env bash
# bench/process.sh [SCALE]: salesmgmt.run_follow_up_rules against two
# references of the same reminders, on the same data, in the same run: the
# plain-SQL one a DBA would write (bench/process_followup_setbased.sql: one
# grouped pass over activity and INSERT ... SELECT of the tasks and
# actions), and a PL/pgSQL one deal by deal, as a follow-up job is often
# first written (bench/process_followup_reference.sql).  Default scale 1,000,000 deals and 3,000,000
# activities (scripts/datagen.sql); the rules: deals quiet for 30 days
# (remind, escalate after 7, reassign after 7) and deals past their next
# step.  Both run as of the same time inside a rolled-back subtransaction,
# so every timed run starts from the same state; the run first checks that
# all three create the same reminders (actions and tasks, by digest).  Targets: under 5 s, and at least 3x the
# reference.
#
# What is compared: run_follow_up_rules, run as the superuser, takes the bulk
# path (salesmgmt._follow_up_remind, src/process_followup.c): the reminder
# tasks and actions written in batches by the writer of src/core_bulk.c,
# the foreign keys' locks and checks one query per key and batch, the
# triggers' other effects known to be none for a reminder.  Both
# references insert row by row through every trigger and foreign-key
# check, as run_follow_up_rules itself does when a trigger of the user's,
# row-level security or missing rights rule the bulk path out
# (docs/process.md).  A data set loaded before _follow_up_remind existed
# needs it and the new run_follow_up_rules (CREATE OR REPLACE, from
# src/process_followup.sql) applied first.
#
#   BENCH_SCALE=20000 bench/process.sh    a quick run while developing
BENCH_RUNS=${BENCH_RUNS:-3}
. "$(dirname "$0")/common.sh"

bench_setup "${1:-1000000}"
bench_psql -f "$SM_ROOT/bench/process_followup_reference.sql" >/dev/null
bench_psql -f "$SM_ROOT/bench/process_followup_setbased.sql" >/dev/null
bench_psql -c 'VACUUM ANALYZE' >/dev/null
AS_OF=$(bench_psql -tA -c "SELECT now()")
echo "as of: $AS_OF"

# same answer: the reminders (action and task) of all three, by digest
same=$(bench_psql -tA <<SQL
SELECT process_bench.digest('c', '$AS_OF') = process_bench.digest('ref', '$AS_OF')
   AND process_bench.digest('c', '$AS_OF') = process_bench.digest('sql', '$AS_OF');
SQL
)
[ "$same" = t ] || sm_die "run_follow_up_rules and the references disagree"
echo "same reminders: yes ($(bench_psql -tA -c "SELECT process_bench.digest('c', '$AS_OF')" | cut -d' ' -f1))"

bench_time "salesmgmt.run_follow_up_rules" "SELECT process_bench.run('c', '$AS_OF')"
bench_time "plain-SQL reference, set-based" "SELECT process_bench.run('sql', '$AS_OF')"
bench_time "PL/pgSQL reference, deal by deal" "SELECT process_bench.run('ref', '$AS_OF')"
bench_ratio "plain-SQL reference, set-based" "salesmgmt.run_follow_up_rules"
bench_ratio "PL/pgSQL reference, deal by deal" "salesmgmt.run_follow_up_rules"

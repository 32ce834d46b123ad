#!/usr/bin/env bash
# bench/datagen.sh [SCALE]: how long the deterministic data set takes to load
# (default 1,000,000 deals), and the floor the other benchmarks compare with:
# one sum(amount) scan of the deal table.
. "$(dirname "$0")/common.sh"
bench_setup "${1:-1000000}"
bench_psql -c "SELECT pg_size_pretty(pg_database_size('bench')) AS database_size,
                      (SELECT count(*) FROM salesmgmt.deal_stage_history) AS history_rows"
bench_time "floor: sum(amount) over salesmgmt.deal" "SELECT sum(amount) FROM salesmgmt.deal"

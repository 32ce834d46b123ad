# bench/common.sh: shared by the benchmarks in bench/.
#
#   . "$(dirname "$0")/common.sh"
#   bench_setup 1000000          # build, private install, tuned cluster, data set loaded
#   bench_time "label" 'SQL'     # run SQL $BENCH_RUNS times, print and remember the median
#   bench_ratio "a" "b"          # print how many times slower label a is than label b
#
# The cluster lives in a temporary folder and is stopped and removed on exit.
# BENCH_SCALE overrides the scale argument (e.g. BENCH_SCALE=20000 for a
# quick run while developing); BENCH_RUNS the repetitions (default 5).
set -euo pipefail

SM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$SM_ROOT/scripts/lib.sh"

BENCH_RUNS=${BENCH_RUNS:-5}
declare -A BENCH_MS

bench_setup() {
    local scale=${BENCH_SCALE:-${1:-1000000}} start
    sm_ensure_packages
    SM_EXTRA_CFLAGS= sm_build
    BENCH_WORK=$(mktemp -d /tmp/salesmgmt-bench.XXXXXX)
    chmod 755 "$BENCH_WORK"
    trap 'sm_stop_cluster; rm -rf "$BENCH_WORK"' EXIT
    sm_private_install "$BENCH_WORK/install"
    sm_start_cluster "$BENCH_WORK/cluster" \
        "shared_buffers = '2GB'" "work_mem = '256MB'" "maintenance_work_mem = '1GB'" \
        "max_wal_size = '8GB'" "checkpoint_timeout = '30min'" "synchronous_commit = off" \
        "jit = off"
    export PGDATABASE=bench
    "$SM_BIN/psql" -qX -d postgres -c 'CREATE DATABASE bench'
    bench_psql -c 'CREATE EXTENSION salesmgmt CASCADE'
    sm_log "loading the data set: $scale deals"
    start=$(date +%s.%N)
    # BENCH_DATAGEN_VARS: more psql variables for the generator (e.g. "-v products=1")
    bench_psql -v scale="$scale" -v seed=42 ${BENCH_DATAGEN_VARS:-} -f "$SM_ROOT/scripts/datagen.sql" >/dev/null
    BENCH_LOAD_SECONDS=$(echo "$(date +%s.%N) - $start" | bc)
    printf 'data set: %s deals loaded in %.1f s\n' "$scale" "$BENCH_LOAD_SECONDS"
    bench_psql -c 'VACUUM ANALYZE' >/dev/null
}

bench_psql() { "$SM_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

# bench_time LABEL SQL: median wall time of SQL over BENCH_RUNS runs (one
# untimed warm-up run first), measured by the server-side clock.
bench_time() {
    local label=$1 sql=$2 ms
    ms=$(bench_psql -tA <<SQL
DO \$bench\$
DECLARE t0 timestamptz; times float8[] := '{}';
BEGIN
    EXECUTE \$q\$ $sql \$q\$;
    FOR i IN 1..$BENCH_RUNS LOOP
        t0 := clock_timestamp();
        EXECUTE \$q\$ $sql \$q\$;
        times := times || extract(epoch FROM clock_timestamp() - t0) * 1000;
    END LOOP;
    PERFORM set_config('bench.ms', (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY t) FROM unnest(times) t)::text, false);
END
\$bench\$;
SELECT round(current_setting('bench.ms')::numeric, 1);
SQL
)
    BENCH_MS[$label]=$ms
    printf '%-48s %10.1f ms (median of %d)\n' "$label" "$ms" "$BENCH_RUNS"
}

# bench_ratio A B: A's time divided by B's
bench_ratio() {
    printf '%-48s %10.2fx\n' "$1 / $2" "$(echo "scale=4; ${BENCH_MS[$1]} / ${BENCH_MS[$2]}" | bc)"
}

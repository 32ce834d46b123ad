# bench/common.sh: shared by the benchmarks in bench/.
#
#   . "$(dirname "$0")/common.sh"
#   bench_setup 1000000          # build, private install, tuned cluster, data set loaded
#   bench_time "label" 'SQL'     # run SQL $BENCH_RUNS times, print and remember the median
#   bench_ratio "a" "b"          # print how many times slower label a is than label b
#
# The cluster lives in a temporary folder and is stopped and removed on exit.
# BENCH_SCALE overrides the scale argument (e.g. BENCH_SCALE=20000 for a
# quick run while developing); BENCH_RUNS the repetitions (default 5);
# BENCH_CACHE where loaded data sets are kept (below; empty: not kept).
set -euo pipefail

SM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$SM_ROOT/scripts/lib.sh"

BENCH_RUNS=${BENCH_RUNS:-5}
declare -A BENCH_MS

# The settings every benchmark cluster runs with.
BENCH_SETTINGS=("shared_buffers = '2GB'" "work_mem = '256MB'" "maintenance_work_mem = '1GB'"
    "max_wal_size = '8GB'" "checkpoint_timeout = '30min'" "synchronous_commit = off"
    "jit = off")

# Loading a million deals through the triggers takes minutes, and most
# benchmarks load the same data set.  A loaded, vacuumed cluster is kept in
# BENCH_CACHE (default /var/cache/salesmgmt/bench; empty turns it off) under
# a key made of everything the data depend on: the server's major version,
# the scale, the generator's variables, scripts/datagen.sql and the built
# extension (its SQL and its library).  A benchmark starts from a copy, so
# what it changes never reaches the cache.
BENCH_CACHE=${BENCH_CACHE-/var/cache/salesmgmt/bench}

# BENCH_CACHE_KEY names an entry outright: for a C change that cannot alter
# the loaded data (the run then says which entry it used).
bench_cache_key() {
    if [ -n "${BENCH_CACHE_KEY:-}" ]; then
        echo "$BENCH_CACHE_KEY"
        return
    fi
    {
        echo "$SM_PG_MAJOR $1 ${BENCH_DATAGEN_VARS:-}"
        cat "$SM_ROOT/scripts/datagen.sql" "$SM_ROOT"/salesmgmt--*.sql "$SM_ROOT/salesmgmt.so"
    } | sha256sum | cut -c1-16
}

# BENCH_PREPARE_SQL (a file) and BENCH_PREPARE_VARS (its psql variables): a
# script a benchmark runs on the loaded data set before timing anything (the
# commission benchmark tops the year up with won deals, which takes minutes
# at a million deals).  The prepared cluster is cached too, under the data
# set's key plus the script and its variables, and is made from the cached
# data set when that exists.
bench_prepare_key() {
    { echo "$1 ${BENCH_PREPARE_VARS:-}"; cat "$BENCH_PREPARE_SQL"; } | sha256sum | cut -c1-16
}

# bench_cache_store DIR: keep the stopped cluster's data under DIR, newest
# three entries only (a loaded million-deal cluster takes 6-15 GB)
bench_cache_store() {
    sm_stop_cluster
    mkdir -p "$BENCH_CACHE"
    rm -rf "$1.tmp"
    cp -a "$BENCH_WORK/cluster/data" "$1.tmp" && mkdir "$1" && mv "$1.tmp" "$1/data"
    sm_log "data set kept in $1"
    ls -1dt "$BENCH_CACHE"/*/ | tail -n +4 | xargs -r rm -rf
    sm_start_cluster "$BENCH_WORK/cluster" "${BENCH_SETTINGS[@]}"
}

# bench_cache_start DIR: start from a copy of a cached cluster
bench_cache_start() {
    sm_log "data set from the cache ($1)"
    mkdir -p "$BENCH_WORK/cluster"
    cp -a "$1/data" "$BENCH_WORK/cluster/data"
    sm_start_cluster "$BENCH_WORK/cluster" "${BENCH_SETTINGS[@]}"
}

bench_setup() {
    local scale=${BENCH_SCALE:-${1:-1000000}} start cache= prepared= key
    sm_ensure_packages
    SM_EXTRA_CFLAGS= sm_build
    BENCH_WORK=$(mktemp -d /tmp/salesmgmt-bench.XXXXXX)
    chmod 755 "$BENCH_WORK"
    trap 'sm_stop_cluster; rm -rf "$BENCH_WORK"' EXIT
    sm_private_install "$BENCH_WORK/install"
    export PGDATABASE=bench
    BENCH_LOAD_SECONDS=0
    if [ -n "$BENCH_CACHE" ]; then
        key=$(bench_cache_key "$scale")
        cache=$BENCH_CACHE/$key
        [ -n "${BENCH_PREPARE_SQL:-}" ] && prepared=$BENCH_CACHE/$key-$(bench_prepare_key "$key")
    fi
    if [ -n "$prepared" ] && [ -f "$prepared/data/PG_VERSION" ]; then
        bench_cache_start "$prepared"
        echo "data set: $scale deals, prepared by $(basename "$BENCH_PREPARE_SQL") (cached copy)"
        return
    fi
    if [ -n "$cache" ] && [ -f "$cache/data/PG_VERSION" ]; then
        bench_cache_start "$cache"
        echo "data set: $scale deals (cached copy)"
    else
        sm_start_cluster "$BENCH_WORK/cluster" "${BENCH_SETTINGS[@]}"
        "$SM_BIN/psql" -qX -d postgres -c 'CREATE DATABASE bench'
        bench_psql -c 'CREATE EXTENSION salesmgmt CASCADE'
        sm_log "loading the data set: $scale deals"
        start=$(date +%s.%N)
        # BENCH_DATAGEN_VARS: more psql variables for the generator (e.g. "-v products=1")
        bench_psql -v scale="$scale" -v seed=42 ${BENCH_DATAGEN_VARS:-} -f "$SM_ROOT/scripts/datagen.sql" >/dev/null
        BENCH_LOAD_SECONDS=$(echo "$(date +%s.%N) - $start" | bc)
        printf 'data set: %s deals loaded in %.1f s\n' "$scale" "$BENCH_LOAD_SECONDS"
        bench_psql -c 'VACUUM ANALYZE' >/dev/null
        [ -z "$cache" ] || bench_cache_store "$cache"
    fi
    if [ -n "${BENCH_PREPARE_SQL:-}" ]; then
        sm_log "preparing the data set: $(basename "$BENCH_PREPARE_SQL") ${BENCH_PREPARE_VARS:-}"
        start=$(date +%s.%N)
        bench_psql ${BENCH_PREPARE_VARS:-} -f "$BENCH_PREPARE_SQL" >/dev/null
        printf 'prepared by %s in %.1f s\n' "$(basename "$BENCH_PREPARE_SQL")" "$(echo "$(date +%s.%N) - $start" | bc)"
        bench_psql -c 'VACUUM ANALYZE' >/dev/null
        [ -z "$prepared" ] || bench_cache_store "$prepared"
    fi
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

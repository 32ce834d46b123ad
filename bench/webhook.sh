#!/usr/bin/env bash
# bench/webhook.sh [SCALE]: webhook throughput and overhead, in one run.
#
#   1. stage-move TPS (pgbench, 4 clients) on a pipeline of the data set:
#      no endpoint, an active endpoint with the C outbox trigger, and the
#      same with the PL/pgSQL reference trigger (bench/webhook_reference.sql);
#      the worker is stopped, so this is the enqueue cost alone.
#      The C and reference runs alternate which goes first, and each run
#      starts from an empty outbox.
#   2. deliveries per second: the 20,000 events enqueued by step 1 are sent
#      by the worker to nginx (Debian's nginx-light, answering 200 on
#      127.0.0.1, not the bottleneck), timed from the first attempt to the
#      last delivery; then wrk (16 connections) POSTs the same body with
#      the same headers to the same nginx in the same run: the ratio is
#      what share of the network path's rate the worker reaches; and what
#      the worker wrote per delivery (WAL records and bytes of the whole
#      server, updates of the delivery row and how many were HOT).
#   3. with the worker running, a steady 2,000 stage moves per second for
#      60 s: the backlog sampled every 5 s (it must not grow) and the
#      commit-to-delivery latency p50/p99 (track_commit_timestamp on).
#   4. stage-move TPS at full speed while the worker delivers live.
#   5. the targets of issue 20, each measure of this run against its
#      target: met or not (the figures mean something on an idle machine
#      only; a loaded one says whether the script works).
#
# SCALE is the number of deals of the data set (default 100000; the moves
# use 20,000 deals of their own in a pipeline with free transitions).
# BENCH_SCALE overrides it; BENCH_SECONDS the length of the TPS and wrk
# runs; BENCH_EVENTS the number of deals moved and events sent (20000);
# BENCH_LIVE_RATE and BENCH_LIVE_SECONDS the rate and length of step 3;
# BENCH_PERF=FILE writes perf's profile of the worker during step 2 to FILE;
# BENCH_WAL_RECORDS=FILE pg_waldump's statistics by record kind of step 2.
. "$(dirname "$0")/common.sh"

EVENTS=${BENCH_EVENTS:-20000}
CLIENTS=4
SECONDS_TPS=${BENCH_SECONDS:-15}
LIVE_RATE=${BENCH_LIVE_RATE:-2000}
LIVE_SECONDS=${BENCH_LIVE_SECONDS:-60}

bench_setup "${1:-100000}"
export PGOPTIONS="-c client_min_messages=warning"
PORT=$(( 20000 + RANDOM % 20000 ))

# ---------------------------------------------------------------- receiver
mkdir -p "$BENCH_WORK/nginx"
cat > "$BENCH_WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $BENCH_WORK/nginx/nginx.pid;
error_log $BENCH_WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $BENCH_WORK/nginx/body;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server {
        listen 127.0.0.1:$PORT;
        location / { return 200 "ok\n"; }
    }
}
EOF
nginx -c "$BENCH_WORK/nginx/nginx.conf" -p "$BENCH_WORK/nginx" &
NGINX_PID=$!
trap 'kill $NGINX_PID 2>/dev/null; wait $NGINX_PID 2>/dev/null; sm_stop_cluster; rm -rf "$BENCH_WORK"' EXIT
for _ in $(seq 50); do
    curl -s -o /dev/null -X POST "http://127.0.0.1:$PORT/" && break
    sleep 0.1
done

# ------------------------------------------------- server: worker settings
bench_psql -d postgres -c "ALTER SYSTEM SET salesmgmt.webhook_database = 'bench'" \
    -c "ALTER SYSTEM SET salesmgmt.webhook_allow_private_networks = on" \
    -c "ALTER SYSTEM SET track_commit_timestamp = on"
runuser -u postgres -- "$SM_BIN/pg_ctl" -D "$PGDATA" -l "$SM_CLUSTER_DIR/server.log" -w restart >/dev/null

stop_worker() {
    bench_psql -qAt -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE backend_type = 'salesmgmt webhook worker'" >/dev/null
    for _ in $(seq 100); do
        [ "$(bench_psql -qAt -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'salesmgmt webhook worker'")" = 0 ] && return
        sleep 0.1
    done
}

# 20,000 deals of their own to move back and forth between two open stages
bench_psql -q <<SQL
INSERT INTO salesmgmt.pipeline (name, transition_policy) VALUES ('Webhook bench', 'free');
INSERT INTO salesmgmt.stage (pipeline_id, name, position, probability)
SELECT pipeline_id, s, p, 0.5 FROM salesmgmt.pipeline, (VALUES ('Bench A', 1), ('Bench B', 2)) v(s, p)
 WHERE name = 'Webhook bench';
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
SELECT 'Webhook bench ' || g, (SELECT min(account_id) FROM salesmgmt.account),
       (SELECT min(rep_id) FROM salesmgmt.rep), s.pipeline_id, s.stage_id, 1000
  FROM generate_series(1, $EVENTS) g,
       (SELECT pipeline_id, stage_id FROM salesmgmt.stage WHERE name = 'Bench A') s;
CREATE TABLE public.bench_deal AS
SELECT row_number() OVER (ORDER BY d.deal_id) AS n, d.deal_id, a.stage_id AS a, b.stage_id AS b
  FROM salesmgmt.deal d
  JOIN salesmgmt.stage a ON a.pipeline_id = d.pipeline_id AND a.name = 'Bench A'
  JOIN salesmgmt.stage b ON b.pipeline_id = d.pipeline_id AND b.name = 'Bench B';
CREATE UNIQUE INDEX ON public.bench_deal (n);
VACUUM ANALYZE;
SQL
bench_psql -q -f "$SM_ROOT/bench/webhook_reference.sql"
cat > "$BENCH_WORK/move.sql" <<EOF
\\set n random(1, $EVENTS)
UPDATE salesmgmt.deal d SET stage_id = CASE WHEN d.stage_id = b.a THEN b.b ELSE b.a END
  FROM public.bench_deal b WHERE b.n = :n AND d.deal_id = b.deal_id;
EOF
pgbench_tps() {	# pgbench_tps ARGS...: transactions per second
    runuser -u postgres -- "$SM_BIN/pgbench" -h "$PGHOST" -p "$PGPORT" -n -c $CLIENTS -j 2 \
        -f "$BENCH_WORK/move.sql" "$@" bench 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
set_endpoint() {	# set_endpoint on|off
    bench_psql -q -c "UPDATE salesmgmt.webhook_endpoint SET active = $([ "$1" = on ] && echo true || echo false)"
}
use_trigger() {	# use_trigger c|reference
    if [ "$1" = c ]; then
        bench_psql -q -c 'DROP TRIGGER IF EXISTS bench_ref_enqueue ON salesmgmt.deal' \
            -c 'ALTER TABLE salesmgmt.deal ENABLE TRIGGER webhook_enqueue'
    else
        bench_psql -q -c 'ALTER TABLE salesmgmt.deal DISABLE TRIGGER webhook_enqueue' \
            -c 'DROP TRIGGER IF EXISTS bench_ref_enqueue ON salesmgmt.deal' \
            -c 'CREATE TRIGGER bench_ref_enqueue AFTER INSERT OR UPDATE OR DELETE ON salesmgmt.deal
                FOR EACH ROW EXECUTE FUNCTION public.bench_ref_enqueue()'
    fi
}
clear_outbox() {
    bench_psql -q -c 'TRUNCATE salesmgmt.webhook_attempt, salesmgmt.webhook_delivery, salesmgmt.webhook_event' \
        -c 'VACUUM ANALYZE salesmgmt.deal, salesmgmt.webhook_event, salesmgmt.webhook_delivery'
}

# ------------------------------------------------ 1. enqueue cost (no worker)
stop_worker
bench_psql -q -c "SELECT salesmgmt.create_webhook('http://127.0.0.1:$PORT/hook')" >/dev/null
echo
echo "stage-move TPS, $CLIENTS clients, ${SECONDS_TPS} s runs, worker stopped (best of 2):"
best() { printf '%s\n' "$@" | sort -g | tail -1; }
declare -A TPS WAL_PER_MOVE
for mode in none c reference; do TPS[$mode]=0; done
measure() {	# measure none|c|reference: one run from an empty outbox
    clear_outbox
    case $1 in
        none) set_endpoint off; use_trigger c ;;
        c) set_endpoint on; use_trigger c ;;
        reference) set_endpoint on; use_trigger reference ;;
    esac
    local lsn0 out tx
    lsn0=$(bench_psql -qAt -c 'SELECT pg_current_wal_insert_lsn()')
    out=$(runuser -u postgres -- "$SM_BIN/pgbench" -h "$PGHOST" -p "$PGPORT" -n -c $CLIENTS -j 2 \
        -f "$BENCH_WORK/move.sql" -T "$SECONDS_TPS" bench 2>&1)
    tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
    WAL_PER_MOVE[$1]=$(bench_psql -qAt -c "SELECT round((pg_current_wal_insert_lsn() - '$lsn0') / greatest($tx, 1))")
    TPS[$1]=$(best "${TPS[$1]}" "$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out")")
}
# alternating order, so that neither trigger always runs on a warmer or a
# fuller database than the other
for order in "none c reference" "reference c none"; do
    for mode in $order; do measure "$mode"; done
done
set_endpoint on; use_trigger c; clear_outbox
printf '%-52s %10.0f\n' "no endpoint" "${TPS[none]}"
printf '%-52s %10.0f   overhead %5.1f%%\n' "active endpoint, C outbox trigger" "${TPS[c]}" \
    "$(echo "scale=4; (1 - ${TPS[c]} / ${TPS[none]}) * 100" | bc)"
printf '%-52s %10.0f   overhead %5.1f%%\n' "active endpoint, PL/pgSQL reference trigger" "${TPS[reference]}" \
    "$(echo "scale=4; (1 - ${TPS[reference]} / ${TPS[none]}) * 100" | bc)"
# what a move writes, from the last run of each: the outbox's share of
# the overhead that is I/O rather than instructions
printf 'WAL bytes per move: no endpoint %s, C outbox trigger %s, PL/pgSQL reference %s\n' \
    "${WAL_PER_MOVE[none]}" "${WAL_PER_MOVE[c]}" "${WAL_PER_MOVE[reference]}"

# both triggers write the same outbox for the same change
move100="UPDATE salesmgmt.deal d SET stage_id = CASE WHEN d.stage_id = b.a THEN b.b ELSE b.a END
  FROM public.bench_deal b WHERE b.n <= 100 AND d.deal_id = b.deal_id"
bench_psql -q -c "$move100"
use_trigger reference
bench_psql -q -c "$move100"
use_trigger c
same=$(bench_psql -qAt -c "
  SELECT count(*) = 100 AND bool_and(c.event_type = r.event_type AND r.sequence = c.sequence + 1
         AND (c.payload::jsonb->'data'->'deal') - 'updated_at' - 'stage_id' - 'stage_entered_at'
           = (r.payload::jsonb->'data'->'deal') - 'updated_at' - 'stage_id' - 'stage_entered_at'
         AND (c.payload::jsonb->'data'->'previous'->'stage_id') = (r.payload::jsonb->'data'->'deal'->'stage_id'))
    FROM salesmgmt.webhook_event c JOIN salesmgmt.webhook_event r
      ON r.deal_id = c.deal_id AND r.sequence = c.sequence + 1")
echo "C and reference triggers write equivalent events: $same"
[ "$same" = t ] || sm_die "the C and reference outbox triggers disagree"
clear_outbox

# ----------------------------------------------- 2. deliveries per second
runuser -u postgres -- "$SM_BIN/pgbench" -h "$PGHOST" -p "$PGPORT" -n -c $CLIENTS -j 2 \
    -t $(( EVENTS / CLIENTS )) -f "$BENCH_WORK/move.sql" bench >/dev/null 2>&1
backlog=$(bench_psql -qAt -c "SELECT count(*) FROM salesmgmt.webhook_delivery WHERE state = 'pending'")
# what the worker writes per delivery: WAL, and how many of its updates are HOT
LSN0=$(bench_psql -qAt -c 'SELECT pg_current_wal_insert_lsn()')
read -r UPD0 HOT0 < <(bench_psql -qAt -F ' ' -c "
  SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
   WHERE schemaname = 'salesmgmt' AND relname = 'webhook_delivery'")
WORKER_PID=$(bench_psql -qAt -c 'SELECT salesmgmt.webhook_worker_start()')
# BENCH_PERF=FILE: the worker's profile while it delivers, perf report to FILE
if [ -n "${BENCH_PERF:-}" ]; then
    perf record -q -g -p "$WORKER_PID" -o "$BENCH_WORK/perf.data" 2>/dev/null &
    PERF_PID=$!
fi
for _ in $(seq 600); do
    left=$(bench_psql -qAt -c "SELECT count(*) FROM salesmgmt.webhook_delivery WHERE state <> 'delivered'")
    [ "$left" = 0 ] && break
    sleep 0.2
done
if [ -n "${BENCH_PERF:-}" ]; then
    kill -INT "$PERF_PID"; wait "$PERF_PID" || true
    perf report -i "$BENCH_WORK/perf.data" --stdio --no-children -g none --sort dso,symbol --percent-limit 0.5 2>/dev/null > "$BENCH_PERF" || true
fi
[ "$left" = 0 ] || sm_die "$left deliveries not delivered"
LSN1=$(bench_psql -qAt -c 'SELECT pg_current_wal_insert_lsn()')
wal=$({ "$SM_BIN/pg_waldump" -p "$PGDATA/pg_wal" -s "$LSN0" -e "$LSN1" --stats 2>/dev/null || true; } |
      awk '$1 == "Total" { print $2, $7 }')
# the worker's table statistics reach the shared counters when it next
# reports them (at most once a second, and idle only at its next cycle)
for _ in $(seq 150); do
    read -r upd hot < <(bench_psql -qAt -F ' ' -c "
      SELECT n_tup_upd - $UPD0, n_tup_hot_upd - $HOT0 FROM pg_stat_user_tables
       WHERE schemaname = 'salesmgmt' AND relname = 'webhook_delivery'")
    [ "$upd" -ge $(( 2 * EVENTS )) ] && break
    sleep 0.2
done
# BENCH_WAL_RECORDS=FILE: what the worker wrote, by kind of WAL record
if [ -n "${BENCH_WAL_RECORDS:-}" ]; then
    "$SM_BIN/pg_waldump" -p "$PGDATA/pg_wal" -s "$LSN0" -e "$LSN1" --stats=record > "$BENCH_WAL_RECORDS" 2>/dev/null || true
fi
read -r wal_records wal_bytes <<<"$wal"
printf 'writes per delivery: %.2f WAL records, %.0f WAL bytes (whole server); %.2f updates of the delivery row, %.2f of them HOT\n' \
    "$(echo "${wal_records:-0} / $EVENTS" | bc -l)" "$(echo "${wal_bytes:-0} / $EVENTS" | bc -l)" \
    "$(echo "$upd / $EVENTS" | bc -l)" "$(echo "$hot / $EVENTS" | bc -l)"
bench_psql -qAt -F ' ' -c "
  SELECT count(*), round(extract(epoch FROM max(d.delivered_at) - min(a.started_at))::numeric, 3)
    FROM salesmgmt.webhook_delivery d JOIN salesmgmt.webhook_attempt a USING (delivery_id)" |
while read -r n secs; do
    echo
    printf 'deliveries: %s queued events to nginx in %s s = %.0f deliveries/s (all 2xx: %s)\n' "$n" "$secs" \
        "$(echo "$n / $secs" | bc -l)" \
        "$(bench_psql -qAt -c 'SELECT bool_and(status = 200) FROM salesmgmt.webhook_attempt')"
done
[ "$backlog" = "$EVENTS" ] || sm_die "expected $EVENTS queued deliveries, found $backlog"

# wrk: the same body and headers to the same nginx, 16 connections
DELIVERED_PER_S=$(bench_psql -qAt -c "
  SELECT round(count(*) / extract(epoch FROM max(d.delivered_at) - min(a.started_at)))
    FROM salesmgmt.webhook_delivery d JOIN salesmgmt.webhook_attempt a USING (delivery_id)")
bench_psql -qAt -c "SELECT payload FROM salesmgmt.webhook_event ORDER BY event_id LIMIT 1" |
    tr -d '\n' > "$BENCH_WORK/body.json"
sig=$(bench_psql -qAt -c "SELECT salesmgmt.webhook_sign(e.secret, 'msg_bench', 1700000000, ev.payload::text)
                            FROM salesmgmt.webhook_endpoint e, salesmgmt.webhook_event ev
                           ORDER BY ev.event_id LIMIT 1")
cat > "$BENCH_WORK/post.lua" <<LUA
wrk.method = "POST"
local f = io.open("$BENCH_WORK/body.json", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "salesmgmt-webhooks/1"
wrk.headers["webhook-id"] = "msg_bench"
wrk.headers["webhook-timestamp"] = "1700000000"
wrk.headers["webhook-signature"] = "$sig"
LUA
WRK_RPS=$(wrk -t 2 -c 16 -d "${SECONDS_TPS}s" -s "$BENCH_WORK/post.lua" "http://127.0.0.1:$PORT/hook" |
          sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p')
printf 'wrk, same body and headers, same nginx, 16 connections: %.0f requests/s\n' "$WRK_RPS"
printf 'worker / wrk: %s deliveries/s is %.1f%% of the network path'"'"'s rate\n' "$DELIVERED_PER_S" \
    "$(echo "scale=4; $DELIVERED_PER_S / $WRK_RPS * 100" | bc)"
clear_outbox

# ----------------------------------------- 3. latency at a steady rate
# the issue's live target: LIVE_RATE moves/s for LIVE_SECONDS, the backlog
# (deliveries not yet delivered) sampled every 5 s must not grow
runuser -u postgres -- "$SM_BIN/pgbench" -h "$PGHOST" -p "$PGPORT" -n -c $CLIENTS -j 2 \
    -R "$LIVE_RATE" -T "$LIVE_SECONDS" -f "$BENCH_WORK/move.sql" bench >/dev/null 2>&1 &
LIVE_PID=$!
samples=()
while kill -0 $LIVE_PID 2>/dev/null; do
    sleep 5
    samples+=("$(bench_psql -qAt -c "SELECT count(*) FROM salesmgmt.webhook_delivery WHERE state <> 'delivered'")")
done
wait $LIVE_PID || true
sleep 2
echo
echo "backlog every 5 s at $LIVE_RATE moves/s for $LIVE_SECONDS s: ${samples[*]}"
read -r LIVE_N LIVE_P50 LIVE_P99 < <(bench_psql -qAt -F ' ' -c "
  SELECT delivered, coalesce(p50_latency_ms, 0), coalesce(p99_latency_ms, 0) FROM salesmgmt.webhook_stats")
printf 'commit-to-delivery latency at %s moves/s: p50 %s ms, p99 %s ms (%s deliveries)\n' \
    "$LIVE_RATE" "$LIVE_P50" "$LIVE_P99" "$LIVE_N"
clear_outbox

# ------------------------------------- 4. TPS while the worker delivers
tps_live=$(pgbench_tps -T "$SECONDS_TPS")
sleep 1
echo
printf 'stage-move TPS with the worker delivering live: %.0f (%.1f%% below no endpoint); backlog after the run: %s\n' \
    "$tps_live" "$(echo "scale=4; (1 - $tps_live / ${TPS[none]}) * 100" | bc)" \
    "$(bench_psql -qAt -c "SELECT count(*) FROM salesmgmt.webhook_delivery WHERE state <> 'delivered'")"

# ---------------------------------------------------- 5. issue 20's targets
# "No backlog growth": every sample of the live run, not only the first
# and the last (a backlog that grew to 72,000 and was caught up once the
# moves stopped passed that check), stays under half a second of moves
# (the backlog then is what is claimed and in flight, not a queue), and
# the least-squares slope of the samples is under 1% of the move rate.
OVERHEAD_C=$(echo "scale=4; (1 - ${TPS[c]} / ${TPS[none]}) * 100" | bc)
RATIO=$(echo "scale=4; $DELIVERED_PER_S / $WRK_RPS * 100" | bc)
read -r backlog_max backlog_slope < <(printf '%s\n' "${samples[@]:-0}" | awk '
    { n++; x = n * 5; sx += x; sy += $1; sxx += x * x; sxy += x * $1; if ($1 > max) max = $1 }
    END { d = n * sxx - sx * sx; printf "%d %.1f\n", max, (d > 0 ? (n * sxy - sx * sy) / d : 0) }')
backlog_ok=$(echo "$backlog_max <= $LIVE_RATE / 2 && $backlog_slope <= $LIVE_RATE / 100" | bc)
verdict() { if [ "$1" = 1 ]; then echo met; else echo "NOT met"; fi; }
echo
echo "issue 20 targets (load average$(uptime | sed 's/.*load average//')):"
printf '  %-58s %12s  %s\n' "deliveries/s >= 20,000" "$DELIVERED_PER_S" \
    "$(verdict "$(echo "$DELIVERED_PER_S >= 20000" | bc)")"
printf '  %-58s %11.1f%%  %s\n' "deliveries/s >= 25% of wrk's rate" "$RATIO" "$(verdict "$(echo "$RATIO >= 25" | bc)")"
printf '  %-58s %11.1f%%  %s\n' "enqueue overhead on stage moves <= 10%" "$OVERHEAD_C" \
    "$(verdict "$(echo "$OVERHEAD_C <= 10" | bc)")"
printf '  %-58s %12s  %s\n' "no backlog growth at $LIVE_RATE moves/s over $LIVE_SECONDS s (max, slope/s)" \
    "$backlog_max, $backlog_slope" "$(verdict "$backlog_ok")"
printf '  %-58s %9s ms  %s\n' "commit-to-delivery p99 < 50 ms at $LIVE_RATE moves/s" "$LIVE_P99" \
    "$(verdict "$(echo "$LIVE_P99 < 50" | bc)")"

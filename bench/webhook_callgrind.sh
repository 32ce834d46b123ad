#!/usr/bin/env bash
# bench/webhook_callgrind.sh: instructions per webhook delivery and per
# stage move (with and without the outbox), counted by callgrind: figures
# that a shared, loaded machine does not distort, unlike timings.
#
# The server runs under valgrind --tool=callgrind (every backend and the
# worker are forked children, each writes its own cg.<pid> file when it
# exits).  Each figure is a difference of two runs that differ only in
# size, so start-up and one-off costs cancel out:
#
#   enqueue   a session moves M1 then another M2 deals, one UPDATE per
#             transaction as bench/webhook.sh's pgbench clients do, once
#             with no active endpoint and once with one (the C trigger
#             writes the outbox): instructions per move, and the outbox's
#             share of a move;
#   worker    a worker delivers E1 queued events to nginx and exits, a new
#             one delivers E2: instructions per delivery of the whole
#             worker (claim, send, sign, record).
#
# Callgrind makes everything about 50 times slower, so the worker records
# smaller groups than in a real run: compare figures of this script with
# each other, not with a run at full speed.
#
# BENCH_MOVES1/2 (default 100/600) and BENCH_EVENTS1/2 (200/1200) size the
# runs.  Needs valgrind and nginx-light.
. "$(dirname "$0")/common.sh"

M1=${BENCH_MOVES1:-100}
M2=${BENCH_MOVES2:-600}
E1=${BENCH_EVENTS1:-200}
E2=${BENCH_EVENTS2:-1200}
command -v valgrind >/dev/null || sm_die "valgrind is not installed"

BENCH_CACHE= bench_setup 1000
export PGOPTIONS="-c client_min_messages=warning"
PORT=$(( 20000 + RANDOM % 20000 ))
CG=$BENCH_WORK/cg
mkdir -p "$CG" "$BENCH_WORK/nginx"
chown postgres: "$CG"

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
    server {
        listen 127.0.0.1:$PORT;
        location / { return 200 "ok\n"; }
    }
}
EOF
nginx -c "$BENCH_WORK/nginx/nginx.conf" -p "$BENCH_WORK/nginx" &
NGINX_PID=$!
VG_PID=
trap 'kill $NGINX_PID 2>/dev/null; wait $NGINX_PID 2>/dev/null;
      [ -n "$VG_PID" ] && runuser -u postgres -- "$SM_BIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1;
      sm_stop_cluster; rm -rf "$BENCH_WORK"' EXIT

N=$(( (M2 > E2 ? M2 : E2) ))
bench_psql -q <<SQL
ALTER SYSTEM SET salesmgmt.webhook_allow_private_networks = on;
SET salesmgmt.webhook_allow_private_networks = on;
INSERT INTO salesmgmt.pipeline (name, transition_policy) VALUES ('Webhook bench', 'free');
INSERT INTO salesmgmt.stage (pipeline_id, name, position, probability)
SELECT pipeline_id, s, p, 0.5 FROM salesmgmt.pipeline, (VALUES ('Bench A', 1), ('Bench B', 2)) v(s, p)
 WHERE name = 'Webhook bench';
INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
SELECT 'Webhook bench ' || g, (SELECT min(account_id) FROM salesmgmt.account),
       (SELECT min(rep_id) FROM salesmgmt.rep), s.pipeline_id, s.stage_id, 1000
  FROM generate_series(1, $N) g,
       (SELECT pipeline_id, stage_id FROM salesmgmt.stage WHERE name = 'Bench A') s;
CREATE TABLE public.bench_deal AS
SELECT row_number() OVER (ORDER BY d.deal_id) AS n, d.deal_id, a.stage_id AS a, b.stage_id AS b
  FROM salesmgmt.deal d
  JOIN salesmgmt.stage a ON a.pipeline_id = d.pipeline_id AND a.name = 'Bench A'
  JOIN salesmgmt.stage b ON b.pipeline_id = d.pipeline_id AND b.name = 'Bench B';
CREATE UNIQUE INDEX ON public.bench_deal (n);
SELECT salesmgmt.create_webhook('http://127.0.0.1:$PORT/hook');
UPDATE salesmgmt.webhook_endpoint SET active = false;
VACUUM ANALYZE;
SQL
moves() {	# moves N: a psql script of N one-row moves, one transaction each
    for i in $(seq "$1"); do
        echo "UPDATE salesmgmt.deal d SET stage_id = CASE WHEN d.stage_id = b.a THEN b.b ELSE b.a END FROM public.bench_deal b WHERE b.n = $i AND d.deal_id = b.deal_id;"
    done > "$BENCH_WORK/moves$1.sql"
}
moves "$M1"; moves "$M2"

# the server again, under callgrind
sm_stop_cluster
runuser -u postgres -- env TMPDIR="$CG" valgrind --tool=callgrind --callgrind-out-file="$CG/cg.%p" \
    --dump-instr=no --compress-strings=no "$SM_BIN/postgres" -D "$PGDATA" \
    >"$BENCH_WORK/valgrind.log" 2>&1 &
VG_PID=$!
for _ in $(seq 600); do bench_psql -d postgres -qAt -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.5; done

total_of() {	# total_of PID: instructions of a finished process
    local f=$CG/cg.$1
    for _ in $(seq 600); do grep -q '^totals:' "$f" 2>/dev/null && break; sleep 0.5; done
    awk '/^totals:/ { print $2 }' "$f"
}
incl_of() {	# incl_of PID FUNCTION: instructions in FUNCTION and what it calls
    total_of "$1" >/dev/null
    callgrind_annotate --inclusive=yes "$CG/cg.$1" 2>/dev/null |
        awk -v f=":$2" '$0 ~ f" " { gsub(",", "", $1); print $1; found = 1; exit } END { if (!found) print 0 }'
}
session() {	# session FILE: run FILE in a new backend, print its instructions and the trigger's
    local pid
    pid=$(bench_psql -qAt -c 'SELECT pg_backend_pid()' -f "$1" | head -1)
    echo "$(total_of "$pid") $(incl_of "$pid" sm_webhook_enqueue)"
}

declare -A IR TRG
for mode in none outbox; do
    bench_psql -q -c "UPDATE salesmgmt.webhook_endpoint SET active = $([ $mode = outbox ] && echo true || echo false)"
    for m in "$M1" "$M2"; do
        bench_psql -q -c 'TRUNCATE salesmgmt.webhook_attempt, salesmgmt.webhook_delivery, salesmgmt.webhook_event'
        read -r "IR[$mode$m]" "TRG[$mode$m]" < <(session "$BENCH_WORK/moves$m.sql")
    done
done
per_none=$(( (IR[none$M2] - IR[none$M1]) / (M2 - M1) ))
per_outbox=$(( (IR[outbox$M2] - IR[outbox$M1]) / (M2 - M1) ))
trg=$(( (TRG[outbox$M2] - TRG[outbox$M1]) / (M2 - M1) ))
echo
printf 'instructions per stage move (callgrind, one UPDATE per transaction):\n'
printf '  %-52s %10d\n' "whole backend, no active endpoint" "$per_none"
printf '  %-52s %10d\n' "whole backend, active endpoint (C outbox trigger)" "$per_outbox"
printf '  %-52s %10d   (%.1f%% of a move without it)\n' "the outbox trigger itself (sm_webhook_enqueue)" "$trg" \
    "$(echo "scale=4; $trg * 100 / $per_none" | bc)"
echo "  (the two whole-backend figures move different deals in different directions:"
echo "   their difference is noisier than the trigger's own count)"

# the worker: E1 then E2 deliveries, each by a worker of its own
deliver() {	# deliver N: queue N events, a worker delivers them, print its instructions
    local pid
    bench_psql -q -c 'TRUNCATE salesmgmt.webhook_attempt, salesmgmt.webhook_delivery, salesmgmt.webhook_event' \
        -c "UPDATE salesmgmt.deal d SET stage_id = CASE WHEN d.stage_id = b.a THEN b.b ELSE b.a END
              FROM public.bench_deal b WHERE b.n <= $1 AND d.deal_id = b.deal_id"
    pid=$(bench_psql -qAt -c 'SELECT salesmgmt.webhook_worker_start()')
    for _ in $(seq 1200); do
        [ "$(bench_psql -qAt -c "SELECT count(*) FROM salesmgmt.webhook_delivery WHERE state <> 'delivered'")" = 0 ] && break
        sleep 0.5
    done
    [ "$(bench_psql -qAt -c "SELECT count(*) FROM salesmgmt.webhook_delivery WHERE state = 'delivered'")" = "$1" ] ||
        sm_die "the worker did not deliver $1 events"
    bench_psql -qAt -c "SELECT pg_terminate_backend($pid)" >/dev/null
    total_of "$pid"
}
w1=$(deliver "$E1")
w2=$(deliver "$E2")
printf 'instructions per delivery, whole worker (callgrind, %d - %d deliveries): %d\n' "$E2" "$E1" \
    $(( (w2 - w1) / (E2 - E1) ))
if [ -n "${BENCH_KEEP_CALLGRIND:-}" ]; then
    mkdir -p "$BENCH_KEEP_CALLGRIND"
    cp "$CG"/cg.* "$BENCH_KEEP_CALLGRIND"/
    echo "callgrind files kept in $BENCH_KEEP_CALLGRIND"
fi

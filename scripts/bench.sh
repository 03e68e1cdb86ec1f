#!/usr/bin/env bash
# `make bench`: slogate's load engine side by side with wrk, oha and Fortio against nginx on
# loopback, then its open-model rate accuracy and its peak memory. Not a test: it prints figures
# (copied into BENCHMARKS.md by hand).
#
# Knobs: BENCH_CONNECTIONS (default 32), BENCH_DURATION in seconds (default 10),
# BENCH_REQUESTS for the memory run (default 1000000); BENCH_ONLY=together runs only the
# two-versions-at-once comparison, BENCH_ONLY=indexed only the load-pods merge (BENCH_PODS load
# processes, default 4, at BENCH_INDEXED_QPS in all, default 20000), BENCH_ONLY=h2 only HTTP/2
# against h2load (BENCH_H2_CONNECTIONS, default 8, and BENCH_H2_STREAMS, default 1, streams per
# connection: h2load's -c and -m), BENCH_ONLY=grpc only gRPC unary calls against ghz on the hello
# gRPC service (BENCH_GRPC_CONNECTIONS, default 8, BENCH_GRPC_STREAMS, default 4: ghz's
# --connections and -c = connections x streams).
set -euo pipefail
cd "$(dirname "$0")/.."
SLOGATE_TOOLS=${SLOGATE_TOOLS:-$HOME/.cache/slogate-tools}
export PATH="$SLOGATE_TOOLS/bin:$PATH"
CONNS=${BENCH_CONNECTIONS:-32}
SECS=${BENCH_DURATION:-10}
MEM_REQUESTS=${BENCH_REQUESTS:-1000000}
log() { printf 'bench: %s\n' "$*" >&2; }

if [ "${BENCH_ONLY:-}" = h2 ]; then
  # Only nginx and h2load are needed.
  command -v h2load >/dev/null && command -v "$(command -v nginx || echo /usr/sbin/nginx)" >/dev/null \
    || scripts/setup-bench.sh
elif [ "${BENCH_ONLY:-}" = grpc ]; then
  # Only nginx (started below for every section) and ghz are needed.
  command -v ghz >/dev/null && command -v "$(command -v nginx || echo /usr/sbin/nginx)" >/dev/null \
    && [ -x /usr/bin/time ] || scripts/setup-bench.sh
elif [ "${BENCH_ONLY:-}" = indexed ]; then
  # Only nginx is needed.
  command -v "$(command -v nginx || echo /usr/sbin/nginx)" >/dev/null || scripts/setup-bench.sh
else
  scripts/setup-bench.sh
fi
log "building slogate and the hello service (release)"
cargo build --release -q -p slogate -p slogate-hello
SLOGATE=${CARGO_TARGET_DIR:-$PWD/target}/release/slogate
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

WORK=$(mktemp -d)
cleanup() {
  if [ -f "$WORK/nginx.pid" ]; then kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
H2PORT=$(free_port)
mkdir -p "$WORK/tmp"
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/tmp;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$PORT;
    location / { default_type text/plain; return 200 "Hello from nginx!\n"; }
  }
  # Prior-knowledge h2c (no TLS) for the HTTP/2 rows.
  server {
    listen 127.0.0.1:$H2PORT http2;
    location / { default_type text/plain; return 200 "Hello from nginx!\n"; }
  }
}
CONF
"$NGINX" -p "$WORK" -c "$WORK/nginx.conf"
URL="http://127.0.0.1:$PORT/"
for _ in $(seq 50); do curl -fsS "$URL" >/dev/null 2>&1 && break; sleep 0.1; done
log "nginx (1 worker) on $URL; $CONNS connections, ${SECS}s per tool"

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
ratio() { python3 -c "print(f'{float(\"$1\")/float(\"$2\"):.2f}')"; }
NGINX_WORKER=$(pgrep -P "$(cat "$WORK/nginx.pid")" | head -1)
# The server whose CPU the rows show (nginx's worker; the hello service in the gRPC rows).
SERVER_PID=$NGINX_WORKER
# CPU time (clock ticks) the server has used so far.
server_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
TICKS=$(getconf CLK_TCK)
declare -A RPS

# closed NAME [VAR=value...] CMD...: runs one closed-model measurement under GNU time and prints a
# row: requests/s, the tool's CPU time per request, and how busy nginx was meanwhile (a server
# near 100% is the ceiling every tool hits). Each tool writes JSON (or text for wrk) to
# $WORK/NAME.out; rps_of NAME reads its rate.
closed() {
  local name=$1; shift
  local before after
  before=$(server_ticks)
  /usr/bin/time -f '%U %S' -o "$WORK/$name.time" env "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  after=$(server_ticks)
  local rps cpu
  rps=$(rps_of "$name")
  cpu=$(awk 'END {print $1 + $2}' "$WORK/$name.time")
  printf '%-34s %12.0f %14.2f %12.0f%%\n' "$name" "$rps" \
    "$(python3 -c "print($cpu * 1e6 / ($rps * $SECS))")" \
    "$(python3 -c "print(100 * ($after - $before) / $TICKS / $SECS)")"
  RPS[$name]=$rps
}
rps_of() {
  case $1 in
    wrk*) awk '/^Requests\/sec:/ {print $2}' "$WORK/$1.out" ;;
    oha*) json "$WORK/$1.out" 'd["summary"]["requestsPerSec"]' ;;
    fortio*) json "$WORK/$1.json" 'd["ActualQPS"]' ;;
    slogate*) json "$WORK/$1.out" 'd["achievedRate"]' ;;
    h2load*) awk '/^finished in/ {print $4}' "$WORK/$1.out" ;;
    ghz*) json "$WORK/$1.out" 'd["rps"]' ;;
  esac
}

# gRPC unary calls, closed model: slogate beside ghz against the tonic hello service (its
# `instant` behaviour, 2 runtime threads) with the same connections and calls in flight, each
# client on one core (ghz --cpus 1, slogate -t 1), one run each. "server busy" is the hello
# process's CPU over the run.
grpc() {
  local c=${BENCH_GRPC_CONNECTIONS:-8} m=${BENCH_GRPC_STREAMS:-4}
  local proto=crates/hello/proto/hello.proto call=slogate.hello.v1.Greeter/SayHello
  local port; port=$(free_port)
  "${CARGO_TARGET_DIR:-$PWD/target}/release/hello" --grpc --behavior instant --listen "127.0.0.1:$port" \
    2>"$WORK/hello.err" &
  local hello=$!
  for _ in $(seq 50); do grep -q serving "$WORK/hello.err" 2>/dev/null && break; sleep 0.1; done
  "$SLOGATE" load "grpc://127.0.0.1:$port" --proto "$proto" --call "$call" -d '{"name":"bench"}' \
    -t 1 -c "$c" --streams "$m" -z 2s -o json >/dev/null   # warms up
  printf '\n== gRPC unary calls, closed model: %s connections, %s calls in flight, %ss per tool, one client core, hello (tonic) 2 threads ==\n' \
    "$c" "$((c * m))" "$SECS"
  printf '%-34s %12s %14s %13s\n' "tool" "calls/s" "CPU us/call" "server busy"
  SERVER_PID=$hello
  closed ghz ghz --insecure --cpus 1 --proto "$proto" --call "${call/\//.}" -d '{"name":"bench"}' \
    --connections "$c" -c "$((c * m))" -z "${SECS}s" -O json "127.0.0.1:$port"
  closed slogate_grpc "$SLOGATE" load "grpc://127.0.0.1:$port" --proto "$proto" --call "$call" \
    -d '{"name":"bench"}' -t 1 -c "$c" --streams "$m" -z "${SECS}s" -o json
  SERVER_PID=$NGINX_WORKER
  printf '  errors: ghz %s, slogate %s\n' "$(json "$WORK/ghz.out" 'sum(v for k, v in d.get("statusCodeDistribution", {}).items() if k != "OK")')" \
    "$(json "$WORK/slogate_grpc.out" 'd["errors"]')"
  kill "$hello" 2>/dev/null || true
  wait "$hello" 2>/dev/null || true
  printf '  slogate / ghz = %s (target >= 1.2)\n' "$(ratio "${RPS[slogate_grpc]}" "${RPS[ghz]}")"
}

# HTTP/2 (h2c), closed model: slogate beside h2load with the same connections and streams per
# connection, both on one thread, one run each.
h2() {
  local c=${BENCH_H2_CONNECTIONS:-8} m=${BENCH_H2_STREAMS:-1} url="http://127.0.0.1:$H2PORT/"
  "$SLOGATE" load --http2 -t 1 -c "$c" --streams "$m" -z 2s -o json "$url" >/dev/null   # warms nginx
  printf '\n== HTTP/2 (h2c), closed model: %s connections x %s streams, %ss per tool, one thread, nginx 1 worker ==\n' \
    "$c" "$m" "$SECS"
  printf '%-34s %12s %14s %13s\n' "tool" "requests/s" "CPU us/request" "nginx busy"
  closed h2load h2load -c "$c" -m "$m" -t 1 -D "$SECS" "$url"
  closed slogate_h2 "$SLOGATE" load --http2 -t 1 -c "$c" --streams "$m" -z "${SECS}s" -o json "$url"
  printf '  slogate / h2load = %s (target >= 0.9)\n' "$(ratio "${RPS[slogate_h2]}" "${RPS[h2load]}")"
}

# Two versions loaded at once (a Canary run: each version half the connections) against the
# same nginx must reach together at least 0.95x the requests/s of one version alone.
together() {
  "$SLOGATE" load -c "$CONNS" -z 2s -o json "$URL" >/dev/null   # warms nginx
  "$SLOGATE" load -c "$CONNS" -z "${SECS}s" -o json "$URL" >"$WORK/one.json"
  local one two
  one=$(json "$WORK/one.json" 'd["achievedRate"]')
  cat >"$WORK/two.yaml" <<SPEC
name: bench-two-versions
strategy: {testingPattern: Canary}
versions:
  - {name: current, role: baseline, url: "${URL}a"}
  - {name: candidate, url: "${URL}b"}
load: {connections: $CONNS, duration: ${SECS}s}
SPEC
  "$SLOGATE" run --spec "$WORK/two.yaml" --result-file "$WORK/two.json" >/dev/null 2>"$WORK/two.err"
  two=$(json "$WORK/two.json" 'sum(v["achievedQps"] for v in d["versions"])')
  printf '\n== two versions at once: %s connections in all, %ss ==\n' "$CONNS" "$SECS"
  printf 'one version alone        %12.0f requests/s\n' "$one"
  printf 'two versions together    %12.0f requests/s  (%s)\n' "$two" \
    "$(json "$WORK/two.json" '", ".join(v["name"] + " " + str(round(v["achievedQps"])) for v in d["versions"])')"
  printf '  together / alone = %s (target >= 0.95)\n' "$(ratio "$two" "$one")"
}
# Load from several pods, as the Indexed Job sends it: N load processes on loopback, each 1/N of
# the connections and of the rate, their evidence merged exactly as index 0 merges partials.
# The merged histogram must equal one histogram fed every sample of every process; the merge
# step's CPU per request and the sizes (largest partial, result document at 16 pods) are printed.
indexed() {
  local n=${BENCH_PODS:-4} rate=${BENCH_INDEXED_QPS:-20000}
  "$SLOGATE" load -c "$CONNS" -z 2s -o json "$URL" >/dev/null   # warms nginx
  "$SLOGATE" load -c "$CONNS" -q "$rate" -z "${SECS}s" -o json \
    --evidence-out "$WORK/one.evidence" "$URL" >/dev/null 2>&1
  "$SLOGATE" merge "$WORK/one.evidence" >"$WORK/one.merge.json"
  local i
  for i in $(seq 0 $((n - 1))); do
    "$SLOGATE" load -t 1 -c $((CONNS / n)) -q "$(python3 -c "print($rate / $n)")" -z "${SECS}s" \
      -o json --evidence-out "$WORK/pod-$i.evidence" "$URL" >/dev/null 2>&1 &
  done
  wait
  "$SLOGATE" merge "$WORK"/pod-*.evidence >"$WORK/merged.json"
  printf '\n== load pods: %s processes x 1/%s of %s req/s and %s connections, %ss, nginx 1 worker ==\n' \
    "$n" "$n" "$rate" "$CONNS" "$SECS"
  printf '%-22s %10s %10s %9s %9s %9s\n' "" "requests" "req/s" "p50 ms" "p99 ms" "p99.9 ms"
  local label f
  for f in one.merge merged; do
    if [ "$f" = one.merge ]; then label="one process"; else label="$n processes merged"; fi
    printf '%-22s %10s %10.0f %9.3f %9.3f %9.3f\n' "$label" \
      "$(json "$WORK/$f.json" 'd["requests"]')" "$(json "$WORK/$f.json" 'd["achievedRate"]')" \
      "$(json "$WORK/$f.json" 'd["p50Ms"]')" "$(json "$WORK/$f.json" 'd["p99Ms"]')" \
      "$(json "$WORK/$f.json" 'd["p999Ms"]')"
  done
  printf 'per-process rates:      %s\n' "$(json "$WORK/merged.json" '", ".join(f"{r:.0f}" for r in d["podRates"])')"
  printf 'merged == one histogram of every sample: %s\n' "$(json "$WORK/merged.json" 'd["equalToOneHistogram"]')"
  printf 'merge step: %s ms CPU for %s partials, %.1f ns CPU per request; largest partial %s bytes\n' \
    "$(json "$WORK/merged.json" 'round(d["mergeCpuSeconds"] * 1000, 3)')" "$n" \
    "$(json "$WORK/merged.json" 'd["mergeCpuNsPerRequest"]')" "$(json "$WORK/merged.json" 'd["largestPartialBytes"]')"
  # Sixteen pods: the result document they make must stay under 100 KB.
  for i in $(seq 0 15); do
    "$SLOGATE" load -t 1 -c 2 -q "$(python3 -c "print($rate / 16)")" -z 2s -o json \
      --evidence-out "$WORK/p16-$i.evidence" "$URL" >/dev/null 2>&1 &
  done
  wait
  "$SLOGATE" merge "$WORK"/p16-*.evidence >"$WORK/p16.json"
  local size
  size=$(json "$WORK/p16.json" 'd["resultBytes"]')
  printf '16 pods: result document %s bytes (target < 102400), largest partial %s bytes, equal: %s\n' \
    "$size" "$(json "$WORK/p16.json" 'd["largestPartialBytes"]')" "$(json "$WORK/p16.json" 'd["equalToOneHistogram"]')"
}
if [ "${BENCH_ONLY:-}" = h2 ]; then h2; exit 0; fi
if [ "${BENCH_ONLY:-}" = grpc ]; then grpc; exit 0; fi
if [ "${BENCH_ONLY:-}" = indexed ]; then indexed; exit 0; fi
together
if [ "${BENCH_ONLY:-}" = together ]; then exit 0; fi
h2
grpc
indexed

# Closed model, every tool with the same connections and duration, back to back: first each
# on one thread (wrk -t1, Fortio GOMAXPROCS=1, oha TOKIO_WORKER_THREADS=1, slogate -t 1), then
# each on its defaults (wrk's 2 threads, Go's and tokio's one per core).
"$SLOGATE" load -c "$CONNS" -z 2s -o json "$URL" >/dev/null   # warms nginx and the page cache
printf '\n== closed model: %s connections, %ss per tool, nginx 1 worker ==\n' "$CONNS" "$SECS"
printf '%-34s %12s %14s %13s\n' "tool" "requests/s" "CPU us/request" "nginx busy"
for round in 1thread default; do
  if [ "$round" = 1thread ]; then
    wrk_threads=1; one=(GOMAXPROCS=1 TOKIO_WORKER_THREADS=1); slogate_threads=(-t 1)
  else
    wrk_threads=2; one=(); slogate_threads=()
  fi
  closed "wrk_$round" "${one[@]}" wrk -t"$wrk_threads" -c "$CONNS" -d "${SECS}s" "$URL"
  closed "oha_$round" "${one[@]}" oha -z "${SECS}s" -c "$CONNS" --no-tui \
    --output-format json "$URL"
  closed "fortio_$round" "${one[@]}" fortio load -quiet -qps 0 -c "$CONNS" \
    -t "${SECS}s" -json "$WORK/fortio_$round.json" "$URL"
  closed "slogate_$round" "$SLOGATE" load "${slogate_threads[@]}" -c "$CONNS" \
    -z "${SECS}s" -o json "$URL"
  s=${RPS[slogate_$round]}
  printf '  %s: slogate / wrk = %s (target >= 0.85), / oha = %s (target >= 1.2), / fortio = %s (target >= 1.5)\n' \
    "$round" "$(ratio "$s" "${RPS[wrk_$round]}")" "$(ratio "$s" "${RPS[oha_$round]}")" \
    "$(ratio "$s" "${RPS[fortio_$round]}")"
done

printf '\n== open model: achieved / target rate (%ss) ==\n' "$SECS"
for qps in 1000 20000; do
  "$SLOGATE" load -c "$CONNS" -q "$qps" -z "${SECS}s" -o json "$URL" >"$WORK/open.json"
  achieved=$(json "$WORK/open.json" 'd["achievedRate"]')
  p99=$(json "$WORK/open.json" '[p["valueMs"] for p in d["latency"]["percentiles"] if p["percentile"]==99][0]')
  printf 'target %6s  achieved %10.1f  ratio %s  (corrected p99 %s ms)\n' "$qps" "$achieved" \
    "$(python3 -c "print(f'{$achieved/$qps:.4f}')")" "$p99"
done

printf '\n== peak RSS (closed model, %s connections) ==\n' "$CONNS"
for n in $((MEM_REQUESTS / 10)) "$MEM_REQUESTS"; do
  /usr/bin/time -v "$SLOGATE" load -c "$CONNS" -n "$n" -o json "$URL" >"$WORK/mem.json" 2>"$WORK/time.txt"
  rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$WORK/time.txt")
  printf '%9s requests: peak RSS %6.1f MB  (%s requests measured)\n' "$n" \
    "$(python3 -c "print($rss/1024)")" "$(json "$WORK/mem.json" 'd["requests"]')"
done
printf '\nmachine: %s cores (%s), %s\n' "$(nproc)" "$(uname -r)" "$(date -u +%Y-%m-%d)"

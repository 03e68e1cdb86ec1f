#!/usr/bin/env bash
# `make bench`: slogate's load engine side by side with wrk, oha and Fortio against nginx on
# loopback, then its open-model rate accuracy and its peak memory. Not a test: it prints figures
# (copied into BENCHMARKS.md by hand).
#
# Knobs: BENCH_CONNECTIONS (default 32), BENCH_DURATION in seconds (default 10),
# BENCH_REQUESTS for the memory run (default 1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
SLOGATE_TOOLS=${SLOGATE_TOOLS:-$HOME/.cache/slogate-tools}
export PATH="$SLOGATE_TOOLS/bin:$PATH"
CONNS=${BENCH_CONNECTIONS:-32}
SECS=${BENCH_DURATION:-10}
MEM_REQUESTS=${BENCH_REQUESTS:-1000000}
log() { printf 'bench: %s\n' "$*" >&2; }

scripts/setup-bench.sh
log "building slogate (release)"
cargo build --release -q -p slogate
SLOGATE=${CARGO_TARGET_DIR:-$PWD/target}/release/slogate
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

WORK=$(mktemp -d)
cleanup() {
  if [ -f "$WORK/nginx.pid" ]; then kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
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
}
CONF
"$NGINX" -p "$WORK" -c "$WORK/nginx.conf"
URL="http://127.0.0.1:$PORT/"
for _ in $(seq 50); do curl -fsS "$URL" >/dev/null 2>&1 && break; sleep 0.1; done
log "nginx (1 worker) on $URL; $CONNS connections, ${SECS}s per tool"

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

# Closed model, every tool with the same connections and duration, back to back.
"$SLOGATE" load -c "$CONNS" -z 2s -o json "$URL" >/dev/null   # warms nginx and the page cache
wrk_rps=$(wrk -t1 -c "$CONNS" -d "${SECS}s" "$URL" | awk '/^Requests\/sec:/ {print $2}')
oha -z "${SECS}s" -c "$CONNS" --no-tui --output-format json "$URL" >"$WORK/oha.json"
oha_rps=$(json "$WORK/oha.json" 'd["summary"]["requestsPerSec"]')
fortio load -quiet -qps 0 -c "$CONNS" -t "${SECS}s" -json "$WORK/fortio.json" "$URL" >/dev/null 2>&1
fortio_rps=$(json "$WORK/fortio.json" 'd["ActualQPS"]')
"$SLOGATE" load -c "$CONNS" -z "${SECS}s" -o json "$URL" >"$WORK/slogate.json"
slogate_rps=$(json "$WORK/slogate.json" 'd["achievedRate"]')
TOKIO_WORKER_THREADS=1 "$SLOGATE" load -c "$CONNS" -z "${SECS}s" -o json "$URL" >"$WORK/slogate1.json"
slogate1_rps=$(json "$WORK/slogate1.json" 'd["achievedRate"]')

ratio() { python3 -c "print(f'{float(\"$1\")/float(\"$2\"):.2f}')"; }
printf '\n== closed model: requests/s (%s connections, %ss, nginx 1 worker) ==\n' "$CONNS" "$SECS"
printf '%-28s %12.0f\n' "wrk -t1" "$wrk_rps" "oha" "$oha_rps" "fortio" "$fortio_rps" \
  "slogate (2 workers)" "$slogate_rps" "slogate (1 worker)" "$slogate1_rps"
best=$(python3 -c "print(max($slogate_rps, $slogate1_rps))")
printf 'slogate (best) / wrk    = %s   (target >= 0.85)\n' "$(ratio "$best" "$wrk_rps")"
printf 'slogate (best) / oha    = %s   (target >= 1.2)\n' "$(ratio "$best" "$oha_rps")"
printf 'slogate (best) / fortio = %s   (target >= 1.5)\n' "$(ratio "$best" "$fortio_rps")"

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

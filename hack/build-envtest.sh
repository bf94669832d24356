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
#
# On stderr it prints one progress line per step, "[build-envtest m:ss] msg";
# the go command's output goes to a log: BUILD_ENVTEST_LOG, appended to (the
# caller owns it), or else bin/build-envtest.log in the repository, rewritten
# each build. When the build fails it prints the log's last 20 lines.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=envtest-versions.env
source "${here}/envtest-versions.env"

store="${ENVTEST_STORE:-${XDG_DATA_HOME:-$HOME/.local/share}/kubebuilder-envtest}"
goos=$(go env GOOS)
goarch=$(go env GOARCH)
dest="${store}/k8s/${KUBE_VERSION}-${goos}-${goarch}"
start=$(date +%s)
# logfile is where the go command's output goes once the build starts.
logfile=""

# line formats a progress line: the minutes and seconds since the start.
line() {
  local s=$(( $(date +%s) - start ))
  printf '[build-envtest %d:%02d] %s\n' $(( s / 60 )) $(( s % 60 )) "$*"
}

log() {
  line "$*" >&2
  if [[ -n "${logfile}" ]]; then line "$*" >>"${logfile}"; fi
}

want_kcm=false
[[ "${1:-}" == kube-controller-manager ]] && want_kcm=true

wanted="etcd v${ETCD_VERSION}, kube-apiserver v${KUBE_VERSION}"
${want_kcm} && wanted="${wanted} and kube-controller-manager v${KUBE_VERSION}"
if [[ -x "${dest}/kube-apiserver" && -x "${dest}/etcd" ]] && { ! ${want_kcm} || [[ -x "${dest}/kube-controller-manager" ]]; }; then
  log "${wanted} already in ${dest}"
  echo "${dest}"
  exit 0
fi

# The caller's log is appended to; the default one is rewritten each build.
if [[ -n "${BUILD_ENVTEST_LOG:-}" ]]; then
  shown_log="${BUILD_ENVTEST_LOG}"
else
  shown_log="$(dirname "${here}")/bin/build-envtest.log"
fi
mkdir -p "$(dirname "${shown_log}")"
# The build functions cd, so the log is written by its absolute path.
log_abs="$(cd "$(dirname "${shown_log}")" && pwd)/$(basename "${shown_log}")"
[[ -n "${BUILD_ENVTEST_LOG:-}" ]] || : >"${log_abs}"

work=$(mktemp -d)
on_exit() {
  local rc=$?
  rm -rf "${work}"
  if (( rc != 0 )); then
    line "FAILED (exit ${rc}); the last 20 lines of ${shown_log}:" >&2
    tail -n 20 "${log_abs}" 2>/dev/null | sed 's/^/    /' >&2 || true
  fi
}
trap on_exit EXIT
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOWORK=off
mkdir -p "${dest}"
logfile="${log_abs}"
log "building ${wanted} into ${dest} (about 15 minutes on 2 cores, once per machine) — log: ${shown_log}"

# build_kube <command>: builds k8s.io/kubernetes/cmd/<command>.
build_kube() {
  local cmd="$1" mod="${work}/$1"
  mkdir -p "${mod}" && cd "${mod}"
  go mod init "envtest.local/${cmd}" >>"${logfile}" 2>&1
  log "resolving k8s.io/kubernetes v${KUBE_VERSION} and its staging modules"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v${KUBE_VERSION}" 2>>"${logfile}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [[ -f "${gomod}" ]] || { log "could not download k8s.io/kubernetes v${KUBE_VERSION}"; exit 1; }
  # kubernetes replaces every staging module with a directory of its own repo;
  # outside that repo we point each at its published v0.Y.Z module instead.
  local staging
  staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "${gomod}")
  [[ -n "${staging}" ]] || { log "no staging modules found in ${gomod}"; exit 1; }
  local v="v0.${KUBE_VERSION#*.}"
  for m in ${staging}; do go mod edit -replace "${m}=${m}@${v}" 2>>"${logfile}"; done
  log "$(wc -w <<<"${staging}") staging modules pinned to ${v}"
  go get "k8s.io/kubernetes/cmd/${cmd}@v${KUBE_VERSION}" >>"${logfile}" 2>&1
  log "compiling ${cmd} (the long part)"
  go build -trimpath -ldflags=-s -o "${dest}/${cmd}.tmp" "k8s.io/kubernetes/cmd/${cmd}" >>"${logfile}" 2>&1
  mv "${dest}/${cmd}.tmp" "${dest}/${cmd}"
}

build_etcd() {
  local mod="${work}/etcd"
  mkdir -p "${mod}" && cd "${mod}"
  go mod init envtest.local/etcd >>"${logfile}" 2>&1
  log "resolving go.etcd.io/etcd/server/v3 v${ETCD_VERSION}"
  go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" >>"${logfile}" 2>&1
  log "compiling etcd"
  go build -trimpath -ldflags=-s -o "${dest}/etcd.tmp" go.etcd.io/etcd/server/v3 >>"${logfile}" 2>&1
  mv "${dest}/etcd.tmp" "${dest}/etcd"
}

[[ -x "${dest}/etcd" ]] || build_etcd
[[ -x "${dest}/kube-apiserver" ]] || build_kube kube-apiserver
if ${want_kcm} && [[ ! -x "${dest}/kube-controller-manager" ]]; then
  build_kube kube-controller-manager
fi

log "built ${wanted} into ${dest}"
echo "${dest}"

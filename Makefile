# OSM Operator. Every tool comes from go.mod (`go tool`) or hack/: a fresh clone
# needs only Go and make.

IMG ?= ghcr.io/open-service-mesh/osm-operator:v0.1.0
CONTAINER_TOOL ?= docker
KUBECTL ?= kubectl

CONTROLLER_GEN ?= go tool controller-gen
KUSTOMIZE ?= go tool kustomize

# Go test flags; e.g. make test GOTESTFLAGS='-run TestSamples -v'.
GOTESTFLAGS ?=

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate CRDs, RBAC and webhooks from the markers, and the Helm chart and OLM bundle from config/.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases
	go run ./hack/package

.PHONY: bundle
bundle: manifests ## Write the OLM bundle (bundle/) from config/; build its image with bundle.Dockerfile.

.PHONY: generate
generate: ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

GENERATED = api config/crd/bases config/crd/gateway-api config/rbac config/webhook/manifests.yaml charts/osm-operator/crds charts/osm-operator/templates bundle

.PHONY: verify-generated
verify-generated: ## Fail if generated code or manifests are stale, or Go files unformatted.
	@sum() { find $(GENERATED) -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum; }; \
	before=$$(sum); \
	$(MAKE) --no-print-directory manifests generate; \
	if [ "$$before" != "$$(sum)" ]; then \
		echo "Generated code or manifests were out of date: 'make manifests generate' has updated them; review and commit them."; \
		exit 1; \
	fi
	@unformatted=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "Not gofmt-ed (run 'make fmt'):"; echo "$$unformatted"; exit 1; fi

.PHONY: envtest
envtest: ## Build kube-apiserver and etcd for the tests (once per machine, ~15 min); the go command's output goes to bin/build-envtest.log.
	@hack/build-envtest.sh >/dev/null

.PHONY: test
# make test runs every test verbosely into bin/test-output.log and prints
# what go test would (everything when GOTESTFLAGS has -v); hack/testlog fails
# the run if a private key or token appears anywhere in that output.
test: verify-generated vet ## Run every check and test against a real API server.
	@mkdir -p bin
	go build -o bin/testlog ./hack/testlog
	assets="$$(hack/build-envtest.sh)" || exit 1; \
	KUBEBUILDER_ASSETS="$$(echo "$$assets" | tail -n 1)" go test ./... -count=1 -timeout 25m -v $(GOTESTFLAGS) 2>&1 \
		| tee bin/test-output.log | bin/testlog $(if $(findstring -v,$(GOTESTFLAGS)),-all)

# Benchmark flags; e.g. make bench BENCHFLAGS='-bench EndpointChange -count 5'.
BENCHFLAGS ?= -bench . -benchtime 5x -count 2

# Scale harness flags; e.g. make bench-scale SCALEFLAGS='-proxies 1000 -services 100'.
SCALEFLAGS ?=

.PHONY: bench
bench: bench-scale ## Run the benchmarks (translation at 1,000 services, 10,000 endpoints; admission of 1,000 pods) and the scale harness.
	go test -run '^$$' -benchmem $(BENCHFLAGS) ./xds/...
	go test -run '^$$' -benchmem -bench . -benchtime 2x -count 2 ./webhooks/...

.PHONY: bench-scale
bench-scale: ## Serve a mesh of 1,000 services to 1,000, 3,000 and 10,000 simulated proxies; figures to bench/results/.
	hack/build-envtest.sh >/dev/null
	go build -o bin/scale ./hack/scale
	bin/scale $(SCALEFLAGS)

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build bin/osm-operator.
	go build -o bin/osm-operator ./cmd

.PHONY: run
run: manifests generate fmt vet ## Run the operator against the cluster of the current kubeconfig (webhooks off: the cluster cannot call this machine).
	go run ./cmd --metrics-secure=false --webhooks=false

# Demo flags; e.g. make demo DEMOFLAGS=-once.
DEMOFLAGS ?=

.PHONY: demo
# hack/demo prints one line per step; the tools' output goes to bin/demo/build.log.
# It is built, not run with go run, which adds a line of its own when it fails;
# its build, from the standard library alone, is the one step before its clock
# starts printing (on a fresh machine, compiling the standard library).
demo: ## Bring up a mesh on this machine with no cluster: control plane, cert-manager, the operator and the bookstore; Ctrl-C ends it.
	@started=$$(date +%s); mkdir -p bin/demo; \
	echo "[  0:00] compiling the demo's launcher (hack/demo; the first time about 30 seconds)"; \
	go build -o bin/demo/launcher ./hack/demo; bin/demo/launcher -started $$started $(DEMOFLAGS)

.PHONY: docker-build
docker-build: ## Build the operator's image.
	$(CONTAINER_TOOL) build -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the operator's image.
	$(CONTAINER_TOOL) push $(IMG)

.PHONY: build-installer
build-installer: manifests generate ## Render dist/install.yaml: CRDs, RBAC and the operator.
	mkdir -p dist
	$(KUSTOMIZE) build config/default | sed 's#controller:latest#$(IMG)#' > dist/install.yaml

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs (ours and SMI's) into the current cluster.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) apply --server-side -f -
	$(KUSTOMIZE) build config/crd/smi | $(KUBECTL) apply --server-side -f -
	$(KUSTOMIZE) build config/crd/gateway-api | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs from the current cluster.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: deploy
deploy: build-installer ## Deploy the operator to the current cluster.
	$(KUBECTL) apply --server-side -f dist/install.yaml

.PHONY: undeploy
undeploy: build-installer ## Remove the operator from the current cluster.
	$(KUBECTL) delete --ignore-not-found -f dist/install.yaml

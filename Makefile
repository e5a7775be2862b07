# fleetscan — see `make help`.
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/.tmp/bin
export PATH := $(BIN):$(PATH)

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN{FS=":.*## "} /^[a-z-]+:.*## /{printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/buf: proto/tools.go.mod proto/tools.go.sum
	@mkdir -p $(BIN)
	$(GO) build -modfile=proto/tools.go.mod -o $@ github.com/bufbuild/buf/cmd/buf

$(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc: go.mod go.sum
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

# Node.js 20 or newer and npm, Debian's when they are missing: the
# TypeScript SDK and the web console are built with them.
define need_node
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "Node.js and npm not found: installing Debian's nodejs and npm"; \
	  apt-get update -qq && apt-get install -y -qq nodejs npm; }
	@node -e 'if (+process.versions.node.split(".")[0] < 20) { console.error("Node.js " + process.version + " is too old: the TypeScript SDK and the console need 20 or newer"); process.exit(1) }'
endef

# The TypeScript SDK's npm packages, protoc-gen-es among them, pinned by
# its package-lock.json. npm ci writes node_modules/.package-lock.json last,
# so it runs again only when the lock file changed or an install broke off.
TS      := client/typescript
TS_DEPS := $(TS)/node_modules/.package-lock.json

$(TS_DEPS): $(TS)/package.json $(TS)/package-lock.json
	$(need_node)
	npm ci --prefix $(TS) --no-audit --no-fund --no-update-notifier

# The web console: TypeScript in client/console, bundled by esbuild with
# the packages of its own package-lock.json (esbuild, uPlot, connect-web,
# protobuf-es) into CONSOLE_DIST, which the server embeds and which is
# committed like generated code.
CONSOLE      := client/console
CONSOLE_DIST := server/internal/web/console/dist
CONSOLE_DEPS := $(CONSOLE)/node_modules/.package-lock.json

$(CONSOLE_DEPS): $(CONSOLE)/package.json $(CONSOLE)/package-lock.json
	$(need_node)
	npm ci --prefix $(CONSOLE) --no-audit --no-fund --no-update-notifier

.PHONY: console
console: $(CONSOLE_DEPS) ## Build the web console into server/internal/web/console/dist (committed)
	node $(CONSOLE)/build.mjs $(CONSOLE_DIST)

.PHONY: checkconsole
checkconsole: $(CONSOLE_DEPS) ## Type-check the web console; fail when its committed bundle is stale
	$(CONSOLE)/node_modules/.bin/tsc --noEmit -p $(CONSOLE)
	@rm -rf .tmp/console && node $(CONSOLE)/build.mjs .tmp/console
	@diff -r $(CONSOLE_DIST) .tmp/console >/dev/null || { \
	  echo "$(CONSOLE_DIST) is stale: run make console and commit"; \
	  diff -rq $(CONSOLE_DIST) .tmp/console; exit 1; }

PROTO_TOOLS := $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(TS_DEPS)

.PHONY: proto
proto: $(PROTO_TOOLS) ## Regenerate Go and TypeScript code from proto/ (committed)
	find proto -name '*.pb.go' -delete
	rm -rf $(TS)/src/gen
	buf generate

.PHONY: lint
lint: $(BIN)/buf ## buf lint, go vet, staticcheck, errorlint, gofmt
	buf lint
	$(GO) vet ./...
	$(GO) vet -tags e2e ./deploy/e2e
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags e2e ./deploy/e2e
	$(GO) tool go-errorlint ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: checkproto
checkproto: $(PROTO_TOOLS) ## Fail when the committed generated code or API reference is stale
	@rm -rf .tmp/gen && mkdir -p .tmp/gen
	@buf generate -o .tmp/gen
	@diff -r --exclude='*.proto' --exclude='*.go.mod' --exclude='*.go.sum' proto .tmp/gen/proto >/dev/null || { \
	  echo "generated code in proto/ is stale: run 'make proto' and commit"; \
	  diff -rq --exclude='*.proto' --exclude='*.go.mod' --exclude='*.go.sum' proto .tmp/gen/proto; exit 1; }
	@diff -r $(TS)/src/gen .tmp/gen/$(TS)/src/gen >/dev/null || { \
	  echo "generated code in $(TS)/src/gen is stale: run 'make proto' and commit"; \
	  diff -rq $(TS)/src/gen .tmp/gen/$(TS)/src/gen; exit 1; }
	@mkdir -p .tmp/gen/apidoc
	@buf build $(APIDOC_PROTOS) -o .tmp/gen/apidoc/image.binpb
	@$(GO) run ./server/internal/apidoc -image .tmp/gen/apidoc/image.binpb -out .tmp/gen/apidoc >/dev/null
	@for f in $(APIDOC_FILES); do \
	  cmp -s docs/$$f .tmp/gen/apidoc/$$f || { \
	    echo "docs/$$f is stale: run 'make apidoc' and commit"; \
	    diff -u docs/$$f .tmp/gen/apidoc/$$f | head -40; exit 1; }; \
	done

# The API reference is generated from a buf image of the public API and the
# worker protocol, which keeps the comments, and from the server's
# authorization table (server/internal/apidoc).
APIDOC_PROTOS := --path proto/fleetscan/v1 --path proto/fleetscan/worker/v1
APIDOC_FILES  := api.md worker-protocol.md

.PHONY: apidoc
apidoc: $(BIN)/buf ## Regenerate docs/api.md and docs/worker-protocol.md from the protos
	@mkdir -p .tmp/apidoc
	buf build $(APIDOC_PROTOS) -o .tmp/apidoc/image.binpb
	$(GO) run ./server/internal/apidoc -image .tmp/apidoc/image.binpb -out docs

.PHONY: docs
docs: ## Regenerate docs/checks.md from the catalog
	$(GO) test ./worker/catalog -run 'TestCatalogDoc' -update

.PHONY: build
build: ## Build the three binaries into .tmp/bin
	$(GO) build -o $(BIN)/ ./cmd/...

# The SARIF 2.1.0 schema (OASIS' sarif-2.1.0-rtm.5.json) that the report
# tests validate against, from the npm package that ships it, pinned by
# version and checksum; npm comes with the TypeScript SDK's tools.
SARIF_SCHEMA     := .tmp/sarif/sarif-2.1.0-rtm.5.json
SARIF_SCHEMA_PKG := @microsoft/jest-sarif@1.0.0-beta.0
SARIF_SCHEMA_SUM := 748e2c3d1a842e7bb258416685c7ea3a0da40005b72267b2052c2856d48ad102

$(SARIF_SCHEMA): | $(TS_DEPS)
	@rm -rf .tmp/sarif && mkdir -p .tmp/sarif
	cd .tmp/sarif && npm pack --silent --no-update-notifier $(SARIF_SCHEMA_PKG) >/dev/null && \
	  echo "$(SARIF_SCHEMA_SUM)  microsoft-jest-sarif-1.0.0-beta.0.tgz" | sha256sum -c --quiet && \
	  tar xzf microsoft-jest-sarif-1.0.0-beta.0.tgz package/lib/schemas/sarif-2.1.0-rtm.5.json && \
	  mv package/lib/schemas/sarif-2.1.0-rtm.5.json . && rm -rf package microsoft-jest-sarif-1.0.0-beta.0.tgz

.PHONY: test
# The crash tests run the binaries of `build` (FLEETSCAN_BIN), not a
# -race build of their own.
test: lint checkproto checkconsole build $(SARIF_SCHEMA) ## Lint, check generated code and the console's bundle, run all tests with -race, the TS SDK's tests, fuzz briefly
	FLEETSCAN_BIN=$(BIN) FLEETSCAN_SARIF_SCHEMA=$(CURDIR)/$(SARIF_SCHEMA) $(GO) test -race -count=1 ./...
	@$(MAKE) --no-print-directory test-postgres
	@$(MAKE) --no-print-directory ts-test
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3000x

.PHONY: test-postgres
# The server's tests again, each on a PostgreSQL database of its own (a
# throwaway server from Debian's package) instead of a bbolt file; the
# tests of PostgreSQL alone (replicas, Backup's refusal) ran in the pass
# before.
test-postgres: ## Run the server's tests on the PostgreSQL store
	FLEETSCAN_TEST_STORE=postgres $(GO) test -race -count=1 -skip '^(TestReplicas|TestBackupOnPostgres)$$' ./server/

.PHONY: ts-test
ts-test: build $(TS_DEPS) ## Compile the TypeScript SDK and run its node:test suite against the built binaries
	rm -rf $(TS)/dist
	$(TS)/node_modules/.bin/tsc -p $(TS)
	FLEETSCAN_BIN=$(BIN) node --test --test-reporter=spec $(TS)/dist/test/*.test.js

FUZZTIME ?= 30s
.PHONY: fuzz
# make test passes a count of inputs: unlike a duration, a count cannot
# expire in the middle of a minimization, which Go reports as a failure.
fuzz: ## Run every fuzz target for FUZZTIME each (default 30s)
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeManifests$$' -fuzztime $(FUZZTIME) ./worker/internal/collect
	$(GO) test -run '^$$' -fuzz '^FuzzYAMLToJSON$$' -fuzztime $(FUZZTIME) ./worker/internal/collect
	$(GO) test -run '^$$' -fuzz '^FuzzParseFlags$$' -fuzztime $(FUZZTIME) ./worker/checks
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePageToken$$' -fuzztime $(FUZZTIME) ./server/internal/api
	$(GO) test -run '^$$' -fuzz '^FuzzRequests$$' -fuzztime $(FUZZTIME) ./server/internal/api
	$(GO) test -run '^$$' -fuzz '^FuzzIngestBatch$$' -fuzztime $(FUZZTIME) ./server/internal/store
	$(GO) test -run '^$$' -fuzz '^FuzzFindingRecordRoundTrip$$' -fuzztime $(FUZZTIME) ./server/internal/store

# The big configuration of issue 7, against the server binary so that its
# peak RSS and goroutines are its own. LOAD_FLAGS adds or overrides flags,
# e.g. LOAD_FLAGS=--faults.
LOAD_FLAGS ?=
.PHONY: load
load: build ## Load harness: 1,000 simulated workers × 1,000 findings, two scans, verified exactly
	$(BIN)/fleetscan-loadgen --workers 1000 --findings 1000 --churn 3 --server-bin $(BIN)/fleetscan-server --metrics $(LOAD_FLAGS)

.PHONY: load-postgres
load-postgres: build ## Load harness on a PostgreSQL store (a throwaway server from Debian's package): compare with make load
	$(BIN)/fleetscan-loadgen --workers 1000 --findings 1000 --churn 3 --server-bin $(BIN)/fleetscan-server --metrics --store temp $(LOAD_FLAGS)

.PHONY: load-replicas
load-replicas: build ## Load harness on two server replicas sharing PostgreSQL, one killed with SIGKILL half-way through the first scan (docs/scaling.md)
	$(BIN)/fleetscan-loadgen --workers 1000 --findings 1000 --churn 3 --server-bin $(BIN)/fleetscan-server --metrics --store temp --replicas 2 --faults $(LOAD_FLAGS)

.PHONY: load-tail
load-tail: build ## Load harness with 3 of the 1,000 clusters at 10,000 findings: completion latency of big jobs among small ones
	$(BIN)/fleetscan-loadgen --workers 1000 --findings 1000 --churn 3 --large 3 --large-findings 10000 --server-bin $(BIN)/fleetscan-server --metrics $(LOAD_FLAGS)

.PHONY: load-realistic
load-realistic: build ## Load harness with findings of real sizes (long messages, some at the 4 KiB cap)
	$(BIN)/fleetscan-loadgen --workers 1000 --findings 1000 --churn 3 --realistic --server-bin $(BIN)/fleetscan-server --metrics $(LOAD_FLAGS)

# Kubernetes' bootstrap RBAC policy, written out of the release that
# deploy/e2e builds (its module, with every feature gate on): the checks
# embed it to tell built-in roles and bindings from look-alikes. make e2e
# fails when the committed copy is stale, as checkproto does for protos.
RBAC_DEFAULTS := worker/checks/rbacdefaults.json
K8S_TOOLS     := deploy/e2e/tools/kubernetes
rbac_defaults = cd $(K8S_TOOLS) && GOFLAGS= $(GO) run -mod=readonly -trimpath ./rbacdefaults \
	  $$(GOFLAGS= $(GO) list -mod=readonly -m -f '{{.Version}}' k8s.io/kubernetes)

.PHONY: rbac-defaults
rbac-defaults: ## Regenerate worker/checks/rbacdefaults.json from Kubernetes' bootstrap policy
	$(rbac_defaults) > $(CURDIR)/$(RBAC_DEFAULTS)

.PHONY: checkrbacdefaults
checkrbacdefaults:
	@mkdir -p .tmp/gen && $(rbac_defaults) > $(CURDIR)/.tmp/gen/rbacdefaults.json
	@cmp -s $(RBAC_DEFAULTS) .tmp/gen/rbacdefaults.json || { \
	  echo "$(RBAC_DEFAULTS) is stale: run 'make rbac-defaults' and commit"; \
	  diff -u $(RBAC_DEFAULTS) .tmp/gen/rbacdefaults.json | head -40; exit 1; }

.PHONY: bench-console
# The store benchmarks' fleet (1,000 clusters, 1,000,000 findings through
# the real ingest path, a year of daily scans) written once into
# .tmp/bench-fleet, then the console's overview loaded on it in headless
# Chromium. The fleet takes a few minutes to generate; delete
# .tmp/bench-fleet to generate it anew.
bench-console: ## The console's fleet overview of 1,000 clusters with a year of history, loaded in headless Chromium
	@test -f .tmp/bench-fleet/fleetscan.db || FLEETSCAN_BENCH_FLEET_DIR=$(CURDIR)/.tmp/bench-fleet $(GO) test -count=1 -timeout 30m -run TestWriteBenchFleet ./server/internal/store
	FLEETSCAN_CONSOLE_BENCH_DATA=$(CURDIR)/.tmp/bench-fleet $(GO) test -run '^$$' -bench BenchmarkConsoleOverview -benchtime 20x ./server

.PHONY: e2e
# Two real Kubernetes control planes (etcd, kube-apiserver), built from their
# Go modules on first use into ~/.cache/fleetscan-e2e, scanned by the real
# binaries. E2E_FLAGS=-update rewrites the golden files.
# The control plane is built here, not inside the test binary: go test's
# -timeout does not cover TestMain's setup.
e2e: build ## End-to-end tests on two real kube-apiservers (builds them on first use)
	@tools=$$(bash deploy/e2e/build-tools.sh) && $(MAKE) --no-print-directory checkrbacdefaults && \
	  FLEETSCAN_BIN=$(BIN) FLEETSCAN_E2E_TOOLS=$$tools $(GO) test -tags e2e -count=1 -timeout 20m -v ./deploy/e2e $(E2E_FLAGS)

.PHONY: e2e-large
# The large-cluster test alone (also part of make e2e): about 50,000
# objects on a control plane of its own, scanned through the server.
e2e-large: build ## End-to-end scan of a ~50,000-object cluster through the server, with its figures
	@tools=$$(bash deploy/e2e/build-tools.sh) && \
	  FLEETSCAN_BIN=$(BIN) FLEETSCAN_E2E_TOOLS=$$tools $(GO) test -tags e2e -count=1 -timeout 30m -v -run 'TestLargeCluster' ./deploy/e2e $(E2E_FLAGS)

.PHONY: demo
demo: build ## Server, one worker per demo cluster, a fleet scan, the console; no cluster needed (KEEP=1: run until Ctrl-C)
	@KEEP=$(KEEP) bash deploy/demo/run.sh

.PHONY: cluster-up cluster-down
cluster-up: ## One local control plane (etcd + kube-apiserver on loopback, built like make e2e's); prints its kubeconfig
	@bash deploy/e2e/cluster.sh up

cluster-down: ## Stop the control plane of cluster-up and remove its data
	@bash deploy/e2e/cluster.sh down

.PHONY: bench
bench: build ## Benchmarks, each printing its figure
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@rm -rf .tmp/bench-snapshot
	@FLEETSCAN_BENCH_SNAPSHOT=$(CURDIR)/.tmp/bench-snapshot $(GO) test -count=1 -run TestWriteBenchSnapshot ./worker/checks >/dev/null
	@echo "standalone scan of 10,000 objects in 20 YAML files (wall time, peak RSS):"
	@/usr/bin/time -f '  %e s wall, %M KiB peak RSS' $(BIN)/fleetscan-worker scan --snapshot .tmp/bench-snapshot -o json >/dev/null

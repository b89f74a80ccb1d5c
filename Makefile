# scimsync developer entry points. `make` (or `make help`) lists the targets.
#
# Variables (environment or `make VAR=value`):
#   EMULATOR_PORT  port of the local AWS emulator for `run`/`emulator` (default 4566)
#   PORT           port of the local SCIM server for `run` (default 8080)
#   SCIM_TOKEN     read by the scimsync CLI itself; passed through untouched
#   CARGO          cargo command (default cargo)
#   BINS           `build`: binaries to build (default: every Binary of infra/template.yaml)
#   SAM_ARGS       `deploy`: extra `sam deploy` arguments (e.g. --region eu-west-1)
#   GUIDED         `deploy`: 1 = `sam deploy --guided` (saves infra/samconfig.local.toml)
#   BENCH_ARGS     `bench`: loadgen arguments (default sizes: --users 300 --members 100000
#                  --sync-users 100000, about 45 min; --sync-users 0 skips the sync run)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --no-print-directory

EMULATOR_PORT ?= 4566
PORT ?= 8080
CARGO ?= cargo
export EMULATOR_PORT

EMULATOR := scripts/emulator.sh
WITH_EMULATOR := scripts/with-emulator.sh
EMULATOR_PIDFILE := target/emulator.pid
BINS ?=
SAM_ARGS ?=
GUIDED ?=

.PHONY: help run test lint lint-template fmt check venv emulator emulator-stop clean-venv \
	build deploy coldstart bench browser-test screenshots

help: ## Show this help (default goal)
	@echo "Usage: make <target> [VAR=value]"
	@echo
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_-]+:.*## / { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo "Variables: EMULATOR_PORT=$(EMULATOR_PORT) PORT=$(PORT) CARGO=$(CARGO); SCIM_TOKEN is read by the CLI."

run: ## Start the emulator on EMULATOR_PORT and serve SCIM locally on PORT (Ctrl-C stops both)
	$(WITH_EMULATOR) --port $(EMULATOR_PORT) -- \
		$(CARGO) run -p scimsync -- --local serve --port $(PORT) --bootstrap-tenant default

test: lint-template ## Template lint, all workspace tests against a throwaway emulator, then the portal in headless Chromium
	$(WITH_EMULATOR) --port 0 -- $(CARGO) test --workspace --all-targets
	scripts/browser-test.sh

browser-test: ## Portal in headless Chromium (Playwright, axe-core) against a throwaway local stack; screenshots in target/browser/
	scripts/browser-test.sh

screenshots: ## Re-take the README's screenshots (docs/screenshots/) with the browser test's whole-guide walk
	SCIMSYNC_README_SCREENSHOTS=$(CURDIR)/docs/screenshots scripts/browser-test.sh tests/browser/test_walk.py

lint: lint-template ## Lint the SAM template, check formatting, run clippy with warnings denied, check the CLI and test builds share features
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	python3 scripts/check-features.py

lint-template: ## SAM-translate infra/template.yaml and cfn-lint it (tools in .venv-lint)
	scripts/lint-template.sh

fmt: ## Format all crates
	$(CARGO) fmt --all

check: lint test ## lint + test (what CI runs)

venv: ## Create/refresh the Python venv (.venv) with the emulator
	$(EMULATOR) install

emulator: ## Start the emulator in the background on EMULATOR_PORT and print its URL
	@$(EMULATOR) start --port $(EMULATOR_PORT) --pidfile $(EMULATOR_PIDFILE)
	@echo "stop it with: make emulator-stop" >&2

emulator-stop: ## Stop the emulator started by `make emulator`
	$(EMULATOR) stop --pidfile $(EMULATOR_PIDFILE)

clean-venv: ## Remove the Python venv (.venv)
	rm -rf .venv

build: ## Build the arm64 Lambda packages target/lambda/<bin>/bootstrap (cargo-lambda; BINS)
	scripts/lambda-build.sh $(BINS)

deploy: ## Build, then `sam deploy` the stack (GUIDED=1 asks and saves settings; SAM_ARGS)
	scripts/deploy.sh $(if $(filter 1,$(GUIDED)),--guided) $(SAM_ARGS)

coldstart: ## Measure init time, first response and package size of each function vs a bare hello (arm64 under qemu + x86-64)
	scripts/coldstart.sh

bench: ## criterion benchmarks (scim-proto) + loadgen against a throwaway emulator (see BENCHMARKS.md)
	$(CARGO) bench -p scim-proto --bench proto
	$(WITH_EMULATOR) --port 0 -- $(CARGO) run --release -p scim-bench --bin loadgen -- $(BENCH_ARGS)

# Property tests (issue #9). Release mode, without the deploy profile's fat LTO
# (optimised code is what matters here, not a small binary). Every target
# prints how many inputs it generated; a failure prints the minimal input.
FUZZ_CASES ?= 1000000
FUZZ_ENV := SCIMSYNC_FUZZ_CASES=$(FUZZ_CASES) CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_STRIP=none \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
.PHONY: fuzz

fuzz: ## Property tests in release mode: FUZZ_CASES (default 1,000,000) inputs per target
	$(FUZZ_ENV) $(CARGO) test --release -p scim-proto --test fuzz -- --nocapture --test-threads 2
	$(FUZZ_ENV) $(CARGO) test --release -p scim-api --lib extract::extractor_tests::generated -- --nocapture

# Fault tests (issue #9) in long mode: every kind of fault (timeouts and late
# writes too) at every request of each operation, FAULT_ROUNDS times, and
# FAULT_ROUNDS x 16 rounds of the rotation race. `make test` runs them once in
# short mode. Each test prints its counts.
FAULT_ROUNDS ?= 3
.PHONY: faults

faults: ## Fault-injection tests, long mode: FAULT_ROUNDS (default 3) rounds, counts printed
	$(WITH_EMULATOR) --port 0 -- env SCIMSYNC_FAULT_ROUNDS=$(FAULT_ROUNDS) \
		$(CARGO) test -p scimsync-tests --test api faults:: -- --nocapture --test-threads 2

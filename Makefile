# scimsync developer entry points. `make` (or `make help`) lists the targets.
#
# Variables (environment or `make VAR=value`):
#   EMULATOR_PORT  port of the local AWS emulator for `run`/`emulator` (default 4566)
#   PORT           port of the local SCIM server for `run` (default 8080)
#   SCIM_TOKEN     read by the scimsync CLI itself; passed through untouched
#   CARGO          cargo command (default cargo)

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

.PHONY: help run test lint fmt check venv emulator emulator-stop clean-venv

help: ## Show this help (default goal)
	@echo "Usage: make <target> [VAR=value]"
	@echo
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_-]+:.*## / { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo "Variables: EMULATOR_PORT=$(EMULATOR_PORT) PORT=$(PORT) CARGO=$(CARGO); SCIM_TOKEN is read by the CLI."

run: ## Start the emulator on EMULATOR_PORT and serve SCIM locally on PORT (Ctrl-C stops both)
	$(WITH_EMULATOR) --port $(EMULATOR_PORT) -- \
		$(CARGO) run -p scimsync -- --local serve --port $(PORT) --bootstrap-tenant default

test: ## Run all workspace tests against a throwaway emulator on a free port (SCIMSYNC_EMULATOR_URL)
	$(WITH_EMULATOR) --port 0 -- $(CARGO) test --workspace --all-targets

lint: ## Check formatting and run clippy with warnings denied
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

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

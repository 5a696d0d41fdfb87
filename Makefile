# policyship — make help lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Tools installed by setup come first: Node >= 22, opa, minio, actionlint.
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: help setup build lint typecheck policy-test test test-unit test-integration demo soak bench overhead clean

help: ## list the targets
	@if [ -t 1 ] && [ -z "$${NO_COLOR:-}" ]; then on='\033[36m'; off='\033[0m'; else on=; off=; fi; \
	grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*?## "}; {printf "  %s%-18s%s %s\n", on, $$1, off, $$2}'

setup: ## install node >= 22, npm deps, pinned opa/minio/actionlint (cached), and build dist/
	@scripts/setup.sh

build: ## compile src/ to dist/ (tsc) and bundle the CLI into dist/cli-bundle/ (esbuild)
	npm run --silent build

lint: setup ## biome lint + format check, actionlint on workflows, opa fmt/check on policies/
	biome check .
	actionlint .github/workflows/*.yml
	opa fmt --list --fail policies
	opa check --strict policies

typecheck: setup ## strict type check of src/ and test/
	tsc -p tsconfig.check.json

policy-test: setup ## opa test policies/ with coverage >= 90%
	opa test policies --coverage --threshold 90 --format json >/dev/null
	opa test policies -v | tail -n 1

test-unit: setup ## unit tests (no processes)
	vitest run --project unit

test-integration: setup ## integration tests against real opa, MinIO and git
	vitest run --project integration

test: setup lint typecheck policy-test ## everything CI runs: lint, typecheck, policy tests, unit and integration tests
	vitest run

demo: setup ## release, change and roll back a policy against local MinIO (STORE=oci: a local OCI registry), OPA and the example app
	node --experimental-strip-types --no-warnings scripts/demo.ts --store $(or $(STORE),s3)

soak: setup ## 200,000 enforcer requests per engine; RSS growth < 20 MB, no leaked sockets or handles
	node --experimental-strip-types --no-warnings --expose-gc --max-semi-space-size=16 test/soak/soak.ts

bench: setup ## P1–P7: policyship vs the baselines, medians of alternating runs; writes test/bench/results.json
	node --experimental-strip-types --no-warnings test/bench/bench.ts

overhead: setup ## what build+test and release add over the bare opa (and PutObject) calls, in ms
	node --experimental-strip-types --no-warnings test/bench/overhead.ts

clean: ## remove build output and installed tools in this clone (the cache stays)
	rm -rf dist .tools node_modules

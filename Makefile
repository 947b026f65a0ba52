# Meridian. `make` alone lists the targets; the logic lives in scripts/.
.DEFAULT_GOAL := help
.PHONY: help run test soak fuzz bench lint

help: ## List the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-6s %s\n", $$1, $$2}'

run: ## Run every service in one process on SQLite (meridian dev), with a demo organisation
	cargo run -p meridian -- dev

test: ## Start PostgreSQL and RabbitMQ if needed, then run the whole suite (both storage backends)
	scripts/test.sh

soak: ## The long load tier: 300 req/s for 10 minutes against PostgreSQL and RabbitMQ (figures in target/soak/)
	scripts/soak.sh

fuzz: ## The fuzz targets under libFuzzer (cargo fuzz), FUZZ_SECONDS each (default 60)
	scripts/fuzz.sh

bench: ## Measure incident creations per second over HTTP; figures go to bench-results/
	scripts/bench.sh

lint: ## rustfmt and clippy, as CI wants them
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

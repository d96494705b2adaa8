# The commands README.md gives. `make run` serves the API on SQLite; `make test` runs every test
# on SQLite and on a throw-away PostgreSQL server.

.PHONY: run test deps ui lint desktop

run:
	cargo run --release --no-default-features -- serve

test: deps ui
	scripts/with-postgres cargo test

deps:
	scripts/install-deps

ui:
	cd ui && npm ci --no-audit --no-fund && npm run build

lint: deps ui
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --no-default-features --all-targets -- -D warnings
	cd ui && npm run typecheck

desktop: deps ui
	cargo run

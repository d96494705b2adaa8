# The commands README.md gives. `make run` opens the desktop console on the SQLite file
# tollgate.db; `make test` runs every test: Rust on SQLite and on a throw-away PostgreSQL server,
# the console's typecheck and component tests, and the console end to end in a real window.

.PHONY: run serve test deps ui ui-check api-reference e2e lint desktop

DATABASE_URL ?= sqlite://tollgate.db

# Without a display there is no window to open: say so before building anything.
run:
	@if [ -z "$$DISPLAY" ] && [ -z "$$WAYLAND_DISPLAY" ]; then \
	  echo "make run opens the desktop console, but this machine has no graphical display (DISPLAY and WAYLAND_DISPLAY are unset)."; \
	  echo "Run the HTTP API instead:  make serve   (or: cargo run --release --no-default-features -- serve)"; \
	  exit 1; \
	fi
	$(MAKE) deps ui api-reference
	cargo run -- desktop --database-url $(DATABASE_URL)

# The API reference at /docs is embedded when fetched first; without npm the server still builds
# and /docs says how to add it.
serve:
	-scripts/api-reference
	cargo run --release --no-default-features -- serve

# The UI is built first: the binary that `cargo test` builds embeds ui/dist, and the
# end-to-end run drives that same binary (target/debug/tollgate). The tests get a throw-away
# PostgreSQL server and a throw-away Redis server.
test: deps ui-check api-reference
	scripts/with-postgres scripts/with-redis cargo test
	scripts/e2e

deps:
	scripts/install-deps

ui:
	cd ui && npm ci --no-audit --no-fund && npm run build

# Scalar's API reference bundle (npm), embedded in the binary for /docs.
api-reference:
	scripts/api-reference

ui-check: ui
	cd ui && npm run typecheck && npm test

e2e:
	scripts/e2e

lint: deps ui api-reference
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --no-default-features --all-targets -- -D warnings
	cd ui && npm run typecheck

desktop: run

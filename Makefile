# The two commands a newcomer needs: `make report` and `make test`.
CARGO ?= cargo
PROFILE ?=
JOBS ?=
REPRO := target/release/repro

.PHONY: report build test lint fmt bench clean

report: build
	$(REPRO) run $(if $(PROFILE),--profile $(PROFILE)) $(if $(JOBS),-j $(JOBS))

build:
	$(CARGO) build --release

# Tests run on the release profile so they share its compiled dependencies with `make report`.
test:
	$(CARGO) test --release

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

bench: build
	bash bench/run.sh

clean:
	rm -rf artifacts cache

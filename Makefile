# The two commands a newcomer needs: `make report` and `make test`.
#
# `make report BACKEND=tch [DEVICE=auto|cpu|cuda:N]` trains on libtorch (burn-tch): the build
# and the run go through scripts/with-libtorch.sh, which finds or makes a PyTorch (a venv with
# PyPI torch==2.9.0 unless LIBTORCH or a Python with torch is given). Its build lives in
# target/tch, so switching backends never rebuilds the other.
CARGO ?= cargo
PROFILE ?=
JOBS ?=
# Without BACKEND: tch where an NVIDIA GPU is usable, flex otherwise (scripts/detect-backend.sh).
ifndef BACKEND
BACKEND := $(shell bash scripts/detect-backend.sh)
endif
DEVICE ?= auto

TCH_TARGET := target/tch
WITH_LIBTORCH := bash scripts/with-libtorch.sh
ifeq ($(BACKEND),tch)
BUILD := CARGO_TARGET_DIR=$(TCH_TARGET) $(WITH_LIBTORCH) $(CARGO) build --release --features tch
BIN := $(TCH_TARGET)/release/repro
REPRO := $(WITH_LIBTORCH) $(BIN)
SETTINGS := -s pipeline.backend=tch -s pipeline.device=$(DEVICE)
else
BUILD := $(CARGO) build --release
BIN := target/release/repro
REPRO := $(BIN)
SETTINGS :=
endif

.PHONY: report build explain-backend test test-tch test-slurm test-remote lint fmt bench gpu-bundle book clean

report: explain-backend build
	$(REPRO) run $(SETTINGS) $(if $(PROFILE),--profile $(PROFILE)) $(if $(JOBS),-j $(JOBS))

build:
	@[ -x $(BIN) ] || echo "First build of repro (release, $(BACKEND)): about 10 minutes on 2 cores, most of it polars and burn; cargo lists each crate as it compiles. Later builds take seconds."
	$(BUILD)

# Says why a GPU build is coming (and what it downloads) when the backend was chosen for the user.
explain-backend:
ifeq ($(origin BACKEND)$(BACKEND),filetch)
	@bash scripts/detect-backend.sh --explain >/dev/null
endif

# Tests run on the release profile so they share its compiled dependencies with `make report`.
test:
	$(CARGO) test --release

# The unit tests in the tch build (batched sweeps on libtorch included), then the quick profile on
# tch (CPU) against flex, within stated tolerances (tests/tch_agreement.rs).
test-tch:
	CARGO_TARGET_DIR=$(TCH_TARGET) $(WITH_LIBTORCH) $(CARGO) test --release --features tch --lib --test tch_agreement -- --nocapture

# A one-node Slurm cluster on this machine (installs slurm-wlm and munge when missing), the
# cluster test against it (tests/slurm.rs), then the daemons are stopped whatever happened.
test-slurm: build
	bash scripts/slurm-local.sh start
	SLURM_CONF=$(CURDIR)/target/slurm-local/slurm.conf $(CARGO) test --release --test slurm -- --ignored --nocapture; \
	status=$$?; bash scripts/slurm-local.sh stop; exit $$status

# Real remote-cache servers on 127.0.0.1 (moto's S3 and nginx's WebDAV; installed when missing),
# the remote tests that need them (tests/remote.rs), then the servers are stopped whatever happened.
test-remote: build
	bash scripts/remote-local.sh start
	eval "$$(bash scripts/remote-local.sh env)"; $(CARGO) test --release --test remote -- --ignored; \
	status=$$?; bash scripts/remote-local.sh stop; exit $$status

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

# The default study's verdicts first: a code change that flips one fails here, loudly.
# Every benchmark, each output kept under bench/results/<date>-<machine>/ (bench/record.sh).
bench: build
	bash bench/record.sh

# A tch build for a GPU machine without internet, with MNIST and the config (docs/src/backends.md); TORCH_VERSION is the machine's PyTorch (default 2.11.0).
gpu-bundle:
	bash scripts/build-gpu-bundle.sh

# The reference book (docs/) into target/book, with its links checked.
book:
	bash scripts/book.sh

clean:
	rm -rf artifacts cache

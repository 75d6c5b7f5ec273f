# The two commands of the README: `make demo` and `make test`.

CARGO  ?= cargo
BATON  := target/release/baton
DEMO_STORE := target/demo-store

.PHONY: demo test deps build lint test-rust test-java test-e2e test-gradle test-maestro bench soak fuzz cluster-demo

demo: deps build
	@rm -rf $(DEMO_STORE)
	@echo "== baton run examples/hello.yaml (store: $(DEMO_STORE))"
	$(BATON) --store $(DEMO_STORE) run examples/hello.yaml -p date=2026-11-25
	@echo "== baton runs"
	@$(BATON) --store $(DEMO_STORE) runs
	@echo "== baton show (the run above)"
	@$(BATON) --store $(DEMO_STORE) show $$($(BATON) --store $(DEMO_STORE) runs --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
	@echo "== examples/java-service: the same engine inside a JVM, with Java steps"
	examples/java-service/run.sh target/java-service-store
	@echo "== examples/java-service/DataEvents.java: a while loop, a subworkflow and a signal, in Java"
	examples/java-service/run.sh --main DataEvents

test: deps lint test-rust test-java test-e2e test-gradle test-maestro

# Installs what the build needs and is missing (Debian packages, when running as root).
deps:
	@./scripts/deps.sh

# The CLI, and the JNI library that the Java build packs into its jar.
build:
	$(CARGO) build --release -p baton-cli -p baton-jni

# Formatting, clippy with warnings as errors (missing docs included), no import cycle
# between the modules of baton-core, and fuzz targets that still compile against the core
# (`make fuzz` builds them with nightly; this checks them with stable).
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	python3 scripts/module_deps.py
	RUSTFLAGS="--cfg fuzzing" $(CARGO) check --manifest-path native/fuzz/Cargo.toml --bins --target-dir target/fuzz-check

test-rust:
	$(CARGO) test --workspace

test-java: build
	mvn -B -q -f java/pom.xml verify

test-e2e: build
	$(CARGO) build --release -p baton-core --benches --examples
	python3 tests/crash/crash_test.py --baton $(BATON)
	python3 tests/crash/trigger_crash_test.py --baton $(BATON)
	python3 tests/crash/loop_crash_test.py --baton $(BATON)
	python3 tests/crash/orphan_test.py --baton $(BATON)
	python3 tests/crash/disk_full_test.py --baton $(BATON)
	python3 tests/cluster/cluster_test.py --baton $(BATON)

# The Gradle plugin, through real Gradle builds of examples/gradle-build (needs `gradle`: make deps).
test-gradle: build
	mvn -B -q -f java/pom.xml install -DskipTests
	python3 tests/gradle/test_gradle_plugin.py --baton $(BATON)

# `baton import maestro` over Maestro's own samples, when ../shared/maestro-samples is there
# (they are not part of the project): each imports or is refused with a reason, and what
# imports with built-in kinds runs.
test-maestro: build
	python3 tests/maestro/test_maestro.py --baton $(BATON)

# Three engines on one throwaway PostgreSQL; one is killed, the others finish its runs.
cluster-demo: build
	BATON=$(BATON) examples/cluster/run.sh

bench:
	$(CARGO) bench -p baton-core --bench engine

# Not part of `make test`: 1,000 SIGKILLs of run, recover and serve on redb and sled, with
# the invariants checked after each series (about 40 minutes; SOAK_KILLS to change).
SOAK_KILLS ?= 1000
soak: build
	python3 tests/soak/soak.py --baton $(BATON) --kills $(SOAK_KILLS)

# Fuzzes everything Baton reads from outside (native/fuzz), FUZZ_SECONDS per target, and
# prints executions and findings per target. Not part of `make test`. Needs the nightly
# toolchain; installs cargo-fuzz when it is missing.
FUZZ_SECONDS ?= 120
fuzz:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	@python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml
	python3 scripts/fuzz.py --seconds $(FUZZ_SECONDS)

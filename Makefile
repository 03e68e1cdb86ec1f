# slogate: every entry point a developer or CI needs.
# `make test` is the one command that installs the test tools (first time only) and runs every test.

SHELL := /bin/bash
export SLOGATE_TOOLS ?= $(HOME)/.cache/slogate-tools
CARGO ?= cargo

.PHONY: build test unit e2e bench lint demo image setup static static-check stats

build:
	$(CARGO) build --release -p slogate

setup:
	scripts/setup.sh

# Everything: unit, integration, real control plane, the tutorial in real pods on a one-node
# cluster (root), helm, chromium; then lint.
test: setup static
	$(CARGO) test --workspace --all-targets -- --include-ignored
	$(MAKE) lint
	$(MAKE) static-check

# Tests that need no installed tool.
unit:
	$(CARGO) test --workspace --all-targets

# The chart with the real helm, the slo-pr Job's command on a real kube-apiserver (fast tier),
# and the tutorial in real pods on a one-node cluster (needs root; images from `make static`).
e2e: setup static
	$(CARGO) test -p slogate-k8s --all-targets -- --include-ignored
	$(CARGO) test -p slogate --test job_command_on_the_host -- --include-ignored
	$(CARGO) test -p slogate --test tutorial_in_pods -- --include-ignored --nocapture

# The coverage study of every bound a verdict uses (fixed seed); prints the table the README
# shows. It is also part of `unit` and `test`, where it fails when a bound covers too little.
stats:
	$(CARGO) test -p slogate-core --test coverage -- --nocapture

bench: setup
	scripts/bench.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(SLOGATE_TOOLS)/bin/helm lint --strict charts/slo-pr -f samples/values/basic.yaml

demo:
	$(CARGO) run --release -q -p slogate -- demo

# The static slogate (the Dockerfile's binary) and hello (the test node's sample service).
static:
	$(CARGO) build --release -p slogate -p slogate-hello --target x86_64-unknown-linux-musl

# The binary the Dockerfile ships: it must be static and run a real experiment.
STATIC_BIN := target/x86_64-unknown-linux-musl/release/slogate
static-check: static
	file $(STATIC_BIN) | grep -q 'static'
	$(STATIC_BIN) demo -n 500 -q 250 >/dev/null

image:
	docker build -t slogate:dev .

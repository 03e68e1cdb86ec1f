# slogate: every entry point a developer or CI needs.
# `make test` is the one command that installs the test tools (first time only) and runs every test.

SHELL := /bin/bash
export SLOGATE_TOOLS ?= $(HOME)/.cache/slogate-tools
CARGO ?= cargo

.PHONY: build test unit e2e bench lint demo image setup static

build:
	$(CARGO) build --release -p slogate

setup:
	scripts/setup.sh

# Everything: unit, integration, real control plane, helm, chromium; then lint.
test: setup
	$(CARGO) test --workspace --all-targets -- --include-ignored
	$(MAKE) lint

# Tests that need no installed tool.
unit:
	$(CARGO) test --workspace --all-targets

# The chart with the real helm, and the slo-pr Job on a real kube-apiserver.
e2e: setup
	$(CARGO) test -p slogate-k8s --all-targets -- --include-ignored
	$(CARGO) test -p slogate --test cluster_e2e -- --include-ignored

bench: setup
	scripts/bench.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(SLOGATE_TOOLS)/bin/helm lint --strict charts/slo-pr -f samples/values/basic.yaml

demo:
	$(CARGO) run --release -q -p slogate -- demo

static:
	$(CARGO) build --release -p slogate --target x86_64-unknown-linux-musl

image:
	docker build -t slogate:dev .

# A static slogate on a minimal, non-root base; the slogate-helm target adds the helm binary.
FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p slogate --target x86_64-unknown-linux-musl

# The helm binary for finish actions that run `helm upgrade` (README "Finish actions"), checked
# against the checksum published next to it; the version the tests run (scripts/setup.sh).
FROM debian:bookworm-slim AS helm
ARG HELM_VERSION=v4.1.4
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
 && curl -fsSLO "https://get.helm.sh/helm-${HELM_VERSION}-linux-amd64.tar.gz" \
 && curl -fsSL "https://get.helm.sh/helm-${HELM_VERSION}-linux-amd64.tar.gz.sha256sum" | sha256sum -c - \
 && tar -xzf "helm-${HELM_VERSION}-linux-amd64.tar.gz" linux-amd64/helm \
 && install -m 0755 linux-amd64/helm /usr/local/bin/helm

# slogate with helm: `docker build --target slogate-helm -t slogate:helm .`. Helm keeps its
# cache and config under /tmp, which the slo-pr chart mounts writable (the root file system
# is read-only).
FROM gcr.io/distroless/static-debian12:nonroot AS slogate-helm
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/slogate /usr/local/bin/slogate
COPY --from=helm /usr/local/bin/helm /usr/local/bin/helm
ENV HELM_CACHE_HOME=/tmp/helm/cache HELM_CONFIG_HOME=/tmp/helm/config HELM_DATA_HOME=/tmp/helm/data
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/slogate"]

# The default image: slogate alone.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/slogate /usr/local/bin/slogate
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/slogate"]

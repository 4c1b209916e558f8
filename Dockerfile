# Multi-stage build: compile in the Rust image, run from a slim Debian as a non-root user.
# The runtime image has no PostgreSQL: set DATABASE_URL (docker-compose.yml and
# deploy/k8s do). One image runs every part: `carrot serve --role api|worker`,
# `carrot migrate`, `carrot payment-sim`, the operator commands.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo ./.cargo
COPY crates ./crates
COPY migrations ./migrations
# The release profile keeps line tables for profiling on a developer's machine; the image
# drops the debug sections (93 MB to 24 MB) and keeps the symbols (4 MB), so a panic's
# backtrace and a profile still name their functions.
RUN cargo build --release --locked -p carrot-api --bin carrot \
    && strip --strip-debug target/release/carrot

FROM debian:bookworm-slim AS runtime
# Pinned package versions break on every Debian point release; the base image is the pin.
# ca-certificates: TLS to PostgreSQL (sslmode=verify-full) and to the payment gateway.
# curl: the health checks of docker-compose.yml.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/carrot --create-home carrot
COPY --from=build /src/target/release/carrot /usr/local/bin/carrot
USER 10001
WORKDIR /var/lib/carrot
ENV CARROT_BIND=0.0.0.0:8080 \
    CARROT_DATA_DIR=/var/lib/carrot \
    CARROT_LOG_FORMAT=json
EXPOSE 8080
# No HEALTHCHECK: the same image serves the API and workers on 8080 and the payment
# simulator on 9090 and runs one-shot commands, so no single check fits. docker-compose.yml
# and the Kubernetes probes check each part on its own port and path.
ENTRYPOINT ["carrot"]
CMD ["serve"]

# Multi-stage build: compile in the Rust image, run from a slim Debian as a non-root user.
# The runtime image has no PostgreSQL: set DATABASE_URL (docker-compose.yml does).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY migrations ./migrations
RUN cargo build --release --locked -p carrot-api --bin carrot

FROM debian:bookworm-slim AS runtime
# Pinned package versions break on every Debian point release; the base image is the pin.
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
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["curl", "-fsS", "http://127.0.0.1:8080/health/ready"]
ENTRYPOINT ["carrot"]
CMD ["serve"]

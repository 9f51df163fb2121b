# Multi-stage build: compile in the Rust image, run on slim Debian with the PostgreSQL
# server binaries, so the embedded default database works inside the container.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin guildops && strip target/release/guildops

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/guildops --shell /usr/sbin/nologin guildops
COPY --from=build /src/target/release/guildops /usr/local/bin/guildops
COPY config.toml /etc/guildops/config.toml
# Non-root: the embedded PostgreSQL runs as this user too (it refuses root).
USER guildops
WORKDIR /var/lib/guildops
ENV GUILDOPS_DAEMON__DATA_DIR=/var/lib/guildops/data \
    GUILDOPS_HTTP__BIND=0.0.0.0:8080 \
    GUILDOPS_DATABASE__POSTGRES_BIN_DIR=/usr/lib/postgresql/15/bin
VOLUME ["/var/lib/guildops/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# SIGTERM: stop accepting, finish in-flight work, close the gateway, stop the database.
STOPSIGNAL SIGTERM
ENTRYPOINT ["guildops", "--config", "/etc/guildops/config.toml"]
CMD ["run"]

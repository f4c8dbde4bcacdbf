# glpi-network-server: build with the Rust toolchain, run on a slim Debian with libpq.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p glpi-network-server

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data --shell /usr/sbin/nologin glpinet \
    && mkdir -p /data && chown glpinet /data
COPY --from=build /src/target/release/glpi-network-server /usr/local/bin/glpi-network-server
USER glpinet
# The data directory keeps the master key, the generated admin token and (with SQLite) the
# database: mount a volume on it so they survive restarts.
VOLUME /data
ENV GLPI_NETWORK_BIND=0.0.0.0:8080 \
    GLPI_NETWORK_DATA_DIR=/data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["glpi-network-server"]
CMD ["serve"]

# glpi-network-server: built with the Rust toolchain alone (libpq and OpenSSL are compiled into
# the binary: pq-sys "bundled", openssl-sys "vendored"; the rust image has the C compiler, make
# and perl that they need), run on a slim Debian with no database client library.
# `bash .ci/dockerfile-steps` runs these steps outside a container.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p glpi-network-server

FROM debian:bookworm-slim
# curl for the health check; ca-certificates for `sslrootcert=system` in DATABASE_URL
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data --shell /usr/sbin/nologin glpinet \
    && mkdir -p /data && chown glpinet /data
COPY --from=build /src/target/release/glpi-network-server /usr/local/bin/glpi-network-server
USER glpinet
# The data directory keeps the master key, the generated admin token and (with SQLite) the
# database: mount a volume on it so they survive restarts.
VOLUME /data
# The compiled-in OpenSSL does not know Debian's certificate paths: name them.
ENV GLPI_NETWORK_BIND=0.0.0.0:8080 \
    GLPI_NETWORK_DATA_DIR=/data \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_DIR=/etc/ssl/certs
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["glpi-network-server"]
CMD ["serve"]

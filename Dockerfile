# evertoken as a container image: a static (musl) binary, the CA certificates, and
# nothing else; runs as an unprivileged user. Build and try it:
#
#   docker build -t evertoken .
#   docker run --rm evertoken --version
#   docker run --rm -v "$PWD/evertoken.yaml:/config/evertoken.yaml:ro" \
#     -e TIKTOK_CLIENT_SECRET -e GITLAB_TOKEN evertoken --config /config/evertoken.yaml auth refresh all
#
# Released images and binaries: docs/src/reference/install.md.

ARG RUST_VERSION=1.95

# ---- build: the release binary, statically linked against musl ----------------
FROM rust:${RUST_VERSION}-alpine AS build
# ring compiles a little C and assembly: the musl C toolchain headers.
# hadolint ignore=DL3018
RUN apk add --no-cache musl-dev ca-certificates
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# The demo's simulator stays out of the image (`--no-default-features`).
RUN cargo build --release --locked -p evertoken --bin evertoken --no-default-features \
    && install -D -m 0755 target/release/evertoken /out/usr/local/bin/evertoken \
    && install -d -m 0700 /out/home/evertoken \
    && /out/usr/local/bin/evertoken --version

# ---- runtime: binary + CA certificates, non-root --------------------------------
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/usr/local/bin/evertoken /usr/local/bin/evertoken
COPY --from=build --chown=65532:65532 /out/home/evertoken /home/evertoken
ENV HOME=/home/evertoken \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/evertoken
ENTRYPOINT ["/usr/local/bin/evertoken"]
CMD ["--help"]

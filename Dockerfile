# The one Meridian image: every service runs from it (`meridian serve --service <name>`).
# Build: docker build -t meridian .   (multi-stage; the final stage is distroless, non-root)

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
# libssl for the one TLS stack; libpq and SQLite are built from source by their crates.
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock ./
COPY proto proto
COPY services services
COPY tests tests
COPY workflows workflows
RUN cargo build --release --locked -p meridian \
    && cp target/release/meridian /meridian \
    && /meridian workflows validate workflows

# Distroless with glibc and OpenSSL's libraries, no shell, no package manager; uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/lib/x86_64-linux-gnu/libssl.so.3 /usr/lib/x86_64-linux-gnu/libcrypto.so.3 /usr/lib/x86_64-linux-gnu/
COPY --from=build /meridian /usr/local/bin/meridian
COPY --from=build /src/workflows /usr/share/meridian/workflows
USER 65532:65532
EXPOSE 8080 8443
ENTRYPOINT ["meridian"]
CMD ["serve", "--service", "resolution"]

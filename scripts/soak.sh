#!/usr/bin/env bash
# The long tier of the load test: 300 requests a second for ten minutes (override with
# MERIDIAN_LOAD_RPS and MERIDIAN_LOAD_SECONDS), against PostgreSQL and RabbitMQ on this machine;
# the figures go to target/soak/load.json and are summarised at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
export MERIDIAN_LOAD_RPS="${MERIDIAN_LOAD_RPS:-300}"
export MERIDIAN_LOAD_SECONDS="${MERIDIAN_LOAD_SECONDS:-600}"
export MERIDIAN_REPORTS="${CARGO_TARGET_DIR:-$PWD/target}/soak"
rm -rf "$MERIDIAN_REPORTS" && mkdir -p "$MERIDIAN_REPORTS"
# Measured on the release build, as it is deployed (a debug build is several times slower).
cargo nextest run -p meridian --test load --profile soak --cargo-profile release
scripts/summary.py "$MERIDIAN_REPORTS"

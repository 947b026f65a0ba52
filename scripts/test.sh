#!/usr/bin/env bash
# The whole suite: domain, API (on PostgreSQL and SQLite), bus (real RabbitMQ), end to end.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest not found; installing it from crates.io"
  cargo install cargo-nextest --locked
fi
# Every shipped workflow definition must validate (positions of any problem on stderr).
cargo run --quiet -p meridian -- workflows validate workflows
cargo nextest run --workspace --profile ci "$@"

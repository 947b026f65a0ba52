#!/usr/bin/env bash
# The whole suite: domain, API (on PostgreSQL and SQLite), bus (real RabbitMQ), end to end.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest not found; installing it from crates.io"
  cargo install cargo-nextest --locked
fi
cargo nextest run --workspace --profile ci "$@"

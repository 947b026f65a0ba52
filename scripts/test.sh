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
# The Helm chart, offline; the binary checks the configuration the chart renders.
MERIDIAN_BIN="${CARGO_TARGET_DIR:-target}/debug/meridian" scripts/chart-test.sh
# The suites write their reports here; the summary lines are taken from them.
export MERIDIAN_REPORTS="${CARGO_TARGET_DIR:-$PWD/target}/reports"
rm -rf "$MERIDIAN_REPORTS"
mkdir -p "$MERIDIAN_REPORTS"
cargo nextest run --workspace --profile ci "$@"
if [ "$#" -eq 0 ]; then
  # Bad inputs tried: schemathesis (from PyPI, in a virtualenv beside the build) over the OpenAPI
  # document of every service.
  venv="${CARGO_TARGET_DIR:-$PWD/target}/venv"
  # A virtualenv that no longer runs (moved, or its Python gone) is made again.
  if ! "$venv/bin/st" --version >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==4.32.5"
  fi
  scripts/bad-inputs.py "${CARGO_TARGET_DIR:-target}/debug/meridian" "$venv/bin/st" "$MERIDIAN_REPORTS" \
    || echo "bad inputs tried: failures (see $MERIDIAN_REPORTS/bad-inputs.json)" >&2
  # The web console in a real headless browser (Debian's chromium).
  scripts/console-test.sh "${CARGO_TARGET_DIR:-target}/debug/meridian" "$MERIDIAN_REPORTS" \
    || echo "console: failures (see $MERIDIAN_REPORTS/console.json)" >&2
fi
if [ "$#" -eq 0 ]; then
  scripts/summary.py "$MERIDIAN_REPORTS" --require
else
  scripts/summary.py "$MERIDIAN_REPORTS"
fi

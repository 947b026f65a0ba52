#!/usr/bin/env bash
# The web console in Debian's chromium, driven by playwright-core (npm; no browser download):
# installs chromium from Debian's packages when it is missing, then runs tests/console against
# `meridian dev`. Usage: console-test.sh MERIDIAN_BINARY REPORTS_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
binary="$1"
reports="$2"
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "console tests: installing chromium from Debian's packages"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d tests/console/node_modules/playwright-core ]; then
  (cd tests/console && npm ci --no-audit --no-fund --silent)
fi
node tests/console/console.test.mjs "$binary" "$reports"

#!/usr/bin/env bash
# The Helm chart's offline tests (charts/tests/chart_test.py): the real Helm SDK, Kubernetes
# schemas, checkov and our own rules, for every values overlay in charts/meridian/ci/.
# The tools come from PyPI into a virtual environment cached by the hash of their pinned list.
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=charts/tests/requirements.txt
hash=$(sha256sum "$requirements" | cut -c1-16)
cache="${MERIDIAN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/meridian}"
venv="$cache/chart-venv-$hash"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  echo "chart tests: installing their tools into $venv (once)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  touch "$venv/.complete"
fi
MERIDIAN_BIN="${MERIDIAN_BIN:-}" "$venv/bin/python" charts/tests/chart_test.py

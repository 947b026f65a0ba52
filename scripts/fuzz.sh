#!/usr/bin/env bash
# The fuzz targets' long tier: each under libFuzzer (cargo fuzz) for FUZZ_SECONDS (default 60),
# with the shipped workflows as the definition target's seeds. Crashes stop the run; the
# figures go to target/fuzz/. The stable toolchain is told to accept the sanitizer flags
# (RUSTC_BOOTSTRAP), since no nightly can be fetched here.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
out="$PWD/target/fuzz"
mkdir -p "$out"
for target in workflow_definition bus_message link_token ledger; do
  corpus="$out/corpus/$target"
  mkdir -p "$corpus"
  rm -f "$out/$target-"crash-* "$out/$target-"timeout-* "$out/$target-"oom-*
  if [ "$target" = workflow_definition ]; then cp workflows/*.yaml "$corpus/"; fi
  echo "fuzzing $target for ${seconds}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz "$target" "$corpus" -- \
    -max_total_time="$seconds" -artifact_prefix="$out/$target-" 2>&1 | tee "$out/$target.log" | grep -E '^(#[0-9]+.*DONE|==[0-9]+==|SUMMARY)' || true
  if compgen -G "$out/$target-crash-*" >/dev/null || compgen -G "$out/$target-timeout-*" >/dev/null \
    || compgen -G "$out/$target-oom-*" >/dev/null; then
    echo "fuzz: $target crashed; inputs in $out" >&2
    exit 1
  fi
done
echo "fuzz: 4 targets, ${seconds}s each, no crash"

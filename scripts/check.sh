#!/usr/bin/env bash
# The house rules a machine can check: formatting, clippy with warnings as errors (the
# workspace lints in Cargo.toml), and no source file over 600 lines. test.sh runs it before the
# tests, so CI enforces it. Extra arguments go to clippy.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cryoforge-target}"

echo "== rustfmt"
cargo fmt --all --check

echo "== file length (at most 600 lines)"
long=$(git ls-files '*.rs' | xargs wc -l | awk '$2 != "total" && $1 > 600 { print "  " $2 " (" $1 " lines)" }')
if [ -n "$long" ]; then
  echo "files over 600 lines:" >&2
  echo "$long" >&2
  exit 1
fi

echo "== clippy"
cargo clippy --workspace --all-targets --locked "$@" -- -D warnings

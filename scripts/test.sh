#!/usr/bin/env bash
# Runs cryoforge's whole test suite, installing what it needs first. Extra arguments go to cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# shellcheck source=scripts/peers.sh
source scripts/peers.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cryoforge-target}"
# Without a peer tool the peer tests fail rather than skip.
export CRYOFORGE_REQUIRE_PEERS=1
cargo test --workspace --locked "$@"

#!/usr/bin/env bash
# Sourced by the scripts that run the command line (demo, targets, benchmarks): installs what is
# missing, builds the cryoforge binary into the shared target folder and sets $bin to it.
scripts/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cryoforge-target}"
flock /tmp/cryoforge-cargo.lock cargo build --workspace --locked --bins
bin="$CARGO_TARGET_DIR/debug/cryoforge"

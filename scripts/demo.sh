#!/usr/bin/env bash
# Runs cryoforge's main job on the bundled example data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cryoforge-target}"
cargo run -p cryoforge --locked -- info \
  assets/maps/emd_5170.map \
  assets/models/1ake.pdb \
  assets/models/adk_dims_trajectory.pdb.gz \
  assets/fixtures/particles_relion31.star \
  assets/fixtures/particles.cs \
  assets/fixtures/particles.mrcs

#!/usr/bin/env bash
# Guided fitting into a map that holds more than the model: AdK closed (1AKE) into a 6 Å gemmi map
# of the open state (4AKE) with a touching second copy beside it, SNR 1, guidance seeing the
# model's zone or the whole box; and the same map without the neighbour. Prints one line per run:
# Cα RMSD to the open state (after superposition), correlation, time. See
# scripts/guided_neighbour.py for how the map is made.
#   scripts/guided_neighbour.sh [--zones model,whole-map] [--gap 6] [-- extra fit arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh
# shellcheck source=scripts/peers.sh
source scripts/peers.sh
"$CRYOFORGE_PYTHON" scripts/guided_neighbour.py --bin "$bin" "$@"

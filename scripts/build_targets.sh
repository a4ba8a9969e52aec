#!/usr/bin/env bash
# Model building on gemmi-made maps of protein families the network never trained on: coverage,
# sequence recall, TM-score per resolution. See scripts/build_targets.py. The data set comes from
# the public corpus (scripts/corpus.sh) through scripts/build_dataset.py, once.
#   scripts/build_targets.sh [--resolutions 3,4,6] [--likelihood network|density] [--tag NAME] [-- build arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh
# shellcheck source=scripts/peers.sh
source scripts/peers.sh
dataset="${CRYOFORGE_BUILD_DATASET:-$HOME/.cache/cryoforge-build}"
if [ ! -f "$dataset/manifest.json" ]; then
  "$CRYOFORGE_PYTHON" scripts/build_dataset.py --corpus "$(scripts/corpus.sh)" --out "$dataset" --min-identity 0.4
fi
"$CRYOFORGE_PYTHON" scripts/build_targets.py --bin "$bin" --dataset "$dataset" "$@"

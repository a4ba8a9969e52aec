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
# shellcheck source=scripts/chain-set.sh
source scripts/chain-set.sh
"$CRYOFORGE_PYTHON" scripts/build_targets.py --bin "$bin" --dataset "$dataset" "$@"

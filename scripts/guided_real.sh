#!/usr/bin/env bash
# The guided fit on a real map: EMD-3488 (haemoglobin, 3.2 Å) from 4HHB (T state) towards its
# deposited model 5NI1; files downloaded from PyPI once. See scripts/guided_real.py.
#   scripts/guided_real.sh [--tag NAME] [-- extra fit arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh
# shellcheck source=scripts/peers.sh
source scripts/peers.sh
"$CRYOFORGE_PYTHON" scripts/guided_real.py --bin "$bin" "$@"

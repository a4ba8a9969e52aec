#!/usr/bin/env bash
# Model building on a real map: EMD-3488 (haemoglobin, 3.2 Å) with 5NI1's sequences, scored
# against 5NI1; files downloaded from PyPI once. See scripts/build_real.py.
#   scripts/build_real.sh [--tag NAME] [-- extra build arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh
# shellcheck source=scripts/peers.sh
source scripts/peers.sh
"$CRYOFORGE_PYTHON" scripts/build_real.py --bin "$bin" "$@"

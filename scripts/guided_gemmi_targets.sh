#!/usr/bin/env bash
# The guided-fit targets on maps cryoforge did not make: adenylate kinase both ways at 5 and 8 Å
# in gemmi-made maps with noise (SNR 1), alone and with a touching second copy; Cα RMSD to the
# target, correlation and validation of start and result. See scripts/guided_gemmi_targets.py.
#   scripts/guided_gemmi_targets.sh [--resolutions 5,8] [--tag NAME] [-- extra fit arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh
# shellcheck source=scripts/peers.sh
source scripts/peers.sh
"$CRYOFORGE_PYTHON" scripts/guided_gemmi_targets.py --bin "$bin" "$@"

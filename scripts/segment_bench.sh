#!/usr/bin/env bash
# Map segmentation: cryoforge's watershed against scikit-image's (skimage.segmentation.watershed
# with scipy's smoothing and maxima) on the same maps in the same run; prints the time ratio and
# how well the partitions agree. Maps: EMD-5170 (100³, 2.38 Å), the same resampled to 1.19 Å
# (199³, made by `cryoforge map resample`), and the gemmi map of two touching AdK copies.
#   scripts/segment_bench.sh [--repeats 3] [--fraction 0.01]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh
# shellcheck source=scripts/peers.sh
source scripts/peers.sh
if ! "$CRYOFORGE_PYTHON" -c 'import skimage, scipy' >/dev/null 2>&1; then
  echo "installing scikit-image (the watershed peer) into the venv"
  "$(dirname "$CRYOFORGE_PYTHON")/pip" install -q --disable-pip-version-check scikit-image
fi
out="out/segment_bench"
mkdir -p "$out"
"$bin" map resample assets/maps/emd_5170.map -o "$out/emd_5170_fine.mrc" --apix 1.19 2>/dev/null
"$CRYOFORGE_PYTHON" scripts/segment/two_copies.py --out "$out/two_copies" >/dev/null
echo "== watershed: cryoforge on $(nproc) cores (smoothing and maxima in parallel) vs scikit-image (one core)"
"$CRYOFORGE_PYTHON" scripts/segment/bench.py --bin "$bin" assets/maps/emd_5170.map "$out/emd_5170_fine.mrc" \
  "$out/two_copies/pair.mrc" "$@"

#!/usr/bin/env bash
# Benchmarks that print cryoforge's speed as a ratio against a peer measured in the same run.
#   scripts/bench.sh            all benchmarks
#   scripts/bench.sh density    density simulation vs gemmi (AdK and the 6ZU5 ribosome)
#   scripts/bench.sh guided     guided fit per sample: AdK and the 30k-atom 7PBL, time and peak memory
#   scripts/bench.sh particles  particle refinement: particles per second for one epoch at 64 and 128 px
#   scripts/bench.sh hetero     heterogeneity: training particles/s per epoch at 64 px; UMAP of 10⁵ and 10⁶ points vs umap-learn; AdK-path training vs cryoDRGN;
#                               the latent scatter's GPU point splats vs the CPU rasteriser
#   scripts/bench.sh flex       per-residue flexibility of 428 residues from a 4 Å gemmi map vs ProDy's GNM/ANM
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh
# shellcheck source=scripts/peers.sh
source scripts/peers.sh
export CRYOFORGE_BIN="$bin"
what="${1:-all}"
if [ "$what" = all ] || [ "$what" = density ]; then
  echo "== density simulation: cryoforge vs gemmi (gemmi single-threaded, cryoforge on $(nproc) cores)"
  "$CRYOFORGE_PYTHON" benches/density_vs_gemmi.py
fi
if [ "$what" = all ] || [ "$what" = guided ]; then
  echo "== guided fit: seconds per sample and peak memory on $(nproc) cores, against the 60 s per-sample budget"
  "$CRYOFORGE_PYTHON" benches/guided_fit.py
fi
if [ "$what" = all ] || [ "$what" = particles ]; then
  echo "== particle refinement: particles per second for one epoch on $(nproc) cores, against the forward-only projection"
  "$CRYOFORGE_PYTHON" benches/particle_fit.py
fi
if [ "$what" = all ] || [ "$what" = hetero ]; then
  if ! "$CRYOFORGE_PYTHON" -c 'import umap' >/dev/null 2>&1; then
    echo "installing umap-learn (the UMAP peer) into the benchmark venv"
    "$(dirname "$CRYOFORGE_PYTHON")/pip" install -q --disable-pip-version-check umap-learn
  fi
  # cryoDRGN, the peer a user would otherwise train with, in a venv of its own (its PyTorch is
  # large: ~7 GB with the CUDA libraries PyPI's wheel pulls in; it runs on the CPU here).
  export CRYODRGN="${CRYODRGN:-$HOME/.cache/cryoforge-drgn/bin/cryodrgn}"
  if [ ! -x "$CRYODRGN" ]; then
    echo "installing cryoDRGN (the heterogeneity peer) into $(dirname "$(dirname "$CRYODRGN")")"
    python3 -m venv "$(dirname "$(dirname "$CRYODRGN")")"
    "$(dirname "$CRYODRGN")/pip" install -q --disable-pip-version-check cryodrgn
  fi
  echo "== heterogeneity: training throughput on $(nproc) cores, UMAP time against umap-learn, training against cryoDRGN"
  "$CRYOFORGE_PYTHON" benches/hetero.py all "${@:2}"
  echo "== latent scatter: GPU point splats (the adapter wgpu finds) against the CPU rasteriser, same points"
  cargo run --quiet --locked -p cryoforge --example scatter_timing
fi
if [ "$what" = all ] || [ "$what" = flex ]; then
  if ! "$CRYOFORGE_PYTHON" -c 'import prody' >/dev/null 2>&1; then
    echo "installing ProDy (the flexibility peer) into the benchmark venv"
    "$(dirname "$CRYOFORGE_PYTHON")/pip" install -q --disable-pip-version-check prody
  fi
  echo "== flexibility: a 428-residue model from a 4 Å map, against ProDy's elastic networks (map-free)"
  "$CRYOFORGE_PYTHON" benches/flex.py
fi

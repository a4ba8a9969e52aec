#!/usr/bin/env bash
# Pretrains the heterogeneity encoder's prior (assets/hetero/prior.bpk) on simulated particles of
# the family-split chain set of scripts/build_dataset.py, holding out every family of the
# benchmark proteins (AdK, Cro and the three 6ZU5 ribosomal chains of scripts/hetero_targets.sh),
# and checks its features alone on the benchmark particle sets when they exist.
#   scripts/hetero_prior.sh -o OUT.bpk [extra `hetero pretrain` options…]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh
# shellcheck source=scripts/peers.sh
source scripts/peers.sh
# shellcheck source=scripts/chain-set.sh
source scripts/chain-set.sh
models=assets/models
held_out=$("$CRYOFORGE_PYTHON" scripts/hetero_prior_families.py --dataset "$dataset" "$models/1ake.pdb" \
  "$models/gemmi_1orc.pdb" "$models/6zu5.cif.gz:SGG" "$models/6zu5.cif.gz:SA0" "$models/6zu5.cif.gz:LV0")
checks=()
for set in out/hetero_targets/mixture.star; do
  [ -f "$set" ] && checks+=(--check "$set")
done
"$bin" hetero pretrain --structures "$dataset" --exclude-families "$held_out" "${checks[@]}" "$@"

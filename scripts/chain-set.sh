#!/usr/bin/env bash
# Sourced by the scripts that train on or test against the family-split chain set (model building,
# the heterogeneity prior): sets $dataset to it ($CRYOFORGE_BUILD_DATASET, default
# ~/.cache/cryoforge-build), making it once from the public corpus (scripts/corpus.sh) with
# scripts/build_dataset.py. Needs $CRYOFORGE_PYTHON (scripts/peers.sh).
dataset="${CRYOFORGE_BUILD_DATASET:-$HOME/.cache/cryoforge-build}"
if [ ! -f "$dataset/manifest.json" ]; then
  "$CRYOFORGE_PYTHON" scripts/build_dataset.py --corpus "$(scripts/corpus.sh)" --out "$dataset" --min-identity 0.4
fi

#!/usr/bin/env bash
# The guided-sampling targets on adenylate kinase: closed (1AKE) into maps of the open state
# (4AKE) and back, at 5 and 8 Å, with and without noise (SNR 1), and the unguided control.
# Prints one line per run: Cα RMSD to the target state (start 6.91 Å), correlation, time.
#   scripts/guided_targets.sh [--samples K]     (extra arguments go to `cryoforge fit guided`)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh
out=out/guided_targets
mkdir -p "$out"
models=assets/models
for state in open closed; do
  for res in 5 8; do
    "$bin" simulate map --model "$models/adk_$state.pdb" --resolution "$res" -o "$out/${state}_${res}A.mrc" 2>/dev/null
    "$bin" simulate map --model "$models/adk_$state.pdb" --resolution "$res" --snr 1 --seed 7 -o "$out/${state}_${res}A_snr1.mrc" 2>/dev/null
  done
done
run() { # name start target map resolution [extra…]
  local name=$1 start=$2 target=$3 map=$4 res=$5
  shift 5
  "$bin" fit guided --map "$out/$map.mrc" --model "$models/adk_$start.pdb" --resolution "$res" \
    --reference "$models/adk_$target.pdb" -o "$out/$name.cif" --json "$@" |
    python3 scripts/guided_summary.py "$name"
}
run "closed→open 5 Å" closed open open_5A 5 "$@"
run "closed→open 8 Å" closed open open_8A 8 "$@"
run "open→closed 5 Å" open closed closed_5A 5 "$@"
run "open→closed 8 Å" open closed closed_8A 8 "$@"
run "closed→open 5 Å SNR 1" closed open open_5A_snr1 5 --schedule experimental "$@"
run "closed→open 8 Å SNR 1" closed open open_8A_snr1 8 --schedule experimental "$@"
run "open→closed 5 Å SNR 1" open closed closed_5A_snr1 5 --schedule experimental "$@"
run "open→closed 8 Å SNR 1" open closed closed_8A_snr1 8 --schedule experimental "$@"
run "control: no guidance 5 Å" closed open open_5A 5 --no-guidance "$@"

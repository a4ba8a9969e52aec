#!/usr/bin/env bash
# The particle-refinement targets on adenylate kinase: particles simulated from the open state
# (4AKE; 64 px, 1.5 Å/px, SNR 0.1, CTF), refinement started from the closed state (1AKE) as it
# sits in the same frame (Cα RMSD 6.91 Å). For each data set it prints the refined model's Cα
# RMSD to 4AKE and, as the baseline, a guided fit into the map back-projected from the same
# particles (`cryoforge reconstruct`, then `fit guided --schedule experimental`, with the clash
# weight the recorded baseline numbers were measured with).
#   scripts/particle_targets.sh [--epochs E]     (extra arguments go to `cryoforge fit particles`)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh
out=out/particle_targets
mkdir -p "$out"
models=assets/models
summary() { # name kind  (reads the --json report on stdin)
  python3 -c '
import json, sys
r = json.load(sys.stdin)
name, kind = sys.argv[1], sys.argv[2]
if kind == "particles":
    ref, start = r["refined"]["reference"], r["start"]["reference"]
    last = r["epochs"][-1]
    print(f"{name:<34} particles: Cα RMSD {ref['"'"'ca_rmsd_angstrom'"'"']:6.3f} Å (start {start['"'"'ca_rmsd_angstrom'"'"']:.2f}), TM {ref['"'"'tm_score'"'"']:.3f}, held-out FRC {last['"'"'validation_frc'"'"']:.4f}, {r['"'"'seconds'"'"']:.0f} s, {r['"'"'particles_per_second'"'"']:.0f} particles/s")
else:
    best = r["samples"][0]
    ref = best["reference"]
    print(f"{name:<34} baseline (guided fit into the back-projected map): Cα RMSD {ref['"'"'ca_rmsd_angstrom'"'"']:6.3f} Å, TM {ref['"'"'tm_score'"'"']:.3f}, cc {best['"'"'correlation'"'"']:.4f}, {r['"'"'seconds'"'"']:.0f} s")
' "$@"
}
run() { # label file-name count [simulate options…] -- [fit options…]
  local label=$1 name=$2 count=$3
  shift 3
  local sim=()
  while [[ $# -gt 0 && $1 != -- ]]; do sim+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift
  "$bin" simulate particles --model "$models/adk_open.pdb" --count "$count" --box 64 --apix 1.5 --snr 0.1 --seed 1 "${sim[@]}" -o "$out/$name.star" 2>/dev/null
  "$bin" fit particles --particles "$out/$name.star" --model "$models/adk_closed.pdb" --resolution 4 \
    --reference "$models/adk_open.pdb" -o "$out/${name}_refined.cif" --json "$@" 2>/dev/null | summary "$label" particles
  "$bin" reconstruct --particles "$out/$name.star" -o "$out/${name}_backprojected.mrc" 2>/dev/null
  "$bin" fit guided --map "$out/${name}_backprojected.mrc" --model "$models/adk_closed.pdb" --resolution 8 \
    --schedule experimental --steps 400 --samples 3 --clash-weight 0.05 --reference "$models/adk_open.pdb" \
    -o "$out/${name}_guided.cif" --json 2>/dev/null | summary "$label" guided
}
run "2000 particles, full coverage" full2000 2000 -- "$@"
run "500 particles, full coverage" full500 500 -- "$@"
run "2000 particles, ±60° missing cone" cone2000 2000 --missing-cone 60 -- "$@"
run "500 particles, ±60° missing cone" cone500 500 --missing-cone 60 -- "$@"

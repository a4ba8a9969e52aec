#!/usr/bin/env bash
# cryoforge's main job on the bundled example: adenylate kinase. A 5 Å map is simulated from the
# open state (4AKE); the closed state (1AKE) is placed in it by a rigid fit and then pulled into
# the open state by map-guided sampling. With a display the viewer opens and runs the same guided
# fit live (scrub the trajectory in the inspector afterwards); without one, the command-line fit
# writes the best model, its trajectory and report, and the scene is rendered to out/demo/scene.png.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh
out=out/demo
mkdir -p "$out"

"$bin" simulate map --model assets/models/adk_open.pdb --resolution 5 -o "$out/adk_open_5A.mrc"
"$bin" fit rigid --map "$out/adk_open_5A.mrc" --model assets/models/adk_closed.pdb --resolution 5 -o "$out/adk_closed_placed.cif"
"$bin" fit guided --map "$out/adk_open_5A.mrc" --model "$out/adk_closed_placed.cif" --resolution 5 --steps 400 \
  --reference assets/models/adk_open.pdb -o "$out/adk_guided.cif"
"$bin" compare "$out/adk_guided.cif" assets/models/adk_open.pdb

if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "opening the viewer, running the guided fit live (close the window to finish)"
  "$bin" --guided-fit 5 "$out/adk_open_5A.mrc" "$out/adk_closed_placed.cif"
else
  echo "no display: rendering the scene headless"
  XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}" "$bin" render --out "$out/scene.png" "$out/adk_open_5A.mrc" "$out/adk_guided.cif"
  echo "wrote $out/adk_guided.cif, $out/adk_guided_trajectory.pdb, $out/adk_guided_report.json and $out/scene.png"
fi

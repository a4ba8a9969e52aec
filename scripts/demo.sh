#!/usr/bin/env bash
# cryoforge's main job on the bundled example: adenylate kinase. A 5 Å map is simulated from the
# open state (4AKE), the closed state (1AKE) is fitted into it as a rigid body, and both open in
# the viewer. Without a display the same scene is rendered to out/demo/scene.png instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cryoforge-target}"
cargo build -p cryoforge --locked
bin="$CARGO_TARGET_DIR/debug/cryoforge"
out=out/demo
mkdir -p "$out"

"$bin" simulate map --model assets/models/adk_open.pdb --resolution 5 -o "$out/adk_open_5A.mrc"
"$bin" fit rigid --map "$out/adk_open_5A.mrc" --model assets/models/adk_closed.pdb --resolution 5 -o "$out/adk_closed_fitted.cif"
"$bin" score --map "$out/adk_open_5A.mrc" --model "$out/adk_closed_fitted.cif" --resolution 5
"$bin" compare "$out/adk_closed_fitted.cif" assets/models/adk_open.pdb

if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "opening the viewer (close the window to finish)"
  "$bin" "$out/adk_open_5A.mrc" "$out/adk_closed_fitted.cif"
else
  echo "no display: rendering the scene headless"
  XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}" "$bin" render --out "$out/scene.png" "$out/adk_open_5A.mrc" "$out/adk_closed_fitted.cif"
fi

#!/usr/bin/env bash
# One model per state from heterogeneous particles (the guided fit's per-state case): 3,000
# particles of the AdK closed→open DIMS path (64 px, 1.5 Å/px, SNR 0.1, CTF, known poses; the
# heterogeneity benchmark's continuous set), `hetero train` with the continuous recipe, 5 GMM
# clusters, then `fit guided --run` of one state's structure into every cluster volume.
# The start is placed in the volumes' frame by cryoforge's own global rigid fit into one cluster
# volume. Reported: for the closed-most and open-most clusters (by the mean true frame of their
# particles), the Cα RMSD of their fitted model to 1AKE and 4AKE, and to the path frame nearest
# the cluster's mean; both directions (start 1AKE, start 4AKE).
#   scripts/guided_states.sh [extra `fit guided` options…]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh
# shellcheck source=scripts/peers.sh
source scripts/peers.sh
out=out/guided_states
mkdir -p "$out"
models=assets/models
resolution=${CRYOFORGE_STATES_RESOLUTION:-6}

if [ ! -f "$out/run/analysis/analysis.json" ]; then
  "$bin" simulate particles --model "$models/adk_dims_trajectory.pdb.gz" --count 3000 --box 64 --apix 1.5 \
    --snr 0.1 --seed 1 -o "$out/dims.star" 2>/dev/null
  "$bin" hetero train --particles "$out/dims.star" --zdim 8 --epochs 10 --lr 5e-4 --downsample 32 -o "$out/run"
  "$bin" hetero analyze "$out/run" --clusters 5 --traversal 5
fi

for start in closed open; do
  "$bin" fit rigid --map "$out/run/analysis/cluster_0.mrc" --model "$models/adk_$start.pdb" \
    --resolution "$resolution" --search 60 -o "$out/placed_$start.pdb" >/dev/null
  "$bin" fit guided --run "$out/run" --model "$out/placed_$start.pdb" --resolution "$resolution" \
    --reference "$models/adk_closed.pdb" --reference "$models/adk_open.pdb" \
    -o "$out/states_from_$start.pdb" --json "$@" > "$out/states_from_$start.json"
done

"$CRYOFORGE_PYTHON" - "$out" "$models/adk_dims_trajectory.pdb.gz" "$models" <<'EOF'
import gzip, json, sys
import numpy as np
out, path, models = sys.argv[1:4]

def star_column(star, name):
    cols, rows, in_particles = [], [], False
    for line in open(star):
        s = line.strip()
        if s.startswith("data_"):
            in_particles = s == "data_particles"
            cols = []
        elif in_particles and s.startswith("_"):
            cols.append(s.split()[0][1:])
        elif in_particles and cols and s and not s.startswith(("loop_", "#")):
            rows.append(s.split()[cols.index(name)])
    return [float(v) for v in rows]

def frames_ca(path):
    frames, cur = [], {}
    for line in gzip.open(path, "rt"):
        if line.startswith("ENDMDL"):
            frames.append(cur)
            cur = {}
        elif line.startswith("ATOM") and line[12:16].strip() == "CA":
            cur[int(line[22:26])] = [float(line[30 + 8 * k:38 + 8 * k]) for k in range(3)]
    return frames

def ca(pdb, model=0):
    got, m = {}, 0
    for line in open(pdb):
        if line.startswith("ENDMDL"):
            m += 1
        elif m == model and line.startswith("ATOM") and line[12:16].strip() == "CA":
            got[int(line[22:26])] = [float(line[30 + 8 * k:38 + 8 * k]) for k in range(3)]
    return got

def rmsd(a, b):
    """Cα RMSD over the common residues after a least-squares superposition (Kabsch)."""
    keys = sorted(set(a) & set(b))
    p = np.array([a[k] for k in keys]); q = np.array([b[k] for k in keys])
    p -= p.mean(0); q -= q.mean(0)
    u, _, vt = np.linalg.svd(p.T @ q)
    d = np.sign(np.linalg.det(u @ vt))
    r = u @ np.diag([1, 1, d]) @ vt
    return float(np.sqrt(((p @ r - q) ** 2).sum(1).mean()))

truth = star_column(f"{out}/dims.star", "cryoforgeModelIndex")
labels = [int(l) for l in open(f"{out}/run/analysis/labels.txt") if l.strip() and not l.startswith("#")]
mean_frame = {}
for c in set(labels):
    members = [truth[i] for i, l in enumerate(labels) if l == c]
    mean_frame[f"cluster {c}"] = sum(members) / len(members)
path_frames = frames_ca(path)
print(f"clusters by mean true frame (0 = closed, {len(path_frames) - 1} = open): "
      + ", ".join(f"{k} {v:.1f}" for k, v in sorted(mean_frame.items(), key=lambda kv: kv[1])))
ends = sorted(mean_frame, key=mean_frame.get)
for start in ["closed", "open"]:
    report = json.load(open(f"{out}/states_from_{start}.json"))
    print(f"start {'1AKE' if start == 'closed' else '4AKE'} ({report['seconds']:.0f} s for {len(report['states'])} states):")
    for which, label in [("closed-most", ends[0]), ("open-most", ends[-1])]:
        state = next(s for s in report["states"] if s["label"] == label)
        r = [x["ca_rmsd_angstrom"] for x in state["references"]]
        r0 = [x["ca_rmsd_angstrom"] for x in state["start"]["references"]]
        nearest = path_frames[round(mean_frame[label])]
        to_path = rmsd(ca(state["model"]), nearest)
        frame_to = [rmsd(nearest, ca(f"{models}/adk_{s}.pdb")) for s in ("closed", "open")]
        print(f"  {which} {label} (mean frame {mean_frame[label]:.1f}): to 1AKE {r[0]:.2f} Å (start {r0[0]:.2f}), "
              f"to 4AKE {r[1]:.2f} Å (start {r0[1]:.2f}), to path frame {round(mean_frame[label])} {to_path:.2f} Å; "
              f"cc {state['correlation']:.3f} (start {state['start']['correlation']:.3f}); "
              f"that path frame is {frame_to[0]:.2f} Å from 1AKE and {frame_to[1]:.2f} Å from 4AKE"
              + ("; start kept" if state["start_is_best"] else ""))
EOF

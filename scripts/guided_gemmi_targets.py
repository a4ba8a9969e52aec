#!/usr/bin/env python3
"""The guided-fit targets on maps cryoforge did not make (issue 18).

Adenylate kinase both ways (closed 1AKE → open 4AKE and back), at 5 and 8 Å, in gemmi-made maps
(DensityCalculatorE, see scripts/guided_neighbour.py) with Gaussian noise at SNR 1, alone and with
a touching second copy of the target state beside it. The start is the other state, Cα-superposed
on copy A. For every run: Cα RMSD to the target after superposition (start 6.91 Å), the map
correlation, and the validation of the start and of the result (`cryoforge validate`):
Ramachandran outliers, heavy-atom clashscore, bond RMSZ.

    scripts/guided_gemmi_targets.sh [--resolutions 5,8] [--directions open,closed]
                                    [--cases alone,neighbour] [-- extra fit arguments]
"""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guided_neighbour as gn  # noqa: E402  (the AdK cases shared with that script)
from gemmi_maps import density, write_map  # noqa: E402


def validate(binary, model):
    done = subprocess.run([binary, "validate", model, "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout)


def brief(report):
    if report is None:
        return "validation —"
    rama = report["ramachandran"]
    return (f"rama out {rama['outliers_percent']:4.1f}% fav {rama['favoured_percent']:5.1f}%"
            f"  clash {report['clashscore']:5.1f}  bondZ {report['bonds']['rmsz']:4.2f}"
            f"  angleZ {report['angles']['rmsz']:4.2f}")


def make_case(out, target, start_state, res, gap, seed):
    """Writes the maps (alone, with a neighbour), the start and the reference; returns their paths."""
    os.makedirs(out, exist_ok=True)
    target_st = gn.heavy_structure(os.path.join(gn.MODELS, f"adk_{target}.pdb"))
    start_st = gn.heavy_structure(os.path.join(gn.MODELS, f"adk_{start_state}.pdb"))
    r, t = gn.kabsch(gn.ca(start_st), gn.ca(target_st))
    gn.set_coordinates(start_st, gn.coordinates(start_st) @ r.T + t)
    paths = {"reference": os.path.join(out, f"{target}_copyA.pdb"), "start": os.path.join(out, f"{start_state}_start.pdb")}
    target_st.write_pdb(paths["reference"])
    start_st.write_pdb(paths["start"])
    b_st = gn.heavy_structure(os.path.join(gn.MODELS, f"adk_{target}.pdb"))
    b_xyz = gn.neighbour_of(target_st, gap)
    gn.set_coordinates(b_st, b_xyz)
    both = np.vstack([gn.coordinates(target_st), b_xyz])
    box_lo = both.min(0) - 3 * res
    box_size = both.max(0) + 3 * res - box_lo
    alone = density([target_st[0]], box_lo, box_size, res)
    pair = density([target_st[0], b_st[0]], box_lo, box_size, res)
    noise = np.random.default_rng(seed).normal(0.0, math.sqrt(alone.var()), alone.shape)
    paths["alone"] = os.path.join(out, "alone.mrc")
    paths["neighbour"] = os.path.join(out, "neighbour.mrc")
    write_map(paths["alone"], alone + noise, box_lo, box_size)
    write_map(paths["neighbour"], pair + noise, box_lo, box_size)
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.environ.get("CRYOFORGE_BIN", os.path.join(gn.TARGET, "debug", "cryoforge")))
    parser.add_argument("--resolutions", default="5,8")
    parser.add_argument("--directions", default="open,closed", help="target states (the start is the other one)")
    parser.add_argument("--cases", default="alone,neighbour")
    parser.add_argument("--gap", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=7, help="noise seed")
    parser.add_argument("--out", default=os.path.join(gn.ROOT, "out", "guided_gemmi_targets"))
    parser.add_argument("--tag", default="default", help="a name for this set of fit arguments (output files)")
    parser.add_argument("extra", nargs="*", help="extra arguments to `cryoforge fit guided` (after --)")
    args = parser.parse_args()
    rows = []
    for target in args.directions.split(","):
        start_state = "closed" if target == "open" else "open"
        for res in (float(r) for r in args.resolutions.split(",")):
            out = os.path.join(args.out, f"{start_state}_to_{target}_{res:g}A")
            paths = make_case(out, target, start_state, res, args.gap, args.seed)
            start_validation = validate(args.bin, paths["start"])
            for case in args.cases.split(","):
                result = os.path.join(out, f"{case}_{args.tag}.cif")
                report = gn.fit(args.bin, paths[case], paths["start"], paths["reference"], res, result, "default",
                                args.extra)
                best = report["samples"][0]
                rmsd = best["reference"]["ca_rmsd_angstrom"]
                start_rmsd = report["start"]["reference"]["ca_rmsd_angstrom"]
                row = {"start": start_state, "target": target, "resolution": res, "case": case, "tag": args.tag,
                       "start_rmsd": start_rmsd, "rmsd": rmsd, "correlation": best["correlation"],
                       "start_correlation": report["start"]["correlation"], "seconds": report["seconds"],
                       "free": report["start"].get("free_score"), "fit_free": best.get("free_score"),
                       "start_is_best": report.get("start_is_best"),
                       "validation": validate(args.bin, result), "start_validation": start_validation}
                free = ""
                if row["free"] is not None:
                    free = f"  free {row['free']:.3f} → {row['fit_free']:.3f}{' (start kept)' if row['start_is_best'] else ''}"
                rows.append(row)
                print(f"{start_state}→{target} {res:g} Å {case:<9} Cα RMSD {start_rmsd:.2f} → {rmsd:5.2f} Å"
                      f"  cc {row['start_correlation']:.3f} → {row['correlation']:.3f}{free}  {report['seconds']:5.1f} s"
                      f"  start: {brief(start_validation)}  fit: {brief(row['validation'])}", flush=True)
    with open(os.path.join(args.out, f"summary_{args.tag}.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

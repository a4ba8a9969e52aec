#!/usr/bin/env python3
"""Model building on maps cryoforge did not make, of protein families it never trained on.

For every `test` chain of the data set (scripts/build_dataset.py: split by family), gemmi's
DensityCalculatorE makes the map at each resolution (atoms blurred by their own B-factors plus
the resolution's Gaussian, as the guided-fit targets do), on a grid of resolution/3 with 3 ×
resolution of padding; Gaussian noise low-passed at the resolution is added with the same
variance as the map over the box (SNR 1 after filtering). Then `cryoforge build` runs on the map
and the chain's sequence, and `cryoforge compare` scores the model against the chain: coverage,
sequence recall, TM-score, RMSD, chain breaks, false positives (docs/science.md §6).

    scripts/build_targets.sh [--resolutions 3,4,6] [--likelihood network|density] [--tag T] [-- build args]
Prints one line per case and the means per resolution; writes out/build_targets/summary_<tag>.json.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import gemmi
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gemmi_maps import density, low_pass, write_map  # noqa: E402  (the scripts' one map maker)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/cryoforge-target"))


def make_case(out, chain, dataset, resolution, seed):
    st = gemmi.read_structure(os.path.join(dataset, chain["file"]))
    st.remove_hydrogens()
    xyz = np.array([a.pos.tolist() for r in st[0][0] for a in r])
    box_lo = xyz.min(0) - 3 * resolution
    box_size = xyz.max(0) + 3 * resolution - box_lo
    signal = density([st[0]], box_lo, box_size, resolution, keep_b=True)
    spacing = [box_size[k] / signal.shape[k] for k in range(3)]
    noise = low_pass(np.random.default_rng(seed).normal(size=signal.shape), spacing, resolution)
    noise *= math.sqrt(signal.var() / noise.var())
    paths = {"map": os.path.join(out, f"{chain['name']}_{resolution:g}A.mrc"),
             "fasta": os.path.join(out, f"{chain['name']}.fasta"),
             "reference": os.path.join(dataset, chain["file"])}
    write_map(paths["map"], signal + noise, box_lo, box_size)
    with open(paths["fasta"], "w") as f:
        f.write(f">{chain['name']}\n{chain['sequence']}\n")
    return paths


def run(args, allow_failure=False):
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        # Only "nothing could be built" is a result; any other failure stops the run.
        if allow_failure and "holds no density read as protein" in done.stderr:
            return None, done.stderr.strip()
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr}")
    return done.stdout if not allow_failure else (done.stdout, "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.environ.get("CRYOFORGE_BIN", os.path.join(TARGET, "debug", "cryoforge")))
    parser.add_argument("--dataset", default=os.path.expanduser("~/.cache/cryoforge-build"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--resolutions", default="3,4,6")
    parser.add_argument("--likelihood", default="network")
    parser.add_argument("--limit", type=int, default=0, help="at most this many chains (0: all)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=os.path.join(ROOT, "out", "build_targets"))
    parser.add_argument("--tag", default="default")
    parser.add_argument("extra", nargs="*", help="extra arguments to `cryoforge build` (after --)")
    args = parser.parse_args()
    manifest = json.load(open(os.path.join(args.dataset, "manifest.json")))
    chains = [c for c in manifest["chains"] if c["split"] == args.split]
    if args.limit:
        chains = chains[: args.limit]
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for resolution in [float(r) for r in args.resolutions.split(",")]:
        for k, chain in enumerate(chains):
            paths = make_case(args.out, chain, args.dataset, resolution, args.seed + k)
            model = os.path.join(args.out, f"{chain['name']}_{resolution:g}A_{args.tag}.cif")
            started = time.time()
            out, error = run([args.bin, "build", "--map", paths["map"], "--sequence", paths["fasta"],
                              "--resolution", str(resolution), "--likelihood", args.likelihood,
                              "-o", model, "--json", *args.extra], allow_failure=True)
            seconds = time.time() - started
            if out is None:
                # A build that traces nothing counts as nothing built (scores 0), not as a hole.
                print(f"{chain['name']:>22}: nothing built ({error.splitlines()[-1]})", flush=True)
                rows.append({"chain": chain["name"], "family": chain["family"], "residues": chain["residues"],
                             "resolution": resolution, "seconds": seconds, "built": 0, "threaded": 0,
                             "tm_score": 0.0, "coverage": 0.0, "sequence_recall": 0.0, "rmsd_angstrom": float("nan"),
                             "chain_breaks": 0, "false_positives": 0.0, "failed": True})
                continue
            built = json.loads(out)
            scores = json.loads(run([args.bin, "compare", model, paths["reference"], "--json"]))["building"]
            row = {"chain": chain["name"], "family": chain["family"], "residues": chain["residues"],
                   "resolution": resolution, "seconds": seconds, "built": built["built_residues"],
                   "threaded": built["threaded_residues"], **scores}
            rows.append(row)
            print(f"{chain['name']:>22} {chain['residues']:4d} res {resolution:g} Å  TM {row['tm_score']:.3f}  "
                  f"coverage {100 * row['coverage']:5.1f}%  recall {100 * row['sequence_recall']:5.1f}%  "
                  f"RMSD {row['rmsd_angstrom']:.2f}  breaks {row['chain_breaks']:3d}  "
                  f"false {100 * row['false_positives']:5.1f}%  built {row['built']} ({row['threaded']} threaded)  "
                  f"{seconds:5.1f} s", flush=True)
    means = {}
    for resolution in sorted({r["resolution"] for r in rows}):
        sel = [r for r in rows if r["resolution"] == resolution]
        means[resolution] = {k: float(np.nanmean([r[k] for r in sel])) for k in
                             ("tm_score", "coverage", "sequence_recall", "rmsd_angstrom", "chain_breaks",
                              "false_positives", "seconds")}
        m = means[resolution]
        print(f"mean {resolution:g} Å over {len(sel)} chains: TM {m['tm_score']:.3f}  coverage {100 * m['coverage']:.1f}%  "
              f"recall {100 * m['sequence_recall']:.1f}%  RMSD {m['rmsd_angstrom']:.2f}  breaks {m['chain_breaks']:.1f}  "
              f"false {100 * m['false_positives']:.1f}%  {m['seconds']:.1f} s; "
              f"{sum(1 for r in sel if r.get('failed'))} built nothing")
    with open(os.path.join(args.out, f"summary_{args.tag}.json"), "w") as f:
        json.dump({"likelihood": args.likelihood, "rows": rows, "means": means}, f, indent=1)


if __name__ == "__main__":
    main()

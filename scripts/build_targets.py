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
import mrcfile
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/cryoforge-target"))


def density(st, box_lo, box_size, resolution):
    st = st.clone()
    m = st[0]
    m.transform_pos_and_adp(gemmi.Transform(gemmi.Mat33(), gemmi.Vec3(*(-box_lo))))
    for chain in m:
        for res in chain:
            for atom in res:
                atom.occ = 1.0
    st.cell = gemmi.UnitCell(*box_size, 90, 90, 90)
    st.spacegroup_hm = "P 1"
    dc = gemmi.DensityCalculatorE()
    dc.d_min = resolution
    dc.rate = 1.5
    sigma = 0.225 * resolution
    carbon_b = np.mean(list(gemmi.Element("C").c4322.b))
    dc.blur = max(8 * math.pi ** 2 * sigma ** 2 - carbon_b, 0.0)
    dc.set_grid_cell_and_spacegroup(st)
    dc.put_model_density_on_grid(m)
    return np.array(dc.grid, copy=True)  # (x, y, z)


def low_pass(values, spacing, resolution):
    f = np.fft.fftn(values)
    freqs = np.meshgrid(*[np.fft.fftfreq(n, d=spacing[k]) for k, n in enumerate(values.shape)], indexing="ij")
    s = np.sqrt(sum(q * q for q in freqs))
    cutoff = 1.0 / resolution
    width = 0.15 * cutoff
    w = np.where(s <= cutoff, 1.0, np.where(s >= cutoff + width, 0.0, 0.5 * (1 + np.cos(np.pi * (s - cutoff) / width))))
    return np.real(np.fft.ifftn(f * w))


def write_map(path, values_xyz, box_lo, box_size):
    tmp = path + ".part"
    with mrcfile.new(tmp, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(values_xyz.transpose(2, 1, 0)).astype(np.float32))
        n = values_xyz.shape
        mrc.voxel_size = tuple(box_size[k] / n[k] for k in range(3))
        mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = (float(v) for v in box_lo)
        mrc.update_header_stats()
    os.replace(tmp, path)


def make_case(out, chain, dataset, resolution, seed):
    st = gemmi.read_structure(os.path.join(dataset, chain["file"]))
    st.remove_hydrogens()
    xyz = np.array([a.pos.tolist() for r in st[0][0] for a in r])
    box_lo = xyz.min(0) - 3 * resolution
    box_size = xyz.max(0) + 3 * resolution - box_lo
    signal = density(st, box_lo, box_size, resolution)
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


def run(args):
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


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
            built = json.loads(run([args.bin, "build", "--map", paths["map"], "--sequence", paths["fasta"],
                                    "--resolution", str(resolution), "--likelihood", args.likelihood,
                                    "-o", model, "--json", *args.extra]))
            seconds = time.time() - started
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
        means[resolution] = {k: float(np.mean([r[k] for r in sel])) for k in
                             ("tm_score", "coverage", "sequence_recall", "rmsd_angstrom", "chain_breaks",
                              "false_positives", "seconds")}
        m = means[resolution]
        print(f"mean {resolution:g} Å over {len(sel)} chains: TM {m['tm_score']:.3f}  coverage {100 * m['coverage']:.1f}%  "
              f"recall {100 * m['sequence_recall']:.1f}%  RMSD {m['rmsd_angstrom']:.2f}  breaks {m['chain_breaks']:.1f}  "
              f"false {100 * m['false_positives']:.1f}%  {m['seconds']:.1f} s")
    with open(os.path.join(args.out, f"summary_{args.tag}.json"), "w") as f:
        json.dump({"likelihood": args.likelihood, "rows": rows, "means": means}, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A map of two touching copies of adenylate kinase made by gemmi, not by cryoforge, for the
segmentation test (tests/tests/segment.rs) and benchmark (scripts/segment_bench.sh).

It reuses scripts/guided_neighbour.py: copy A is the open state (assets/models/adk_open.pdb,
heavy atoms) where its file puts it; copy B is A rotated 120° and slid along A's LID direction
until its nearest heavy atom is GAP Å from A's. gemmi's DensityCalculatorE puts both on one box
(3 × resolution of padding, spacing ≈ resolution/3, blurred to molmap's σ = 0.225 × resolution)
and Gaussian noise is added at SNR (var(copy A's density) / var(noise) over the box).

    two_copies.py --out DIR [--gap 4] [--resolution 6] [--snr 1] [--seed 7]

Writes DIR/pair.mrc, DIR/copy_a.pdb, DIR/copy_b.pdb and prints a JSON line with their paths,
the box and the atom counts.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import guided_neighbour as gn  # noqa: E402  (the AdK copies come from there)
from gemmi_maps import density, write_map  # noqa: E402  (the scripts' one map maker)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--gap", type=float, default=4.0, help="nearest heavy-atom distance, Å")
    parser.add_argument("--resolution", type=float, default=6.0)
    parser.add_argument("--snr", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    res = args.resolution
    a = gn.heavy_structure(os.path.join(gn.MODELS, "adk_open.pdb"))
    b = gn.heavy_structure(os.path.join(gn.MODELS, "adk_open.pdb"))
    b_xyz = gn.neighbour_of(a, args.gap)
    gn.set_coordinates(b, b_xyz)
    a_xyz = gn.coordinates(a)
    both = np.vstack([a_xyz, b_xyz])
    box_lo = both.min(0) - 3 * res
    box_size = both.max(0) + 3 * res - box_lo
    alone = density([a[0]], box_lo, box_size, res)
    pair = density([a[0], b[0]], box_lo, box_size, res)
    noise = np.random.default_rng(args.seed).normal(0.0, math.sqrt(alone.var() / args.snr), alone.shape)
    paths = {k: os.path.join(args.out, f) for k, f in
             [("map", "pair.mrc"), ("copy_a", "copy_a.pdb"), ("copy_b", "copy_b.pdb")]}
    write_map(paths["map"], pair + noise, box_lo, box_size)
    a.write_pdb(paths["copy_a"])
    b.write_pdb(paths["copy_b"])
    print(json.dumps({
        **paths,
        "shape": list(pair.shape),
        "voxel_angstrom": float(box_size[0] / pair.shape[0]),
        "atoms": [len(a_xyz), len(b_xyz)],
        "gap_angstrom": float(gn.min_distance(a_xyz, b_xyz)),
        "resolution_angstrom": res,
        "snr": args.snr,
    }))


if __name__ == "__main__":
    main()

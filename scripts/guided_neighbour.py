#!/usr/bin/env python3
"""Guided fitting into a map that holds more than the model (issue 18, "the model's own density").

The map is made by gemmi, not by cryoforge: gemmi's DensityCalculatorE (electron form factors,
blurred so a carbon has the molmap width σ = 0.225 × resolution) of two copies of adenylate kinase
in the open state (4AKE, from assets/models/adk_open.pdb): copy A where the file puts it, and a
neighbour (copy B), rotated 120° and slid along the direction of A's LID domain until its nearest
heavy atom is GAP Å from A's (touching, as subunits of a filament or an oligomer do). The box
covers both copies with 3 × resolution of padding; Gaussian noise is added at SNR 1 of copy A's
density over the box (var(signal)/var(noise), CryoBench's definition), and the same noise
realisation goes into the map without the neighbour, so the two maps differ only by copy B.

The closed state (1AKE, assets/models/adk_closed.pdb), superposed on copy A by its Cα, is fitted
with `cryoforge fit guided` at the defaults (one sample), with guidance seeing the model's zone
and the whole box; printed: Cα RMSD to the open state after superposition, correlation, time.

    scripts/guided_neighbour.sh [--bin BIN] [--zones model,whole-map] [-- extra fit arguments]

The models are written with element columns and without hydrogens, so the atoms cryoforge fits
are the 1,656 heavy atoms whatever its reader makes of CHARMM atom names.
"""
import argparse
import json
import math
import os
import subprocess
import sys

import gemmi
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gemmi_maps import density, write_map  # noqa: E402  (the scripts' one map maker)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "assets", "models")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/cryoforge-target"))


def heavy_structure(path):
    """The model with elements from its CHARMM atom names (first letter) and no hydrogens."""
    st = gemmi.read_structure(path)
    for residue in st[0][0]:
        for atom in residue:
            atom.element = gemmi.Element(atom.name.lstrip("0123456789")[0])
    st.remove_hydrogens()
    st.setup_entities()
    return st


def coordinates(st):
    return np.array([[a.pos.x, a.pos.y, a.pos.z] for r in st[0][0] for a in r])


def set_coordinates(st, xyz):
    atoms = [a for r in st[0][0] for a in r]
    for atom, p in zip(atoms, xyz):
        atom.pos = gemmi.Position(*p)


def ca(st):
    return np.array([[a.pos.x, a.pos.y, a.pos.z] for r in st[0][0] for a in r if a.name == "CA"])


def kabsch(mobile, target):
    """Rotation R and translation t with mobile @ R.T + t ≈ target (least squares)."""
    mc, tc = mobile.mean(0), target.mean(0)
    u, _, vt = np.linalg.svd((mobile - mc).T @ (target - tc))
    d = np.sign(np.linalg.det(u @ vt))
    r = (u @ np.diag([1.0, 1.0, d]) @ vt).T
    return r, tc - mc @ r.T


def rotation(axis, degrees):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    x, y, z = axis
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([
        [c + x * x * (1 - c), x * y * (1 - c) - z * s, x * z * (1 - c) + y * s],
        [y * x * (1 - c) + z * s, c + y * y * (1 - c), y * z * (1 - c) - x * s],
        [z * x * (1 - c) - y * s, z * y * (1 - c) + x * s, c + z * z * (1 - c)],
    ])


def min_distance(a, b):
    return min(np.sqrt(((a[i:i + 200, None, :] - b[None, :, :]) ** 2).sum(-1)).min() for i in range(0, len(a), 200))


def neighbour_of(st, gap):
    """Copy B: A rotated 120° about its centre, slid along A's LID direction until GAP Å away."""
    xyz = coordinates(st)
    centre = xyz.mean(0)
    lid = np.array([[a.pos.x, a.pos.y, a.pos.z] for r in st[0][0] if 122 <= r.seqid.num <= 159 for a in r])
    direction = lid.mean(0) - centre
    direction /= np.linalg.norm(direction)
    turned = (xyz - centre) @ rotation([1.0, 1.0, 0.0], 120.0).T + centre
    lo, hi = 0.0, 120.0  # bisection on the slide: too close at lo, too far at hi
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if min_distance(xyz, turned + mid * direction) < gap:
            lo = mid
        else:
            hi = mid
    return turned + hi * direction


def fit(binary, map_path, model, reference, resolution, out, zone, extra):
    args = [binary, "fit", "guided", "--map", map_path, "--model", model, "--resolution", str(resolution),
            "--reference", reference, "-o", out, "--json", *extra]
    if zone != "default":
        args += ["--zone", zone]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.environ.get("CRYOFORGE_BIN", os.path.join(TARGET, "debug", "cryoforge")))
    parser.add_argument("--zones", default="model,whole-map", help="comma-separated --zone values; 'default' passes none")
    parser.add_argument("--cases", default="neighbour,alone")
    parser.add_argument("--resolution", type=float, default=6.0)
    parser.add_argument("--gap", type=float, default=6.0, help="nearest heavy-atom distance between the copies, Å")
    parser.add_argument("--out", default=os.path.join(ROOT, "out", "guided_neighbour"))
    parser.add_argument("--maps-only", action="store_true", help="write the maps and models, fit nothing")
    parser.add_argument("extra", nargs="*", help="extra arguments to `cryoforge fit guided` (after --)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    res = args.resolution

    open_st = heavy_structure(os.path.join(MODELS, "adk_open.pdb"))
    closed_st = heavy_structure(os.path.join(MODELS, "adk_closed.pdb"))
    r, t = kabsch(ca(closed_st), ca(open_st))
    set_coordinates(closed_st, coordinates(closed_st) @ r.T + t)
    reference = os.path.join(args.out, "open_copyA.pdb")
    start = os.path.join(args.out, "closed_on_copyA.pdb")
    open_st.write_pdb(reference)
    closed_st.write_pdb(start)

    b_st = heavy_structure(os.path.join(MODELS, "adk_open.pdb"))
    b_xyz = neighbour_of(open_st, args.gap)
    set_coordinates(b_st, b_xyz)
    b_st.write_pdb(os.path.join(args.out, "open_copyB.pdb"))
    both = np.vstack([coordinates(open_st), b_xyz])
    box_lo = both.min(0) - 3 * res
    box_size = both.max(0) + 3 * res - box_lo
    alone = density([open_st[0]], box_lo, box_size, res)
    pair = density([open_st[0], b_st[0]], box_lo, box_size, res)
    noise = np.random.default_rng(7).normal(0.0, math.sqrt(alone.var()), alone.shape)
    maps = {"alone": os.path.join(args.out, "adk_alone.mrc"), "neighbour": os.path.join(args.out, "adk_pair.mrc")}
    write_map(maps["alone"], alone + noise, box_lo, box_size)
    write_map(maps["neighbour"], pair + noise, box_lo, box_size)
    print(f"gemmi DensityCalculatorE at {res} Å, box {alone.shape} voxels of {box_size[0] / alone.shape[0]:.2f} Å;"
          f" neighbour {min_distance(coordinates(open_st), b_xyz):.1f} Å from copy A; noise SNR 1 of copy A")
    print(f"start: {start} (closed, Cα-superposed on copy A); cryoforge {args.bin}")
    if args.maps_only:
        return
    for case in args.cases.split(","):
        for zone in args.zones.split(","):
            report = fit(args.bin, maps[case], start, reference, res, os.path.join(args.out, f"{case}_{zone}.cif"),
                         zone, args.extra)
            best = report["samples"][0]
            print(f"{case:<10} zone {zone:<10} Cα RMSD {best['reference']['ca_rmsd_angstrom']:6.3f} Å"
                  f" (start {report['start']['reference']['ca_rmsd_angstrom']:.2f})  cc {best['correlation']:.4f}"
                  f"  moved {best['rmsd_to_start_angstrom']:5.2f} Å  atoms {report['atoms']}"
                  f"  clashes {best['geometry']['clashes']}  {report['seconds']:5.1f} s", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Density simulation: cryoforge vs gemmi, in one run, on the same model and grid.

    scripts/bench.sh density            (sets up the venv and builds cryoforge first)

For each model: gemmi's DensityCalculatorX puts the
heavy atoms on a P1 box grid with spacing resolution/3; cryoforge simulates the same atoms on the
same grid (`simulate map --like`). Printed per model: both times (density computation only, best
of 3), their ratio, and the correlation of the two maps. gemmi's atoms are sums of Gaussians (form
factor + blur), cryoforge's single molmap Gaussians (σ = 0.225 × resolution); gemmi's blur is set
so that its carbon atoms have the molmap width on average (B = 8π²σ² − mean IT92 b of carbon),
with B-factors zeroed and occupancies 1 (molmap ignores both). X-ray form factors are used because
their forward amplitude, like molmap's, scales with the atomic number.
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

import gemmi
import mrcfile
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("CRYOFORGE_BIN", os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/cryoforge-target")), "debug", "cryoforge"))


def run(model_path, resolution, workdir):
    st = gemmi.read_structure(model_path)
    st.remove_hydrogens()
    # Same σ convention on both sides: no per-atom B-factors, full occupancy.
    for ch in st[0]:
        for res in ch:
            for a in res:
                a.b_iso = 0.0
                a.occ = 1.0
    pad = 3 * resolution
    pos = np.array([[a.pos.x, a.pos.y, a.pos.z] for ch in st[0] for res in ch for a in res])
    lo = pos.min(axis=0) - pad
    extent = pos.max(axis=0) + pad - lo
    shift = gemmi.Transform(gemmi.Mat33(), gemmi.Vec3(*(-lo)))
    for m in st:
        m.transform_pos_and_adp(shift)
    st.cell = gemmi.UnitCell(*extent, 90, 90, 90)
    st.spacegroup_hm = "P 1"
    st.setup_entities()
    model_out = os.path.join(workdir, "model.cif")
    st.make_mmcif_document().write_file(model_out)

    dc = gemmi.DensityCalculatorX()
    dc.d_min = resolution
    dc.rate = 1.5  # spacing = d_min / (2 · rate) = resolution / 3
    sigma = 0.225 * resolution
    peng_b = np.mean(list(gemmi.Element("C").it92.b))
    dc.blur = max(8 * math.pi ** 2 * sigma ** 2 - peng_b, 0.0)
    dc.set_grid_cell_and_spacegroup(st)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        dc.put_model_density_on_grid(st[0])
        best = min(best, time.perf_counter() - t)
    ccp4 = gemmi.Ccp4Map()
    ccp4.grid = dc.grid
    ccp4.update_ccp4_header()
    grid_out = os.path.join(workdir, "gemmi.mrc")
    ccp4.write_ccp4_map(grid_out)

    ours_out = os.path.join(workdir, "ours.mrc")
    ours = float("inf")
    for _ in range(3):
        proc = subprocess.run([BIN, "simulate", "map", "--model", model_out, "--resolution", str(resolution),
                               "--like", grid_out, "-o", ours_out], capture_output=True, text=True, check=True)
        ours = min(ours, float(re.search(r"in ([0-9.]+) s", proc.stderr).group(1)))
    with mrcfile.open(grid_out) as a, mrcfile.open(ours_out) as b:
        x, y = a.data.astype(np.float64).ravel(), b.data.astype(np.float64).ravel()
    cc = np.corrcoef(x, y)[0, 1]
    return {"atoms": int(len(pos)), "grid": list(dc.grid.shape), "gemmi_s": best, "cryoforge_s": ours,
            "speedup": best / ours, "correlation": cc}


def main():
    cases = [("AdK 1AKE", os.path.join(ROOT, "assets/models/1ake.pdb"), 5.0),
             ("6ZU5 ribosome", os.path.join(ROOT, "assets/models/6zu5.cif.gz"), 4.0)]
    as_json = "--json" in sys.argv
    if not as_json:
        print(f"{'model':<16}{'atoms':>8}{'grid':>18}{'gemmi s':>10}{'cryoforge s':>13}{'gemmi/cryoforge':>17}{'corr':>8}")
    results = {}
    for name, path, res in cases:
        with tempfile.TemporaryDirectory() as d:
            r = run(path, res, d)
        results[name] = r
        if not as_json:
            print(f"{name:<16}{r['atoms']:>8}{str(r['grid']):>18}{r['gemmi_s']:>10.3f}{r['cryoforge_s']:>13.3f}{r['speedup']:>16.1f}x{r['correlation']:>8.4f}")
    if as_json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

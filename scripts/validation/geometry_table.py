"""Builds cryoforge's covalent-geometry table (assets/validation/geometry.txt) from the same
deduplicated high-resolution X-ray chains as the Ramachandran tables (reference_set.py).

Topology: two heavy atoms of one residue type are bonded when they lie within 1.9 A in >= 95 %
of the instances that have both (and there are >= 20 such instances). Angles are all triples
i-j-k with i-j and j-k bonded. For each bond and angle the table gives a robust weighted mean
and standard deviation (values beyond 5 MAD-sigmas of the median are dropped first, so a few
misbuilt residues do not widen sigma) and the number of instances. Atoms with B > 60 are left
out. cryoforge takes the topology and the side-chain values from this table; backbone and
C-beta targets come from Engh & Huber (2001), and the "peptide" lines printed at the end compare
those with what this corpus measures.

Usage: $HOME/.cache/cryoforge-venv/bin/python scripts/validation/geometry_table.py
"""

import collections
import math
import os

import numpy as np

import reference_set as ref

BOND_CUTOFF = 1.9
BONDED_FRACTION = 0.95
MIN_INSTANCES = 20
MAX_B = 60.0
OUT = os.path.join(ref.REPO, "assets", "validation", "geometry.txt")


def heavy_atoms(res, use_b):
    atoms = {}
    for a in res:
        if a.is_hydrogen() or (use_b and a.b_iso > MAX_B):
            continue
        atoms.setdefault(a.name, a.pos)
    return atoms


def robust_stats(values, weights):
    v, w = np.asarray(values), np.asarray(weights)
    median = np.median(v)
    sigma = 1.4826 * np.median(np.abs(v - median))
    keep = np.abs(v - median) <= 5 * max(sigma, 1e-6)
    v, w = v[keep], w[keep]
    mean = float(np.sum(v * w) / np.sum(w))
    sd = float(math.sqrt(np.sum(w * (v - mean) ** 2) / np.sum(w)))
    return mean, sd


def angle_deg(a, b, c):
    return math.degrees(ref.gemmi.calculate_angle(a, b, c))


def main():
    train, _, _, stats = ref.select()
    residues = []  # (name, {atom: pos}, weight)
    peptide = collections.defaultdict(list)
    for chain in train:
        use_b = any(a.b_iso > 0 for r in chain.residues for a in r)
        rs = chain.residues
        for i, res in enumerate(rs):
            if res.name not in ref.AMINO_ACIDS:
                continue
            atoms = heavy_atoms(res, use_b)
            residues.append((res.name, atoms, chain.weight))
            if i + 1 < len(rs):
                nxt = heavy_atoms(rs[i + 1], use_b)
                if all(k in atoms for k in ("CA", "C", "O")) and all(k in nxt for k in ("N", "CA")):
                    if atoms["C"].dist(nxt["N"]) > 2.0:
                        continue
                    kind = "pro" if rs[i + 1].name == "PRO" else "other"
                    peptide[(kind, "C-N")].append((atoms["C"].dist(nxt["N"]), chain.weight))
                    peptide[(kind, "CA-C-N")].append((angle_deg(atoms["CA"], atoms["C"], nxt["N"]), chain.weight))
                    peptide[(kind, "O-C-N")].append((angle_deg(atoms["O"], atoms["C"], nxt["N"]), chain.weight))
                    peptide[(kind, "C-N-CA")].append((angle_deg(atoms["C"], nxt["N"], nxt["CA"]), chain.weight))
    pairs = collections.defaultdict(list)
    for name, atoms, w in residues:
        names = sorted(atoms)
        for x in range(len(names)):
            for y in range(x + 1, len(names)):
                d = atoms[names[x]].dist(atoms[names[y]])
                if d < 3.0:
                    pairs[(name, names[x], names[y])].append((d, w))
    instances = collections.Counter()
    for name, atoms, _ in residues:
        names = sorted(atoms)
        for x in range(len(names)):
            for y in range(x + 1, len(names)):
                instances[(name, names[x], names[y])] += 1
    bonds = {}
    for key, rows in pairs.items():
        close = [(d, w) for d, w in rows if d <= BOND_CUTOFF]
        if instances[key] >= MIN_INSTANCES and len(close) >= BONDED_FRACTION * instances[key]:
            bonds[key] = robust_stats([d for d, _ in close], [w for _, w in close]) + (len(close),)
    neighbours = collections.defaultdict(set)
    for name, a, b in bonds:
        neighbours[(name, a)].add(b)
        neighbours[(name, b)].add(a)
    angles = {}
    for (name, centre), others in sorted(neighbours.items()):
        others = sorted(others)
        for x in range(len(others)):
            for y in range(x + 1, len(others)):
                a, c = others[x], others[y]
                rows = [
                    (angle_deg(atoms[a], atoms[centre], atoms[c]), w)
                    for n, atoms, w in residues
                    if n == name and a in atoms and centre in atoms and c in atoms
                ]
                if len(rows) >= MIN_INSTANCES:
                    angles[(name, a, centre, c)] = robust_stats([v for v, _ in rows], [w for _, w in rows]) + (
                        len(rows),
                    )
    with open(OUT, "w") as f:
        f.write("# cryoforge covalent geometry reference: made by scripts/validation/geometry_table.py\n")
        f.write(f"# {len(train)} deduplicated X-ray chains, {len(residues)} residues; see assets/validation/README.md\n")
        f.write("# bond RES ATOM1 ATOM2 mean_angstrom sigma_angstrom n\n")
        f.write("# angle RES ATOM1 CENTRE ATOM3 mean_degrees sigma_degrees n\n")
        for (name, a, b), (mean, sd, n) in sorted(bonds.items()):
            f.write(f"bond {name} {a} {b} {mean:.4f} {sd:.4f} {n}\n")
        for (name, a, centre, c), (mean, sd, n) in sorted(angles.items()):
            f.write(f"angle {name} {a} {centre} {c} {mean:.2f} {sd:.2f} {n}\n")
    print(f"{len(bonds)} bonds, {len(angles)} angles over {len(residues)} residues -> {OUT}")
    for (kind, what), rows in sorted(peptide.items()):
        mean, sd = robust_stats([v for v, _ in rows], [w for _, w in rows])
        print(f"peptide ({kind}) {what}: {mean:.3f} sd {sd:.3f} n {len(rows)}")
    for what in [("ALA", "CA", "CB"), ("GLY", "CA", "C"), ("LEU", "CA", "C"), ("LEU", "C", "O"), ("LEU", "CA", "N")]:
        key = tuple(sorted(what[1:]))
        print("bond", what[0], key, bonds.get((what[0],) + key))
    for what in [("LEU", "C", "CA", "N"), ("LEU", "CB", "CA", "N"), ("LEU", "C", "CA", "CB"), ("LEU", "CA", "C", "O")]:
        print("angle", what, angles.get(what))


if __name__ == "__main__":
    main()

"""Prints gemmi's phi/psi (degrees) of every amino-acid residue of a model file as JSON, for the
cross-check in tests/tests/validation.rs. First conformer, model 1; a residue's phi (psi) is
defined when the previous (next) residue of the same chain has C (N) within 2.0 A of its N (C),
the rule cryoforge uses. Dihedrals by gemmi.calculate_dihedral.

Usage: python scripts/validation/gemmi_phi_psi.py MODEL
"""

import json
import math
import sys

import gemmi


def linked(prev, res):
    c, n = prev.find_atom("C", "*"), res.find_atom("N", "*")
    return c is not None and n is not None and c.pos.dist(n.pos) <= 2.0


def main(path):
    st = gemmi.read_structure(path)
    st.remove_alternative_conformations()
    out = []
    for ch in st[0]:
        residues = [r for r in ch if all(r.find_atom(a, "*") for a in ("N", "CA", "C"))]
        for i, res in enumerate(residues):
            prev = residues[i - 1] if i > 0 and linked(residues[i - 1], res) else None
            nxt = residues[i + 1] if i + 1 < len(residues) and linked(res, residues[i + 1]) else None
            # gemmi.calculate_dihedral on the atoms by name: calculate_phi_psi looks CA up by
            # element, and files without an element column (CHARMM) read "CA" as calcium.
            n, ca, c = (res.find_atom(a, "*").pos for a in ("N", "CA", "C"))
            phi = gemmi.calculate_dihedral(prev.find_atom("C", "*").pos, n, ca, c) if prev else math.nan
            psi = gemmi.calculate_dihedral(n, ca, c, nxt.find_atom("N", "*").pos) if nxt else math.nan
            out.append({
                "chain": ch.name,
                "number": res.seqid.num,
                "icode": res.seqid.icode.strip(),
                "name": res.name,
                "phi": None if math.isnan(phi) else math.degrees(phi),
                "psi": None if math.isnan(psi) else math.degrees(psi),
            })
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])

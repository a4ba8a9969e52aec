"""Prints, for each model file named on stdin (one path per line), the atom sites gemmi reads.

One JSON object per line: {"path", "ok", "error", "models", "atoms"} where "atoms" lists model 1's
atom sites as [chain, seq, icode, residue, name, altloc, element, charge, occupancy, b, x, y, z,
subchain, label_seq]. cryoforge's corpus test compares its own reading with this, and reads the
files cryoforge wrote back through it.
"""
import json
import math
import sys

import gemmi


def number(x, digits):
    """A float JSON can hold (NaN and infinities become null)."""
    return round(x, digits) if math.isfinite(x) else None


def atoms_of(path):
    st = gemmi.read_structure(path)
    if len(st) == 0:
        return len(st), []
    out = []
    for chain in st[0]:
        for res in chain:
            icode = res.seqid.icode.strip()
            for a in res:
                out.append([
                    chain.name, res.seqid.num, icode, res.name, a.name,
                    a.altloc if a.altloc != "\0" else "", a.element.name, a.charge,
                    number(a.occ, 4), number(a.b_iso, 3),
                    number(a.pos.x, 4), number(a.pos.y, 4), number(a.pos.z, 4),
                    res.subchain, res.label_seq if res.label_seq is not None else None,
                ])
    return len(st), out


def main():
    for line in sys.stdin:
        path = line.rstrip("\n")
        if not path:
            continue
        try:
            models, atoms = atoms_of(path)
            record = {"path": path, "ok": True, "models": models, "atoms": atoms}
        except Exception as e:  # gemmi refuses the file: the corpus test skips it
            record = {"path": path, "ok": False, "error": str(e)[:300]}
        sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()

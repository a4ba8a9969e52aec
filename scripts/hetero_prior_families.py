#!/usr/bin/env python3
"""The families of a chain set (scripts/build_dataset.py) that the heterogeneity benchmarks'
proteins belong to: every family with a chain at ≥ 40 % identity (the set's own family rule) to a
protein chain of the given model files. Prints them comma-separated, for
`cryoforge hetero pretrain --exclude-families`, so the prior never trains on those families.

    python scripts/hetero_prior_families.py --dataset DIR MODEL [MODEL:CHAIN …]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_dataset import chains_of, identity  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--min-identity", type=float, default=0.4)
    parser.add_argument("models", nargs="+", help="model file, or file:chain for one chain")
    args = parser.parse_args()
    with open(os.path.join(args.dataset, "manifest.json")) as f:
        manifest = json.load(f)
    wanted = []
    for spec in args.models:
        path, _, only = spec.partition(":")
        for name, _, seq in chains_of(path):
            if not only or name == only:
                wanted.append((spec, name, seq))
    if not wanted:
        sys.exit("no protein chain found in the given models")
    families = set()
    for chain in manifest["chains"]:
        for spec, name, seq in wanted:
            if identity(seq, chain["sequence"]) >= args.min_identity:
                families.add(chain["family"])
                print(f"{spec} chain {name} ~ {chain['name']} (family {chain['family']}, {chain['split']})", file=sys.stderr)
                break
    print(",".join(str(f) for f in sorted(families)))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Times cryoforge's watershed against scikit-image's on the same map, in the same run.

Both do the same work: Gaussian smoothing of σ one voxel (truncated at 3σ, edges clamped),
seeds at the local maxima (6 neighbours) above the level, and a priority flood over the voxels
above the level (6-connected). cryoforge: `cryoforge map segment --steps 0 --min-volume 0 --json`,
its own timing of the segmentation (no file reading or writing); scikit-image:
scipy.ndimage.gaussian_filter, maximum_filter and label, then skimage.segmentation.watershed
with the markers and mask, timed in this process. Best of REPEATS for each. The level is the one
enclosing 1% of the voxels (cryoforge's default). Also printed: each side's region count and how
well the two partitions agree (the share of voxels in the best-matching region of the other).

    bench.py --bin CRYOFORGE MAP [MAP ...] [--repeats 3] [--fraction 0.01]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import mrcfile
import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed


def skimage_watershed(values, level):
    smoothed = ndimage.gaussian_filter(values, sigma=1.0, mode="nearest", truncate=3.0)
    mask = smoothed >= level
    faces = ndimage.generate_binary_structure(3, 1)
    peaks = (ndimage.maximum_filter(np.where(mask, smoothed, -np.inf), footprint=faces, mode="constant",
                                    cval=-np.inf) == smoothed) & mask
    markers, _ = ndimage.label(peaks, structure=np.ones((3, 3, 3)))
    return watershed(-smoothed, markers, mask=mask, connectivity=1)


def agreement(a, b):
    """Share of labelled voxels of `a` that sit in the region of `b` overlapping their region most."""
    keep = (a > 0) & (b > 0)
    if not keep.any():
        return 0.0
    pairs = np.stack([a[keep], b[keep]], axis=1)
    unique, counts = np.unique(pairs, axis=0, return_counts=True)
    best = {}
    for (la, _), n in zip(unique, counts):
        best[la] = max(best.get(la, 0), n)
    return sum(best.values()) / max((a > 0).sum(), 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("maps", nargs="+")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fraction", type=float, default=0.01)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.maps:
            with mrcfile.open(path, permissive=True) as mrc:
                values = np.asarray(mrc.data, dtype=np.float32)  # (z, y, x)
            level = float(np.sort(values, axis=None)[values.size - max(int(round(values.size * args.fraction)), 1)])
            out = os.path.join(tmp, "labels.mrc")
            ours = []
            for _ in range(args.repeats):
                done = subprocess.run([args.bin, "map", "segment", path, "-o", out, "--level", repr(level),
                                       "--steps", "0", "--min-volume", "0", "--json"], capture_output=True, text=True)
                if done.returncode != 0:
                    sys.exit(f"cryoforge failed:\n{done.stderr}")
                report = json.loads(done.stdout)
                ours.append(report["seconds"])
            theirs = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                labels = skimage_watershed(values, level)
                theirs.append(time.perf_counter() - started)
            with mrcfile.open(out, permissive=True) as mrc:
                our_labels = np.asarray(mrc.data).astype(np.int64)
            print(f"{os.path.basename(path)} {values.shape[::-1]} voxels, level {level:.4g} ({args.fraction:.0%} of voxels):"
                  f" cryoforge {min(ours):.3f} s ({len(report['regions'])} regions),"
                  f" scikit-image {min(theirs):.3f} s ({labels.max()} regions);"
                  f" scikit-image / cryoforge = {min(theirs) / min(ours):.2f};"
                  f" partitions agree on {agreement(our_labels, labels):.1%} / {agreement(labels, our_labels):.1%}"
                  f" of voxels", flush=True)


if __name__ == "__main__":
    main()

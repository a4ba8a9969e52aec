"""Builds cryoforge's Ramachandran reference tables (assets/validation/rama_*.txt) from the
deduplicated high-resolution X-ray chains of the public corpus (see reference_set.py), and
checks them on the held-out chains.

Per residue class (general, Gly, Pro, pre-Pro, Ile/Val) the phi/psi of the reference residues
(gemmi.calculate_phi_psi; a chain break, C(i-1)-N(i) > 2.0 A, leaves phi or psi undefined) go
into a weighted 5-degree histogram on the periodic grid, smoothed with a wrapped Gaussian. The
table stores L = round(-100 ln(density / max density)) at the bin centres (phi rows, psi
columns, from -177.5 in 5-degree steps), capped at 1500; cryoforge interpolates L bilinearly.
The "favoured" level is the L below which 98 % of the (weighted) reference residues fall, the
"allowed" level the one for 99.8 %.

Usage: $HOME/.cache/cryoforge-venv/bin/python scripts/validation/rama_table.py
"""

import math
import os
import sys

import numpy as np

import reference_set as ref

BIN_DEG = 5.0
N_BINS = 72
CAP = 1500
FAVOURED = 0.98
ALLOWED = 0.998
MAX_BACKBONE_B = 60.0
# Pilot smoothing widths (degrees): the sparse classes need wider kernels to give a stable outer
# contour from a few thousand residues.
SMOOTHING_DEG = {"general": 4.0, "ile_val": 5.0, "gly": 6.0, "pro": 5.0, "pre_pro": 6.0}
CLASSES = ["general", "gly", "pro", "pre_pro", "ile_val"]
OUT = os.path.join(ref.REPO, "assets", "validation")


def linked(prev, res):
    c, n = prev.find_atom("C", "*"), res.find_atom("N", "*")
    return c is not None and n is not None and c.pos.dist(n.pos) <= 2.0


def residue_class(res, next_res):
    if res.name == "GLY":
        return "gly"
    if res.name == "PRO":
        return "pro"
    if next_res is not None and next_res.name == "PRO":
        return "pre_pro"
    if res.name in ("ILE", "VAL"):
        return "ile_val"
    return "general"


def backbone_ok(res, use_b):
    atoms = [res.find_atom(n, "*") for n in ("N", "CA", "C")]
    if any(a is None for a in atoms):
        return False
    return not use_b or max(a.b_iso for a in atoms) <= MAX_BACKBONE_B


def phi_psi_rows(chain, b_filter=True):
    """(class, phi_deg, psi_deg, weight) of each residue with both angles defined."""
    residues = chain.residues
    use_b = b_filter and any(a.b_iso > 0 for r in residues for a in r)
    for i, res in enumerate(residues):
        if res.name not in ref.AMINO_ACIDS or not backbone_ok(res, use_b):
            continue
        prev = residues[i - 1] if i > 0 and linked(residues[i - 1], res) else None
        nxt = residues[i + 1] if i + 1 < len(residues) and linked(res, residues[i + 1]) else None
        if prev is None or nxt is None:
            continue
        phi, psi = ref.gemmi.calculate_phi_psi(prev, res, nxt)
        if math.isnan(phi) or math.isnan(psi):
            continue
        yield residue_class(res, nxt), math.degrees(phi), math.degrees(psi), chain.weight


def wrapped_gaussian_kernel(sigma_deg):
    offsets = (np.arange(N_BINS) - N_BINS // 2) * BIN_DEG
    g = np.exp(-0.5 * (offsets / sigma_deg) ** 2)
    return np.roll(g / g.sum(), -(N_BINS // 2))


def histogram(rows):
    hist = np.zeros((N_BINS, N_BINS))
    for _, phi, psi, w in rows:
        i = int(math.floor((phi + 180.0) / BIN_DEG)) % N_BINS
        j = int(math.floor((psi + 180.0) / BIN_DEG)) % N_BINS
        hist[i, j] += w
    return hist


def smooth(hist, sigma_deg):
    k = wrapped_gaussian_kernel(sigma_deg)
    return np.real(np.fft.ifft2(np.fft.fft2(hist) * np.fft.fft2(np.outer(k, k))))


def adaptive_density(rows, sigma_deg):
    """Abramson's adaptive kernel estimate: a pilot density at the pilot width, then each residue
    smoothed with width sigma * (pilot / geometric mean of pilot)^(-1/2), limited to 1-8 times
    sigma and rounded to a few widths. Sparse regions get wide kernels, so a lone residue far
    from the others spreads thin and stays outside the allowed contour instead of making an
    island of its own."""
    pilot = smooth(histogram(rows), sigma_deg)
    at_rows = np.array([max(interpolate(pilot, phi, psi), 1e-12) for _, phi, psi, _ in rows])
    weights = np.array([w for *_, w in rows])
    geometric_mean = math.exp(float(np.sum(weights * np.log(at_rows)) / np.sum(weights)))
    factor = np.clip((at_rows / geometric_mean) ** -0.5, 1.0, 8.0)
    widths = 2.0 ** (np.round(2.0 * np.log2(factor)) / 2.0)  # steps of sqrt(2)
    density = np.zeros((N_BINS, N_BINS))
    for level in np.unique(widths):
        mine = [r for r, l in zip(rows, widths) if l == level]
        density += smooth(histogram(mine), sigma_deg * level)
    return density


def smoothed_levels(rows, sigma_deg):
    density = adaptive_density(rows, sigma_deg)
    density = np.maximum(density, density.max() * math.exp(-CAP / 100.0))
    return np.minimum(np.round(-100.0 * np.log(density / density.max())), CAP).astype(int)


def interpolate(table, phi, psi):
    """Bilinear on the periodic grid, bin centres at -177.5 + 5 k (as the Rust side does)."""
    x = (phi + 180.0 - BIN_DEG / 2) / BIN_DEG
    y = (psi + 180.0 - BIN_DEG / 2) / BIN_DEG
    i0, j0 = math.floor(x), math.floor(y)
    fx, fy = x - i0, y - j0
    i0, j0 = i0 % N_BINS, j0 % N_BINS
    i1, j1 = (i0 + 1) % N_BINS, (j0 + 1) % N_BINS
    return (
        table[i0, j0] * (1 - fx) * (1 - fy)
        + table[i1, j0] * fx * (1 - fy)
        + table[i0, j1] * (1 - fx) * fy
        + table[i1, j1] * fx * fy
    )


def weighted_quantile(values, weights, q):
    order = np.argsort(values)
    cumulative = np.cumsum(np.asarray(weights)[order])
    return float(np.asarray(values)[order][np.searchsorted(cumulative, q * cumulative[-1])])


def classify(tables, rows):
    counts = {"favoured": 0, "allowed": 0, "outlier": 0}
    for cls, phi, psi, _ in rows:
        table, favoured, allowed = tables[cls]
        value = interpolate(table, phi, psi)
        counts["favoured" if value <= favoured else "allowed" if value <= allowed else "outlier"] += 1
    n = max(sum(counts.values()), 1)
    return n, 100.0 * counts["favoured"] / n, 100.0 * counts["outlier"] / n


def write_table(cls, table, favoured, allowed, n, weight, sigma):
    path = os.path.join(OUT, f"rama_{cls}.txt")
    with open(path, "w") as f:
        f.write(f"# cryoforge Ramachandran reference, class {cls}: made by scripts/validation/rama_table.py\n")
        f.write(f"# {n} residues (weight {weight:.1f}) of deduplicated X-ray chains, see assets/validation/README.md\n")
        f.write(f"# values: round(-100 ln(density/max)), cap {CAP}; smoothing {sigma} deg; rows phi, columns psi,\n")
        f.write(f"# bin centres -177.5 + 5 k degrees; favoured = {FAVOURED:.1%}, allowed = {ALLOWED:.1%} of the residues\n")
        f.write(f"grid {N_BINS} {N_BINS}\n")
        f.write(f"favoured {favoured:.2f}\n")
        f.write(f"allowed {allowed:.2f}\n")
        for row in table:
            f.write(" ".join(str(v) for v in row) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    train, held_out, lowres, stats = ref.select()
    rows = [r for c in train for r in phi_psi_rows(c)]
    tables = {}
    for cls in CLASSES:
        mine = [r for r in rows if r[0] == cls]
        table = smoothed_levels(mine, SMOOTHING_DEG[cls])
        values = [interpolate(table, phi, psi) for _, phi, psi, _ in mine]
        weights = [w for *_, w in mine]
        favoured = weighted_quantile(values, weights, FAVOURED)
        allowed = weighted_quantile(values, weights, ALLOWED)
        tables[cls] = (table, favoured, allowed)
        write_table(cls, table, favoured, allowed, len(mine), sum(weights), SMOOTHING_DEG[cls])
        print(f"{cls}: {len(mine)} residues, weight {sum(weights):.1f}, favoured <= {favoured:.1f}, "
              f"allowed <= {allowed:.1f}")
    for name, chains, b_filter in [
        ("training (self-check)", train, True),
        ("held-out families", held_out, True),
        ("held-out families, no B filter", held_out, False),
        ("X-ray > 2.2 A (not used)", lowres, False),
    ]:
        n, fav, out = classify(tables, [r for c in chains for r in phi_psi_rows(c, b_filter)])
        files = len({c.path for c in chains})
        print(f"{name}: {files} files, {len(chains)} chains, {n} residues: {fav:.2f} % favoured, {out:.2f} % outliers")
    print("training files:", file=sys.stderr)
    for c in train:
        print(f"  {ref.relative(c.path)} chain {len(c.sequence)} aa weight {c.weight:.2f}", file=sys.stderr)
    print("held-out files:", file=sys.stderr)
    for c in held_out:
        print(f"  {ref.relative(c.path)} {len(c.sequence)} aa", file=sys.stderr)


if __name__ == "__main__":
    main()

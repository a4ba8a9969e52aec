"""Heterogeneity explorer benchmarks, each against a peer measured in the same run.

1. Training throughput: particles per second for one epoch of `cryoforge hetero train` (encoder,
   decoder 3×256, CTF, loss, backward and Adam on burn's Flex backend) on 1,000 AdK particles of
   64 px, trained at 64 px and downsampled to 32 px; the reference is the simulator's forward
   projection with CTF of the same particles (no network, no gradient).
2. UMAP time for 10⁵ and 10⁶ points (8-D latents: a 5-component Gaussian mixture), against
   umap-learn (the reference implementation: pynndescent + numba) on the same data and settings
   (15 neighbours, 200 epochs). umap-learn at 10⁶ points runs only with --peer-million (it takes
   tens of minutes on 2 cores). Above 2·10⁵ points cryoforge lays out coarse to fine (a sample of
   5·10⁴ with the 200 epochs, the rest placed from it, 20 epochs of the whole); on a swiss roll
   of 10⁶ points in 8-D, where the 15-NN score means something (the blobs' points have no local
   structure a plane keeps), that layout is set against one 200-epoch layout of every point.
3. Against cryoDRGN (`versus`): 3,000 AdK-path particles (64 px, SNR 0.1, seed 1, known poses and
   CTF), zdim 8, encoder and decoder 3×256, 10 epochs, trained at 32 px (`--sizes 32,64` adds
   sizes, `--epochs=N` fewer epochs for timings at large sizes): cryoforge's default recipe (`hetero train --lr 5e-4`, the continuous target's) and
   cryoDRGN's `train_vae` with its defaults on the same images downsampled by its own
   `downsample`, poses and CTF from its own STAR parsers. Prints the median seconds per epoch,
   |Spearman(PC1 of the latents, true frame)| of each and the ratio. cryoDRGN comes from the venv
   at $CRYODRGN (default ~/.cache/cryoforge-drgn/bin/cryodrgn; `scripts/bench.sh hetero`
   installs it from PyPI); without it the line says so.
Uses the binary in $CRYOFORGE_BIN."""
import json
import os
import sys
import tempfile
import time

import numpy as np

from cryoforge_run import MODELS, run


def training(tmp):
    star = os.path.join(tmp, "adk.star")
    count = 1000
    _, simulate_seconds = run(["simulate", "particles", "--model", os.path.join(MODELS, "adk_dims_trajectory.pdb.gz"), "--count", str(count),
                               "--box", "64", "--apix", "1.5", "--snr", "0.1", "-o", star])
    peer = count / simulate_seconds
    for size in (64, 32):
        out = os.path.join(tmp, f"run{size}")
        run(["hetero", "train", "--particles", star, "--epochs", "1", "--downsample", str(size), "-o", out])
        with open(os.path.join(out, "state.json")) as f:
            rate = json.load(f)["particles_per_second"][0]
        print(f"train at {size:>3} px (from 64 px, zdim 8, batch 16): {rate:7.1f} particles/s per epoch"
              f"  | simulator projection+CTF {peer:8.1f} particles/s  (training/forward = {rate / peer:.3f}×)", flush=True)
        if size == 64:
            stdout, _ = run(["hetero", "analyze", out, "--clusters", "2", "--traversal", "5", "--json"])
            summary = json.loads(stdout)
            volumes = len(summary["clusters"]) + len(summary["traversal_volumes"])
            print(f"  volumes at 64³: {volumes} decoded in one analysis of {summary['seconds_total']:.1f} s "
                  f"(≤ {summary['seconds_total'] / volumes:.2f} s per volume, PCA/UMAP/GMM included)", flush=True)


def star_column(star, name):
    """One column of a STAR file's particles table, as strings."""
    columns, rows, block = [], [], None
    with open(star) as fh:
        for line in fh:
            line = line.strip()
            if line.startswith("data_"):
                block = line
            elif block != "data_particles" or not line or line.startswith(("loop_", "#")):
                continue
            elif line.startswith("_"):
                columns.append(line.split()[0])
            else:
                rows.append(line.split())
    k = columns.index(name)
    return [r[k] for r in rows]


def spearman_pc1(z, truth):
    from scipy.stats import spearmanr
    z = np.asarray(z, float)
    centred = z - z.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return abs(spearmanr(centred @ vt[0], truth).correlation)


def drgn(cryodrgn, args):
    import subprocess
    done = subprocess.run([cryodrgn, *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"cryodrgn {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def versus(tmp, sizes, epochs_run=10):
    import pickle
    import re
    import statistics
    cryodrgn = os.environ.get("CRYODRGN", os.path.expanduser("~/.cache/cryoforge-drgn/bin/cryodrgn"))
    have_peer = os.access(cryodrgn, os.X_OK)

    def particles(box):
        """The AdK-path set in a box of `box` px over the same 96 Å (64 px at 1.5 Å/px, or finer
        for training sizes above 64), with cryoDRGN's pose and CTF files for it."""
        star = os.path.join(tmp, f"dims{box}.star")
        if not os.path.exists(star):
            run(["simulate", "particles", "--model", os.path.join(MODELS, "adk_dims_trajectory.pdb.gz"), "--count",
                 "3000", "--box", str(box), "--apix", str(96.0 / box), "--snr", "0.1", "--seed", "1", "-o", star])
            if have_peer:
                for kind in ("pose", "ctf"):
                    drgn(cryodrgn, [f"parse_{kind}_star", star, "-o", os.path.join(tmp, f"{kind}{box}.pkl"), "-D",
                                    str(box), "--Apix", str(96.0 / box)])
        return star

    for size in sizes:
        box = max(64, size)
        star = particles(box)
        truth = [float(v) for v in star_column(star, "_cryoforgeModelIndex")]
        out = os.path.join(tmp, f"versus{size}")
        run(["hetero", "train", "--particles", star, "--zdim", "8", "--epochs", str(epochs_run), "--lr", "5e-4",
             "--downsample", str(size), "-o", out])
        with open(os.path.join(out, "state.json")) as f:
            ours_seconds = statistics.median(json.load(f)["epoch_seconds"])
        stdout, _ = run(["hetero", "analyze", out, "--clusters", "5", "--traversal", "0", "--json"])
        ours = json.loads(stdout)["truth"]["spearman_pc1"]
        line = (f"AdK path at {size:>3} px, {epochs_run} epochs: cryoforge {ours_seconds:5.1f} s/epoch |Spearman| {ours:.4f}")
        if have_peer:
            small = os.path.join(tmp, f"d{size}.mrcs")
            drgn(cryodrgn, ["downsample", os.path.join(tmp, f"dims{box}.mrcs"), "-D", str(size), "-o", small])
            vae = os.path.join(tmp, f"vae{size}")
            log = drgn(cryodrgn, ["train_vae", small, "--poses", os.path.join(tmp, f"pose{box}.pkl"), "--ctf",
                                  os.path.join(tmp, f"ctf{box}.pkl"), "--zdim", "8", "-n", str(epochs_run), "--enc-dim", "256",
                                  "--enc-layers", "3", "--dec-dim", "256", "--dec-layers", "3", "-o", vae])
            epochs = [float(h) * 3600 + float(m) * 60 + float(sec) for h, m, sec in
                      re.findall(r"Epoch: \d+ .*Finished in (\d+):(\d+):([\d.]+)", log)]
            peer_seconds = statistics.median(epochs)
            with open(os.path.join(vae, f"z.{epochs_run}.pkl"), "rb") as fh:
                peer = spearman_pc1(pickle.load(fh), truth)
            line += (f"  | cryoDRGN {peer_seconds:5.1f} s/epoch |Spearman| {peer:.4f}"
                     f"  (cryoDRGN/cryoforge time = {peer_seconds / ours_seconds:.2f}×)")
        else:
            line += f"  | cryoDRGN not installed ({cryodrgn})"
        print(line, flush=True)


def umap_peer(data, epochs):
    import umap  # noqa: PLC0415 (optional peer)
    start = time.perf_counter()
    layout = umap.UMAP(n_neighbors=15, n_components=2, min_dist=0.1, n_epochs=epochs, random_state=None).fit_transform(data)
    return time.perf_counter() - start, layout


def quality(data, layout, labels):
    """How well a layout keeps the data's structure: the fraction of each sampled point's 15
    nearest neighbours in the data that are among its 15 nearest in the layout, and the ARI of
    k-means (5) on the layout against the mixture component each point was drawn from."""
    from sklearn.cluster import KMeans  # noqa: PLC0415 (umap-learn brings scikit-learn)
    from sklearn.metrics import adjusted_rand_score  # noqa: PLC0415
    from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415
    rng = np.random.default_rng(2)
    sample = rng.choice(len(data), size=2000, replace=False)
    high = NearestNeighbors(n_neighbors=16).fit(data).kneighbors(data[sample], return_distance=False)[:, 1:]
    low = NearestNeighbors(n_neighbors=16).fit(layout).kneighbors(layout[sample], return_distance=False)[:, 1:]
    kept = np.mean([len(set(h) & set(l)) / 15 for h, l in zip(high, low)])
    ari = adjusted_rand_score(labels, KMeans(5, n_init=3, random_state=0).fit_predict(layout))
    return f"15-NN kept {kept:.3f}, k-means ARI {ari:.3f}"


def roll(tmp):
    """10⁶ points of a swiss roll (a 2-D sheet) turned into 8-D with noise: coarse to fine against
    one layout of every point (--coarse-above 0), time and 15-NN kept."""
    from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415
    rng = np.random.default_rng(5)
    n = 1_000_000
    u, v = rng.uniform(1.5 * np.pi, 4.5 * np.pi, n), rng.uniform(0, 20, n)
    sheet = np.stack([u * np.cos(u), v, u * np.sin(u)] + [np.zeros(n)] * 5, 1)
    rotation, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    data = (sheet @ rotation + rng.normal(scale=0.1, size=(n, 8))).astype(np.float32)
    path = os.path.join(tmp, "roll.npy")
    np.save(path, data)
    sample = np.random.default_rng(2).choice(n, size=2000, replace=False)
    high = NearestNeighbors(n_neighbors=16).fit(data).kneighbors(data[sample], return_distance=False)[:, 1:]
    line = "UMAP of a 10⁶-point swiss roll × 8:"
    for name, extra in (("coarse to fine", []), ("one layout", ["--coarse-above", "0"])):
        out = os.path.join(tmp, "roll_layout.npy")
        _, seconds = run(["hetero", "umap", path, "--epochs", "200", *extra, "-o", out])
        layout = np.load(out)
        low = NearestNeighbors(n_neighbors=16).fit(layout).kneighbors(layout[sample], return_distance=False)[:, 1:]
        kept = np.mean([len(set(h) & set(lo)) / 15 for h, lo in zip(high, low)])
        line += f"  {name} {seconds:6.1f} s (15-NN kept {kept:.3f})"
    print(line, flush=True)


def umaps(tmp, peer_million):
    rng = np.random.default_rng(1)
    try:
        import umap  # noqa: F401, PLC0415
        have_peer = True
    except ImportError:
        have_peer = False
    for n in (100_000, 1_000_000):
        centres = rng.normal(scale=4.0, size=(5, 8))
        labels = rng.integers(0, 5, size=n)
        data = (centres[labels] + rng.normal(size=(n, 8))).astype(np.float32)
        path = os.path.join(tmp, f"z{n}.npy")
        np.save(path, data)
        _, seconds = run(["hetero", "umap", path, "--epochs", "200", "-o", os.path.join(tmp, f"u{n}.npy")])
        line = f"UMAP of {n:>9,} points × 8: cryoforge {seconds:7.1f} s"
        if have_peer:
            line += f" ({quality(data, np.load(os.path.join(tmp, f'u{n}.npy')), labels)})"
        if have_peer and (n < 1_000_000 or peer_million):
            ps, layout = umap_peer(data, 200)
            line += f"  | umap-learn {ps:7.1f} s ({quality(data, layout, labels)})  (umap-learn/cryoforge = {ps / seconds:.2f}×)"
        elif not have_peer:
            line += "  | umap-learn not installed"
        else:
            line += "  | umap-learn not run at 10⁶ (add --peer-million)"
        print(line, flush=True)
    if have_peer:
        roll(tmp)


with tempfile.TemporaryDirectory() as tmp:
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what in ("all", "train"):
        training(tmp)
    if what in ("all", "umap"):
        umaps(tmp, "--peer-million" in sys.argv)
    if what in ("all", "versus"):
        sizes = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--sizes=")), "32")
        epochs_run = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--epochs=")), 10)
        versus(tmp, [int(s) for s in sizes.split(",")], epochs_run)

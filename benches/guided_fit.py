"""Guided-fit time per sample and peak memory: AdK (closed into a 5 Å map of the open state) and
the 31k-atom 7PBL (into its own 6 Å map, shifted), each against the 60 s per-sample budget of
the guided-sampling issue, measured in one run. Uses the binary in $CRYOFORGE_BIN."""
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

BIN = os.environ["CRYOFORGE_BIN"]
ROOT = os.path.join(os.path.dirname(__file__), "..", "assets", "models")
BUDGET_SECONDS = 60.0


def run(args):
    """Runs cryoforge; returns (stdout, wall seconds, peak RSS of the child in MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run([BIN, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"cryoforge {' '.join(args)} failed:\n{done.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return done.stdout, seconds, max(peak, before) / 1024.0


def case(name, model, resolution, tmp, reference=None):
    density = os.path.join(tmp, f"{name}.mrc")
    run(["simulate", "map", "--model", reference or model, "--resolution", str(resolution), "-o", density])
    args = ["fit", "guided", "--map", density, "--model", model, "--resolution", str(resolution), "-o", os.path.join(tmp, f"{name}.cif"), "--json"]
    stdout, wall, peak = run(args)
    report = json.loads(stdout)
    sample = report["samples"][0]
    print(
        f"{name:<6} {report['atoms']:>6} atoms  {sample['seconds']:6.1f} s per sample ({wall:5.1f} s wall)"
        f"  budget/actual = {BUDGET_SECONDS / sample['seconds']:.2f}×  peak memory {peak:7.0f} MiB  cc {sample['correlation']:.4f}"
    )


with tempfile.TemporaryDirectory() as tmp:
    case("AdK", os.path.join(ROOT, "adk_closed.pdb"), 5, tmp, reference=os.path.join(ROOT, "adk_open.pdb"))
    case("7PBL", os.path.join(ROOT, "7pbl.pdb.gz"), 6, tmp)

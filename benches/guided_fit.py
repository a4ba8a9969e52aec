"""Guided-fit time per sample and peak memory: AdK (closed into a 5 Å map of the open state) and
the 31k-atom 7PBL (into its own 6 Å map, shifted), each against the 60 s per-sample budget of
the guided-sampling issue, measured in one run. Uses the binary in $CRYOFORGE_BIN."""
import json
import os
import tempfile

from cryoforge_run import MODELS, run_measured as run

BUDGET_SECONDS = 60.0


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
    case("AdK", os.path.join(MODELS, "adk_closed.pdb"), 5, tmp, reference=os.path.join(MODELS, "adk_open.pdb"))
    case("7PBL", os.path.join(MODELS, "7pbl.pdb.gz"), 6, tmp)

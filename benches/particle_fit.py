"""Particle refinement throughput: particles per second for one epoch (forward, FRC loss,
backward and Adam on burn's Flex backend) on AdK at 64 px and 128 px, against the plain-Rust
forward projection with CTF (the simulator's, no gradient) on the same particles, measured in one
run. Uses the binary in $CRYOFORGE_BIN."""
import json
import os
import tempfile

from cryoforge_run import MODELS, run


def case(box, apix, count, tmp):
    star = os.path.join(tmp, f"p{box}.star")
    # The peer: projecting and CTF-modulating the same particles without gradients.
    _, simulate_seconds = run(["simulate", "particles", "--model", os.path.join(MODELS, "adk_open.pdb"), "--count", str(count),
                               "--box", str(box), "--apix", str(apix), "--snr", "0.1", "-o", star])
    stdout, _ = run(["fit", "particles", "--particles", star, "--model", os.path.join(MODELS, "adk_closed.pdb"), "--resolution", "4",
                     "--epochs", "1", "-o", os.path.join(tmp, f"r{box}.cif"), "--json"])
    report = json.loads(stdout)
    epoch = report["epochs"][0]
    trained = report["particle_count"] - min(64, report["particle_count"] // 5)
    rate = trained / epoch["seconds"]
    peer = count / simulate_seconds
    print(f"{box:>4} px ({apix} Å/px, {report['atoms']} atoms, batch 32): {rate:7.1f} particles/s per epoch"
          f"  | forward-only projection+CTF {peer:8.1f} particles/s  (refinement/forward = {rate / peer:.3f}×)")


with tempfile.TemporaryDirectory() as tmp:
    case(64, 1.5, 1000, tmp)
    case(128, 0.75, 300, tmp)

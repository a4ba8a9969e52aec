"""What the benchmarks share: the cryoforge binary ($CRYOFORGE_BIN), the bundled models, and
running a command with its wall time and the peak memory of the child."""
import os
import resource
import subprocess
import sys
import time

BIN = os.environ["CRYOFORGE_BIN"]
MODELS = os.path.join(os.path.dirname(__file__), "..", "assets", "models")


def run_measured(args):
    """Runs cryoforge; returns (stdout, wall seconds, peak RSS of the children in MiB). Exits with
    cryoforge's error output if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run([BIN, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"cryoforge {' '.join(args)} failed:\n{done.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return done.stdout, seconds, max(peak, before) / 1024.0


def run(args):
    """Runs cryoforge; returns (stdout, wall seconds)."""
    stdout, seconds, _ = run_measured(args)
    return stdout, seconds

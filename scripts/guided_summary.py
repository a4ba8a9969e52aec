"""One line from the JSON summary `cryoforge fit guided --json` prints (read from stdin)."""
import json
import sys

report = json.load(sys.stdin)
best = report["samples"][0]
start = report["start"]["reference"]["ca_rmsd_angstrom"]
print(
    f"{sys.argv[1]:<28} Cα RMSD {best['reference']['ca_rmsd_angstrom']:6.3f} Å (start {start:.2f})"
    f"  cc {best['correlation']:.4f}  moved {best['rmsd_to_start_angstrom']:5.2f} Å"
    f"  bonds rms {best['geometry']['bond_rmsd_angstrom']:.3f} Å  clashes {best['geometry']['clashes']}"
    f"  {report['seconds']:5.1f} s"
)

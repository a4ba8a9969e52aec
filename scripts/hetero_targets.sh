#!/usr/bin/env bash
# The heterogeneity-explorer targets, on data simulated with a fixed seed:
#   continuous:    3,000 particles from the AdK closed→open DIMS trajectory (98 frames; 64 px,
#                  1.5 Å/px, SNR 0.1, CTF, known poses); target |Spearman| ≥ 0.9 between the first
#                  latent PC (or UMAP axis) and the true frame index.
#   compositional: 10,000 particles of five different proteins (AdK 1AKE, Cro 1ORC, and three
#                  ribosomal proteins of 6ZU5: chains SGG, SA0, LV0) at SNR 0.01, known poses;
#                  target ARI ≥ 0.95 and AMI ≥ 0.95 of the clusters against the truth.
#   scripts/hetero_targets.sh [continuous|compositional|all] [extra `hetero train` options…]
# The recipes: continuous zdim 8, 10 epochs, lr 5e-4, trained at 32 px with the default 8 encoder templates and decoder frequency limit (about 1.5 min on 2 cores);
# compositional zdim 128, 10 epochs, lr 5e-4, trained at 24 px with 32 pose-aware encoder
# templates (about 3 min), GMM clusters on a 16-D UMAP, then 3D classification seeded by them
# at the full 64 px (`--classify 20`, 2–4 min).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh
which=${1:-all}
[[ $# -gt 0 ]] && shift
out=out/hetero_targets
mkdir -p "$out"
models=assets/models

continuous() {
  "$bin" simulate particles --model "$models/adk_dims_trajectory.pdb.gz" --count 3000 --box 64 --apix 1.5 \
    --snr 0.1 --seed 1 -o "$out/dims.star" 2>/dev/null
  "$bin" hetero train --particles "$out/dims.star" --zdim 8 --epochs 10 --lr 5e-4 --downsample 32 -o "$out/dims_run" "$@"
  "$bin" hetero analyze "$out/dims_run" --clusters 5 --traversal 5
}

# One chain of an mmCIF file as a small mmCIF (the atom_site loop only).
extract_chain() { # file.cif.gz chain out.cif
  python3 - "$@" <<'EOF'
import gzip, sys
path, chain, out = sys.argv[1:4]
cols, rows = [], []
with gzip.open(path, "rt") as f:
    for line in f:
        if line.startswith("_atom_site."):
            cols.append(line.strip())
        elif cols and line.startswith(("ATOM", "HETATM")):
            fields = line.split()
            d = dict(zip((c.split(".", 1)[1] for c in cols), fields))
            if d["auth_asym_id"] == chain and fields[0] == "ATOM":
                rows.append(line)
        elif cols and rows and line.startswith("#"):
            break
with open(out, "w") as f:
    f.write(f"data_{chain}\nloop_\n" + "\n".join(cols) + "\n" + "".join(rows) + "#\n")
EOF
}

compositional() {
  local proteins=("$models/1ake.pdb" "$models/gemmi_1orc.pdb")
  for chain in SGG SA0 LV0; do
    extract_chain "$models/6zu5.cif.gz" "$chain" "$out/6zu5_$chain.cif"
    proteins+=("$out/6zu5_$chain.cif")
  done
  local args=()
  for p in "${proteins[@]}"; do args+=(--model "$p"); done
  "$bin" simulate particles "${args[@]}" --count 10000 --box 64 --apix 1.5 --snr 0.01 --seed 1 \
    -o "$out/mixture.star" 2>/dev/null
  "$bin" hetero train --particles "$out/mixture.star" --zdim 128 --epochs 10 --lr 5e-4 --downsample 24 --templates 32 \
    -o "$out/mixture_run" "$@"
  # The GMM clusters of the latents alone, then the same clusters refined by 3D classification.
  "$bin" hetero analyze "$out/mixture_run" --clusters 5 --traversal 0
  "$bin" hetero analyze "$out/mixture_run" --clusters 5 --traversal 0 --classify 20
}

case $which in
  continuous) continuous "$@" ;;
  compositional) compositional "$@" ;;
  all) continuous "$@"; compositional "$@" ;;
  *) echo "usage: $0 [continuous|compositional|all] [hetero train options…]" >&2; exit 2 ;;
esac

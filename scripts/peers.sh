#!/usr/bin/env bash
# Sourced by test.sh: a Python venv with the field's reference tools (numpy, mrcfile, gemmi, biotite,
# starfile), which the peer tests use to check that files cryoforge writes read correctly elsewhere
# and that cryoforge reads real files as they do.
venv="${CRYOFORGE_VENV:-$HOME/.cache/cryoforge-venv}"
if ! "$venv/bin/python" -c 'import numpy, mrcfile, gemmi, starfile, biotite' >/dev/null 2>&1; then
  echo "setting up $venv (numpy, mrcfile, gemmi, starfile, biotite)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check numpy mrcfile gemmi starfile biotite scikit-image
fi
export CRYOFORGE_PYTHON="$venv/bin/python"

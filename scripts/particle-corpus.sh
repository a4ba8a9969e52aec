#!/usr/bin/env bash
# Brings the public particle-metadata corpus the real-STAR test reads, once, into a cache outside
# the clone, and prints its folder: the test data of cryoDRGN (PyPI sdist cryodrgn 4.3.1: RELION
# 3.0 tables without a pixel size, RELION 3.1 with one and six optics groups, RELION 5,
# subtomogram-style tables, cryoSPARC .cs, the stacks and maps beside them). cryoDRGN is
# GPL-3.0, so these files are used from the cache and never committed. Safe to run again: a
# finished cache is reused. Needs the peer venv (scripts/peers.sh) for pip.
set -euo pipefail
cache="${CRYOFORGE_CORPUS_CACHE:-$HOME/.cache/cryoforge-corpus}/particles"
version=4.3.1
out="$cache/cryodrgn-$version"
if [ -f "$out/.complete" ]; then
  echo "$out/tests/data"
  exit 0
fi
mkdir -p "$cache"
cd "$cache"
python="${CRYOFORGE_PYTHON:-python3}"
if [ ! -f "cryodrgn-$version.tar.gz" ]; then
  "$python" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
    "cryodrgn==$version" -d . >&2
fi
rm -rf "$out"
tar xzf "cryodrgn-$version.tar.gz" "cryodrgn-$version/tests/data" "cryodrgn-$version/LICENSE.txt"
touch "$out/.complete"
echo "$out/tests/data"

#!/usr/bin/env bash
# Brings the public model-file corpus the real-files test reads, once, into a cache outside the
# clone, and prints its folder. Sources: the test data of theseus (Debian theseus-examples),
# ProDy (Debian python3-prody-tests), MDAnalysis (PyPI MDAnalysisTests 2.11.0) and Biopython
# (PyPI biopython 1.88). Needs the peer venv (scripts/peers.sh) for pip.
set -euo pipefail
cache="${CRYOFORGE_CORPUS_CACHE:-$HOME/.cache/cryoforge-corpus}"
out="$cache/x"
if [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$cache"
cd "$cache"
python="${CRYOFORGE_PYTHON:-python3}"
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
for pkg in theseus-examples python3-prody-tests; do
  if ! ls "${pkg}"_*.deb >/dev/null 2>&1; then
    # apt-get download needs the package lists; fetch them once if this machine has none.
    apt-get download "$pkg" >/dev/null 2>&1 || { $sudo_cmd apt-get update -qq >/dev/null && apt-get download "$pkg" >/dev/null; }
  fi
done
for spec in MDAnalysisTests==2.11.0 biopython==1.88; do
  name="$(echo "${spec%%==*}" | tr '[:upper:]' '[:lower:]')"
  if ! ls "${name}"-*.tar.gz >/dev/null 2>&1; then
    "$python" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: "$spec" -d . >&2
  fi
done
rm -rf "$out"
mkdir -p "$out"
for deb in *.deb; do
  mkdir -p "$out/${deb%%_*}"
  dpkg-deb -x "$deb" "$out/${deb%%_*}"
done
for tarball in *.tar.gz; do
  mkdir -p "$out/${tarball%%-*}"
  tar xzf "$tarball" -C "$out/${tarball%%-*}"
done
touch "$out/.complete"
echo "$out"

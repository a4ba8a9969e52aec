#!/usr/bin/env bash
# Installs the Debian packages cryoforge's build, tests and demo need, only those missing.
# Safe to run again; needs root (or sudo) only when something is missing.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# Software Vulkan (llvmpipe), so the WGSL kernels are tested without a GPU.
dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || need+=(mesa-vulkan-drivers)
dpkg -s libvulkan1 >/dev/null 2>&1 || need+=(libvulkan1)
# Libraries the window loads at run time (X11 through winit).
for pkg in libxkbcommon-x11-0 libx11-xcb1 libxcursor1 libxi6 libxrandr2; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# The peer checks (numpy, mrcfile, gemmi) live in a venv.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: no Rust toolchain (cargo) found; install Rust $(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml) with rustup first" >&2
  exit 1
fi

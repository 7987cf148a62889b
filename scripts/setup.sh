#!/usr/bin/env bash
# scripts/setup.sh: install the Debian packages rdt needs (when missing) and build it.
#   scripts/setup.sh [BUILD_DIR] [extra cmake args...]     (default BUILD_DIR: build)
# Installs with apt-get (as root, or through sudo).  Set RDT_SKIP_APT=1 to skip.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
shift || true

PACKAGES=(
  build-essential cmake pkg-config git
  libyaml-dev libopenblas-dev libhdf5-dev zlib1g-dev libpng-dev
  libmujoco-dev libosmesa6-dev libegl-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev ffmpeg
  libopenmpi-dev openmpi-bin
  sentencepiece libsentencepiece-dev
  python3
)

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

if [ "${RDT_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null; then
  install_packages
fi

JOBS=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$BUILD_DIR" -j"$JOBS"

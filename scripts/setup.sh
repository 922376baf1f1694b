#!/usr/bin/env bash
# Installs what Pitchside needs on Debian/Ubuntu: OpenCV (core, imgproc, imgcodecs, videoio)
# and libclang for the opencv crate's bindings, Mesa's software Vulkan for WGPU tests,
# nats-server for the work-queue tests.
# `--deps-only` stops after the packages; otherwise it also fetches the demo assets.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[[ "$(id -u)" != 0 ]] && SUDO="sudo"
# libav*-dev: the video decoder (ffmpeg-next); ffmpeg: test clips and `bench --vs-ffmpeg`.
PKGS=(libopencv-dev clang libclang-dev pkg-config mesa-vulkan-drivers libvulkan1 python3-pip
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev ffmpeg
  nats-server)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
if ! command -v cargo >/dev/null; then
  echo "setup: Rust is missing: install it from https://rustup.rs and re-run" >&2
  exit 1
fi
[[ "${1:-}" == "--deps-only" ]] && exit 0
bash scripts/fetch-assets.sh

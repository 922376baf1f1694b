#!/usr/bin/env bash
# Packs what scripts/gpu/device-check.sh needs on the GPU machine (no crates.io, no OpenCV
# there) into .gpu/bundle (git-ignored; carry it with the device tool, plus .gpu/cache when
# an earlier run returned cubecl's autotune cache). Run on the CPU machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
T="${CARGO_TARGET_DIR:-target}"
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"  # cudarc needs no nvcc then
cargo build -p pitchside-models --features cuda --example device_check
mkdir -p .gpu/lib .gpu/anchor/whl
strip -o .gpu/device_check "$T/debug/examples/device_check"
# The example links libopencv_core only (no image I/O): bring it and what it needs, minus glibc.
ldd .gpu/device_check | awk '$3 ~ /^\// {print $3}' \
  | grep -vE '/(libc|libm|libgcc_s|libstdc\+\+|libpthread|libdl|librt)\.so' \
  | xargs -I{} cp -L {} .gpu/lib/
[[ -f .gpu/parity/yolov8n-railway.json ]] || python3 tools/gpu/make_parity_inputs.py
cp ../shared/gpu-anchor/anchor.py .gpu/anchor/
cp ../shared/gpu-anchor/whl/ultralytics-*.whl ../shared/gpu-anchor/whl/ultralytics_thop-*.whl .gpu/anchor/whl/
tar -C .gpu -cJf .gpu.tar.xz device_check lib parity anchor
mkdir -p .gpu/bundle && mv .gpu.tar.xz .gpu/bundle/
du -sh .gpu/bundle/.gpu.tar.xz

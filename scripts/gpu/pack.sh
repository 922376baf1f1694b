#!/usr/bin/env bash
# Packs what scripts/gpu/device-check.sh needs on the GPU machine (no crates.io, no OpenCV
# there) into .gpu/bundle (git-ignored; carry it with the device tool, plus .gpu/cache when
# an earlier run returned a kernel cache; the committed gpu-cache/ travels with the tree).
# Run on the CPU machine, before the GPU session's clock starts:
#   device_check       --features cuda               (parity, tune, Burn CUDA forward)
#   device_check_wgpu  --features wgpu               (burn-wgpu, WGSL; the test build's deps)
#   device_check_vk    --features wgpu,burn/vulkan   (burn-wgpu, SPIR-V: rebuilds the GPU
#                      half of Burn once, ~20 CPU-minutes; VULKAN=0 skips it)
set -euo pipefail
cd "$(dirname "$0")/../.."
T="${CARGO_TARGET_DIR:-target}"
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"  # cudarc needs no nvcc then
mkdir -p .gpu/lib .gpu/anchor/whl
build() {  # build NAME FEATURES: one device_check variant, stripped, as .gpu/NAME
  cargo build -p pitchside-models --features "$2" --example device_check
  strip -o ".gpu/$1" "$T/debug/examples/device_check"
}
build device_check cuda
build device_check_wgpu wgpu
[[ "${VULKAN:-1}" == 1 ]] && build device_check_vk wgpu,burn/vulkan
# The examples link libopencv_core only (no image I/O): bring it and what it needs, minus glibc.
for b in .gpu/device_check*; do ldd "$b"; done | awk '$3 ~ /^\// {print $3}' | sort -u \
  | grep -vE '/(libc|libm|libgcc_s|libstdc\+\+|libpthread|libdl|librt)\.so' \
  | xargs -I{} cp -L {} .gpu/lib/
[[ -f .gpu/parity/yolov8n-railway.json ]] || python3 tools/gpu/make_parity_inputs.py
ANCHOR="${ANCHOR_DIR:-$( [[ -d shared/gpu-anchor ]] && echo shared/gpu-anchor || echo ../shared/gpu-anchor )}"
cp "$ANCHOR/anchor.py" .gpu/anchor/
cp "$ANCHOR"/whl/ultralytics-*.whl "$ANCHOR"/whl/ultralytics_thop-*.whl .gpu/anchor/whl/
tar -C .gpu -cJf .gpu.tar.xz $(cd .gpu && ls -d device_check* lib parity anchor)
mkdir -p .gpu/bundle && mv .gpu.tar.xz .gpu/bundle/
du -sh .gpu/bundle/.gpu.tar.xz

#!/usr/bin/env bash
# Packs what scripts/gpu/device-check.sh needs on the GPU machine (no crates.io, no OpenCV
# there) into .gpu/bundle (git-ignored; carry it with the device tool, plus .gpu/cache when
# an earlier run returned cubecl's autotune cache). Run on the CPU machine.
#
# Two kinds of payload (the bundle must stay under the 64 MiB the device tool carries):
#   - the models-only device_check example (CUDA parity and model throughput; it links
#     libopencv_core, which travels in lib/), with the parity inputs and the PyTorch anchor;
#   - with WITH_PITCHSIDE=1, also the self-contained `pitchside` (cuda; no OpenCV, FFmpeg
#     linked statically: scripts/build-self-contained.sh) with a two-model deployment and
#     vtest.avi, so device-check.sh runs `pitchside bench` on the GPU host: the whole
#     pipeline, decoding included. PITCHSIDE_ONLY=1 packs that alone (~25 MiB).
set -euo pipefail
cd "$(dirname "$0")/../.."
T="${CARGO_TARGET_DIR:-target}"
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"  # cudarc needs no nvcc then
rm -rf .gpu/pipeline .gpu/pitchside
parts=()
if [[ "${PITCHSIDE_ONLY:-0}" != 1 ]]; then
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
  parts+=(device_check lib parity anchor)
fi
if [[ "${WITH_PITCHSIDE:-0}" == 1 || "${PITCHSIDE_ONLY:-0}" == 1 ]]; then
  BIN="${PITCHSIDE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/pitchside/target}/self-contained/pitchside-cuda}"
  [[ -x "$BIN" ]] || bash scripts/build-self-contained.sh cuda
  cp "$BIN" .gpu/pitchside
  mkdir -p .gpu/pipeline
  cp assets/vtest.avi assets/yolov8n-railway.pt assets/yolo11n-pose.pt .gpu/pipeline/
  # configs/cuda.yaml's settings with the demo weights beside the config.
  sed -e 's|\.\./assets/|./|g' configs/cuda.yaml > .gpu/pipeline/config.yaml
  parts+=(pitchside pipeline)
fi
tar -C .gpu -cJf .gpu.tar.xz "${parts[@]}"
mkdir -p .gpu/bundle && mv .gpu.tar.xz .gpu/bundle/
du -sh .gpu/bundle/.gpu.tar.xz

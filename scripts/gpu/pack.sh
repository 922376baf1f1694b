#!/usr/bin/env bash
# Packs what scripts/gpu/device-check.sh needs on the GPU machine (no crates.io, no OpenCV
# there) into .gpu/bundle (git-ignored; carry it with the device tool, plus .gpu/cache when
# an earlier run returned a kernel cache; the committed gpu-cache/ travels with the tree).
# Run on the CPU machine, before the GPU session's clock starts. The bundle must stay under
# the 64 MiB the device tool carries. Payloads:
#   device_check       --features cuda               (parity, tune, Burn CUDA forward)
#   device_check_wgpu  --features wgpu               (burn-wgpu, WGSL; the test build's deps)
#   device_check_vk    --features wgpu,burn/vulkan   (burn-wgpu, SPIR-V: rebuilds the GPU
#                      half of Burn once, ~20 CPU-minutes; VULKAN=0 skips it), packed
#                      alone into .gpu/bundle-vk (carry it in a second call)
#   (all three without OpenCV: glibc alone; with the parity inputs and the anchor)
#   with WITH_PITCHSIDE=1, also the self-contained `pitchside` (cuda; no OpenCV, FFmpeg
#   linked statically: scripts/build-self-contained.sh) with a two-model deployment and
#   vtest.avi, so device-check.sh can run `pitchside bench` on the GPU host: the whole
#   pipeline, decoding included. PITCHSIDE_ONLY=1 packs that alone (~25 MiB).
#   with TORCH=1 (the `torch` plan of device-check.sh, issues 22/23), also LibTorch's
#   payloads, built against PyPI's torch 2.11.0 (scripts/torch-env.sh), the GPU hosts' own
#   PyTorch, which they link there (nothing of LibTorch travels):
#     device_check_torch  --no-default-features --features cpu,torch (no OpenCV)
#     pitchside-torch     the self-contained `pitchside` with `torch` (release, FFmpeg static)
#     pipeline-sv/        the Score Vision deployment with random-weight YOLOv8x and
#                         YOLOv8x-pose (architecture YAMLs: 4 classes, 32 keypoints) and the
#                         750-frame 1080p H.264 clip (scripts/make-clip.sh)
#     tools/torch_yardstick.py, and the ultralytics wheels for it; the parity inputs of
#                         yolo11n-pose and yolov8n-railway
#   TORCH_ONLY=1 packs those (with the parity inputs) alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
T="${CARGO_TARGET_DIR:-target}"
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"  # cudarc needs no nvcc then
rm -rf .gpu/pipeline .gpu/pitchside .gpu/pipeline-sv .gpu/pitchside-torch .gpu/tools
mkdir -p .gpu
parts=()
ANCHOR="${ANCHOR_DIR:-$( [[ -d shared/gpu-anchor ]] && echo shared/gpu-anchor || echo ../shared/gpu-anchor )}"
anchor_wheels() {
  mkdir -p .gpu/anchor/whl
  cp "$ANCHOR/anchor.py" .gpu/anchor/
  cp "$ANCHOR"/whl/ultralytics-*.whl "$ANCHOR"/whl/ultralytics_thop-*.whl .gpu/anchor/whl/
}
parity_inputs() {
  [[ -f .gpu/parity/yolov8n-railway.json ]] || python3 tools/gpu/make_parity_inputs.py
}
if [[ "${TORCH:-0}" == 1 || "${TORCH_ONLY:-0}" == 1 ]]; then
  # shellcheck source=../torch-env.sh
  source scripts/torch-env.sh
  cargo build -p pitchside-models --no-default-features --features cpu,torch --example device_check
  strip -o .gpu/device_check_torch "$T/debug/examples/device_check"
  PITCHSIDE_TORCH_BIN="${PITCHSIDE_TORCH_BIN:-$T/self-contained/pitchside-torch}"
  [[ -x "$PITCHSIDE_TORCH_BIN" && "${REBUILD:-1}" == 0 ]] || bash scripts/build-self-contained.sh torch
  strip -o .gpu/pitchside-torch "$PITCHSIDE_TORCH_BIN"
  bash scripts/make-clip.sh
  mkdir -p .gpu/pipeline-sv .gpu/tools
  cp assets/clip-1080p25.mp4 .gpu/pipeline-sv/clip.mp4
  # Score Vision's heads on ultralytics' YOLOv8 architectures, random weights (the names
  # line goes: a random-weight model names its classes class0..class3).
  sed -e 's/^nc: .*/nc: 4/' models/archs/yolov8.yaml > .gpu/pipeline-sv/yolov8x-sv.yaml
  sed -e 's/^nc: .*/nc: 1/' -e 's/^kpt_shape: .*/kpt_shape: [32, 3]/' models/archs/yolov8-pose.yaml \
    > .gpu/pipeline-sv/yolov8x-sv-pose.yaml
  sed -e 's|^device: .*|device: torch:cuda|' -e 's|football-player-detection.pt|yolov8x-sv.yaml|' \
      -e 's|football-pitch-detection.pt|yolov8x-sv-pose.yaml|' -e '/^    names: /d' \
      configs/score-vision.yaml > .gpu/pipeline-sv/config.yaml
  cp tools/gpu/torch_yardstick.py .gpu/tools/
  anchor_wheels
  parity_inputs
  # Two of the three parity models (yolov8s-fall's 22 MB would break the 64 MiB carry).
  parts+=(device_check_torch pitchside-torch pipeline-sv tools anchor
    $(cd .gpu && ls parity/yolo11n-pose.* parity/yolov8n-railway.*))
fi
if [[ "${PITCHSIDE_ONLY:-0}" != 1 && "${TORCH_ONLY:-0}" != 1 ]]; then
  mkdir -p .gpu/anchor/whl
  build() {  # build NAME FEATURES: one device_check variant, stripped, as .gpu/NAME
    # No OpenCV (the examples need none): glibc alone at run time, nothing else to carry.
    cargo build -p pitchside-models --no-default-features --features "cpu,$2" --example device_check
    strip -o ".gpu/$1" "$T/debug/examples/device_check"
  }
  build device_check cuda
  build device_check_wgpu wgpu
  for b in .gpu/device_check .gpu/device_check_wgpu; do
    extra="$(ldd "$b" | awk '{print $1}' | grep -vE '^(linux-vdso|/lib64/ld-linux|libc|libm|libgcc_s|libstdc\+\+|libpthread|libdl|librt)\b' || true)"
    [[ -z "$extra" ]] || { echo "pack: $b needs libraries the GPU host lacks: $extra" >&2; exit 1; }
  done
  parity_inputs
  anchor_wheels
  parts+=(device_check device_check_wgpu anchor)
  # The `parity` plan's three models; with TORCH=1 (the `torch` plan, which checks two) the
  # two above: yolov8s-fall's 22 MB would break the 64 MiB carry.
  [[ "${TORCH:-0}" == 1 ]] || parts+=(parity)
  # burn-wgpu with Burn's `vulkan` feature (SPIR-V): its own bundle, .gpu/bundle-vk, for a
  # second call (beside the full bundle and the tree it would pass the 64 MiB); device-check.sh
  # unpacks it when carried. VULKAN=0 skips it (its build rebuilds Burn's GPU half once).
  if [[ "${VULKAN:-1}" == 1 ]]; then
    build device_check_vk wgpu,burn/vulkan
    mkdir -p .gpu/bundle-vk
    tar -C .gpu -cJf .gpu/bundle-vk/.gpu-vk.tar.xz device_check_vk
    du -sh .gpu/bundle-vk/.gpu-vk.tar.xz
  fi
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
# One entry per payload, whichever blocks packed it.
mapfile -t parts < <(printf '%s\n' "${parts[@]}" | awk '!seen[$0]++')
tar -C .gpu -cJf .gpu.tar.xz "${parts[@]}"
mkdir -p .gpu/bundle && mv .gpu.tar.xz .gpu/bundle/
du -sh .gpu/bundle/.gpu.tar.xz
size=$(stat -c %s .gpu/bundle/.gpu.tar.xz)
(( size <= 64 * 1024 * 1024 )) || { echo "pack: the bundle is over the 64 MiB the device tool carries" >&2; exit 1; }

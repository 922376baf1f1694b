#!/usr/bin/env bash
# Runs ON the lent GPU machine (packed by scripts/gpu/pack.sh; carry .gpu/bundle, and
# .gpu/cache if an earlier run brought a kernel cache back):
#   bash scripts/gpu/device-check.sh PLAN      PLAN: tune | measure | parity (default)
#
#   tune     issue 15 part B, run 1: cold-tunes the fp16 batch-32 shapes of YOLOv8x (detect,
#            4 classes), YOLOv8x-pose (32 keypoints) and YOLOv8n into the kernel cache, the
#            pipeline's 1080p shape (640x384) first, then the anchor's 640x640.
#   measure  run 2, warm from that cache: the PyTorch yardstick (shared/gpu-anchor), then
#            Burn's forward on the same models and batches, then burn-wgpu on the same GPU
#            with the default WGSL compiler and with Burn's `vulkan` (SPIR-V) feature.
#   parity   Burn CUDA fp32/fp16 vs ultralytics on real weights (the issue 3/7 check).
# Every result is one JSON line appended to $OUT/results.jsonl as soon as it exists; the
# whole run keeps to DEADLINE_S (default 450: a run must fit in 8 minutes with the start).
#
# Kernel cache (models/src/kernel_cache.rs): cubecl's autotune results and compiled PTX live
# in $XDG_CACHE_HOME/pitchside/kernels/<gpu name>/. The committed caches (gpu-cache/, one
# folder per GPU model) and a carried .gpu/cache/kernels.tgz (newer: last run's) are
# restored there first; after every step the whole root is packed to $OUT/kernels.tgz, so a
# run cut short still brings back what it tuned. Back on the CPU machine:
#   bash scripts/gpu/keep-cache.sh FILES_AT/kernels.tgz   (then commit gpu-cache/)
# Measured on an H200 (BENCHMARKS.md): a cold YOLOv8n fp32 first forward took 219 s (every
# conv/matmul shape compiled with NVRTC and benchmarked), 12.5 s with the autotune cache.
# CUBECL_LOG=1 also returns cubecl's autotune decisions ($OUT/autotune.txt).
#
# Dry run on the CPU machine (lavapipe stands in for the GPU; tiny shapes; see BENCHMARKS.md):
#   DRY=1 bash scripts/gpu/device-check.sh tune; DRY=1 bash scripts/gpu/device-check.sh measure
set -u
cd "$(dirname "$0")/../.."
PLAN="${1:-parity}"
OUT="${OUT:-/tmp/pitchside-gpu-out}"; mkdir -p "$OUT"
START=$(date +%s); DEADLINE_S="${DEADLINE_S:-450}"
G=/tmp/pitchside-gpu; mkdir -p "$G"
if [[ -f .gpu/bundle/.gpu.tar.xz ]]; then tar -C "$G" -xJf .gpu/bundle/.gpu.tar.xz
elif [[ -d .gpu ]]; then cp -r .gpu/. "$G/"; fi
LOG="$OUT/check.log"; RES="$OUT/results.jsonl"
log() { echo "[device-check $PLAN $(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }

# Shapes and devices; DRY=1 shrinks them for lavapipe.
if [[ "${DRY:-0}" == 1 ]]; then
  : "${DEVICE:=wgpu}" "${HALF:=wgpu}" "${BATCH:=2}" "${SQUARE:=64}" "${RECT:=64x32}" "${ITERS:=2}"
  : "${BIN:=${CARGO_TARGET_DIR:-target}/debug/examples/device_check}"
  : "${BIN_WGPU:=$BIN}" "${SKIP_ANCHOR:=1}"
else
  : "${DEVICE:=cuda}" "${HALF:=cuda-half}" "${BATCH:=32}" "${SQUARE:=640}" "${RECT:=640x384}" "${ITERS:=10}"
  : "${BIN:=$G/device_check}"
fi
BIN_WGPU="${BIN_WGPU:-$G/device_check_wgpu}"; BIN_VK="${BIN_VK:-$G/device_check_vk}"

# The kernel cache: restored from the committed folder, then from the carried archive.
export XDG_CACHE_HOME="${XDG_CACHE_HOME:-/tmp/pitchside-xdg}"
KROOT="$XDG_CACHE_HOME/pitchside/kernels"; mkdir -p "$KROOT"
[[ -d gpu-cache ]] && cp -a gpu-cache/. "$KROOT/"
[[ -f .gpu/cache/kernels.tgz ]] && tar -C "$KROOT" -xzf .gpu/cache/kernels.tgz
save_cache() { tar -C "$KROOT" -czf "$OUT/kernels.tgz.part" . && mv "$OUT/kernels.tgz.part" "$OUT/kernels.tgz"; }

# cubecl compiles kernels with NVRTC and needs CUDA's headers: find the toolkit.
if [[ -z "${CUDA_PATH:-}" ]]; then
  if [[ -d /usr/local/cuda/include ]]; then CUDA_PATH=/usr/local/cuda
  elif command -v nvcc >/dev/null; then CUDA_PATH="$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")"; fi
fi
export CUDA_PATH="${CUDA_PATH:-/usr/local/cuda}"
NVRTC_DIR="$(dirname "$(find "$CUDA_PATH"/ /usr/lib/x86_64-linux-gnu /opt -name 'libnvrtc.so*' 2>/dev/null | head -1)" 2>/dev/null)"
export LD_LIBRARY_PATH="$G/lib:$CUDA_PATH/lib64:${NVRTC_DIR:-.}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CUBECL_AUTOTUNE_LEVEL="${CUBECL_AUTOTUNE_LEVEL:-balanced}"
[[ "${CUBECL_LOG:-0}" == 1 ]] && export CUBECL_DEBUG_LOG=/tmp/cubecl.log
log "bin=$BIN device=$DEVICE/$HALF batch=$BATCH sizes=$SQUARE,$RECT autotune=$CUBECL_AUTOTUNE_LEVEL kernels=$KROOT ($(find "$KROOT" -name '*.json.log' -exec cat {} + 2>/dev/null | wc -l) autotune entries restored) nvrtc=${NVRTC_DIR:-none}"
nvidia-smi -L 2>&1 | tee -a "$LOG" || true

left() { echo $(( DEADLINE_S - ( $(date +%s) - START ) )); }
step() {  # step MAX_SECONDS BIN ARGS...: one run, bounded by the deadline, cache saved after
  local max=$1 bin=$2; shift 2
  local t=$(( $(left) < max ? $(left) : max ))
  if (( t < 15 )); then log "skip $* (deadline)"; echo "{\"skipped\":\"deadline\",\"command\":\"$*\"}" >> "$RES"; return; fi
  if [[ ! -x "$bin" ]]; then log "skip $* ($bin missing)"; echo "{\"skipped\":\"no $bin\",\"command\":\"$*\"}" >> "$RES"; return; fi
  local t0=$(date +%s)
  timeout -k 5 "$t" "$bin" "$@" >> "$RES" 2>> "$LOG"
  local rc=$?
  (( rc == 124 || rc == 137 )) && echo "{\"timed_out_s\":$t,\"command\":\"$*\"}" >> "$RES"
  log "rc=$rc $(( $(date +%s) - t0 ))s: $*  -> $(tail -1 "$RES" | cut -c1-400)"
  save_cache
}
anchor() {
  [[ "${SKIP_ANCHOR:-0}" == 1 || ! -f "$G/anchor/anchor.py" ]] && { log "skip anchor"; return; }
  local t=$(( $(left) < 150 ? $(left) : 150 ))
  (( t < 60 )) && { log "skip anchor (deadline)"; return; }
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/anchor-site "$G"/anchor/whl/*.whl >> "$LOG" 2>&1
  YOLO_OFFLINE=true YOLO_AUTOINSTALL=false ULTRALYTICS_SKIP_REQUIREMENTS_CHECKS=1 YOLO_VERBOSE=false \
  YOLO_CONFIG_DIR=/tmp/anchor_ycfg MPLBACKEND=Agg PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/anchor-site \
    timeout -k 5 "$t" python3 "$G/anchor/anchor.py" --out "$OUT/anchor.json" --sections env,models \
      --models "${ANCHOR_MODELS:-yolov8n,yolov8x,yolov8n-pose32}" --video-models none --batches 1,32 \
      --frames 64 --e2e-calls 2 --e2e-b1-calls 4 --budget-s $(( t - 10 )) > "$OUT/anchor.log" 2>&1
  log "anchor rc=$? $(grep -h 'img/s' "$OUT/anchor.log" | tr '\n' ';' | cut -c1-900)"
}
A=models/archs
# bench ARGS: ARCH BATCH SIZE ITERS [NC [KPTS]]
X="$A/yolov8x.yaml"; XP="$A/yolov8x-pose.yaml"; N="$A/yolov8n.yaml"
case "$PLAN" in
  tune)
    # Cold: each shape compiles and benchmarks every candidate kernel (minutes). The
    # pipeline's 1080p shape of each model first; ITERS 1: the timing is run 2's job.
    step 200 "$BIN" bench "$HALF" "$X"  "$BATCH" "$RECT"   1 4
    step 150 "$BIN" bench "$HALF" "$XP" "$BATCH" "$RECT"   1 1 32
    step 120 "$BIN" bench "$HALF" "$N"  "$BATCH" "$RECT"   1 4
    step 150 "$BIN" bench "$HALF" "$X"  "$BATCH" "$SQUARE" 1 4
    step 120 "$BIN" bench "$HALF" "$N"  "$BATCH" "$SQUARE" 1 4
    ;;
  measure)
    anchor
    # Warm: the shapes run 1 tuned (first_forward_s says whether the cache held).
    step 60 "$BIN" bench "$HALF" "$X"  "$BATCH" "$SQUARE" "$ITERS" 4
    step 60 "$BIN" bench "$HALF" "$X"  "$BATCH" "$RECT"   "$ITERS" 4
    step 60 "$BIN" bench "$HALF" "$N"  "$BATCH" "$SQUARE" "$ITERS" 4
    step 60 "$BIN" bench "$HALF" "$N"  "$BATCH" "$RECT"   "$ITERS" 4
    step 60 "$BIN" bench "$HALF" "$XP" "$BATCH" "$RECT"   "$ITERS" 1 32
    step 45 "$BIN" bench "$HALF" "$N"  1 "$SQUARE" "$ITERS" 4
    # burn-wgpu on the same GPU (cold: minimal tuning), WGSL then SPIR-V; `gpu` in each line
    # names the adapter (a software one means no Vulkan driver for the GPU).
    CUBECL_AUTOTUNE_LEVEL=minimal step 90 "$BIN_WGPU" bench wgpu "$N" "$BATCH" "$SQUARE" "$ITERS" 4
    CUBECL_AUTOTUNE_LEVEL=minimal step 90 "$BIN_VK" bench wgpu "$N" "$BATCH" "$SQUARE" "$ITERS" 4
    ;;
  parity)
    # Correctness first: a cold cache makes the first of these the slow one.
    step 300 "$BIN" parity "$DEVICE" "$G/parity" yolo11n-pose
    step 150 "$BIN" parity "$DEVICE" "$G/parity" yolov8s-fall
    step 120 "$BIN" parity "$HALF" "$G/parity" yolo11n-pose
    step 90  "$BIN" parity "$DEVICE" "$G/parity" yolov8n-railway
    ;;
  *) log "unknown plan $PLAN (tune | measure | parity)"; exit 2 ;;
esac
if [[ -n "${CUBECL_DEBUG_LOG:-}" && -f /tmp/cubecl.log ]]; then
  grep -a -i 'autotun\|fastest' /tmp/cubecl.log | head -c 8000000 > "$OUT/autotune.txt"
fi
save_cache
log "done: $(find "$KROOT" -name '*.json.log' -exec cat {} + 2>/dev/null | wc -l) autotune entries; $OUT/kernels.tgz $(du -h "$OUT/kernels.tgz" | cut -f1) -> scripts/gpu/keep-cache.sh"

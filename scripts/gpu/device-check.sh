#!/usr/bin/env bash
# Runs ON the lent GPU machine (packed by scripts/gpu/pack.sh; carry .gpu/bundle, and
# .gpu/cache if an earlier run brought a kernel cache back):
#   bash scripts/gpu/device-check.sh PLAN      PLAN: tune | measure | parity (default)
#   pipeline the self-contained `pitchside bench` on vtest.avi with configs/cuda.yaml's
#            deployment (bundle from pack.sh WITH_PITCHSIDE=1 or PITCHSIDE_ONLY=1): the whole
#            pipeline, NVDEC or software decoding included; also the last step of measure.
#
#   tune     issue 15 part B, run 1: cold-tunes the fp16 batch-32 shapes of YOLOv8x (detect,
#            4 classes), YOLOv8x-pose (32 keypoints) and YOLOv8n into the kernel cache, the
#            pipeline's 1080p shape (640x384) first, then the anchor's 640x640.
#   measure  run 2, warm from that cache: the PyTorch yardstick (shared/gpu-anchor), then
#            Burn's forward on the same models and batches, then burn-wgpu on the same GPU
#            with the default WGSL compiler and with Burn's `vulkan` (SPIR-V) feature.
#   parity   Burn CUDA fp32/fp16 vs ultralytics on real weights (the issue 3/7 check).
#   torch    the GPU measurement of issues 22/23 in one call, in this order, each step under
#            its deadline: (1) PyTorch's own fp16 forward of YOLOv8x detect (4 classes) and
#            YOLOv8x-pose (32 keypoints), batch 1 and 32, 640x640 and 640x384
#            (tools/gpu/torch_yardstick.py); (2) `torch:cuda` fp16 on the same models and
#            shapes (device_check_torch), and its f32 head output against ultralytics' on
#            the golden inputs; (3) the self-contained torch `pitchside` (pack.sh TORCH=1):
#            the first answer from process start (`run`), then `bench`, of the Score Vision
#            deployment (random-weight YOLOv8x + YOLOv8x-pose, batch 32, stride 2) on the
#            750-frame 1080p clip, NVDEC then software decoding; (4) Burn CUDA fp16 on its
#            cached autotune; (5) burn-wgpu, WGSL then SPIR-V, YOLOv8n.
#            Needs the GPU host's PyTorch (python3 -c 'import torch'): its torch/lib is put
#            on LD_LIBRARY_PATH for the torch binaries, which link it.
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
# The SPIR-V variant travels alone (pack.sh: .gpu/bundle-vk), in a call of its own.
[[ -f .gpu/bundle-vk/.gpu-vk.tar.xz ]] && tar -C "$G" -xJf .gpu/bundle-vk/.gpu-vk.tar.xz
LOG="$OUT/check.log"; RES="$OUT/results.jsonl"
log() { echo "[device-check $PLAN $(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }

# Shapes and devices; DRY=1 shrinks them for lavapipe (and LibTorch's CPU for `torch`).
if [[ "${DRY:-0}" == 1 ]]; then
  : "${DEVICE:=wgpu}" "${HALF:=wgpu}" "${BATCH:=2}" "${SQUARE:=64}" "${RECT:=64x32}" "${ITERS:=2}"
  : "${BIN:=${CARGO_TARGET_DIR:-target}/debug/examples/device_check}"
  : "${BIN_WGPU:=$BIN}" "${SKIP_ANCHOR:=1}"
  : "${TDEVICE:=torch-cpu}" "${THALF:=torch-cpu}" "${YDEVICE:=cpu}" "${TORCH_DEVICE:=torch:cpu}"
  # The Score Vision deployment at 64 px, batch 2: YOLOv8x at 640 takes seconds per frame here.
  : "${PIPELINE_ENV:=IMG_SIZE=64 BATCH_SIZE=2 OMP_WAIT_POLICY=PASSIVE}"
else
  : "${DEVICE:=cuda}" "${HALF:=cuda-half}" "${BATCH:=32}" "${SQUARE:=640}" "${RECT:=640x384}" "${ITERS:=10}"
  : "${BIN:=$G/device_check}"
  : "${TDEVICE:=torch-cuda}" "${THALF:=torch-cuda-half}" "${YDEVICE:=cuda}" "${TORCH_DEVICE:=torch:cuda}"
fi
BIN_WGPU="${BIN_WGPU:-$G/device_check_wgpu}"; BIN_VK="${BIN_VK:-$G/device_check_vk}"
BIN_TORCH="${BIN_TORCH:-$G/device_check_torch}"; PITCHSIDE_TORCH="${PITCHSIDE_TORCH:-$G/pitchside-torch}"

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
pipeline() {  # the self-contained binary's pipeline bench, one JSON line in $RES
  [[ -x "$G/pitchside" ]] || return
  local t=$(( $(left) < ${1:-240} ? $(left) : ${1:-240} ))
  (( t < 30 )) && { log "skip pipeline bench (deadline)"; return; }
  local t0=$(date +%s)
  (cd "$G/pipeline" && timeout -k 5 "$t" "$G/pitchside" bench --config config.yaml vtest.avi \
     > "$OUT/pipeline-bench.json" 2> "$OUT/pipeline-bench.log")
  local rc=$?
  tr -d '\n' < "$OUT/pipeline-bench.json" >> "$RES"; echo >> "$RES"
  log "pipeline bench rc=$rc $(( $(date +%s) - t0 ))s: $(grep -E 'end-to-end|decode' "$OUT/pipeline-bench.log" | tr '\n' ';' | cut -c1-600)"
}
# The torch binaries link the host's PyTorch (the one they were built against: PyPI's 2.11).
torch_lib() {
  local py="${TORCH_PYTHON:-python3}"
  "$py" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null
}
yardstick() {  # PyTorch's own forward on the Score Vision models (tools/gpu/torch_yardstick.py)
  local t=$(( $(left) < ${1:-150} ? $(left) : ${1:-150} ))
  (( t < 30 )) && { log "skip yardstick (deadline)"; return; }
  local site=/tmp/yardstick-site
  if [[ -d "$G/anchor/whl" ]] && ! "${TORCH_PYTHON:-python3}" -c 'import ultralytics' 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" "$G"/anchor/whl/*.whl >> "$LOG" 2>&1
  fi
  local t0=$(date +%s)
  YOLO_OFFLINE=true YOLO_AUTOINSTALL=false ULTRALYTICS_SKIP_REQUIREMENTS_CHECKS=1 YOLO_VERBOSE=false \
  YOLO_CONFIG_DIR=/tmp/anchor_ycfg MPLBACKEND=Agg PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" \
    timeout -k 5 "$t" "${TORCH_PYTHON:-python3}" "${YARDSTICK:-$G/tools/torch_yardstick.py}" --device "$YDEVICE" \
      --batches "1,$BATCH" --sizes "${SQUARE}x${SQUARE},$RECT" --budget-s $(( t - 15 )) \
      >> "$RES" 2>> "$LOG"
  log "yardstick rc=$? $(( $(date +%s) - t0 ))s"
}
torch_pipeline() {  # the torch `pitchside` on the Score Vision deployment, 750 1080p frames
  local dir="$G/pipeline-sv" t0 rc
  [[ -x "$PITCHSIDE_TORCH" && -f "$dir/config.yaml" ]] || { log "skip torch pipeline (no $PITCHSIDE_TORCH)"; return; }
  local t=$(( $(left) < 120 ? $(left) : 120 ))
  (( t < 30 )) && { log "skip torch pipeline (deadline)"; return; }
  # First answer on a fresh host: process start to the JSON written, models loaded and
  # cuDNN's algorithm search included.
  t0=$(date +%s.%N)
  (cd "$dir" && env ${PIPELINE_ENV:-} PITCHSIDE_DEVICE="$TORCH_DEVICE" timeout -k 5 "$t" "$PITCHSIDE_TORCH" run --config config.yaml \
     --out "$OUT/sv-answer.json" clip.mp4 2> "$OUT/sv-run.log")
  rc=$?
  echo "{\"step\":\"first_answer\",\"device\":\"$TORCH_DEVICE\",\"rc\":$rc,\"s\":$(awk "BEGIN{print $(date +%s.%N) - $t0}")}" >> "$RES"
  log "first answer rc=$rc: $(tail -1 "$RES")"
  for decode in auto software; do
    t=$(( $(left) < 90 ? $(left) : 90 ))
    (( t < 20 )) && { log "skip torch bench $decode (deadline)"; continue; }
    local flag=(); [[ $decode == software ]] && flag=(--software-decode)
    (cd "$dir" && env ${PIPELINE_ENV:-} PITCHSIDE_DEVICE="$TORCH_DEVICE" timeout -k 5 "$t" "$PITCHSIDE_TORCH" \
       bench --config config.yaml "${flag[@]}" clip.mp4 > "$OUT/sv-bench-$decode.json" 2> "$OUT/sv-bench-$decode.log")
    rc=$?
    { printf '{"step":"sv_bench","decode":"%s","rc":%s,"bench":' "$decode" "$rc"
      tr -d '\n' < "$OUT/sv-bench-$decode.json" | grep . || printf 'null'; echo '}'; } >> "$RES"
    log "sv bench $decode rc=$rc: $(grep -E 'end-to-end|decode' "$OUT/sv-bench-$decode.log" | tr '\n' ';' | cut -c1-500)"
  done
}
if [[ "$PLAN" == torch ]]; then
  TL="$(torch_lib)"
  [[ -n "$TL" ]] || log "no PyTorch for python3 here: the torch binaries cannot start"
  export LD_LIBRARY_PATH="${TL:+$TL:}$LD_LIBRARY_PATH"
  log "torch lib: ${TL:-none}"
  A=models/archs; X="$A/yolov8x.yaml"; XP="$A/yolov8x-pose.yaml"; N="$A/yolov8n.yaml"
  yardstick 150
  for size in "$SQUARE" "$RECT"; do
    for b in 1 "$BATCH"; do
      step 40 "$BIN_TORCH" bench "$THALF" "$X"  "$b" "$size" "$ITERS" 4
      step 40 "$BIN_TORCH" bench "$THALF" "$XP" "$b" "$size" "$ITERS" 1 32
    done
  done
  # f32 on the golden inputs: LibTorch's head output against ultralytics' (fp32, CPU).
  step 40 "$BIN_TORCH" parity "$TDEVICE" "$G/parity" yolo11n-pose
  step 40 "$BIN_TORCH" parity "$TDEVICE" "$G/parity" yolov8n-railway
  torch_pipeline
  # Burn CUDA on its cached autotune (cold where the cache lacks the shape), then burn-wgpu.
  step 60 "$BIN" bench "$HALF" "$X" "$BATCH" "$RECT" "$ITERS" 4
  CUBECL_AUTOTUNE_LEVEL=minimal step 45 "$BIN_WGPU" bench wgpu "$N" "$BATCH" "$SQUARE" "$ITERS" 4
  CUBECL_AUTOTUNE_LEVEL=minimal step 45 "$BIN_VK" bench wgpu "$N" "$BATCH" "$SQUARE" "$ITERS" 4
  save_cache
  log "done: $(grep -c . "$RES") result lines"
  exit 0
fi
[[ -x "$BIN" ]] || { log "no device_check in the bundle: the pipeline bench only"; pipeline 500; log "done"; exit 0; }
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
    pipeline 120
    ;;
  pipeline) pipeline 400 ;;
  parity)
    # Correctness first: a cold cache makes the first of these the slow one.
    step 300 "$BIN" parity "$DEVICE" "$G/parity" yolo11n-pose
    step 150 "$BIN" parity "$DEVICE" "$G/parity" yolov8s-fall
    step 120 "$BIN" parity "$HALF" "$G/parity" yolo11n-pose
    step 90  "$BIN" parity "$DEVICE" "$G/parity" yolov8n-railway
    ;;
  *) log "unknown plan $PLAN (tune | measure | parity | pipeline | torch)"; exit 2 ;;
esac
if [[ -n "${CUBECL_DEBUG_LOG:-}" && -f /tmp/cubecl.log ]]; then
  grep -a -i 'autotun\|fastest' /tmp/cubecl.log | head -c 8000000 > "$OUT/autotune.txt"
fi
save_cache
log "done: $(find "$KROOT" -name '*.json.log' -exec cat {} + 2>/dev/null | wc -l) autotune entries; $OUT/kernels.tgz $(du -h "$OUT/kernels.tgz" | cut -f1) -> scripts/gpu/keep-cache.sh"

#!/usr/bin/env bash
# Runs ON the lent GPU machine (packed by scripts/gpu/pack.sh; carry .gpu/bundle, and
# .gpu/cache if an earlier run brought one back):
#   1. CUDA parity: Burn fp32 (TF32 convs) and fp16 vs ultralytics on real weights — every
#      head value and the detections after NMS;
#   2. Burn fp16 forward throughput of random-weight YOLOv8n/x (and YOLOv8x-pose, 32 kpt);
#   3. the PyTorch yardstick (shared/gpu-anchor's anchor.py, models section) in the same run;
#   4. when the bundle has the self-contained `pitchside` (pack.sh WITH_PITCHSIDE=1 or
#      PITCHSIDE_ONLY=1): `pitchside bench` on vtest.avi with configs/cuda.yaml's deployment,
#      the whole pipeline (NVDEC or software decoding, letterbox, models, tracking).
# Every result is one JSON line appended to $OUT/results.jsonl as soon as it exists; the
# whole run keeps to DEADLINE_S so what finished comes back.
#
# Measured on an H200 (BENCHMARKS.md): with a cold autotune cache, YOLOv8n's first forward
# takes ~220 s (every conv/matmul shape benchmarked); with the cache, ~12 s. So the cache
# travels: it is restored from .gpu/cache/autotune.tgz when carried, and written back to
# $OUT/autotune.tgz at the end — copy it to .gpu/cache/ for the next lease on that GPU kind.
# CUBECL_LOG=1 also returns cubecl's autotune decisions ($OUT/autotune.txt).
# Dry run on the CPU machine: DEVICE=cpu HALF=cpu SKIP_ANCHOR=1 bash scripts/gpu/device-check.sh
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/pitchside-gpu-out}"; mkdir -p "$OUT"
START=$(date +%s); DEADLINE_S="${DEADLINE_S:-540}"
G=/tmp/pitchside-gpu; mkdir -p "$G"
if [[ -f .gpu/bundle/.gpu.tar.xz ]]; then tar -C "$G" -xJf .gpu/bundle/.gpu.tar.xz; else cp -r .gpu/. "$G/"; fi
# cubecl keeps its autotune cache in target/ beside the nearest Cargo.toml above the cwd.
[[ -f .gpu/cache/autotune.tgz ]] && tar -xzf .gpu/cache/autotune.tgz
BIN="${BIN:-$G/device_check}"
DEVICE="${DEVICE:-cuda}"; HALF="${HALF:-cuda-half}"
LOG="$OUT/check.log"; RES="$OUT/results.jsonl"
log() { echo "[device-check $(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }
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
log "CUDA_PATH=$CUDA_PATH nvrtc=${NVRTC_DIR:-none} autotune=$CUBECL_AUTOTUNE_LEVEL cache=$( [[ -d target ]] && du -sh target | cut -f1 || echo none)"
nvidia-smi -L 2>&1 | tee -a "$LOG" || true

left() { echo $(( DEADLINE_S - ( $(date +%s) - START ) )); }
step() {  # step MAX_SECONDS ARGS...: one device_check run, bounded by the deadline
  local max=$1; shift
  local t=$(( $(left) < max ? $(left) : max ))
  if (( t < 15 )); then log "skip $* (deadline)"; echo "{\"skipped\":\"deadline\",\"command\":\"$*\"}" >> "$RES"; return; fi
  local t0=$(date +%s)
  timeout -k 5 "$t" "$BIN" "$@" >> "$RES" 2>> "$LOG"
  local rc=$?
  (( rc == 124 || rc == 137 )) && echo "{\"timed_out_s\":$t,\"command\":\"$*\"}" >> "$RES"
  log "rc=$rc $(( $(date +%s) - t0 ))s: $*  -> $(tail -1 "$RES" | cut -c1-400)"
}
anchor() {
  [[ "${SKIP_ANCHOR:-0}" == 1 || ! -f "$G/anchor/anchor.py" ]] && return
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
[[ -x "$BIN" ]] || { log "no device_check in the bundle: the pipeline bench only"; pipeline 500; log "done"; exit 0; }
A=models/archs
# Correctness first: a cold cache makes the first of these the slow one.
step 300 parity "$DEVICE" "$G/parity" yolo11n-pose
step 150 parity "$DEVICE" "$G/parity" yolov8s-fall
step 120 parity "$HALF" "$G/parity" yolo11n-pose
anchor
step 240 bench "$HALF" $A/yolov8n.yaml 32 640 20
step 240 bench "$HALF" $A/yolov8x.yaml 32 640 10
step 120 bench "$HALF" $A/yolov8n.yaml 1 640 50
step 120 bench "$HALF" $A/yolov8x.yaml 1 640 30
step 120 bench "$HALF" $A/yolov8x-pose.yaml 32 640 10 1 32
step 90  parity "$DEVICE" "$G/parity" yolov8n-railway
pipeline 240
if [[ -n "${CUBECL_DEBUG_LOG:-}" && -f /tmp/cubecl.log ]]; then
  grep -a -i 'autotun\|fastest' /tmp/cubecl.log | head -c 8000000 > "$OUT/autotune.txt"
fi
[[ -d target ]] && tar -czf "$OUT/autotune.tgz" target && log "autotune cache: $(du -h "$OUT/autotune.tgz" | cut -f1) -> copy to .gpu/cache/autotune.tgz"
log "done"

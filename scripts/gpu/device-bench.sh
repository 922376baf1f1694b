#!/usr/bin/env bash
# The GPU check for issue 7, run ON the lent GPU machine (no crates.io, no libopencv there).
# Prepare on the CPU machine:
#   CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda,wgpu
#   mkdir -p .gpu && cp "$CARGO_TARGET_DIR"/release/pitchside .gpu/ && cp -r ../shared/gpu-anchor .gpu/
#   cp the libopencv_*.so.406 the binary links (ldd .gpu/pitchside) into .gpu/lib/
# then run it with the device tool, carrying .gpu and assets:  bash scripts/gpu/device-bench.sh
# Writes $OUT/pitchside-*.json and the PyTorch yardstick's $OUT/anchor.json; prints a table.
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/pitchside-gpu-out}"
mkdir -p "$OUT"
BIN="${PITCHSIDE_BIN:-.gpu/pitchside}"
DEVICE="${DEVICE:-cuda}"
ITER="${ITER:-20}"
export LD_LIBRARY_PATH=".gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Keep the autotune cache between runs of this script.
export CUBECL_AUTOTUNE_LEVEL="${CUBECL_AUTOTUNE_LEVEL:-balanced}"
IMG=assets/bus.jpg

"$BIN" devices | tee "$OUT/devices.txt"
half=""; [[ "$DEVICE" == cuda ]] && half="--half"
# Dry run on a CPU box: DEVICE=cpu ARCHS=yolov8n BATCHES=1 ITER=1 POSE=0 SKIP_ANCHOR=1 PITCHSIDE_BIN=... bash scripts/gpu/device-bench.sh
for arch in ${ARCHS:-yolov8n yolov8x}; do
  for batch in ${BATCHES:-1 32}; do
    name="pitchside-$arch-b$batch-$DEVICE"
    timeout 300 "$BIN" bench --device "$DEVICE" $half --model "models/archs/$arch.yaml" --square \
      --batch "$batch" --iterations "$ITER" "$IMG" > "$OUT/$name.json" 2> "$OUT/$name.log" \
      || echo "[device-bench] $name failed: $(tail -1 "$OUT/$name.log")"
    grep -h "img/s" "$OUT/$name.log" || true
  done
done
name="pitchside-yolov8x-pose32-b32-$DEVICE"
[[ "${POSE:-1}" == 1 ]] && timeout 300 "$BIN" bench --device "$DEVICE" $half --model models/archs/yolov8x-pose.yaml --nc 1 \
  --keypoints 32 --square --batch 32 --iterations "$ITER" "$IMG" > "$OUT/$name.json" 2> "$OUT/$name.log" \
  || echo "[device-bench] $name failed or skipped"
grep -h "img/s" "$OUT/$name.log" 2>/dev/null || true
if [[ -d .gpu/gpu-anchor && "${SKIP_ANCHOR:-0}" != 1 ]]; then
  OUT="$OUT" bash .gpu/gpu-anchor/bench.sh > "$OUT/anchor.txt" 2>&1 || echo "[device-bench] anchor failed"
  tail -30 "$OUT/anchor.txt"
fi

#!/usr/bin/env bash
# Proves the self-contained binary (scripts/build-self-contained.sh) runs where there is no
# OpenCV and no FFmpeg: an empty root holding only the binary, the libraries `ldd` names
# (glibc's), a config, one checkpoint and a video, then `chroot ROOT /pitchside bench` on
# the video with a real YOLO model (decoding through the static FFmpeg, letterbox in Rust),
# and `pitchside score` must say it needs OpenCV. Needs root (chroot).
#
#   scripts/check-self-contained.sh [BINARY]   # default: the cpu build in the target dir
#
# Cost: a few seconds once the binary exists (building it: see build-self-contained.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
T="${CARGO_TARGET_DIR:-$HOME/.cache/pitchside/target}"
BIN="${1:-$T/self-contained/pitchside-cpu}"
[[ -x "$BIN" ]] || { echo "check-self-contained: no binary at $BIN (run scripts/build-self-contained.sh cpu)" >&2; exit 1; }
[[ "$(id -u)" == 0 ]] || { echo "check-self-contained: chroot needs root" >&2; exit 1; }
VIDEO="${VIDEO:-assets/vtest.avi}"
WEIGHTS="${WEIGHTS:-assets/yolov8n-railway.pt}"
for f in "$VIDEO" "$WEIGHTS"; do
  [[ -f "$f" ]] || { echo "check-self-contained: $f missing (scripts/fetch-assets.sh)" >&2; exit 1; }
done

CHROOT="$(command -v chroot)"
ROOT="$(mktemp -d /tmp/pitchside-chroot.XXXXXX)"
trap 'rm -rf "$ROOT"' EXIT
cp "$BIN" "$ROOT/pitchside"
# The libraries the loader will look for, at the paths ldd resolved them to (and the
# loader itself at its absolute path).
ldd "$BIN" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u |
  while read -r lib; do
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
  done
mkdir -p "$ROOT/check" "$ROOT/tmp"
EXT="${VIDEO##*.}"
cp "$VIDEO" "$ROOT/check/video.$EXT"
cp "$WEIGHTS" "$ROOT/check/players.pt"
cat >"$ROOT/check/config.yaml" <<'YAML'
device: cpu
profile: cpu
models:
  players:
    path: players.pt
    task: detect
pipeline:
  detectors:
    - role: players
      plugin: yolo
  tracker:
    plugin: bytetrack
profiles:
  cpu:
    imgsz: { players: 320, pitch: 320, ball: 320 }
    batch_size: 4
    frame_stride: 2
YAML
echo "== the root: $(find "$ROOT" -type f | sed "s|^$ROOT||" | tr '\n' ' ')"
echo "== its size: $(du -sh "$ROOT" | cut -f1); no OpenCV or FFmpeg in it:"
if find "$ROOT" -name 'libopencv*' -o -name 'libav*' -o -name 'libsw*' | grep -q .; then
  echo "check-self-contained: the root holds OpenCV or FFmpeg libraries" >&2
  exit 1
fi
FRAMES="${FRAMES:-60}"
echo "== chroot $ROOT /pitchside bench --config /check/config.yaml --frames $FRAMES /check/video.$EXT"
env -i PATH=/ HOME=/tmp "$CHROOT" "$ROOT" /pitchside bench --config /check/config.yaml \
  --frames "$FRAMES" "/check/video.$EXT" >"$ROOT/tmp/bench.json" 2>"$ROOT/tmp/bench.log" || {
  cat "$ROOT/tmp/bench.log" >&2
  echo "check-self-contained: bench failed in the chroot" >&2
  exit 1
}
cat "$ROOT/tmp/bench.log"
grep -q '"source_frames": *'"$FRAMES" "$ROOT/tmp/bench.json" || {
  cat "$ROOT/tmp/bench.json" >&2
  echo "check-self-contained: the bench did not decode $FRAMES frames" >&2
  exit 1
}
# What needs OpenCV says so (and does not crash).
msg="$(env -i PATH=/ "$CHROOT" "$ROOT" /pitchside score --video /check/video.$EXT --answer /check/config.yaml 2>&1 || true)"
grep -q "needs OpenCV" <<<"$msg" || { echo "check-self-contained: score said: $msg" >&2; exit 1; }
echo "== score in the chroot: $msg"
echo "check-self-contained: OK ($BIN ran in an empty root with glibc only)"

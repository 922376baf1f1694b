#!/usr/bin/env bash
# Keeps a kernel cache a GPU run brought back ($OUT/kernels.tgz of scripts/gpu/device-check.sh)
# for later runs: unpacks it into gpu-cache/ (one folder per GPU model, committed, restored
# by device-check.sh) and into .gpu/cache/kernels.tgz (carried). Run on the CPU machine:
#   bash scripts/gpu/keep-cache.sh FILES_AT/kernels.tgz
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC="${1:?usage: keep-cache.sh PATH/kernels.tgz}"
mkdir -p gpu-cache .gpu/cache
cp "$SRC" .gpu/cache/kernels.tgz
tar -C gpu-cache -xzf "$SRC"
for d in gpu-cache/*/; do
  echo "$d: $(find "$d" -name '*.json.log' -exec cat {} + 2>/dev/null | wc -l) autotune entries, $(du -sh "$d" | cut -f1)"
done
echo "commit gpu-cache/ (git add gpu-cache) so every later GPU run starts warm"

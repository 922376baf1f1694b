#!/usr/bin/env bash
# The whole test suite: unit, integration, real weights and video (scripts/fetch-assets.sh),
# then the WGPU backend on Mesa's software Vulkan (lavapipe) against the same golden data.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pitchside/target}"
cargo test --workspace --all-targets "$@"

# lavapipe is slow: tune kernels minimally (the tuning results stay in the per-user kernel
# cache, ~/.cache/pitchside/kernels/<adapter>/). `wgpu` selects the golden parity test and
# warm_start's two-process kernel cache test.
export CUBECL_AUTOTUNE_LEVEL="${CUBECL_AUTOTUNE_LEVEL:-minimal}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
cargo test -p pitchside-models --features wgpu --test models wgpu "$@"

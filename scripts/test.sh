#!/usr/bin/env bash
# The whole test suite (unit, integration, real weights and video from scripts/fetch-assets.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pitchside/target}"
cargo test --workspace --all-targets "$@"

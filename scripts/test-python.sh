#!/usr/bin/env bash
# The Python package (python/): built from source as a user builds it (`pip install ./python`,
# maturin as the PEP 517 backend), then its pytest suite on the real assets, against the CLI
# of the same sources. The extension is built in the dev profile in the shared build
# directory: its dependencies are the ones `cargo test --workspace` compiled (opt-level 3 in
# dev; python/Cargo.toml keeps their features the workspace's), so only PyO3, numpy and the
# binding's own crate are compiled here.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pitchside/target}"

# A virtual environment kept between runs: the test tools (pytest; supervision, and OpenCV
# for its annotators) are downloaded once. The tests decode frames with the ffmpeg CLI.
VENV="${PITCHSIDE_PYTHON_VENV:-$HOME/.cache/pitchside/python-venv}"
if [[ ! -x "$VENV/bin/python" ]]; then
  "${PYTHON:-python3}" -m venv "$VENV"
fi
export PATH="$VENV/bin:$PATH"
python -m pip install -q --disable-pip-version-check \
  'maturin>=1.9.4,<2' pytest supervision opencv-python-headless

# --no-build-isolation: the venv's maturin, not a fresh download per run.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
MATURIN_PEP517_ARGS="--profile dev" python -m pip install -v --disable-pip-version-check \
  --no-build-isolation --force-reinstall --no-deps ./python >"$log" 2>&1 || {
  cat "$log"
  exit 1
}
# A dependency compiled again here means its features drifted from the workspace build's:
# say so (it costs build time, not correctness).
others="$(grep -oE 'Compiling [^ ]+' "$log" | awk '{print $2}' |
  grep -vE '^(pyo3|pyo3-ffi|pyo3-macros|pyo3-macros-backend|pyo3-build-config|numpy|pitchside-python)$' || true)"
if [[ -n "$others" ]]; then
  echo "warning: the Python build compiled dependencies the workspace build had compiled with other features:" \
    $others "(see the feature-parity list in python/Cargo.toml)" >&2
fi

# The CLI the answers are compared with: the dev build `scripts/test.sh` (cargo test
# --workspace) made; run that first.
export PITCHSIDE_BIN="${PITCHSIDE_BIN:-$CARGO_TARGET_DIR/debug/pitchside}"
if [[ ! -x "$PITCHSIDE_BIN" ]]; then
  echo "no CLI at $PITCHSIDE_BIN: run scripts/test.sh (or cargo test --workspace --no-run) first" >&2
  exit 1
fi
python -m pytest -q python/tests "$@"

# Source this (`source scripts/torch-env.sh`) to build and test `--features torch`: it
# installs PyPI's PyTorch 2.11.0 into a virtual environment once (cached under
# ~/.cache/pitchside/torch-venv; 4.6 GB, ~2.5 min; no GPU needed), then points tch's build at
# it. PyPI's torch 2.11.0 is 2.11.0+cu130, the PyTorch of the GPU machines: what links here
# links there. tch 0.22 expects PyTorch 2.9.0 but compiles against 2.11's headers (tested);
# LIBTORCH_BYPASS_VERSION_CHECK skips its check. TORCH_VENV picks another environment.
TORCH_VENV="${TORCH_VENV:-$HOME/.cache/pitchside/torch-venv}"
TORCH_VERSION="${TORCH_VERSION:-2.11.0}"
if ! "$TORCH_VENV/bin/python" -c "import torch, sys; sys.exit(not torch.__version__.startswith('$TORCH_VERSION'))" 2>/dev/null; then
  echo "torch-env: installing torch==$TORCH_VERSION into $TORCH_VENV" >&2
  { [[ -x "$TORCH_VENV/bin/pip" ]] || python3 -m venv "$TORCH_VENV"; } \
    && "$TORCH_VENV/bin/pip" install -q "torch==$TORCH_VERSION" >&2 \
    || { echo "torch-env: could not install PyTorch $TORCH_VERSION into $TORCH_VENV" >&2; return 1; }
fi
# tch's build script runs `python3` from PATH and asks it where torch is.
export PATH="$TORCH_VENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1 LIBTORCH_BYPASS_VERSION_CHECK=1
TORCH_LIB="$("$TORCH_VENV/bin/python" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export TORCH_LIB

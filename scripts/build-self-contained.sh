#!/usr/bin/env bash
# Builds the self-contained `pitchside` for hosts with no OpenCV and no FFmpeg (the rented
# GPU servers): `--no-default-features --features <backend>,static-ffmpeg`, i.e. no OpenCV
# (letterbox and JPEG reading in Rust; `score`, `--score` and `--annotate` say they need the
# OpenCV build) and FFmpeg's decoders linked statically from scripts/build-static-ffmpeg.sh.
# What it needs at run time: glibc (libc, libm, libgcc_s, the loader) and, for cuda, the
# NVIDIA driver (libcuda, libnvrtc and NVDEC's libnvcuvid are loaded when used). `torch`
# (LibTorch devices, with the CPU executor) links the PyTorch it is built against
# (scripts/torch-env.sh: PyPI's 2.11.0, the GPU hosts' own) and so needs that PyTorch's
# torch/lib (and libstdc++) on the host, nothing else.
#
#   scripts/build-self-contained.sh [cpu|cuda|torch]     # default cpu
#   CHECK_ONLY=1 scripts/build-self-contained.sh cuda   # cargo check only (dev profile, no link)
#
# Output: $CARGO_TARGET_DIR/self-contained/pitchside-<backend> (stripped) and a .xz of it to
# carry; prints `ldd` and sizes, and fails if the binary needs any library beyond glibc's.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKEND="${1:-cpu}"
case "$BACKEND" in
  cpu | cuda) FEATURES="$BACKEND,static-ffmpeg" ;;
  torch) FEATURES="cpu,torch,static-ffmpeg"; source scripts/torch-env.sh ;;
  *) echo "usage: $0 [cpu|cuda|torch]" >&2; exit 2 ;;
esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pitchside/target}"
export PREFIX="${FFMPEG_STATIC:-$HOME/.cache/pitchside/ffmpeg-static}"
bash scripts/build-static-ffmpeg.sh

# ffmpeg-sys-next finds FFmpeg with pkg-config: only the static prefix is searched, and
# with the `static` feature it links every library whose .a lies there statically.
unset FFMPEG_DIR
export PKG_CONFIG_LIBDIR="$PREFIX/lib/pkgconfig"
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
[[ "$BACKEND" == cuda ]] && export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}" # no nvcc needed
if [[ "${CHECK_ONLY:-0}" == 1 ]]; then
  # The dev profile: reuses what scripts/gpu/pack.sh built for burn-cuda.
  cargo check -p pitchside --no-default-features --features "$FEATURES"
  exit 0
fi
cargo build --release -p pitchside --no-default-features --features "$FEATURES"

OUT_DIR="$CARGO_TARGET_DIR/self-contained"
BIN="$OUT_DIR/pitchside-$BACKEND"
mkdir -p "$OUT_DIR"
# Copied at once: other builds in the shared target dir write release/pitchside too.
strip -o "$BIN" "$CARGO_TARGET_DIR/release/pitchside"
echo "== ldd $BIN"
ldd "$BIN" || true
# Anything but glibc's own libraries (and the vDSO) means it is not self-contained; the
# torch build may also need LibTorch's (and what they need: its CUDA wheels' libraries, the
# C++ runtime, OpenMP), which every PyTorch install has.
allowed='linux-vdso\.so|/lib64/ld-linux-x86-64\.so|ld-linux-x86-64\.so|libc\.so|libm\.so|libgcc_s\.so|libpthread\.so|libdl\.so|librt\.so|libutil\.so'
[[ "$BACKEND" == torch ]] && allowed="$allowed|libtorch.*\.so|libc10.*\.so|libstdc\+\+\.so|libgomp.*\.so"
extra="$(ldd "$BIN" | grep -v "${TORCH_LIB:-/nonexistent}/" | grep -v "$HOME/.cache/pitchside/torch-venv/" \
  | awk '{print $1}' | grep -vE "^($allowed)" || true)"
if [[ -n "$extra" ]]; then
  echo "build-self-contained: $BIN needs more than glibc: $extra" >&2
  exit 1
fi
xz -T0 -6 -k -f "$BIN"
echo "== sizes"
ls -la "$BIN" "$BIN.xz" | awk '{printf "%s  %.1f MiB\n", $NF, $5 / 1048576}'
MAX=$((64 * 1024 * 1024))
[[ $(stat -c %s "$BIN.xz") -le $MAX ]] || { echo "build-self-contained: $BIN.xz is over 64 MiB" >&2; exit 1; }
echo "self-contained $BACKEND binary: $BIN (carry $BIN.xz; xz -d on the host)"

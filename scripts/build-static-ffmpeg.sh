#!/usr/bin/env bash
# Builds FFmpeg decode-only, as static PIC libraries, from Debian's own source package, for
# the self-contained binary (scripts/build-self-contained.sh): the decoders, demuxers and
# parsers Pitchside's inputs need, swscale, and NVDEC/CUVID (the driver's libraries are
# loaded at run time through ffnvcodec's headers, so nothing CUDA is linked). No other
# library is detected or linked (--disable-autodetect); PNG needs zlib, whose static
# libz.a is copied into the prefix so the final link takes it statically too.
#
# Result: $PREFIX (default $HOME/.cache/pitchside/ffmpeg-static) with include/, lib/*.a and
# lib/pkgconfig/*.pc. Cached: does nothing when $PREFIX/lib/libavcodec.a exists (FORCE=1
# rebuilds). Needs a deb-src entry and a C toolchain; installs what else is missing with
# apt-get: dpkg-dev, nasm (FFmpeg's x86 assembly: without it H.264 decodes ~2x slower),
# libffmpeg-nvenc-dev (ffnvcodec headers), zlib1g-dev (libz.a).
# Measured on the 2-core dev box: ~1.5-3 min, ~30 MiB of libraries.
set -euo pipefail

PREFIX="${PREFIX:-$HOME/.cache/pitchside/ffmpeg-static}"
SRC_ROOT="${SRC_ROOT:-$HOME/.cache/pitchside/ffmpeg-src}"
JOBS="${JOBS:-$(nproc)}"

if [[ -f "$PREFIX/lib/libavcodec.a" && "${FORCE:-0}" != 1 ]]; then
  echo "static FFmpeg already built in $PREFIX (FORCE=1 rebuilds)"
  exit 0
fi

SUDO=""; [[ "$(id -u)" != 0 ]] && SUDO="sudo"
need=()
for p in dpkg-dev nasm libffmpeg-nvenc-dev zlib1g-dev pkg-config make; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  echo "installing ${need[*]}"
  flock /tmp/apt.lock $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
for tool in dpkg-source make cc pkg-config nasm; do
  command -v "$tool" >/dev/null || { echo "build-static-ffmpeg: $tool is missing" >&2; exit 1; }
done
pkg-config --exists ffnvcodec || {
  echo "build-static-ffmpeg: ffnvcodec headers missing (apt-get install libffmpeg-nvenc-dev)" >&2
  exit 1
}
ZLIB_A="$(find /usr/lib /usr/lib64 -name libz.a 2>/dev/null | head -1)"
[[ -n "$ZLIB_A" ]] || { echo "build-static-ffmpeg: libz.a missing (apt-get install zlib1g-dev)" >&2; exit 1; }
ATOMIC_A="$(cc -print-file-name=libatomic.a)"
[[ -f "$ATOMIC_A" ]] || { echo "build-static-ffmpeg: libatomic.a missing (the C toolchain's)" >&2; exit 1; }

mkdir -p "$SRC_ROOT"
SRC="$(find "$SRC_ROOT" -maxdepth 1 -type d -name 'ffmpeg-[0-9]*' | sort | tail -1)"
if [[ -z "$SRC" ]]; then
  # apt-get source needs a deb-src entry: where the system has none, one for the same
  # mirror as its deb entries (Debian's deb822 debian.sources), then one `apt-get update`.
  if ! grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    deb822=/etc/apt/sources.list.d/debian.sources
    [[ -f $deb822 ]] || { echo "build-static-ffmpeg: no deb-src entry, and no $deb822 to copy one from: add a deb-src line for your mirror" >&2; exit 1; }
    echo "adding deb-src entries (from $deb822) to /etc/apt/sources.list.d/pitchside-src.sources"
    sed -n 's/^Types: deb$/Types: deb-src/; p' "$deb822" | $SUDO tee /etc/apt/sources.list.d/pitchside-src.sources >/dev/null
    flock /tmp/apt.lock $SUDO apt-get update -qq
  fi
  # apt-get source takes no dpkg lock, but shares apt's lists with other users of apt.
  (cd "$SRC_ROOT" && flock /tmp/apt.lock apt-get source ffmpeg)
  SRC="$(find "$SRC_ROOT" -maxdepth 1 -type d -name 'ffmpeg-[0-9]*' | sort | tail -1)"
fi
[[ -n "$SRC" && -x "$SRC/configure" ]] || { echo "build-static-ffmpeg: no FFmpeg source in $SRC_ROOT" >&2; exit 1; }
echo "FFmpeg source: $SRC"


BUILD="$SRC_ROOT/build"
rm -rf "$BUILD" && mkdir -p "$BUILD"
cd "$BUILD"
decoders=h264,hevc,mpeg4,msmpeg4v1,msmpeg4v2,msmpeg4v3,mpeg1video,mpeg2video,vp8,vp9,mjpeg,png
cuvid=h264_cuvid,hevc_cuvid,mpeg4_cuvid,mpeg1_cuvid,mpeg2_cuvid,vp8_cuvid,vp9_cuvid,mjpeg_cuvid
nvdec=h264_nvdec,hevc_nvdec,mpeg4_nvdec,mpeg1_nvdec,mpeg2_nvdec,vp8_nvdec,vp9_nvdec,mjpeg_nvdec
"$SRC/configure" \
  --prefix="$PREFIX" \
  --disable-everything --disable-programs --disable-doc --disable-network \
  --enable-static --disable-shared --enable-pic --disable-autodetect \
  --disable-debug \
  --enable-decoder="$decoders,$cuvid" \
  --enable-hwaccel="$nvdec" \
  --enable-demuxer=mov,matroska,avi,mpegts,h264,hevc,m4v,image2 \
  --enable-parsers \
  --enable-protocol=file \
  --enable-swscale \
  --enable-zlib \
  --enable-ffnvcodec --enable-cuda --enable-nvdec --enable-cuvid \
  --pkg-config-flags=--static
for c in CONFIG_NVDEC CONFIG_CUVID CONFIG_H264_DECODER CONFIG_ZLIB; do
  grep -qs "#define $c 1" config.h config_components.h || { echo "build-static-ffmpeg: configure left $c off" >&2; exit 1; }
done
make -j"$JOBS" >make.log 2>&1 || { tail -30 make.log >&2; exit 1; }
make install >/dev/null
# The .pc files name -lz and -latomic; pkg-config-rs links a library statically when its
# .a lies in a non-system -L folder, so libz.a and libatomic.a go beside FFmpeg's (else
# the binary would need libz.so.1 and libatomic.so.1 on the GPU host).
cp "$ZLIB_A" "$ATOMIC_A" "$PREFIX/lib/"
du -sh "$PREFIX/lib"
echo "static FFmpeg in $PREFIX"

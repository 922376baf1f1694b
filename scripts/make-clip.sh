#!/usr/bin/env bash
# Makes the benchmarks' clip (issues 12 and 23, BENCHMARKS.md): a Score Vision challenge's
# shape, 750 frames of 1920x1080 H.264 at 25 fps (30 s), 4 Mbit/s (a broadcast stream's
# rate, ~20 kB a frame), a keyframe every 50 frames, from assets/vtest.avi (looped when it is
# shorter; its 10 fps frames are relabelled 25 fps, none dropped or repeated). ~15 MB, so that
# it travels to the GPU machine with the binaries (scripts/gpu/pack.sh, 64 MiB in all).
# (Until 2026-12-07 the clip was assets/clip-1080p.mp4, at vtest's 10 fps: 75 s at 4 Mbit/s,
# 2.5x the bytes a frame; BENCHMARKS' issue-12 figures are of that one.)
#
#   scripts/make-clip.sh [OUT]     (default: assets/clip-1080p25.mp4; kept when it exists)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-assets/clip-1080p25.mp4}
src=assets/vtest.avi
frames=750
if [[ -s $out ]]; then
    echo "$out exists"
    exit 0
fi
[[ -f $src ]] || { echo "$src is missing: run scripts/fetch-assets.sh" >&2; exit 1; }
command -v ffmpeg >/dev/null || { echo "ffmpeg is not installed (scripts/setup.sh --deps-only)" >&2; exit 1; }
have=$(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$src")
loop=()
if (( have < frames )); then
    loop=(-stream_loop $(( (frames + have - 1) / have - 1 )))
fi
mkdir -p "$(dirname "$out")"
tmp="$out.part.mp4"
# +faststart: the index in front, so that a reader knows every keyframe before the first frame.
ffmpeg -nostdin -v error -y "${loop[@]}" -i "$src" -frames:v "$frames" -an \
    -vf "scale=1920:1080,setpts=N/(25*TB)" -r 25 -c:v libx264 -b:v 4M -g 50 -pix_fmt yuv420p -movflags +faststart "$tmp"
mv "$tmp" "$out"
got=$(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$out")
echo "$out: $got frames"

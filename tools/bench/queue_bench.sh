#!/usr/bin/env bash
# Jobs per minute of the NATS work queue: N jobs of the real clip, W workers on this machine.
# Starts nats-server (JetStream in a temp dir, a free loopback port), W `pitchside worker`
# processes with DEPLOYMENT, waits until they are loaded, submits N jobs (given ids, the
# same clip), and times submit → `status --wait`. Prints jobs/minute.
#   tools/bench/queue_bench.sh BIN DEPLOYMENT WORKERS JOBS [VIDEO]
# Environment: IMG_SIZE, FRAME_STRIDE etc. apply to the workers as usual.
set -euo pipefail
bin=$1 deployment=$2 workers=$3 jobs=$4
video=${5:-$(cd "$(dirname "$0")/../.." && pwd)/assets/vtest.avi}
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=nats://127.0.0.1:$port
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
nats-server -a 127.0.0.1 -p "$port" -js -sd "$dir/js" 2>"$dir/nats.log" & pids+=($!)
sleep 0.5
for i in $(seq 1 "$workers"); do
  "$bin" worker --nats "$url" --config "$deployment" --name "w$i" 2>"$dir/w$i.log" & pids+=($!)
done
# Loaded when each has logged that it waits for jobs.
for i in $(seq 1 "$workers"); do
  until grep -q "waiting for jobs" "$dir/w$i.log"; do sleep 0.2; done
done
for j in $(seq 1 "$jobs"); do echo "{\"source\": \"$video\", \"id\": \"bench-$j\"}"; done >"$dir/jobs.txt"
start=$(date +%s.%N)
"$bin" submit --nats "$url" --manifest "$dir/jobs.txt" >/dev/null 2>&1
"$bin" status --nats "$url" --wait >/dev/null 2>&1
end=$(date +%s.%N)
python3 -c "w=$end-$start; print(f'{$workers} worker(s), {$jobs} jobs: {w:.1f} s, {$jobs*60/w:.1f} jobs/min')"

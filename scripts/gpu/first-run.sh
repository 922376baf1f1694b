set -u
G=/tmp/pitchside-gpu; mkdir -p $G; tar -C $G -xJf .gpu/bundle/.gpu.tar.xz
export CUDA_PATH=/usr/local/cuda LD_LIBRARY_PATH=$G/lib:/usr/local/cuda/targets/x86_64-linux/lib:/usr/local/cuda/lib64
export CUBECL_AUTOTUNE_LEVEL=minimal CUBECL_DEBUG_LOG=/tmp/cubecl.log
S=$(date +%s)
( while sleep 20; do echo "[$(( $(date +%s) - S ))s] log $(wc -c < /tmp/cubecl.log 2>/dev/null) bytes, $(grep -c -i 'autotun\|fastest' /tmp/cubecl.log 2>/dev/null) tune lines"; done ) &
timeout 250 $G/device_check parity cuda $G/parity yolov8n-railway | tee $OUT/results.jsonl; echo "rc=$? at $(( $(date +%s) - S ))s"
unset CUBECL_DEBUG_LOG
L=$(( 345 - ($(date +%s) - S) )); (( L > 20 )) && { timeout $L $G/device_check bench cuda-half models/archs/yolov8n.yaml 32 640 10 | tee -a $OUT/results.jsonl; echo "rc=$? at $(( $(date +%s) - S ))s"; }
kill %1 2>/dev/null
ls -la /tmp/cubecl.log; grep -i 'autotun\|fastest' /tmp/cubecl.log | head -c 3000000 > $OUT/autotune.txt
head -c 200000 /tmp/cubecl.log > $OUT/cubecl-head.txt; tail -c 200000 /tmp/cubecl.log > $OUT/cubecl-tail.txt
grep -i 'autotun\|fastest' /tmp/cubecl.log | tail -20 | cut -c1-300

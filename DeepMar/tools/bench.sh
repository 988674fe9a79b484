#!/usr/bin/env bash
# DeepMar benchmark, one run: train FPS of the fast path (--amp bf16/fp16 + channels_last) and of
# plain fp32 (--no-amp --no-channels_last) through test/train_performance_1p.sh, then the
# loader alone. Usage: bash tools/bench.sh DATA_PATH [BATCH_SIZE] [MAX_STEPS] [WORKERS] [extra train.py flags]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
data="${1:?usage: bash tools/bench.sh DATA_PATH [BATCH_SIZE] [MAX_STEPS] [WORKERS]}"
bs="${2:-32}"; steps="${3:-20}"; workers="${4:-2}"
shift $(( $# < 4 ? $# : 4 ))
fps() { grep "^ActualFPS" "$1" | awk '{print $3}'; }
net=DeepMar_ID0096_for_PyTorch
# 9 excluded warm-up steps as upstream; the epoch is long enough for the rest
bash "$here/test/train_performance_1p.sh" --data_path="$data" --batch_size="$bs" --max_steps="$steps" \
  --workers="$workers" --device_id=100 --fps_warmup_steps=3 "$@" > /dev/null
bash "$here/test/train_performance_1p.sh" --data_path="$data" --batch_size="$bs" --max_steps="$steps" \
  --workers="$workers" --device_id=101 --fps_warmup_steps=3 --no-amp --no-channels_last "$@" > /dev/null
fast=$(fps "$here/test/output/100/${net}_bs${bs}_1p_perf.log")
slow=$(fps "$here/test/output/101/${net}_bs${bs}_1p_perf.log")
echo "train FPS, --amp + channels_last : $fast images/sec"
echo "train FPS, fp32 contiguous       : $slow images/sec"
python3 -c "print(f'speed-up                         : {float($fast)/float($slow):.2f}x')"
python3 "$here/tools/bench_loader.py" --save_dir="$data" --batch_size="$bs" --workers="$workers" --batches=20

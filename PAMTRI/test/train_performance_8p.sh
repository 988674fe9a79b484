#!/usr/bin/env bash
# PAMTRI MultiTaskNet: performance on RANK_SIZE devices (default 8): bounded steps (default 200), no evaluation.
# --batch_size is global (default 256 = 8 x 32); FPS is the whole job's images/s.
# Usage: RANK_SIZE=8 bash test/train_performance_8p.sh --data_path=DIR [--max_steps=200] [--key=value ...]
Network="PAMTRI_for_PyTorch"; MODE=perf; RANK_SIZE=${RANK_SIZE:-8}; batch_size=256; epochs=1; max_steps=200
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
if [ $((batch_size % RANK_SIZE)) -ne 0 ]; then
  echo "[Error] --batch_size=$batch_size is not divisible by RANK_SIZE=$RANK_SIZE" >&2; exit 1
fi
zoo_setup
zoo_run MultiTaskNet/train.py -d veri -a densenet121 --root="$data_path" --multitask \
  --save-dir="$ZOO_OUT/densenet121-xent-htri-veri-multitask" --max-epoch="$epochs" --lr=0.0003 --lr_scaling=sqrt \
  --train-batch=$((batch_size / RANK_SIZE)) --workers="${workers:-4}" --amp --channels_last \
  --max_steps="$max_steps" --eval-step=0
zoo_summary --fps_pattern 'Fps_sum_avg : ([0-9.]+)' --fps_reduce last --acc_pattern 'mAP: ([0-9.]+)%' \
  --loss_pattern 'Loss [0-9.]+ \(([0-9.]+)\)'

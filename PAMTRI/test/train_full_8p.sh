#!/usr/bin/env bash
# PAMTRI MultiTaskNet: full training on RANK_SIZE devices (default 8), torchrun. --batch_size is global
# (default 256 = 8 x 32). Unlike upstream 8p (DistributedSampler, lr x8, mAP 69 -> 54), every device keeps
# identity-balanced batches of 8 ids x 4 and the lr is scaled by sqrt(devices): see README "8 devices".
# Usage: RANK_SIZE=8 bash test/train_full_8p.sh --data_path=DIR [--epochs=120] [--batch_size=256] [--key=value ...]
Network="PAMTRI_for_PyTorch"; MODE=acc; RANK_SIZE=${RANK_SIZE:-8}; batch_size=256; epochs=120
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
if [ $((batch_size % RANK_SIZE)) -ne 0 ]; then
  echo "[Error] --batch_size=$batch_size is not divisible by RANK_SIZE=$RANK_SIZE" >&2; exit 1
fi
zoo_setup
zoo_run MultiTaskNet/train.py -d veri -a densenet121 --root="$data_path" --multitask \
  --save-dir="$ZOO_OUT/densenet121-xent-htri-veri-multitask" --max-epoch="$epochs" --lr=0.0003 --lr_scaling=sqrt \
  --train-batch=$((batch_size / RANK_SIZE)) --workers="${workers:-4}" --amp --channels_last \
  ${max_steps:+--max_steps=$max_steps}
zoo_summary --fps_pattern 'Fps_sum_avg : ([0-9.]+)' --fps_reduce last --acc_pattern 'mAP: ([0-9.]+)%' \
  --loss_pattern 'Loss [0-9.]+ \(([0-9.]+)\)'

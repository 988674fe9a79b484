#!/usr/bin/env bash
# PAMTRI MultiTaskNet: evaluate a checkpoint on RANK_SIZE devices (default 8): each extracts features of a shard,
# rank 0 ranks them; fp32, as the evaluation printed by training.
# --batch_size: evaluation images per step OF EACH DEVICE (batch_scope=per_device: upstream's --test-batch is per
#   process, and a shard need not divide evenly); GlobalBatchSize = batch_size x RANK_SIZE. Training scripts differ:
#   their --batch_size is global.
# Usage: RANK_SIZE=8 bash test/train_eval_8p.sh --data_path=DIR --pth_path=CKPT [--batch_size=100] [--key=value ...]
Network="PAMTRI_for_PyTorch"; MODE=eval; RANK_SIZE=${RANK_SIZE:-8}; batch_size=100; batch_scope=per_device
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run MultiTaskNet/eval.py -d veri --root="$data_path" --ckpt_path="$pth_path" --test-batch="$batch_size" \
  --workers="${workers:-4}" --channels_last
zoo_summary --fps_pattern 'FPS = ([0-9.]+)' --fps_reduce last --acc_pattern 'mAP: ([0-9.]+)%'

#!/usr/bin/env bash
# HRNet: evaluation, 1 device: top-1/top-5 of --pth_path (e.g. output/imagenet/<cfg>/model_best.pth.tar)
# on the val folders, W18-C config.
# Usage: bash test/train_eval_1p.sh --data_path=DIR [--key=value ...]; other --flags go to eval.py unchanged.
Network="HRNet_ID1780_for_PyTorch"; MODE=eval; RANK_SIZE=1; batch_size=256
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run eval.py "$data_path" --cfg=experiments/cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml --testModel="$pth_path" --bs="$batch_size" --nproc="$(nproc)" \
  --device_id="$device_id" --amp ${workers:+--workers="$workers"}
zoo_summary --acc_pattern '^Test: .*?Accuracy@1 ([0-9.]+)'

#!/usr/bin/env bash
# HRNet: evaluation on RANK_SIZE devices (default 8): top-1/top-5 of --pth_path on the val folders,
# W18-C config; the devices read disjoint shards of val/ and the counts are summed (exact).
# Usage: bash test/train_eval_8p.sh --data_path=DIR --pth_path=FILE [--key=value ...]; other --flags go to eval.py unchanged.
Network="HRNet_ID1780_for_PyTorch"; MODE=eval; RANK_SIZE=${RANK_SIZE:-8}; batch_size=256
# (no --nproc here: torchrun's argparse takes it for an abbreviation of its --nproc-per-node)
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run eval.py "$data_path" --cfg=experiments/cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml --testModel="$pth_path" \
  --bs="$batch_size" --device_id="$device_id" --amp --workers="${workers:-$(( $(nproc) / RANK_SIZE ))}"
zoo_summary --acc_pattern '^Test: .*?Accuracy@1 ([0-9.]+)'

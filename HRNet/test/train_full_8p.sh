#!/usr/bin/env bash
# HRNet: full training, RANK_SIZE devices (default 8): W18-C, 100 epochs, batch 256 per device,
# lr 0.1 x devices (0.8 on 8), AMP (O2, loss scale 128). Checkpoints in output/imagenet/<cfg>/.
# Usage: bash test/train_full_8p.sh --data_path=DIR [--key=value ...]; other --flags go to train.py unchanged.
Network="HRNet_ID1780_for_PyTorch"; MODE=acc; RANK_SIZE=${RANK_SIZE:-8}; batch_size=256; epochs=100
# (no --nproc here: torchrun's argparse takes it for an abbreviation of its --nproc-per-node;
# the workers per process are nproc / RANK_SIZE, as the port computes them)
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run train.py "$data_path" --cfg=experiments/cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml --bs="$batch_size" --lr=0.1 --train_epochs="$epochs" --device_id="$device_id" \
  --amp --loss_scale=128 --print_freq=100 ${max_steps:+--max_steps="$max_steps"} \
  --workers="${workers:-$(( $(nproc) / RANK_SIZE ))}"
zoo_summary --fps_pattern 'Fps_Avg ([0-9.]+)' --fps_reduce last --acc_pattern '^Test: .*?Accuracy@1 ([0-9.]+)' \
  --loss_pattern '^Epoch: \[.*?\tLoss ([0-9.]+)'

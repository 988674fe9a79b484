#!/usr/bin/env bash
# HRNet: performance, 1 device: W18-C, batch 256, 201 steps (the port's --stop_step), then
# validation; reports Fps_Avg. --batch_size is PER DEVICE (the Ascend scripts' --bs).
# Checkpoints go to test/output/<id>/perf_1p (never the full scripts' folders); always starts fresh.
# Usage: bash test/train_performance_1p.sh --data_path=DIR [--key=value ...]; other --flags go to train.py unchanged.
Network="HRNet_ID1780_for_PyTorch"; MODE=perf; RANK_SIZE=1; batch_size=256; epochs=1; max_steps=201; batch_scope=per_device
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run train.py "$data_path" --cfg=experiments/cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml --bs="$batch_size" --lr=0.1 --train_epochs="$epochs" --nproc="$(nproc)" --device_id="$device_id" \
  --amp --loss_scale=128 --print_freq=100 ${max_steps:+--max_steps="$max_steps"} ${workers:+--workers="$workers"} \
  --modelDir="test/output/$ASCEND_DEVICE_ID/perf_1p" --fresh
zoo_summary --fps_pattern 'Fps_Avg ([0-9.]+)' --fps_reduce last --acc_pattern '^Test: .*?Accuracy@1 ([0-9.]+)' \
  --loss_pattern '^Epoch: \[.*?\tLoss ([0-9.]+)' --compile_pattern 'step_time = ([0-9.]+)'

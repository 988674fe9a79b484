#!/usr/bin/env bash
# HRNet: full training, 1 device: W18-C, 100 epochs, batch 256, lr 0.1, AMP (O2, loss scale 128).
# --batch_size is PER DEVICE (the Ascend scripts' --bs; here 1 device, so also the global batch).
# Checkpoints in test/output/<device id>/full_1p/imagenet/<cfg>/ (checkpoint.pth.tar, model_best.pth.tar,
# final_state.pth.tar; train_eval_1p.sh of the same device id evaluates final_state.pth.tar when no
# --pth_path is given). Running it again continues an interrupted run from there; --fresh starts over.
# Usage: bash test/train_full_1p.sh --data_path=DIR [--key=value ...]; other --flags go to train.py unchanged.
Network="HRNet_ID1780_for_PyTorch"; MODE=acc; RANK_SIZE=1; batch_size=256; epochs=100; batch_scope=per_device
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run train.py "$data_path" --cfg=experiments/cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml --bs="$batch_size" --lr=0.1 --train_epochs="$epochs" --nproc="$(nproc)" --device_id="$device_id" \
  --amp --loss_scale=128 --print_freq=100 ${max_steps:+--max_steps="$max_steps"} ${workers:+--workers="$workers"} \
  --modelDir="test/output/$ASCEND_DEVICE_ID/full_1p"
zoo_summary --fps_pattern 'Fps_Avg ([0-9.]+)' --fps_reduce last --acc_pattern '^Test: .*?Accuracy@1 ([0-9.]+)' \
  --loss_pattern '^Epoch: \[.*?\tLoss ([0-9.]+)'

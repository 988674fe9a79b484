#!/usr/bin/env bash
# Model card: train PoseEstNet (HRNet-W32, upstream yaml: 210 epochs, Adam 1e-3, steps 170/200) on one device.
# Checkpoints: ./output/veri/pose_hrnet/w32_256x256_adam_lr1e-3/, log: ./train_ascend.log
# Usage: bash scripts/run_single_train_ascend.sh DATA_PATH PRETRAINED_PATH DEVICE_ID [extra train.py flags / KEY VALUE]
# e.g.   bash scripts/run_single_train_ascend.sh ../data/veri hrnet_w32-36af842e.pth 0
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
run_single_train ascend Ascend "$@"

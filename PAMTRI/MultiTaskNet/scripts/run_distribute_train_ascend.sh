#!/usr/bin/env bash
# Model card: train MultiTaskNet on the Ascend devices of an hccl rank table (JSON, as hccl_tools.py writes it):
# one torchrun process per listed device (device i of the table = local rank i), keypoint-aware + multitask + h|s.
# 32 images (8 ids x 4) per device, lr scaled by sqrt(devices) (README "8 devices"). One machine: a table of several
# servers is refused with the way out. Log: ./device0/train0.log (rank 0 prints for all), checkpoints: ./ckpt/
# Usage: bash scripts/run_distribute_train_ascend.sh DATASET_PATH PRETRAIN_CKPT_PATH RANK_TABLE_FILE h|s [extra flags]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
card_train_distribute Ascend "$@"

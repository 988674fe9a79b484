#!/usr/bin/env bash
# Model card: train MultiTaskNet on RANK_SIZE GPUs with torchrun (the card used mpirun), keypoint-aware +
# multitask + h|s. 32 images (8 ids x 4) per device, lr scaled by sqrt(RANK_SIZE) (README "8 devices").
# Log: ./distribute_train_gpu.log, checkpoints (rank 0): ./ckpt/
# Usage: bash scripts/run_distribute_train_gpu.sh DATASET_PATH PRETRAIN_CKPT_PATH RANK_SIZE h|s [extra train.py flags]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
card_train_distribute GPU "$@"

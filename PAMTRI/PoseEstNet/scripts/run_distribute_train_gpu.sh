#!/usr/bin/env bash
# Model card: train PoseEstNet on RANK_SIZE devices with torchrun (TRAIN.BATCH_SIZE_PER_GPU images per device).
# Checkpoints (rank 0): ./output/veri/pose_hrnet/w32_256x256_adam_lr1e-3/, log: ./distribute_train_gpu.log
# Usage: bash scripts/run_distribute_train_gpu.sh DATA_PATH PRETRAINED_PATH RANK_SIZE [extra flags / KEY VALUE]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
run_distribute_train gpu GPU "$@"

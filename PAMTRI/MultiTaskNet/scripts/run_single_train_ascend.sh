#!/usr/bin/env bash
# Model card: train MultiTaskNet on one Ascend device: keypoint-aware + multitask + heatmaps (h) or segments (s),
# with the upstream schedule (120 epochs, Adam 3e-4, steps at 30/60). Log: ./train_ascend.log, checkpoints: ./ckpt/
# Usage: bash scripts/run_single_train_ascend.sh DATA_PATH PRETRAINED_PATH DEVICE_ID h|s [extra train.py flags]
# e.g.   bash scripts/run_single_train_ascend.sh ../data/ ../densenet121-a639ec97.pth 1 s
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
card_train_single Ascend "$@"

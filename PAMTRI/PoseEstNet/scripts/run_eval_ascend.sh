#!/usr/bin/env bash
# Model card: evaluate a PoseEstNet checkpoint on the keypoint test set (PCK table). Log: ./eval_ascend.log
# Usage: bash scripts/run_eval_ascend.sh DATA_PATH CKPT_PATH DEVICE_ID [extra eval.py flags / KEY VALUE]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
run_with_ckpt eval ascend Ascend "$@"

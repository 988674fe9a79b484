#!/usr/bin/env bash
# Model card: evaluate a checkpoint on an Ascend device (mAP, CMC, colour/type accuracy). The card gives the
# checkpoint first here and the data first in run_eval_gpu.sh: both orders work (the folder is the data).
# Log: ./eval_ascend.log
# Usage: bash scripts/run_eval_ascend.sh CKPT_PATH DATASET_PATH DEVICE_ID h|s [extra eval.py flags]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
card_eval Ascend "$@"

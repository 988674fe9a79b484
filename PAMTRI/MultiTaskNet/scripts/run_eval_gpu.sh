#!/usr/bin/env bash
# Model card: evaluate a checkpoint on a GPU (mAP, CMC, colour/type accuracy). The card lists the first two
# arguments in both orders; either works (the folder is the data). Log: ./eval_gpu.log
# Usage: bash scripts/run_eval_gpu.sh DATASET_PATH CKPT_PATH DEVICE_ID h|s [extra eval.py flags]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
card_eval GPU "$@"

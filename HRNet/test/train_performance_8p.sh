#!/usr/bin/env bash
# HRNet: performance, RANK_SIZE devices (default 8): W18-C, 201 steps, then validation; reports the
# whole job's Fps_Avg. --batch_size is PER DEVICE (the Ascend scripts' --bs): 256 each, 2048 per step
# on 8 (GlobalBatchSize). Loader workers per process = nproc // devices (--workers overrides).
# Checkpoints go to test/output/<id>/perf_8p (never the full scripts' folders); always starts fresh.
# Usage: bash test/train_performance_8p.sh --data_path=DIR [--key=value ...]; other --flags go to train.py unchanged.
Network="HRNet_ID1780_for_PyTorch"; MODE=perf; RANK_SIZE=${RANK_SIZE:-8}; batch_size=256; epochs=1; max_steps=201
batch_scope=per_device
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/hrnet_card.sh"
zoo_parse_args "$@"
zoo_setup
hrnet_train --modelDir="test/output/$ASCEND_DEVICE_ID/perf_8p" --fresh
zoo_summary "${HRNET_TRAIN_SUMMARY[@]}"

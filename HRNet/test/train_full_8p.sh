#!/usr/bin/env bash
# HRNet: full training, RANK_SIZE devices (default 8): W18-C, 100 epochs, lr 0.1 x devices (0.8 on 8),
# AMP (O2, loss scale 128). --batch_size is PER DEVICE (the Ascend scripts' --bs): 256 per device,
# 2048 images per step on 8 (GlobalBatchSize in the summary); train.py does the arithmetic.
# Loader workers per process = nproc // devices, as the port computes them (--workers overrides).
# Checkpoints in test/output/<device id>/full_8p/imagenet/<cfg>/ (train_eval_8p.sh of the same device id
# evaluates its final_state.pth.tar when no --pth_path is given). --max_restarts=N: a job whose worker
# died restarts and continues from that folder's last checkpoint.
# Usage: bash test/train_full_8p.sh --data_path=DIR [--key=value ...]; other --flags go to train.py unchanged.
Network="HRNet_ID1780_for_PyTorch"; MODE=acc; RANK_SIZE=${RANK_SIZE:-8}; batch_size=256; epochs=100
batch_scope=per_device
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/hrnet_card.sh"
zoo_parse_args "$@"
zoo_setup
hrnet_train --modelDir="test/output/$ASCEND_DEVICE_ID/full_8p"
zoo_summary "${HRNET_TRAIN_SUMMARY[@]}"

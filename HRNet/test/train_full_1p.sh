#!/usr/bin/env bash
# HRNet: full training, 1 device: W18-C, 100 epochs, batch 256, lr 0.1, AMP (O2, loss scale 128).
# --batch_size is PER DEVICE (the Ascend scripts' --bs; here 1 device, so also the global batch).
# Checkpoints in test/output/<device id>/full_1p/imagenet/<cfg>/ (checkpoint.pth.tar, model_best.pth.tar,
# final_state.pth.tar; train_eval_1p.sh of the same device id evaluates final_state.pth.tar when no
# --pth_path is given). Running it again continues an interrupted run from there; --fresh starts over.
# Usage: bash test/train_full_1p.sh --data_path=DIR [--key=value ...]; other --flags go to train.py unchanged.
Network="HRNet_ID1780_for_PyTorch"; MODE=acc; RANK_SIZE=1; batch_size=256; epochs=100; batch_scope=per_device
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/hrnet_card.sh"
zoo_parse_args "$@"
zoo_setup
hrnet_train --modelDir="test/output/$ASCEND_DEVICE_ID/full_1p"
zoo_summary "${HRNET_TRAIN_SUMMARY[@]}"

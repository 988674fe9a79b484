#!/usr/bin/env bash
# HRNet: evaluation, 1 device: top-1/top-5 of --pth_path on the val folders, W18-C config.
# Without --pth_path (the model card's form) it evaluates final_state.pth.tar of train_full_1p.sh of the
# same device id: test/output/<id>/full_1p/imagenet/<cfg>/final_state.pth.tar (the weights whose last
# `Test:` line that run's summary reports; --cfg/--modelDir as given to it), and ends with one line
# naming that path when there is none. --batch_size is PER DEVICE (here the one device's).
# Usage: bash test/train_eval_1p.sh --data_path=DIR [--pth_path=FILE] [--key=value ...]; other --flags go to eval.py
# unchanged.
Network="HRNet_ID1780_for_PyTorch"; MODE=eval; RANK_SIZE=1; batch_size=256; batch_scope=per_device
HRNET_TRAINED_BY=full_1p
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/hrnet_card.sh"
zoo_parse_args "$@"
zoo_setup
hrnet_eval
zoo_summary "${HRNET_ACC[@]}"

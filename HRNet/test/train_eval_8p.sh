#!/usr/bin/env bash
# HRNet: evaluation on RANK_SIZE devices (default 8): top-1/top-5 of --pth_path on the val folders,
# W18-C config; the devices read disjoint shards of val/ and the counts are summed (exact).
# Without --pth_path it evaluates final_state.pth.tar of train_full_8p.sh of the same device id:
# test/output/<id>/full_8p/imagenet/<cfg>/final_state.pth.tar (one line naming it when there is none).
# --batch_size is PER DEVICE. Loader workers per process = nproc // devices (--workers overrides).
# Usage: bash test/train_eval_8p.sh --data_path=DIR [--pth_path=FILE] [--key=value ...]; other --flags go to eval.py
# unchanged.
Network="HRNet_ID1780_for_PyTorch"; MODE=eval; RANK_SIZE=${RANK_SIZE:-8}; batch_size=256; batch_scope=per_device
HRNET_TRAINED_BY=full_8p
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/hrnet_card.sh"
zoo_parse_args "$@"
zoo_setup
hrnet_eval
zoo_summary "${HRNET_ACC[@]}"

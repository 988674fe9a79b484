#!/usr/bin/env bash
# HRNet: performance, 1 device: W18-C, batch 256, 201 steps (the port's --stop_step), then
# validation; reports Fps_Avg. --batch_size is PER DEVICE (the Ascend scripts' --bs).
# Checkpoints go to test/output/<id>/perf_1p (never the full scripts' folders); always starts fresh.
# Usage: bash test/train_performance_1p.sh --data_path=DIR [--key=value ...]; other --flags go to train.py unchanged.
Network="HRNet_ID1780_for_PyTorch"; MODE=perf; RANK_SIZE=1; batch_size=256; epochs=1; max_steps=201
batch_scope=per_device
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/hrnet_card.sh"
zoo_parse_args "$@"
zoo_setup
hrnet_train --modelDir="test/output/$ASCEND_DEVICE_ID/perf_1p" --fresh
zoo_summary "${HRNET_TRAIN_SUMMARY[@]}" --compile_pattern 'step_time = ([0-9.]+)'

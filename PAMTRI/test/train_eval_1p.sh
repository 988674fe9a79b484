#!/usr/bin/env bash
# PAMTRI MultiTaskNet: evaluate a checkpoint (query vs gallery = image_test), 1 device, in fp32 like the
# evaluation training prints. Channels and heads come from the checkpoint. Accuracy = mAP (%); FPS = test images/s.
# --batch_size: evaluation images per step (batch_scope=global; one process, so also its --test-batch).
# Ascend CI accuracy line (`grep -a mAP LOG | awk 'END {print}' | ...`) reads the same mAP as the summary.
# Usage: bash test/train_eval_1p.sh --data_path=DIR --pth_path=CKPT [--batch_size=100] [--key=value ...]
Network="PAMTRI_for_PyTorch"; MODE=eval; RANK_SIZE=1; batch_size=100; batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run MultiTaskNet/eval.py -d veri --root="$data_path" --ckpt_path="$pth_path" --test-batch="$batch_size" \
  --workers="${workers:-4}" --device_id="$device_id" --channels_last
zoo_summary --fps_pattern 'FPS = ([0-9.]+)' --fps_reduce last --acc_pattern 'mAP: ([0-9.]+)%'

#!/usr/bin/env bash
# PAMTRI MultiTaskNet: performance, 1 device: a bounded number of steps (default 200), no evaluation, reports FPS.
# --batch_size: the job's global batch, images per optimizer step over all devices (batch_scope=global; here 1).
# Checkpoints: test/output/<id>/densenet121-xent-htri-veri-multitask_perf/ (never the full run's folder).
# FPS = the last `Fps_sum_avg` (upstream's `awk '{print $13}'` on `Fps` lines is empty: see train_full_1p.sh).
# Usage: bash test/train_performance_1p.sh --data_path=DIR [--max_steps=200] [--batch_size=32] [--key=value ...]
Network="PAMTRI_for_PyTorch"; MODE=perf; RANK_SIZE=1; batch_size=32; epochs=1; max_steps=200; batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run MultiTaskNet/train.py -d veri -a densenet121 --root="$data_path" --keyptaware=False --multitask \
  --save-dir="$ZOO_OUT/densenet121-xent-htri-veri-multitask_perf" --max-epoch="$epochs" --lr=0.0003 \
  --batch_size="$batch_size" --workers="${workers:-4}" --device_id="$device_id" --amp --channels_last \
  --max_steps="$max_steps" --eval-step=0
zoo_summary --fps_pattern 'Fps_sum_avg : ([0-9.]+)' --fps_reduce last --acc_pattern 'mAP: ([0-9.]+)%' \
  --loss_pattern 'Loss [0-9.]+ \(([0-9.]+)\)'

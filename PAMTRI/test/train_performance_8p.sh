#!/usr/bin/env bash
# PAMTRI MultiTaskNet: performance on RANK_SIZE devices (default 8): bounded steps (default 200), no evaluation.
# --batch_size: the job's global batch, images per optimizer step over all devices (batch_scope=global, default
#   256 = 8 x 32); train.py divides it by the number of processes. FPS is the whole job's images/s.
# Checkpoints: test/output/<id>/densenet121-xent-htri-veri-multitask_8p_perf/ (never another script's folder).
# Usage: RANK_SIZE=8 bash test/train_performance_8p.sh --data_path=DIR [--max_steps=200] [--key=value ...]
Network="PAMTRI_for_PyTorch"; MODE=perf; RANK_SIZE=${RANK_SIZE:-8}; batch_size=256; epochs=1; max_steps=200
batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run MultiTaskNet/train.py -d veri -a densenet121 --root="$data_path" --keyptaware=False --multitask \
  --save-dir="$ZOO_OUT/densenet121-xent-htri-veri-multitask_8p_perf" --max-epoch="$epochs" --lr=0.0003 \
  --lr_scaling=sqrt --batch_size="$batch_size" --workers="${workers:-4}" --amp --channels_last \
  --max_steps="$max_steps" --eval-step=0
zoo_summary --fps_pattern 'Fps_sum_avg : ([0-9.]+)' --fps_reduce last --acc_pattern 'mAP: ([0-9.]+)%' \
  --loss_pattern 'Loss [0-9.]+ \(([0-9.]+)\)'

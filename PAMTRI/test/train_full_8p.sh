#!/usr/bin/env bash
# PAMTRI MultiTaskNet: full training on RANK_SIZE devices (default 8), torchrun. Unlike upstream 8p
# (DistributedSampler, lr x8, mAP 69 -> 54), every device keeps identity-balanced batches of 8 ids x 4 and the lr is
# scaled by sqrt(devices): see README "8 devices".
# --batch_size: the job's global batch, images per optimizer step over all devices (batch_scope=global, default
#   256 = 8 x 32); train.py divides it by the number of processes (it must divide evenly) in one place.
# Checkpoints (rank 0's): test/output/<id>/densenet121-xent-htri-veri-multitask_8p/. Before each evaluation every
#   rank takes rank 0's BatchNorm statistics, so the printed mAP is the saved checkpoint's.
# Ascend CI lines: as train_full_1p.sh (the FPS `$13` quirk included).
# Usage: RANK_SIZE=8 bash test/train_full_8p.sh --data_path=DIR [--epochs=120] [--batch_size=256] [--key=value ...]
Network="PAMTRI_for_PyTorch"; MODE=acc; RANK_SIZE=${RANK_SIZE:-8}; batch_size=256; epochs=120; batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run MultiTaskNet/train.py -d veri -a densenet121 --root="$data_path" --keyptaware=False --multitask \
  --save-dir="$ZOO_OUT/densenet121-xent-htri-veri-multitask_8p" --max-epoch="$epochs" --lr=0.0003 --lr_scaling=sqrt \
  --batch_size="$batch_size" --workers="${workers:-4}" --amp --channels_last \
  ${max_steps:+--max_steps=$max_steps}
zoo_summary --fps_pattern 'Fps_sum_avg : ([0-9.]+)' --fps_reduce last --acc_pattern 'mAP: ([0-9.]+)%' \
  --loss_pattern 'Loss [0-9.]+ \(([0-9.]+)\)'

#!/usr/bin/env bash
# PAMTRI MultiTaskNet: full training, 1 device. Upstream PyTorch recipe (--multitask without keypoints, 120 epochs,
# Adam lr 3e-4, batches of 8 ids x 4 images), AMP + channels_last. Extra switches pass through: --heatmapaware,
# --segmentaware, --keyptaware (the model card's model), --pre_ckpt_path=densenet121-a639ec97.pth, ...
# --batch_size: the job's global batch, images per optimizer step over all devices (batch_scope=global, as the
#   Ascend scripts); train.py splits it over the processes (here 1).
# Checkpoints: test/output/<id>/densenet121-xent-htri-veri-multitask/ (this script's own folder).
# Ascend CI lines: accuracy = the last `mAP: x%`, loss = the last step line's `(avg)`; FPS: upstream's
#   `grep Fps | awk '{print $13}'` ends on the `Fps_sum_avg : x` line and is empty (upstream quirk, kept):
#   the summary reads the last `Fps_sum_avg` (= `grep -a Fps_sum_avg LOG | awk 'END {print $3}'`).
# Usage: bash test/train_full_1p.sh --data_path=DIR [--epochs=120] [--batch_size=32] [--key=value ...]
Network="PAMTRI_for_PyTorch"; MODE=acc; RANK_SIZE=1; batch_size=32; epochs=120; batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run MultiTaskNet/train.py -d veri -a densenet121 --root="$data_path" --keyptaware=False --multitask \
  --save-dir="$ZOO_OUT/densenet121-xent-htri-veri-multitask" --max-epoch="$epochs" --lr=0.0003 \
  --batch_size="$batch_size" --workers="${workers:-4}" --device_id="$device_id" --amp --channels_last \
  ${max_steps:+--max_steps=$max_steps}
zoo_summary --fps_pattern 'Fps_sum_avg : ([0-9.]+)' --fps_reduce last --acc_pattern 'mAP: ([0-9.]+)%' \
  --loss_pattern 'Loss [0-9.]+ \(([0-9.]+)\)'

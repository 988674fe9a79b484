#!/usr/bin/env bash
# LResNet100E-IR: evaluation on 1 device (port eval.py: 10 folds, flip TTA).
# Usage: bash test/train_eval_1p.sh --data_path=DIR/lfw.bin --pth_path=CHECKPOINT|FOLDER [--key=value ...]
# --data_path may also be the faces_emore folder (its lfw.bin; --targets=all for every .bin). A folder as
# --pth_path (the card's form) evaluates its newest model file, named in the log.
# --batch_size is the GLOBAL batch (per device = batch_size / RANK_SIZE; 512 per device by default):
# batch_scope=global, so GlobalBatchSize = BatchSize. --nfolds=5 --flip=0 --use_amp=1 is the per-epoch
# protocol of training: with it the accuracy equals the training log's for the same checkpoint.
Network="LResNet100E"; MODE=eval; RANK_SIZE=1; batch_size=512; batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run eval.py --data_path="$data_path" --pth_path="$pth_path" --batch-size="$batch_size" \
  --device_id="$device_id" ${workers:+--num_workers=$workers}
zoo_summary --acc_pattern '[a-z0-9_]+_accuracy:\s+([0-9.]+)'

#!/usr/bin/env bash
# LResNet100E-IR: evaluation on 8 devices (RANK_SIZE overrides 8; port eval.py: 10 folds, flip TTA).
# Usage: bash test/train_eval_8p.sh --data_path=DIR/lfw.bin --pth_path=CHECKPOINT|FOLDER [--key=value ...]
# --data_path may also be the faces_emore folder (its lfw.bin; --targets=all for every .bin). A folder as
# --pth_path (the card's form) evaluates its newest model file, named in the log.
# --batch_size is the GLOBAL batch (per device = batch_size / RANK_SIZE; 4096 = 512 x 8 by default):
# batch_scope=global, so GlobalBatchSize = BatchSize. Each device embeds blocks of the per-device batch,
# so the result equals train_eval_1p.sh with the same per-device batch, bit for bit.
Network="LResNet100E"; MODE=eval; RANK_SIZE=${RANK_SIZE:-8}; batch_size=4096; batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run eval.py --data_path="$data_path" --pth_path="$pth_path" --batch-size="$batch_size" \
  --device_id="$device_id" ${workers:+--num_workers=$workers} --distributed=1
zoo_summary --acc_pattern '[a-z0-9_]+_accuracy:\s+([0-9.]+)'

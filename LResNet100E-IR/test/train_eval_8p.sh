#!/usr/bin/env bash
# LResNet100E-IR: evaluation on 8p (port eval.py: 10 folds, flip TTA). Usage:
#   bash test/train_eval_8p.sh --data_path=DIR/lfw.bin --pth_path=CHECKPOINT [--key=value ...]
# --data_path may also be the faces_emore folder (its lfw.bin; --targets=all for every .bin).
Network="LResNet100E"; MODE=eval; RANK_SIZE=${RANK_SIZE:-8}; batch_size=4096
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run eval.py --data_path="$data_path" --pth_path="$pth_path" --batch-size="$batch_size" \
  --device_id="$device_id" ${workers:+--num_workers=$workers} --distributed=1
zoo_summary --acc_pattern '[a-z0-9_]+_accuracy:\s+([0-9.]+)'

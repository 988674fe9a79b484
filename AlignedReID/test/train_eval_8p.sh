#!/usr/bin/env bash
# AlignedReID: evaluate a checkpoint (8p script; evaluation runs on device 0): CMC, mAP, re-ranking.
# Usage: bash test/train_eval_8p.sh --data_path=DIR --pth_path=CKPT_OR_ITS_FOLDER [--key=value ...]
Network="AlignedReID_for_PyTorch"; MODE=eval; RANK_SIZE=${RANK_SIZE:-8}; batch_size=32
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run eval.py --data_path="$data_path" --pth_path="$pth_path" --eval_batch_size="$batch_size" \
  --npu="$device_id" ${workers:+--workers=$workers}
zoo_summary --fps_pattern 'extracted features of [0-9]+ images in [0-9.]+s: ([0-9.]+) images/sec' \
  --acc_pattern 'for Global Distance\.\.\.\nDone, [0-9.]+s\n\[mAP: [0-9.]+%\], \[cmc1: ([0-9.]+)%'

#!/usr/bin/env bash
# Model card: evaluate a PoseEstNet checkpoint on the keypoint test set (PCK table). Log: ./eval_gpu.log
# Usage: bash scripts/run_eval_gpu.sh DATA_PATH CKPT_PATH DEVICE_ID [extra eval.py flags / KEY VALUE]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
need_args 3 "$0 DATA_PATH CKPT_PATH DEVICE_ID [extra flags]" "$@"
data="$(abspath "$1")"; ckpt="$(abspath "$2")"; device_id="$3"
shift 3
python3 "$POSE_DIR/eval.py" --cfg "$POSE_CFG" --data_dir="$data" --ckpt_path="$ckpt" \
  --device_target="${DEVICE_TARGET:-GPU}" --device_id="$device_id" "$@" 2>&1 | tee eval_gpu.log
exit "${PIPESTATUS[0]}"

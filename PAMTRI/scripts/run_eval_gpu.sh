#!/usr/bin/env bash
# Model card: evaluate a checkpoint (mAP, CMC, colour/type accuracy). The card gives the first two arguments in
# both orders; either works (the checkpoint is the file). Log: ./eval_gpu.log
# Usage: bash scripts/run_eval_gpu.sh DATASET_PATH CKPT_PATH DEVICE_ID h|s [extra eval.py flags]
if [ $# -lt 4 ]; then
  echo "Usage: bash $0 DATASET_PATH CKPT_PATH DEVICE_ID h|s [extra eval.py flags]" >&2; exit 1
fi
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
data="$1"; ckpt="$2"
if [ -f "$data" ] && [ ! -f "$ckpt" ]; then data="$2"; ckpt="$1"; fi
chan=$(channel_flag "$4") || exit 1
device_id="$3"; shift 4
python3 "$MTN_DIR/eval.py" --root="$(abspath "$data")" --ckpt_path="$(abspath "$ckpt")" \
  --device_target="$DEVICE_TARGET" --device_id="$device_id" "$chan" "$@" 2>&1 | tee eval_gpu.log
exit "${PIPESTATUS[0]}"

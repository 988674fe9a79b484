#!/usr/bin/env bash
# Model card: train MultiTaskNet on one device, keypoint-aware + multitask + heatmaps (h) or segments (s),
# with the upstream schedule (120 epochs, Adam 3e-4, steps at 30/60). Log: ./train_gpu.log, checkpoints: ./ckpt/
# Usage: bash scripts/run_single_train_gpu.sh DATA_PATH PRETRAINED_PATH DEVICE_ID h|s [extra train.py flags]
# e.g.   bash scripts/run_single_train_gpu.sh ../data/ ../densenet121-a639ec97.pth 0 h
if [ $# -lt 4 ]; then
  echo "Usage: bash $0 DATA_PATH PRETRAINED_PATH DEVICE_ID h|s [extra train.py flags]" >&2; exit 1
fi
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
data="$(abspath "$1")"; device_id="$3"
chan=$(channel_flag "$4") || exit 1
pre=$(pretrained_flag "$2") || exit 1
pre_args=(); [ -n "$pre" ] && pre_args=("$pre")
shift 4
python3 "$MTN_DIR/train.py" --root="$data" --distribute=False --device_target="$DEVICE_TARGET" \
  --device_id="$device_id" --keyptaware --multitask "$chan" "${pre_args[@]}" --save-dir=./ckpt "$@" 2>&1 | tee train_gpu.log
exit "${PIPESTATUS[0]}"

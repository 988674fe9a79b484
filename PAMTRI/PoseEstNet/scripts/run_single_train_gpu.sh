#!/usr/bin/env bash
# Model card: train PoseEstNet (HRNet-W32, upstream yaml: 210 epochs, Adam 1e-3, steps 170/200) on one device.
# Checkpoints: ./output/veri/pose_hrnet/w32_256x256_adam_lr1e-3/, log: ./train_gpu.log
# Usage: bash scripts/run_single_train_gpu.sh DATA_PATH PRETRAINED_PATH DEVICE_ID [extra train.py flags / KEY VALUE]
# e.g.   bash scripts/run_single_train_gpu.sh ../data/veri hrnet_w32-36af842e.pth 0
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
need_args 3 "$0 DATA_PATH PRETRAINED_PATH DEVICE_ID [extra flags]" "$@"
data="$(abspath "$1")"; device_id="$3"
pre=$(pretrained_flags "$2") || exit 1
shift 3
# shellcheck disable=SC2086
python3 "$POSE_DIR/train.py" --cfg "$POSE_CFG" --data_dir="$data" --distribute=False \
  --device_target="${DEVICE_TARGET:-GPU}" --device_id="$device_id" $pre "$@" 2>&1 | tee train_gpu.log
exit "${PIPESTATUS[0]}"

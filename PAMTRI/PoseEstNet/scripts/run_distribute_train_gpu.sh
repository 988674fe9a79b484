#!/usr/bin/env bash
# Model card: train PoseEstNet on RANK_SIZE devices with torchrun (TRAIN.BATCH_SIZE_PER_GPU images per device).
# Checkpoints (rank 0): ./output/veri/pose_hrnet/w32_256x256_adam_lr1e-3/, log: ./distribute_train_gpu.log
# Usage: bash scripts/run_distribute_train_gpu.sh DATA_PATH PRETRAINED_PATH RANK_SIZE [extra flags / KEY VALUE]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
need_args 3 "$0 DATA_PATH PRETRAINED_PATH RANK_SIZE [extra flags]" "$@"
data="$(abspath "$1")"; rank_size="$3"
pre=$(pretrained_flags "$2") || exit 1
shift 3
# shellcheck disable=SC2086
python3 -m torch.distributed.run --standalone --nproc_per_node="$rank_size" "$POSE_DIR/train.py" --cfg "$POSE_CFG" \
  --data_dir="$data" --distribute=True --device_target="${DEVICE_TARGET:-GPU}" $pre "$@" 2>&1 \
  | tee distribute_train_gpu.log
exit "${PIPESTATUS[0]}"

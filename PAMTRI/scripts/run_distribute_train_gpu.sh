#!/usr/bin/env bash
# Model card: train MultiTaskNet on RANK_SIZE devices with torchrun (the card used mpirun), keypoint-aware +
# multitask + h|s. 32 images (8 ids x 4) per device, lr scaled by sqrt(RANK_SIZE) (README "8 devices").
# Log: ./distribute_train_gpu.log, checkpoints (rank 0): ./ckpt/
# Usage: bash scripts/run_distribute_train_gpu.sh DATASET_PATH PRETRAIN_CKPT_PATH RANK_SIZE h|s [extra flags]
if [ $# -lt 4 ]; then
  echo "Usage: bash $0 DATASET_PATH PRETRAIN_CKPT_PATH RANK_SIZE h|s [extra train.py flags]" >&2; exit 1
fi
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
data="$(abspath "$1")"; rank_size="$3"
chan=$(channel_flag "$4") || exit 1
pre=$(pretrained_flag "$2") || exit 1
pre_args=(); [ -n "$pre" ] && pre_args=("$pre")
shift 4
python3 -m torch.distributed.run --standalone --nproc_per_node="$rank_size" "$MTN_DIR/train.py" --root="$data" \
  --distribute=True --device_target="$DEVICE_TARGET" --keyptaware --multitask "$chan" "${pre_args[@]}" --save-dir=./ckpt \
  "$@" 2>&1 | tee distribute_train_gpu.log
exit "${PIPESTATUS[0]}"

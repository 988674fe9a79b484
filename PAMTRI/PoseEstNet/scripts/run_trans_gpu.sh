#!/usr/bin/env bash
# Model card: write MultiTaskNet's inputs with a trained PoseEstNet: heatmap_<split>/, segment_<split>/,
# pose_<split>.csv and the keypoint columns of label_<split>.csv, beside the images. Log: ./trans_gpu.log
# DATA_PATH is MultiTaskNet's VeRi folder (<root>/veri, with image_<split>/ and label_<split>.csv) or its parent.
# Usage: bash scripts/run_trans_gpu.sh DATA_PATH CKPT_PATH DEVICE_ID [extra trans.py flags / KEY VALUE]
# e.g.   bash scripts/run_trans_gpu.sh /data/veri model_best.pth 0
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
run_with_ckpt trans gpu GPU "$@"

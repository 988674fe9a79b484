#!/usr/bin/env bash
# Model card: Ascend 310 offline inference (ascend_310_infer/, an ACL C++ program on a MindIR file). It needs the
# CANN toolkit and a 310 card and is not part of this PyTorch port; this script says so and what to run instead.
# Usage (card): bash scripts/run_infer_310.sh MINDIR_PATH DATASET_PATH NEED_PREPROCESS DEVICE_TARGET DEVICE_ID \
#               NEED_HEATMAP NEED_SEGMENT
echo "[Error] Ascend 310 offline inference (ascend_310_infer/, ACL C++) is not part of this PyTorch port:" \
  "export ONNX with 'python export.py --ckpt_path CKPT', convert it on a CANN machine with atc" \
  "(README: Ascend 310), or evaluate the ONNX file here with scripts/run_onnx_eval_gpu.sh" >&2
exit 1

#!/usr/bin/env bash
# Model card: evaluate an ONNX model from MultiTaskNet/export.py with onnxruntime (CUDA provider when
# onnxruntime-gpu is installed, else the CPU). Log: ./eval_onnx_gpu.log
# Usage: bash scripts/run_onnx_eval_gpu.sh DATASET_PATH ONNX_PATH DEVICE_ID h|s [extra eval_onnx.py flags]
if [ $# -lt 4 ]; then
  echo "Usage: bash $0 DATASET_PATH ONNX_PATH DEVICE_ID h|s [extra eval_onnx.py flags]" >&2; exit 1
fi
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
chan=$(channel_flag "$4") || exit 1
data="$(abspath "$1")"; onnx="$(abspath "$2")"; device_id="$3"; shift 4
python3 "$MTN_DIR/eval_onnx.py" --root="$data" --onnx_path="$onnx" --device_target="$DEVICE_TARGET" \
  --device_id="$device_id" "$chan" "$@" 2>&1 | tee eval_onnx_gpu.log
exit "${PIPESTATUS[0]}"

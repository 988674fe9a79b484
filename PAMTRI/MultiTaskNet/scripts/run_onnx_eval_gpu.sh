#!/usr/bin/env bash
# Model card: evaluate an ONNX model from MultiTaskNet/export.py with onnxruntime (CUDA provider when
# onnxruntime-gpu is installed, else the CPU). Log: ./eval_onnx_gpu.log
# Usage: bash scripts/run_onnx_eval_gpu.sh DATASET_PATH ONNX_PATH DEVICE_ID h|s [extra eval_onnx.py flags]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
card_onnx_eval GPU "$@"

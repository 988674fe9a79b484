#!/usr/bin/env bash
# DeepMar on demo data: raw PETA -> prepare -> short full training (tiny backbone) -> eval of the
# checkpoint. Usage: bash tools/demo.sh [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-/tmp/deepmar_demo}"
data=$(python3 "$here/tools/make_demo_data.py" "$out/peta" | tail -n 1)
tiny=(--arch=resnet50_tiny "--resize=(64,64)" --new_params_lr=0.01 --finetuned_params_lr=0.01 --seed=3)
bash "$here/test/train_full_1p.sh" --data_path="$data" --batch_size=32 --epochs=10 --workers=2 "${tiny[@]}"
bash "$here/test/train_eval_1p.sh" --data_path="$data" --workers=2 \
  --pth_path="$here/test/output/${ASCEND_DEVICE_ID:-0}/exp/model/ckpt_epoch10.pth"
grep -A6 "^Evaluation on" "$here/test/output/${ASCEND_DEVICE_ID:-0}/eval_${ASCEND_DEVICE_ID:-0}.log"

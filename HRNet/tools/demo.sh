#!/usr/bin/env bash
# HRNet demo on the embedded demo data: write demo ImageNet folders, train the tiny (not upstream)
# demo config with test/train_full_1p.sh, then evaluate its checkpoint with test/train_eval_1p.sh.
# About a minute on 2 idle CPU cores. Usage: bash tools/demo.sh [OUT_DIR]
set -euo pipefail
# one intra-op thread beside the loader worker fills 2 cores without OpenMP spin-waiting
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$(python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "${1:-$here/demo_out}")"
data="$(python3 "$here/tools/make_demo_data.py" "$out/data" --train_per_class 32 --val_per_class 8 | tail -n 1)"
run=(--data_path="$data" --cfg=demo_tiny --batch_size=32 --workers=1)
bash "$here/test/train_full_1p.sh" "${run[@]}" --lr=0.01 --epochs=4 --print_freq=5 --modelDir="$out/output" --fresh
bash "$here/test/train_eval_1p.sh" "${run[@]}" --pth_path="$out/output/imagenet/cls_hrnet_demo_tiny/final_state.pth.tar"
echo "[demo] HRNet: chance is 10 % top-1 (10 classes); summaries in $here/test/output/${ASCEND_DEVICE_ID:-0}/"

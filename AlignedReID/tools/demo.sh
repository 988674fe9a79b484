#!/usr/bin/env bash
# AlignedReID demo on the embedded demo data: write a raw Market-1501 look-alike, prepare it,
# train briefly (test/train_full_1p.sh, tiny backbone) and evaluate the checkpoint
# (test/train_eval_1p.sh). About a minute on 2 idle CPU cores.
# The training run folder (ckpt.pth, metrics.jsonl) is OUT_DIR/train_full_1p; the scripts' logs and
# summaries stay in test/output/<device id>/ as always.
# Usage: bash tools/demo.sh [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$(python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "${1:-$here/../demo_out/AlignedReID}")"
if [ -f "$out/market1501/partitions.pkl" ]; then
  data="$out/market1501"
else
  data="$(python3 "$here/tools/make_demo_data.py" "$out" | tail -n 1)"
fi
echo "[demo] AlignedReID data: $data"
bash "$here/test/train_full_1p.sh" --data_path="$data" --batch_size=32 --epochs=8 --base_lr=1e-3 --seed=0 \
  --arch=tiny --resize_h_w=128,64 --workers=0 --log_steps=1 --exp_dir="$out/train_full_1p"
# the card's --pth_path form: the run folder (its ckpt.pth)
bash "$here/test/train_eval_1p.sh" --data_path="$data" --workers=0 --pth_path="$out/train_full_1p"

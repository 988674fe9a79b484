#!/usr/bin/env bash
# LResNet100E-IR demo: raw demo faces_emore -> prepare -> short train_full_1p -> train_eval_1p on its
# checkpoint. A tiny IR-SE net on 56 px faces so it ends in about 3 minutes on 2 CPU cores.
# The training run's folder (checkpoints + metrics.jsonl) is OUT/full_1p, where the top-level
# tools/demo.sh finds the metrics file and draws its curves.
# Usage: bash tools/demo.sh [OUT]   (default OUT: /tmp/lresnet100e_ir_demo)
set -euo pipefail
OUT="${1:-/tmp/lresnet100e_ir_demo}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$(command -v python3)"
mkdir -p "$OUT"
DATA="$("$PY" "$HERE/tools/make_demo_data.py" "$OUT" --size=56 --ids=16 --per_id=24 | tail -n 1)"
echo "[demo] data: $DATA"
TINY=(--input_size=56 --units=1,1,1,1 --widths=16,32,64,128 --milestones=6)
bash "$HERE/test/train_full_1p.sh" --data_path="$DATA" --batch_size=32 --epochs=8 --lr=0.1 --workers=1 \
  --save_dir="$OUT/full_1p" "${TINY[@]}"
bash "$HERE/test/train_eval_1p.sh" --data_path="$DATA/lfw.bin" --pth_path="$OUT/full_1p/last.pth"

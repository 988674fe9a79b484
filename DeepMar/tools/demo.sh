#!/usr/bin/env bash
# DeepMar on demo data: raw PETA -> prepare -> short full training (tiny backbone) -> eval of the
# checkpoint, then a second short training at a 10x smaller learning rate and the curves of both
# runs overlaid (tools/plot_runs.py). Every run folder (checkpoints + metrics.jsonl) is under OUT_DIR.
# Usage: bash tools/demo.sh [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$(python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "${1:-/tmp/deepmar_demo}")"
data=$(python3 "$here/tools/make_demo_data.py" "$out/peta" | tail -n 1)
tiny=(--arch=resnet50_tiny "--resize=(64,64)" --seed=3)
id="${ASCEND_DEVICE_ID:-0}"
# the card's full script (its log and summary stay in test/output/<id>); its run folder under OUT_DIR
bash "$here/test/train_full_1p.sh" --data_path="$data" --batch_size=32 --epochs=10 --workers=2 "${tiny[@]}" \
  --new_params_lr=0.01 --finetuned_params_lr=0.01 --exp_dir="$out/lr0.01"
bash "$here/test/train_eval_1p.sh" --data_path="$data" --workers=2 --pth_path="$out/lr0.01/model/ckpt_epoch10.pth"
grep -A6 "^Evaluation on" "$here/test/output/$id/eval_$id.log"
# the same recipe at lr 0.001, straight through train.py (fp32, evaluated every 2 epochs)
python3 "$here/train.py" --save_dir="$data" --batch_size=32 --total_epochs=10 --workers=2 "${tiny[@]}" \
  --new_params_lr=0.001 --finetuned_params_lr=0.001 --epochs_per_val=2 --steps_per_log=1 \
  --exp_dir="$out/lr0.001" | grep -E "^Ep[0-9]+, | mA: | Acc: "
python3 "$here/../tools/plot_runs.py" "lr0.01=$out/lr0.01" "lr0.001=$out/lr0.001" --out "$out/curves_lr"
echo "[demo] DeepMar: metrics files $out/lr0.01/model/metrics.jsonl, $out/lr0.001/model/metrics.jsonl;" \
  "both learning rates overlaid in $out/curves_lr/*.png"

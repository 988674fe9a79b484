#!/usr/bin/env bash
# PAMTRI on the embedded demo data, end to end:
#   1. tools/make_demo_data.py: raw demo VeRi -> PoseEstNet (short training) -> trans.py
#      (heatmaps, segments, keypoint columns of label_*.csv);
#   2. test/train_full_1p.sh: a short MultiTaskNet run with --heatmapaware --segmentaware --keyptaware --multitask;
#   3. test/train_eval_1p.sh on the checkpoint it wrote.
# Both training runs write their folders under OUT (checkpoints + metrics.jsonl): the PoseEstNet run in
# OUT/data/pose/output/veri/pose_hrnet/demo_tiny/, the MultiTaskNet run in OUT/MultiTaskNet/ (--save-dir passed
# through the script, after its own); the top-level tools/demo.sh plots every metrics.jsonl under OUT.
# Toy sizes (densenet_tiny at 64x64, batch 16 = 4 ids x 4, lr 3e-3, 10 epochs: the best of the settings tried on
# this data) so that it finishes in a few minutes on 2 CPU cores. The lr drops x0.1 after 70 % of the epochs (7):
# at a constant 3e-3 the weights move faster than BatchNorm's running statistics follow (the first conv sees 49
# near-constant heatmap/segment channels), and the evaluation, which uses those statistics, swings from epoch to
# epoch and leaves the colour/type heads at chance.
# Usage: bash tools/demo.sh [OUT_DIR (default <repo>/demo_out/PAMTRI)]     (env: DEMO_EPOCHS=10 DEMO_DEVICE_ID=0)
set -euo pipefail
pamtri="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "${1:-$pamtri/../demo_out/PAMTRI}")"
epochs="${DEMO_EPOCHS:-10}"
step=$(( epochs * 7 / 10 > 0 ? epochs * 7 / 10 : 1 ))
dev="${DEMO_DEVICE_ID:-0}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$out"
start=$(date +%s)
python3 "$pamtri/tools/make_demo_data.py" "$out/data" | tee "$out/make_demo_data.log"
root="$(tail -n 1 "$out/make_demo_data.log")"
tiny=(--arch=densenet_tiny --height=64 --width=64 --workers=1)
bash "$pamtri/test/train_full_1p.sh" --data_path="$root" --device_id="$dev" --epochs="$epochs" --batch_size=16 \
  --lr=3e-3 --stepsize="$step" --heatmapaware --segmentaware --keyptaware "${tiny[@]}" --save-dir="$out/MultiTaskNet"
ckpt="$out/MultiTaskNet/checkpoint_ep${epochs}.pth.tar"
bash "$pamtri/test/train_eval_1p.sh" --data_path="$root" --device_id="$dev" --pth_path="$ckpt" --workers=1
grep -h -E '^\| (Arch|pose_hrnet)' "$out/data/pose/train.log" | tail -n 2 | sed 's/^/[demo] PoseEstNet /'
grep -h -E 'mAP: |Rank-1  :|(Color|Type) classification accuracy' "$pamtri/test/output/$dev/eval_$dev.log" \
  | sed 's/^/[demo] MultiTaskNet /'
python3 "$pamtri/tools/chance.py" "$root" | sed 's/^/[demo] MultiTaskNet /'
echo "[demo] PAMTRI done in $(( $(date +%s) - start ))s; data in $root/veri, logs in $pamtri/test/output/$dev," \
  "runs (checkpoints, metrics.jsonl) in $out/MultiTaskNet and $out/data/pose/output"

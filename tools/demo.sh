#!/usr/bin/env bash
# The main job on the embedded demo data: for every model, write demo data in the raw
# upstream format, prepare it, train briefly and evaluate (each model's tools/demo.sh).
# Usage: bash tools/demo.sh [OUT_DIR] [MODEL ...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "${1:-$root/demo_out}")"
shift || true
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(DeepMar AlignedReID LResNet100E-IR HRNet PAMTRI)
for m in "${models[@]}"; do
  if [ ! -f "$root/$m/tools/demo.sh" ]; then
    echo "[demo] $m: no tools/demo.sh yet, skipped"
    continue
  fi
  echo "================ [demo] $m ================"
  bash "$root/$m/tools/demo.sh" "$out/$m"
done
echo "[demo] done; data and outputs under $out"

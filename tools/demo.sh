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
# the curves of every demo run (loss, lr, metrics, throughput), one folder per model
for m in "${models[@]}"; do
  mapfile -t runs < <(find "$out/$m" -name metrics.jsonl 2>/dev/null | sort)
  if [ ${#runs[@]} -eq 0 ]; then
    echo "[demo] $m: no metrics.jsonl under $out/$m, no curves"
    continue
  fi
  specs=()
  # each run is named by its folder relative to the model's demo output (e.g. lr0.01/model)
  for r in "${runs[@]}"; do rel="$(dirname "${r#"$out/$m/"}")"; specs+=("${rel//=/_}=$r"); done
  python3 "$root/tools/plot_runs.py" "${specs[@]}" --out "$out/curves/$m" | sed "s/^/[demo] $m: /"
done
echo "[demo] done; data and outputs under $out, curves under $out/curves"

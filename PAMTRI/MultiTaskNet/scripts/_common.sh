# Shared by the model card's run_*_gpu.sh wrappers: paths and the h|s argument.
PAMTRI_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MTN_DIR="$PAMTRI_DIR/MultiTaskNet"
DEVICE_TARGET="${DEVICE_TARGET:-GPU}"   # the card's GPU scripts; DEVICE_TARGET=CPU runs them without a GPU

abspath() { python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "$1"; }

# h: the 36 heatmaps, s: the 13 segment masks (the card trains one or the other).
channel_flag() {
  case "$1" in
    h) echo "--heatmapaware=True" ;;
    s) echo "--segmentaware=True" ;;
    *) echo "[Error] HEATMAP_SEGMENT must be h (heatmaps) or s (segments), got '$1'" >&2; return 1 ;;
  esac
}

# PRETRAINED_PATH: torchvision densenet121-a639ec97.pth; "none" or "" = random init.
pretrained_flag() {
  if [ -z "$1" ] || [ "$1" = "none" ]; then return 0; fi
  if [ ! -f "$1" ]; then echo "[Error] pretrained weights not found: $1" >&2; return 1; fi
  echo "--pre_ckpt_path=$(abspath "$1")"
}

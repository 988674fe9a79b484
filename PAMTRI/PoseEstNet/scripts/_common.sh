# Shared by the model card's run_*.sh wrappers of PoseEstNet.
POSE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POSE_CFG="${POSE_CFG:-$POSE_DIR/experiments/veri/hrnet/w32_256x256_adam_lr1e-3.yaml}"

abspath() { python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "$1"; }

# PRETRAINED_PATH: ImageNet HRNet-W32-C hrnet_w32-36af842e.pth; "none" or "" = random init.
pretrained_flags() {
  if [ -z "$1" ] || [ "$1" = "none" ]; then echo "--pre_trained=False"; return 0; fi
  if [ ! -f "$1" ]; then echo "[Error] pretrained weights not found: $1" >&2; return 1; fi
  echo "--pre_trained=True --pre_ckpt_path=$(abspath "$1")"
}

need_args() {  # need_args N "USAGE" "$@"
  local n="$1" usage="$2"; shift 2
  if [ $# -lt "$n" ]; then echo "Usage: bash $usage" >&2; exit 1; fi
}

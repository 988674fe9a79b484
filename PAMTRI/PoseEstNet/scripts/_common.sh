# Shared by the model card's run_*.sh wrappers of PoseEstNet: each {gpu,ascend} pair is one body below,
# called with the log suffix (gpu/ascend) and the default --device_target (GPU/Ascend; DEVICE_TARGET wins).
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

run_single_train() {  # run_single_train SUFFIX TARGET DATA_PATH PRETRAINED_PATH DEVICE_ID [extra]
  run_train "train_$1.log" DEVICE_ID "${@:2}"
}

run_distribute_train() {  # run_distribute_train SUFFIX TARGET DATA_PATH PRETRAINED_PATH RANK_SIZE [extra]
  run_train "distribute_train_$1.log" RANK_SIZE "${@:2}"
}

# run_train LOG DEVICE_ID|RANK_SIZE TARGET DATA_PATH PRETRAINED_PATH N [extra]: train.py on one device, or
# under torchrun with N processes when the last positional argument is RANK_SIZE
run_train() {
  local log="$1" last="$2" target="$3"; shift 3
  need_args 3 "$0 DATA_PATH PRETRAINED_PATH $last [extra flags]" "$@"
  local data pre launch
  data="$(abspath "$1")"
  pre=$(pretrained_flags "$2") || exit 1
  if [ "$last" = RANK_SIZE ]; then
    launch=(-m torch.distributed.run --standalone --nproc_per_node="$3" "$POSE_DIR/train.py" --distribute=True)
  else
    launch=("$POSE_DIR/train.py" --distribute=False --device_id="$3")
  fi
  shift 3
  # shellcheck disable=SC2086
  python3 "${launch[@]}" --cfg "$POSE_CFG" --data_dir="$data" --device_target="${DEVICE_TARGET:-$target}" $pre "$@" \
    2>&1 | tee "$log"
  exit "${PIPESTATUS[0]}"
}

run_with_ckpt() {  # run_with_ckpt SCRIPT SUFFIX TARGET DATA_PATH CKPT_PATH DEVICE_ID [extra]: eval.py, trans.py
  local script="$1" suffix="$2" target="$3"; shift 3
  need_args 3 "$0 DATA_PATH CKPT_PATH DEVICE_ID [extra flags]" "$@"
  local data ckpt device_id="$3"
  data="$(abspath "$1")"; ckpt="$(abspath "$2")"
  shift 3
  python3 "$POSE_DIR/$script.py" --cfg "$POSE_CFG" --data_dir="$data" --ckpt_path="$ckpt" \
    --device_target="${DEVICE_TARGET:-$target}" --device_id="$device_id" "$@" 2>&1 | tee "${script}_$suffix.log"
  exit "${PIPESTATUS[0]}"
}

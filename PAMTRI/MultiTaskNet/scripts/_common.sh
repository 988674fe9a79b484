# The one body of the model card's MultiTaskNet wrappers (MultiTaskNet/scripts/run_*_{ascend,gpu}.sh; the
# PAMTRI/scripts/run_*.sh of earlier versions forward here). Each wrapper is one call:
#   card_train_single      Ascend|GPU  DATA_PATH PRETRAINED_PATH DEVICE_ID h|s [extra train.py flags]
#   card_train_distribute  GPU         DATA_PATH PRETRAINED_PATH RANK_SIZE h|s [extra]
#   card_train_distribute  Ascend      DATA_PATH PRETRAINED_PATH RANK_TABLE_FILE h|s [extra]
#   card_eval              Ascend|GPU  DATA_PATH CKPT_PATH DEVICE_ID h|s [extra eval.py flags]
#                          (DATA_PATH and CKPT_PATH in either order)
#   card_onnx_eval         GPU         DATA_PATH ONNX_PATH DEVICE_ID h|s [extra eval_onnx.py flags]
# The device: the wrapper's target, or DEVICE_TARGET from the environment (DEVICE_TARGET=CPU runs them without an
# accelerator). Logs in the current folder as the card names them; checkpoints in ./ckpt/.
CARD_SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MTN_DIR="$(cd "$CARD_SCRIPTS_DIR/.." && pwd)"

card_die() { echo "[Error] $*" >&2; exit 1; }

abspath() { python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "$1"; }

# h: the 36 heatmaps, s: the 13 segment masks (the card trains one or the other).
channel_flag() {
  case "$1" in
    h) echo "--heatmapaware=True" ;;
    s) echo "--segmentaware=True" ;;
    *) echo "[Error] HEATMAP_SEGMENT must be h (heatmaps) or s (segments), got '$1'" >&2; return 1 ;;
  esac
}

# PRETRAINED_PATH: torchvision densenet121-a639ec97.pth (the card's pthtockpt.py conversion is not needed);
# "none" or "" = random init.
pretrained_flag() {
  if [ -z "$1" ] || [ "$1" = "none" ]; then return 0; fi
  if [ ! -f "$1" ]; then
    echo "[Error] pretrained weights not found: $1 (give torchvision's densenet121-a639ec97.pth, or none)" >&2
    return 1
  fi
  echo "--pre_ckpt_path=$(abspath "$1")"
}

# card_usage NEEDED "USAGE" ARGS...: one line when an argument is missing
card_usage() {
  local n="$1" usage="$2"; shift 2
  [ $# -ge "$n" ] || card_die "usage: bash $usage"
}

card_target() {  # DEVICE_TARGET of this wrapper unless the environment says otherwise; lower-case log suffix
  target="${DEVICE_TARGET:-$1}"
  suffix="$(echo "$1" | tr '[:upper:]' '[:lower:]')"
}

card_train_single() {
  card_target "$1"; shift
  card_usage 4 "scripts/run_single_train_${suffix}.sh DATA_PATH PRETRAINED_PATH DEVICE_ID h|s \
[extra train.py flags]" "$@"
  local data chan pre device_id="$3"
  data="$(abspath "$1")"
  chan=$(channel_flag "$4") || exit 1
  pre=$(pretrained_flag "$2") || exit 1
  shift 4
  local pre_args=(); [ -n "$pre" ] && pre_args=("$pre")
  python3 "$MTN_DIR/train.py" --root="$data" --distribute=False --device_target="$target" \
    --device_id="$device_id" --keyptaware --multitask "$chan" "${pre_args[@]}" --save-dir=./ckpt "$@" 2>&1 \
    | tee "train_${suffix}.log"
  exit "${PIPESTATUS[0]}"
}

# card_train_distribute TARGET DATA PRETRAINED RANK_SIZE|RANK_TABLE_FILE h|s [extra]: torchrun on this machine
# (the card used mpirun on GPU and one process per device from the hccl rank table on Ascend).
card_train_distribute() {
  card_target "$1"; shift
  local third="RANK_SIZE"; [ "$suffix" = ascend ] && third="RANK_TABLE_FILE"
  # the card's Ascend text once lists DATASET_PATH twice: DATA PRETRAINED DATA RANK_TABLE h|s
  if [ $# -ge 5 ] && [ "$suffix" = ascend ] && [ -d "$3" ] && [ -f "$4" ] && [[ "$5" =~ ^[hs]$ ]]; then
    set -- "$1" "$2" "${@:4}"
  fi
  card_usage 4 "scripts/run_distribute_train_${suffix}.sh DATASET_PATH PRETRAIN_CKPT_PATH $third h|s \
[extra train.py flags]" "$@"
  local data chan pre nproc log env_args=()
  data="$(abspath "$1")"
  chan=$(channel_flag "$4") || exit 1
  pre=$(pretrained_flag "$2") || exit 1
  if [ "$suffix" = ascend ]; then
    # one process per device of the rank table; device i of the table is local rank i's device
    local devices
    devices="$(python3 "$CARD_SCRIPTS_DIR/rank_table.py" "$3")" || exit 1
    nproc=$(echo "$devices" | tr ',' '\n' | wc -l)
    env_args=(RANK_TABLE_FILE="$(abspath "$3")" ASCEND_RT_VISIBLE_DEVICES="$devices")
    mkdir -p device0
    log=device0/train0.log  # every line comes from rank 0 (the other ranks print nothing)
  else
    [[ "$3" =~ ^[0-9]+$ ]] && [ "$3" -ge 1 ] || card_die "RANK_SIZE must be a positive integer, got '$3'"
    nproc="$3"
    log=distribute_train_gpu.log
  fi
  shift 4
  local pre_args=(); [ -n "$pre" ] && pre_args=("$pre")
  env "${env_args[@]}" python3 -m torch.distributed.run --standalone --nproc_per_node="$nproc" "$MTN_DIR/train.py" \
    -- --root="$data" --distribute=True --device_target="$target" --keyptaware --multitask "$chan" "${pre_args[@]}" \
    --save-dir=./ckpt "$@" 2>&1 | tee "$log"
  exit "${PIPESTATUS[0]}"
}

card_eval() {
  card_target "$1"; shift
  card_usage 4 "scripts/run_eval_${suffix}.sh DATASET_PATH CKPT_PATH DEVICE_ID h|s [extra eval.py flags] \
(the two paths in either order)" "$@"
  local data="$1" ckpt="$2" chan device_id="$3"
  # the card gives DATA and CKPT in both orders (Ascend: CKPT first): the folder is the data
  if [ -d "$ckpt" ] && [ ! -d "$data" ]; then data="$2"; ckpt="$1"; fi
  chan=$(channel_flag "$4") || exit 1
  shift 4
  python3 "$MTN_DIR/eval.py" --root="$(abspath "$data")" --ckpt_path="$(abspath "$ckpt")" \
    --device_target="$target" --device_id="$device_id" "$chan" "$@" 2>&1 | tee "eval_${suffix}.log"
  exit "${PIPESTATUS[0]}"
}

card_onnx_eval() {
  card_target "$1"; shift
  card_usage 4 "scripts/run_onnx_eval_gpu.sh DATASET_PATH ONNX_PATH DEVICE_ID h|s [extra eval_onnx.py flags]" "$@"
  local data onnx chan device_id="$3"
  chan=$(channel_flag "$4") || exit 1
  data="$(abspath "$1")"; onnx="$(abspath "$2")"
  shift 4
  python3 "$MTN_DIR/eval_onnx.py" --root="$data" --onnx_path="$onnx" --device_target="$target" \
    --device_id="$device_id" "$chan" "$@" 2>&1 | tee eval_onnx_gpu.log
  exit "${PIPESTATUS[0]}"
}

# Shared body of every <Model>/test/train_{full,performance,eval}_{1p,8p}.sh.
#
# The calling script sets, before sourcing this file:
#   Network      upstream network name (CaseName prefix)
#   MODE         acc | perf | eval
#   RANK_SIZE    1 for *_1p.sh; 8p scripts use ${RANK_SIZE:-8} (the environment overrides 8)
#   batch_size   the script's default global batch size (--batch_size=... overrides)
# then calls, in order:
#   zoo_parse_args "$@"     --key=value arguments (section 6 of the conventions)
#   zoo_setup               checks --data_path, cd to the model folder, output dir, NPU env
#   zoo_run SCRIPT ARGS...  python (1p) or torchrun (RANK_SIZE>1); output to the log file
#   zoo_summary PATTERNS... summary file + final lines; exits with the run's status
# Common keys land in shell variables: data_path batch_size epochs max_steps device_id
# workers pth_path addr nnodes node_rank master_port. Every other --flag=value is kept,
# unchanged, in the array EXTRA_ARGS, which zoo_run appends to the command.

ZOO_COMMON_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ZOO_MODEL_DIR="$(cd "$(dirname "${BASH_SOURCE[1]}")/.." && pwd)"
EXTRA_ARGS=()

zoo_parse_args() {
  local arg key value
  for arg in "$@"; do
    case "$arg" in
      --*=*) key="${arg%%=*}"; key="${key#--}"; value="${arg#*=}" ;;
      *) EXTRA_ARGS+=("$arg"); continue ;;
    esac
    case "$key" in
      data_path|batch_size|epochs|max_steps|device_id|workers|pth_path|addr|nnodes|node_rank|master_port)
        printf -v "$key" '%s' "$value" ;;
      *) EXTRA_ARGS+=("$arg") ;;
    esac
  done
}

zoo_abspath() { python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "$1"; }

zoo_setup() {
  if [ -z "${data_path:-}" ]; then
    echo '[Error] para "data_path" must be config' >&2
    exit 1
  fi
  data_path="$(zoo_abspath "$data_path")"
  if [ ! -e "$data_path" ]; then
    echo "[Error] data_path does not exist: $data_path" >&2
    exit 1
  fi
  [ -n "${pth_path:-}" ] && pth_path="$(zoo_abspath "$pth_path")"
  if [ "$MODE" = "eval" ] && [ -z "${pth_path:-}" ]; then
    echo '[Error] para "pth_path" must be config' >&2
    exit 1
  fi
  export ASCEND_DEVICE_ID="${ASCEND_DEVICE_ID:-${device_id:-0}}"
  device_id="$ASCEND_DEVICE_ID"
  export RANK_SIZE
  cd "$ZOO_MODEL_DIR" || exit 1
  if [ "${etp_running_flag:-}" != "true" ] && [ -d /usr/local/Ascend ] && [ -f test/env_npu.sh ]; then
    # shellcheck disable=SC1091
    source test/env_npu.sh
  fi
  ZOO_OUT="$ZOO_MODEL_DIR/test/output/$ASCEND_DEVICE_ID"
  mkdir -p "$ZOO_OUT"
  if [ "$MODE" = "eval" ]; then ZOO_LOG="$ZOO_OUT/eval_${ASCEND_DEVICE_ID}.log"; else ZOO_LOG="$ZOO_OUT/train_${ASCEND_DEVICE_ID}.log"; fi
  export PYTHONUNBUFFERED=1
}

# zoo_run SCRIPT ARGS...: SCRIPT is relative to the model folder.
zoo_run() {
  local script="$1"; shift
  local cmd
  if [ "${RANK_SIZE:-1}" -gt 1 ] || [ "${nnodes:-1}" -gt 1 ]; then
    cmd=(python3 -m torch.distributed.run --nproc_per_node="$RANK_SIZE")
    if [ "${nnodes:-1}" -gt 1 ]; then
      cmd+=(--nnodes="$nnodes" --node_rank="${node_rank:-0}" --master_addr="${addr:-127.0.0.1}" --master_port="${master_port:-29500}")
    else
      cmd+=(--standalone)
    fi
    # '--' keeps torchrun from reading a script flag that abbreviates one of its own (--nproc=8)
    cmd+=("$script" --)
  else
    cmd=(python3 "$script")
  fi
  cmd+=("$@" "${EXTRA_ARGS[@]}")
  echo "[Info] log: $ZOO_LOG"
  ZOO_START=$(date +%s)
  { echo "+ ${cmd[*]}"; "${cmd[@]}"; } > "$ZOO_LOG" 2>&1
  ZOO_RC=$?
  ZOO_E2E=$(( $(date +%s) - ZOO_START ))
  if [ "$ZOO_RC" -ne 0 ]; then
    echo "[Error] run failed with exit status $ZOO_RC; last lines of $ZOO_LOG:" >&2
    tail -n 15 "$ZOO_LOG" >&2
  fi
}

# zoo_summary [--fps_pattern RE] [--acc_pattern RE] [--loss_pattern RE] ...: passes to common/summary.py
zoo_summary() {
  python3 "$ZOO_COMMON_DIR/summary.py" --log "$ZOO_LOG" --out_dir "$ZOO_OUT" --network "$Network" \
    --rank_size "$RANK_SIZE" --batch_size "$batch_size" --mode "$MODE" --e2e "$ZOO_E2E" --rc "$ZOO_RC" "$@"
  exit $?
}

# Shared body of every <Model>/test/train_{full,performance,eval}_{1p,8p}.sh.
#
# The calling script sets, before sourcing this file:
#   Network      upstream network name (CaseName prefix)
#   MODE         acc | perf | eval
#   RANK_SIZE    1 for *_1p.sh; 8p scripts use ${RANK_SIZE:-8} (the environment overrides 8)
#   batch_size   the script's default --batch_size (--batch_size=... overrides)
#   batch_scope  global | per_device: what --batch_size means for this model (its Ascend
#                scripts' definition); the summary's GlobalBatchSize follows from it
# and may define `zoo_default_pth_path` (eval scripts: the checkpoint to evaluate when no
# --pth_path is given; it may use $ZOO_OUT and $ASCEND_DEVICE_ID). Then it calls, in order:
#   zoo_parse_args "$@"     --key=value arguments (section 6 of the conventions)
#   zoo_setup               checks every common key, --data_path, cd to the model folder,
#                           output dir, NPU env, and takes the output folder's run lock
#   zoo_run SCRIPT ARGS...  python (1p) or torchrun (RANK_SIZE>1); output to the log file
#   zoo_summary PATTERNS... summary file + final lines; exits with the run's status
# Common keys land in shell variables: data_path batch_size epochs max_steps device_id
# workers pth_path addr nnodes node_rank master_port max_restarts. Every other
# --flag=value is kept, unchanged, in the array EXTRA_ARGS, which zoo_run appends.
#
# Results are never damaged by a failed or concurrent run:
# - one run at a time per output folder (test/output/<device id>): a lock held by the
#   run's processes for their whole life; a second run is refused with one line. The
#   kernel drops the lock when the last of them exits, so a killed run leaves none.
# - the log is written to <log>.running.log and renamed to train_<id>.log (eval_<id>.log)
#   when the run succeeds, to <log>.failed.log when it fails; summary files are written
#   only for a successful run.

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
      data_path|batch_size|epochs|max_steps|device_id|workers|pth_path|addr|nnodes|node_rank|master_port|max_restarts)
        printf -v "$key" '%s' "$value" ;;
      *) EXTRA_ARGS+=("$arg") ;;
    esac
  done
}

zoo_die() { echo "[Error] $*" >&2; exit 1; }

# zoo_check_int NAME VALUE MIN [MAX]: an unset value passes; anything else must be an integer in range
zoo_check_int() {
  local name="$1" value="$2" lo="$3" hi="${4:-}"
  [ -z "$value" ] && return 0
  local range=">= $lo"; [ -n "$hi" ] && range="in [$lo, $hi]"
  if ! [[ "$value" =~ ^[0-9]+$ ]] || [ "$((10#$value))" -lt "$lo" ] \
      || { [ -n "$hi" ] && [ "$((10#$value))" -gt "$hi" ]; }; then
    zoo_die "$name=$value: expected an integer $range"
  fi
}

zoo_check_keys() {
  zoo_check_int --batch_size "${batch_size:-}" 1
  zoo_check_int --epochs "${epochs:-}" 1
  zoo_check_int --max_steps "${max_steps:-}" 1
  zoo_check_int --workers "${workers:-}" 0
  zoo_check_int --device_id "${device_id:-}" 0
  zoo_check_int ASCEND_DEVICE_ID "${ASCEND_DEVICE_ID:-}" 0
  zoo_check_int RANK_SIZE "${RANK_SIZE:-}" 1
  zoo_check_int --nnodes "${nnodes:-}" 1
  zoo_check_int --node_rank "${node_rank:-}" 0 $(( ${nnodes:-1} - 1 ))
  zoo_check_int --master_port "${master_port:-}" 1 65535
  zoo_check_int --max_restarts "${max_restarts:-}" 0
  case "${batch_scope:-global}" in
    global|per_device) ;;
    *) zoo_die "batch_scope=$batch_scope: expected global or per_device" ;;
  esac
}

zoo_abspath() { python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "$1"; }

# zoo_lock: one run per output folder. fd 9 stays open in this shell and every process it
# starts, so the lock lives exactly as long as the run.
zoo_lock() {
  local owner="$ZOO_OUT/.run_lock_owner"
  exec 9>>"$ZOO_OUT/.run_lock"
  if ! python3 -c 'import fcntl, sys
try:
    fcntl.flock(9, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    sys.exit(1)'; then
    zoo_die "test/output/$ASCEND_DEVICE_ID is in use by another run ($(cat "$owner" 2>/dev/null || echo unknown)):"\
" wait for it to end or use another --device_id"
  fi
  echo "pid $$, $(basename "${BASH_SOURCE[2]}"), started $(date '+%F %T')" > "$owner"
}

zoo_setup() {
  if [ -z "${data_path:-}" ]; then
    echo '[Error] para "data_path" must be config' >&2
    exit 1
  fi
  zoo_check_keys
  data_path="$(zoo_abspath "$data_path")"
  [ -e "$data_path" ] || zoo_die "data_path does not exist: $data_path"
  [ -n "${pth_path:-}" ] && pth_path="$(zoo_abspath "$pth_path")"
  export ASCEND_DEVICE_ID="${ASCEND_DEVICE_ID:-${device_id:-0}}"
  device_id="$ASCEND_DEVICE_ID"
  export RANK_SIZE
  cd "$ZOO_MODEL_DIR" || exit 1
  ZOO_OUT="$ZOO_MODEL_DIR/test/output/$ASCEND_DEVICE_ID"
  if [ "$MODE" = "eval" ] && [ -z "${pth_path:-}" ]; then
    if ! declare -F zoo_default_pth_path >/dev/null; then
      echo '[Error] para "pth_path" must be config' >&2
      exit 1
    fi
    pth_path="$(zoo_default_pth_path)"
    [ -e "$pth_path" ] || zoo_die "no --pth_path given and no checkpoint of the full training script of device"\
" $ASCEND_DEVICE_ID at $pth_path: train first or pass --pth_path=FILE"
    echo "[Info] no --pth_path given: evaluating $pth_path"
  fi
  if [ "${etp_running_flag:-}" != "true" ] && [ -d /usr/local/Ascend ] && [ -f test/env_npu.sh ]; then
    # shellcheck disable=SC1091
    source test/env_npu.sh
  fi
  mkdir -p "$ZOO_OUT"
  zoo_lock
  if [ "$MODE" = "eval" ]; then
    ZOO_LOG="$ZOO_OUT/eval_${ASCEND_DEVICE_ID}.log"
  else
    ZOO_LOG="$ZOO_OUT/train_${ASCEND_DEVICE_ID}.log"
  fi
  export PYTHONUNBUFFERED=1
}

# zoo_global_batch: images per optimizer step over all ranks and nodes
zoo_global_batch() {
  if [ "${batch_scope:-global}" = "per_device" ]; then
    echo $(( batch_size * RANK_SIZE * ${nnodes:-1} ))
  else
    echo "$batch_size"
  fi
}

# zoo_run SCRIPT ARGS...: SCRIPT is relative to the model folder.
zoo_run() {
  local script="$1"; shift
  local cmd
  if [ "${RANK_SIZE:-1}" -gt 1 ] || [ "${nnodes:-1}" -gt 1 ] || [ "${max_restarts:-0}" -gt 0 ]; then
    cmd=(python3 -m torch.distributed.run --nproc_per_node="$RANK_SIZE")
    if [ "${nnodes:-1}" -gt 1 ]; then
      cmd+=(--nnodes="$nnodes" --node_rank="${node_rank:-0}" --master_addr="${addr:-127.0.0.1}"
            --master_port="${master_port:-29500}")
    else
      cmd+=(--standalone)
    fi
    # a killed worker restarts the whole job, which resumes from the run's last checkpoint;
    # each attempt gets a fresh rendezvous store: with the launcher's shared one, a restarted
    # attempt's workers read the dead attempt's stale gloo keys and hang or reach dead peers
    if [ "${max_restarts:-0}" -gt 0 ]; then
      cmd+=(--max-restarts="$max_restarts")
      export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1
    fi
    # '--' keeps torchrun from reading a script flag that abbreviates one of its own (--nproc=8)
    cmd+=("$script" --)
  else
    cmd=(python3 "$script")
  fi
  cmd+=("$@" "${EXTRA_ARGS[@]}")
  local running="${ZOO_LOG%.log}.running.log"
  echo "[Info] log: $running (renamed to $(basename "$ZOO_LOG") when the run succeeds)"
  ZOO_START=$(date +%s)
  { echo "+ ${cmd[*]}"; "${cmd[@]}"; } > "$running" 2>&1
  ZOO_RC=$?
  ZOO_E2E=$(( $(date +%s) - ZOO_START ))
  if [ "$ZOO_RC" -eq 0 ]; then
    mv -f "$running" "$ZOO_LOG"
    return
  fi
  local failed="${ZOO_LOG%.log}.failed.log" first_error
  mv -f "$running" "$failed"
  # a user error is one line ("Error: ..."); say that line alone. Anything else: the log's tail
  first_error="$(grep -m 1 '^Error: ' "$failed")"
  if [ -n "$first_error" ]; then
    echo "$first_error" >&2
  else
    echo "[Error] run failed with exit status $ZOO_RC (earlier results unchanged); last lines of $failed:" >&2
    tail -n 15 "$failed" >&2
  fi
}

# zoo_summary [--fps_pattern RE] [--acc_pattern RE] [--loss_pattern RE] ...: passes to common/summary.py
# A failed run writes no summary: the last good one stays as it was.
zoo_summary() {
  [ "$ZOO_RC" -ne 0 ] && exit "$ZOO_RC"
  python3 "$ZOO_COMMON_DIR/summary.py" --log "$ZOO_LOG" --out_dir "$ZOO_OUT" --network "$Network" \
    --rank_size "$RANK_SIZE" --batch_size "$batch_size" --global_batch_size "$(zoo_global_batch)" \
    --mode "$MODE" --e2e "$ZOO_E2E" --rc "$ZOO_RC" "$@"
  exit $?
}

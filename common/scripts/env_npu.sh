# Ascend CANN environment, sourced by <Model>/test/env_npu.sh on NPU machines only.
CANN_INSTALL_PATH_CONF=/etc/Ascend/ascend_cann_install.info
if [ -f "$CANN_INSTALL_PATH_CONF" ]; then
  CANN_INSTALL_PATH=$(grep -w Install_Path "$CANN_INSTALL_PATH_CONF" | cut -d "=" -f 2)
else
  CANN_INSTALL_PATH=/usr/local/Ascend
fi
if [ -d "$CANN_INSTALL_PATH/ascend-toolkit/latest" ]; then
  # shellcheck disable=SC1091
  source "$CANN_INSTALL_PATH/ascend-toolkit/set_env.sh"
elif [ -f "$CANN_INSTALL_PATH/nnae/set_env.sh" ]; then
  # shellcheck disable=SC1091
  source "$CANN_INSTALL_PATH/nnae/set_env.sh"
fi
export ASCEND_SLOG_PRINT_TO_STDOUT=${ASCEND_SLOG_PRINT_TO_STDOUT:-0}
export ASCEND_GLOBAL_LOG_LEVEL=${ASCEND_GLOBAL_LOG_LEVEL:-3}
export TASK_QUEUE_ENABLE=${TASK_QUEUE_ENABLE:-1}
export COMBINED_ENABLE=${COMBINED_ENABLE:-1}
export HCCL_WHITELIST_DISABLE=${HCCL_WHITELIST_DISABLE:-1}

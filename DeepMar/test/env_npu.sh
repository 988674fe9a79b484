#!/usr/bin/env bash
# Ascend environment for this model (sourced by the test scripts on NPU machines only).
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/env_npu.sh"

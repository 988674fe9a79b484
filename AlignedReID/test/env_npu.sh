# shellcheck disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/env_npu.sh"

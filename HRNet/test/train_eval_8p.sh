#!/usr/bin/env bash
# HRNet: evaluation on RANK_SIZE devices (default 8): top-1/top-5 of --pth_path on the val folders,
# W18-C config; the devices read disjoint shards of val/ and the counts are summed (exact).
# Without --pth_path it evaluates final_state.pth.tar of train_full_8p.sh of the same device id:
# test/output/<id>/full_8p/imagenet/<cfg>/final_state.pth.tar (one line naming it when there is none).
# --batch_size is PER DEVICE. Loader workers per process = nproc // devices (--workers overrides).
# Usage: bash test/train_eval_8p.sh --data_path=DIR [--pth_path=FILE] [--key=value ...]; other --flags go to eval.py unchanged.
Network="HRNet_ID1780_for_PyTorch"; MODE=eval; RANK_SIZE=${RANK_SIZE:-8}; batch_size=256; batch_scope=per_device
zoo_default_pth_path() {
  python3 -c 'import sys; sys.path[:0] = ["..", "."]; from hrnet_cls.config import default_weights
print(default_weights(sys.argv[2:], sys.argv[1]))' "test/output/$ASCEND_DEVICE_ID/full_8p" "${EXTRA_ARGS[@]}"
}
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run eval.py "$data_path" --cfg=experiments/cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml --testModel="$pth_path" \
  --bs="$batch_size" --nproc="$(nproc)" --device_id="$device_id" --amp ${workers:+--workers="$workers"}
zoo_summary --acc_pattern '^Test: .*?Accuracy@1 ([0-9.]+)'

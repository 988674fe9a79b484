#!/usr/bin/env bash
# HRNet: evaluation, 1 device: top-1/top-5 of --pth_path on the val folders, W18-C config.
# Without --pth_path (the model card's form) it evaluates final_state.pth.tar of train_full_1p.sh of the
# same device id: test/output/<id>/full_1p/imagenet/<cfg>/final_state.pth.tar (the weights whose last
# `Test:` line that run's summary reports; --cfg/--modelDir as given to it), and ends with one line
# naming that path when there is none. --batch_size is PER DEVICE (here the one device's).
# Usage: bash test/train_eval_1p.sh --data_path=DIR [--pth_path=FILE] [--key=value ...]; other --flags go to eval.py unchanged.
Network="HRNet_ID1780_for_PyTorch"; MODE=eval; RANK_SIZE=1; batch_size=256; batch_scope=per_device
zoo_default_pth_path() {
  python3 -c 'import sys; sys.path[:0] = ["..", "."]; from hrnet_cls.config import default_weights
print(default_weights(sys.argv[2:], sys.argv[1]))' "test/output/$ASCEND_DEVICE_ID/full_1p" "${EXTRA_ARGS[@]}"
}
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run eval.py "$data_path" --cfg=experiments/cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml --testModel="$pth_path" --bs="$batch_size" --nproc="$(nproc)" \
  --device_id="$device_id" --amp ${workers:+--workers="$workers"}
zoo_summary --acc_pattern '^Test: .*?Accuracy@1 ([0-9.]+)'

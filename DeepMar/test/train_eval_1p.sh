#!/usr/bin/env bash
# DeepMar evaluation of a checkpoint, 1 device. Usage: bash test/train_eval_1p.sh --data_path=/data/peta --pth_path=CKPT
Network="DeepMar_ID0096_for_PyTorch"; MODE=eval; RANK_SIZE=1; batch_size=32; workers=8
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run eval.py --save_dir="$data_path" --pth_path="$pth_path" --batch_size="$batch_size" --workers="$workers" \
  --npu="$device_id"
zoo_summary --fps_pattern '\* FPS@all ([0-9.]+)' --acc_pattern 'Acc: ([0-9.]+)' --loss_pattern 'Step .*loss:([0-9.]+)'

#!/usr/bin/env bash
# DeepMar full training, 1 device (AZ recipe: bs 256, lr 0.01, 100 epochs, O2 loss scale 512).
# Usage: bash test/train_full_1p.sh --data_path=/data/peta [--epochs=N --batch_size=N --key=value ...]
# --batch_size is the GLOBAL batch (images per optimizer step over all ranks, as in the Ascend
# scripts): train.py divides it over the ranks; the summary's GlobalBatchSize equals it.
Network="DeepMar_ID0096_for_PyTorch"; MODE=acc; RANK_SIZE=1; batch_size=256; epochs=100; workers=32; batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run train.py --save_dir="$data_path" --batch_size="$batch_size" --total_epochs="$epochs" \
  --new_params_lr=0.01 --finetuned_params_lr=0.01 --amp --opt_level=O2 --loss_scale=512 --steps_per_log=1 \
  --epochs_per_val=10 --workers="$workers" --npu="$device_id" --exp_dir="test/output/$ASCEND_DEVICE_ID/exp" \
  ${max_steps:+--max_steps=$max_steps}
zoo_summary --fps_pattern '\* FPS@all ([0-9.]+)' --acc_pattern 'Acc: ([0-9.]+)' --loss_pattern 'Step .*loss:([0-9.]+)'

#!/usr/bin/env bash
# DeepMar performance, 1 device: bs 256, AMP O2, stops after --max_steps (default 200) optimizer steps.
# Usage: bash test/train_performance_1p.sh --data_path=/data/peta [--max_steps=N --batch_size=N ...]
# --batch_size is the GLOBAL batch (images per optimizer step over all ranks, as in the Ascend
# scripts): train.py divides it over the ranks; the summary's GlobalBatchSize equals it.
Network="DeepMar_ID0096_for_PyTorch"; MODE=perf; RANK_SIZE=1
batch_size=256; epochs=10; max_steps=200; workers=32; batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run train.py --save_dir="$data_path" --batch_size="$batch_size" --total_epochs="$epochs" \
  --max_steps="$max_steps" --new_params_lr=0.01 --finetuned_params_lr=0.01 --amp --opt_level=O2 --loss_scale=512 \
  --steps_per_log=1 --epochs_per_val=10 --workers="$workers" --npu="$device_id" \
  --exp_dir="test/output/$ASCEND_DEVICE_ID/exp_perf"
zoo_summary --fps_pattern '\* FPS@all ([0-9.]+)' --acc_pattern 'Acc: ([0-9.]+)' \
  --loss_pattern 'Step .*loss:([0-9.]+)' --compile_pattern 'Step .*batchtime:([0-9.]+)'

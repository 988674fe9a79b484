#!/usr/bin/env bash
# DeepMar performance, 8 devices (RANK_SIZE overrides 8): global bs 2048, lr 0.016, AMP O2, bounded steps.
# Usage: bash test/train_performance_8p.sh --data_path=/data/peta [--max_steps=N ...]
# --batch_size is the GLOBAL batch (images per optimizer step over all ranks, as in the Ascend
# scripts): train.py divides it over the ranks; the summary's GlobalBatchSize equals it.
Network="DeepMar_ID0096_for_PyTorch"; MODE=perf; RANK_SIZE=${RANK_SIZE:-8}
batch_size=2048; epochs=4; max_steps=20; workers=64; batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run train.py --save_dir="$data_path" --batch_size="$batch_size" --total_epochs="$epochs" \
  --max_steps="$max_steps" --new_params_lr=0.016 --finetuned_params_lr=0.016 --amp --opt_level=O2 --loss_scale=512 \
  --steps_per_log=1 --epochs_per_val=40 --workers="$workers" --multiprocessing_distributed \
  --addr="${addr:-127.0.0.1}" --exp_dir="test/output/$ASCEND_DEVICE_ID/exp_perf_8p"
zoo_summary --fps_pattern '\* FPS@all ([0-9.]+)' --acc_pattern 'Acc: ([0-9.]+)' --loss_pattern 'Step .*loss:([0-9.]+)'

#!/usr/bin/env bash
# DeepMar full training, 8 devices (RANK_SIZE overrides 8): global bs 2048 (256/rank), lr 0.016, 150 epochs,
# O2 dynamic loss scale. Usage: bash test/train_full_8p.sh --data_path=/data/peta [--key=value ...]
# --batch_size is the GLOBAL batch (images per optimizer step over all ranks, as in the Ascend
# scripts): train.py divides it over the ranks; the summary's GlobalBatchSize equals it.
Network="DeepMar_ID0096_for_PyTorch"; MODE=acc; RANK_SIZE=${RANK_SIZE:-8}
batch_size=2048; epochs=150; workers=64; batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run train.py --save_dir="$data_path" --batch_size="$batch_size" --total_epochs="$epochs" \
  --new_params_lr=0.016 --finetuned_params_lr=0.016 --amp --opt_level=O2 --loss_scale=-1 --steps_per_log=1 \
  --epochs_per_val=10 --workers="$workers" --multiprocessing_distributed --addr="${addr:-127.0.0.1}" \
  --exp_dir="test/output/$ASCEND_DEVICE_ID/exp_8p" ${max_steps:+--max_steps=$max_steps}
zoo_summary --fps_pattern '\* FPS@all ([0-9.]+)' --acc_pattern 'Acc: ([0-9.]+)' --loss_pattern 'Step .*loss:([0-9.]+)'

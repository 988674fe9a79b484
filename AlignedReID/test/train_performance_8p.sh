#!/usr/bin/env bash
# AlignedReID: performance, 8 devices (RANK_SIZE overrides 8; 32 ids x 4 per device, AMP, 50 steps; FPS of all devices).
# Usage: bash test/train_performance_8p.sh --data_path=DIR [--batch_size=N --epochs=N --ids_per_batch=N --key=value ...]
# batch_size = images per device per step = ids_per_batch x ims_per_id (4); --ids_per_batch=N sets it.
Network="AlignedReID_for_PyTorch"; MODE=perf; RANK_SIZE=${RANK_SIZE:-8}; batch_size=128; epochs=10; max_steps=50
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
ims=4; for a in "${EXTRA_ARGS[@]}"; do case "$a" in --ims_per_id=*) ims="${a#*=}" ;; esac; done
for a in "${EXTRA_ARGS[@]}"; do case "$a" in --ids_per_batch=*) batch_size=$(( ${a#*=} * ims )) ;; esac; done
zoo_setup
zoo_run train.py --data_path="$data_path" --batch_size="$batch_size" --total_epochs="$epochs" \
  --amp --id_split=replicate --normalize_feature=false --g_loss_weight=1 --l_loss_weight=0 --id_loss_weight=0 \
  --base_lr=5e-4 --exp_decay_at_epoch=151 --npu="$device_id" --exp_dir="test/output/$ASCEND_DEVICE_ID/exp" \
  ${max_steps:+--max_steps=$max_steps} ${workers:+--workers=$workers}
zoo_summary --fps_pattern 'FPS@all steady: ([0-9.]+)' --fps_reduce last \
  --acc_pattern 'for Global Distance\.\.\.\nDone, [0-9.]+s\n\[mAP: [0-9.]+%\], \[cmc1: ([0-9.]+)%' \
  --loss_pattern '^Ep [0-9]+, .*loss ([0-9.]+)$'

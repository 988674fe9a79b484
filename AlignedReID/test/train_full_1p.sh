#!/usr/bin/env bash
# AlignedReID: full training, 1 device: upstream README recipe (32 ids x 4, NNF, margin 0.3, Adam 2e-4,
# exp decay from 151, 300 epochs, AMP), then test.
# Usage: bash test/train_full_1p.sh --data_path=DIR
#   [--batch_size=N --epochs=N --max_steps=N --ids_per_batch=N --key=value ...]
# --batch_size is PER DEVICE (batch_scope=per_device, as the Ascend scripts define it), in images: images per device
# per step = ids_per_batch x ims_per_id (default 32 x 4 = 128); the job's step is GlobalBatchSize = batch_size x
# devices. train.py alone relates --batch_size to --ids_per_batch/--ims_per_id (either may be given).
# Checkpoint: test/output/<device id>/train_full_1p/ckpt.pth (this script's own folder).
Network="AlignedReID_for_PyTorch"; MODE=acc; RANK_SIZE=1; batch_scope=per_device; epochs=300
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
batch_size="$(python3 train.py --print_batch_size ${batch_size:+--batch_size="$batch_size"} \
  "${EXTRA_ARGS[@]}")" || exit 1
zoo_run train.py --data_path="$data_path" --batch_size="$batch_size" --total_epochs="$epochs" \
  --amp --normalize_feature=false --g_loss_weight=1 --l_loss_weight=0 --id_loss_weight=0 \
  --base_lr=2e-4 --exp_decay_at_epoch=151 --npu="$device_id" \
  --exp_dir="test/output/$ASCEND_DEVICE_ID/train_full_1p" ${max_steps:+--max_steps=$max_steps} \
  ${workers:+--workers=$workers}
# what the Ascend CI extracts (README, Scripts): FPS = mean of field 5 of the last 5 'FPS' (epoch) lines;
# accuracy = the last cmc1 line (the card's rank-1: global distance, no re-ranking); loss = every line with
# 'Ep' (step and epoch lines)
zoo_summary --fps_pattern '^Ep [0-9]+, [0-9.]+s, FPS ([0-9.]+),' --fps_tail 5 \
  --acc_pattern '\[cmc1: ([0-9.]+)%' --loss_pattern '^.*Ep.* loss ([0-9.]+)$'

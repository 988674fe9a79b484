#!/usr/bin/env bash
# AlignedReID: performance, 1 device (upstream batch 32 ids x 4, AMP, stops after 50 steps; reports FPS).
# Usage: bash test/train_performance_1p.sh --data_path=DIR
#   [--batch_size=N --epochs=N --max_steps=N --ids_per_batch=N --key=value ...]
# --batch_size is PER DEVICE (batch_scope=per_device, as the Ascend scripts define it), in images: images per device
# per step = ids_per_batch x ims_per_id (default 32 x 4 = 128); the job's step is GlobalBatchSize = batch_size x
# devices. train.py alone relates --batch_size to --ids_per_batch/--ims_per_id (either may be given).
# Checkpoint: test/output/<device id>/train_performance_1p/ckpt.pth (this script's own folder).
Network="AlignedReID_for_PyTorch"; MODE=perf; RANK_SIZE=1; batch_scope=per_device; epochs=10; max_steps=50
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/aligned_reid_card.sh"
zoo_parse_args "$@"
zoo_setup
aligned_reid_train train_performance_1p --base_lr=2e-4

#!/usr/bin/env bash
# LResNet100E-IR: performance, 1 device (2 epochs of 1001 steps, reports FPS).
# Usage: bash test/train_performance_1p.sh --data_path=DIR [--key=value ...]
# IR-SE-100 + ArcFace on faces_emore, recipe of the port's script: batch 256, lr 0.001, 2 epochs,
# max_iter 1000, AMP O2 with loss scale dynamic. Other --flag=value pairs go to train.py unchanged (last wins).
# --batch_size is the GLOBAL batch of the job (all devices; per device = batch_size / RANK_SIZE), as the
# port's scripts define it: batch_scope=global, so GlobalBatchSize = BatchSize.
# Checkpoints: test/output/<device id>/models_perf_1p/. FPS = the last epoch's `fps:` line.
Network="LResNet100E"; MODE=perf; RANK_SIZE=1; batch_size=256; epochs=2; batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run train.py --net_mode=ir_se --net_depth=100 --data_mode=emore --data_path="$data_path" \
  --batch-size="$batch_size" --lr=0.001 --epochs="$epochs" --max_iter=1000 --seed=2021 \
  --device_id="$device_id" --use_amp=1 --opt-level=O2 --loss-scale=dynamic --num_workers="${workers:-8}" \
  --save_dir="$ZOO_OUT/models_perf_1p" ${max_steps:+--max_steps=$max_steps}
zoo_summary --fps_pattern '^fps: ([0-9.]+)' --fps_reduce last --acc_pattern 'lfw_accuracy:\s+([0-9.]+)' \
  --loss_pattern 'train_loss: ([0-9.eE+-]+)'

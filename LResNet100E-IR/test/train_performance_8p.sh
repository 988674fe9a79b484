#!/usr/bin/env bash
# LResNet100E-IR: performance, 8 devices (RANK_SIZE overrides 8; 2 epochs of 1001 steps).
# Usage: bash test/train_performance_8p.sh --data_path=DIR [--key=value ...]
# IR-SE-100 + ArcFace on faces_emore, recipe of the port's script: batch 2560 (320 per device), lr 0.01,
# 2 epochs, max_iter 1000, AMP O2 with loss scale dynamic. Other --flag=value pairs go to train.py
# unchanged (last wins).
# --batch_size is the GLOBAL batch of the job (all devices; per device = batch_size / RANK_SIZE, computed
# in train.py), as the port's scripts define it: batch_scope=global, so GlobalBatchSize = BatchSize.
# Checkpoints: test/output/<device id>/models_perf_8p/. FPS = the last epoch's per-device `fps:` line
# x RANK_SIZE, as the Ascend script computes it.
Network="LResNet100E"; MODE=perf; RANK_SIZE=${RANK_SIZE:-8}; batch_size=2560; epochs=2; batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run train.py --net_mode=ir_se --net_depth=100 --data_mode=emore --data_path="$data_path" \
  --batch-size="$batch_size" --lr=0.01 --epochs="$epochs" --max_iter=1000 --seed=2021 \
  --device_id="$device_id" --use_amp=1 --opt-level=O2 --loss-scale=dynamic --num_workers="${workers:-8}" \
  --save_dir="$ZOO_OUT/models_perf_8p" ${max_steps:+--max_steps=$max_steps} --distributed=1
zoo_summary --fps_pattern '^fps: ([0-9.]+)' --fps_reduce last --fps_scale "$RANK_SIZE" \
  --acc_pattern 'lfw_accuracy:\s+([0-9.]+)' --loss_pattern 'train_loss: ([0-9.eE+-]+)'

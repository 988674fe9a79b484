#!/usr/bin/env bash
# LResNet100E-IR: full training, 8 devices (RANK_SIZE overrides 8).
# Usage: bash test/train_full_8p.sh --data_path=DIR [--key=value ...]
# IR-SE-100 + ArcFace on faces_emore, recipe of the port's script: batch 2560 (320 per device), lr 0.01,
# 20 epochs, max_iter -1, AMP O2 with loss scale dynamic. Other --flag=value pairs go to train.py
# unchanged (last wins).
# --batch_size is the GLOBAL batch of the job (all devices; per device = batch_size / RANK_SIZE, computed
# in train.py), as the port's scripts define it: batch_scope=global, so GlobalBatchSize = BatchSize.
# Checkpoints: test/output/<device id>/models_full_8p/; --resume (bare) or --max_restarts=N continue its
# last.pth. FPS = the last epoch's per-device `fps:` line x RANK_SIZE, as the Ascend script computes it.
Network="LResNet100E"; MODE=acc; RANK_SIZE=${RANK_SIZE:-8}; batch_size=2560; epochs=20; batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run train.py --net_mode=ir_se --net_depth=100 --data_mode=emore --data_path="$data_path" \
  --batch-size="$batch_size" --lr=0.01 --epochs="$epochs" --max_iter=-1 --seed=2021 \
  --device_id="$device_id" --use_amp=1 --opt-level=O2 --loss-scale=dynamic --num_workers="${workers:-8}" \
  --save_dir="$ZOO_OUT/models_full_8p" ${max_steps:+--max_steps=$max_steps} --distributed=1
zoo_summary --fps_pattern '^fps: ([0-9.]+)' --fps_reduce last --fps_scale "$RANK_SIZE" \
  --acc_pattern 'lfw_accuracy:\s+([0-9.]+)' --loss_pattern 'train_loss: ([0-9.eE+-]+)'

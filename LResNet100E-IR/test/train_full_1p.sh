#!/usr/bin/env bash
# LResNet100E-IR: full training, 1 device (the card's recipe; reports LFW accuracy and FPS).
# Usage: bash test/train_full_1p.sh --data_path=DIR [--key=value ...]
# IR-SE-100 + ArcFace on faces_emore, recipe of the port's script: batch 256, lr 0.001, 20 epochs,
# max_iter -1, AMP O2 with loss scale 128.0. Other --flag=value pairs go to train.py unchanged (last wins).
# --batch_size is the GLOBAL batch of the job (all devices; per device = batch_size / RANK_SIZE), as the
# port's scripts define it: batch_scope=global, so GlobalBatchSize = BatchSize.
# Checkpoints: test/output/<device id>/models_full_1p/ (model_<time>_epoch:<e>_<acc>.pth, last.pth);
# --resume (bare) continues its last.pth. FPS = the last epoch's `fps:` line (as the Ascend script reads it).
Network="LResNet100E"; MODE=acc; RANK_SIZE=1; batch_size=256; epochs=20; batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run train.py --net_mode=ir_se --net_depth=100 --data_mode=emore --data_path="$data_path" \
  --batch-size="$batch_size" --lr=0.001 --epochs="$epochs" --max_iter=-1 --seed=2021 \
  --device_id="$device_id" --use_amp=1 --opt-level=O2 --loss-scale=128.0 --num_workers="${workers:-8}" \
  --save_dir="$ZOO_OUT/models_full_1p" ${max_steps:+--max_steps=$max_steps}
zoo_summary --fps_pattern '^fps: ([0-9.]+)' --fps_reduce last --acc_pattern 'lfw_accuracy:\s+([0-9.]+)' \
  --loss_pattern 'train_loss: ([0-9.eE+-]+)'

#!/usr/bin/env bash
# DeepMar evaluation of a checkpoint, test set sharded over 8 devices (RANK_SIZE overrides 8).
# Usage: bash test/train_eval_8p.sh --data_path=/data/peta [--pth_path=CKPT]
# Without --pth_path it evaluates the latest checkpoint of train_full_8p.sh on the same device id
# (test/output/<id>/exp_8p/model/checkpoint.path.tar) and says so.
# --batch_size is the GLOBAL evaluation batch (images per step over all ranks; eval.py divides it
# over the ranks); the summary's GlobalBatchSize equals it.
Network="DeepMar_ID0096_for_PyTorch"; MODE=eval; RANK_SIZE=${RANK_SIZE:-8}; batch_size=32; workers=8; batch_scope=global
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_default_pth_path() { echo "$ZOO_OUT/exp_8p/model/checkpoint.path.tar"; }
zoo_parse_args "$@"
zoo_setup
zoo_run eval.py --save_dir="$data_path" --pth_path="$pth_path" --batch_size="$batch_size" --workers="$workers"
zoo_summary --fps_pattern '\* FPS@all ([0-9.]+)' --acc_pattern 'Acc: ([0-9.]+)' --loss_pattern 'Step .*loss:([0-9.]+)'

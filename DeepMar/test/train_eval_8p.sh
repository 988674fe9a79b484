#!/usr/bin/env bash
# DeepMar evaluation of a checkpoint, test set sharded over 8 devices (RANK_SIZE overrides 8).
# Usage: bash test/train_eval_8p.sh --data_path=/data/peta --pth_path=CKPT
Network="DeepMar_ID0096_for_PyTorch"; MODE=eval; RANK_SIZE=${RANK_SIZE:-8}; batch_size=32; workers=8
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
zoo_parse_args "$@"
zoo_setup
zoo_run eval.py --save_dir="$data_path" --pth_path="$pth_path" --batch_size="$batch_size" --workers="$workers"
zoo_summary --fps_pattern '\* FPS@all ([0-9.]+)' --acc_pattern 'Acc: ([0-9.]+)' --loss_pattern 'Step .*loss:([0-9.]+)'

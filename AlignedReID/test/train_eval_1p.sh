#!/usr/bin/env bash
# AlignedReID: evaluate a checkpoint (1p script; evaluation runs on device 0, as the Ascend 8p eval): CMC, mAP,
# re-ranking. The reported accuracy is the card's rank-1 (%): global distance without re-ranking, the log's last
# cmc1 line (what the Ascend CI reads).
# Usage: bash test/train_eval_1p.sh --data_path=DIR [--pth_path=CKPT_OR_ITS_FOLDER] [--batch_size=N --key=value ...]
# Without --pth_path: the checkpoint of test/train_full_1p.sh of the same device id
# (test/output/<id>/train_full_1p/ckpt.pth).
# --batch_size: images per evaluation batch. batch_scope=global: device 0 alone evaluates, so its batch is the
# job's whole batch (GlobalBatchSize = batch_size), unlike the training scripts (per device).
Network="AlignedReID_for_PyTorch"; MODE=eval; RANK_SIZE=1; batch_scope=global; batch_size=32
zoo_default_pth_path() { echo "$ZOO_OUT/train_full_1p/ckpt.pth"; }
source "$(dirname "${BASH_SOURCE[0]}")/../../common/scripts/testlib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/aligned_reid_card.sh"
zoo_parse_args "$@"
zoo_setup
aligned_reid_eval

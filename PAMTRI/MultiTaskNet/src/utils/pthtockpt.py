#!/usr/bin/env python3
"""The model card's `python src/utils/pthtockpt.py --pth_path densenet121-a639ec97.pth`.

MindSpore needed torchvision's DenseNet-121 ImageNet weights converted to a .ckpt; this PyTorch port
reads the .pth itself (--pre_ckpt_path, or PRETRAINED_PATH of scripts/run_*_train_*.sh), so nothing is
converted. The command checks the file instead (loaded as data, never run: backbone keys and shapes) and
says what to pass.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3]))  # repo root: common/
sys.path.insert(0, str(HERE.parents[1]))  # multitasknet/

import argparse

from multitasknet.checkpoints import imagenet_features, load_file, unwrap_checkpoint
from multitasknet.densenet import ARCHS

from common.cli import ArgumentParser
from common.errors import UserError, main_guard


def main(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pth_path", required=True, help="torchvision densenet121-a639ec97.pth")
    p.add_argument("--arch", default="densenet121", choices=sorted(ARCHS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        sd = unwrap_checkpoint(load_file(args.pth_path, what="--pth_path file"))
    except UserError as exc:
        if "holds no model state_dict" in str(exc):
            raise UserError(f"--pth_path {args.pth_path}: the file holds no state_dict") from None
        raise
    feats = imagenet_features(sd, args.arch)
    print(f"{args.pth_path}: torchvision {args.arch} ImageNet weights, {len(feats)} backbone tensors. No conversion "
          f"is needed in this PyTorch port: pass this file as PRETRAINED_PATH of scripts/run_*_train_*.sh or as "
          f"train.py --pre_ckpt_path")


if __name__ == "__main__":
    main_guard(main)()

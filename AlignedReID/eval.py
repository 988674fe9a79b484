"""Evaluate an AlignedReID checkpoint on the Market-1501 test set (upstream's metric lines).

    python eval.py --data_path=/data/market1501 --pth_path=exp/train/market1501/run1/ckpt.pth

--pth_path takes our/upstream/Ascend ckpt.pth, a plain state_dict (upstream model_weight.pth)
or a folder holding ckpt.pth. Architecture, input size and feature flags default to the
values the checkpoint was trained with (upstream files: resnet50, 256x128, no normalisation).
"""
import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import torch
from aligned_reid.evaluate_model import report, run_test
from aligned_reid.market1501 import TestSplit, load_partitions
from aligned_reid.weights import add_trained_model_args, read_trained_model

from common import amp
from common.cli import ArgumentParser, add_bool, nonneg_float, nonneg_int, positive_int
from common.device import add_device_args, select_device
from common.distributed import env_world
from common.errors import main_guard


def get_parser():
    p = ArgumentParser(description="AlignedReID evaluation (CMC, mAP, re-ranking) on Market-1501")
    p.add_argument("--data_path", "--data_pth", dest="data_path", required=True, help="prepared market1501 directory")
    p.add_argument("--pkl", default="partitions.pkl")
    add_trained_model_args(p)  # --pth_path, --arch, --resize_h_w
    p.add_argument("--dataset", default="market1501")
    add_bool(p, "--normalize_feature", default=None, help="default: from the checkpoint, else false")
    p.add_argument("-llw", "--l_loss_weight", dest="llw", type=nonneg_float, default=None,
                   help="with --local_dist_own_hard_sample, > 0 also scores local distances (as upstream)")
    add_bool(p, "--local_dist_own_hard_sample", default=None)
    add_bool(p, "--re_rank", default=True)
    p.add_argument("--ap", default="trapezoid", choices=["trapezoid", "step"])
    p.add_argument("--eval_batch_size", "--batch_size", dest="eval_batch_size", type=positive_int, default=32)
    p.add_argument("-j", "--workers", type=nonneg_int, default=2)
    add_bool(p, "--channels_last", default=True, help="channels-last memory format (--channels_last false: off)")
    p.add_argument("--no-channels_last", dest="channels_last", action="store_false", help=argparse.SUPPRESS)
    add_bool(p, "--skip_bad_images", default=False)
    p.add_argument("--npu", type=nonneg_int, default=None, help="device index (same as --device_id)")
    p.add_argument("--addr", default="127.0.0.1", help=argparse.SUPPRESS)
    add_device_args(p)
    amp.add_amp_args(p, default_opt_level="O1", default_loss_scale="128")
    p.set_defaults(amp=None)  # default: the precision the checkpoint was trained (and tested) with
    return p


def fill_from_trained_args(args, trained: dict) -> None:
    """Flags not given default to the values the checkpoint was trained with (else upstream's)."""
    defaults = (("amp", False), ("normalize_feature", False), ("llw", 0.0), ("local_dist_own_hard_sample", False))
    for key, default in defaults:
        if getattr(args, key) is None:
            setattr(args, key, trained.get(key, default))


@main_guard
def main(argv=None):
    args = get_parser().parse_args(argv)
    rank, _, _ = env_world()
    if rank != 0:  # evaluation runs on rank 0, as in the Ascend 8p eval; no process group needed
        return
    device = select_device(args.device, args.npu if args.npu is not None else args.device_id)
    trained = read_trained_model(args.pth_path, args.arch, args.resize_h_w)
    args.arch, args.resize_h_w = trained.arch, trained.size
    fill_from_trained_args(args, trained.trained_args)
    test_split = TestSplit(args.data_path, load_partitions(args.data_path, args.pkl))
    model = trained.build().to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    print(f"loaded {args.pth_path} ({args.arch}, input {args.resize_h_w[0]}x{args.resize_h_w[1]}, "
          f"normalize_feature {args.normalize_feature})", flush=True)
    report(run_test(model, test_split, device, amp.from_args(args, device), args))


if __name__ == "__main__":
    main()

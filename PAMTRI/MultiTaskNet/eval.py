#!/usr/bin/env python3
"""Evaluate a MultiTaskNet checkpoint on VeRi: query (image_query) against gallery (image_test).

    python eval.py --root data --ckpt_path log/best_model.pth.tar
    python eval.py --ckpt_path path/ckpt --device_target GPU --root ./data/ --device_id 0 --heatmapaware True

Prints mAP, CMC Rank-1..50 and, for multitask models, colour/type accuracy. Input channels,
keypoint use and heads are read from the checkpoint (ours, or upstream's model_best.pth.tar);
--heatmapaware/--segmentaware may be given and must then agree with it.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repo root: common/
sys.path.insert(0, str(HERE))             # multitasknet/

import argparse

import torch
from multitasknet.checkpoints import load_model_for_eval
from multitasknet.device import add_device_flags, launched
from multitasknet.evaluation import make_test_loaders, run_test
from multitasknet.flags import add_data_args
from multitasknet.transforms import Normalizer
from multitasknet.veri import VeRi, train_attribute_maps

from common import amp
from common.cli import ArgumentParser, add_bool
from common.errors import UserError, main_guard
from common.progress import Console


def get_args_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_args(p, default_root="./data")
    p.add_argument("--ckpt_path", "--load-weights", "--pth_path", dest="ckpt_path", default="",
                   help="checkpoint to evaluate (checkpoint_epN.pth.tar, best_model.pth.tar, upstream model_best)")
    add_device_flags(p)
    amp.add_amp_args(p)  # accepted and ignored: evaluation is fp32
    add_bool(p, "--channels_last", help="NHWC memory format")
    return p


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if not args.ckpt_path:
        raise UserError("--ckpt_path is required (a checkpoint written by train.py or upstream's model_best.pth.tar)")
    with launched(args) as dist:
        evaluate(args, dist)


def evaluate(args, dist):
    device, log = dist.device, Console(dist.is_main).log  # the other ranks print nothing
    model, ckpt, cfg = load_model_for_eval(args.ckpt_path, args)
    log(f"Loaded {args.ckpt_path}: {cfg['arch']}, {cfg['in_channels']} input channels, "
        f"keyptaware {cfg['keyptaware']}, multitask {cfg['multitask']}, {cfg['num_vids']} training ids; "
        f"input {args.height}x{args.width}")
    veri = VeRi(args.root, args.heatmapaware, args.segmentaware, splits=("query", "test"), verbose=dist.is_main)
    maps = ckpt.get("maps")
    if maps:
        color_map, type_map = maps["color"], maps["type"]
    elif cfg["multitask"]:
        color_map, type_map = train_attribute_maps(veri.dir)
    else:
        color_map = type_map = {}
    model.to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    # fp32, as the evaluation train.py prints after each epoch: the same checkpoint gives the same figures.
    # (--amp is accepted for the scripts of other ports; apex would need amp.initialize, which eval never calls.)
    precision = amp.Amp(False, device)
    log(f"Evaluation precision: {precision.mode}")
    normalizer = Normalizer(cfg["in_channels"]).to(device)
    loaders = make_test_loaders(veri, args, device, dist)
    log("Evaluate only")
    run_test(model, veri, loaders, args, device, normalizer, dist, color_map, type_map, amp=precision,
             keyptaware=cfg["keyptaware"], channels_last=bool(args.channels_last))


if __name__ == "__main__":
    main_guard(main)()

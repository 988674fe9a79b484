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
import os

import torch
from multitasknet.transforms import Normalizer
from multitasknet.utils import (
    add_data_args,
    add_device_flags,
    init_dist,
    load_model_for_eval,
    make_test_loaders,
    run_test,
    silence_stdout,
    tighten_common_flags,
)
from multitasknet.veri import VeRi, read_label_csv, relabel_map

from common import amp as zamp
from common import distributed as zdist
from common.cli import ArgumentParser, add_bool
from common.errors import UserError, main_guard


def get_args_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_args(p, default_root="./data")
    p.add_argument("--ckpt_path", "--load-weights", "--pth_path", dest="ckpt_path", default="",
                   help="checkpoint to evaluate (checkpoint_epN.pth.tar, best_model.pth.tar, upstream model_best)")
    add_device_flags(p)
    zamp.add_amp_args(p)  # accepted and ignored: evaluation is fp32
    tighten_common_flags(p)
    add_bool(p, "--channels_last", help="NHWC memory format")
    return p


def train_attribute_maps(veri_dir):
    """Colour/type ground truth goes through the train maps: rebuild them from label_train.csv."""
    path = os.path.join(veri_dir, "label_train.csv")
    if not os.path.isfile(path):
        raise UserError(f"{path} is needed for the colour/type maps of a checkpoint that does not store them")
    _, labels, _ = read_label_csv(path)
    return relabel_map(labels[:, 1]), relabel_map(labels[:, 2])


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if not args.ckpt_path:
        raise UserError("--ckpt_path is required (a checkpoint written by train.py or upstream's model_best.pth.tar)")
    dist = init_dist(args)
    stdout = sys.stdout
    try:
        if not dist.is_main:
            silence_stdout()
        evaluate(args, dist)
    finally:
        sys.stdout = stdout
        zdist.cleanup(dist)


def evaluate(args, dist):
    device = dist.device
    model, ckpt, cfg = load_model_for_eval(args.ckpt_path, args)
    print(f"Loaded {args.ckpt_path}: {cfg['arch']}, {cfg['in_channels']} input channels, "
          f"keyptaware {cfg['keyptaware']}, multitask {cfg['multitask']}, {cfg['num_vids']} training ids; "
          f"input {args.height}x{args.width}")
    veri = VeRi(args.root, args.heatmapaware, args.segmentaware, splits=("query", "test"))
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
    amp = zamp.Amp(False, device)
    print(f"Evaluation precision: {amp.mode}")
    normalizer = Normalizer(cfg["in_channels"]).to(device)
    loaders = make_test_loaders(veri, args, device, dist)
    print("Evaluate only")
    run_test(model, veri, loaders, args, device, normalizer, dist, color_map, type_map, amp=amp,
             keyptaware=cfg["keyptaware"], channels_last=bool(args.channels_last))


if __name__ == "__main__":
    main_guard(main)()

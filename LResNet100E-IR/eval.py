"""Verification accuracy of a checkpoint on insightface .bin pair files (port eval.py protocol:
10 folds, flip TTA l2_norm(m(x) + m(flip(x))), squared L2, thresholds arange(0, 4, 0.01)).

    python eval.py --data_path ./data/faces_emore/lfw.bin --pth_path model.pth
    python eval.py --data_path ./data/faces_emore --targets lfw,agedb_30,cfp_fp --pth_path model.pth
    python eval.py --data_path ./data/faces_emore/lfw.bin --pth_path work_space/models   # its newest model file
    torchrun --nproc_per_node 8 eval.py --data_path .../lfw.bin --pth_path model.pth --distributed 1

Each device embeds blocks of batch/world consecutive images, so a run on N devices and one on 1
device with the same per-device batch compute the same embeddings bit for bit. With
--nfolds 5 --flip 0 --use_amp <as trained> and the default per-device batch (512) it reproduces the
per-epoch `lfw_accuracy:` of training exactly.
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from face_arcface import architecture, weights
from face_arcface.faces_emore import (
    VERIFICATION_SETS,
    decode_bin,
    is_bcolz_dir,
    load_bin,
    missing_bin_message,
)
from face_arcface.launch import check_launch
from face_arcface.verification import embed_images, evaluate

from common import device, distributed
from common.amp import Amp
from common.cli import ArgumentParser, add_bool, int_range, nonneg_int, positive_int
from common.errors import UserError, main_guard
from common.progress import Console


def get_args_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--data_path", required=True, help="a .bin pair file, or a folder holding <target>.bin files")
    a("--pth_path", required=True, help="checkpoint (dict with 'model') or plain backbone state_dict; a folder: "
                                        "its newest model file")
    a("--targets", default="lfw", help="with a folder: comma list of .bin names, or 'all'")
    a("--batch-size", "--batch_size", "-b", dest="batch_size", type=positive_int, default=512,
      help="GLOBAL batch (per device = batch / world size)")
    a("--nfolds", type=int_range(2), default=10)
    add_bool(p, "--flip", default=True, help="flip TTA (port eval.py: on)")
    a("--num_workers", "--workers", dest="num_workers", type=nonneg_int, default=4, help="decoding threads")
    a("--device_type", "--device", dest="device_type", default="auto", choices=device.CHOICES)
    a("--device_id", type=nonneg_int, default=0)
    add_bool(p, "--use_amp", "--amp", dest="use_amp", default=False)
    a("--distributed", type=int_range(0, 1), default=0,
      help="1: one process per device, started by test/train_eval_8p.sh or torchrun (WORLD_SIZE decides)")
    add_bool(p, "--channels_last", default=True)
    # architecture for plain state_dicts (our checkpoints carry their own)
    architecture.add_arch_args(p)
    return p


def bin_files(data_path, targets):
    if os.path.isfile(data_path):
        return [(Path(data_path).stem, data_path)]
    if not os.path.isdir(data_path):
        raise UserError(f"--data_path not found (expected a .bin file or a folder of them): {data_path}")
    if is_bcolz_dir(data_path):
        parent, name = os.path.split(os.path.normpath(data_path))
        raise UserError(missing_bin_message(parent, name, "eval.py"))
    names = VERIFICATION_SETS if targets == "all" else [t for t in targets.split(",") if t]
    found = [(n, os.path.join(data_path, f"{n}.bin")) for n in names
             if os.path.isfile(os.path.join(data_path, f"{n}.bin"))]
    if not found:
        first = names[0] if names else "lfw"
        raise UserError(missing_bin_message(data_path, first, "eval.py") if targets != "all" else
                        f"no {', '.join(n + '.bin' for n in names)} in {data_path}")
    found.sort(key=lambda t: t[0] == "lfw")  # lfw last: CI takes the last lfw_accuracy line
    return found


@main_guard
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    check_launch(args, "train_eval_8p.sh", "eval.py")
    start = time.time()
    dist = distributed.init(args.device_type, args.device_id)
    try:
        if args.batch_size % dist.world_size:
            raise UserError(f"--batch_size {args.batch_size} is not divisible by the {dist.world_size} devices")
        per_device = args.batch_size // dist.world_size
        files = bin_files(args.data_path, args.targets)
        for _, path in files:  # format errors before anything slow
            load_bin(path)
        console = Console(dist.is_main)  # rank 0 prints
        pth = weights.newest_model_file(args.pth_path, console.log)
        model, arch, _ = weights.load_backbone(pth, architecture.arch_from_args(args))
        sets = [(name, *decode_bin(path, arch["input_size"], args.num_workers)) for name, path in files]
        model = model.to(dist.device)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        amp = Amp(args.use_amp, dist.device)
        for name, images, issame in sets:
            emb = embed_images(model, images, per_device, dist.device, amp, flip=args.flip, dist=dist,
                               channels_last=args.channels_last, embedding_size=arch["embedding_size"])
            if dist.is_main:
                acc, thr = evaluate(emb, issame, args.nfolds)
                console.log("*" * 50)
                console.log(f"{name}_accuracy: {acc}")
                console.log(f"best_thresholds: {thr}")
                console.log("*" * 50)
        console.log(f"evaluated {pth} ({arch['net_mode']}) in {time.time() - start:.1f} s")
    finally:
        distributed.cleanup(dist)


if __name__ == "__main__":
    main()

"""Verification accuracy of a checkpoint on insightface .bin pair files (port eval.py protocol:
10 folds, flip TTA l2_norm(m(x) + m(flip(x))), squared L2, thresholds arange(0, 4, 0.01)).

    python eval.py --data_path ./data/faces_emore/lfw.bin --pth_path model.pth
    python eval.py --data_path ./data/faces_emore --targets lfw,agedb_30,cfp_fp --pth_path model.pth
    torchrun --nproc_per_node 8 eval.py --data_path .../lfw.bin --pth_path model.pth   # images sharded
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from face_arcface import checkpoints  # noqa: E402
from face_arcface.faces_emore import VERIFICATION_SETS, decode_bin, load_bin  # noqa: E402
from face_arcface.utils import device_choice, str2bool  # noqa: E402
from face_arcface.verification import embed_images, evaluate  # noqa: E402

from common import distributed  # noqa: E402
from common.amp import Amp  # noqa: E402
from common.errors import UserError, main_guard  # noqa: E402


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--data_path", required=True, help="a .bin pair file, or a folder holding <target>.bin files")
    a("--pth_path", required=True, help="checkpoint (dict with 'model') or plain backbone state_dict")
    a("--targets", default="lfw", help="with a folder: comma list of .bin names, or 'all'")
    a("--batch-size", "--batch_size", "-b", dest="batch_size", type=int, default=512, help="global batch")
    a("--nfolds", type=int, default=10)
    a("--flip", type=str2bool, nargs="?", const=True, default=True, help="flip TTA (port eval.py: on)")
    a("--num_workers", "--workers", dest="num_workers", type=int, default=4, help="decoding threads")
    a("--device_type", "--device", dest="device_type", default="auto", type=device_choice)
    a("--device_id", type=int, default=0)
    a("--use_amp", "--amp", dest="use_amp", type=str2bool, nargs="?", const=True, default=False)
    a("--distributed", type=int, default=0, help="accepted; torchrun's WORLD_SIZE decides")
    a("--channels_last", type=str2bool, nargs="?", const=True, default=True)
    # architecture for plain state_dicts (our checkpoints carry their own)
    a("--net_mode", default="ir_se", choices=("ir", "ir_se", "mobilefacenet"))
    a("--net_depth", type=int, default=100, choices=(50, 100, 152))
    a("--drop_ratio", type=float, default=0.6)
    a("--embedding_size", type=int, default=512)
    a("--input_size", type=int, default=112)
    a("--units", default="")
    a("--widths", default="")
    return p


def bin_files(data_path, targets):
    if os.path.isfile(data_path):
        return [(Path(data_path).stem, data_path)]
    if not os.path.isdir(data_path):
        raise UserError(f"--data_path not found (expected a .bin file or a folder of them): {data_path}")
    names = VERIFICATION_SETS if targets == "all" else [t for t in targets.split(",") if t]
    found = [(n, os.path.join(data_path, f"{n}.bin")) for n in names
             if os.path.isfile(os.path.join(data_path, f"{n}.bin"))]
    if not found:
        raise UserError(f"no {', '.join(n + '.bin' for n in names)} in {data_path}")
    found.sort(key=lambda t: t[0] == "lfw")  # lfw last: CI takes the last lfw_accuracy line
    return found


@main_guard
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    start = time.time()
    dist = distributed.init(args.device_type, args.device_id)
    try:
        files = bin_files(args.data_path, args.targets)
        for _, path in files:  # format errors before anything slow
            load_bin(path)
        model, arch, _ = checkpoints.load_backbone(args.pth_path, checkpoints.arch_from_args(args))
        sets = [(name, *decode_bin(path, arch["input_size"], args.num_workers)) for name, path in files]
        model = model.to(dist.device)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        amp = Amp(args.use_amp, dist.device)
        if args.batch_size % dist.world_size:
            raise UserError(f"--batch_size {args.batch_size} is not divisible by the {dist.world_size} devices")
        per_device = args.batch_size // dist.world_size
        for name, images, issame in sets:
            emb = embed_images(model, images, per_device, dist.device, amp, flip=args.flip, dist=dist,
                               channels_last=args.channels_last)
            if dist.is_main:
                acc, thr = evaluate(emb, issame, args.nfolds)
                print("*" * 50)
                print(f"{name}_accuracy: {acc}")
                print(f"best_thresholds: {thr}")
                print("*" * 50, flush=True)
        if dist.is_main:
            print(f"evaluated {args.pth_path} ({arch['net_mode']}) in {time.time() - start:.1f} s", flush=True)
    finally:
        distributed.cleanup(dist)


if __name__ == "__main__":
    main()

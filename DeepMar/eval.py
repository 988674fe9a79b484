"""Evaluate a DeepMar checkpoint on a PETA split: prints upstream's mA / instance block.

    python eval.py --save_dir=/data/peta --pth_path=exp/.../model/ckpt_epoch150.pth
"""
import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import torch
from deepmar import peta
from deepmar.evaluate import evaluate
from deepmar.flags import Parser, int_tuple_type, per_rank_batch
from deepmar.model import ARCHS, DeepMAR, extract_state_dict, infer_arch
from deepmar.transforms import build_transform, parse_resize

from common import amp, checkpoint, distributed
from common.cli import add_bool, int_range, nonneg_int, positive_int
from common.device import add_device_args
from common.errors import main_guard
from common.progress import Console


def get_parser():
    p = Parser(description="Evaluate a DeepMar checkpoint on PETA")
    p.add_argument("--save_dir", "--data_path", dest="save_dir", required=True, help="PETA root")
    p.add_argument("--pth_path", "--model_weight_file", dest="pth_path", required=True,
                   help="ckpt_epoch*.pth, checkpoint.path.tar or a bare state_dict")
    p.add_argument("--test_split", default="test", choices=["test", "val", "train", "trainval"])
    p.add_argument("--partition_idx", type=int_range(0, peta.NUM_PARTITIONS - 1), default=0)
    p.add_argument("--resize", type=int_tuple_type(1, 4096, sizes=(1, 2)), default=None,
                   help="(height,width); default: the checkpoint's, else (224,224)")
    p.add_argument("--arch", default=None, choices=list(ARCHS), help="default: the checkpoint's, else resnet50")
    p.add_argument("--last_conv_stride", type=int, default=None, choices=[1, 2])
    p.add_argument("--batch_size", "--eval_batch_size", dest="eval_batch_size", type=positive_int, default=32,
                   help="GLOBAL batch: images per step over all ranks (8p: divided over them)")
    p.add_argument("--workers", type=nonneg_int, default=2)
    add_bool(p, "--channels_last", default=True, help="NHWC memory format (--no-channels_last: same as False)")
    p.add_argument("--no-channels_last", dest="channels_last", action="store_false", help=argparse.SUPPRESS)
    add_bool(p, "--skip_bad_images", default=False)
    p.add_argument("--npu", type=nonneg_int, default=None)
    amp.add_amp_args(p)
    add_device_args(p)
    return p


@main_guard
def main(argv=None):
    args = get_parser().parse_args(argv)
    _, world, _ = distributed.env_world()
    # the one conversion of the global --batch_size into the batch of each process
    args.eval_batch_size = per_rank_batch(args.eval_batch_size, world)
    dist = distributed.init(args.device, args.npu if args.npu is not None else args.device_id)
    log = Console(dist.is_main).log
    ckpt = checkpoint.load(args.pth_path, what="checkpoint (--pth_path)")
    state = extract_state_dict(ckpt, f"checkpoint {args.pth_path}")
    saved = ckpt.get("deepmar_args") if isinstance(ckpt, dict) else None
    saved = vars(saved) if isinstance(saved, argparse.Namespace) else saved if isinstance(saved, dict) else {}
    arch = args.arch or saved.get("arch") or infer_arch(state) or "resnet50"
    stride = args.last_conv_stride or (saved.get("last_conv_stride") if saved.get("last_conv_stride") in (1, 2) else 2)
    resize = parse_resize(args.resize or saved.get("resize", "(224,224)"))
    if dist.is_main:
        peta.prepare_if_needed(args.save_dir, log)
    distributed.barrier(dist)
    dataset, partition = peta.load_prepared(args.save_dir)
    num_att = len(dataset["selected_attribute"])
    model = DeepMAR(num_att, arch, stride)
    checkpoint.load_state_dict_checked(model, state, what=f"checkpoint {args.pth_path}")
    device = dist.device
    model = model.to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    test_set = peta.PetaDataset(args.save_dir, dataset, partition, args.test_split, args.partition_idx,
                                build_transform(resize), False, args.skip_bad_images)
    test_set.check_files()
    precision = amp.from_args(args, device)
    log(f"evaluating {args.pth_path} ({arch}) on {args.test_split} split of partition {args.partition_idx}: "
        f"{len(test_set)} images, precision {precision.mode}")
    start = time.time()
    evaluate(model, test_set, args, device, precision, dist, args.test_split, log)
    seconds = time.time() - start
    log(f" * FPS@all {len(test_set) / seconds if seconds > 0 else 0.0:.3f}")
    distributed.cleanup(dist)


if __name__ == "__main__":
    main()

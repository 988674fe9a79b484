"""Loader-only throughput: the training loader of train.py without the model.

    python tools/bench_loader.py --save_dir=/data/peta --batch_size=256 --workers=2 --batches=30
"""
import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parent)]

import torch
from deepmar import peta
from deepmar.flags import int_tuple_type
from deepmar.transforms import build_transform, parse_resize, random_hflip
from torch.utils.data import DataLoader, RandomSampler

from common.cli import ArgumentParser, nonneg_int, positive_int
from common.data import loader_kwargs, skip_none_collate
from common.errors import main_guard


@main_guard
def main(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--save_dir", "--data_path", dest="save_dir", required=True)
    p.add_argument("--batch_size", type=positive_int, default=256)
    p.add_argument("--workers", type=nonneg_int, default=2)
    p.add_argument("--batches", type=positive_int, default=30)
    p.add_argument("--warmup", type=nonneg_int, default=3, help="batches excluded (worker start-up)")
    p.add_argument("--resize", type=int_tuple_type(1, 4096, sizes=(1, 2)), default="(224,224)")
    args = p.parse_args(argv)
    dataset, partition = peta.prepare_if_needed(args.save_dir)
    ds = peta.PetaDataset(args.save_dir, dataset, partition, "trainval", 0, build_transform(parse_resize(args.resize)))
    total = args.batches + args.warmup
    sampler = RandomSampler(ds, replacement=True, num_samples=total * args.batch_size)
    loader = DataLoader(ds, batch_size=args.batch_size, sampler=sampler, drop_last=True,
                        collate_fn=skip_none_collate, **loader_kwargs(args.workers, torch.device("cpu")))
    n, t0 = 0, None
    for i, (x, _) in enumerate(loader):
        x = random_hflip(x).contiguous(memory_format=torch.channels_last)
        if i == args.warmup:
            t0 = time.perf_counter()
        elif i > args.warmup:
            n += x.shape[0]
    seconds = time.perf_counter() - t0
    print(f"loader only: {n / seconds:.1f} images/sec ({n} images, batch {args.batch_size}, "
          f"{args.workers} workers, first {args.warmup} batches excluded)")


if __name__ == "__main__":
    main()

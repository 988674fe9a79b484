"""Throughput in one run: training images/s of the fast path (AMP + channels_last) and of plain
fp32 for the same model and batch, then loader-only images/s on JPEG class folders.

    python tools/bench.py --data_path /data/imagenet --cfg w18 --bs 64 --workers 8
    python tools/bench.py                      # writes ~400x350 demo JPEGs to a temp folder first

Training is timed on one batch held on the device (compute only; `steps` after `warmup`);
the loader is timed over `loader_batches` batches of the real train transform (decode,
RandomResizedCrop, flip) through the same DataLoader settings train.py uses.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(HERE.parent), str(HERE)]

import torch
from hrnet_cls.cls_hrnet import get_cls_net
from hrnet_cls.config import load_config
from hrnet_cls.imagenet import ImageNetFolder, normalize, scan_split
from hrnet_cls.loaders import make_train_loader
from hrnet_cls.optim import get_optimizer

from common import amp, distributed
from common.cli import ArgumentParser, nonneg_int, positive_int
from common.device import add_device_args, synchronize
from common.errors import main_guard


def train_fps(cfg, device, bs, steps, warmup, fast: bool) -> float:
    torch.manual_seed(0)
    model = get_cls_net(cfg).to(device)
    precision = amp.Amp(fast, device, "O2", None)
    if fast:
        model.to(memory_format=torch.channels_last)
    optimizer = get_optimizer(cfg, model, 0.01, device)
    width, height = cfg.MODEL.IMAGE_SIZE
    images = torch.randint(0, 256, (bs, 3, height, width), dtype=torch.uint8)
    target = torch.randint(0, cfg.MODEL.NUM_CLASSES, (bs,), device=device)
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            synchronize(device)
            start = time.perf_counter()
        x = normalize(images, device, channels_last=fast)
        with precision.autocast():
            out = model(x)
        loss = criterion(out.float(), target)
        optimizer.zero_grad(set_to_none=True)
        precision.backward(loss, optimizer)
        precision.step(optimizer)
    synchronize(device)
    return bs * steps / (time.perf_counter() - start)


def loader_fps(data_path, size, bs, workers, batches, device) -> float:
    samples, classes = scan_split(data_path, "train")
    dataset = ImageNetFolder(samples, classes, size, train=True)
    loader, sampler = make_train_loader(dataset, bs, workers, device, distributed.Dist(device=device), seed=0)
    sampler.set_epoch(0)
    it = iter(loader)
    next(it)  # worker start-up is not throughput
    n, start = 0, time.perf_counter()
    for _ in range(batches):
        try:
            images, _ = next(it)
        except StopIteration:
            sampler.set_epoch(sampler.epoch + 1)
            it = iter(loader)
            images, _ = next(it)
        n += images.shape[0]
    return n / (time.perf_counter() - start)


@main_guard
def main(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_path", default=None, help="ImageNet-style root with train/ (default: generated demo JPEGs)")
    p.add_argument("--cfg", default="w18")
    p.add_argument("--bs", type=positive_int, default=32)
    p.add_argument("--steps", type=positive_int, default=10)
    p.add_argument("--warmup", type=nonneg_int, default=3)
    p.add_argument("--workers", type=nonneg_int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--loader_batches", type=positive_int, default=20)
    add_device_args(p)
    a = p.parse_args(argv)
    cfg, _ = load_config(a.cfg)
    device = distributed.init(a.device, a.device_id).device
    print(f"bench: cfg {a.cfg}, batch {a.bs}, device {device}, {torch.get_num_threads()} threads", flush=True)
    fast = train_fps(cfg, device, a.bs, a.steps, a.warmup, fast=True)
    print(f"train FPS fast path (AMP {amp.Amp(True, device).mode} + channels_last): {fast:.1f}", flush=True)
    plain = train_fps(cfg, device, a.bs, a.steps, a.warmup, fast=False)
    print(f"train FPS plain fp32 (NCHW): {plain:.1f}  -> speed-up x{fast / plain:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        data_path = a.data_path
        if data_path is None:
            data_path = os.path.join(tmp, "imagenet")
            subprocess.run([sys.executable, str(HERE / "tools" / "make_demo_data.py"), data_path, "--classes", "4",
                            "--train_per_class", "64", "--val_per_class", "1", "--min_size", "330",
                            "--max_size", "500"], check=True, stdout=subprocess.DEVNULL)
        fps = loader_fps(data_path, cfg.MODEL.IMAGE_SIZE[0], a.bs, a.workers, a.loader_batches, device)
    print(f"loader-only images/s ({a.workers} workers, JPEG decode + RandomResizedCrop + flip): {fps:.1f}")
    print(f"loader / fast-path train ratio: {fps / fast:.2f} (> 1: the loader keeps up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

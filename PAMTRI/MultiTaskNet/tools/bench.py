#!/usr/bin/env python3
"""MultiTaskNet throughput in one run: training step images/s of the fast path (AMP + channels_last)
against plain fp32 (same model, same batch), then loader-only images/s with the 36 heatmap channels.

    python MultiTaskNet/tools/bench.py --root DEMO_OR_VERI [--batch 32] [--steps 10] [--workers 4]

The training measurement feeds the model the same uint8 batch every step (no loader), so it shows
the step's own cost; the loader measurement reads, assembles and augments real files
(image_train + heatmap_train, PK batches) and does nothing else. Without --root, demo data is
made with PAMTRI/tools/make_demo_data.py in a temporary folder (that runs PoseEstNet, ~1 minute).
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # repo root: common/
sys.path.insert(0, str(HERE.parent))      # multitasknet/

import torch
from multitasknet.dataset import VeRiDataset, collate, loader_options
from multitasknet.densenet import ARCHS
from multitasknet.losses import MultiTaskLoss
from multitasknet.model import MultiTaskNet
from multitasknet.sampler import RandomIdentityBatchSampler
from multitasknet.transforms import Normalizer
from multitasknet.veri import VeRi

from common.amp import Amp
from common.device import select_device, synchronize


def train_fps(device, args, fast: bool) -> float:
    torch.manual_seed(0)
    channels = 3 + 36
    model = MultiTaskNet(576, 10, 9, in_channels=channels, keyptaware=True, multitask=True, arch=args.arch).to(device)
    memory_format = torch.channels_last if fast else torch.contiguous_format
    model.to(memory_format=memory_format)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4, weight_decay=5e-4,
                           **({"fused": True} if device.type in ("cuda", "cpu") else {"foreach": True}))
    amp = Amp(fast, device, "O2", 128)
    model, opt = amp.initialize(model, opt)
    norm, loss_fn = Normalizer(channels).to(device), MultiTaskLoss(True)
    b = args.batch
    imgs = torch.randint(0, 256, (b, channels, args.size, args.size), dtype=torch.uint8)
    vids = torch.arange(b // 4).repeat_interleave(4).to(device)
    attrs = (vids % 9).to(device)
    keypts = (torch.rand(b, 108) - 0.5).to(device)
    times = []
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        x = norm(imgs.to(device, non_blocking=True)).contiguous(memory_format=memory_format)
        with amp.autocast():
            out = model(x, keypts)
        loss = loss_fn(out, vids, attrs, attrs)
        opt.zero_grad(set_to_none=True)
        amp.backward(loss, opt)
        amp.step(opt)
        loss.item()
        synchronize(device)
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
    return b * len(times) / sum(times)


def loader_fps(root, device, args) -> float:
    veri = VeRi(root, heatmaps=True, splits=("train",), verbose=False)
    sampler = RandomIdentityBatchSampler(veri.train.vids, args.batch, 4, seed=1)
    ds = VeRiDataset(veri.train, heatmaps=True, train=True, width=args.size, height=args.size)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate,
                                         **loader_options(args.workers, device))
    n, t0, epoch = 0, None, 0
    while n < args.loader_images:
        sampler.set_epoch(epoch)
        for i, batch in enumerate(loader):
            if t0 is None and i >= 2:  # worker start-up excluded
                t0 = time.perf_counter()
            elif t0 is not None:
                n += batch[0].shape[0]
            if n >= args.loader_images:
                break
        epoch += 1
    return n / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="", help="VeRi root with heatmap_train/ (default: make demo data)")
    p.add_argument("--arch", default="densenet121", choices=sorted(ARCHS))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--loader_images", type=int, default=2000)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = select_device(args.device)
    print(f"device {device}, {args.arch}, batch {args.batch} x 39 x {args.size} x {args.size}, "
          f"{args.steps} timed steps after {args.warmup}")
    plain = train_fps(device, args, fast=False)
    print(f"train fp32 (NCHW): {plain:.1f} images/s")
    fast = train_fps(device, args, fast=True)
    mode = Amp(True, device).mode
    print(f"train {mode} + channels_last: {fast:.1f} images/s (x{fast / plain:.2f})")
    root = args.root
    if not root:
        tmp = tempfile.mkdtemp(prefix="mtn_bench_")
        r = subprocess.run([sys.executable, str(HERE.parents[1] / "tools" / "make_demo_data.py"), tmp],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("Error: make_demo_data.py failed:\n" + r.stderr[-2000:])
        root = r.stdout.strip().splitlines()[-1]
    fps = loader_fps(root, device, args)
    print(f"loader only (RGB + 36 heatmaps, {args.workers} workers): {fps:.1f} images/s")


if __name__ == "__main__":
    main()

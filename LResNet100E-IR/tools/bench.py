"""One-run benchmark: train FPS of the fast path (AMP + channels_last) vs plain fp32 on the same
model and batch, and loader-only images/second from train.rec (decode + collate, no model).

    python tools/bench.py [--data_path DIR] [--net_mode ir_se --net_depth 50] [--batch_size 16]

Without --data_path a 112x112 demo faces_emore is written to a temporary folder first.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from face_arcface.arcface import Arcface
from face_arcface.architecture import stage_ints
from face_arcface.faces_emore import RecordFaces
from face_arcface.model import build_backbone
from face_arcface.optimizer import build_sgd, param_groups
from face_arcface.verification import normalize_batch

from common.amp import Amp
from common.cli import ArgumentParser, int_range, nonneg_int, positive_int
from common.data import loader_kwargs, skip_none_collate
from common.device import select_device, synchronize
from common.errors import main_guard


def train_fps(args, device, batches, classes, fast: bool) -> float:
    torch.manual_seed(0)
    model = build_backbone(args.net_mode, args.net_depth, input_size=args.input_size,
                           units=args.units, widths=args.widths)
    model = model.to(device)
    if fast:
        model = model.to(memory_format=torch.channels_last)
    head = Arcface(512, classes).to(device)
    opt = build_sgd(param_groups(model, head, args.net_mode), 0.01)
    amp = Amp(fast, device, "O2", "dynamic")
    crit = torch.nn.CrossEntropyLoss()
    times = []
    for i in range(args.warmup + args.steps):
        imgs, labels = batches[i % len(batches)]
        t0 = time.perf_counter()
        x = normalize_batch(imgs, device, channels_last=fast)
        labels = labels.to(device)
        with amp.autocast():
            emb = model(x)
        loss = crit(head(emb.float(), labels), labels)
        opt.zero_grad(set_to_none=True)
        amp.backward(loss, opt)
        amp.step(opt)
        loss.item()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return args.batch_size * args.steps / sum(times[args.warmup:])


def loader_fps(ds, batch, workers, n_batches, device) -> float:
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, collate_fn=skip_none_collate,
                                         **loader_kwargs(workers, device))  # as train.py's loader
    it = iter(loader)
    next(it)  # worker start-up excluded
    n, t0 = 0, time.perf_counter()
    for _ in range(n_batches):
        try:
            imgs, _ = next(it)
        except StopIteration:
            it = iter(loader)
            imgs, _ = next(it)
        n += len(imgs)
    return n / (time.perf_counter() - t0)


@main_guard
def main(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_path", default="")
    p.add_argument("--net_mode", default="ir_se", choices=("ir", "ir_se", "mobilefacenet"))
    p.add_argument("--net_depth", type=int, default=50, choices=(50, 100, 152))
    p.add_argument("--units", type=stage_ints, default=None)
    p.add_argument("--widths", type=stage_ints, default=None)
    p.add_argument("--input_size", type=int_range(16, 1024), default=112)
    p.add_argument("--batch_size", type=int_range(2), default=16)
    p.add_argument("--steps", type=positive_int, default=4, help="timed steps per mode")
    p.add_argument("--warmup", type=nonneg_int, default=2, help="untimed steps per mode")
    p.add_argument("--workers", type=nonneg_int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--loader_batches", type=positive_int, default=100)
    p.add_argument("--device", default="auto")
    a = p.parse_args(argv)
    device = select_device(a.device)
    tmp = None
    if not a.data_path:
        tmp = tempfile.TemporaryDirectory(prefix="lresnet_bench_")
        out = subprocess.run([sys.executable, str(Path(__file__).with_name("make_demo_data.py")), tmp.name,
                              f"--size={a.input_size}", "--no_prepare", "--bins=", "--ids=50", "--per_id=40"],
                             check=True, capture_output=True, text=True)
        a.data_path = out.stdout.strip().splitlines()[-1]
    ds = RecordFaces(a.data_path, a.input_size)
    it = iter(torch.utils.data.DataLoader(ds, batch_size=a.batch_size, shuffle=True, collate_fn=skip_none_collate))
    batches = [next(it) for _ in range(min(4, len(ds) // a.batch_size))]
    name = a.net_mode if a.net_mode == "mobilefacenet" else f"{a.net_mode}-{a.net_depth}"
    units = ",".join(map(str, a.units)) if a.units else "upstream"
    print(f"bench: {name} units={units} batch {a.batch_size} {a.input_size}px on {device} "
          f"({torch.get_num_threads()} threads); {a.warmup} warm-up + {a.steps} timed steps per mode", flush=True)
    fast = train_fps(a, device, batches, ds.num_classes, fast=True)
    amp_mode = Amp(True, device).mode
    print(f"train fast path ({amp_mode} + channels_last): {fast:.2f} img/s", flush=True)
    plain = train_fps(a, device, batches, ds.num_classes, fast=False)
    print(f"train plain fp32: {plain:.2f} img/s  (fast/plain = {fast / plain:.2f}x)", flush=True)
    lf = loader_fps(ds, a.batch_size * 4, a.workers, a.loader_batches, device)
    print(f"loader only (train.rec, {a.workers} workers, decode + collate): {lf:.1f} img/s "
          f"({lf / fast:.1f}x the fast train step)", flush=True)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()

"""Throughput of PoseEstNet in one run: training images/s of the fast path (--amp + channels_last)
vs plain fp32 (same model, same batch), and images/s of the training data loader alone.

    python tools/bench.py --data_dir data/veri [--cfg experiments/...yaml] [--batch_size 32] [--steps 20]

Without --data_dir a small demo set is generated in a temporary folder (PAMTRI/tools/make_demo_data.py).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from poseestnet.config import load_config
from poseestnet.loss import JointsMSELoss
from poseestnet.pose_hrnet import get_pose_net
from poseestnet.veri import VeRiKeypoints

from common import amp
from common.data import loader_kwargs
from common.device import select_device, synchronize

HERE = Path(__file__).resolve().parents[1]


def train_fps(cfg, device, batch, steps, fast):
    torch.manual_seed(0)
    # throughput only: no ImageNet weights needed (is_train=False skips MODEL.PRETRAINED)
    model = get_pose_net(cfg, is_train=False, log=lambda *a: None).to(device)
    x = torch.randn(batch, 3, cfg.MODEL.IMAGE_SIZE[1], cfg.MODEL.IMAGE_SIZE[0], device=device)
    t = torch.rand(batch, 36, cfg.MODEL.HEATMAP_SIZE[1], cfg.MODEL.HEATMAP_SIZE[0], device=device)
    w = torch.ones(batch, 36, 1, device=device)
    if fast:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)
    precision = amp.Amp(fast, device)
    model, opt = precision.initialize(model, opt)
    crit = JointsMSELoss()
    warm = 3
    for i in range(warm + steps):
        if i == warm:
            synchronize(device)
            t0 = time.perf_counter()
        with precision.autocast():
            out = model(x)
        loss = crit(out.float(), t, w)
        opt.zero_grad(set_to_none=True)
        precision.backward(loss, opt)
        precision.step(opt)
    synchronize(device)
    return batch * steps / (time.perf_counter() - t0), precision.mode


def loader_fps(cfg, root, batch, workers, steps, device):
    ds = VeRiKeypoints(cfg, root, cfg.DATASET.TRAIN_SET, True)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, drop_last=False,
                                         **loader_kwargs(workers, device))
    n, t0, it = 0, None, 0
    while it < steps + 2:
        for images, *_ in loader:
            it += 1
            if it == 2:
                t0 = time.perf_counter()
            elif it > 2:
                n += images.size(0)
            if it >= steps + 2:
                break
    return n / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", default=str(HERE / "experiments/veri/hrnet/w32_256x256_adam_lr1e-3.yaml"))
    p.add_argument("--data_dir", default=None, help="PoseEstNet data root (images/, annot/)")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("opts", nargs=argparse.REMAINDER, default=[])
    a = p.parse_args()
    cfg = load_config(a.cfg, a.opts)
    device = select_device(a.device)
    tmp = None
    root = a.data_dir
    if root is None:
        tmp = tempfile.TemporaryDirectory()
        subprocess.run([sys.executable, str(HERE.parent / "tools" / "make_demo_data.py"), tmp.name, "--raw_only"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, str(HERE / "tools" / "create_dataset.py"), "--veri",
                        os.path.join(tmp.name, "veri"), "--annot", os.path.join(tmp.name, "annot"),
                        "--PoseData", os.path.join(tmp.name, "pose")], check=True, stdout=subprocess.DEVNULL)
        root = os.path.join(tmp.name, "pose")
    print(f"device {device}, cfg {os.path.basename(a.cfg)}, input {list(cfg.MODEL.IMAGE_SIZE)}, batch {a.batch_size}, "
          f"torch threads {torch.get_num_threads()}")
    fast, mode = train_fps(cfg, device, a.batch_size, a.steps, True)
    print(f"train FPS, fast path (AMP {mode} + channels_last): {fast:.1f} images/s")
    plain, _ = train_fps(cfg, device, a.batch_size, a.steps, False)
    print(f"train FPS, plain fp32:                   {plain:.1f} images/s")
    print(f"loader only ({a.workers} workers, train augmentation + targets): "
          f"{loader_fps(cfg, root, a.batch_size, a.workers, a.steps, device):.1f} images/s")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()

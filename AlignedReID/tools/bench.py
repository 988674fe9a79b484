"""Benchmarks, printed in one run (quote figures only from a quiet machine).

    python tools/bench.py train --data_path=DIR [--arch resnet50 --batch_size 128 --steps 20]
        train images/sec of the fast path (--amp + channels_last) vs plain fp32 (same model,
        same batch), and loader-only images/sec (cached uint8 gather + flip + normalise; and
        JPEG decode + resize from disk, what the first epoch / --cache_images false costs)
    python tools/bench.py eval [--num_query 3368 --num_gallery 15913 --dim 2048]
        evaluation time and peak memory on a synthetic Market-size distance matrix, without and
        with k-reciprocal re-ranking (global distance, trapezoidal AP)
"""
import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parents[1])]

import numpy as np
import torch
from aligned_reid import losses
from aligned_reid.evaluation import cmc_map, compute_dist, format_scores
from aligned_reid.re_ranking import re_ranking

from common.cli import ArgumentParser, nonneg_int, positive_int


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux


def current_rss_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 30


def bench_train(a):
    from aligned_reid.images import ImageList, decode, load_all, normalize
    from aligned_reid.market1501 import TrainSplit, load_partitions
    from aligned_reid.model import AlignedReID
    from aligned_reid.sampler import PKBatchSampler

    from common import amp
    from common.device import select_device, synchronize

    device = select_device(a.device)
    h, w = a.resize_h_w
    split = TrainSplit(a.data_path, load_partitions(a.data_path))
    n_load = min(len(split), a.load_images)
    t0 = time.time()
    for name in split.names[:n_load]:
        decode(os.path.join(split.img_dir, name), h, w)
    decode_ips = n_load / (time.time() - t0)
    images = ImageList(split.img_dir, split.names, h, w)
    store, kept = load_all(images, a.workers)
    sampler = PKBatchSampler(split.labels, a.batch_size // 4, 4, seed=0, kept=kept.numpy(), split="replicate")
    batches = []
    while len(batches) < a.steps + 3:
        sampler.set_epoch(len(batches) + 1)
        batches += list(sampler)
    normalize(store[:8], None, device, True)  # warm-up
    t0 = time.time()
    for batch in batches[:a.steps]:
        idx = torch.tensor([i for i, _ in batch])
        x = normalize(store[idx], torch.tensor([f for _, f in batch]), device, True)
    synchronize(device)
    loader_ips = a.steps * len(batches[0]) / (time.time() - t0)
    print(f"device {device}; model {a.arch} at {h}x{w}; batch {len(batches[0])} ({len(batches[0]) // 4} ids x 4)")
    print(f"loader only: cached gather+flip+normalise {loader_ips:.1f} images/sec; "
          f"JPEG decode+resize {decode_ips:.1f} images/sec/process ({n_load} images)")
    tri = losses.TripletLoss(0.3)
    for label, use_amp, channels_last in (("fast path (--amp, channels_last)", True, True),
                                          ("plain fp32", False, False)):
        torch.manual_seed(0)
        model = AlignedReID(split.num_classes, a.arch).to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        fused = {"fused": True} if device.type == "cuda" else {"foreach": True}
        opt = torch.optim.Adam(model.parameters(), lr=2e-4, weight_decay=5e-4, **fused)
        precision = amp.Amp(use_amp, device, "O1", 128)
        model, opt = precision.initialize(model, opt)
        model.train()
        times = []
        for k, batch in enumerate(batches[:a.steps + 3]):
            t = time.time()
            idx = torch.tensor([i for i, _ in batch])
            x = normalize(store[idx], torch.tensor([f for _, f in batch]), device, channels_last)
            labels = torch.as_tensor(split.labels[idx.numpy()], device=device)
            with precision.autocast():
                g, _, _ = model(x)
            loss = losses.global_loss(tri, g.float(), labels)[0]
            opt.zero_grad(set_to_none=True)
            precision.backward(loss, opt)
            precision.step(opt)
            synchronize(device)
            if k >= 3:  # first 3 steps excluded (allocator, kernel selection)
                times.append(time.time() - t)
        print(f"train {label}: {len(batches[0]) * len(times) / sum(times):.1f} images/sec "
              f"({precision.mode}, {len(times)} steps after 3 warm-up steps)")


def bench_eval(a):
    rng = np.random.default_rng(0)
    nq, ng, dim = a.num_query, a.num_gallery, a.dim
    ids = rng.integers(1, 751, size=nq + ng)
    ids[nq:nq + ng // 7] = 0  # distractors
    cams = rng.integers(1, 7, size=nq + ng)
    centres = rng.normal(size=(751, dim)).astype(np.float32)
    feat = centres[ids] * 0.3 + rng.normal(size=(nq + ng, dim)).astype(np.float32)
    q, g = feat[:nq], feat[nq:]
    base = current_rss_gb()
    print(f"synthetic features: {nq} query x {ng} gallery, dim {dim}; baseline RSS {base:.2f} GB")
    t0 = time.time()
    q_g = compute_dist(q, g)
    t1 = time.time()
    mAP, cmc = cmc_map(q_g, ids[:nq], ids[nq:], cams[:nq], cams[nq:])
    t2 = time.time()
    print(f"without re-ranking: distance {t1 - t0:.2f}s + CMC/mAP {t2 - t1:.2f}s = {t2 - t0:.2f}s; "
          f"peak RSS {peak_rss_gb():.2f} GB; {format_scores(mAP, cmc)}")
    t0 = time.time()
    q_q = compute_dist(q, q)
    g_g = compute_dist(g, g)
    del feat, q, g
    t1 = time.time()
    rr = re_ranking(q_g, q_q, g_g)
    t2 = time.time()
    mAP, cmc = cmc_map(rr, ids[:nq], ids[nq:], cams[:nq], cams[nq:])
    t3 = time.time()
    inputs_gb = (q_g.nbytes + q_q.nbytes + g_g.nbytes) / 2 ** 30
    print(f"with re-ranking: q-q/g-g distances {t1 - t0:.2f}s + re-ranking {t2 - t1:.2f}s + CMC/mAP "
          f"{t3 - t2:.2f}s = {t3 - t0:.2f}s; peak RSS {peak_rss_gb():.2f} GB "
          f"(of which the three input distance blocks {inputs_gb:.2f} GB); {format_scores(mAP, cmc)}")


def main():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data_path", required=True)
    t.add_argument("--arch", default="resnet50")
    t.add_argument("--resize_h_w", type=positive_int, nargs=2, default=(256, 128))
    t.add_argument("--batch_size", type=positive_int, default=128)
    t.add_argument("--steps", type=positive_int, default=20)
    t.add_argument("--workers", type=nonneg_int, default=4)
    t.add_argument("--load_images", type=positive_int, default=200, help="images timed for decode+resize")
    t.add_argument("--device", default="auto")
    e = sub.add_parser("eval")
    e.add_argument("--num_query", type=positive_int, default=3368)
    e.add_argument("--num_gallery", type=positive_int, default=15913)
    e.add_argument("--dim", type=positive_int, default=2048)
    a = p.parse_args()
    bench_train(a) if a.what == "train" else bench_eval(a)


if __name__ == "__main__":
    main()

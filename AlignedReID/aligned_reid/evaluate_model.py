"""The test pass of a model: features of the query and gallery images, scored by evaluation.py,
and the card's metric made the last metric line of the log."""
import time

import numpy as np
import torch
from torch.utils.data import DataLoader

from common.data import loader_kwargs
from common.errors import UserError

from .evaluation import evaluate, format_scores
from .images import ImageList, collate, normalize
from .market1501 import GALLERY, QUERY


@torch.no_grad()
def extract_features(model, images: ImageList, device, amp, batch_size: int = 32, workers: int = 2,
                     channels_last: bool = False, log=print):
    """Global [N,C] and local [N,H,128] float32 features, in file order (upstream's test batch 32).
    Images skipped as bad come back with kept=False."""
    model.eval()
    loader = DataLoader(images, batch_size=batch_size, shuffle=False, collate_fn=collate,
                        **loader_kwargs(workers, device))
    n = len(images)
    glob = loc = None
    kept = np.zeros(n, dtype=bool)
    t0 = t_last = time.time()
    num_batches = len(loader)
    for b, out in enumerate(loader, 1):
        if out is not None:
            ims, idx, _ = out
            x = normalize(ims, None, device, channels_last)
            with amp.autocast():
                g, lf, _ = model(x)
            g, lf = g.float().cpu().numpy(), lf.float().cpu().numpy()
            if glob is None:
                glob = np.zeros((n, g.shape[1]), np.float32)
                loc = np.zeros((n,) + lf.shape[1:], np.float32)
            glob[idx.numpy()], loc[idx.numpy()] = g, lf
            kept[idx.numpy()] = True
        if b % 20 == 0:
            now = time.time()
            log(f"{b}/{num_batches} batches done, +{now - t_last:.2f}s, total {now - t0:.2f}s")
            t_last = now
    if glob is None:
        raise UserError("no test image could be read")
    total = time.time() - t0
    n = int(kept.sum())
    log(f"extracted features of {n} images in {total:.2f}s: {n / max(total, 1e-9):.2f} images/sec")
    return glob, loc, kept


REPORTED = "Global Distance"


def report(results, log=print, more_models: bool = False):
    """Make the card's metric the LAST metric line of the log.

    The metric the summary and the model card report is rank-1 of the global distance without
    re-ranking (the Ascend 82.16: its port scored nothing else); the Ascend CI reads the last
    `cmc1` line of the log. Upstream prints that line first and the re-ranked (and local) lines
    after it, so when any metric line followed it, it is printed once more under its own header.
    `results`: [(name, mAP, cmc)] of one model (model 1 when `more_models` were tested after it)."""
    name, mAP, cmc = results[0]
    assert name == REPORTED, name
    if len(results) == 1 and not more_models:
        return
    log(f"\n=========> Reported result{' of model 1' if more_models else ''}: {REPORTED} without re-ranking "
        "<=========")
    log(format_scores(mAP, cmc))


def run_test(model, test_split, device, amp, args, log=print):
    """Extract query+gallery features (multi-query is never scored, so it is not extracted) and
    print upstream's evaluation lines. Returns [(name, mAP, cmc)]."""
    log(f"\n=========> Test on dataset: {getattr(args, 'dataset', 'market1501')} <=========\n")
    used = np.flatnonzero((test_split.marks == QUERY) | (test_split.marks == GALLERY))
    h, w = args.resize_h_w
    images = ImageList(test_split.img_dir, [test_split.names[i] for i in used], h, w, args.skip_bad_images)
    glob, loc, kept = extract_features(model, images, device, amp, args.eval_batch_size, args.workers,
                                       args.channels_last, log)
    if not kept.all():
        log(f"[Warning] {int((~kept).sum())} test image(s) skipped as unreadable")
    sel = used[kept]
    use_local = args.llw > 0 and args.local_dist_own_hard_sample
    return evaluate(glob[kept], loc[kept] if use_local else None, test_split.ids[sel], test_split.cams[sel],
                    test_split.marks[sel], args.normalize_feature, use_local, args.re_rank, args.ap)

"""Validation loop shared by train.py and eval.py: flip test, loss, heatmap accuracy,
decoded keypoints gathered over ranks, then the VeRi PCK table."""
import time

import numpy as np
import torch

from common import distributed as D
from common.device import synchronize
from common.errors import UserError
from common.meters import AverageMeter

from .evaluate import format_name_value, heatmap_accuracy, veri_pck
from .inference import forward_flip_test, get_final_preds


class ShardSampler(torch.utils.data.Sampler):
    """Rank r takes items r, r+W, ... (the last ones repeated so every rank has as many)."""

    def __init__(self, n, rank=0, world=1):
        per = -(-n // world)
        self.indices = [(i % n) for i in range(rank, per * world, world)]

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


@torch.no_grad()
def validate(cfg, loader, dataset, model, criterion, dist, amp=None, channels_last=False, log=print):
    """-> (perf_indicator or None, name_value or None). Rank 0 prints. The loader yields
    (batch or None, samples skipped) pairs (poseestnet.cli.collate_counting)."""
    model.eval()
    device = dist.device
    batch_time, losses, acc = AverageMeter(), AverageMeter(), AverageMeter()
    idx_all, preds_all, maxvals_all = [], [], []
    end = time.time()
    skipped = 0
    for i, (batch, n_skipped) in enumerate(loader):
        skipped += n_skipped
        if batch is None:  # every image of the batch skipped (--skip_bad_images)
            continue
        images, target, target_weight, meta = batch
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        ctx = amp.autocast() if amp is not None else torch.autocast("cpu", enabled=False)
        with ctx:
            output = forward_flip_test(model, images, cfg.TEST.FLIP_TEST, cfg.TEST.SHIFT_HEATMAP,
                                       dataset.flip_pairs)
        output = output.float()
        target, target_weight = target.to(device), target_weight.to(device)
        loss = criterion(output, target, target_weight)
        n = images.size(0)
        losses.update(loss.item(), n)
        out_np = output.cpu().numpy()
        _, avg_acc, cnt = heatmap_accuracy(out_np, target.cpu().numpy())
        acc.update(avg_acc, cnt)
        preds, maxvals = get_final_preds(out_np, meta["center"].numpy(), meta["scale"].numpy(),
                                         cfg.TEST.POST_PROCESS)
        idx_all.append(meta["index"].numpy())
        preds_all.append(preds)
        maxvals_all.append(maxvals)
        synchronize(device)
        batch_time.update(time.time() - end)
        end = time.time()
        if dist.is_main and (i % cfg.PRINT_FREQ == 0 or i == len(loader) - 1):
            log(f"Test: [{i}/{len(loader)}]\tTime {batch_time.val:.3f} ({batch_time.avg:.3f})\t"
                f"Loss {losses.val:.4f} ({losses.avg:.4f})\tAccuracy {acc.val:.3f} ({acc.avg:.3f})")
    skipped = int(D.all_reduce_sum(skipped, dist))
    if skipped:
        log(f"--skip_bad_images: {skipped} test image(s) skipped (each named above); their keypoints count as misses")
    if not idx_all:
        raise UserError("no test image could be read (all skipped by --skip_bad_images)")
    idx = torch.from_numpy(np.concatenate(idx_all)).to(device)
    pm = torch.from_numpy(np.concatenate([np.concatenate(preds_all), np.concatenate(maxvals_all)], 2)).to(device)
    idx = D.all_gather_tensor(idx, dist).cpu().numpy()
    pm = D.all_gather_tensor(pm, dist).cpu().numpy()
    if not dist.is_main:
        return None, None
    all_preds = np.zeros((len(dataset), pm.shape[1], 3), dtype=np.float32)
    all_preds[idx] = pm  # duplicates from padding write the same values
    if "test" not in cfg.DATASET.TEST_SET:
        return acc.avg, None
    gts = np.stack([np.concatenate([np.trunc(r["joints"]), r["vis"][:, None]], 1) for r in dataset.db])
    name_value, perf = veri_pck(all_preds, gts)
    for line in format_name_value(name_value, cfg.MODEL.NAME):
        log(line)
    return perf, name_value

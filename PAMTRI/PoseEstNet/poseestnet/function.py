"""The training epoch (train.py) and the validation loop (train.py, eval.py); upstream's
lib/core/function.py `train` and `validate`.

train_one_epoch: Adam/SGD steps over one epoch of (index, epoch) batches, the upstream `Epoch:` lines,
metrics.jsonl step rows, and the end-of-epoch lines (`FPS@all`, `epoch: N step: ...`).
validate: flip test, loss, heatmap accuracy, decoded keypoints gathered over ranks, then the VeRi PCK table."""
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from common import distributed
from common.device import synchronize
from common.errors import UserError
from common.meters import AverageMeter

from .evaluate import format_name_value, heatmap_accuracy, veri_pck
from .inference import forward_flip_test, get_final_preds


@dataclass
class EpochStats:
    step: int  # optimizer steps of the whole run after this epoch
    loss_avg: float
    acc_avg: float  # heatmap accuracy
    stopped_at: int | None  # --max_steps cut the epoch: the batch a resume starts from


def train_step(model, criterion, optimizer, precision, batch, device, channels_last):
    """One optimizer step -> (loss, output, target); a non-finite loss is not stepped (the caller stops)."""
    images, target, target_weight, _ = batch
    images = images.to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    target, target_weight = target.to(device, non_blocking=True), target_weight.to(device, non_blocking=True)
    with precision.autocast():
        output = model(images)
    loss = criterion(output.float(), target, target_weight)
    if torch.isfinite(loss):
        optimizer.zero_grad(set_to_none=True)
        precision.backward(loss, optimizer)
        precision.step(optimizer)
    return loss, output, target


def train_one_epoch(cfg, args, model, criterion, optimizer, precision, loader, dist, epoch, lr, start, step,
                    fps, metrics, console, ckpt_path):
    """Epoch `epoch` from batch `start` (a resume mid-epoch) at learning rate `lr`; `step` = optimizer steps
    so far. The loader's batch sampler is a BatchSampler over an EpochIndexSampler. -> EpochStats."""
    for g in optimizer.param_groups:
        g["lr"] = lr
    batches = loader.batch_sampler
    batches.sampler.set_epoch(epoch, start * batches.batch_size)
    n_batches = math.ceil(batches.sampler.per_rank / batches.batch_size)
    model.train()
    batch_time, data_time, losses, acc = AverageMeter(), AverageMeter(), AverageMeter(), AverageMeter()
    fps.reset_epoch()
    skipped, stopped_at = 0, None
    console.bar(n_batches, f"Ep {epoch + 1}/{cfg.TRAIN.END_EPOCH}", initial=start)
    for i, (batch, n_skipped) in enumerate(loader, start=start):
        data_time.update(fps.data_time())
        skipped += n_skipped  # --skip_bad_images: samples whose image could not be decoded
        if batch is None:
            continue
        loss, output, target = train_step(model, criterion, optimizer, precision, batch, dist.device,
                                          args.channels_last)
        if not torch.isfinite(loss):
            raise UserError(f"non-finite loss {loss.item()} at step {step + 1} (epoch {epoch}, batch {i}); "
                            f"last good checkpoint: {ckpt_path}")
        step += 1
        synchronize(dist.device)
        n = output.size(0)
        losses.update(loss.item(), n)
        _, avg_acc, cnt = heatmap_accuracy(output.detach().float().cpu().numpy(), target.cpu().numpy())
        acc.update(avg_acc, cnt)
        dt = fps.step(n * dist.world_size)
        batch_time.update(dt)
        speed = fps.rate(dt, n * dist.world_size)
        console.update(loss=losses.val, images_per_sec=speed)
        if i % cfg.PRINT_FREQ == 0 or i == n_batches - 1:
            metrics.step(epoch + 1, step, lr=lr, images_per_sec=speed, loss=losses.val, heatmap_acc=acc.val)
            console.log(f"Epoch: [{epoch}][{i}/{n_batches}]\tTime {batch_time.val:.3f}s ({batch_time.avg:.3f}s)\t"
                        f"Speed {speed:.1f} samples/s\tData {data_time.val:.3f}s ({data_time.avg:.3f}s)\t"
                        f"Loss {losses.val:.5f} ({losses.avg:.5f})\tAccuracy {acc.val:.3f} ({acc.avg:.3f})")
        if args.max_steps and step >= args.max_steps:
            stopped_at = i + 1 if i + 1 < n_batches else None
            break
    console.close_bar()
    log_epoch_end(args, dist, epoch, n_batches, losses.val, skipped, fps, console.log)
    return EpochStats(step, losses.avg, acc.avg, stopped_at)


def log_epoch_end(args, dist, epoch, n_batches, last_loss, skipped, fps, log):
    """The epoch's FPS, the MindSpore card's `epoch: N step: ...` line and the count of skipped bad images."""
    if fps.epoch_fps is not None:
        log(f"FPS@all {fps.epoch_fps:.2f} images/s (epoch {epoch}, {dist.world_size} rank(s), {fps.describe()})")
    log(f"epoch: {epoch + 1} step: {n_batches}, loss is {last_loss:.7g}")
    if args.skip_bad_images:
        skipped = int(distributed.all_reduce_sum(skipped, dist))
        if skipped:
            log(f"--skip_bad_images: {skipped} sample(s) of bad images skipped in epoch {epoch} "
                "(each file named above)")


@torch.no_grad()
def validate(cfg, loader, dataset, model, criterion, dist, precision=None, channels_last=False, log=print):
    """-> (perf_indicator or None, name_value or None). Rank 0 prints. The loader yields
    (batch or None, samples skipped) pairs (poseestnet.veri.collate_counting)."""
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
        ctx = precision.autocast() if precision is not None else torch.autocast("cpu", enabled=False)
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
    skipped = int(distributed.all_reduce_sum(skipped, dist))
    if skipped:
        log(f"--skip_bad_images: {skipped} test image(s) skipped (each named above); their keypoints count as misses")
    if not idx_all:
        raise UserError("no test image could be read (all skipped by --skip_bad_images)")
    idx = torch.from_numpy(np.concatenate(idx_all)).to(device)
    pm = torch.from_numpy(np.concatenate([np.concatenate(preds_all), np.concatenate(maxvals_all)], 2)).to(device)
    idx = distributed.all_gather_tensor(idx, dist).cpu().numpy()
    pm = distributed.all_gather_tensor(pm, dist).cpu().numpy()
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

"""One training epoch and one validation pass (lib/core/function.py of upstream and of the
Ascend port), printing the port's lines so that its CI grep/awk still reads them:

  step_time = 0.1234                                  (steps 0 and 1 of each epoch)
  Epoch: [e][i/N]\t\tTime ..s\t\tFPS ..\t\tData ..s\t\tLoss ..\t\tAccuracy@1 ..\t\tAccuracy@5 ..\t\t
  \nData Average :\t\tTime_Avg ..s\t\tFps_Avg ..\t\tLoss ..\t\tAccuracy@1_Avg ..\t\t
  Test: Time ..\tLoss ..\tError@1 ..\tError@5 ..\tAccuracy@1 ..\tAccuracy@5 ..\t
"""
import math
import time
from dataclasses import dataclass, field

import torch

from common.device import synchronize
from common.distributed import all_reduce_sum
from common.errors import UserError

from .evaluate import correct_topk
from .imagenet import normalize

# Fps_Avg averages the step times of the epoch without its first and last 5 steps (worker
# start-up, allocator warm-up, the short last batch), as the port does (batch_time[5:-5]).
FPS_HEAD, FPS_TAIL = 5, 5
MAX_SKIPPED_STEPS = 20  # consecutive AMP-skipped steps with a non-finite loss before giving up


class NonFiniteLoss(UserError):
    pass


def steady(values, head=FPS_HEAD, tail=FPS_TAIL):
    """values[head:-tail]; shorter runs (tests, smoke runs) drop one step at each end, or none."""
    n = len(values)
    if n > head + tail:
        return values[head:n - tail]
    if n > 2:
        return values[1:n - 1]
    return values


@dataclass
class EpochResult:
    steps: int = 0
    stopped: bool = False  # left early (--max_steps / --stop_step)
    batch_time: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    top1: list = field(default_factory=list)
    images: int = 0
    skipped: int = 0  # unreadable images left out under --skip_bad_images
    global_step: int = 0  # optimizer steps of the whole run so far, this epoch's included

    def add_step(self, batch_time, loss, top1, images):
        self.batch_time.append(batch_time)
        self.loss.append(loss)
        self.top1.append(top1)
        self.steps += 1
        self.global_step += 1
        self.images += images

    def averages(self, global_batch):
        """(Time_Avg, Fps_Avg, Loss, Accuracy@1_Avg) or None when no step ran."""
        if not self.batch_time:
            return None
        t = steady(self.batch_time)
        time_avg = sum(t) / len(t)
        skip = FPS_HEAD if len(self.loss) > FPS_HEAD else 0
        loss, top1 = self.loss[skip:], self.top1[skip:]
        return time_avg, global_batch / time_avg, sum(loss) / len(loss), sum(top1) / len(top1)


def train_step(model, images, target, criterion, optimizer, amp, device, channels_last=False):
    """One optimizer step on one batch: (loss, top-1 hits, top-5 hits, whether the optimizer stepped),
    the numbers as Python floats."""
    x = normalize(images, device, channels_last)
    target = target.to(device, non_blocking=True)
    with amp.autocast():
        output = model(x)
    loss = criterion(output.float(), target)  # the loss in fp32, also under autocast
    optimizer.zero_grad(set_to_none=True)
    amp.backward(loss, optimizer)
    stepped = amp.step(optimizer)
    c1, c5 = correct_topk(output.detach(), target)
    loss_val, c1, c5 = torch.stack([loss.detach().float(), c1.float(), c5.float()]).tolist()
    return loss_val, c1, c5, stepped


class FiniteLossGuard:
    """Stops training at a non-finite loss, except for the few steps dynamic loss scaling skips."""

    def __init__(self, amp):
        self.amp = amp
        self.skipped_in_a_row = 0

    def check(self, loss_val, stepped, epoch, step):
        if math.isfinite(loss_val):
            self.skipped_in_a_row = 0
            return
        self.skipped_in_a_row += 1
        if stepped or self.amp.scaler is None or self.skipped_in_a_row > MAX_SKIPPED_STEPS:
            raise NonFiniteLoss(f"non-finite loss ({loss_val}) at epoch {epoch} step {step}; stopped, "
                                "the last checkpoint written is intact")


def images_expected(step, total, start_step, loader):
    """Images the sampler hands out in step `step` of `total` (the last batch may be short)."""
    if step + 1 < total:
        return loader.batch_size
    return len(loader.sampler) - (total - start_step - 1) * loader.batch_size


def train_one_epoch(model, loader, criterion, optimizer, amp, epoch, *, device, global_batch, print_freq,
                    log, start_step=0, global_step=0, steps_left=None, channels_last=False, console=None,
                    metrics=None, checkpointer=None):
    """Train until the loader ends or `steps_left` optimizer steps are done; returns the EpochResult.

    `global_batch` (devices x per-device batch) turns step times into whole-job images/s;
    `global_step` counts the steps before this epoch. After each step: the progress bar
    (`console`), a metrics.jsonl row on the logged steps (`metrics`), and
    `checkpointer.after_step` (the --save_freq checkpoints)."""
    model.train()
    res = EpochResult(global_step=global_step)
    total = start_step + len(loader)
    expected = 0
    guard = FiniteLossGuard(amp)
    end = time.perf_counter()
    for i, batch in enumerate(loader, start=start_step):
        expected += images_expected(i, total, start_step, loader)
        if batch is None:  # every image of the batch was unreadable and skipped
            res.skipped = expected - res.images
            continue
        images, target = batch
        data_time = time.perf_counter() - end
        start = time.perf_counter()
        loss_val, c1, c5, stepped = train_step(model, images, target, criterion, optimizer, amp, device,
                                               channels_last)
        guard.check(loss_val, stepped, epoch, i)
        batch_time = time.perf_counter() - end
        end = time.perf_counter()
        if i - start_step < 2:
            log(f"step_time = {end - start:.4f}", console_only=True)
        n = target.shape[0]
        top1, top5 = c1 * 100.0 / n, c5 * 100.0 / n
        res.add_step(batch_time, loss_val, top1, n)
        res.skipped = expected - res.images
        images_per_sec = global_batch / batch_time
        logged = i % print_freq == 0
        if logged:
            log(f"Epoch: [{epoch}][{i}/{total}]\t\tTime {batch_time:.3f}s\t\tFPS {images_per_sec:.1f}\t\t"
                f"Data {data_time:.3f}s\t\tLoss {loss_val:.5f}\t\tAccuracy@1 {top1:.3f}\t\tAccuracy@5 {top5:.3f}\t\t")
        if console is not None:
            console.update(loss=loss_val, images_per_sec=images_per_sec)
        if metrics is not None and logged:
            metrics.step(epoch, res.global_step, lr=optimizer.param_groups[0]["lr"], images_per_sec=images_per_sec,
                         loss=loss_val)
        if checkpointer is not None:
            checkpointer.after_step(epoch, i + 1, res.global_step)
        if steps_left is not None and res.steps >= steps_left:
            res.stopped = i + 1 < total
            break
    log_epoch_end(res, epoch, global_batch, log)
    return res


def log_epoch_end(res, epoch, global_batch, log):
    """The skipped-images warning and the port's `Data Average` line."""
    if res.skipped:
        log(f"[Warning] epoch {epoch}: {res.skipped} unreadable images skipped on this device (paths on stderr)")
    avg = res.averages(global_batch)
    if avg is not None:
        log(f"\nData Average :\t\tTime_Avg {avg[0]:.3f}s\t\tFps_Avg {avg[1]:.1f}\t\tLoss {avg[2]:.5f}\t\t"
            f"Accuracy@1_Avg {avg[3]:.3f}\t\t")


@torch.no_grad()
def validate(model, loader, criterion, amp, *, device, dist, log, channels_last=False):
    """Top-1/top-5 (%) and mean CE over the whole val set. Ranks validate disjoint shards and
    the sums are added, so the numbers are exact for any number of devices."""
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss*n, top1 hits, top5 hits, n
    batches = 0
    start = time.perf_counter()
    for batch in loader:
        if batch is None:
            continue
        images, target = batch
        x = normalize(images, device, channels_last)
        target = target.to(device, non_blocking=True)
        with amp.autocast():
            output = model(x)
        loss = criterion(output.float(), target)
        c1, c5 = correct_topk(output, target)
        n = target.shape[0]
        sums += torch.stack([loss.double() * n, c1.double(), c5.double(), torch.tensor(n, dtype=torch.float64,
                                                                                     device=device)])
        batches += 1
    synchronize(device)
    elapsed = time.perf_counter() - start
    values = [all_reduce_sum(v, dist) for v in sums.tolist()]
    loss_sum, hit1, hit5, count = values
    if count == 0:
        raise UserError("the val split yielded no images (all unreadable?)")
    skipped = len(loader.dataset) - int(count)
    if skipped:
        log(f"[Warning] validation: {skipped} unreadable images skipped (paths on stderr); top-1/top-5 are over "
            f"the {int(count)} read")
    top1, top5 = hit1 * 100.0 / count, hit5 * 100.0 / count
    loss = loss_sum / count
    log(f"Test: Time {elapsed / max(batches, 1):.3f}\tLoss {loss:.4f}\tError@1 {100 - top1:.3f}\t"
        f"Error@5 {100 - top5:.3f}\tAccuracy@1 {top1:.3f}\tAccuracy@5 {top5:.3f}\t")
    return {"top1": top1, "top5": top5, "loss": loss, "images": int(count)}

"""The attribute evaluation of train.py and eval.py: logits of a split over the ranks, upstream's
mA / instance metrics and their printed block."""
import time

import torch
from torch.utils.data import DataLoader

from common import distributed
from common.data import loader_kwargs, skip_none_collate
from common.sampling import ShardSampler

from .metrics import attribute_metrics, format_block


@torch.no_grad()
def predict(model, dataset, batch_size, workers, device, amp, dist, channels_last=False):
    """Logits and raw labels of every sample, sharded over ranks and gathered in order."""
    n = len(dataset)
    per_rank = (n + dist.world_size - 1) // dist.world_size
    loader = DataLoader(dataset, batch_size=batch_size, sampler=ShardSampler(n, dist.rank, dist.world_size),
                        collate_fn=skip_none_collate, **loader_kwargs(workers, device))
    model.eval()
    outs, labels = [], []
    start = time.time()
    for batch in loader:
        if batch is None:
            continue
        x, y = batch
        x = x.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with amp.autocast():
            outs.append(model(x).float().cpu())
        labels.append(y)
    num_att = dataset.labels.shape[1]
    logits = torch.cat(outs) if outs else torch.zeros(0, num_att)
    gt = torch.cat(labels) if labels else torch.zeros(0, num_att)
    batches = len(loader)
    if dist.enabled:  # pad every shard to the same length, gather, drop padding, restore order
        valid = torch.zeros(per_rank, dtype=torch.bool)
        valid[: len(logits)] = True
        pad = lambda t: torch.cat([t, t.new_zeros(per_rank - len(t), t.shape[1])])  # noqa: E731
        dev = dist.device if dist.device.type != "cpu" else torch.device("cpu")
        g_logits = distributed.all_gather_tensor(pad(logits).to(dev), dist).cpu()
        g_gt = distributed.all_gather_tensor(pad(gt).to(dev), dist).cpu()
        g_valid = distributed.all_gather_tensor(valid.to(dev), dist).cpu()
        order = torch.arange(per_rank * dist.world_size).view(dist.world_size, per_rank).t().reshape(-1)
        logits, gt = g_logits[order][g_valid[order]], g_gt[order][g_valid[order]]
    return logits.numpy(), gt.numpy(), batches, time.time() - start


def evaluate(model, dataset, args, device, amp, dist, split, log):
    """Run upstream's attribute evaluation and print its block through `log` (a
    common.progress.Console's: rank 0 prints). Every rank gets the metrics."""
    log("att test with feat_func_att")
    log("extracting features for attribute recognition")
    logits, gt, batches, seconds = predict(model, dataset, 32 if args.eval_batch_size is None else args.eval_batch_size,
                                           args.workers, device, amp, dist, args.channels_last)
    log(f"{batches} batches done, total {seconds:.2f}s")
    log("computing attribute recognition result")
    result = attribute_metrics(logits, gt)
    log(format_block(result, split))
    return result


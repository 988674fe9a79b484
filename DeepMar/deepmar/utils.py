"""Helpers of train.py / eval.py: transforms, the staircase LR, flag parsing, evaluation."""
import ast
import time

import torch
import torchvision.transforms as T
from torch.utils.data import DataLoader

from common import distributed
from common.data import loader_kwargs, skip_none_collate
from common.errors import UserError

from .metrics import attribute_metrics, format_block

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def parse_int_tuple(text, name):
    """'(50,100)', '50,100', '[50]' or '224' -> tuple of ints (upstream passes Python literals)."""
    if isinstance(text, (tuple, list)):
        return tuple(int(x) for x in text)
    try:
        value = ast.literal_eval(str(text).strip())
    except (ValueError, SyntaxError):
        raise UserError(f"{name}: cannot parse '{text}', expected integers like (50,100)") from None
    if isinstance(value, int):
        return (value,)
    if not isinstance(value, (tuple, list)) or not all(isinstance(x, int) for x in value):
        raise UserError(f"{name}: expected integers like (50,100), got '{text}'")
    return tuple(value)


def parse_resize(text):
    """'(h,w)' or 'n' -> (h, w)."""
    size = parse_int_tuple(text, "--resize")
    return size * 2 if len(size) == 1 else size


def per_rank_batch(global_batch, world_size, flag="--batch_size"):
    """The one place where DeepMar turns its global --batch_size into the per-process batch
    (the Ascend scripts' definition: --batch_size is the whole job's batch)."""
    if global_batch % world_size:
        raise UserError(f"{flag} {global_batch} is not divisible by the {world_size} processes of the job "
                        f"(it is the global batch, split evenly over the ranks)")
    return global_batch // world_size


def build_transform(resize):
    """PIL resize to exactly (h, w) (no crop, aspect not kept), then ImageNet normalisation.

    The training flip is not here: `random_hflip` applies it to the batch in the main
    process, so every random draw of an epoch comes from the (seed, epoch)-seeded generator
    and a resumed run repeats it exactly, whatever the loader workers did before."""
    return T.Compose([T.Resize(tuple(resize), interpolation=T.InterpolationMode.BILINEAR),
                      T.ToTensor(), T.Normalize(MEAN, STD)])


def random_hflip(x, p=0.5, generator=None):
    """Flip each image of an NCHW batch with probability p. Same distribution as upstream's
    RandomHorizontalFlip after Resize: flipping commutes with the per-pixel normalisation."""
    flip = torch.rand(x.shape[0], generator=generator) < p
    if flip.any():
        x = x.clone()
        x[flip] = x[flip].flip(-1)
    return x


def time_str():
    return time.strftime("%Y-%m-%d_%H:%M:%S")


def staircase_lr(epoch, base_lrs, decay_at_epochs, factor):
    """lrs for 1-based `epoch` when it is a decay epoch, else None (lr left unchanged)."""
    if epoch not in decay_at_epochs:
        return None
    i = decay_at_epochs.index(epoch)
    return [base * factor ** (i + 1) for base in base_lrs]


def format_lr(lr):
    return f"{lr:.10f}".rstrip("0")


@torch.no_grad()
def predict(model, dataset, batch_size, workers, device, amp, dist, channels_last=False):
    """Logits and raw labels of every sample, sharded over ranks and gathered in order."""
    n = len(dataset)
    shard = list(range(dist.rank, n, dist.world_size))
    per_rank = (n + dist.world_size - 1) // dist.world_size
    subset = torch.utils.data.Subset(dataset, shard)
    loader = DataLoader(subset, batch_size=batch_size, shuffle=False, collate_fn=skip_none_collate,
                        **loader_kwargs(workers, device))
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


def evaluate(model, dataset, args, device, amp, dist, split="test", log=print):
    """Run upstream's attribute evaluation and print its block (rank 0)."""
    if dist.is_main:
        log("att test with feat_func_att")
        log("extracting features for attribute recognition")
    logits, gt, batches, seconds = predict(model, dataset, 32 if args.eval_batch_size is None else args.eval_batch_size,
                                           args.workers, device, amp, dist, args.channels_last)
    if dist.is_main:
        log(f"{batches} batches done, total {seconds:.2f}s")
        log("computing attribute recognition result")
    result = attribute_metrics(logits, gt)
    if dist.is_main:
        log(format_block(result, split))
    return result


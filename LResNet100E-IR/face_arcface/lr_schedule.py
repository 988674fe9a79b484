"""Upstream's learning-rate schedule: lr0 divided by 10 at the start of each milestone epoch."""

MILESTONES = (12, 15, 18)


def lr_at_epoch(lr0: float, epoch: int, milestones=MILESTONES) -> float:
    """lr0 / 10 per milestone reached; 0-based epochs, applied at the epoch's start."""
    return lr0 * 0.1 ** sum(1 for m in milestones if m <= epoch)


def set_lr(optimizer, lr: float) -> float:
    """Every parameter group's lr (upstream sets them all alike); returns lr."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr

"""Upstream's two learning-rate schedules (set at the start of an epoch) and their log line."""
from common.schedule import format_lr, staircase_lr


def exp_lr(base_lr: float, epoch: int, total_epochs: int, start_decay_at_epoch: int) -> float | None:
    """Upstream adjust_lr_exp at the start of 1-based `epoch`: None (lr left as is) before the
    decay starts, else base_lr * 0.001 ** ((epoch + 1 - start) / (total + 1 - start))."""
    if epoch < start_decay_at_epoch:
        return None
    return base_lr * 0.001 ** (float(epoch + 1 - start_decay_at_epoch) / (total_epochs + 1 - start_decay_at_epoch))


def epoch_lr(args, epoch: int) -> float | None:
    """The lr that --lr_decay_type sets at the start of `epoch`; None: the lr stays as it is."""
    if args.lr_decay_type == "exp":
        return exp_lr(args.base_lr, epoch, args.total_epochs, args.exp_decay_at_epoch)
    return staircase_lr(args.base_lr, epoch, args.staircase_decay_at_epochs, args.staircase_decay_multiply_factor)


def lr_adjusted_line(lr: float) -> str:
    """Upstream's log line when the schedule changes the lr."""
    return f"=====> lr adjusted to {format_lr(lr)}"

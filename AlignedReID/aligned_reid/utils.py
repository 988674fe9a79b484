"""Small helpers: upstream-style flag parsing and the two LR schedules."""

from common.cli import str2bool  # noqa: F401
from common.errors import UserError


def parse_int_tuple(text: str, flag: str) -> tuple[int, ...]:
    """'(256,128)', '256,128' or '256 128' -> (256, 128)."""
    try:
        return tuple(int(t) for t in str(text).replace("(", " ").replace(")", " ").replace(",", " ").split())
    except ValueError:
        raise UserError(f"{flag} expects integers like (256,128), got '{text}'") from None


def exp_lr(base_lr: float, epoch: int, total_epochs: int, start_decay_at_epoch: int) -> float | None:
    """Upstream adjust_lr_exp at the start of 1-based `epoch`: None (lr left as is) before the
    decay starts, else base_lr * 0.001 ** ((epoch + 1 - start) / (total + 1 - start))."""
    if epoch < start_decay_at_epoch:
        return None
    return base_lr * 0.001 ** (float(epoch + 1 - start_decay_at_epoch) / (total_epochs + 1 - start_decay_at_epoch))


def staircase_lr(base_lr: float, epoch: int, decay_at_epochs, factor: float) -> float | None:
    """Upstream adjust_lr_staircase: at the i-th listed epoch lr = base_lr * factor ** (i + 1)."""
    decay_at_epochs = list(decay_at_epochs)
    if epoch not in decay_at_epochs:
        return None
    return base_lr * factor ** (decay_at_epochs.index(epoch) + 1)


def format_lr(lr: float) -> str:
    return f"=====> lr adjusted to {lr:.10f}".rstrip("0")

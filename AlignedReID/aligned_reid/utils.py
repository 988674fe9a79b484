"""Small helpers: upstream-style flag parsing and the two LR schedules."""
import argparse
import math

from common.errors import UserError


def parse_int_tuple(text, flag: str) -> tuple[int, ...]:
    """'(256,128)', '256,128', '256 128', '[256, 128]' or a list/tuple -> (256, 128)."""
    if isinstance(text, (list, tuple)):
        text = " ".join(str(t) for t in text)
    try:
        return tuple(int(t) for t in str(text).translate(str.maketrans("()[],", "     ")).split())
    except ValueError:
        raise UserError(f"{flag} expects integers like (256,128), got '{text}'") from None


def int_tuple(length=None, lo=None):
    """argparse type: an upstream-style integer tuple ('(256,128)') of `length` entries, each >= lo;
    a bad value is one line naming the flag (common.cli.ArgumentParser)."""
    def parse(text):
        try:
            values = parse_int_tuple(text, "")
        except UserError:
            raise argparse.ArgumentTypeError(f"expected integers like (256,128), got {text!r}") from None
        if length is not None and len(values) != length:
            raise argparse.ArgumentTypeError(f"expected {length} integers, got {text!r}")
        if lo is not None and any(v < lo for v in values):
            raise argparse.ArgumentTypeError(f"expected integers >= {lo}, got {text!r}")
        return values
    parse.__name__ = "tuple"
    return parse


def size_from_checkpoint(trained_args: dict, path) -> tuple[int, int]:
    """The input (height, width) a checkpoint was trained with (upstream files: (256,128))."""
    size = parse_int_tuple(trained_args.get("resize_h_w") or "(256,128)", f"resize_h_w of {path}")
    if len(size) != 2 or min(size) < 1:
        raise UserError(f"{path}: resize_h_w {size} is not a (height,width); pass --resize_h_w")
    return size


def loss_scale_type(text):
    """argparse type of --loss_scale: 'dynamic', or a number (<= 0 means dynamic, as common.amp reads it)."""
    if str(text).strip().lower() == "dynamic":
        return "dynamic"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected 'dynamic' or a number (a static loss scale), got {text!r}")
    return str(text).strip()


def retype(parser, dest: str, kind) -> None:
    """Give a flag that a shared helper added (common.device / common.amp) a checked type."""
    for action in parser._actions:
        if action.dest == dest:
            action.type = kind
            return
    raise KeyError(dest)


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

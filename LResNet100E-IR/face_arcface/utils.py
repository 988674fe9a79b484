"""Small CLI and loader helpers."""
import argparse
import functools
import re

from common.data import skip_none_collate
from common.errors import UserError

DEVICE_CHOICES = ("auto", "npu", "gpu", "cuda", "cpu")


def str2bool(v):
    """The port's integer switches (--use_amp 1) and plain booleans."""
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "y", "on"):
        return True
    if s in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected 0/1 or true/false, got '{v}'")


def device_choice(v):
    s = str(v).strip().lower()
    if s not in DEVICE_CHOICES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(DEVICE_CHOICES)}, got '{v}'")
    return s


def collate_faces(batch):
    """Stack (H,W,3) uint8 images into (B,H,W,3); None entries (skipped bad images) are dropped."""
    return skip_none_collate(batch)


_WORKER_TAIL = re.compile(r"^\s*(?:[\w.]+\.)?(?:UserError|RecordIOError|BadImageError):\s*(.*)$")


def one_line_errors(fn):
    """A UserError raised inside a DataLoader worker comes back wrapped with the worker's
    traceback; keep only its own message so the run still ends with one line."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            text = str(exc)
            if "\n" in text:
                for line in reversed(text.strip().splitlines()):
                    m = _WORKER_TAIL.match(line)
                    if m:
                        raise UserError(m.group(1)) from None
                raise UserError(text.strip().splitlines()[-1]) from None
            raise

    return wrapper

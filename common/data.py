"""Image reading with the contract's bad-image rule, and loader defaults."""
import os
import sys

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import default_collate

from .errors import UserError


class BadImageError(UserError):
    pass


def open_image(path, mode: str = "RGB", skip: bool = False):
    """Decode an image fully. A corrupt/unreadable file raises BadImageError naming it,
    or, with skip=True, logs the path on stderr and returns None."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert(mode) if mode and im.mode != mode else im.copy()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        if skip:
            print(f"[Warning] skipped bad image: {path} ({type(exc).__name__})", file=sys.stderr, flush=True)
            return None
        raise BadImageError(f"cannot read image {path}: {exc}".splitlines()[0]
                            + " (use --skip_bad_images to skip such files)") from None


def skip_none_collate(batch):
    """Collate that drops samples a dataset returned as None (skipped bad images)."""
    kept = [b for b in batch if b is not None]
    if not kept:
        return None
    return default_collate(kept)


def loader_kwargs(workers: int, device: torch.device) -> dict:
    """pin_memory for accelerators, persistent workers and prefetch when workers > 0.

    Workers are capped at the CPU count: the cards' 32/64 workers are sized for Ascend
    servers and would only thrash a small machine."""
    workers = max(0, min(int(workers), os.cpu_count() or 1))
    kw = {"num_workers": workers, "pin_memory": device.type in ("cuda", "npu")}
    if workers > 0:
        kw.update(persistent_workers=True, prefetch_factor=4)
    return kw


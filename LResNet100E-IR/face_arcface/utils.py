"""Small CLI and loader helpers."""
import argparse

from common.data import skip_none_collate

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

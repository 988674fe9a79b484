"""Small CLI and loader helpers."""
import argparse

from common.cli import str2bool  # noqa: F401
from common.data import skip_none_collate

DEVICE_CHOICES = ("auto", "npu", "gpu", "cuda", "cpu")


def device_choice(v):
    s = str(v).strip().lower()
    if s not in DEVICE_CHOICES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(DEVICE_CHOICES)}, got '{v}'")
    return s


def collate_faces(batch):
    """Stack (H,W,3) uint8 images into (B,H,W,3); None entries (skipped bad images) are dropped."""
    return skip_none_collate(batch)

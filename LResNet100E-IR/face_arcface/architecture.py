"""The architecture record of train.py, eval.py and export.py: its flags, the dict stored in our
checkpoints (`arch`), and the backbone built from it."""
import argparse

from common.cli import float_range, int_range, positive_int

from .model import build_backbone


def stage_ints(text):
    """argparse type of --units / --widths: '' or 4 positive comma-separated integers."""
    if text is None or str(text).strip() == "":
        return None
    try:
        values = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 4 comma-separated integers, got {text!r}") from None
    if len(values) != 4 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected 4 positive integers (one per stage), got {text!r}")
    return values


def add_arch_args(parser):
    """The architecture flags of train.py, eval.py and export.py (defaults: the upstream net)."""
    a = parser.add_argument
    a("--net_mode", "-net", default="ir_se", choices=("ir", "ir_se", "mobilefacenet"))
    a("--net_depth", "-depth", type=int, default=100, choices=(50, 100, 152))
    a("--drop_ratio", type=float_range(0, 1), default=0.6)
    a("--embedding_size", type=positive_int, default=512)
    a("--input_size", type=int_range(16, 1024), default=112, help="face side in pixels (faces_emore: 112)")
    a("--units", type=stage_ints, default=None, help="extra: units per stage, e.g. 1,1,1,1 (tiny test models)")
    a("--widths", type=stage_ints, default=None, help="extra: stage widths, e.g. 16,32,64,128 (tiny test models)")


def arch_from_args(args) -> dict:
    units, widths = getattr(args, "units", None), getattr(args, "widths", None)
    if isinstance(units, str):
        units = stage_ints(units)
    if isinstance(widths, str):
        widths = stage_ints(widths)
    return {"net_mode": args.net_mode, "net_depth": int(args.net_depth), "drop_ratio": float(args.drop_ratio),
            "embedding_size": int(args.embedding_size), "input_size": int(args.input_size),
            "units": list(units) if units else None, "widths": list(widths) if widths else None}


def same_arch(a: dict, b: dict) -> bool:
    """Architectures equal, whether units/widths were stored as tuples (earlier files) or lists."""
    norm = lambda d: {k: (list(v) if isinstance(v, tuple) else v) for k, v in (d or {}).items()}  # noqa: E731
    return norm(a) == norm(b)


def build_from_arch(arch: dict):
    return build_backbone(**arch)

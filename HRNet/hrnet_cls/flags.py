"""Checked types for the flags that train.py and eval.py share."""
import math
from argparse import ArgumentTypeError


def loss_scale_type(text):
    """--loss_scale: 'dynamic', -1 (dynamic) or a static scale > 0."""
    v = str(text).strip()
    if v.lower() == "dynamic":
        return "dynamic"
    try:
        x = float(v)
    except ValueError:
        x = math.nan
    if not (x == -1 or 0 < x < math.inf):
        raise ArgumentTypeError(f"expected 'dynamic', -1 or a number > 0, got {text!r}")
    return v


def retype(parser, dest, type_fn):
    """Give a flag that a shared helper added (--device_id, --loss_scale) a checked type."""
    for action in parser._actions:
        if action.dest == dest:
            action.type = type_fn

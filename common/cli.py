"""Flag parsing shared by the train.py files: the cards pass booleans as True/False or 1/0."""
import argparse


def str2bool(value) -> bool:
    """`--flag True|False`, `--use_amp 1|0`, yes/no, on/off (case-insensitive)."""
    if isinstance(value, bool):
        return value
    v = str(value).strip().lower()
    if v in ("1", "true", "yes", "y", "on"):
        return True
    if v in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True/False or 1/0, got {value!r}")

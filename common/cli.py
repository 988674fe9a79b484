"""Flag parsing shared by every train.py/eval.py/export.py.

- `ArgumentParser`: a bad flag is one line (`Error: argument --batch_size: ...`) and exit 1,
  like every other user error of the zoo, instead of argparse's usage block and exit 2.
- `int_range` / `float_range`: numeric flags checked when they are parsed, so a bad value
  stops the run before anything is read or written, naming the flag and the allowed range.
- `str2bool` / `add_bool`: the cards pass booleans as True/False or 1/0, or bare.
"""
import argparse
import math
import sys

from .errors import UserError


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        print(f"Error: {message.splitlines()[0]}", file=sys.stderr, flush=True)
        sys.exit(1)


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


def add_bool(parser, *names, default=False, help=None, **kwargs):
    """A boolean flag that takes `--flag`, `--flag True|False|1|0` (the cards use all three)."""
    return parser.add_argument(*names, type=str2bool, nargs="?", const=True, default=default, help=help,
                               metavar="BOOL", **kwargs)


def _range_text(lo, hi, kind):
    if lo is not None and hi is not None:
        return f"{kind} in [{lo}, {hi}]"
    if lo is not None:
        return f"{kind} >= {lo}"
    if hi is not None:
        return f"{kind} <= {hi}"
    return kind


def int_range(lo=None, hi=None):
    """argparse type: an integer within [lo, hi] (either bound optional)."""
    def parse(text):
        try:
            value = int(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {_range_text(lo, hi, 'an integer')}, got {text!r}") from None
        if lo is not None and value < lo or hi is not None and value > hi:
            raise argparse.ArgumentTypeError(f"expected {_range_text(lo, hi, 'an integer')}, got {value}")
        return value
    parse.__name__ = "int"
    return parse


def float_range(lo=None, hi=None, lo_open=False):
    """argparse type: a finite number within [lo, hi]; `lo_open` makes the lower bound strict (> lo)."""
    def parse(text):
        bounds = (f"a number > {lo}" if lo_open and hi is None else
                  f"a number in ({lo}, {hi}]" if lo_open else _range_text(lo, hi, "a number"))
        try:
            value = float(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {bounds}, got {text!r}") from None
        if (not math.isfinite(value) or lo is not None and (value <= lo if lo_open else value < lo)
                or hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected {bounds}, got {text}")
        return value
    parse.__name__ = "float"
    return parse


positive_int = int_range(1)
nonneg_int = int_range(0)
positive_float = float_range(0, lo_open=True)
nonneg_float = float_range(0)


def parse_int_tuple(text, flag: str) -> tuple[int, ...]:
    """The cards' integer tuples: '(256,128)', '256,128', '256 128', '[50]', '224' or a list/tuple."""
    if isinstance(text, (list, tuple)):
        text = " ".join(str(t) for t in text)
    try:
        values = tuple(int(t) for t in str(text).translate(str.maketrans("()[],", "     ")).split())
    except ValueError:
        values = ()
    if not values:
        raise UserError(f"{flag}: expected integers like (256,128), got '{text}'")
    return values


def int_tuple(length=None, lo=None, sizes=None, hi=None):
    """argparse type: a card-style integer tuple ('(256,128)') of `length` entries (or one of
    `sizes`), each within [lo, hi] (either bound optional); a bad value is one line naming the flag
    (ArgumentParser)."""
    allowed = (length,) if length is not None else tuple(sizes) if sizes else None

    def parse(text):
        try:
            values = parse_int_tuple(text, "")
        except UserError:
            raise argparse.ArgumentTypeError(f"expected integers like (256,128), got {text!r}") from None
        if allowed is not None and len(values) not in allowed:
            count = " or ".join(str(n) for n in allowed)
            raise argparse.ArgumentTypeError(f"expected {count} integers, got {text!r}")
        bad = [v for v in values if lo is not None and v < lo or hi is not None and v > hi]
        if bad:
            raise argparse.ArgumentTypeError(f"expected {_range_text(lo, hi, 'integers')}, got {bad[0]} in {text!r}")
        return values
    parse.__name__ = "tuple"
    return parse

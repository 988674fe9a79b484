"""Flag types of DeepMar's CLIs: every value is checked when parsed (one line naming the flag
and the allowed values, exit 1), before anything is read or written."""
import argparse

from common.cli import ArgumentParser, int_tuple
from common.errors import UserError


def int_tuple_type(lo=1, hi=None, sizes=None):
    """argparse type for '(50,100)'-style flags: common.cli.int_tuple, kept as the text given, so
    checkpoints store what the user typed."""
    check = int_tuple(lo=lo, hi=hi, sizes=sizes)

    def parse(text):
        check(text)
        return str(text).strip()
    parse.__name__ = "int tuple"
    return parse


def per_rank_batch(global_batch, world_size, flag="--batch_size"):
    """The one place where DeepMar turns its global --batch_size into the per-process batch
    (the Ascend scripts' definition: --batch_size is the whole job's batch)."""
    if global_batch % world_size:
        raise UserError(f"{flag} {global_batch} is not divisible by the {world_size} processes of the job "
                        f"(it is the global batch, split evenly over the ranks)")
    return global_batch // world_size


def device_list_type(text):
    try:
        ids = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        ids = None
    if not ids or any(i < 0 for i in ids):
        raise argparse.ArgumentTypeError(f"expected device indices >= 0 like 0,1,2,3, got {text!r}")
    return str(text)


class Parser(ArgumentParser):
    """common.cli.ArgumentParser (one line, exit 1), and a stray word says what to do: the model
    card's performance line has its comment without a '#' (`... --data_path=./dataset/peta/  单卡性能`)."""

    def parse_args(self, args=None, namespace=None):
        parsed, unknown = self.parse_known_args(args, namespace)
        words = [u for u in unknown if not u.startswith("-")]
        if words:
            self.error(f"unexpected word {words[0]!r}: flags are --key=value (text after a command is a comment "
                       "only behind a '#')")
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(unknown)}")
        return parsed

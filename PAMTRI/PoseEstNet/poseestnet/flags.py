"""Command-line flags shared by train.py, eval.py, trans.py and export.py: the parser every entry
script starts from (--cfg, --device_target, the trailing yacs KEY VALUE overrides, and the device and
mixed-precision flags) and a parse_args that keeps a bare switch from swallowing an override."""
import argparse
import sys

from common import amp, cli
from common.device import add_device_args

# the MindSpore card's --device_target spellings -> torch device types
DEVICE_TARGETS = {"ascend": "npu", "gpu": "cuda", "cpu": "cpu", "npu": "npu", "cuda": "cuda"}
BOOL_WORDS = {"true", "false", "1", "0", "yes", "no", "y", "n", "on", "off"}


def new_parser(doc, devices=True):
    """common.cli.ArgumentParser (a bad flag is one line, `Error: argument --x: ...`, and exit 1) with --cfg,
    --device_target and the KEY VALUE overrides; `devices` adds --device/--device_id and the AMP flags."""
    parser = cli.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", default=None,
                        help="experiment yaml (default experiments/veri/hrnet/w32_256x256_adam_lr1e-3.yaml)")
    parser.add_argument("--device_target", default=None, type=str.lower, choices=sorted(DEVICE_TARGETS),
                        help="MindSpore-card spelling of the device (Ascend -> npu, GPU -> cuda, CPU); "
                             "--device wins when both are given")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="config overrides as KEY VALUE pairs, e.g. TEST.MODEL_FILE model_best.pth")
    if devices:
        add_device_args(parser)  # --device_id and --loss_scale come typed and range-checked
        amp.add_amp_args(parser)
    return parser


def add_bool(parser, *names, default=False, help=None):
    """common.cli.add_bool, and the names remembered for parse_args below (a bare switch before yacs overrides)."""
    cli.add_bool(parser, *names, default=default, help=help)
    parser._zoo_bool_flags = getattr(parser, "_zoo_bool_flags", set()) | set(names)


def parse_args(parser, argv=None):
    """parse_args, except that a bare boolean switch followed by a config override
    (`--cache_images TRAIN.LR 0.1`) does not swallow the override as its value."""
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = getattr(parser, "_zoo_bool_flags", set())
    fixed = []
    for k, tok in enumerate(argv):
        nxt = argv[k + 1] if k + 1 < len(argv) else None
        if tok in flags and nxt is not None and not nxt.startswith("-") and nxt.lower() not in BOOL_WORDS:
            tok = tok + "=True"
        fixed.append(tok)
    return parser.parse_args(fixed)


def requested_device(args):
    """--device wins, then the card's --device_target, else auto."""
    if getattr(args, "device", "auto") not in (None, "auto"):
        return args.device
    if getattr(args, "device_target", None):
        return DEVICE_TARGETS[args.device_target]
    return "auto"

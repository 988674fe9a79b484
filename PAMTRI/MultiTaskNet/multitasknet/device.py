"""Which device a process runs on (--device, the card's --device_target, upstream's --use-cpu /
--gpu-devices) and the process launch around train.py's and eval.py's work."""
import contextlib
import sys

from common import distributed
from common.cli import nonneg_int
from common.device import add_device_args
from common.errors import UserError

DEVICE_TARGETS = {"ascend": "npu", "gpu": "cuda", "cpu": "cpu"}


def add_device_flags(parser):
    add_device_args(parser)
    parser.add_argument("--device_target", default=None, type=str.lower, choices=sorted(DEVICE_TARGETS),
                        help="model card form of --device: Ascend | GPU | CPU")
    parser.add_argument("--use-cpu", action="store_true", help="upstream form of --device cpu")
    parser.add_argument("--gpu-devices", "--npu-devices", dest="devices", default=None,
                        help="upstream: device list; the first one is used as --device_id (8p: use torchrun)")
    parser.add_argument("--local_rank", "--local-rank", type=nonneg_int, default=None,
                        help="ignored: torchrun sets LOCAL_RANK")


def init_dist(args):
    """common.distributed.init for --device/--device_target/--use-cpu; a target this machine lacks is one
    line that says what to run instead."""
    kind, device_id = device_request(args)
    try:
        return distributed.init(kind, device_id)
    except UserError as exc:
        if getattr(args, "device_target", None):
            raise UserError(f"--device_target {args.device_target}: {exc}; on this machine use --device_target CPU "
                            "(the card's scripts: DEVICE_TARGET=CPU bash scripts/...)") from None
        raise


def device_request(args) -> tuple[str, int]:
    """(device kind for common.device, device id) from --device_target / --use-cpu / --device."""
    kind = args.device
    if getattr(args, "device_target", None):
        kind = DEVICE_TARGETS[args.device_target.lower()]
    if getattr(args, "use_cpu", False):
        kind = "cpu"
    device_id = args.device_id
    if getattr(args, "devices", None):
        device_id = int(str(args.devices).split(",")[0])
    return kind, device_id


@contextlib.contextmanager
def launched(args):
    """The process of a (torchrun) launch: yields common.distributed's Dist for the device flags; on the way out,
    error or not, stdout is restored (train.py tees it into log_train.txt) and the process group is closed."""
    dist = init_dist(args)
    stdout = sys.stdout
    try:
        yield dist
    finally:
        if sys.stdout is not stdout:
            sys.stdout.flush()
            sys.stdout = stdout
        distributed.cleanup(dist)

"""Device selection: npu > cuda > cpu, overridable by flag and by ASCEND_DEVICE_ID."""
import os

import torch

CHOICES = ("auto", "npu", "cuda", "gpu", "cpu")


def npu_available() -> bool:
    """True when torch_npu imports and reports a usable NPU."""
    try:
        import torch_npu  # noqa: F401  (registers torch.npu)
    except Exception:
        return False
    npu = getattr(torch, "npu", None)
    return bool(npu is not None and npu.is_available())


def cuda_available() -> bool:
    return torch.cuda.is_available()


def resolve_device_type(requested: str | None = None) -> str:
    """Return 'npu', 'cuda' or 'cpu'.

    `requested` is one of CHOICES (None means auto). An explicit accelerator that is not
    available raises a UserError rather than silently running on the CPU.
    """
    from .errors import UserError

    req = (requested or "auto").lower()
    if req == "gpu":
        req = "cuda"
    if req not in ("auto", "npu", "cuda", "cpu"):
        raise UserError(f"unknown device '{requested}', expected one of {', '.join(CHOICES)}")
    if req == "cpu":
        return "cpu"
    if req == "npu":
        if not npu_available():
            raise UserError("--device npu requested but torch_npu is not installed or no NPU is visible")
        return "npu"
    if req == "cuda":
        if not cuda_available():
            raise UserError("--device cuda requested but no CUDA device is visible")
        return "cuda"
    if npu_available():
        return "npu"
    if cuda_available():
        return "cuda"
    return "cpu"


def resolve_device_index(device_id: int | None = None) -> int:
    """Local device index: LOCAL_RANK under a distributed launch, else ASCEND_DEVICE_ID,
    else the flag, else 0."""
    if "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return int(os.environ["LOCAL_RANK"])
    env = os.environ.get("ASCEND_DEVICE_ID")
    if env not in (None, ""):
        return int(env)
    return int(device_id) if device_id is not None else 0


def select_device(requested: str | None = None, device_id: int | None = None,
                  exact_index: bool = False) -> torch.device:
    """Pick and activate the training device. With `exact_index` the index is `device_id`
    as given (e.g. an 8p `--device_list` entry for this local rank)."""
    kind = resolve_device_type(requested)
    if kind == "cpu":
        return torch.device("cpu")
    index = int(device_id) if exact_index and device_id is not None else resolve_device_index(device_id)
    if kind == "npu":
        torch.npu.set_device(index)
    else:
        torch.cuda.set_device(index)
    return _make_device(kind, index)


def _make_device(kind: str, index: int) -> torch.device:
    # 'npu' is a valid device string only once torch_npu has been imported
    return torch.device(kind, index)


def dist_backend(device: torch.device) -> str:
    return {"npu": "hccl", "cuda": "nccl"}.get(device.type, "gloo")


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so that wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "npu":
        torch.npu.synchronize(device)


def add_device_args(parser, default_device_id: int = 0):
    """The device flags every train.py shares."""
    parser.add_argument("--device", default="auto", choices=CHOICES,
                        help="training device; auto picks npu > cuda > cpu")
    from .cli import nonneg_int

    parser.add_argument("--device_id", type=nonneg_int, default=default_device_id,
                        help="local device index (ASCEND_DEVICE_ID and LOCAL_RANK take precedence)")
    return parser

"""Distributed runs: one launch path (torchrun) for 1p, 8p and multi-node.

train.py calls `init(device_args)` once; under torchrun it reads RANK / WORLD_SIZE /
LOCAL_RANK from the environment, picks the backend from the device (hccl / nccl /
gloo) and returns a `Dist` describing this process. Without torchrun it is a 1-process
no-op, so the same code runs 1p.
"""
import datetime
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as td

from . import device as device_mod


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) as torchrun sets them; (0, 1, 0) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def restart_count() -> int:
    """How often torchrun has restarted this job's workers (`--max-restarts`)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def die_with_parent() -> bool:
    """Ask Linux to kill this worker when its launcher dies (prctl PR_SET_PDEATHSIG), so a
    `kill -9` of torchrun never leaves workers training as orphans. False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) != 0:  # 1 = PR_SET_PDEATHSIG
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() == 1:  # the launcher died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)
    return True


def whole_line_output() -> None:
    """All ranks share one log; under PYTHONUNBUFFERED print() writes the text and its
    newline separately, so ranks could split each other's lines (and the FPS line CI
    greps). Line buffering makes every line a single write(), which the OS keeps whole."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True, write_through=False)


def init(requested_device: str | None = None, device_id: int | None = None,
         device_list: list[int] | None = None, timeout_minutes: int = 30) -> Dist:
    """`device_list` maps local ranks to device indices (the cards' `--device_list`)."""
    rank, world, local = env_world()
    if "TORCHELASTIC_RUN_ID" in os.environ or world > 1:
        die_with_parent()
    if world > 1:
        whole_line_output()
    if world > 1 and device_list:
        if local >= len(device_list):
            from .errors import UserError
            raise UserError(f"--device_list {device_list} has no entry for local rank {local}")
        device = device_mod.select_device(requested_device, device_list[local], exact_index=True)
    else:
        device = device_mod.select_device(requested_device, local if world > 1 else device_id)
    if world > 1 and not td.is_initialized():
        backend = device_mod.dist_backend(device)
        kwargs = {"backend": backend, "timeout": datetime.timedelta(minutes=timeout_minutes)}
        if device.type == "cuda":
            kwargs["device_id"] = device
        td.init_process_group(**kwargs)
    return Dist(rank=rank, world_size=world, local_rank=local, device=device)


def barrier(dist: Dist) -> None:
    if dist.enabled:
        td.barrier()


def all_reduce_sum(value: float, dist: Dist) -> float:
    """Sum a Python number over all ranks (identity in 1p)."""
    if not dist.enabled:
        return float(value)
    comm_device = dist.device if dist.device.type != "cpu" else torch.device("cpu")
    t = torch.tensor([float(value)], dtype=torch.float64, device=comm_device)
    td.all_reduce(t)
    return float(t.item())


def all_reduce_mean(value: float, dist: Dist) -> float:
    return all_reduce_sum(value, dist) / dist.world_size


def all_gather_tensor(t: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Concatenate equally-shaped tensors of all ranks along dim 0 (identity in 1p)."""
    if not dist.enabled:
        return t
    parts = [torch.empty_like(t) for _ in range(dist.world_size)]
    td.all_gather(parts, t.contiguous())
    return torch.cat(parts, 0)


def sync_buffers_from_main(model, dist: Dist) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics), the ones its
    checkpoint holds: call before evaluating, so the metric a run reports is the metric of
    the model it saves, in 1p and 8p alike (ranks keep their own statistics when DDP runs
    with broadcast_buffers=False)."""
    if not dist.enabled:
        return
    for buf in unwrap(model).buffers():
        td.broadcast(buf.data, src=0)


def cleanup(dist: Dist) -> None:
    if dist.enabled and td.is_initialized():
        td.destroy_process_group()


def wrap_ddp(model, dist: Dist, **kwargs):
    if not dist.enabled:
        return model
    ids = [dist.device.index] if dist.device.type in ("cuda", "npu") else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, **kwargs)


def unwrap(model):
    return model.module if hasattr(model, "module") else model

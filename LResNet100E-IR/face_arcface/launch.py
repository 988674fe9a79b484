"""The launch check of --distributed 1 (train.py, eval.py)."""
import os

from common.errors import UserError


def check_launch(args, script: str, program: str):
    """--distributed 1 means one process per device. Started by plain python it would run one
    process silently, so say how to launch it (RANK_SIZE=1, as an 8p script sets it for a single
    device, runs one process on purpose)."""
    if getattr(args, "distributed", 0) and "WORLD_SIZE" not in os.environ and os.environ.get("RANK_SIZE", "") != "1":
        raise UserError(f"--distributed 1 needs one process per device, started by a launcher: run "
                        f"`bash test/{script} --data_path=...` (RANK_SIZE=N for N devices) or "
                        f"`torchrun --nproc_per_node=N {program} ... --distributed 1`")

"""The per-run metrics file: one JSON object per line, the same schema in every model.

    {"kind": "step" | "epoch", "epoch": 3, "step": 1200, "wall_time": 812.4,
     "lr": 0.01, "images_per_sec": 512.3, "losses": {"loss": 0.41}, "metrics": {"mA": 0.77}}

`step` rows are written where the model logs steps, `epoch` rows at the end of every epoch
(with the evaluation metrics when the epoch evaluated). `step` is the global optimizer step,
`wall_time` seconds of training since the run first started (resumes included).

A resumed run continues the same file: rows after the checkpoint it resumed from (written by
the attempt that crashed) are dropped, so every step and epoch appears exactly once. Only
the main rank writes. With `tensorboard_dir`, the same scalars go to TensorBoard events.
"""
import json
import math
import os
import time

from .errors import UserError

FILE_NAME = "metrics.jsonl"


def _number(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def read_rows(path) -> list[dict]:
    """The rows of a metrics file; a line cut short by a crash is ignored."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and row.get("kind") in ("step", "epoch"):
                    rows.append(row)
    except FileNotFoundError:
        pass
    return rows


def add_tensorboard_arg(parser):
    parser.add_argument("--tensorboard", default=None, metavar="DIR",
                        help="also write the metrics as TensorBoard events to DIR (needs the optional "
                             "tensorboard package)")
    return parser


def require_tensorboard(directory) -> None:
    """Check right after parsing that `--tensorboard DIR` can be honoured (one line if not)."""
    if directory:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            tensorboard_writer(directory)


def tensorboard_writer(directory):
    """A SummaryWriter, or one clear line when the optional tensorboard package is missing."""
    if not directory:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError("--tensorboard needs the tensorboard package, which is not installed "
                        "(pip install tensorboard), or leave the flag out") from None
    return SummaryWriter(log_dir=os.fspath(directory))


class MetricsFile:
    """`resume_step`/`resume_epoch`: the global step and the last completed epoch of the
    checkpoint a resumed run starts from; None for a fresh run (an old file is replaced)."""

    def __init__(self, path, enabled: bool = True, resume_step: int | None = None,
                 resume_epoch: int | None = None, tensorboard_dir=None):
        self.path = os.fspath(path)
        self.enabled = enabled
        self._tb = tensorboard_writer(tensorboard_dir) if enabled else None
        if not enabled:
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        kept = []
        if resume_step is not None:
            for row in read_rows(self.path):
                if row["kind"] == "step" and row["step"] <= resume_step or \
                        row["kind"] == "epoch" and resume_epoch is not None and row["epoch"] <= resume_epoch:
                    kept.append(row)
        self._offset = max((r.get("wall_time") or 0.0 for r in kept), default=0.0)
        self._start = time.perf_counter()
        tmp = f"{self.path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)
        os.replace(tmp, self.path)
        self._f = open(self.path, "a", encoding="utf-8")

    def _write(self, kind, epoch, step, lr, images_per_sec, losses, metrics):
        if not self.enabled:
            return
        row = {"kind": kind, "epoch": int(epoch), "step": int(step),
               "wall_time": round(self._offset + time.perf_counter() - self._start, 3),
               "lr": _number(lr), "images_per_sec": _number(images_per_sec),
               "losses": {k: _number(v) for k, v in (losses or {}).items()},
               "metrics": {k: _number(v) for k, v in (metrics or {}).items()}}
        self._f.write(json.dumps(row) + "\n")
        self._f.flush()
        if self._tb is not None:
            prefix = "train" if kind == "step" else "epoch"
            for name, value in row["losses"].items():
                if value is not None:
                    self._tb.add_scalar(f"{prefix}/{name}", value, step)
            for name in ("lr", "images_per_sec"):
                if row[name] is not None:
                    self._tb.add_scalar(f"{prefix}/{name}", row[name], step)
            for name, value in row["metrics"].items():
                if value is not None:
                    self._tb.add_scalar(f"eval/{name}", value, step)

    def step(self, epoch, step, lr=None, images_per_sec=None, **losses):
        """A logged training step: its losses, learning rate and images/s."""
        self._write("step", epoch, step, lr, images_per_sec, losses, None)

    def epoch(self, epoch, step, lr=None, images_per_sec=None, losses=None, metrics=None):
        """The end of an epoch: mean losses, images/s and the evaluation metrics (if it evaluated)."""
        self._write("epoch", epoch, step, lr, images_per_sec, losses, metrics)

    def close(self):
        if self.enabled:
            self._f.close()
            if self._tb is not None:
                self._tb.close()

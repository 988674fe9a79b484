"""Mixed precision behind the model cards' flags `--amp --opt_level --loss_scale`.

NVIDIA/Ascend apex is used when it is importable (and is the real apex, with
`amp.initialize`); otherwise torch.autocast: bf16 on CPU (no loss scaling needed),
fp16 with a GradScaler on cuda/npu. Callers keep numerically sensitive parts
(margins, losses) in fp32 by computing them outside `autocast()` or on `.float()` inputs.
"""
import argparse
import contextlib

import torch

OPT_LEVELS = ("O0", "O1", "O2", "O3")


def parse_loss_scale(value):
    """'dynamic', -1 or None mean dynamic scaling; a positive number is a static scale."""
    if value is None:
        return None
    if isinstance(value, str):
        if value.lower() == "dynamic":
            return None
        value = float(value)
    value = float(value)
    return None if value <= 0 else value


def loss_scale_arg(text):
    """argparse type of --loss_scale: 'dynamic', -1 (dynamic, as the Ascend 8p scripts pass it)
    or a static scale > 0."""
    import math

    if str(text).strip().lower() == "dynamic":
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or not (value > 0 or value == -1):
        raise argparse.ArgumentTypeError(f"expected 'dynamic', -1 or a number > 0, got {text!r}")
    return text


def add_amp_args(parser, default_opt_level="O2", default_loss_scale="dynamic"):
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=False,
                        help="mixed precision (--no-amp turns off an --amp given earlier, e.g. by a script)")
    parser.add_argument("--opt_level", "--opt-level", dest="opt_level", default=default_opt_level,
                        choices=OPT_LEVELS, help="apex opt level; with torch.autocast O1-O3 all mean autocast")
    parser.add_argument("--loss_scale", "--loss-scale", dest="loss_scale", default=default_loss_scale,
                        type=loss_scale_arg,
                        help="static loss scale (a number) or 'dynamic' / -1")
    return parser


def _real_apex_amp():
    try:
        from apex import amp
    except Exception:
        return None
    return amp if hasattr(amp, "initialize") and hasattr(amp, "scale_loss") else None


def _grad_scaler(device_type: str, **kwargs):
    """torch_npu documents torch.npu.amp.GradScaler; CUDA uses the generic torch.amp one."""
    if device_type == "npu":
        npu_amp = getattr(getattr(torch, "npu", None), "amp", None)
        if npu_amp is not None and hasattr(npu_amp, "GradScaler"):
            return npu_amp.GradScaler(**kwargs)
    return torch.amp.GradScaler(device_type, **kwargs)


class Amp:
    """One object per run: wraps model/optimizer once, then autocast + backward/step."""

    def __init__(self, enabled: bool, device: torch.device, opt_level: str = "O2",
                 loss_scale=None, use_apex: bool | None = None):
        self.device = device
        self.opt_level = opt_level
        self.enabled = bool(enabled) and opt_level != "O0"
        self.static_scale = parse_loss_scale(loss_scale)
        apex_amp = _real_apex_amp() if (use_apex is None or use_apex) and device.type != "cpu" else None
        self.apex = apex_amp if self.enabled else None
        if self.enabled and self.apex is None:
            self.dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
        else:
            self.dtype = torch.float32
        self.scaler = None
        self.scaler_kwargs = {}
        if self.enabled and self.apex is None and self.dtype == torch.float16:
            self.scaler_kwargs = {"init_scale": self.static_scale or 2.0 ** 16}
            if self.static_scale is not None:
                self.scaler_kwargs["growth_interval"] = 2 ** 31 - 1  # static: never grows
            self.scaler = _grad_scaler(device.type, **self.scaler_kwargs)

    @property
    def mode(self) -> str:
        if not self.enabled:
            return "fp32"
        if self.apex is not None:
            return f"apex {self.opt_level}"
        return f"autocast {str(self.dtype).replace('torch.', '')}"

    def initialize(self, model, optimizer):
        if self.apex is not None:
            kwargs = {"opt_level": self.opt_level,
                      "loss_scale": "dynamic" if self.static_scale is None else self.static_scale}
            if self.device.type == "npu":
                kwargs["combine_grad"] = True
            model, optimizer = self.apex.initialize(model, optimizer, **kwargs)
        return model, optimizer

    def autocast(self):
        if not self.enabled or self.apex is not None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def backward(self, loss, optimizer):
        if self.apex is not None:
            with self.apex.scale_loss(loss, optimizer) as scaled:
                scaled.backward()
        elif self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def step(self, optimizer) -> bool:
        """Optimizer step; False when the step was skipped for inf/nan gradients."""
        if self.scaler is not None:
            before = self.scaler.get_scale()
            self.scaler.step(optimizer)
            self.scaler.update()
            return self.scaler.get_scale() >= before
        optimizer.step()
        return True

    def state_dict(self):
        if self.scaler is not None:
            return {"scaler": self.scaler.state_dict()}
        if self.apex is not None:
            return {"apex": self.apex.state_dict()}
        return {}

    def load_state_dict(self, state):
        if not state:
            return
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        elif self.apex is not None and "apex" in state:
            self.apex.load_state_dict(state["apex"])


def from_args(args, device: torch.device) -> Amp:
    return Amp(getattr(args, "amp", False), device, getattr(args, "opt_level", "O2"),
               getattr(args, "loss_scale", None))

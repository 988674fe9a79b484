from types import SimpleNamespace

import pytest
import torch

from common import amp as amp_mod
from common.amp import Amp, parse_loss_scale


@pytest.mark.parametrize("value,expected", [
    (None, None), ("dynamic", None), ("-1", None), (-1, None), ("512", 512.0), (128.0, 128.0)])
def test_parse_loss_scale(value, expected):
    assert parse_loss_scale(value) == expected


def test_cpu_amp_is_bf16_autocast_without_scaler():
    a = Amp(True, torch.device("cpu"), "O2", "512")
    assert a.dtype == torch.bfloat16 and a.scaler is None and a.mode == "autocast bfloat16"
    lin = torch.nn.Linear(4, 4)
    with a.autocast():
        y = lin(torch.randn(2, 4))
    assert y.dtype == torch.bfloat16


def test_disabled_and_o0_are_fp32():
    for a in (Amp(False, torch.device("cpu")), Amp(True, torch.device("cpu"), "O0")):
        assert not a.enabled and a.mode == "fp32"
        with a.autocast():
            y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
        assert y.dtype == torch.float32


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_accelerator_amp_is_fp16_with_grad_scaler():
    dyn = Amp(True, SimpleNamespace(type="cuda", index=0), "O1", "dynamic", use_apex=False)
    assert dyn.dtype == torch.float16 and dyn.scaler is not None
    static = Amp(True, SimpleNamespace(type="cuda", index=0), "O2", 512, use_apex=False)
    assert static.scaler is not None
    assert static.scaler_kwargs == {"init_scale": 512.0, "growth_interval": 2 ** 31 - 1}  # static: never grows
    assert dyn.scaler_kwargs == {"init_scale": 2.0 ** 16}


def test_apex_is_used_when_present(monkeypatch):
    calls = {}

    class FakeApexAmp:
        @staticmethod
        def initialize(model, optimizer, **kw):
            calls.update(kw)
            return model, optimizer

    monkeypatch.setattr(amp_mod, "_real_apex_amp", lambda: FakeApexAmp)
    a = Amp(True, SimpleNamespace(type="npu", index=0), "O2", "512")
    assert a.apex is FakeApexAmp and a.mode == "apex O2" and a.scaler is None
    a.initialize("model", "opt")
    assert calls == {"opt_level": "O2", "loss_scale": 512.0, "combine_grad": True}
    # on the CPU apex is never used: torch.autocast bf16 instead
    assert Amp(True, torch.device("cpu"), "O2").apex is None


def test_backward_and_step_train_on_cpu():
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    a = Amp(True, torch.device("cpu"))
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    before = lin.weight.detach().clone()
    with a.autocast():
        out = lin(x)
    loss = torch.nn.functional.mse_loss(out.float(), y)
    a.backward(loss, opt)
    assert a.step(opt) is True
    assert not torch.equal(before, lin.weight)


def test_npu_uses_torch_npu_grad_scaler(monkeypatch):
    made = []

    class FakeScaler:
        def __init__(self, **kw):
            made.append(kw)

    monkeypatch.setattr(torch, "npu", SimpleNamespace(amp=SimpleNamespace(GradScaler=FakeScaler)), raising=False)
    a = Amp(True, SimpleNamespace(type="npu", index=0), "O2", "512", use_apex=False)
    assert isinstance(a.scaler, FakeScaler) and a.dtype == torch.float16
    assert made == [{"init_scale": 512.0, "growth_interval": 2 ** 31 - 1}]

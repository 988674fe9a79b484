from types import SimpleNamespace

import pytest
import torch

from common import device as dev
from common.errors import UserError


@pytest.fixture
def avail(monkeypatch):
    """Stub the availability checks: set state['npu'] / state['cuda'] in a test."""
    state = {"npu": False, "cuda": False}
    monkeypatch.setattr(dev, "npu_available", lambda: state["npu"])
    monkeypatch.setattr(dev, "cuda_available", lambda: state["cuda"])
    return state


@pytest.mark.parametrize("npu,cuda,expected", [
    (True, True, "npu"), (True, False, "npu"), (False, True, "cuda"), (False, False, "cpu")])
def test_auto_prefers_npu_then_cuda_then_cpu(avail, npu, cuda, expected):
    avail.update(npu=npu, cuda=cuda)
    assert dev.resolve_device_type(None) == expected
    assert dev.resolve_device_type("auto") == expected


def test_explicit_override(avail):
    avail.update(npu=True, cuda=True)
    assert dev.resolve_device_type("cpu") == "cpu"
    assert dev.resolve_device_type("cuda") == "cuda"
    assert dev.resolve_device_type("gpu") == "cuda"


def test_unavailable_accelerator_is_a_user_error(avail):
    with pytest.raises(UserError, match="npu"):
        dev.resolve_device_type("npu")
    with pytest.raises(UserError, match="CUDA"):
        dev.resolve_device_type("cuda")
    with pytest.raises(UserError, match="unknown device"):
        dev.resolve_device_type("tpu")


def test_device_index_precedence(monkeypatch):
    for k in ("LOCAL_RANK", "WORLD_SIZE", "ASCEND_DEVICE_ID"):
        monkeypatch.delenv(k, raising=False)
    assert dev.resolve_device_index(None) == 0
    assert dev.resolve_device_index(3) == 3
    monkeypatch.setenv("ASCEND_DEVICE_ID", "5")
    assert dev.resolve_device_index(3) == 5
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert dev.resolve_device_index(3) == 5  # single process: LOCAL_RANK is not a launch
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert dev.resolve_device_index(3) == 1


def test_select_device_sets_the_chosen_accelerator(avail, monkeypatch):
    calls = []
    avail.update(cuda=True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: calls.append(("cuda", i)))
    monkeypatch.delenv("ASCEND_DEVICE_ID", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    d = dev.select_device("auto", 2)
    assert (d.type, d.index) == ("cuda", 2) and calls == [("cuda", 2)]


def test_select_npu_device(avail, monkeypatch):
    calls = []

    class FakeNpu:
        @staticmethod
        def set_device(i):
            calls.append(("npu", i))

    avail.update(npu=True)
    monkeypatch.setattr(torch, "npu", FakeNpu, raising=False)
    monkeypatch.setattr(dev, "_make_device", lambda kind, index: (kind, index))
    monkeypatch.setenv("ASCEND_DEVICE_ID", "4")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert dev.select_device(None, 0) == ("npu", 4)
    assert calls == [("npu", 4)]


def test_backend_follows_device():
    assert dev.dist_backend(torch.device("cpu")) == "gloo"
    assert dev.dist_backend(torch.device("cuda", 0)) == "nccl"
    assert dev.dist_backend(SimpleNamespace(type="npu", index=0)) == "hccl"


def test_npu_unavailable_without_torch_npu():
    # torch_npu is not installed in the test environment
    assert dev.npu_available() is False


def test_exact_index_for_device_list(avail, monkeypatch):
    calls = []
    avail.update(cuda=True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: calls.append(i))
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert dev.select_device("cuda", 6, exact_index=True).index == 6
    assert dev.select_device("cuda", 6).index == 1  # without it the local rank decides
    assert calls == [6, 1]

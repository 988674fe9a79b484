import os

import pytest
import torch

from common import checkpoint as ck
from common.errors import UserError


def test_atomic_save_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "ckpt.pth"
    ck.atomic_save({"a": 1}, p)
    ck.atomic_save({"a": 2}, p)
    assert torch.load(p)["a"] == 2
    assert os.listdir(tmp_path) == ["ckpt.pth"]


def test_failed_save_keeps_previous_checkpoint(tmp_path):
    p = tmp_path / "ckpt.pth"
    ck.atomic_save({"epoch": 1}, p)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom mid-write")

    with pytest.raises(RuntimeError):
        ck.atomic_save({"epoch": 2, "bad": Unpicklable()}, p)
    assert torch.load(p)["epoch"] == 1
    assert os.listdir(tmp_path) == ["ckpt.pth"]


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        ck.load(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        ck.load(bad)


def test_strip_prefix():
    assert ck.strip_prefix({"module.a": 1, "b": 2}) == {"a": 1, "b": 2}


def test_load_state_dict_checked():
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    sd = {"module." + k: v.clone() for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}
    ck.load_state_dict_checked(m, sd)  # module. prefix and legacy missing counter both accepted
    assert int(m[1].num_batches_tracked) == 0
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 1), torch.nn.BatchNorm2d(5))
    with pytest.raises(UserError, match="shape mismatches"):
        ck.load_state_dict_checked(m, other.state_dict(), what="weights")
    with pytest.raises(UserError, match="missing keys.*unexpected keys"):
        ck.load_state_dict_checked(m, {"fc.weight": torch.zeros(1)})


def test_rng_state_roundtrip():
    ck.seed_everything(3)
    state = ck.rng_state()
    a = torch.rand(3)
    ck.set_rng_state(state)
    assert torch.equal(a, torch.rand(3))


def test_worker_error_is_reduced_to_its_message():
    import torch.utils.data as tud

    from common.data import BadImageError
    from common.errors import one_line

    class Bad(tud.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            raise BadImageError(f"cannot read image /x/{i}.png: broken")

    with pytest.raises(BadImageError) as info:
        next(iter(tud.DataLoader(Bad(), num_workers=1)))
    assert one_line(info.value) == "cannot read image /x/0.png: broken"


def test_str2bool():
    import argparse

    from common.cli import str2bool

    assert [str2bool(v) for v in ("True", "1", "yes", "ON", True)] == [True] * 5
    assert [str2bool(v) for v in ("False", "0", "no", "off", False)] == [False] * 5
    with pytest.raises(argparse.ArgumentTypeError):
        str2bool("maybe")

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


# ---------------------------------------------------------------- loading never runs code
def test_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path):
    from common.testing import malicious_checkpoint

    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tmp_path / "evil.pth", marker)
    with pytest.raises(UserError) as info:
        ck.load(path)
    assert not marker.exists()
    msg = str(info.value)
    assert str(path) in msg and "system" in msg and "\n" not in msg


def test_own_checkpoint_contents_are_plain_data(tmp_path):
    """A new checkpoint loads with torch's bare weights_only=True: no allowlist needed."""
    import argparse

    ck.seed_everything(5)
    ns = argparse.Namespace(lr=0.1, steps=(1, 2), out=tmp_path, name="x")
    ck.atomic_save({"rng": ck.rng_state(), "args": ck.plain_args(ns)}, tmp_path / "c.pth")
    state = torch.load(tmp_path / "c.pth", weights_only=True)
    assert state["args"] == {"lr": 0.1, "steps": [1, 2], "out": str(tmp_path), "name": "x"}
    a = [torch.rand(2), __import__("numpy").random.rand(), __import__("random").random()]
    ck.set_rng_state(state["rng"])
    b = [torch.rand(2), __import__("numpy").random.rand(), __import__("random").random()]
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_checkpoints_of_earlier_versions_still_load(tmp_path):
    """Earlier versions stored numpy/python RNG tuples and argparse Namespaces."""
    import argparse
    import random

    import numpy as np

    ck.seed_everything(9)
    legacy = {"rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()},
              "args": argparse.Namespace(lr=0.5), "model": {"w": torch.ones(2)}}
    torch.save(legacy, tmp_path / "old.pth")
    state = ck.load(tmp_path / "old.pth")
    assert state["args"].lr == 0.5 and torch.equal(state["model"]["w"], torch.ones(2))
    x = np.random.rand()
    ck.set_rng_state(state["rng"])
    assert np.random.rand() == x


def test_non_state_dict_is_one_line():
    m = torch.nn.Linear(2, 2)
    with pytest.raises(UserError, match="holds a list"):
        ck.load_state_dict_checked(m, [1, 2], what="--pretrained_path x.pth")
    with pytest.raises(UserError, match="entry 'weight' is a int"):
        ck.load_state_dict_checked(m, {"weight": 3, "bias": torch.zeros(2)})


# ---------------------------------------------------------------- files left behind
def test_stale_temps_of_crashed_writes_are_removed(tmp_path):
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)
    dead = str(child)
    (tmp_path / f".tmp_{dead}_abc_ckpt.pth").write_bytes(b"x" * 10)   # crashed writer, gone
    (tmp_path / ".tmp_k2j4ckpt.pth").write_bytes(b"x")                 # an earlier version's temp
    live = tmp_path / f".tmp_{os.getppid()}_def_ckpt.pth"              # a writer still running
    live.write_bytes(b"x")
    ck._cleaned_dirs.discard(str(tmp_path))
    ck.atomic_save({"a": 1}, tmp_path / "ckpt.pth")
    assert sorted(os.listdir(tmp_path)) == sorted(["ckpt.pth", live.name])


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_checkpoint_mode_follows_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        ck.atomic_save({"a": 1}, tmp_path / "c.pth")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "c.pth").st_mode & 0o777 == mode


# ---------------------------------------------------------------- resume rules
def test_resolve_resume(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT", raising=False)
    said = []
    own = tmp_path / "checkpoint.pth"
    assert ck.resolve_resume(None, own, said.append) is None and said == []
    assert ck.resolve_resume("auto", own, said.append) is None
    assert "nothing to resume from yet" in said[-1] and "starting from scratch" in said[-1]
    own.write_bytes(b"x")
    assert ck.resolve_resume("auto", own, said.append) == str(own)
    with pytest.raises(UserError, match="no such checkpoint file"):
        ck.resolve_resume(str(tmp_path / "typo.pth"), own, said.append)
    assert ck.resolve_resume(str(own), None, said.append) == str(own)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")   # torchrun restarted the job
    assert ck.resolve_resume(None, own, said.append) == str(own) and "restart 1" in said[-1]


def test_check_recipe():
    saved = {"lr": 0.1, "bs": 32, "seed": 1, "max_steps": 5}
    assert ck.check_recipe(saved, dict(saved, max_steps=9), ["lr", "bs", "seed"], "c.pth") == []
    with pytest.raises(UserError, match=r"--lr 0.1 -> 0.2, --bs 32 -> 16.*--allow_recipe_change"):
        ck.check_recipe(saved, dict(saved, lr=0.2, bs=16), ["lr", "bs", "seed"], "c.pth")
    said = []
    changes = ck.check_recipe(saved, dict(saved, lr=0.2), ["lr"], "c.pth", allowed=True, log=said.append)
    assert changes == ["--lr 0.1 -> 0.2"] and "[Warning]" in said[0]

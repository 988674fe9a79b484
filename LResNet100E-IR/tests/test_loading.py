"""Issue 9: every file is read as data. A checkpoint or .bin whose pickle would run code is refused
with one line on every load path; upstream layouts, TreB1eN's separate files, files of earlier
versions of this project and our own keep loading; resume rules (bare --resume, restarts, recipe)."""
import os
import pickle
import random
import shutil
import struct

import numpy as np
import pytest
import torch
from arcface_helpers import TINY, call_main, load_module, one_error, one_error_line, run

from common.testing import malicious_checkpoint, malicious_pickle

TRAIN = ["--batch-size=32", "--epochs=1", "--max_steps=1", "--max_iter=-1", "--num_workers=0", "--lr=0.1", *TINY]


@pytest.fixture(scope="module")
def trained(demo, tmp_path_factory):
    """One step of the tiny net, in this process: (save_dir, epoch-0 checkpoint path)."""
    out = tmp_path_factory.mktemp("trained")
    load_module("train.py").main([f"--data_path={demo}", f"--save_dir={out}", *TRAIN])
    (path,) = out.glob("model_*_epoch:0_*.pth")
    return out, path


def trainer(argv):
    """train.py's Trainer built from flags (weights loaded, nothing trained)."""
    mod = load_module("train.py")
    t = mod.Trainer(mod.get_args_parser().parse_args([str(a) for a in argv]))
    t.metrics.close()
    return t


# ------------------------------------------------------------------ malicious files: every load path
def _wrap(payload):  # shaped like one of our checkpoints, the payload where a tensor would be
    return {"model": {"input_layer.0.weight": payload}, "head": {"kernel": payload}, "optimizer": {},
            "next_epoch": 0, "arch": {}}


LOAD_PATHS = {  # name -> (program, flags); BAD is the malicious file, DIR its folder
    "eval.py --pth_path FILE": ("eval.py", ["--data_path=DEMO/lfw.bin", "--pth_path=BAD"]),
    "eval.py --pth_path FOLDER (newest model file)": ("eval.py", ["--data_path=DEMO/lfw.bin", "--pth_path=DIR"]),
    "export.py --pth_path": ("export.py", ["--pth_path=BAD", "--output=DIR/m.onnx"]),
    "train.py --resume FILE": ("train.py", ["--data_path=DEMO", "--resume=BAD", "--save_dir=DIR/run"]),
    "train.py --resume (bare: <save_dir>/last.pth)": ("train.py", ["--data_path=DEMO", "--resume", "--save_dir=DIR"]),
    "train.py after a torchrun restart (<save_dir>/last.pth)": ("train.py", ["--data_path=DEMO", "--save_dir=DIR"]),
    "train.py --is_finetune 1 --resume FILE": ("train.py", ["--data_path=DEMO", "--is_finetune=1", "--resume=BAD",
                                                            "--save_dir=DIR/run"]),
    "train.py --pretrained_path": ("train.py", ["--data_path=DEMO", "--pretrained_path=BAD", "--save_dir=DIR/run"]),
    "train.py --head_path (TreB1eN head_*.pth)": ("train.py", ["--data_path=DEMO", "--head_path=BAD",
                                                               "--save_dir=DIR/run"]),
    "train.py --optimizer_path (TreB1eN optimizer_*.pth)": ("train.py", ["--data_path=DEMO", "--optimizer_path=BAD",
                                                                         "--save_dir=DIR/run"]),
}


@pytest.mark.parametrize("name", list(LOAD_PATHS))
def test_malicious_checkpoint_refused_on_every_load_path(name, demo, tmp_path, capsys, monkeypatch):
    program, flags = LOAD_PATHS[name]
    marker = tmp_path / "PWNED"
    bad = malicious_checkpoint(tmp_path / ("last.pth" if "last.pth" in name else "model_x_epoch:0_0.5.pth"),
                               marker, wrap=_wrap)
    if "restart" in name:
        monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    argv = [f.replace("DEMO", str(demo)).replace("BAD", str(bad)).replace("DIR", str(tmp_path)) for f in flags]
    argv += TRAIN if program == "train.py" else TINY[:3]
    code, out, err = call_main(program, argv, capsys)
    line = one_error(code, err)
    assert "refused to load" in line and str(bad) in line and "system" in line, line
    assert not marker.exists()


@pytest.mark.e2e
def test_malicious_checkpoint_through_the_eval_script(demo, tmp_path):
    marker = tmp_path / "PWNED"
    bad = malicious_checkpoint(tmp_path / "evil.pth", marker, wrap=_wrap)
    r = run(["bash", "test/train_eval_1p.sh", f"--data_path={demo}/lfw.bin", f"--pth_path={bad}", "--device_id=14"])
    shutil.rmtree(os.path.join(os.path.dirname(__file__), "..", "test", "output", "14"), ignore_errors=True)
    assert "refused to load checkpoint" in one_error_line(r) and not marker.exists()


def test_malicious_bin_refused_by_both_readers(demo, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    root = tmp_path / "faces_emore"
    root.mkdir()
    (root / "imgs").symlink_to(demo / "imgs")
    bad = malicious_pickle(root / "lfw.bin", marker, wrap=lambda p: ([p, b"x"], [True]))
    code, _, err = call_main("eval.py", [f"--data_path={bad}", f"--pth_path={tmp_path}/none.pth"], capsys)
    assert "refused to load verification pair file" in one_error(code, err) and not marker.exists()
    code, _, err = call_main("train.py", [f"--data_path={root}", f"--save_dir={tmp_path}/run", *TRAIN], capsys)
    line = one_error(code, err)  # the per-epoch check's reader
    assert "refused to load verification pair file" in line and str(bad) in line and not marker.exists()


# ------------------------------------------------------------------ layouts that must keep loading
def _eval_acc(capsys, pth, demo, *extra):
    code, out, err = call_main("eval.py", [f"--data_path={demo}/lfw.bin", f"--pth_path={pth}", "--nfolds=5",
                                           "--flip=0", "--use_amp=1", *extra], capsys)
    assert code == 0, err
    return [line for line in out.splitlines() if line.startswith("lfw_accuracy: ")]


def test_own_checkpoint_is_plain_data_and_follows_umask(trained):
    out, path = trained
    state = torch.load(path, weights_only=True)  # a bare weights_only load: only plain types inside
    assert state["format"] == "face_arcface/2" and isinstance(state["config"], dict)
    assert isinstance(state["lfw_accuracy"], float) and state["config"]["batch_size"] == 32
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask
    assert not [p for p in os.listdir(out) if p.startswith(".tmp_")]


def test_upstream_layouts_load_for_eval(trained, demo, tmp_path, capsys):
    """TreB1eN's plain backbone state_dict (released model_ir_se50.pth, Learner's model_*.pth) and the
    port's {'model','head','optimizer','epoch','config'} (config as a plain dict) evaluate like ours."""
    _, path = trained
    state = torch.load(path, weights_only=True)
    ours = _eval_acc(capsys, path, demo)
    plain = tmp_path / "model_2019-01-01-00-00_accuracy:0.5_step:1_None.pth"
    torch.save(state["model"], plain)
    port = tmp_path / "port.pth"
    torch.save({k: state[k] for k in ("model", "head", "optimizer", "epoch")} | {"config": {"lr": 0.1}}, port)
    assert len(ours) == 1
    assert _eval_acc(capsys, plain, demo, *TINY[:3]) == ours == _eval_acc(capsys, port, demo, *TINY[:3])


def test_treb1en_separate_files_and_port_resume(trained, demo, tmp_path):
    """Learner.save_state writes model_/head_/optimizer_<stamp>.pth: the three flags load them exactly;
    --resume of the port's layout continues at the epoch after the saved one."""
    out, path = trained
    state = torch.load(path, weights_only=True)
    stamp = "2019-01-01-00-00_accuracy:0.5_step:1_None.pth"
    for kind in ("model", "head", "optimizer"):
        torch.save(state[kind], tmp_path / f"{kind}_{stamp}")
    t = trainer([f"--data_path={demo}", f"--save_dir={tmp_path}/a", f"--pretrained_path={tmp_path}/model_{stamp}",
                 f"--head_path={tmp_path}/head_{stamp}", f"--optimizer_path={tmp_path}/optimizer_{stamp}", *TRAIN])
    assert torch.equal(t.head.kernel.detach(), state["head"]["kernel"])
    assert torch.equal(t.model.input_layer[0].weight.detach(), state["model"]["input_layer.0.weight"])
    bufs = [s["momentum_buffer"] for _, s in sorted(t.optimizer.state_dict()["state"].items())]
    assert all(torch.equal(a, b) for a, b in zip(bufs, [s["momentum_buffer"] for _, s in
                                                        sorted(state["optimizer"]["state"].items())]))
    port = tmp_path / "port.pth"
    torch.save({k: state[k] for k in ("model", "head", "optimizer", "epoch")} | {"config": {"lr": 0.1}}, port)
    t = trainer([f"--data_path={demo}", f"--save_dir={tmp_path}/b", f"--resume={port}", *TRAIN])
    assert t.epoch == 1 and t.index == 0
    assert torch.equal(t.head.kernel.detach(), state["head"]["kernel"])


def test_checkpoint_of_an_earlier_version_resumes(trained, demo, tmp_path):
    """Earlier versions stored RNG states as tuples with numpy arrays, a numpy scalar accuracy and
    tuples in the architecture: still plain data, so they load and resume (RNG included)."""
    _, path = trained
    state = torch.load(path, weights_only=True)
    random.seed(5)
    np.random.seed(5)
    expected = (random.random(), np.random.rand())
    random.seed(5)
    np.random.seed(5)
    state["rng"] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    state["lfw_accuracy"] = np.float64(state["lfw_accuracy"])
    state["arch"] = {k: tuple(v) if isinstance(v, list) else v for k, v in state["arch"].items()}
    state["format"] = "face_arcface/1"
    del state["run_id"]
    old = tmp_path / "old.pth"
    torch.save(state, old)
    t = trainer([f"--data_path={demo}", f"--save_dir={tmp_path}/run", f"--resume={old}", *TRAIN])
    assert (t.epoch, t.index, t.global_step) == (0, 1, 1)
    assert (random.random(), np.random.rand()) == expected  # the stored generators were restored


# ------------------------------------------------------------------ wrong shapes
def test_files_of_the_wrong_shape_are_one_line(trained, demo, tmp_path, capsys):
    out, path = trained
    torch.save([1, 2, 3], tmp_path / "list.pth")
    code, _, err = call_main("train.py", [f"--data_path={demo}", f"--pretrained_path={tmp_path}/list.pth",
                                          f"--save_dir={tmp_path}/run", *TRAIN], capsys)
    assert "holds a list, expected a dict" in one_error(code, err)
    code, _, err = call_main("eval.py", [f"--data_path={demo}/lfw.bin", f"--pth_path={tmp_path}/list.pth"], capsys)
    assert "holds a list, expected a dict" in one_error(code, err)
    torch.save({"kernel": torch.zeros(512, 3)}, tmp_path / "head.pth")  # another data set's 3 identities
    code, _, err = call_main("train.py", [f"--data_path={demo}", f"--head_path={tmp_path}/head.pth",
                                          f"--save_dir={tmp_path}/run", *TRAIN], capsys)
    assert "does not fit this model" in one_error(code, err) and "kernel" in err
    torch.save({"state": {}, "param_groups": [{"params": [0, 1]}]}, tmp_path / "opt.pth")
    code, _, err = call_main("train.py", [f"--data_path={demo}", f"--optimizer_path={tmp_path}/opt.pth",
                                          f"--save_dir={tmp_path}/run", *TRAIN], capsys)
    assert "parameter groups of sizes [2]" in one_error(code, err)
    for obj, words in ((7, "the file holds a int"), (({"a": 1}, [True]), "its image list holds a dict"),
                       (([b"x", b"y"], 5), "its issame list holds a int"), (([b"x"] * 3, [True]), "odd number")):
        (tmp_path / "lfw.bin").write_bytes(pickle.dumps(obj, protocol=2))
        code, _, err = call_main("eval.py", [f"--data_path={tmp_path}/lfw.bin", f"--pth_path={path}"], capsys)
        assert words in one_error(code, err)


def _py2_pickle(bins, issame):
    """(bins, issame) as Python 2's cPickle writes it (protocol 2): JPEG bytes as BINSTRING 'T'."""
    out = b"\x80\x02]("  # PROTO 2, EMPTY_LIST, MARK
    for b in bins:
        out += b"T" + struct.pack("<I", len(b)) + b
    out += b"e]("  # APPENDS, EMPTY_LIST, MARK
    out += b"".join(b"\x88" if s else b"\x89" for s in issame)
    return out + b"e\x86."  # APPENDS, TUPLE2, STOP


def test_python2_bin_bytes_survive(demo, tmp_path):
    from face_arcface.faces_emore import decode_bin, load_bin

    bins, issame = load_bin(demo / "lfw.bin")
    (tmp_path / "py2.bin").write_bytes(_py2_pickle(bins[:40], issame[:20]))
    bins2, issame2 = load_bin(tmp_path / "py2.bin")
    assert [b.encode("latin-1") for b in bins2] == bins[:40] and issame2.tolist() == issame[:20].tolist()
    (tmp_path / "py3.bin").write_bytes(pickle.dumps((bins[:40], issame[:20].tolist()), protocol=4))
    a, b = decode_bin(tmp_path / "py2.bin", 32), decode_bin(tmp_path / "py3.bin", 32)
    assert np.array_equal(a[0], b[0]) and a[0].shape == (40, 32, 32, 3)


# ------------------------------------------------------------------ resume rules
def test_bare_resume_and_restart(trained, demo, tmp_path, capsys, monkeypatch):
    out, path = trained
    code, stdout, err = call_main("train.py", [f"--data_path={demo}", "--resume", f"--save_dir={tmp_path}", *TRAIN],
                                  capsys)
    assert code == 0, err
    assert f"--resume: nothing to resume from yet ({tmp_path}/last.pth does not exist): starting from scratch" \
        in stdout and "epoch 0 started" in stdout
    # the run folder now has last.pth (1 step of epoch 0): a bare --resume, and a restarted worker, continue it
    t = trainer([f"--data_path={demo}", "--resume", f"--save_dir={tmp_path}", *TRAIN])
    assert (t.epoch, t.index, t.global_step) == (0, 1, 1) and t.resume_path == str(tmp_path / "last.pth")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    t = trainer([f"--data_path={demo}", f"--save_dir={tmp_path}", *TRAIN])
    assert (t.epoch, t.index, t.global_step) == (0, 1, 1) and t.resume_path == str(tmp_path / "last.pth")


def test_resume_with_another_recipe_is_refused_or_warned(trained, demo, tmp_path, capsys):
    out, path = trained
    code, _, err = call_main("train.py", [f"--data_path={demo}", f"--resume={path}", f"--save_dir={tmp_path}",
                                          *TRAIN, "--lr=0.5"], capsys)
    line = one_error(code, err)
    assert "--lr 0.1 -> 0.5" in line and "--allow_recipe_change" in line
    code, stdout, err = call_main("train.py", [f"--data_path={demo}", f"--resume={path}", f"--save_dir={tmp_path}",
                                               *TRAIN, "--lr=0.5", "--max_steps=2", "--allow_recipe_change"], capsys)
    assert code == 0, err
    assert "[Warning] resuming" in stdout and "--lr 0.1 -> 0.5" in stdout
    assert "epoch 0, in-epoch step 1, step 1" in stdout and "step: [1]" in stdout
    code, _, err = call_main("train.py", [f"--data_path={demo}", f"--resume={tmp_path}/nope.pth", *TRAIN], capsys)
    assert "no such checkpoint file" in one_error(code, err)


def test_stale_temps_removed_at_start(demo, tmp_path):
    (tmp_path / ".tmp_999999999_last.pth").write_bytes(b"half a checkpoint")  # a crashed writer's
    (tmp_path / ".tmp_abcdlast.pth").write_bytes(b"earlier version's temp")
    trainer([f"--data_path={demo}", f"--save_dir={tmp_path}", *TRAIN])  # built, nothing saved yet
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp_")]

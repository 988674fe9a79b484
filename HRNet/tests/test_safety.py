"""Files are data, never code; every bad flag is one line; resumes keep their recipe (in-process
calls of train.py / eval.py / export.py main(), on demo data with the tiny demo config).

Load paths of this model, each given a malicious checkpoint below:
  eval.py --testModel/--pth_path, export.py --pth_path, train.py --pretrained FILE, the port's
  --pretrained=1 --resume=FILE, --resume FILE, bare --resume (the run folder's checkpoint.pth.tar),
  the automatic resume of TRAIN.RESUME, the resume after a torchrun restart, and the eval scripts'
  default checkpoint (through train_eval_1p.sh). HRNet reads no dataset pickles (ImageNet class
  folders only); its configs are YAML, never Python.
"""
import argparse
import os
import random
import shutil
import stat

import numpy as np
import pytest
import torch

from common.checkpoint import load
from common.testing import digests, malicious_checkpoint, run_script

RUN_DIR = "imagenet/cls_hrnet_demo_tiny"
TINY = ["--cfg=demo_tiny", "--device=cpu", "--workers=0", "--cache_images=off", "--bs=32", "--lr=0.01"]


def model_state(seed=1):
    from hrnet_cls.cls_hrnet import get_cls_net
    from hrnet_cls.config import load_config

    cfg, _ = load_config("demo_tiny")
    torch.manual_seed(seed)
    return get_cls_net(cfg)


@pytest.fixture(scope="module")
def tiny_run(demo, cli, tmp_path_factory):
    """3 steps of train.py with a bare --resume in an empty folder: it starts from scratch and says so."""
    data, _ = demo
    out = tmp_path_factory.mktemp("hrnet_tiny_run")
    capture = pytest.MonkeyPatch()
    capture.chdir(os.path.dirname(cli["train"].__file__))
    try:
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = cli["train"].main([str(data), *TINY, "--train_epochs=1", "--max_steps=3", "--resume",
                                    f"--modelDir={out}"])
    finally:
        capture.undo()
    return rc, buf.getvalue(), out / RUN_DIR, data


@pytest.mark.e2e
def test_bare_resume_with_nothing_saved_starts_from_scratch_and_says_so(tiny_run):
    rc, text, run_dir, _ = tiny_run
    assert rc == 0
    assert (f"--resume: nothing to resume from yet ({run_dir / 'checkpoint.pth.tar'} does not exist): "
            "starting from scratch") in text
    ckpt = torch.load(run_dir / "checkpoint.pth.tar", weights_only=True)  # plain data only
    assert (ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"]) == (0, 3, 3)


# ------------------------------------------------------------------ flags: one line, nothing written
BAD_FLAGS = [
    ("train", ["--bs=0"], "Error: argument --bs: expected an integer >= 1, got 0"),
    ("train", ["--bs=-4"], "Error: argument --bs: expected an integer >= 1, got -4"),
    ("train", ["--bs=abc"], "Error: argument --bs: expected an integer >= 1, got 'abc'"),
    ("train", ["--train_epochs=0"], "Error: argument --train_epochs: expected an integer >= 1, got 0"),
    ("train", ["--max_steps=-2"], "Error: argument --max_steps: expected an integer >= 1, got -2"),
    ("train", ["--lr=-1"], "Error: argument --lr: expected a number > 0, got -1"),
    ("train", ["--lr=nan"], "Error: argument --lr: expected a number > 0, got nan"),
    ("train", ["--workers=-1"], "Error: argument --workers: expected an integer >= 0, got -1"),
    ("train", ["--nproc=0"], "Error: argument --nproc: expected an integer >= 1, got 0"),
    ("train", ["--dn=0"], "Error: argument --dn: expected an integer >= 1, got 0"),
    ("train", ["--stop_step=-1"], "Error: argument --stop_step: expected true/false or a number of steps >= 1, "
                                  "got '-1'"),
    ("train", ["--print_freq=0"], "Error: argument --print_freq: expected an integer >= 1, got 0"),
    ("train", ["--save_freq=-1"], "Error: argument --save_freq: expected an integer >= 0, got -1"),
    ("train", ["--seed=-1"], "Error: argument --seed: expected an integer >= 0, got -1"),
    ("train", ["--device_id=-1"], "Error: argument --device_id: expected an integer >= 0, got -1"),
    ("train", ["--loss_scale=0"], "Error: argument --loss_scale/--loss-scale: expected 'dynamic', -1 or a "
                                  "number > 0, got '0'"),
    ("eval", ["--bs=0"], "Error: argument --bs: expected an integer >= 1, got 0"),
    ("eval", ["--workers=-2"], "Error: argument --workers: expected an integer >= 0, got -2"),
    ("eval", ["--nproc=-1"], "Error: argument --nproc: expected an integer >= 1, got -1"),
    ("export", ["--opset=99"], "Error: argument --opset: expected an integer in [7, 20], got 99"),
    ("export", ["--tolerance=0"], "Error: argument --tolerance: expected a number > 0, got 0"),
]


@pytest.mark.e2e
@pytest.mark.parametrize("name,args,line", BAD_FLAGS, ids=[f"{n}{a[0]}" for n, a, _ in BAD_FLAGS])
def test_bad_numeric_flag_is_one_line_and_touches_nothing(tiny_run, cli, call, name, args, line):
    _, _, run_dir, data = tiny_run
    before = digests(run_dir.parent.parent)
    model_dir = f"--modelDir={run_dir.parent.parent}"
    argv = {"train": [data, *TINY, model_dir], "eval": [data, "--cfg=demo_tiny", model_dir],
            "export": ["--cfg=demo_tiny", f"--pth_path={run_dir / 'final_state.pth.tar'}"]}[name]
    rc, out, err = call(cli[name].main, [*argv, *args])
    assert (rc, err) == (1, [line]) and out == ""
    assert digests(run_dir.parent.parent) == before


@pytest.mark.e2e
def test_epochs_0_never_overwrites_final_state(tiny_run, cli, call):
    """The issue's case: --epochs=0 used to save an untrained model as final_state.pth.tar."""
    _, _, run_dir, data = tiny_run
    before = (run_dir / "final_state.pth.tar").read_bytes()
    rc, _, err = call(cli["train"].main, [data, *TINY, "--train_epochs=0", f"--modelDir={run_dir.parent.parent}"])
    assert rc == 1 and err == ["Error: argument --train_epochs: expected an integer >= 1, got 0"]
    assert (run_dir / "final_state.pth.tar").read_bytes() == before


def test_card_flags_parse(cli):
    """The model card's train.py flags (its parameter list) parse with the port's meanings."""
    a = cli["train"].get_args_parser().parse_args(
        ["/data/xxx", "--cfg=w18", "--addr=10.0.0.1", "--nproc=64", "--lr=0.1", "--workers=8", "--train_epochs=100",
         "--bs=256", "--device_id=3", "--stop_step=TRUE", "--dn=8"])
    assert (a.data_path, a.nproc, a.lr, a.workers, a.train_epochs, a.bs, a.device_id, a.dn) == (
        "/data/xxx", 64, 0.1, 8, 100, 256, 3, 8)
    assert a.stop_step == 201  # the port's `i > 200` break: 201 steps per epoch


# ------------------------------------------------------------------ configs are YAML, never code
def test_python_and_tagged_configs_never_run(tmp_path, cli, call):
    marker = tmp_path / "ran"
    py = tmp_path / "evil.py"
    py.write_text(f"import os\nos.system('touch {marker}')\nfrom yacs.config import CfgNode\ncfg = CfgNode()\n")
    tagged = tmp_path / "evil.yaml"
    tagged.write_text(f"GPUS: !!python/object/apply:os.system ['touch {marker}']\n")
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    for name in ("train", "eval"):
        rc, _, err = call(cli[name].main, [tmp_path, f"--cfg={py}"])
        assert rc == 1 and err == [f"Error: --cfg {py}: configs are YAML files (.yaml or .yml), this is not one "
                                   "(a Python config would run code, so none is ever loaded)"]
    rc, _, err = call(cli["export"].main, [f"--cfg={py}", "--pth_path=x"])
    assert rc == 1 and len(err) == 1 and "configs are YAML files" in err[0]
    rc, _, err = call(cli["train"].main, [tmp_path, f"--cfg={tagged}"])
    assert rc == 1 and len(err) == 1 and err[0].startswith(f"Error: config {tagged}: not valid YAML (could not "
                                                           "determine a constructor for the tag")
    rc, _, err = call(cli["train"].main, [tmp_path, f"--cfg={listed}"])
    assert (rc, err) == (1, [f"Error: config {listed}: expected a YAML mapping of config keys (GPUS, MODEL, "
                             "TRAIN, ...), got list"])
    assert not marker.exists()


def test_config_numbers_are_checked(tmp_path):
    from hrnet_cls import config

    from common.errors import UserError

    src = (config.EXPERIMENTS_DIR / "demo" / "cls_hrnet_demo_tiny.yaml").read_text()
    for old, new, msg in [("  BATCH_SIZE_PER_GPU: 32\n  BEGIN", "  BATCH_SIZE_PER_GPU: 0\n  BEGIN",
                           "TRAIN.BATCH_SIZE_PER_GPU: expected an integer >= 1, got 0"),
                          ("END_EPOCH: 10", "END_EPOCH: 0", "TRAIN.END_EPOCH: expected an integer >= 1, got 0"),
                          ("  LR: 0.05", "  LR: -0.05", "TRAIN.LR: expected a number > 0, got -0.05"),
                          ("WORKERS: 2", "WORKERS: -1", "WORKERS: expected an integer >= 0, got -1")]:
        assert old in src
        p = tmp_path / "c.yaml"
        p.write_text(src.replace(old, new))
        with pytest.raises(UserError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            config.load_config(str(p))


# ------------------------------------------------------------------ malicious checkpoints
def training_shaped(payload):
    return {"epoch": 1, "model": "cls_hrnet", "optimizer": {}, "state_dict": {"conv1.weight": payload}}


@pytest.mark.e2e
def test_malicious_checkpoint_on_every_load_path(tiny_run, cli, call, tmp_path, monkeypatch):
    _, _, _, data = tiny_run
    marker = tmp_path / "ran"
    evil = malicious_checkpoint(tmp_path / "evil.pth.tar", marker, wrap=training_shaped)
    folder = tmp_path / "run"  # a run folder whose checkpoint.pth.tar is the malicious file
    (folder / RUN_DIR).mkdir(parents=True)
    shutil.copy(evil, folder / RUN_DIR / "checkpoint.pth.tar")
    own = folder / RUN_DIR / "checkpoint.pth.tar"
    mdir = f"--modelDir={tmp_path / 'out'}"
    paths = {
        "eval.py --testModel": (cli["eval"].main, [data, "--cfg=demo_tiny", f"--testModel={evil}", mdir], evil),
        "export.py --pth_path": (cli["export"].main, ["--cfg=demo_tiny", f"--pth_path={evil}",
                                                      f"--out={tmp_path / 'x.onnx'}"], evil),
        "train.py --pretrained": (cli["train"].main, [data, *TINY, f"--pretrained={evil}", mdir, "--fresh"], evil),
        "train.py --pretrained=1 --resume": (cli["train"].main, [data, *TINY, "--pretrained=1", f"--resume={evil}",
                                                                  mdir, "--fresh"], evil),
        "train.py --resume FILE": (cli["train"].main, [data, *TINY, f"--resume={evil}", mdir], evil),
        "train.py bare --resume": (cli["train"].main, [data, *TINY, "--resume", f"--modelDir={folder}",
                                                        "--fresh"], own),
        "train.py TRAIN.RESUME": (cli["train"].main, [data, *TINY, f"--modelDir={folder}"], own),
    }
    for what, (main, argv, path) in paths.items():
        rc, _, err = call(main, argv)
        assert rc == 1 and len(err) == 1, (what, err)
        kind = "weights" if what.startswith(("eval", "export")) else (
            "pretrained weights" if "--pretrained" in what else "checkpoint")
        assert err[0].startswith(f"Error: refused to load {kind} {path}: "), (what, err)
        assert "which is code, not data" in err[0] and not marker.exists(), what
    # after a torchrun restart the job looks at its run folder's checkpoint first
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    rc, _, err = call(cli["train"].main, [data, *TINY, f"--modelDir={folder}", "--fresh"])
    assert rc == 1 and len(err) == 1 and err[0].startswith(f"Error: refused to load checkpoint {own}")
    assert not marker.exists()


@pytest.mark.e2e
def test_malicious_default_checkpoint_of_the_eval_script(demo, tmp_path):
    """Through a test script: train_eval_1p.sh without --pth_path loads the full run's final_state."""
    data, _ = demo
    model_dir = os.path.dirname(os.path.dirname(__file__))
    out = os.path.join(model_dir, "test", "output", "89")
    shutil.rmtree(out, ignore_errors=True)
    target = os.path.join(out, "full_1p", RUN_DIR, "final_state.pth.tar")
    os.makedirs(os.path.dirname(target))
    marker = tmp_path / "ran"
    malicious_checkpoint(target, marker)
    res = run_script(model_dir, "train_eval_1p.sh", f"--data_path={data}", "--device_id=89", "--cfg=demo_tiny",
                     "--device=cpu", OMP_NUM_THREADS="1")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"Error: refused to load weights {target}")
    assert not marker.exists()
    shutil.rmtree(out, ignore_errors=True)


@pytest.mark.e2e
def test_pretrained_file_holding_a_list_is_one_line(tiny_run, cli, call, tmp_path):
    _, _, _, data = tiny_run
    torch.save([1, 2, 3], tmp_path / "list.pth")
    rc, _, err = call(cli["train"].main, [data, *TINY, f"--pretrained={tmp_path / 'list.pth'}",
                                          f"--modelDir={tmp_path}", "--fresh"])
    assert (rc, err) == (1, [f"Error: {tmp_path / 'list.pth'}: not an HRNet state_dict or checkpoint (expected "
                             "tensors by layer name)"])
    torch.save(model_state().state_dict(), tmp_path / "weights.pth")
    rc, _, err = call(cli["train"].main, [data, *TINY, f"--resume={tmp_path / 'weights.pth'}",
                                          f"--modelDir={tmp_path}"])
    assert (rc, err) == (1, [f"Error: --resume {tmp_path / 'weights.pth'}: not a training checkpoint "
                             "(checkpoint.pth.tar); use --pretrained for bare weights"])


# ------------------------------------------------------------------ upstream and earlier layouts
def upstream_optimizer_state(model):
    """SGD state as torch 0.4.1 saved it: param groups without the keys later versions added."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True)
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.01)
    opt.step()
    sd = opt.state_dict()
    keep = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "params")
    sd["param_groups"] = [{k: g[k] for k in keep} for g in sd["param_groups"]]
    return sd


def test_upstream_and_earlier_checkpoint_layouts_load(tmp_path):
    from hrnet_cls.checkpoints import load_weights

    src = model_state(1)
    sd = {k: v.clone() for k, v in src.state_dict().items()}
    layouts = {
        # upstream released hrnetv2_w*_imagenet_pretrained.pth, port model_best/final_state: plain state_dicts
        "released.pth": sd,
        "port_8p_model_best.pth.tar": {"module." + k: v for k, v in sd.items()},
        "apex_O2_final_state.pth.tar": {k: v.half() if v.is_floating_point() and v.dim() > 1 else v
                                        for k, v in sd.items()},
        "upstream_checkpoint.pth.tar": {"epoch": 3, "model": "cls_hrnet", "state_dict": sd,
                                        "perf": torch.tensor(41.25),
                                        "optimizer": upstream_optimizer_state(model_state(3))},
    }
    for name, obj in layouts.items():
        torch.save(obj, tmp_path / name)
        dst = model_state(2)
        load_weights(dst, tmp_path / name)
        for k, v in dst.state_dict().items():
            want = sd[k].half().to(v.dtype) if name.startswith("apex") and v.dim() > 1 else sd[k]
            assert torch.equal(v, want), (name, k)


def earlier_checkpoint(run_dir, path, **changes):
    """This project's checkpoint.pth.tar as earlier versions wrote it: `args` as the flags dict,
    RNG states as the raw python/numpy tuples, no `recipe`."""
    ckpt = torch.load(run_dir / "checkpoint.pth.tar", weights_only=True)
    ckpt.pop("recipe")
    ckpt["rng"] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    ckpt.update(changes)
    torch.save(ckpt, path)
    return path


@pytest.mark.e2e
def test_resume_from_upstream_and_earlier_checkpoints(tiny_run, cli, call, tmp_path):
    _, _, run_dir, data = tiny_run
    src = model_state(1)
    up = tmp_path / "upstream_checkpoint.pth.tar"
    torch.save({"epoch": 1, "model": "cls_hrnet", "state_dict": src.state_dict(), "perf": torch.tensor(41.25),
                "optimizer": upstream_optimizer_state(src)}, up)
    old = earlier_checkpoint(run_dir, tmp_path / "earlier.pth.tar", epoch=1, step_in_epoch=0)
    assert isinstance(load(old)["rng"]["numpy"][1], np.ndarray)  # the legacy numpy state, admitted as data
    for path in (up, old):
        rc, out, err = call(cli["train"].main, [data, *TINY, "--train_epochs=1", f"--resume={path}",
                                                f"--modelDir={tmp_path / path.stem}"])
        assert rc == 0, err
        assert f"=> loaded checkpoint (epoch 1) from {path}" in out and "nothing left to train" in out
        assert len([line for line in out.splitlines() if line.startswith("Test: ")]) == 1
    # the earlier file's flags still guard its recipe
    rc, _, err = call(cli["train"].main, [data, *TINY, "--bs=16", "--train_epochs=1", f"--resume={old}",
                                          f"--modelDir={tmp_path / 'x'}"])
    assert rc == 1 and len(err) == 1 and "with a different recipe (--bs 32 -> 16)" in err[0]


# ------------------------------------------------------------------ recipe, temps, modes
@pytest.mark.e2e
def test_resume_with_another_recipe_is_refused_or_warned(tiny_run, cli, call, tmp_path):
    """The automatic resume (TRAIN.RESUME) of a run with other --bs/--lr/--seed: refused with the ways
    out, nothing written; with --allow_recipe_change it goes on and says so in the log. A stale temp
    of a crashed write is gone after the start; checkpoints follow the umask."""
    _, _, run_dir, data = tiny_run
    root = run_dir.parent.parent
    before = digests(root)
    changed = [data, *TINY, "--bs=16", "--lr=0.02", "--seed=5", "--max_steps=3", f"--modelDir={root}"]
    changed[changed.index("--bs=32")] = "--bs=16"
    changed[changed.index("--lr=0.01")] = "--lr=0.02"
    rc, out, err = call(cli["train"].main, changed)
    ckpt = run_dir / "checkpoint.pth.tar"
    assert (rc, out) == (1, "") and err == [
        f"Error: resume from {ckpt} with a different recipe (--bs 32 -> 16, --lr 0.01 -> 0.02, --seed 0 -> 5): "
        "rerun with the checkpoint's flags, use a new output folder, or pass --allow_recipe_change to continue "
        "anyway; or --fresh to start this run folder over"]
    assert digests(root) == before

    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    stale = copy / RUN_DIR / ".tmp_4194305_checkpoint.pth.tar"  # above any pid: its writer is gone
    stale.write_bytes(b"half a checkpoint")
    changed[-1] = f"--modelDir={copy}"
    changed[changed.index("--max_steps=3")] = "--max_steps=4"  # one more step, so a new checkpoint is written
    old_mask = os.umask(0o027)
    try:
        rc, out, err = call(cli["train"].main, [*changed, "--allow_recipe_change"])
    finally:
        os.umask(old_mask)
    assert rc == 0, err
    assert (f"[Warning] resuming {copy / RUN_DIR / 'checkpoint.pth.tar'} with a changed recipe: --bs 32 -> 16, "
            "--lr 0.01 -> 0.02, --seed 0 -> 5 (--allow_recipe_change)") in out
    assert not stale.exists()
    for name in ("final_state.pth.tar", "checkpoint.pth.tar"):
        assert stat.S_IMODE((copy / RUN_DIR / name).stat().st_mode) == 0o640
    saved = torch.load(copy / RUN_DIR / "checkpoint.pth.tar", weights_only=True)["recipe"]
    assert (saved["bs"], saved["lr"], saved["seed"]) == (16, 0.02, 5)  # the new recipe is the record now


def test_recipe_of_reads_namespace_flags_of_earlier_files():
    from hrnet_cls.checkpoints import recipe_of

    ckpt = {"args": argparse.Namespace(bs=64, lr=None, lr_schedule="port"), "seed": 2, "world_size": 8}
    assert recipe_of(ckpt) == {"bs": 64, "lr_schedule": "port", "seed": 2, "dn": 8}


# ------------------------------------------------------------------ bad input: one line from train.py
@pytest.mark.e2e
def test_bad_inputs_end_with_one_line(demo, cli, call, tmp_path):
    import re

    data, _ = demo
    tiny = (os.path.dirname(os.path.dirname(__file__)) + "/experiments/demo/cls_hrnet_demo_tiny.yaml")
    typo = tmp_path / "typo.yaml"
    typo.write_text(open(tiny).read().replace("  WD: ", "  WEIGHT_DECAY: "))
    empty = tmp_path / "empty"
    shutil.copytree(data, empty)
    (empty / "train" / "n99999999").mkdir()
    foreign = tmp_path / "foreign"
    shutil.copytree(data, foreign)
    os.rename(foreign / "val" / "n90000000", foreign / "val" / "n00000001")
    cases = [
        ([data, "--cfg=w17"], r"Error: --cfg w17: no such config file"),
        ([data, f"--cfg={typo}"], r"Error: config .*typo.yaml: unknown key TRAIN.WEIGHT_DECAY"),
        ([empty, "--cfg=demo_tiny"], r"Error: class folder .*train/n99999999 has no images"),
        ([foreign, "--cfg=demo_tiny"], r"Error: val class 'n00000001' .*has no folder in"),
        ([tmp_path / "nowhere", "--cfg=demo_tiny"], r"Error: data_path not found"),
    ]
    for argv, pattern in cases:
        rc, _, err = call(cli["train"].main, [*argv, "--device=cpu", "--cache_images=off",
                                              f"--modelDir={tmp_path / 'out'}", "--fresh"])
        assert rc == 1 and len(err) == 1 and re.match(pattern, err[0]), (argv, err)

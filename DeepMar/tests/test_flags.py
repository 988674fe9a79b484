"""Numeric flags are checked when parsed (one line naming the flag and the range, exit 1,
nothing read or written); resume rules: nothing to resume -> from scratch, recipe changes
refused unless allowed, stale checkpoint temps removed at start, checkpoint modes follow the umask."""
import os
import stat

import pytest
import torch

from .conftest import load_cli

train = load_cli("train")
evaluate = load_cli("eval")
export = load_cli("export")

TRAIN_BAD = [
    ("--batch_size=0", "--batch_size", "an integer >= 1, got 0"),
    ("--batch_size=-4", "--batch_size", "an integer >= 1, got -4"),
    ("--batch_size=abc", "--batch_size", "an integer >= 1, got 'abc'"),
    ("--total_epochs=0", "--total_epochs", "an integer >= 1, got 0"),
    ("--max_steps=-2", "--max_steps", "an integer >= 1, got -2"),
    ("--workers=-1", "--workers", "an integer >= 0, got -1"),
    ("--new_params_lr=-1", "--new_params_lr", "a number > 0, got -1"),
    ("--new_params_lr=nan", "--new_params_lr", "a number > 0, got nan"),
    ("--finetuned_params_lr=-0.5", "--finetuned_params_lr", "a number >= 0, got -0.5"),
    ("--steps_per_log=0", "--steps_per_log", "an integer >= 1, got 0"),
    ("--epochs_per_val=0", "--epochs_per_val", "an integer >= 1, got 0"),
    ("--epochs_per_save=0", "--epochs_per_save", "an integer >= 1, got 0"),
    ("--eval_batch_size=0", "--eval_batch_size", "an integer >= 1, got 0"),
    ("--resize=(0,64)", "--resize", "integers in [1, 4096], got 0 in '(0,64)'"),
    ("--resize=(64,64,3)", "--resize", "1 or 2 integers, got '(64,64,3)'"),
    ("--staircase_decay_at_epochs=(0,)", "--staircase_decay_at_epochs", "integers >= 1, got 0 in '(0,)'"),
    ("--staircase_decay_multiple_factor=0", "--staircase_decay_multiple_factor", "a number > 0, got 0"),
    ("--sgd_momentum=1.5", "--sgd_momentum", "a number in [0, 1], got 1.5"),
    ("--sgd_weight_decay=-1", "--sgd_weight_decay", "a number >= 0, got -1"),
    ("--drop_pool5_rate=2", "--drop_pool5_rate", "a number in [0, 1], got 2"),
    ("--partition_idx=5", "--partition_idx", "an integer in [0, 4], got 5"),
    ("--num_att=0", "--num_att", "an integer >= 1, got 0"),
    ("--seed=-1", "--seed", "an integer in [0, 4294967295], got -1"),
    ("--npu=-1", "--npu", "an integer >= 0, got -1"),
    ("--device_id=-1", "--device_id", "an integer >= 0, got -1"),
    ("--fps_warmup_steps=-1", "--fps_warmup_steps", "an integer >= 0, got -1"),
    ("--run=-1", "--run", "an integer >= 0, got -1"),
    ("--loss_scale=abc", "--loss_scale/--loss-scale", "'dynamic', -1 or a number > 0, got 'abc'"),
    ("--loss_scale=0", "--loss_scale/--loss-scale", "'dynamic', -1 or a number > 0, got '0'"),
    ("--device_list=a,b", "--device_list", "device indices >= 0 like 0,1,2,3, got 'a,b'"),
    ("--set_seed=maybe", "--set_seed", "True/False or 1/0, got 'maybe'"),
]


def parse_error(capsys, main, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 1
    return capsys.readouterr().err


@pytest.mark.parametrize("flag,name,expected", TRAIN_BAD, ids=[t[0] for t in TRAIN_BAD])
def test_train_flag_out_of_range_is_one_line(flag, name, expected, tmp_path, capsys):
    err = parse_error(capsys, train.main, [f"--save_dir={tmp_path}/nodata", f"--exp_dir={tmp_path}/exp", flag])
    assert err == f"Error: argument {name}: expected {expected}\n"
    assert os.listdir(tmp_path) == []  # nothing read or written


EVAL_BAD = [("--batch_size=0", "--batch_size/--eval_batch_size", "an integer >= 1, got 0"),
            ("--workers=-1", "--workers", "an integer >= 0, got -1"),
            ("--partition_idx=9", "--partition_idx", "an integer in [0, 4], got 9"),
            ("--resize=(0,1)", "--resize", "integers in [1, 4096], got 0 in '(0,1)'"),
            ("--npu=-1", "--npu", "an integer >= 0, got -1"),
            ("--loss_scale=x", "--loss_scale/--loss-scale", "'dynamic', -1 or a number > 0, got 'x'")]
EXPORT_BAD = [("--batch_size=0", "--batch_size", "expected an integer >= 1, got 0"),
              ("--opset=99", "--opset", "expected an integer in [9, 20], got 99"),
              ("--tolerance=-1", "--tolerance", "expected a number >= 0, got -1"),
              ("--resize=abc", "--resize", "expected integers like (256,128), got 'abc'")]


@pytest.mark.parametrize("flag,name,expected", EVAL_BAD, ids=[t[0] for t in EVAL_BAD])
def test_eval_flag_out_of_range_is_one_line(flag, name, expected, tmp_path, capsys):
    err = parse_error(capsys, evaluate.main, [f"--save_dir={tmp_path}", f"--pth_path={tmp_path}/x.pth", flag])
    assert err == f"Error: argument {name}: expected {expected}\n"


@pytest.mark.parametrize("flag,name,expected", EXPORT_BAD, ids=[t[0] for t in EXPORT_BAD])
def test_export_flag_out_of_range_is_one_line(flag, name, expected, tmp_path, capsys):
    err = parse_error(capsys, export.main, [f"--pth_path={tmp_path}/x.pth", f"--output={tmp_path}/x.onnx", flag])
    assert err == f"Error: argument {name}: {expected}\n"
    assert os.listdir(tmp_path) == []


def test_global_batch_must_split_over_the_ranks(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")  # as torchrun sets it; checked before any process group
    err = parse_error(capsys, train.main, [f"--save_dir={tmp_path}", "--batch_size=32"])
    assert err == "Error: --batch_size 32 is not divisible by the 3 processes of the job (it is the global batch, " \
        "split evenly over the ranks)\n"
    err = parse_error(capsys, evaluate.main, [f"--save_dir={tmp_path}", f"--pth_path={tmp_path}/x", "--batch_size=32"])
    assert "--batch_size 32 is not divisible by the 3 processes" in err


def test_multiprocessing_distributed_needs_torchrun(tmp_path, capsys):
    err = parse_error(capsys, train.main, [f"--save_dir={tmp_path}", "--multiprocessing_distributed"])
    assert err.startswith("Error: --multiprocessing_distributed needs a torchrun launch: bash test/train_full_8p.sh")


def test_tensorboard_without_the_package_is_one_line_up_front(tmp_path, capsys):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.fail("this test expects an environment without the optional tensorboard package")
    exp = tmp_path / "exp"
    # the data folder does not exist either: the tensorboard line comes first, before the data is read
    err = parse_error(capsys, train.main, [f"--save_dir={tmp_path}/peta", f"--exp_dir={exp}",
                                           f"--tensorboard={tmp_path}/tb"]).strip()
    assert err == ("Error: --tensorboard needs the tensorboard package, which is not installed (pip install "
                   "tensorboard), or leave the flag out")
    assert not (tmp_path / "tb").exists() and not (exp / "model" / "metrics.jsonl").exists()


@pytest.mark.e2e
def test_resume_rules_temps_and_modes(small_data, tmp_path, capsys):
    exp = tmp_path / "exp"
    model_dir = exp / "model"
    model_dir.mkdir(parents=True)
    # temps of a crashed checkpoint write: a dead pid (above any pid_max) and the pid-less older form
    stale = [model_dir / ".tmp_4999999_checkpoint.path.tar", model_dir / ".tmp_k3j4checkpoint.path.tar"]
    for p in stale:
        p.write_bytes(b"half a checkpoint")
    args = [f"--save_dir={small_data}", f"--exp_dir={exp}", "--arch=resnet50_tiny", "--resize=(64,64)",
            "--workers=0", "--batch_size=32", "--total_epochs=1", "--max_steps=1", "--seed=3", "--eval_batch_size=80"]
    old_mask = os.umask(0o027)
    try:
        # a crash in epoch 1 left no checkpoint: a bare --resume starts from scratch and says so
        train.main(args + ["--resume"])
    finally:
        os.umask(old_mask)
    out = capsys.readouterr()
    ckpt = model_dir / "checkpoint.path.tar"
    assert f"--resume: nothing to resume from yet ({ckpt} does not exist): starting from scratch" in out.out
    assert "removed 2 stale checkpoint temp file(s)" in out.err
    assert not any(p.exists() for p in stale)
    for path in (ckpt, model_dir / "ckpt_epoch1.pth"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0666 & ~umask, like any other file
        state = torch.load(path, weights_only=True)  # plain data: no allowlist needed
    assert state["deepmar_args"]["batch_size"] == 32 and state["ep"] == 1 and state["seed"] == 3
    rng = torch.load(ckpt, weights_only=True)["rng"]
    assert torch.is_tensor(rng["torch"]) and torch.is_tensor(rng["numpy"]["keys"])

    # a resume with another recipe is refused, naming the way out ...
    err = parse_error(capsys, train.main, args + ["--resume", "--total_epochs=2", "--max_steps=2", "--batch_size=16",
                                                  "--new_params_lr=0.01"])
    assert err == f"Error: resume from {ckpt} with a different recipe (--batch_size 32 -> 16, --new_params_lr 0.001 " \
        "-> 0.01): rerun with the checkpoint's flags, use a new output folder, or pass --allow_recipe_change to " \
        "continue anyway\n"
    # ... the same input size written differently is no change; with the override it goes on, loudly
    train.main(args + ["--resume", "--total_epochs=2", "--max_steps=2", "--seed=3", "--resize=( 64, 64 )",
                       "--new_params_lr=0.01", "--allow_recipe_change"])
    out = capsys.readouterr().out
    assert f"[Warning] resuming {ckpt} with a changed recipe: --new_params_lr 0.001 -> 0.01 (--allow_recipe_change)" \
        in out and f"resumed from {ckpt} at the end of epoch 1" in out
    # a run that has reached its end has nothing to resume
    err = parse_error(capsys, train.main, args + ["--resume", "--total_epochs=2", "--max_steps=2",
                                                  "--allow_recipe_change"])
    assert "nothing to train" in err and err.count("\n") == 1

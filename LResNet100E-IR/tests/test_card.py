"""Issue 11: the model card's commands, typed as written (demo data and tiny sizes appended), run to
their end or end with one line that says what to do. The scripts' full runs are in test_scripts.py;
here the cheap ones: requirements, work_space/, the bcolz layout, --distributed 1, the card's flags."""
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from arcface_helpers import MODEL_DIR, TINY, call_main, load_module, one_error, one_error_line, run

from common.testing import read_summary


def packages(path):
    return sorted(line.split("#")[0].strip() for line in Path(path).read_text().splitlines()
                  if line.split("#")[0].strip())


def test_requirements_txt_is_the_tested_line():
    """`pip install -r requirements.txt` installs the same pins as 2.14.1_requirements.txt (tox's)."""
    assert packages(MODEL_DIR / "requirements.txt") == packages(MODEL_DIR / "2.14.1_requirements.txt")
    assert "torch==2.14.1" in packages(MODEL_DIR / "requirements.txt")
    readme = (MODEL_DIR / "README.md").read_text()
    install = readme.split("## Install", 1)[1].split("\n## ", 1)[0]
    assert "1.5_requirements.txt" in install and "1.8_requirements.txt" in install and "requirements.txt" in install


@pytest.mark.e2e
def test_card_work_space_commands(tmp_path):
    """The card's `rm -rf ./work_space/* ; mkdir ./work_space/history ...` needs work_space/ in the repo
    (kept by a hidden .gitkeep, which the card's rm leaves). Run on a copy, not on the user's folder."""
    assert (MODEL_DIR / "work_space" / ".gitkeep").is_file()
    ignore = (MODEL_DIR / ".gitignore").read_text().splitlines()
    assert "work_space/*" in ignore and "!work_space/.gitkeep" in ignore  # outputs ignored, the folder kept
    shutil.copytree(MODEL_DIR / "work_space", tmp_path / "work_space", ignore=shutil.ignore_patterns("[!.]*"))
    (tmp_path / "work_space" / "old_run.txt").write_text("x")
    card = ("rm -rf ./work_space/* \nmkdir ./work_space/history && mkdir ./work_space/log && "
            "mkdir ./work_space/models && mkdir ./work_space/save")
    r = subprocess.run(["bash", "-c", card], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "work_space").iterdir()) == [".gitkeep", "history", "log",
                                                                          "models", "save"]
    # train.py's default checkpoint folder is that work_space/models (as the card says)
    args = load_module("train.py").get_args_parser().parse_args([])
    assert Path(args.save_dir) == MODEL_DIR / "work_space" / "models"


def _bcolz_layout(demo, root):
    """The card's tree: imgs/ plus TreB1eN's bcolz caches lfw/, agedb_30/, cfp_fp/ (no .bin files)."""
    root.mkdir()
    (root / "imgs").symlink_to(demo / "imgs")
    for name in ("lfw", "agedb_30", "cfp_fp"):
        for sub in ("meta", "data"):
            (root / name / sub).mkdir(parents=True)
        (root / name / "meta" / "sizes").write_text('{"shape": [400, 3, 32, 32], "nbytes": 4915200}')
        (root / name / "data" / "__0.blp").write_bytes(b"blpk" + bytes(12))
        np.save(root / f"{name}_list.npy", np.zeros(200, bool))
    return root


@pytest.mark.e2e
def test_card_bcolz_layout_stops_up_front(demo, tmp_path, capsys):
    root = _bcolz_layout(demo, tmp_path / "faces_emore")
    r = run(["bash", "test/train_full_1p.sh", f"--data_path={root}", "--batch_size=32", "--epochs=1",
             "--workers=0", "--device_id=15", *TINY])
    out = MODEL_DIR / "test/output/15"
    try:
        line = one_error_line(r)
        assert f"{root}/lfw/ is TreB1eN's bcolz cache" in line and "copy lfw.bin" in line
        assert "--eval_data_mode=none" in line
        assert not (out / "LResNet100E_bs32_1p_acc.log").exists() and not (out / "models_full_1p").exists()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    code, _, err = call_main("eval.py", [f"--data_path={root}/lfw", f"--pth_path={tmp_path}/x.pth"], capsys)
    assert f"{root}/lfw/ is TreB1eN's bcolz cache" in one_error(code, err)
    code, _, err = call_main("eval.py", [f"--data_path={root}", f"--pth_path={tmp_path}/x.pth"], capsys)
    assert f"needs {root}/lfw.bin" in one_error(code, err)
    # the explicit way out: no per-epoch check, an empty accuracy the user asked for
    code, out_text, err = call_main("train.py", [f"--data_path={root}", "--eval_data_mode=none", "--batch-size=32",
                                                 "--max_steps=1", "--num_workers=0", f"--save_dir={tmp_path}/m",
                                                 *TINY], capsys)
    assert code == 0, err
    assert "per-epoch check: none (--eval_data_mode none)" in out_text and "lfw_accuracy" not in out_text


def test_card_distributed_without_torchrun(capsys, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK_SIZE", raising=False)
    for program, script in (("train.py", "train_full_8p.sh"), ("eval.py", "train_eval_8p.sh")):
        argv = ["--distributed", "1"] + (["--data_path=x.bin", "--pth_path=x.pth"] if program == "eval.py" else [])
        code, _, err = call_main(program, argv, capsys)
        line = one_error(code, err)
        assert f"bash test/{script}" in line and f"torchrun --nproc_per_node=N {program}" in line


def test_card_flags_parse():
    """The card's parameter list (dash spellings included) with the port scripts' values."""
    args = load_module("train.py").get_args_parser().parse_args(
        ["--net_mode", "ir_se", "--net_depth", "100", "--data_mode", "emore", "--data_path", "./data/faces_emore/",
         "--max_iter", "-1", "--start_epoch", "0", "--epochs", "20", "--batch-size", "2560", "--lr", "0.01",
         "--num_workers", "8", "--device_type", "npu", "--device_id", "0", "--use_amp", "1", "--loss-scale",
         "dynamic", "--opt-level", "O2", "--distributed", "1"])
    assert (args.batch_size, args.lr, args.loss_scale, args.opt_level, args.distributed, args.max_iter) == \
        (2560, 0.01, "dynamic", "O2", 1, -1)
    defaults = load_module("train.py").get_args_parser().parse_args([])
    assert defaults.lr == 1e-3  # the port's default; the card's text says 0.01 (README flag table)


@pytest.mark.e2e
def test_card_performance_8p_on_one_device(demo):
    """`bash ./test/train_performance_8p.sh --data_path=...` with RANK_SIZE=1: one process, --distributed 1."""
    r = run(["bash", "test/train_performance_8p.sh", f"--data_path={demo}", "--batch_size=16", "--max_steps=7",
             "--workers=0", "--device_id=16", *TINY], RANK_SIZE="1")
    out = MODEL_DIR / "test/output/16"
    try:
        assert r.returncode == 0, r.stderr + r.stdout
        s, _ = read_summary(out / "LResNet100E_bs16_1p_perf.log")
        assert (s["RankSize"], s["GlobalBatchSize"]) == ("1", "16") and float(s["ActualFPS"]) > 0
        assert (out / "models_perf_8p").is_dir()
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_readme_card_commands_table():
    readme = (MODEL_DIR / "README.md").read_text()
    table = readme.split("## Card commands", 1)[1].split("\n## ", 1)[0]
    for command in ("pip install -r 1.5_requirements.txt", "pip install -r 1.8_requirements.txt",
                    "rm -rf ./work_space/*", "mkdir ./work_space/history", "bash ./test/train_full_1p.sh",
                    "bash ./test/train_performance_1p.sh", "bash ./test/train_full_8p.sh",
                    "bash ./test/train_performance_8p.sh", "bash ./test/train_eval_8p.sh"):
        assert command in table, command
    assert re.search(r"\| *`--lr` *\|.*0\.01.*\|.*1e-3", readme.replace("0.001", "1e-3"))

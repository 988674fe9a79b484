"""The model card's commands (Ascend DeepMar card, typed as written) and what the README says of them."""
import re
import subprocess

import pytest

from common import testing

from .conftest import MODEL_DIR, load_cli, run_script

README = (MODEL_DIR / "README.md").read_text()
# every command line of the card, as written there
CARD_COMMANDS = [
    "pip install -r 1.5_requirements.txt",
    "pip install -r 1.8_requirements.txt",
    "cd /${模型文件夹名称}",
    "bash ./test/train_full_1p.sh --data_path=./dataset/peta/",
    "bash ./test/train_performance_1p.sh --data_path=./dataset/peta/  单卡性能",
    "bash ./test/train_full_8p.sh --data_path=./dataset/peta/",
    "bash ./test/train_performance_8p.sh --data_path=./dataset/peta/",
]
# the training flags the card lists, with values of the right kind
CARD_FLAGS = ["--save_dir=/data/peta", "--addr=127.0.0.1", "--npu=0", "--workers=2", "--total_epochs=150",
              "--batch_size=256", "--new_params_lr=0.001", "--finetuned_params_lr=0.001", "--steps_per_log=20",
              "--multiprocessing_distributed", "--device_list=0,1,2,3,4,5,6,7", "--amp", "--loss_scale=512",
              "--opt_level=O2"]


def requirement_lines(name):
    return sorted(line.strip() for line in (MODEL_DIR / name).read_text().splitlines()
                  if line.strip() and not line.startswith("#"))


def test_requirements_txt_is_the_tested_line():
    assert requirement_lines("requirements.txt") == requirement_lines("2.14.1_requirements.txt")
    assert "torch==2.14.1" in requirement_lines("requirements.txt")
    assert not (MODEL_DIR / "1.5_requirements.txt").exists() and not (MODEL_DIR / "1.8_requirements.txt").exists()
    install = README[README.index("## Install"):README.index("## Quick start")]
    assert "pip install -r requirements.txt" in install and "1.5_requirements.txt" in install
    assert "no wheels for Python 3.11" in install


def test_readme_lists_every_card_command():
    start = README.index("## Card commands")
    table = README[start:README.index("\n## ", start)]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    listed = [re.match(r"\| `([^`]*)`", row).group(1) for row in rows]
    assert listed == CARD_COMMANDS


@pytest.mark.e2e
def test_card_training_lines_without_the_data_are_one_line(tmp_path):
    """As written, from a folder with no ./dataset/peta/: one line naming the missing folder."""
    for script in ("train_full_1p.sh", "train_performance_1p.sh", "train_full_8p.sh", "train_performance_8p.sh"):
        r = subprocess.run(["bash", str(MODEL_DIR / "test" / script), "--data_path=./dataset/peta/"], cwd=tmp_path,
                           capture_output=True, text=True, env=testing.script_env(), timeout=120)
        assert (r.returncode, r.stderr) == (1, f"[Error] data_path does not exist: {tmp_path}/dataset/peta\n"), script


@pytest.mark.e2e
def test_card_performance_line_typed_as_written(small_data):
    """The card's perf line has its comment without '#': the word reaches train.py, which says what to do."""
    r = run_script("train_performance_1p.sh", f"--data_path={small_data}", "单卡性能", "--device_id=45")
    assert r.returncode == 1
    assert r.stderr == "Error: unexpected word '单卡性能': flags are --key=value (text after a command is a comment " \
        "only behind a '#')\n"


def test_card_training_flags_are_accepted():
    args = load_cli("train").get_parser().parse_args(CARD_FLAGS)
    assert (args.save_dir, args.npu, args.total_epochs, args.batch_size, args.steps_per_log) == \
        ("/data/peta", 0, 150, 256, 20)
    assert args.multiprocessing_distributed and args.amp and args.loss_scale == "512" and args.opt_level == "O2"


def test_scripts_never_share_a_checkpoint_folder():
    exp_dirs = {}
    for script in ("train_full_1p.sh", "train_performance_1p.sh", "train_full_8p.sh", "train_performance_8p.sh"):
        text = (MODEL_DIR / "test" / script).read_text()
        exp_dirs[script] = re.findall(r'--exp_dir="test/output/\$ASCEND_DEVICE_ID/([\w]+)"', text)
        assert len(exp_dirs[script]) == 1, script
        assert "batch_scope=global" in text and "GLOBAL batch" in text
    assert len({d[0] for d in exp_dirs.values()}) == 4
    # the eval scripts' default checkpoint is that of the full script of the same width
    for script, full in (("train_eval_1p.sh", "train_full_1p.sh"), ("train_eval_8p.sh", "train_full_8p.sh")):
        text = (MODEL_DIR / "test" / script).read_text()
        assert f'$ZOO_OUT/{exp_dirs[full][0]}/model/checkpoint.path.tar' in text
        assert "batch_scope=global" in text and "GLOBAL" in text

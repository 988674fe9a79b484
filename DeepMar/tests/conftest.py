import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MODEL_DIR = Path(__file__).resolve().parents[1]
ROOT = MODEL_DIR.parent
for p in (str(ROOT), str(MODEL_DIR)):
    if p not in sys.path:
        sys.path.insert(0, p)

from common import testing

NET = "DeepMar_ID0096_for_PyTorch"
OUTPUT = MODEL_DIR / "test" / "output"
# tiny settings: the real sizes are checked by key lists and parameter counts
TINY = ["--arch=resnet50_tiny", "--resize=(64,64)", "--workers=1", "--eval_batch_size=64"]
# the RANK_SIZE=2 recipe of the distributed tests (small demo data: 3 steps per epoch)
SMALL_2P = ["--batch_size=32", "--epochs=3", "--workers=0", "--arch=resnet50_tiny", "--resize=(64,64)", "--seed=3",
            "--epochs_per_val=1", "--new_params_lr=0.01", "--finetuned_params_lr=0.01"]
REF_DEVICE = 40


def run_script(name, *args, **env):
    return testing.run_script(MODEL_DIR, name, *args, **env)


def fresh_output(device_id):
    """An empty test/output/<id>, so a test never reads an earlier session's files."""
    out = OUTPUT / str(device_id)
    shutil.rmtree(out, ignore_errors=True)
    return out


def load_cli(name):
    """train.py / eval.py / export.py / tools/*.py as a module, to call main(argv) in-process."""
    path = MODEL_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location("deepmar_cli_" + name.replace("/", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_data(out, n):
    r = subprocess.run([sys.executable, str(MODEL_DIR / "tools" / "make_demo_data.py"), str(out / "peta"),
                        "--num_images", str(n)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return Path(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    """1500 images: enough for the 1p run to learn clearly above chance."""
    return make_data(tmp_path_factory.mktemp("peta_demo"), 1500)


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """200 images (trainval 120, test 80): the cheap data of the distributed and load-path tests."""
    return make_data(tmp_path_factory.mktemp("peta_small"), 200)


@pytest.fixture(scope="session")
def ref_2p(small_data):
    """ONE uninterrupted RANK_SIZE=2 run of train_full_8p.sh, used by the 8p accuracy, the
    --max_restarts and the two-node tests (same seed and recipe)."""
    out = fresh_output(REF_DEVICE)
    r = run_script("train_full_8p.sh", f"--data_path={small_data}", f"--device_id={REF_DEVICE}", *SMALL_2P,
                   RANK_SIZE="2")
    assert r.returncode == 0, r.stderr
    summary, keys = testing.read_summary(out / f"{NET}_bs32_2p_acc.log")
    return {"out": out, "stdout": r.stdout, "summary": summary, "keys": keys,
            "ckpt": out / "exp_8p" / "model" / "ckpt_epoch3.pth", "log": out / f"train_{REF_DEVICE}.log"}


def final_weights(ckpt):
    import torch

    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dicts"][0]


# the Ascend scripts' own extraction lines (spec DeepMar.md section 7), run on our logs
ASCEND_FPS_1P = "grep FPS $log | grep -v loss | awk '{print $NF}' | awk '{sum+=$1} END {print  sum/NR}'"
ASCEND_FPS_8P = "grep FPS $log | grep npu | awk '{print $NF}' | awk '{sum+=$1} END {print  sum/NR}'"
ASCEND_ACC = ("grep -a 'Acc:' $log | awk 'END {print}' | awk -F \"Acc:\" '{print $NF}' | awk -F \" \" '{print $1}' "
              "| tr -d ,")
ASCEND_LOSS = "grep Step $log | awk -F 'loss:' '{print $2}'"
ASCEND_COMPILE = ("grep FPS $log | head -2 | awk -F \"batchtime:\" '{print $2}' | awk '{sum+=$1} END {print\"\",sum}' "
                  "| sed s/[[:space:]]//g")


def check_ascend_lines(log, summary, loss_file=None, fps=ASCEND_FPS_1P, acc_key="TrainAccuracy", batch=None):
    """The Ascend CI's grep/awk lines on `log` read the numbers of our summary."""
    assert abs(float(testing.ascend_extract(fps, log)) - float(summary["ActualFPS"])) <= 1e-3 * float(
        summary["ActualFPS"])
    assert testing.ascend_extract(ASCEND_ACC, log) == summary[acc_key]
    if loss_file is not None:
        losses = testing.ascend_extract(ASCEND_LOSS, log).split()
        assert losses and losses == Path(loss_file).read_text().split() and losses[-1] == summary["ActualLoss"]
    if batch is not None:
        ascend_fps = float(testing.ascend_extract(fps, log))
        assert abs(float(summary["TrainingTime"]) - float(f"{batch * 1000 / ascend_fps:.2f}")) <= 0.011

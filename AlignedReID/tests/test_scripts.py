"""End to end: the real test/*.sh scripts, train.py, eval.py and export.py on demo data."""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

MODEL_DIR = Path(__file__).resolve().parents[1]
PY = sys.executable
TINY = ["--arch=tiny", "--resize_h_w=128,64", "--workers=0"]
METRIC = re.compile(r"^\[mAP: ([0-9.]+)%\], \[cmc1: ([0-9.]+)%\].*$", re.M)


def env(device_id, **extra):
    e = dict(os.environ, ASCEND_DEVICE_ID=str(device_id), OMP_NUM_THREADS="2", **extra)
    e["PATH"] = str(Path(PY).parent) + os.pathsep + e.get("PATH", "")
    return e


def run_script(name, device_id, *args, **extra_env):
    out_dir = MODEL_DIR / "test" / "output" / str(device_id)
    shutil.rmtree(out_dir, ignore_errors=True)
    p = subprocess.run(["bash", str(MODEL_DIR / "test" / name), *args], cwd=MODEL_DIR, env=env(device_id, **extra_env),
                       capture_output=True, text=True, timeout=600)
    return p, out_dir


def summary(out_dir, case):
    rows = (out_dir / f"{case}.log").read_text().splitlines()
    return dict(r.split(" = ", 1) if " = " in r else (r.rstrip(" ="), "") for r in rows)


def run_py(script, *args, device_id=99):
    return subprocess.run([PY, str(MODEL_DIR / script), *args], cwd=MODEL_DIR, env=env(device_id),
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def full_run(demo_data):
    p, out = run_script("train_full_1p.sh", 91, f"--data_path={demo_data}", "--batch_size=32", "--epochs=4",
                        "--base_lr=1e-3", "--seed=0", "--log_steps=0", *TINY)
    assert p.returncode == 0, p.stderr + p.stdout
    yield p, out
    shutil.rmtree(out, ignore_errors=True)


def test_full_1p_learns_and_writes_summary(full_run):
    p, out = full_run
    s = summary(out, "AlignedReID_for_PyTorch_bs32_1p_acc")
    assert list(s)[:5] == ["Network", "RankSize", "BatchSize", "DeviceType", "CaseName"]
    assert s["Network"] == "AlignedReID_for_PyTorch" and s["RankSize"] == "1" and s["BatchSize"] == "32"
    fps = float(s["ActualFPS"])
    assert fps > 0 and float(s["TrainingTime"]) == pytest.approx(32 * 1000 / fps, abs=0.01)
    log = (out / "train_91.log").read_text()
    losses = [float(x) for x in re.findall(r"^Ep \d+, .*loss ([0-9.]+)$", log, re.M)]
    assert len(losses) == 4 and float(s["ActualLoss"]) == losses[-1]
    assert (out / "train_AlignedReID_for_PyTorch_bs32_1p_acc_loss.txt").read_text().split() == \
        [f"{v:g}" for v in losses]
    assert losses[-1] < 0.5 * losses[0]
    # two metric lines (global, then re-ranked); the summary takes the plain global rank-1
    metrics = METRIC.findall(log)
    assert len(metrics) == 2 and float(s["TrainAccuracy"]) == float(metrics[0][1])
    # chance: a query's 2-4 true matches among ~125 valid gallery images gives rank-1 of a few %
    assert float(metrics[0][1]) > 50 and float(metrics[0][0]) > 40
    assert "Final Train Accuracy : " + s["TrainAccuracy"] in p.stdout
    ck = torch.load(out / "exp" / "ckpt.pth", weights_only=False)
    assert ck["ep"] == 4 and len(ck["state_dicts"]) == 2 and "local_conv.weight" in ck["state_dicts"][0]


@pytest.mark.parametrize("script,rank_size", [("train_eval_1p.sh", "1"), ("train_eval_8p.sh", "2")])
def test_eval_scripts_reproduce_the_training_metrics(full_run, script, rank_size):
    _, train_out = full_run
    trained = METRIC.findall((train_out / "train_91.log").read_text())
    ckpt = train_out / "exp" / ("ckpt.pth" if rank_size == "1" else "")  # file or its folder
    data = Path((train_out / "train_91.log").read_text().split("--data_path=")[1].split()[0])
    p, out = run_script(script, 92, f"--data_path={data}", f"--pth_path={ckpt}", "--workers=0",
                        RANK_SIZE=rank_size)
    assert p.returncode == 0, p.stderr + p.stdout
    evaluated = METRIC.findall((out / "eval_92.log").read_text())
    assert evaluated == trained
    s = summary(out, f"AlignedReID_for_PyTorch_bs32_{rank_size}p_eval")
    assert float(s["EvalAccuracy"]) == float(trained[0][1]) and float(s["ActualFPS"]) > 0
    shutil.rmtree(out, ignore_errors=True)


def test_resume_mid_epoch_ends_like_the_uninterrupted_run(full_run, tmp_path):
    _, out = full_run
    log = (out / "train_91.log").read_text()
    cmd = shlex.split(log.splitlines()[0][2:])[2:]  # '+ python3 train.py ARGS'
    cmd = [a for a in cmd if not a.startswith("--exp_dir=")] + [f"--exp_dir={tmp_path}"]
    first = run_py("train.py", *cmd, "--max_steps=10")  # 2.5 epochs of 4 steps
    assert first.returncode == 0, first.stderr
    assert "final test skipped" in first.stdout and not METRIC.findall(first.stdout)
    second = run_py("train.py", *cmd, "--resume")
    assert second.returncode == 0, second.stderr
    assert "2 epoch(s) done, 2 step(s) into epoch 3" in second.stdout
    assert METRIC.findall(second.stdout) == METRIC.findall(log)


def test_export_onnx_parity(full_run, tmp_path):
    _, out = full_run
    p = run_py("export.py", f"--pth_path={out / 'exp' / 'ckpt.pth'}", f"--output={tmp_path / 'm.onnx'}")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "m.onnx").stat().st_size > 0 and "max abs diff" in p.stdout


def test_performance_1p(demo_data):
    p, out = run_script("train_performance_1p.sh", 93, f"--data_path={demo_data}", "--batch_size=32",
                        "--max_steps=3", *TINY)
    assert p.returncode == 0, p.stderr + p.stdout
    s = summary(out, "AlignedReID_for_PyTorch_bs32_1p_perf")
    assert float(s["ActualFPS"]) > 0 and s["TrainAccuracy"] == "" and float(s["ActualLoss"]) > 0
    assert "precision autocast bfloat16" in (out / "train_93.log").read_text()
    shutil.rmtree(out, ignore_errors=True)


def test_performance_8p_two_ranks(demo_data):
    p, out = run_script("train_performance_8p.sh", 94, f"--data_path={demo_data}", "--ids_per_batch=8",
                        "--max_steps=3", *TINY, RANK_SIZE="2")
    assert p.returncode == 0, p.stderr + p.stdout
    s = summary(out, "AlignedReID_for_PyTorch_bs32_2p_perf")
    assert s["RankSize"] == "2" and float(s["ActualFPS"]) > 0
    log = (out / "train_94.log").read_text()
    assert "2 rank(s) x 8 ids x 4 images" in log and len(re.findall(r"^Ep 1,", log, re.M)) == 1
    shutil.rmtree(out, ignore_errors=True)


def test_mutual_learning_local_and_id_losses(demo_data, tmp_path):
    p = run_py("train.py", f"--data_path={demo_data}", "--batch_size=32", "--total_epochs=1", "--num_models=2",
               "-llw=1", "--local_dist_own_hard_sample=true", "-idlw=1", "-ldmlw=1", "--re_rank=false",
               f"--exp_dir={tmp_path}", "--seed=0", *TINY)
    assert p.returncode == 0, p.stderr
    ep = [line for line in p.stdout.splitlines() if line.startswith("Ep 1")]
    assert len(ep) == 2 and all(k in ep[0] for k in ("lL", "idL", "pmL", "gdmL", "ldmL", "FPS"))
    # per model: global, local and global+local distances
    assert len(METRIC.findall(p.stdout)) == 6 and "Computing scores for Global+Local Distance" in p.stdout
    assert len(torch.load(tmp_path / "ckpt.pth", weights_only=False)["state_dicts"]) == 4


def _one_error_line(p, *needles):
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), p.stderr
    for n in needles:
        assert n in lines[0]


def test_bad_inputs_give_one_clear_line(demo_data, tmp_path):
    _one_error_line(run_py("train.py", f"--data_path={tmp_path}", *TINY), "partitions.pkl not found")
    broken = tmp_path / "broken"
    shutil.copytree(demo_data, broken)
    victim = sorted(os.listdir(broken / "images"))[-1]
    os.remove(broken / "images" / victim)
    _one_error_line(run_py("train.py", f"--data_path={broken}", *TINY), "missing from", victim)
    other = tmp_path / "resnet18.pth"
    import torchvision

    torch.save(torchvision.models.resnet18().state_dict(), other)
    _one_error_line(run_py("eval.py", f"--data_path={demo_data}", f"--pth_path={other}"),
                    "not an AlignedReID checkpoint")
    wrong = tmp_path / "wrong_arch.pth"
    from aligned_reid.model import AlignedReID

    torch.save(AlignedReID(10, "tiny").state_dict(), wrong)
    _one_error_line(run_py("eval.py", f"--data_path={demo_data}", f"--pth_path={wrong}", "--arch=resnet18"),
                    "does not fit this model")


def test_make_demo_data_cli_prints_data_path_last(tmp_path):
    p = run_py("tools/make_demo_data.py", str(tmp_path / "d"), "--num_train_ids=4", "--num_test_ids=3")
    assert p.returncode == 0, p.stderr
    last = p.stdout.strip().splitlines()[-1]
    assert last == str(tmp_path / "d" / "market1501") and (Path(last) / "partitions.pkl").is_file()

"""End to end: the real test/*.sh scripts and train.py/eval.py on demo PETA (tiny settings)."""
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from common import testing
from common.metrics_file import read_rows

from .conftest import (
    ASCEND_COMPILE,
    ASCEND_FPS_8P,
    MODEL_DIR,
    NET,
    OUTPUT,
    TINY,
    check_ascend_lines,
    fresh_output,
    load_cli,
    run_script,
)

SUMMARY_KEYS = ["Network", "RankSize", "BatchSize", "GlobalBatchSize", "DeviceType", "CaseName", "ActualFPS",
                "TrainingTime", "ActualLoss", "E2ETrainingTime", "TrainAccuracy"]
# learning settings for the demo: lr 0.01 (the AZ 1p value) for a from-scratch tiny backbone
LEARN = ["--new_params_lr=0.01", "--finetuned_params_lr=0.01", "--seed=3"]


def last_acc(text):
    return re.findall(r"Acc: ([0-9.]+)", text)[-1]


@pytest.mark.e2e
def test_missing_data_path_is_rejected():
    r = run_script("train_full_1p.sh")
    assert r.returncode == 1 and r.stderr.strip() == '[Error] para "data_path" must be config'


@pytest.fixture(scope="module")
def perf_1p(small_data):
    fresh_output(7)
    r = run_script("train_performance_1p.sh", f"--data_path={small_data}", "--batch_size=16", "--max_steps=6",
                   "--device_id=7", *TINY)
    assert r.returncode == 0, r.stderr
    return r, OUTPUT / "7"


@pytest.mark.e2e
def test_performance_1p_writes_summary(perf_1p):
    r, out = perf_1p
    s, keys = testing.read_summary(out / f"{NET}_bs16_1p_perf.log")
    assert keys == SUMMARY_KEYS + ["CompileTime"]
    assert s["CaseName"] == f"{NET}_bs16_1p_perf" and s["RankSize"] == "1" and s["GlobalBatchSize"] == "16"
    fps = float(s["ActualFPS"])
    assert fps > 0 and abs(float(s["TrainingTime"]) - 16 * 1000 / fps) < 0.01 * 16 * 1000 / fps + 0.01
    assert float(s["ActualLoss"]) > 0 and s["TrainAccuracy"] == ""  # stopped before any evaluation
    lines = r.stdout.strip().splitlines()[-4:]
    assert lines[0] == "------------------ Final result ------------------"
    assert lines[1].startswith("Final Performance images/sec : ") and lines[3].startswith("E2E Training Duration sec")
    log = out / "train_7.log"
    text = log.read_text()
    assert len(re.findall(r"^.*, Step \d+/\d+ in Ep 1, .*loss:[0-9.]+$", text, re.M)) == 6
    # only step lines and FPS@all lines mention FPS (upstream CI greps)
    assert all("loss:" in line or "FPS@all" in line for line in text.splitlines() if "FPS" in line)
    # the Ascend perf_1p lines: FPS, loss file, CompileTime (batchtime of the first two step lines)
    check_ascend_lines(log, s, out / f"train_{NET}_bs16_1p_perf_loss.txt", acc_key="TrainAccuracy", batch=16)
    assert abs(float(testing.ascend_extract(ASCEND_COMPILE, log)) - float(s["CompileTime"])) < 1e-3
    # not a terminal: no progress-bar characters in the log the Ascend greps read
    assert not any(mark in text for mark in BAR_MARKS), [m for m in BAR_MARKS if m in text]
    # the run's metrics.jsonl, beside its checkpoints: one step row per logged step, then the epoch's row
    rows = read_rows(out / "exp_perf" / "model" / "metrics.jsonl")
    assert [r["step"] for r in rows if r["kind"] == "step"] == [1, 2, 3, 4, 5, 6]
    assert [(r["epoch"], r["step"]) for r in rows if r["kind"] == "epoch"] == [(1, 6)]
    assert rows[-1]["metrics"] == {}  # stopped by --max_steps before any evaluation
    assert f"{rows[-1]['images_per_sec']:.3f}" == re.search(r"\* FPS@all ([0-9.]+)", text).group(1)
    assert [f"{r['losses']['loss']:.4f}" for r in rows[:-1]] == re.findall(r"loss:([0-9.]+)$", text, re.M)


BAR_MARKS = ("\r", "\u2588", "it/s", "step/s", "s/step")


@pytest.mark.e2e
def test_progress_bar_on_a_terminal_only_and_two_runs_overlaid(perf_1p, small_data, tmp_path, monkeypatch):
    """The same tiny training under a pseudo-terminal (script(1)) draws tqdm's bar for its epoch;
    run at another learning rate, it overlays with the perf run in tools/plot_runs.py's pictures."""
    import shlex

    cmd = shlex.join(train_cmd(small_data, tmp_path / "tty", "--total_epochs=1", "--max_steps=2",
                               "--new_params_lr=0.001", "--finetuned_params_lr=0.001"))
    # script's pty has no size (0 columns: tqdm would draw nothing); give it one as a terminal has
    r = subprocess.run(["script", "-qec", f"stty cols 120 rows 40; {cmd}", "/dev/null"], capture_output=True,
                       timeout=600, env=testing.script_env())
    out = r.stdout.decode("utf-8", "replace")  # bytes: text mode would turn the bar's '\r' into '\n'
    assert r.returncode == 0, out[-2000:]
    # the bar as first drawn (before any step, so no timing involved), over the epoch's 2 steps
    assert re.search(r"\rEp 1/1: +0%\| +\| 0/2 \[", out), out[:2000]
    assert "\u2588" in out or "1/2" in out or "2/2" in out  # and redrawn as the steps go
    assert "Step 2/" in out  # the log lines are still printed, above the bar

    # issue 13.4: two runs, two learning rates, one picture of each kind with both (named)
    monkeypatch.syspath_prepend(str(MODEL_DIR.parent / "tools"))
    import matplotlib.figure
    import plot_runs

    legends = {}
    savefig = matplotlib.figure.Figure.savefig

    def recording_savefig(fig, path, *a, **k):
        legends[Path(path).name] = {t.get_text() for ax in fig.axes if ax.get_legend()
                                    for t in ax.get_legend().get_texts()}
        return savefig(fig, path, *a, **k)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", recording_savefig)
    runs = plot_runs.find_runs([f"lr0.01={perf_1p[1] / 'exp_perf'}", f"lr0.001={tmp_path / 'tty'}"])
    assert [(name, [r["lr"] for r in read_rows(f)][:2]) for name, f in runs] == [("lr0.01", [0.01, 0.01]),
                                                                                 ("lr0.001", [0.001, 0.001])]
    written = plot_runs.plot(runs, tmp_path / "curves")
    assert sorted(p.name for p in written) == ["loss.png", "lr.png", "metrics.png", "throughput.png"]
    assert all(p.stat().st_size > 0 for p in written)
    assert legends["loss.png"] == {"lr0.01 loss", "lr0.001 loss"} and legends["lr.png"] == {"lr0.01", "lr0.001"}
    assert legends["throughput.png"] == {"lr0.01", "lr0.001"}
    assert legends["metrics.png"] == {"lr0.001"}  # the perf run stops before any evaluation


BAD_SCRIPT_KEYS = [("--batch_size=0", "--batch_size=0: expected an integer >= 1"),
                   ("--batch_size=-4", "--batch_size=-4: expected an integer >= 1"),
                   ("--batch_size=abc", "--batch_size=abc: expected an integer >= 1"),
                   ("--epochs=0", "--epochs=0: expected an integer >= 1"),
                   ("--max_steps=-2", "--max_steps=-2: expected an integer >= 1")]
# the model's own flags pass through the script to train.py, which checks them when parsing
# (all of them: tests/test_flags.py, in-process)
BAD_TRAIN_FLAGS = [("--new_params_lr=-1", "Error: argument --new_params_lr: expected a number > 0, got -1")]


@pytest.mark.e2e
def test_bad_numbers_through_the_script_leave_the_last_run_untouched(perf_1p, small_data):
    _, out = perf_1p
    before = testing.digests(out)
    for flag, message in BAD_SCRIPT_KEYS:
        r = run_script("train_performance_1p.sh", f"--data_path={small_data}", "--device_id=7", flag)
        assert (r.returncode, r.stderr) == (1, f"[Error] {message}\n"), flag
        assert testing.digests(out) == before, flag  # refused before anything was written
    for flag, message in BAD_TRAIN_FLAGS:
        r = run_script("train_performance_1p.sh", f"--data_path={small_data}", "--device_id=7", flag)
        assert (r.returncode, r.stderr) == (1, message + "\n"), flag
        after = testing.digests(out)  # the good run's files as they were; the failure has its own log
        assert {k: after[k] for k in before} == before and set(after) - set(before) == {"train_7.failed.log"}
        assert f"Error: argument {flag.split('=')[0]}" in (out / "train_7.failed.log").read_text()


@pytest.mark.e2e
def test_performance_8p_two_cpu_ranks(small_data):
    r = run_script("train_performance_8p.sh", f"--data_path={small_data}", "--batch_size=16", "--max_steps=4",
                   "--device_id=6", *TINY, RANK_SIZE="2")
    assert r.returncode == 0, r.stderr
    out = OUTPUT / "6"
    s, keys = testing.read_summary(out / f"{NET}_bs16_2p_perf.log")
    assert keys == SUMMARY_KEYS and s["RankSize"] == "2" and s["GlobalBatchSize"] == "16" and float(s["ActualFPS"]) > 0
    log = out / "train_6.log"
    text = log.read_text()
    assert "--nproc_per_node=2" in text and "2 rank(s) x batch 8" in text
    assert re.search(r"^\[npu id: \d+ \]  \* FPS@all [0-9.]+$", text, re.M)
    assert abs(float(testing.ascend_extract(ASCEND_FPS_8P, log)) - float(s["ActualFPS"])) <= 1e-3 * float(
        s["ActualFPS"])


@pytest.mark.e2e
def test_full_1p_learns_and_eval_reproduces(demo_data):
    r = run_script("train_full_1p.sh", f"--data_path={demo_data}", "--batch_size=32", "--epochs=10",
                   "--device_id=5", *TINY, *LEARN)
    assert r.returncode == 0, r.stderr
    out = OUTPUT / "5"
    s, keys = testing.read_summary(out / f"{NET}_bs32_1p_acc.log")
    assert keys == SUMMARY_KEYS and s["GlobalBatchSize"] == "32"
    acc = float(s["TrainAccuracy"])
    # chance levels on this test split: all-negative predictions score instance Acc 0,
    # all-positive |G|/35, and fair coin flips about |G|/(35/2 + |G|/2)
    from deepmar import peta

    dataset, partition = peta.load_prepared(str(demo_data))
    gt = dataset["att"][partition["test"][0]][:, :35]
    n_pos = (gt == 1).sum(1)
    n_pos = n_pos[n_pos > 0]
    all_positive = float((n_pos / 35).mean())
    coin = float((0.5 * n_pos / (35 / 2 + n_pos / 2)).mean())
    assert acc > max(0.35, 2 * all_positive, 2 * coin), (acc, all_positive, coin)
    assert (out / "exp" / "model" / "ckpt_epoch10.pth").exists()
    check_ascend_lines(out / "train_5.log", s, out / f"train_{NET}_bs32_1p_acc_loss.txt", batch=32)
    # the card's eval form: no --pth_path -> the full script's checkpoint of this device id, named
    r = run_script("train_eval_1p.sh", f"--data_path={demo_data}", "--device_id=5", "--workers=1")
    assert r.returncode == 0, r.stderr
    assert f"[Info] no --pth_path given: evaluating {out}/exp/model/checkpoint.path.tar" in r.stdout
    e, keys = testing.read_summary(out / f"{NET}_bs32_1p_eval.log")
    assert keys[-2:] == ["EvalAccuracy", "E2EEvalTime"] and e["EvalAccuracy"] == s["TrainAccuracy"]
    assert f"Final Eval Accuracy : {s['TrainAccuracy']}" in r.stdout


@pytest.mark.e2e
def test_eval_without_pth_path_and_no_checkpoint_is_one_line(small_data):
    out = OUTPUT / "8"
    shutil.rmtree(out, ignore_errors=True)
    r = run_script("train_eval_8p.sh", f"--data_path={small_data}", "--device_id=8", RANK_SIZE="2")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert f"{out}/exp_8p/model/checkpoint.path.tar" in r.stderr and "--pth_path" in r.stderr


def train_cmd(data, exp, *extra):
    return [sys.executable, str(MODEL_DIR / "train.py"), f"--save_dir={data}", f"--exp_dir={exp}",
            "--batch_size=32", "--total_epochs=3", "--epochs_per_val=3", "--steps_per_log=1", *TINY, *LEARN, *extra]


@pytest.mark.e2e
def test_sigkill_then_resume_matches_uninterrupted_run(small_data, tmp_path):
    full = subprocess.run(train_cmd(small_data, tmp_path / "a"), capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr
    proc = subprocess.Popen(train_cmd(small_data, tmp_path / "b"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    for line in proc.stdout:  # kill in the middle of epoch 3, after epoch 2's checkpoint
        if " in Ep 3," in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    resumed = subprocess.run(train_cmd(small_data, tmp_path / "b", "--resume"), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and "at the end of epoch 2" in resumed.stdout
    assert " in Ep 1," not in resumed.stdout
    assert last_acc(resumed.stdout) == last_acc(full.stdout)
    assert re.findall(r" mA: ([0-9.]+)", resumed.stdout) == re.findall(r" mA: ([0-9.]+)", full.stdout)
    # metrics.jsonl beside the checkpoints: the killed attempt's rows of epoch 3 were dropped on resume,
    # so every epoch and every logged step (--steps_per_log=1: all of them) appears exactly once
    rows = read_rows(tmp_path / "b" / "model" / "metrics.jsonl")
    full_rows = read_rows(tmp_path / "a" / "model" / "metrics.jsonl")
    steps_per_epoch = int(re.search(r"(\d+) steps per epoch", full.stdout).group(1))
    for r in (rows, full_rows):
        assert [x["epoch"] for x in r if x["kind"] == "epoch"] == [1, 2, 3]
        assert [x["step"] for x in r if x["kind"] == "step"] == list(range(1, 3 * steps_per_epoch + 1))
        assert [x["step"] for x in r if x["kind"] == "epoch"] == [steps_per_epoch * e for e in (1, 2, 3)]
    ep3 = rows[-1]
    assert set(ep3) == {"kind", "epoch", "step", "wall_time", "lr", "images_per_sec", "losses", "metrics"}
    assert set(ep3["metrics"]) == {"mA", "Acc", "Prec", "Rec", "F1"} and ep3["lr"] == 0.01
    # the log's printed values, rounded as printed; the resumed run's equal the uninterrupted run's
    assert f"{ep3['metrics']['mA']:.4f}" == re.findall(r" mA: ([0-9.]+)", full.stdout)[-1]
    assert f"{ep3['metrics']['Acc']:.4f}" == last_acc(full.stdout)
    assert ep3["metrics"] == full_rows[-1]["metrics"] and ep3["losses"] == full_rows[-1]["losses"]
    assert f"{ep3['losses']['loss']:.4f}" == re.findall(r"Ep3, [0-9.]+s, loss ([0-9.]+)", full.stdout)[-1]
    assert all(x["metrics"] == {} for x in rows[:-1])  # only epoch 3 evaluated (--epochs_per_val=3)


@pytest.mark.e2e
def test_corrupt_png_named_or_skipped(small_data, tmp_path):
    from deepmar import peta

    data = tmp_path / "peta"
    shutil.copytree(small_data, data)
    dataset, partition = peta.load_prepared(str(data))
    # a third of the training images: the first batch of 32 holds one with certainty ~1 - 1e-5
    bad = {dataset["image"][i] for i in partition["trainval"][0][::3]}
    for name in bad:
        (data / "images" / name).write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    args = train_cmd(data, tmp_path / "e", "--max_steps=1", "--total_epochs=1", "--workers=0")
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "--skip_bad_images" in r.stderr
    named = re.search(r"cannot read image \S*/images/(\d{5}\.png)", r.stderr)
    assert named and named.group(1) in bad
    r = subprocess.run(args + ["--skip_bad_images"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    skipped = re.findall(r"skipped bad image: \S*/images/(\d{5}\.png)", r.stderr)
    assert skipped and set(skipped) <= bad
    assert re.search(r"skipped bad images so far: (\d+)", r.stdout).group(1) == str(len(skipped))


def test_wrong_mat_layout_via_training(tmp_path, capsys):
    import numpy as np
    import scipy.io

    scipy.io.savemat(tmp_path / "PETA.mat", {"peta": {"data": np.zeros((4, 10))}})
    with pytest.raises(SystemExit) as exc:
        load_cli("train").main([f"--save_dir={tmp_path}"])
    err = capsys.readouterr().err
    assert exc.value.code == 1 and err.count("\n") == 1 and "PETA" in err


@pytest.mark.e2e
def test_export_onnx_matches_pytorch(tmp_path, capsys):
    import torch
    from deepmar.model import DeepMAR

    model = DeepMAR(35, "resnet50_tiny")
    ckpt = tmp_path / "ckpt_epoch1.pth"
    torch.save({"state_dicts": [model.state_dict(), {}], "ep": 1, "scores": 0}, ckpt)
    out = tmp_path / "DeepMar_npu.onnx"
    load_cli("export").main([f"--pth_path={ckpt}", f"--output={out}", "--arch=resnet50_tiny", "--resize=(64,64)",
                             "--batch_size=2"])
    assert out.exists() and "onnxruntime max abs diff" in capsys.readouterr().out
    import onnx

    graph = onnx.load(str(out)).graph
    assert [i.name for i in graph.input] == ["actual_input_1"] and [o.name for o in graph.output] == ["output1"]

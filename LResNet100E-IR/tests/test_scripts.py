"""The real test/*.sh scripts on the tiny demo faces_emore: summaries, learning, resume, eval of the
saved checkpoints (1p and RANK_SIZE=2), export, the Ascend CI's own extraction lines, failed runs."""
import json
import re
import shutil
import sys

import pytest
import torch
from arcface_helpers import MODEL_DIR, TINY, env, one_error_line, run

from common.testing import ascend_extract, digests, read_summary, run_on_terminal

pytestmark = pytest.mark.e2e  # every test here runs the scripts (or train.py) in a subprocess

TRAIN_KEYS = ["Network", "RankSize", "BatchSize", "GlobalBatchSize", "DeviceType", "CaseName", "ActualFPS",
              "TrainingTime", "ActualLoss", "E2ETrainingTime", "TrainAccuracy"]
EVAL_KEYS = ["Network", "RankSize", "BatchSize", "GlobalBatchSize", "DeviceType", "CaseName", "ActualFPS",
             "TrainingTime", "EvalAccuracy", "E2EEvalTime"]

# The Ascend scripts' extraction lines (spec 7), as written there, reading our log as $log.
ASCEND_FPS = "cat $log | grep \"fps:\" | grep 'fps:' | tail -n 1 | awk '{print $2}'"
ASCEND_ACC = "cat $log | grep 'lfw_accuracy:' | tail -n 1 | awk '{print $2}'"
ASCEND_LOSS = "cat $log | grep \"train_loss:\" | awk '{print $5}' > /tmp/_lres_loss_$$.log; " \
              "awk 'END {print}' /tmp/_lres_loss_$$.log; rm -f /tmp/_lres_loss_$$.log"


def ascend_fps_8p(rank_size):  # the 8p scripts: FPS=`echo "${FPS} * ${RANK_SIZE}" |bc`
    return f'FPS=`{ASCEND_FPS}`; echo "${{FPS}} * {rank_size}" | bc'


def ascend_training_time(batch, fps):
    return f"awk 'BEGIN{{printf \"%.2f\\n\", {batch}*1000/{fps}}}'"


def accuracies(log_text):
    return re.findall(r"^lfw_accuracy: \t([0-9.]+)$", log_text, re.M)


def check_ascend_lines(log, s, rank_size=1):
    """The Ascend CI's grep/awk on our log gives the summary's FPS, accuracy and loss."""
    fps = ascend_extract(ASCEND_FPS if rank_size == 1 else ascend_fps_8p(rank_size), log)
    assert float(fps) == pytest.approx(float(s["ActualFPS"]), abs=1e-3)  # 8p: bc keeps 6 decimals, we 3
    assert ascend_extract(ASCEND_ACC, log) == s["TrainAccuracy"] != ""
    assert ascend_extract(ASCEND_LOSS, log) == s["ActualLoss"] != ""
    assert ascend_extract(ascend_training_time(s["BatchSize"], s["ActualFPS"]), log) == s["TrainingTime"]


ROW_KEYS = ["kind", "epoch", "step", "wall_time", "lr", "images_per_sec", "losses", "metrics"]


def metrics_rows(folder):
    """The metrics.jsonl beside a run's checkpoints, as (kind, epoch, step) -> row; every key once."""
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    keyed = {(r["kind"], r["epoch"], r["step"]): r for r in rows}
    assert len(keyed) == len(rows), "a step or epoch appears twice"
    return keyed


def test_full_1p_learns_and_writes_summary(full_run):
    r, log_dir, save_dir = full_run
    assert r.returncode == 0, r.stderr + r.stdout
    s, keys = read_summary(log_dir / "LResNet100E_bs32_1p_acc.log")
    assert keys == TRAIN_KEYS
    assert (s["Network"], s["CaseName"], s["RankSize"], s["BatchSize"], s["GlobalBatchSize"]) == \
        ("LResNet100E", "LResNet100E_bs32_1p_acc", "1", "32", "32")
    log = (log_dir / "train_11.log").read_text()
    fps_lines = re.findall(r"^fps: ([0-9.]+)$", log, re.M)
    assert len(fps_lines) == 8 and s["ActualFPS"] == fps_lines[-1]  # the last epoch's, as the Ascend line
    assert s["TrainingTime"] == f"{32 * 1000 / float(fps_lines[-1]):.2f}"
    accs = accuracies(log)
    assert len(accs) == 8 and s["TrainAccuracy"] == accs[-1]  # the log's text, unchanged
    # chance is 0.5 and raw pixels verify the demo at about 0.56; the trained net must be far above
    assert float(accs[-1]) >= 0.8
    assert "Final Train Accuracy : " + s["TrainAccuracy"] in r.stdout
    losses = (log_dir / "train_LResNet100E_bs32_1p_acc_loss.txt").read_text().split()
    assert losses == re.findall(r"train_loss: (\S+)", log) and float(losses[-1]) < float(losses[0])
    check_ascend_lines(log_dir / "train_11.log", s)
    epochs = sorted(save_dir.glob("model_*_epoch:*_*.pth"))
    assert len(epochs) == 8 and (save_dir / "last.pth").is_file()
    for p in [*epochs, save_dir / "last.pth"]:
        torch.load(p, weights_only=True)  # plain data: a bare weights_only load succeeds
    ckpt = torch.load(save_dir / "last.pth", weights_only=True)
    assert {"model", "head", "optimizer", "epoch", "config"} <= set(ckpt) and ckpt["epoch"] == 7
    assert f"{ckpt['lfw_accuracy']}" == accs[-1]
    # the test-script log is the Ascend lines only: no progress bar (stdout is not a terminal)
    assert not any(c in log for c in ("\r", "\u2588", "it/s", "img/s"))
    # metrics.jsonl beside the checkpoints: 12 steps an epoch, every step but the first logged (k = 12 // 10)
    rows = metrics_rows(save_dir)
    assert list(next(iter(rows.values()))) == ROW_KEYS
    steps = [r for r in rows.values() if r["kind"] == "step"]
    epochs_rows = [r for r in rows.values() if r["kind"] == "epoch"]
    assert [r["step"] for r in steps] == [e * 12 + i + 1 for e in range(8) for i in range(1, 12)]
    assert [r["losses"]["loss"] for r in steps] == [float(v) for v in losses]  # the log's train_loss lines
    assert [(r["epoch"], r["step"]) for r in epochs_rows] == [(e, 12 * (e + 1)) for e in range(8)]
    assert [r["metrics"]["lfw_accuracy"] for r in epochs_rows] == [float(v) for v in accs]
    assert [r["lr"] for r in epochs_rows] == pytest.approx([0.1] * 6 + [0.01] * 2)  # --milestones=6
    assert [r["images_per_sec"] for r in epochs_rows] == pytest.approx([float(f) for f in fps_lines])
    assert all(r["losses"]["loss"] > 0 for r in epochs_rows) and epochs_rows[-1]["losses"]["loss"] < \
        epochs_rows[0]["losses"]["loss"]


def test_resume_continues_exactly(full_run, demo, tmp_path):
    """From the epoch-6 checkpoint of the 8-epoch run: stop 5 steps into epoch 7 (--max_steps), resume
    from that mid-epoch last.pth, finish: epoch 7's losses and accuracy equal the uninterrupted run's."""
    r, log_dir, save_dir = full_run
    assert r.returncode == 0
    start = next(save_dir.glob("model_*_epoch:6_*.pth"))
    common = [sys.executable, "train.py", f"--data_path={demo}", "--batch-size=32", "--epochs=8", "--max_iter=-1",
              "--seed=2021", "--lr=0.1", "--num_workers=0", "--use_amp=1", "--loss-scale=128.0",
              f"--save_dir={tmp_path}", *TINY]
    first = run(common + [f"--resume={start}", "--max_steps=89"])  # 7 epochs x 12 steps + 5
    assert first.returncode == 0, first.stderr
    assert "epoch 7 started" in first.stdout and "epoch 6 started" not in first.stdout
    second = run(common + ["--resume"])  # bare: the run folder's last.pth
    assert second.returncode == 0, second.stderr
    assert f"resumed from {tmp_path / 'last.pth'}: epoch 7, in-epoch step 5, step 89" in second.stdout
    full = (log_dir / "train_11.log").read_text()
    assert accuracies(second.stdout) == accuracies(full)[7:]
    tail = lambda t: re.findall(r"train_loss: (\S+)", t.split("epoch 7 started", 1)[1])  # noqa: E731
    assert tail(first.stdout)[:5] + tail(second.stdout) == tail(full)
    # metrics.jsonl: the first run's partial epoch-7 row is dropped by the resume; steps 86..96 and epoch 7
    # once each, and epoch 7's mean loss (kept in the mid-epoch checkpoint) equals the uninterrupted run's
    rows = metrics_rows(tmp_path)
    assert sorted(k for k in rows if k[0] == "epoch") == [("epoch", 7, 96)]
    assert sorted(k[2] for k in rows if k[0] == "step") == list(range(86, 97))
    assert rows["epoch", 7, 96]["losses"] == metrics_rows(save_dir)["epoch", 7, 96]["losses"]
    assert rows["epoch", 7, 96]["metrics"] == metrics_rows(save_dir)["epoch", 7, 96]["metrics"]


def test_progress_bar_on_a_terminal_only(demo, tmp_path):
    """Under a pseudo-terminal train.py draws the per-epoch bar (its description and step count) beside
    its log lines; the metrics file is written as off a terminal."""
    rc, text = run_on_terminal([sys.executable, "train.py", f"--data_path={demo}", "--batch-size=32", "--epochs=1",
                                "--max_iter=-1", "--max_steps=3", "--num_workers=0", "--eval_data_mode=none",
                                f"--save_dir={tmp_path}", *TINY], cwd=MODEL_DIR, env=env(), timeout=300)
    assert rc == 0, text[-2000:]
    assert "Ep 0/1" in text and "0/12" in text and "\r" in text and "epoch 0 started" in text, text[-2000:]
    assert ("epoch", 0, 3) in metrics_rows(tmp_path)


def test_eval_on_the_checkpoint_1p_folder_and_2p(full_run, demo):
    """The card's eval form (--pth_path = the folder of saved models) and RANK_SIZE=2 eval.py, which with
    the per-epoch protocol reproduces the training accuracy text exactly."""
    r, log_dir, save_dir = full_run
    assert r.returncode == 0
    e1 = run(["bash", "test/train_eval_1p.sh", f"--data_path={demo}/lfw.bin", f"--pth_path={save_dir}",
              "--device_id=11", "--workers=1"])
    assert e1.returncode == 0, e1.stderr
    newest = next(save_dir.glob("model_*_epoch:7_*.pth"))
    assert f"is a folder: using its newest model file {newest}" in (log_dir / "eval_11.log").read_text()
    s1, keys = read_summary(log_dir / "LResNet100E_bs512_1p_eval.log")
    assert keys == EVAL_KEYS and s1["GlobalBatchSize"] == "512"
    assert float(s1["EvalAccuracy"]) >= 0.8  # 10 folds with flip TTA
    assert ascend_extract(ASCEND_ACC, log_dir / "eval_11.log") == s1["EvalAccuracy"]
    # 2 ranks x 100 images a block, as the training's per-epoch check (--eval_batch_size=100) embedded them
    e8 = run(["bash", "test/train_eval_8p.sh", f"--data_path={demo}/lfw.bin", f"--pth_path={save_dir}/last.pth",
              "--device_id=11", "--batch_size=200", "--nfolds=5", "--flip=0", "--use_amp=1"], RANK_SIZE="2")
    assert e8.returncode == 0, e8.stderr
    s8, _ = read_summary(log_dir / "LResNet100E_bs200_2p_eval.log")
    assert (s8["RankSize"], s8["GlobalBatchSize"]) == ("2", "200")
    train = read_summary(log_dir / "LResNet100E_bs32_1p_acc.log")[0]
    assert s8["EvalAccuracy"] == train["TrainAccuracy"]
    assert "Final Eval Accuracy : " + s8["EvalAccuracy"] in e8.stdout


def test_8p_summary_is_the_saved_models(run_2p, demo):
    """RANK_SIZE=2: summary keys, FPS = the last per-device fps line x RANK_SIZE as the Ascend line
    computes it, and train_eval_1p.sh on the saved checkpoint gives the summary's accuracy exactly
    (every rank evaluates with rank 0's BatchNorm statistics, the ones saved)."""
    r, out = run_2p
    assert r.returncode == 0, r.stderr + r.stdout
    s, keys = read_summary(out / "LResNet100E_bs32_2p_acc.log")
    assert keys == TRAIN_KEYS and (s["RankSize"], s["BatchSize"], s["GlobalBatchSize"]) == ("2", "32", "32")
    log = (out / "train_13.log").read_text()
    assert "RecordFaces 384 images" in log and "world 2, per-device batch 16" in log
    assert len(accuracies(log)) == 2 and s["TrainAccuracy"] == accuracies(log)[-1]  # rank 0 prints, per epoch
    per_device = re.findall(r"^fps: ([0-9.]+)$", log, re.M)
    assert s["ActualFPS"] == f"{2 * float(per_device[-1]):.3f}"
    check_ascend_lines(out / "train_13.log", s, rank_size=2)
    models = out / "models_full_8p"
    assert len(list(models.glob("model_*_epoch:1_*.pth"))) == 1
    e = run(["bash", "test/train_eval_1p.sh", f"--data_path={demo}/lfw.bin", f"--pth_path={models}",
             "--device_id=13", "--batch_size=100", "--nfolds=5", "--flip=0", "--use_amp=1"])
    assert e.returncode == 0, e.stderr
    assert read_summary(out / "LResNet100E_bs100_1p_eval.log")[0]["EvalAccuracy"] == s["TrainAccuracy"]


def test_max_restarts_resumes_a_killed_worker_exactly(run_2p, demo):
    """RANK_SIZE=2 --max_restarts=1: rank 1 is SIGKILLed after step 18 (test hook), torchrun restarts the
    job, both ranks resume from the mid-epoch last.pth of step 16, and the final weights equal those of
    the uninterrupted run (run_2p, same flags and seed)."""
    r0, out0 = run_2p
    assert r0.returncode == 0
    r = run(["bash", "test/train_full_8p.sh", f"--data_path={demo}", "--batch_size=32", "--epochs=2",
             "--workers=0", "--device_id=17", "--data_format=rec", "--lr=0.1", "--eval_batch_size=100", *TINY,
             "--max_restarts=1", "--save_every=4"], RANK_SIZE="2", LRESNET_TEST_KILL_RANK1_AT_STEP="18", timeout=300)
    out = MODEL_DIR / "test/output/17"
    try:
        assert r.returncode == 0, r.stderr + r.stdout
        log = (out / "train_17.log").read_text()
        assert "exitcode: -9" in log and "restart 1 of the job: resuming from" in log
        assert "epoch 1, in-epoch step 4, step 16" in log
        a = torch.load(out0 / "models_full_8p" / "last.pth", weights_only=True)
        b = torch.load(out / "models_full_8p" / "last.pth", weights_only=True)
        assert a["global_step"] == b["global_step"] == 24
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
        assert torch.equal(a["head"]["kernel"], b["head"]["kernel"])
        assert read_summary(out / "LResNet100E_bs32_2p_acc.log")[0]["TrainAccuracy"] == \
            read_summary(out0 / "LResNet100E_bs32_2p_acc.log")[0]["TrainAccuracy"]
        # rank 0 wrote rows past step 16 before the kill; the restart dropped them: each step and epoch
        # once, with the uninterrupted run's losses and accuracies
        same = lambda rows: {k: (r["losses"], r["metrics"]) for k, r in rows.items()}  # noqa: E731
        rows, rows0 = metrics_rows(out / "models_full_8p"), metrics_rows(out0 / "models_full_8p")
        assert same(rows) == same(rows0) and [k for k in rows0 if k[0] == "epoch"] == [("epoch", 0, 12),
                                                                                       ("epoch", 1, 24)]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_performance_1p(demo):
    r = run(["bash", "test/train_performance_1p.sh", f"--data_path={demo}", "--batch_size=16", "--max_steps=9",
             "--workers=0", "--device_id=12", *TINY])
    out = MODEL_DIR / "test/output/12"
    try:
        assert r.returncode == 0, r.stderr + r.stdout
        s, keys = read_summary(out / "LResNet100E_bs16_1p_perf.log")
        assert keys == TRAIN_KEYS and s["CaseName"] == "LResNet100E_bs16_1p_perf" and s["GlobalBatchSize"] == "16"
        log = (out / "train_12.log").read_text()
        assert log.count("train_loss:") >= 1 and s["ActualFPS"] == re.findall(r"^fps: ([0-9.]+)$", log, re.M)[-1]
        assert "epoch 1 started" not in log  # --max_steps bounded the run inside epoch 0
        check_ascend_lines(out / "train_12.log", s)
        assert len(list((out / "models_perf_1p").glob("model_*.pth"))) == 1  # its own folder
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_scripts_never_share_a_checkpoint_folder():
    folders = {}
    for script in sorted((MODEL_DIR / "test").glob("train_*.sh")):
        text = script.read_text()
        assert re.search(r"^# --batch_size is the GLOBAL batch", text, re.M), script.name  # said in the header
        assert "batch_scope=global" in text, script.name
        m = re.search(r'--save_dir="\$ZOO_OUT/([^"]+)"', text)
        if "eval" not in script.name:
            folders[script.name] = m.group(1)
    assert sorted(folders.values()) == ["models_full_1p", "models_full_8p", "models_perf_1p", "models_perf_8p"]


def test_failed_runs_leave_earlier_results_byte_identical(full_run, demo, tmp_path):
    """After the good full run: a failing eval, a failing train and bad keys write no summary and
    leave every earlier file of test/output/11 byte-identical; each ends with one line."""
    r, log_dir, _ = full_run
    assert r.returncode == 0
    before = digests(log_dir)
    assert "LResNet100E_bs32_1p_acc.log" in before and "train_LResNet100E_bs32_1p_acc_loss.txt" in before
    e = run(["bash", "test/train_eval_1p.sh", f"--data_path={demo}/lfw.bin", f"--pth_path={tmp_path}/no.pth",
             "--device_id=11"])
    assert "checkpoint not found" in one_error_line(e)
    t = run(["bash", "test/train_full_1p.sh", f"--data_path={demo}", "--batch_size=32", "--device_id=11", "--lr=-1"])
    assert one_error_line(t) == "Error: argument --lr: expected a number > 0, got -1"
    for bad in ("--batch_size=0", "--batch_size=-2", "--batch_size=abc", "--epochs=0", "--max_steps=-2"):
        for script in ("train_full_1p.sh", "train_performance_8p.sh", "train_eval_1p.sh"):
            b = run(["bash", f"test/{script}", f"--data_path={demo}", f"--pth_path={tmp_path}", "--device_id=11", bad])
            key, value = bad[2:].split("=")
            assert re.fullmatch(rf"\[Error\] --{key}={re.escape(value)}: expected an integer >= 1",
                                one_error_line(b, "[Error] ")), (script, b.stderr)
    after = digests(log_dir)
    assert {k: after.get(k) for k in before} == before
    assert sorted(set(after) - set(before)) == ["eval_11.failed.log", "train_11.failed.log"]


def test_export_onnx_parity(full_run, tmp_path):
    r, _, save_dir = full_run
    assert r.returncode == 0
    e = run([sys.executable, "export.py", f"--pth_path={save_dir}", f"--output={tmp_path / 'm.onnx'}"])
    assert e.returncode == 0, e.stderr
    assert "input image (B,3,32,32), output features (B,512), opset 11" in e.stdout
    import onnx

    g = onnx.load(str(tmp_path / "m.onnx")).graph
    assert [i.name for i in g.input] == ["image"] and [o.name for o in g.output] == ["features"]

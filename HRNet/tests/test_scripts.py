"""End to end: the real test/*.sh scripts and train.py on demo ImageNet folders with the tiny
(not upstream) demo config: summary files, checkpoints, learning far above chance, eval on
the checkpoint (also the model card's form without --pth_path), exact resume, 2-process DDP
(its summary top-1 is the saved model's, and a worker killed mid-run restarts and ends on the
same weights), the Ascend CI's grep/awk lines, and the bad-input cases."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.metrics_file import read_rows
from common.testing import ascend_extract, digests, read_summary, run_script, script_env

MODEL_DIR = Path(__file__).resolve().parents[1]
NETWORK = "HRNet_ID1780_for_PyTorch"
CLASSES = 10
CHANCE = 100.0 / CLASSES
# the demo recipe: tiny net, 10 steps of 32 per epoch; lr 0.01 (the scripts' 0.1 is for batch 256)
RUN = ["--cfg=demo_tiny", "--batch_size=32", "--lr=0.01", "--workers=1", "--print_freq=5", "--device=cpu"]
EPOCHS = 4
# one output folder test/output/<id>/ per test, away from a user's 0..7; on the CPU the id selects nothing
IDS = {"full": "90", "eval": "91", "resume": "92", "perf1": "93", "perf2": "94", "eval2": "95", "full8": "96",
       "restart": "97", "eval8": "98", "bad": "99"}
RUN_DIR = "imagenet/cls_hrnet_demo_tiny"  # <modelDir>/imagenet/<cfg name>/: upstream's run folder
# the Ascend scripts' extraction lines (spec section 7), run on our logs
ASCEND_FPS = """grep -a 'Fps_Avg' $log|awk -F " " '{print $7}'|awk 'END {print}'"""
ASCEND_ACC = """grep -a 'Accuracy@1' $log|awk -F " " '{print $11}'|awk 'END {print}'"""
ASCEND_LOSS = ("""grep Epoch: $log|grep -v Test|awk -F "Loss" '{print $NF}' | awk -F " " '{print $1}'"""
               """|awk 'END {print}'""")
ASCEND_COMPILE = ("""grep step_time $log| head -2 |awk -F "step_time = " '{print $2}' | """
                  """awk '{sum+=$1} END {print"",sum}' |sed s/[[:space:]]//g""")
ASCEND_EVAL_ACC = """grep -a 'Test' $log|awk -F " " '{print $11}'|awk 'END {print}'"""


def env(**extra):
    # one intra-op thread per process: with the loader worker that fills 2 cores, and it avoids
    # OpenMP spin-waiting, which makes steps 10x slower on a shared, oversubscribed CPU
    e = script_env(OMP_NUM_THREADS="1", **extra)
    for k in ("ALLOW_FP32", "ALLOW_HF32", "HRNET_TEST_KILL_AT_STEP"):
        e.pop(k, None)
    return e


def run(cmd, extra_env=None, timeout=600):
    return subprocess.run(cmd, cwd=MODEL_DIR, env=env(**(extra_env or {})), capture_output=True, text=True,
                          timeout=timeout)


def script(name, key, *args, extra_env=None, fresh=True, timeout=600):
    """bash test/<name> ARGS with ASCEND_DEVICE_ID of `key` (its output folder emptied first)."""
    extra = {"OMP_NUM_THREADS": "1", **(extra_env or {})}
    if key is not None:
        if fresh:
            clear(key)
        extra["ASCEND_DEVICE_ID"] = IDS[key]
    return run_script(MODEL_DIR, name, *args, timeout=timeout, **extra)


def out_dir(key):
    return MODEL_DIR / "test" / "output" / IDS[key]


def summary(key, case):
    return read_summary(out_dir(key) / f"{case}.log")[0]


def log_path(key, name="train"):
    return out_dir(key) / f"{name}_{IDS[key]}.log"


def log_text(key, name="train"):
    return log_path(key, name).read_text()


def grep_test_lines(text):
    return re.findall(r"^Test: .*$", text, flags=re.MULTILINE)


def clear(key):
    """Results (and run folders) of an earlier session must not pass for this one's."""
    shutil.rmtree(out_dir(key), ignore_errors=True)


def one_error_line(res):
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1, res.stdout[-2000:] + res.stderr
    return lines[0]


@pytest.fixture(scope="module")
def full_run(demo):
    """train_full_1p on the demo data: one uninterrupted run the other tests compare with. No
    --modelDir: the checkpoints go where the script puts them, test/output/<id>/full_1p/."""
    data, root = demo
    case = f"{NETWORK}_bs32_1p_acc"
    res = script("train_full_1p.sh", "full", f"--data_path={data}", *RUN, f"--epochs={EPOCHS}")
    assert res.returncode == 0, res.stdout + res.stderr
    return res, summary("full", case), log_text("full"), out_dir("full") / "full_1p" / RUN_DIR


@pytest.mark.e2e
def test_full_1p_learns_and_writes_summary_and_checkpoints(full_run):
    res, s, text, ckpt_dir = full_run
    case = f"{NETWORK}_bs32_1p_acc"
    assert list(s) == ["Network", "RankSize", "BatchSize", "GlobalBatchSize", "DeviceType", "CaseName", "ActualFPS",
                       "TrainingTime", "ActualLoss", "E2ETrainingTime", "TrainAccuracy"]
    assert (s["Network"], s["RankSize"], s["BatchSize"], s["CaseName"]) == (NETWORK, "1", "32", case)
    assert s["GlobalBatchSize"] == "32"  # per-device batch x 1 device
    fps = float(s["ActualFPS"])
    assert fps > 0 and s["TrainingTime"] == f"{32 * 1000 / fps:.2f}"
    last_data_average = re.findall(r"Fps_Avg ([0-9.]+)", text)[-1]
    assert s["ActualFPS"] == last_data_average
    tests = grep_test_lines(text)
    assert len(tests) == EPOCHS
    top1 = tests[-1].split()[10]
    assert s["TrainAccuracy"] == top1
    assert float(top1) >= 5 * CHANCE, text[-3000:]  # learned: chance is 10 %
    assert s["ActualLoss"] == re.findall(r"^Epoch: .*\tLoss ([0-9.]+)", text, re.M)[-1]
    assert "Final Train Accuracy : " + s["TrainAccuracy"] in res.stdout
    # the checkpoints hold plain data only: a bare weights_only load reads every one of them
    ckpt = torch.load(ckpt_dir / "checkpoint.pth.tar", map_location="cpu", weights_only=True)
    assert (ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"], ckpt["model"]) == (EPOCHS, 0, EPOCHS * 10,
                                                                                         "cls_hrnet")
    assert ckpt["perf"] == pytest.approx(float(top1))
    assert ckpt["recipe"] == {"bs": 32, "lr": 0.01, "seed": 0, "dn": 1, "lr_schedule": "upstream"}
    assert ckpt["args"]["bs"] == 32 and isinstance(ckpt["args"], dict)
    # metrics.jsonl beside the checkpoints: every epoch once with its top-1; no bar in a script log
    rows = read_rows(ckpt_dir / "metrics.jsonl")
    assert set(rows[0]) == {"kind", "epoch", "step", "wall_time", "lr", "images_per_sec", "losses", "metrics"}
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert [(r["epoch"], r["step"]) for r in epochs] == [(e, (e + 1) * 10) for e in range(EPOCHS)]
    assert [f"{r['metrics']['top1']:.3f}" for r in epochs] == [t.split()[10] for t in tests]
    steps = [r["step"] for r in rows if r["kind"] == "step"]
    assert steps and len(steps) == len(set(steps)) == len(re.findall(r"^Epoch: \[", text, re.M))
    assert "\r" not in text and "\u2588" not in text and "it/s" not in text
    final = torch.load(ckpt_dir / "final_state.pth.tar", map_location="cpu", weights_only=True)
    assert list(final) == list(ckpt["state_dict"])  # a plain state_dict, as upstream's final_state.pth.tar
    assert {k.split(".")[0] for k in final} == {"conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2",
                                                "transition2", "stage3", "transition3", "stage4", "incre_modules",
                                                "downsamp_modules", "final_layer", "classifier"}
    torch.load(ckpt_dir / "model_best.pth.tar", map_location="cpu", weights_only=True)
    # the Ascend CI's own lines read the summary's numbers from this log
    log = log_path("full")
    assert ascend_extract(ASCEND_FPS, log) == s["ActualFPS"]
    assert ascend_extract(ASCEND_ACC, log) == s["TrainAccuracy"]
    assert ascend_extract(ASCEND_LOSS, log) == s["ActualLoss"]


@pytest.fixture(scope="module")
def card_eval(full_run, demo):
    """The model card's eval command: `train_eval_1p.sh --data_path=xxx --device_id=xxx`, no --pth_path
    (demo config and sizes appended): it evaluates the full script's final_state.pth.tar of that device id."""
    data, _ = demo
    res = run_script(MODEL_DIR, "train_eval_1p.sh", f"--data_path={data}", f"--device_id={IDS['full']}",
                     "--cfg=demo_tiny", "--batch_size=32", "--workers=1", "--device=cpu", OMP_NUM_THREADS="1")
    return res


@pytest.mark.e2e
def test_card_eval_without_pth_path_reproduces_the_training_top1(full_run, card_eval):
    _, train_summary, text, ckpt_dir = full_run
    assert card_eval.returncode == 0, card_eval.stdout + card_eval.stderr
    assert f"[Info] no --pth_path given: evaluating {ckpt_dir / 'final_state.pth.tar'}" in card_eval.stdout
    s = summary("full", f"{NETWORK}_bs32_1p_eval")
    assert s["EvalAccuracy"] == train_summary["TrainAccuracy"] and s["GlobalBatchSize"] == "32"
    evaluated = grep_test_lines(log_text("full", "eval"))
    assert len(evaluated) == 1 and evaluated[0].split("\t")[1:] == grep_test_lines(text)[-1].split("\t")[1:]
    assert f"=> loading model from {ckpt_dir / 'final_state.pth.tar'}" in log_text("full", "eval")
    assert ascend_extract(ASCEND_EVAL_ACC, log_path("full", "eval")) == s["EvalAccuracy"]


@pytest.mark.e2e
def test_card_eval_without_a_training_checkpoint_names_the_expected_file(demo):
    data, _ = demo
    clear("eval")
    res = run_script(MODEL_DIR, "train_eval_1p.sh", f"--data_path={data}", f"--device_id={IDS['eval']}",
                     "--cfg=demo_tiny")
    expected = out_dir("eval") / "full_1p" / RUN_DIR / "final_state.pth.tar"
    assert one_error_line(res) == (f"[Error] no --pth_path given and no checkpoint of the full training script of "
                                   f"device {IDS['eval']} at {expected}: train first or pass --pth_path=FILE")
    assert not out_dir("eval").exists()  # nothing written


@pytest.mark.e2e
def test_failed_runs_leave_the_last_good_results_byte_identical(full_run, card_eval, demo):
    """A failing eval (missing --pth_path file) and failing trainings (bad flags, caught by the
    script or by train.py) after good runs: one line, exit 1, every earlier file unchanged."""
    data, _ = demo
    assert card_eval.returncode == 0
    before = digests(out_dir("full"))
    assert f"{NETWORK}_bs32_1p_eval.log" in before and f"train_{NETWORK}_bs32_1p_acc_loss.txt" in before
    cases = [
        ("train_eval_1p.sh", ["--pth_path=/nonexistent/final_state.pth.tar"],
         "Error: weights not found: /nonexistent/final_state.pth.tar (give --testModel/--pth_path)"),
        ("train_full_1p.sh", ["--batch_size=0"], "[Error] --batch_size=0: expected an integer >= 1"),
        ("train_full_1p.sh", ["--batch_size=-8"], "[Error] --batch_size=-8: expected an integer >= 1"),
        ("train_full_1p.sh", ["--batch_size=abc"], "[Error] --batch_size=abc: expected an integer >= 1"),
        ("train_full_1p.sh", ["--epochs=0"], "[Error] --epochs=0: expected an integer >= 1"),
        ("train_full_1p.sh", ["--max_steps=-2"], "[Error] --max_steps=-2: expected an integer >= 1"),
        ("train_performance_1p.sh", ["--workers=-1"], "[Error] --workers=-1: expected an integer >= 0"),
        ("train_full_8p.sh", ["--batch_size=0"], "[Error] --batch_size=0: expected an integer >= 1"),
        # the model's own flags pass through the script to train.py, which checks them at parse time
        ("train_full_1p.sh", ["--lr=-1"], "Error: argument --lr: expected a number > 0, got -1"),
    ]
    for name, args, line in cases:
        res = script(name, "full", f"--data_path={data}", "--cfg=demo_tiny", "--device=cpu", *args, fresh=False)
        assert one_error_line(res) == line, (name, args)
    after = digests(out_dir("full"))
    assert {k: after[k] for k in before} == before
    assert sorted(set(after) - set(before)) == ["eval_90.failed.log", "train_90.failed.log"]


@pytest.mark.e2e
def test_eval_8p_card_form_two_processes_give_the_8p_run_numbers(full8_run, demo):
    """train_eval_8p.sh without --pth_path evaluates final_state.pth.tar of train_full_8p.sh of the same
    device id, on 2 processes (val sharded, counts summed): the 8p run's last Test line."""
    data, _ = demo
    _, s8, text8, _ = full8_run
    ev = script("train_eval_8p.sh", "full8", f"--data_path={data}", "--cfg=demo_tiny", "--batch_size=8",
                "--workers=0", "--device=cpu", extra_env={"RANK_SIZE": "2"}, fresh=False)
    assert ev.returncode == 0, ev.stdout + ev.stderr
    s = summary("full8", f"{NETWORK}_bs8_2p_eval")
    evaluated = grep_test_lines(log_text("full8", "eval"))
    assert len(evaluated) == 1 and (s["RankSize"], s["GlobalBatchSize"]) == ("2", "16")
    assert s["EvalAccuracy"] == s8["TrainAccuracy"]
    assert evaluated[0].split("\t")[2:] == grep_test_lines(text8)[-1].split("\t")[2:]
    assert float(evaluated[0].split("\t")[1].split()[1]) == pytest.approx(
        float(grep_test_lines(text8)[-1].split("\t")[1].split()[1]), abs=2e-4)


@pytest.mark.e2e
def test_export_onnx_matches_pytorch(full_run, tmp_path):
    _, _, _, ckpt_dir = full_run
    ex = run([sys.executable, "export.py", "--cfg=demo_tiny", f"--pth_path={ckpt_dir / 'model_best.pth.tar'}",
              f"--out={tmp_path / 'hrnet.onnx'}"])
    assert ex.returncode == 0, ex.stderr
    assert "output class (N,10), opset 11" in ex.stdout and (tmp_path / "hrnet.onnx").stat().st_size > 0


@pytest.mark.e2e
def test_rerun_resumes_exactly(full_run, demo):
    """Stop after 15 steps (mid epoch 1), run the script again to the end of epoch 1: it continues
    from the run folder's checkpoint and ends on the uninterrupted run's epoch-1 Test line."""
    data, root = demo
    _, _, text, _ = full_run
    args = [f"--data_path={data}", *RUN]
    first = script("train_full_1p.sh", "resume", *args, f"--epochs={EPOCHS}", "--max_steps=15")
    assert first.returncode == 0, first.stdout + first.stderr
    ckpt = torch.load(out_dir("resume") / "full_1p" / RUN_DIR / "checkpoint.pth.tar", map_location="cpu",
                      weights_only=True)
    assert (ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"]) == (1, 5, 15)
    second = script("train_full_1p.sh", "resume", *args, "--epochs=2", fresh=False)  # the LR steps ignore it
    assert second.returncode == 0, second.stdout + second.stderr
    resumed = log_text("resume")
    assert "TRAIN.RESUME (the run folder's checkpoint; --fresh starts over): resuming from" in resumed
    assert "=> loaded checkpoint (epoch 1)" in resumed and "continuing at step 5" in resumed
    assert len(re.findall(r"^Epoch: \[1\]", resumed, re.M)) == 1  # steps 5..9 only: the line of step 5
    assert grep_test_lines(resumed)[-1].split("\t")[1:] == grep_test_lines(text)[1].split("\t")[1:]


@pytest.mark.e2e
def test_performance_1p_summary(demo):
    data, root = demo
    case = f"{NETWORK}_bs16_1p_perf"
    res = script("train_performance_1p.sh", "perf1", "--device=cpu", f"--data_path={data}", "--cfg=demo_tiny",
                 "--batch_size=16", "--max_steps=6", "--workers=1")
    assert res.returncode == 0, res.stdout + res.stderr
    s = summary("perf1", case)
    assert s["CaseName"] == case and float(s["ActualFPS"]) > 0 and s["TrainAccuracy"] != ""
    assert s["GlobalBatchSize"] == "16"
    text = log_text("perf1")
    steps = [float(v) for v in re.findall(r"^step_time = ([0-9.]+)$", text, re.M)]
    assert len(steps) == 2 and s["CompileTime"] == f"{sum(steps):.4f}"
    assert re.findall(r"^Epoch: \[0\]\[\d+/\d+\]", text, re.M) == ["Epoch: [0][0/20]"]  # every 100 steps, as the port
    assert "stopped after 6 steps" in text
    assert (out_dir("perf1") / "perf_1p" / RUN_DIR / "checkpoint.pth.tar").is_file()  # its own folder
    log = log_path("perf1")
    assert float(ascend_extract(ASCEND_FPS, log)) == float(s["ActualFPS"])
    assert ascend_extract(ASCEND_ACC, log) == s["TrainAccuracy"]
    assert ascend_extract(ASCEND_LOSS, log) == s["ActualLoss"]
    assert float(ascend_extract(ASCEND_COMPILE, log)) == pytest.approx(float(s["CompileTime"]), abs=1e-9)


@pytest.mark.e2e
def test_performance_8p_with_two_processes(demo):
    data, root = demo
    case = f"{NETWORK}_bs16_2p_perf"
    res = script("train_performance_8p.sh", "perf2", "--device=cpu", f"--data_path={data}", "--cfg=demo_tiny",
                 "--batch_size=16", "--max_steps=4", "--workers=0", extra_env={"RANK_SIZE": "2"})
    assert res.returncode == 0, res.stdout + res.stderr
    s = summary("perf2", case)
    assert (s["RankSize"], s["BatchSize"], s["GlobalBatchSize"]) == ("2", "16", "32") and float(s["ActualFPS"]) > 0
    text = log_text("perf2")
    assert "=> 2 device(s) x batch 16 = 32 images/step" in text
    assert len(grep_test_lines(text)) == 1  # rank 0 alone prints
    fps_line = re.findall(r"Fps_Avg ([0-9.]+)", text)[-1]
    times = [float(t) for t in re.findall(r"Time_Avg ([0-9.]+)s", text)]
    assert float(fps_line) == pytest.approx(32 / times[-1], rel=0.02)  # whole job: 2 x 16 per step
    assert (out_dir("perf2") / "perf_8p" / RUN_DIR / "checkpoint.pth.tar").is_file()
    log = log_path("perf2")
    assert ascend_extract(ASCEND_FPS, log) == s["ActualFPS"] and ascend_extract(ASCEND_ACC, log) == s["TrainAccuracy"]
    assert ascend_extract(ASCEND_LOSS, log) == s["ActualLoss"]


# ---------------------------------------------------------------- RANK_SIZE=2 full runs
# Fine-tuning of the 1p run's model (93 % top-1): 8 per device x 2 = 16 images per step, 6 steps (mid
# epoch 0), a checkpoint every 2 steps. Its top-1 depends on the BatchNorm statistics the ranks evaluate
# with: without rank 0's buffers before validation it reported 91.25 where its final_state gives 90.00.
RUN8 = ["--cfg=demo_tiny", "--batch_size=8", "--lr=0.002", "--workers=0", "--print_freq=5", "--device=cpu",
        "--epochs=1", "--max_steps=6", "--save_freq=2", "--seed=3", "--cache_images=off"]
KILL_AT = 3  # after the step-2 checkpoint; the restarted job redoes step 3


def run8_args(full_run, demo):
    return [f"--data_path={demo[0]}", *RUN8, f"--pretrained={full_run[3] / 'final_state.pth.tar'}"]


@pytest.fixture(scope="module")
def full8_run(full_run, demo):
    """train_full_8p.sh with RANK_SIZE=2, uninterrupted: shared by the summary == eval test, the
    card-form 8p eval and the --max_restarts test."""
    res = script("train_full_8p.sh", "full8", *run8_args(full_run, demo), extra_env={"RANK_SIZE": "2"})
    assert res.returncode == 0, res.stdout + res.stderr
    return res, summary("full8", f"{NETWORK}_bs8_2p_acc"), log_text("full8"), out_dir("full8") / "full_8p" / RUN_DIR


@pytest.mark.e2e
def test_full_8p_summary_top1_is_the_saved_models(full8_run, demo):
    """Ranks evaluate with rank 0's BatchNorm statistics (the saved ones), so train_eval_1p.sh on the
    saved final_state.pth.tar prints exactly the top-1 text of the 8p run's summary."""
    data, _ = demo
    _, s, text, ckpt_dir = full8_run
    assert (s["RankSize"], s["BatchSize"], s["GlobalBatchSize"]) == ("2", "8", "16")
    assert "=> 2 device(s) x batch 8 = 16 images/step, lr 0.004" in text  # lr x devices, in train.py only
    ev = script("train_eval_1p.sh", "eval8", f"--data_path={data}", "--cfg=demo_tiny", "--batch_size=8",
                "--workers=0", "--device=cpu", f"--pth_path={ckpt_dir / 'final_state.pth.tar'}")
    assert ev.returncode == 0, ev.stdout + ev.stderr
    assert summary("eval8", f"{NETWORK}_bs8_1p_eval")["EvalAccuracy"] == s["TrainAccuracy"]
    mine, ref = grep_test_lines(log_text("eval8", "eval"))[0].split("\t"), grep_test_lines(text)[-1].split("\t")
    assert mine[2:] == ref[2:]  # Error@1/5, Accuracy@1/5: the same text
    assert float(mine[1].split()[1]) == pytest.approx(float(ref[1].split()[1]), abs=2e-4)  # mean loss, 1p vs shards
    log = log_path("full8")
    assert ascend_extract(ASCEND_FPS, log) == s["ActualFPS"] and ascend_extract(ASCEND_ACC, log) == s["TrainAccuracy"]
    assert ascend_extract(ASCEND_LOSS, log) == s["ActualLoss"]


@pytest.mark.e2e
def test_max_restarts_a_killed_worker_resumes_and_ends_on_the_same_weights(full_run, full8_run, demo):
    """RANK_SIZE=2 --max_restarts=1, rank 1 SIGKILLs itself after step 3 (train.py's test-only hook,
    first attempt only): torchrun restarts the job, which resumes from the step-2 checkpoint and
    ends with the uninterrupted run's weights, bit for bit."""
    _, s8, _, ckpt_dir = full8_run
    res = script("train_full_8p.sh", "restart", *run8_args(full_run, demo), "--max_restarts=1",
                 extra_env={"RANK_SIZE": "2", "HRNET_TEST_KILL_AT_STEP": str(KILL_AT)}, timeout=400)
    assert res.returncode == 0, res.stdout + res.stderr
    text = log_text("restart")
    assert f"[test hook] rank 1 kills itself after step {KILL_AT}" in text
    assert "restart 1 of the job: resuming from" in text and "continuing at step 2 of that epoch" in text
    mine = torch.load(out_dir("restart") / "full_8p" / RUN_DIR / "final_state.pth.tar", weights_only=True)
    ref = torch.load(ckpt_dir / "final_state.pth.tar", weights_only=True)
    assert list(mine) == list(ref) and all(torch.equal(mine[k], ref[k]) for k in ref)
    assert summary("restart", f"{NETWORK}_bs8_2p_acc")["TrainAccuracy"] == s8["TrainAccuracy"]
    # the restarted job's metrics.jsonl has each step and epoch once, with the uninterrupted run's values
    # (an epoch row's mean loss covers the steps its attempt ran, as the log's Data Average line)
    def rows(folder):
        return [(r["kind"], r["epoch"], r["step"], r["losses"] if r["kind"] == "step" else None, r["metrics"])
                for r in read_rows(folder / "metrics.jsonl")]
    assert rows(out_dir("restart") / "full_8p" / RUN_DIR) == rows(ckpt_dir)


# ---------------------------------------------------------------- the model card's commands
CARD_TRAIN = ["train_full_1p.sh", "train_performance_1p.sh", "train_full_8p.sh", "train_performance_8p.sh"]


@pytest.mark.e2e
@pytest.mark.parametrize("name", CARD_TRAIN)
def test_card_commands_typed_as_written_end_with_one_line(name):
    """`bash ./test/<script> --data_path=/data/xxx/` on a machine without /data/xxx/: one line."""
    res = subprocess.run(["bash", f"./test/{name}", "--data_path=/data/xxx/"], cwd=MODEL_DIR, env=env(),
                         capture_output=True, text=True, timeout=60)
    assert one_error_line(res) == "[Error] data_path does not exist: /data/xxx"


@pytest.mark.e2e
def test_card_eval_command_typed_as_written_ends_with_one_line():
    res = subprocess.run(["bash", "./test/train_eval_1p.sh", "--data_path=xxx", "--device_id=xxx"], cwd=MODEL_DIR,
                         env=env(), capture_output=True, text=True, timeout=60)
    assert one_error_line(res) == "[Error] --device_id=xxx: expected an integer >= 0"


def test_scripts_never_share_a_checkpoint_folder():
    """Each training script writes its checkpoints to its own test/output/<id>/<script> folder."""
    folders = {}
    for name in CARD_TRAIN:
        text = (MODEL_DIR / "test" / name).read_text()
        found = re.findall(r'--modelDir="test/output/\$ASCEND_DEVICE_ID/(\w+)"', text)
        assert len(found) == 1, name
        folders[name] = found[0]
        assert "batch_scope=per_device" in text and "PER DEVICE" in text
    assert sorted(folders.values()) == ["full_1p", "full_8p", "perf_1p", "perf_8p"]


def test_requirements_txt_is_the_tested_pin_list():
    def pins(name):
        return sorted(line.strip() for line in (MODEL_DIR / name).read_text().splitlines()
                      if line.strip() and not line.startswith("#"))
    assert pins("requirements.txt") == pins("2.14.1_requirements.txt")


# ---------------------------------------------------------------- bad input
@pytest.mark.e2e
def test_corrupt_image_stops_with_its_path_or_is_skipped(demo, tmp_path, cli, call):
    data, root = demo
    small = tmp_path / "d"
    for split, n in (("train", 4), ("val", 1)):  # 2 classes, so that one epoch is one step
        for wnid in ("n90000000", "n90001111"):
            (small / split / wnid).mkdir(parents=True)
            for f in sorted((data / split / wnid).iterdir())[:n]:
                (small / split / wnid / f.name).write_bytes(f.read_bytes())
    bad = small / "train" / "n90001111" / "n90001111_3.JPEG"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    common = [small, "--cfg=demo_tiny", "--device=cpu", "--workers=0", "--cache_images=off"]
    rc, _, err = call(cli["train"].main, [*common, f"--modelDir={tmp_path}/bad"])
    assert rc == 1 and len(err) == 1 and err[0].startswith(f"Error: cannot read image {bad}")
    rc, out, err = call(cli["train"].main, [*common, "--bs=8", "--train_epochs=1", "--skip_bad_images",
                                            f"--modelDir={tmp_path}/skip", "--fresh"])
    assert rc == 0, err
    assert f"skipped bad image: {bad}" in "\n".join(err)
    assert "[Warning] epoch 0: 1 unreadable images skipped" in out


@pytest.mark.e2e
def test_script_without_data_path():
    res = script("train_full_1p.sh", None, "--cfg=demo_tiny")
    assert res.returncode != 0 and res.stderr.strip() == '[Error] para "data_path" must be config'

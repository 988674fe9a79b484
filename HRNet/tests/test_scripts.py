"""End to end: the real test/*.sh scripts and train.py on demo ImageNet folders with the tiny
(not upstream) demo config: summary files, checkpoints, learning far above chance, eval on
the checkpoint, exact resume, 2-process DDP, and the bad-input cases."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

MODEL_DIR = Path(__file__).resolve().parents[1]
NETWORK = "HRNet_ID1780_for_PyTorch"
CLASSES = 10
CHANCE = 100.0 / CLASSES
# the demo recipe: tiny net, 10 steps of 32 per epoch; lr 0.01 (the scripts' 0.1 is for batch 256)
RUN = ["--cfg=demo_tiny", "--batch_size=32", "--lr=0.01", "--workers=1", "--print_freq=5", "--device=cpu"]
EPOCHS = 4
# one output folder test/output/<id>/ per test, away from a user's 0..7; on the CPU the id selects nothing
IDS = {"full": "90", "eval": "91", "resume": "92", "perf1": "93", "perf2": "94", "eval2": "95"}


def env():
    e = dict(os.environ)
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}"
    e.pop("ALLOW_FP32", None)
    e.pop("ALLOW_HF32", None)
    # one intra-op thread per process: with the loader worker that fills 2 cores, and it avoids
    # OpenMP spin-waiting, which makes steps 10x slower on a shared, oversubscribed CPU
    e["OMP_NUM_THREADS"] = "1"
    return e


def run(cmd, extra_env=None, timeout=600):
    e = env()
    e.update(extra_env or {})
    return subprocess.run(cmd, cwd=MODEL_DIR, env=e, capture_output=True, text=True, timeout=timeout)


def script(name, key, *args, extra_env=None):
    extra = dict(extra_env or {})
    if key is not None:
        clear(key)
        extra["ASCEND_DEVICE_ID"] = IDS[key]
    return run(["bash", f"test/{name}", *args], extra)


def out_dir(key):
    return MODEL_DIR / "test" / "output" / IDS[key]


def summary(key, case):
    text = (out_dir(key) / f"{case}.log").read_text()
    return dict(line.split(" = ", 1) for line in text.splitlines())


def log_text(key, name="train"):
    return (out_dir(key) / f"{name}_{IDS[key]}.log").read_text()


def grep_test_lines(text):
    return re.findall(r"^Test: .*$", text, flags=re.MULTILINE)


def clear(key):
    """Results of an earlier session must not pass for this one's."""
    if out_dir(key).is_dir():
        for f in out_dir(key).iterdir():
            if f.is_file():
                f.unlink()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("hrnet_demo")
    res = run([sys.executable, "tools/make_demo_data.py", str(root / "imagenet"), "--classes", str(CLASSES),
               "--train_per_class", "32", "--val_per_class", "8"])
    assert res.returncode == 0, res.stderr
    data = res.stdout.strip().splitlines()[-1]
    assert sorted(os.listdir(Path(data) / "val")) == sorted(os.listdir(Path(data) / "train"))
    assert len(list((Path(data) / "train").glob("*/*.JPEG"))) == CLASSES * 32
    return Path(data), root


@pytest.fixture(scope="module")
def full_run(demo):
    """train_full_1p on the demo data: one uninterrupted run the other tests compare with."""
    data, root = demo
    case = f"{NETWORK}_bs32_1p_acc"
    res = script("train_full_1p.sh", "full", f"--data_path={data}", *RUN, f"--epochs={EPOCHS}",
                 f"--modelDir={root}/full")
    return res, summary("full", case), log_text("full"), root / "full" / "imagenet" / "cls_hrnet_demo_tiny"


def test_full_1p_learns_and_writes_summary_and_checkpoints(full_run):
    res, s, text, ckpt_dir = full_run
    assert res.returncode == 0, res.stdout + res.stderr
    case = f"{NETWORK}_bs32_1p_acc"
    assert list(s) == ["Network", "RankSize", "BatchSize", "DeviceType", "CaseName", "ActualFPS", "TrainingTime",
                       "ActualLoss", "E2ETrainingTime", "TrainAccuracy"]
    assert (s["Network"], s["RankSize"], s["BatchSize"], s["CaseName"]) == (NETWORK, "1", "32", case)
    fps = float(s["ActualFPS"])
    assert fps > 0 and s["TrainingTime"] == f"{32 * 1000 / fps:.2f}"
    last_data_average = re.findall(r"Fps_Avg ([0-9.]+)", text)[-1]
    assert fps == pytest.approx(float(last_data_average))
    tests = grep_test_lines(text)
    assert len(tests) == EPOCHS
    top1 = float(tests[-1].split()[10])
    assert float(s["TrainAccuracy"]) == top1
    assert top1 >= 5 * CHANCE, text[-3000:]  # learned: chance is 10 %
    assert float(s["ActualLoss"]) == float(re.findall(r"^Epoch: .*\tLoss ([0-9.]+)", text, re.M)[-1])
    assert "Final Train Accuracy : " + s["TrainAccuracy"] in res.stdout
    ckpt = torch.load(ckpt_dir / "checkpoint.pth.tar", map_location="cpu", weights_only=False)
    assert (ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"], ckpt["model"]) == (EPOCHS, 0, EPOCHS * 10,
                                                                                         "cls_hrnet")
    assert ckpt["perf"] == pytest.approx(top1)
    final = torch.load(ckpt_dir / "final_state.pth.tar", map_location="cpu")
    assert list(final) == list(ckpt["state_dict"])  # a plain state_dict, as upstream's final_state.pth.tar
    assert {k.split(".")[0] for k in final} == {"conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2",
                                                "transition2", "stage3", "transition3", "stage4", "incre_modules",
                                                "downsamp_modules", "final_layer", "classifier"}
    assert (ckpt_dir / "model_best.pth.tar").is_file()


def test_eval_1p_reproduces_top1_from_the_checkpoint(full_run, demo):
    data, _ = demo
    res, train_summary, text, ckpt_dir = full_run
    assert res.returncode == 0
    ev = script("train_eval_1p.sh", "eval", f"--data_path={data}", "--cfg=demo_tiny", "--batch_size=32",
                "--workers=1", "--device=cpu", f"--pth_path={ckpt_dir / 'final_state.pth.tar'}")
    assert ev.returncode == 0, ev.stdout + ev.stderr
    s = summary("eval", f"{NETWORK}_bs32_1p_eval")
    assert s["EvalAccuracy"] == train_summary["TrainAccuracy"]
    evaluated = grep_test_lines(log_text("eval", "eval"))
    assert len(evaluated) == 1 and evaluated[0].split("\t")[1:] == grep_test_lines(text)[-1].split("\t")[1:]


def test_eval_8p_two_processes_give_the_same_numbers(full_run, demo):
    data, _ = demo
    res, _, text, ckpt_dir = full_run
    assert res.returncode == 0
    ev = script("train_eval_8p.sh", "eval2", f"--data_path={data}", "--cfg=demo_tiny", "--batch_size=16",
                "--workers=0", "--device=cpu", f"--pth_path={ckpt_dir / 'final_state.pth.tar'}",
                extra_env={"RANK_SIZE": "2"})
    assert ev.returncode == 0, ev.stdout + ev.stderr
    s = summary("eval2", f"{NETWORK}_bs16_2p_eval")
    evaluated = grep_test_lines(log_text("eval2", "eval"))
    # 80 val images split 40/40 over the ranks, counts summed: the 1p line (the mean loss up to rounding)
    assert len(evaluated) == 1 and s["RankSize"] == "2"
    assert evaluated[0].split("\t")[2:] == grep_test_lines(text)[-1].split("\t")[2:]
    assert float(evaluated[0].split("\t")[1].split()[1]) == pytest.approx(
        float(grep_test_lines(text)[-1].split("\t")[1].split()[1]), abs=2e-4)


def test_export_onnx_matches_pytorch(full_run, tmp_path):
    res, _, _, ckpt_dir = full_run
    assert res.returncode == 0
    ex = run([sys.executable, "export.py", "--cfg=demo_tiny", f"--pth_path={ckpt_dir / 'model_best.pth.tar'}",
              f"--out={tmp_path / 'hrnet.onnx'}"])
    assert ex.returncode == 0, ex.stderr
    assert "output class (N,10), opset 11" in ex.stdout and (tmp_path / "hrnet.onnx").stat().st_size > 0


def test_rerun_resumes_exactly(full_run, demo):
    """Stop after 15 steps (mid epoch 1), run the script again to the end of epoch 1: it continues
    from the run folder's checkpoint and ends on the uninterrupted run's epoch-1 Test line."""
    data, root = demo
    res, _, text, _ = full_run
    assert res.returncode == 0
    args = [f"--data_path={data}", *RUN, f"--modelDir={root}/resumed"]
    first = script("train_full_1p.sh", "resume", *args, f"--epochs={EPOCHS}", "--max_steps=15")
    assert first.returncode == 0, first.stdout + first.stderr
    ckpt = torch.load(root / "resumed/imagenet/cls_hrnet_demo_tiny/checkpoint.pth.tar", map_location="cpu",
                      weights_only=False)
    assert (ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"]) == (1, 5, 15)
    second = script("train_full_1p.sh", "resume", *args, "--epochs=2")  # the LR steps do not depend on it
    assert second.returncode == 0, second.stdout + second.stderr
    resumed = log_text("resume")
    assert "=> loaded checkpoint (epoch 1)" in resumed and "continuing at step 5" in resumed
    assert len(re.findall(r"^Epoch: \[1\]", resumed, re.M)) == 1  # steps 5..9 only: the line of step 5
    assert grep_test_lines(resumed)[-1].split("\t")[1:] == grep_test_lines(text)[1].split("\t")[1:]


def test_performance_1p_summary(demo):
    data, root = demo
    case = f"{NETWORK}_bs16_1p_perf"
    res = script("train_performance_1p.sh", "perf1", "--device=cpu", f"--data_path={data}", "--cfg=demo_tiny",
                 "--batch_size=16", "--max_steps=6", "--workers=1", f"--modelDir={root}/perf1")
    assert res.returncode == 0, res.stdout + res.stderr
    s = summary("perf1", case)
    assert s["CaseName"] == case and float(s["ActualFPS"]) > 0 and s["TrainAccuracy"] != ""
    text = log_text("perf1")
    steps = [float(v) for v in re.findall(r"^step_time = ([0-9.]+)$", text, re.M)]
    assert len(steps) == 2 and s["CompileTime"] == f"{sum(steps):.4f}"
    assert re.findall(r"^Epoch: \[0\]\[\d+/\d+\]", text, re.M) == ["Epoch: [0][0/20]"]  # every 100 steps, as the port
    assert "stopped after 6 steps" in text


def test_performance_8p_with_two_processes(demo):
    data, root = demo
    case = f"{NETWORK}_bs16_2p_perf"
    res = script("train_performance_8p.sh", "perf2", "--device=cpu", f"--data_path={data}", "--cfg=demo_tiny",
                 "--batch_size=16", "--max_steps=4", "--workers=0", f"--modelDir={root}/perf2",
                 extra_env={"RANK_SIZE": "2"})
    assert res.returncode == 0, res.stdout + res.stderr
    s = summary("perf2", case)
    assert (s["RankSize"], s["BatchSize"]) == ("2", "16") and float(s["ActualFPS"]) > 0
    text = log_text("perf2")
    assert "=> 2 device(s) x batch 16 = 32 images/step" in text
    assert len(grep_test_lines(text)) == 1  # rank 0 alone prints
    fps_line = re.findall(r"Fps_Avg ([0-9.]+)", text)[-1]
    times = [float(t) for t in re.findall(r"Time_Avg ([0-9.]+)s", text)]
    assert float(fps_line) == pytest.approx(32 / times[-1], rel=0.02)  # whole job: 2 x 16 per step


def bad_run(args):
    res = run([sys.executable, "train.py", *args])
    lines = res.stderr.strip().splitlines()
    return res.returncode, lines


def test_bad_cfg_name(demo):
    data, root = demo
    rc, lines = bad_run([str(data), "--cfg=w17", "--device=cpu", f"--modelDir={root}/bad"])
    assert rc != 0 and len(lines) == 1 and lines[0].startswith("Error: --cfg w17: no such config file")


def test_config_with_a_wrong_key(demo, tmp_path):
    data, root = demo
    cfg = (MODEL_DIR / "experiments/demo/cls_hrnet_demo_tiny.yaml").read_text().replace("  WD: ", "  WEIGHT_DECAY: ")
    (tmp_path / "typo.yaml").write_text(cfg)
    rc, lines = bad_run([str(data), f"--cfg={tmp_path / 'typo.yaml'}", f"--modelDir={root}/bad"])
    assert rc != 0 and len(lines) == 1 and "unknown key TRAIN.WEIGHT_DECAY" in lines[0]


def copy_tree(src, dst):
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)


def test_empty_class_folder(demo, tmp_path):
    data, root = demo
    copy_tree(data, tmp_path / "d")
    (tmp_path / "d" / "train" / "n99999999").mkdir()
    rc, lines = bad_run([str(tmp_path / "d"), "--cfg=demo_tiny", f"--modelDir={root}/bad"])
    assert rc != 0 and len(lines) == 1
    assert re.match(r"Error: class folder .*train/n99999999 has no images", lines[0])


def test_val_class_missing_from_train(demo, tmp_path):
    data, root = demo
    copy_tree(data, tmp_path / "d")
    os.rename(tmp_path / "d" / "val" / "n90000000", tmp_path / "d" / "val" / "n00000001")
    rc, lines = bad_run([str(tmp_path / "d"), "--cfg=demo_tiny", f"--modelDir={root}/bad"])
    assert rc != 0 and len(lines) == 1
    assert lines[0].startswith("Error: val class 'n00000001'") and "has no folder in" in lines[0]


def test_corrupt_image_stops_with_its_path_or_is_skipped(demo, tmp_path):
    data, root = demo
    small = tmp_path / "d"
    for split, n in (("train", 4), ("val", 1)):  # 2 classes, so that one epoch is one step
        for wnid in ("n90000000", "n90001111"):
            (small / split / wnid).mkdir(parents=True)
            for f in sorted((data / split / wnid).iterdir())[:n]:
                (small / split / wnid / f.name).write_bytes(f.read_bytes())
    bad = small / "train" / "n90001111" / "n90001111_3.JPEG"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    rc, lines = bad_run([str(small), "--cfg=demo_tiny", "--device=cpu", f"--modelDir={root}/bad"])
    assert rc != 0 and len(lines) == 1 and lines[0].startswith(f"Error: cannot read image {bad}")
    res = run([sys.executable, "train.py", str(small), "--cfg=demo_tiny", "--device=cpu", "--bs=8",
               "--train_epochs=1", "--workers=0", "--skip_bad_images", f"--modelDir={root}/skip", "--fresh"])
    assert res.returncode == 0, res.stderr
    assert f"skipped bad image: {bad}" in res.stderr
    assert "[Warning] epoch 0: 1 unreadable images skipped" in res.stdout


def test_script_without_data_path():
    res = script("train_full_1p.sh", None, "--cfg=demo_tiny")
    assert res.returncode != 0 and res.stderr.strip() == '[Error] para "data_path" must be config'

"""RANK_SIZE=2 on CPU (gloo): one reference run (conftest.ref_2p) against the saved model's
accuracy, a run whose worker is killed (--max_restarts) and a two-"node" run on 127.0.0.1."""
import re
import socket
import subprocess

import pytest
import torch

from common import testing
from common.metrics_file import read_rows

from .conftest import (
    ASCEND_FPS_1P,
    ASCEND_FPS_8P,
    NET,
    REF_DEVICE,
    SMALL_2P,
    check_ascend_lines,
    final_weights,
    fresh_output,
    run_script,
)

pytestmark = pytest.mark.e2e  # torchrun runs of the 8p scripts


def same_weights(a, b):
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_8p_summary_accuracy_is_the_saved_checkpoints(ref_2p, small_data):
    s, keys = ref_2p["summary"], ref_2p["keys"]
    assert keys == ["Network", "RankSize", "BatchSize", "GlobalBatchSize", "DeviceType", "CaseName", "ActualFPS",
                    "TrainingTime", "ActualLoss", "E2ETrainingTime", "TrainAccuracy"]
    # --batch_size is the job's batch: 32 over 2 ranks = 16 each
    assert s["RankSize"] == "2" and s["BatchSize"] == "32" and s["GlobalBatchSize"] == "32"
    log = ref_2p["log"].read_text()
    assert "2 rank(s) x batch 16; 3 steps per epoch" in log
    # the run evaluated (every epoch), and the summary reads the last block's instance Acc
    accs = re.findall(r"^ Acc: ([0-9.]+),", log, re.M)
    assert len(accs) == 3 and s["TrainAccuracy"] == accs[-1]
    assert f"Final Train Accuracy : {s['TrainAccuracy']}" in ref_2p["stdout"]
    # the Ascend 8p CI lines read the summary's FPS, accuracy and loss from our 8p log
    loss_file = ref_2p["out"] / f"train_{NET}_bs32_2p_acc_loss.txt"
    check_ascend_lines(ref_2p["log"], s, loss_file, fps=ASCEND_FPS_8P, batch=32)
    assert len(loss_file.read_text().split()) == 9  # 3 epochs x 3 steps, rank 0's step lines only
    # metrics.jsonl beside the checkpoints, written by rank 0 alone: each step and epoch once, the
    # evaluated epochs with the log's metrics
    rows = read_rows(ref_2p["ckpt"].parent / "metrics.jsonl")
    assert [r["step"] for r in rows if r["kind"] == "step"] == list(range(1, 10))
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert [(r["epoch"], r["step"]) for r in epochs] == [(1, 3), (2, 6), (3, 9)]
    assert [f"{r['metrics']['Acc']:.4f}" for r in epochs] == accs
    assert [f"{r['metrics']['mA']:.4f}" for r in epochs] == re.findall(r"^ mA: ([0-9.]+)$", log, re.M)

    # the saved checkpoint, evaluated alone in 1p, gives exactly the accuracy the 8p run reported
    r = run_script("train_eval_1p.sh", f"--data_path={small_data}", f"--pth_path={ref_2p['ckpt']}",
                   f"--device_id={REF_DEVICE}", "--workers=0")
    assert r.returncode == 0, r.stderr
    e, _ = testing.read_summary(ref_2p["out"] / f"{NET}_bs32_1p_eval.log")
    assert e["EvalAccuracy"] == s["TrainAccuracy"] and e["GlobalBatchSize"] == "32"
    check_ascend_lines(ref_2p["out"] / f"eval_{REF_DEVICE}.log", e, fps=ASCEND_FPS_1P, acc_key="EvalAccuracy")

    # a failed eval afterwards (missing checkpoint) leaves every earlier file byte-identical
    before = testing.digests(ref_2p["out"])
    r = run_script("train_eval_1p.sh", f"--data_path={small_data}", f"--pth_path={ref_2p['out']}/missing.pth",
                   f"--device_id={REF_DEVICE}", "--workers=0")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "missing.pth" in r.stderr
    after = testing.digests(ref_2p["out"])
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) == {f"eval_{REF_DEVICE}.failed.log"}


def test_max_restarts_resumes_to_the_same_weights(ref_2p, small_data):
    """Rank 1 SIGKILLs itself after step 5 (epoch 2 of 3) in the first attempt only; torchrun
    restarts the job, which resumes from the epoch-1 checkpoint and ends with the reference's weights."""
    device = 41
    out = fresh_output(device)
    r = run_script("train_full_8p.sh", f"--data_path={small_data}", f"--device_id={device}", "--max_restarts=1",
                   *SMALL_2P, RANK_SIZE="2", DEEPMAR_TEST_KILL_RANK_AT_STEP="1:5")
    assert r.returncode == 0, r.stderr
    log = (out / f"train_{device}.log").read_text()
    assert "--max-restarts=1" in log and re.search(r"exitcode\s*:?\s*-9", log)  # the killed worker
    assert "restart 1 of the job: resuming from test/output/41/exp_8p/model/checkpoint.path.tar" in log
    assert "at the end of epoch 1" in log
    assert same_weights(final_weights(out / "exp_8p" / "model" / "ckpt_epoch3.pth"), final_weights(ref_2p["ckpt"]))
    s, _ = testing.read_summary(out / f"{NET}_bs32_2p_acc.log")
    assert s["TrainAccuracy"] == ref_2p["summary"]["TrainAccuracy"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_equal_one_node(ref_2p, small_data):
    """Two invocations of the 8p script, one process each, as node 0 and node 1 of a 2-node job."""
    port = free_port()
    procs, outs = [], []
    for node, device in ((0, 42), (1, 43)):
        outs.append(fresh_output(device))
        args = ["bash", "test/train_full_8p.sh", f"--data_path={small_data}", f"--device_id={device}", "--nnodes=2",
                f"--node_rank={node}", "--addr=127.0.0.1", f"--master_port={port}", *SMALL_2P]
        # torchrun gives each of the reference run's 2 local workers one OpenMP thread; a 1-process node
        # keeps all cores, and another thread count sums floats in another order: same threads, same bits
        procs.append(subprocess.Popen(args, cwd=ref_2p["out"].parents[2],
                                      env=testing.script_env(RANK_SIZE="1", OMP_NUM_THREADS="1"),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
    log0 = (outs[0] / "train_42.log").read_text()
    assert "--nnodes=2 --node_rank=0 --master_addr=127.0.0.1" in log0 and "2 rank(s) x batch 16" in log0
    assert same_weights(final_weights(outs[0] / "exp_8p" / "model" / "ckpt_epoch3.pth"), final_weights(ref_2p["ckpt"]))
    assert not (outs[1] / "exp_8p" / "model").exists()  # only global rank 0 writes checkpoints

"""Puts the repo root and AlignedReID/ on sys.path; shared demo-data fixture."""
import sys
from pathlib import Path

import pytest

MODEL_DIR = Path(__file__).resolve().parents[1]
ROOT = MODEL_DIR.parent
for p in (str(MODEL_DIR), str(ROOT), str(MODEL_DIR / "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    """A prepared demo Market-1501 (raw folders written, then transformed)."""
    from aligned_reid.market1501 import prepare
    from alignedreid_runs import load_module

    make_raw = load_module("tools/make_demo_data.py").make_raw
    out = tmp_path_factory.mktemp("ar_demo")
    raw = out / "Market-1501-v15.09.15"
    make_raw(str(raw), seed=0, num_train_ids=32, num_test_ids=24, ims_per_train_id=8)
    prepare(str(raw), str(out / "market1501"))
    return out / "market1501"


@pytest.fixture(scope="session")
def full_run(demo_data):
    """train_full_1p.sh, tiny backbone, 4 epochs of 4 steps (step lines every 2 steps)."""
    import shutil

    from alignedreid_runs import TINY, script_run

    run = script_run("train_full_1p.sh", 91, f"--data_path={demo_data}", "--batch_size=32", "--epochs=4",
                     "--base_lr=1e-3", "--seed=0", "--log_steps=2", *TINY, case="AlignedReID_for_PyTorch_bs32_1p_acc")
    yield run
    shutil.rmtree(run.out, ignore_errors=True)


@pytest.fixture(scope="session")
def full_8p_run(demo_data):
    """The card's `train_full_8p.sh --data_path=...` with RANK_SIZE=2, tiny backbone, 2 epochs."""
    import shutil

    from alignedreid_runs import FULL_8P_ARGS, script_run

    run = script_run("train_full_8p.sh", 95, f"--data_path={demo_data}", *FULL_8P_ARGS,
                     case="AlignedReID_for_PyTorch_bs32_2p_acc", RANK_SIZE=2)
    yield run
    shutil.rmtree(run.out, ignore_errors=True)

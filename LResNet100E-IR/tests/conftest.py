import shutil
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for _p in (str(_HERE.parents[1]), str(_HERE.parent), str(_HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from arcface_helpers import MODEL_DIR, TINY, run


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """Raw faces_emore (train.rec/.idx/property + lfw/agedb_30/cfp_fp .bin) plus the prepared imgs/."""
    out = tmp_path_factory.mktemp("demo")
    r = run([sys.executable, "tools/make_demo_data.py", str(out), "--size=32", "--ids=16", "--per_id=24",
             "--pairs=200", "--seed=0"])
    assert r.returncode == 0, r.stderr
    root = Path(r.stdout.strip().splitlines()[-1])
    assert root == out / "faces_emore"
    return root


@pytest.fixture(scope="session")
def full_run(demo, tmp_path_factory):
    """train_full_1p.sh on the demo: 8 epochs of the tiny net; shared by the summary, learning,
    resume, eval and export tests. The per-epoch check embeds blocks of 100 of the 400 pair images."""
    out = tmp_path_factory.mktemp("full1p")
    r = run(["bash", "test/train_full_1p.sh", f"--data_path={demo}", "--batch_size=32", "--epochs=8",
             "--workers=0", "--lr=0.1", f"--save_dir={out}", "--device_id=11", "--eval_batch_size=100", *TINY])
    log_dir = MODEL_DIR / "test/output/11"
    yield r, log_dir, out
    shutil.rmtree(log_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def run_2p(demo):
    """train_full_8p.sh with RANK_SIZE=2 (gloo) on the demo read from train.rec, 2 epochs, its own
    checkpoint folder (test/output/13/models_full_8p); shared by the 8p tests. The per-epoch check's
    blocks of 100 pair images go to ranks 0, 1, 0, 1."""
    r = run(["bash", "test/train_full_8p.sh", f"--data_path={demo}", "--batch_size=32", "--epochs=2",
             "--workers=0", "--device_id=13", "--data_format=rec", "--lr=0.1", "--eval_batch_size=100", *TINY],
            RANK_SIZE="2")
    out = MODEL_DIR / "test/output/13"
    yield r, out
    shutil.rmtree(out, ignore_errors=True)

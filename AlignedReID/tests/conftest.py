"""Puts the repo root and AlignedReID/ on sys.path; shared demo-data fixture."""
import sys
from pathlib import Path

import pytest

MODEL_DIR = Path(__file__).resolve().parents[1]
ROOT = MODEL_DIR.parent
for p in (str(MODEL_DIR), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    """A prepared demo Market-1501 (raw folders written, then transformed)."""
    from aligned_reid.market1501 import prepare

    sys.path.insert(0, str(MODEL_DIR / "tools"))
    from make_demo_data import make_raw

    out = tmp_path_factory.mktemp("ar_demo")
    raw = out / "Market-1501-v15.09.15"
    make_raw(str(raw), seed=0, num_train_ids=32, num_test_ids=24, ims_per_train_id=8)
    prepare(str(raw), str(out / "market1501"))
    return out / "market1501"

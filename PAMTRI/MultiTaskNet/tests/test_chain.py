"""The two halves of PAMTRI together: tools/make_demo_data.py (raw VeRi -> PoseEstNet -> trans.py) writes the
heatmaps, segments and keypoint columns, and train_full_1p.sh trains MultiTaskNet on them with --heatmapaware
--segmentaware --keyptaware."""
import csv
import importlib.util
from collections import Counter
from pathlib import Path

import pytest
import torch

from common.testing import read_summary

from .conftest import PAMTRI_DIR, TINY, run_script

MAKE_DEMO = PAMTRI_DIR / "tools" / "make_demo_data.py"


@pytest.mark.e2e
def test_poseestnet_outputs_feed_multitasknet(demo_chain):
    # PAMTRI/conftest.py: make_demo_data.py (8 train ids, 1 PoseEstNet epoch, trans.py), shared with PoseEstNet
    root = Path(demo_chain[1].strip().splitlines()[-1])
    out = PAMTRI_DIR / "test" / "output" / "8"
    r = run_script("train_full_1p.sh", f"--data_path={root}", "--device_id=8", "--epochs=1",
                   "--batch_size=8", "--heatmapaware", "--segmentaware", "--keyptaware", *TINY)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s, _ = read_summary(out / "PAMTRI_for_PyTorch_bs8_1p_acc.log")
    assert float(s["TrainAccuracy"]) > 0 and float(s["ActualFPS"]) > 0
    ck = torch.load(out / "densenet121-xent-htri-veri-multitask" / "checkpoint_ep1.pth.tar", map_location="cpu",
                    weights_only=True)
    assert ck["state_dict"]["base.conv0.weight"].shape[1] == 52  # RGB + 36 heatmaps + 13 segments


def load_make_demo():
    spec = importlib.util.spec_from_file_location("pamtri_make_demo_data", MAKE_DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_attributes_of_query_and_test_occur_in_train_and_data_is_deterministic(tmp_path):
    """Colour/type accuracy goes through the train maps: a test class absent from training is an error
    whatever the model does. Every class must also come with at least 4 training vehicles (the default)."""
    demo = load_make_demo()
    small = dict(train_ids=12, test_ids=8, cameras=2, cams_per_id=1, per_cam=1, size=(40, 48))
    for seed in range(4):
        demo.write_raw(str(tmp_path / str(seed)), seed=seed, **small)
        veri = tmp_path / str(seed) / "veri"
        attrs = {split: {r[1]: (r[2], r[3]) for r in csv.reader(open(veri / f"label_{split}.csv"))}
                 for split in ("train", "query", "test")}
        assert len(attrs["train"]) == 12 and len(attrs["test"]) == 8 and attrs["query"] == attrs["test"]
        for k, what in ((0, "colour"), (1, "type")):
            train = Counter(a[k] for a in attrs["train"].values())
            assert {a[k] for a in attrs["test"].values()} <= set(train), (seed, what)
            assert min(train.values()) >= 4 and len(train) == 3, (seed, what, train)
    demo.write_raw(str(tmp_path / "again"), seed=3, **small)
    for split in ("train", "query", "test"):
        name = f"veri/label_{split}.csv"
        assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "3" / name).read_bytes()
    first = sorted((tmp_path / "3" / "veri" / "image_train").iterdir())[0]
    assert (tmp_path / "again" / "veri" / "image_train" / first.name).read_bytes() == first.read_bytes()

"""The two halves of PAMTRI together: tools/make_demo_data.py (raw VeRi -> PoseEstNet -> trans.py) writes the
heatmaps, segments and keypoint columns, and train_full_1p.sh trains MultiTaskNet on them with --heatmapaware
--segmentaware --keyptaware."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .conftest import PAMTRI_DIR, TINY, read_summary, run_script, script_env

MAKE_DEMO = PAMTRI_DIR / "tools" / "make_demo_data.py"


@pytest.mark.skipif(not MAKE_DEMO.is_file(), reason="PAMTRI/tools/make_demo_data.py not present")
def test_poseestnet_outputs_feed_multitasknet(tmp_path):
    r = subprocess.run([sys.executable, str(MAKE_DEMO), str(tmp_path / "demo"), "--train_ids=8", "--test_ids=4",
                        "--pose_epochs=1"], capture_output=True, text=True, env=script_env(), timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    root = Path(r.stdout.strip().splitlines()[-1])
    out = PAMTRI_DIR / "test" / "output" / "8"
    r = run_script(PAMTRI_DIR / "test" / "train_full_1p.sh", f"--data_path={root}", "--device_id=8", "--epochs=1",
                   "--batch_size=8", "--heatmapaware", "--segmentaware", "--keyptaware", *TINY)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = read_summary(out / "PAMTRI_for_PyTorch_bs8_1p_acc.log")
    assert float(s["TrainAccuracy"]) > 0 and float(s["ActualFPS"]) > 0
    ck = torch.load(out / "densenet121-xent-htri-veri-multitask" / "checkpoint_ep1.pth.tar", map_location="cpu",
                    weights_only=False)
    assert ck["state_dict"]["base.conv0.weight"].shape[1] == 52  # RGB + 36 heatmaps + 13 segments

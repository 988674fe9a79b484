"""Bad input ends with one clear line on stderr and a non-zero exit, before any training step."""
import os
import shutil

import pytest

from common.errors import main_guard

from .conftest import TINY, load_entry, run_py
from .veri_fixture import make_veri


def small_veri(path, **kw):
    return make_veri(str(path), train_ids=2, imgs_per_id=4, test_ids=1, gallery_per_id=1, **kw)


def run_train(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main_guard(load_entry("train.py").main)([*args, *TINY, "--device=cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    return exc.value.code, err


def test_label_csv_with_wrong_column_count(tmp_path):
    root = small_veri(tmp_path)
    csv = os.path.join(root, "veri", "label_test.csv")
    rows = open(csv).read().splitlines()
    rows[1] = ",".join(rows[1].split(",")[:40])
    open(csv, "w").write("\n".join(rows) + "\n")
    r = run_py("train.py", f"--root={root}", "--multitask", f"--save-dir={tmp_path / 'log'}", *TINY)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "Error: label_test.csv line 2: expected 112 columns (name,vid,color,type,x0,y0,c0,...,x35,y35,c35), got 40"]


def test_missing_heatmap_folder_for_one_image(tmp_path, capsys):
    root = small_veri(tmp_path)
    stem = sorted(os.listdir(os.path.join(root, "veri", "heatmap_train")))[3]
    shutil.rmtree(os.path.join(root, "veri", "heatmap_train", stem))
    code, err = run_train(capsys, f"--root={root}", "--heatmapaware", f"--save-dir={tmp_path / 'log'}")
    assert code == 1 and len(err) == 1
    assert err[0].startswith("Error: --heatmapaware: heatmap folder missing for 1 of 8 train images, e.g. ")
    assert stem in err[0]


def test_heatmapaware_on_data_without_heatmaps(tmp_path, capsys):
    root = small_veri(tmp_path, heatmaps=False)
    code, err = run_train(capsys, f"--root={root}", "--heatmapaware", f"--save-dir={tmp_path / 'log'}")
    assert code == 1 and len(err) == 1
    assert err[0].startswith("Error: --heatmapaware: heatmap folder missing for 8 of 8 train images")
    shutil.rmtree(os.path.join(root, "veri", "heatmap_train"))
    code, err = run_train(capsys, f"--root={root}", "--heatmapaware=True", f"--save-dir={tmp_path / 'log'}")
    assert code == 1 and len(err) == 1 and "--heatmapaware needs" in err[0] and "PoseEstNet trans.py" in err[0]


def test_other_user_errors(tmp_path, capsys):
    log = f"--save-dir={tmp_path / 'log'}"  # never the default ./log inside the checkout
    code, err = run_train(capsys, f"--root={tmp_path / 'nowhere'}", log)
    assert code == 1 and err == [f"Error: dataset root not found: {tmp_path / 'nowhere'} (expected a folder "
                                 "holding veri/)"]
    root = small_veri(tmp_path / "d", heatmaps=False, segments=False)
    code, err = run_train(capsys, f"--root={root}", "--pre_trained=True", log)
    assert code == 1 and len(err) == 1 and "--pre_ckpt_path" in err[0]
    code, err = run_train(capsys, f"--root={root}", "--distribute=True", log)
    assert code == 1 and len(err) == 1 and "torchrun" in err[0]

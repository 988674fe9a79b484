"""Bad input ends with one clear line on stderr and exit 1, no traceback; numeric flags are checked
when parsed, before anything is read or written (issue 9 section 2)."""
import shutil
import sys

import pytest
from arcface_helpers import MODEL_DIR, TINY, call_main, one_error, one_error_line, run


@pytest.mark.e2e
def test_truncated_rec(demo, tmp_path):
    root = tmp_path / "faces_emore"
    root.mkdir()
    for name in ("train.idx", "property", "lfw.bin"):
        shutil.copy(demo / name, root / name)
    data = (demo / "train.rec").read_bytes()
    (root / "train.rec").write_bytes(data[: len(data) // 2])
    r = run([sys.executable, "train.py", f"--data_path={root}", "--data_format=rec", "--num_workers=0",
             f"--save_dir={tmp_path}/run", *TINY])
    line = one_error_line(r)
    assert "train.rec is truncated" in line and "record" in line


def test_bin_that_is_not_a_pair_pickle(tmp_path, capsys):
    import pickle

    p = tmp_path / "lfw.bin"
    p.write_bytes(pickle.dumps({"images": []}))
    code, _, err = call_main("eval.py", [f"--data_path={p}", f"--pth_path={tmp_path / 'none.pth'}"], capsys)
    assert f"verification pair file {p}: the file holds a dict" in one_error(code, err)
    p.write_bytes(pickle.dumps(([b"a", b"b", b"c"], [True]), protocol=2))
    code, _, err = call_main("eval.py", [f"--data_path={p}", f"--pth_path={tmp_path / 'none.pth'}"], capsys)
    assert "odd number of pair images (3)" in one_error(code, err)


@pytest.mark.e2e
def test_corrupt_image_in_rec_names_the_record(demo, tmp_path):
    """A record whose JPEG does not decode stops training with its key (from a loader worker)."""
    from face_arcface.recordio import IndexedRecordWriter, pack

    root = tmp_path / "faces_emore"
    root.mkdir()
    shutil.copy(demo / "lfw.bin", root / "lfw.bin")
    with IndexedRecordWriter(root / "train.idx", root / "train.rec") as w:
        w.write_idx(0, pack([3, 4], b""))
        w.write_idx(1, pack(0.0, b"\xff\xd8 not a jpeg"))
        w.write_idx(2, pack(0.0, b"\xff\xd8 not a jpeg"))
        w.write_idx(3, pack([1, 3], b""))
    r = run([sys.executable, "train.py", f"--data_path={root}", "--num_workers=1", "--batch-size=2",
             f"--save_dir={tmp_path}/run", *TINY])
    line = one_error_line(r)
    assert "cannot decode image" in line and "train.rec record" in line and "--skip_bad_images" in line


TRAIN_FLAG_CASES = [  # flag value -> the words of the one-line refusal
    ("--batch_size=0", "argument --batch-size/--batch_size/-b: expected an integer >= 1, got 0"),
    ("--batch_size=-4", "expected an integer >= 1, got -4"),
    ("--batch_size=abc", "expected an integer >= 1, got 'abc'"),
    ("--epochs=0", "argument --epochs/-e: expected an integer >= 1, got 0"),
    ("--max_steps=-2", "argument --max_steps: expected an integer >= 0, got -2"),
    ("--max_iter=-2", "argument --max_iter: expected an integer >= -1, got -2"),
    ("--start_epoch=-1", "argument --start_epoch: expected an integer >= 0"),
    ("--lr=-1", "argument --lr: expected a number > 0, got -1"),
    ("--lr=nan", "argument --lr: expected a number > 0, got nan"),
    ("--num_workers=-1", "argument --num_workers/--num-workers/--workers/-w: expected an integer >= 0"),
    ("--seed=-1", "argument --seed: expected an integer in [0, 4294967295]"),
    ("--input_size=8", "argument --input_size: expected an integer in [16, 1024], got 8"),
    ("--embedding_size=0", "argument --embedding_size: expected an integer >= 1"),
    ("--drop_ratio=1.5", "argument --drop_ratio: expected a number in [0, 1]"),
    ("--eval_folds=1", "argument --eval_folds: expected an integer >= 2"),
    ("--eval_batch_size=0", "argument --eval_batch_size: expected an integer >= 1"),
    ("--loss_scale=0", "argument --loss_scale/--loss-scale: expected 'dynamic' or a number > 0"),
    ("--milestones=12,x", "argument --milestones: expected comma-separated epochs"),
    ("--units=1,1,1", "argument --units: expected 4 positive integers"),
    ("--save_every=-1", "argument --save_every: expected an integer >= 0"),
    ("--fps_warmup=-1", "argument --fps_warmup: expected an integer >= 0"),
    ("--device_id=-1", "argument --device_id: expected an integer >= 0"),
    ("--distributed=2", "argument --distributed: expected an integer in [0, 1]"),
    ("--is_finetune=2", "argument --is_finetune: expected an integer in [0, 1]"),
]


@pytest.mark.parametrize("flag,words", TRAIN_FLAG_CASES)
def test_train_numeric_flags_one_line_before_anything_is_written(flag, words, tmp_path, capsys):
    save = tmp_path / "models"
    code, out, err = call_main("train.py", [f"--data_path={tmp_path}", f"--save_dir={save}", flag], capsys)
    assert words in one_error(code, err)
    assert not save.exists() and out == ""


@pytest.mark.parametrize("program,flag,words", [
    ("eval.py", "--batch_size=0", "argument --batch-size/--batch_size/-b: expected an integer >= 1, got 0"),
    ("eval.py", "--batch_size=-1", "expected an integer >= 1, got -1"),
    ("eval.py", "--nfolds=1", "argument --nfolds: expected an integer >= 2, got 1"),
    ("eval.py", "--num_workers=-2", "expected an integer >= 0, got -2"),
    ("eval.py", "--input_size=0", "argument --input_size: expected an integer in [16, 1024]"),
    ("export.py", "--opset=0", "argument --opset: expected an integer >= 7, got 0"),
    ("export.py", "--batch=0", "argument --batch: expected an integer >= 1, got 0"),
    ("export.py", "--tolerance=-1", "argument --tolerance: expected a number > 0"),
])
def test_eval_and_export_numeric_flags(program, flag, words, tmp_path, capsys):
    code, _, err = call_main(program, ["--data_path=x.bin", "--pth_path=x.pth", flag] if program == "eval.py"
                             else ["--pth_path=x.pth", flag], capsys)
    assert words in one_error(code, err)


def test_start_epoch_past_epochs_and_one_image_per_device(demo, tmp_path, capsys):
    code, _, err = call_main("train.py", [f"--data_path={demo}", "--start_epoch=3", "--epochs=3"], capsys)
    assert "--start_epoch 3 is not below --epochs 3: nothing to train" in one_error(code, err)
    code, _, err = call_main("train.py", [f"--data_path={demo}", "--batch-size=1", f"--save_dir={tmp_path}"], capsys)
    assert "BatchNorm needs at least 2: use --batch-size >= 2" in one_error(code, err)
    assert not list(tmp_path.iterdir())


def test_tensorboard_without_the_package_is_one_line_before_anything_is_written(demo, tmp_path, capsys,
                                                                                  monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as on a machine without tensorboard
    code, _, err = call_main("train.py", [f"--data_path={demo}", f"--save_dir={tmp_path}/run", "--max_steps=1",
                                          f"--tensorboard={tmp_path}/tb", "--num_workers=0", *TINY], capsys)
    assert "--tensorboard needs the tensorboard package" in one_error(code, err)
    assert not (tmp_path / "run").exists() and not (tmp_path / "tb").exists()


@pytest.mark.e2e
def test_missing_data_path_contract():
    r = run(["bash", "test/train_full_1p.sh"])
    assert r.returncode == 1 and r.stderr.strip() == '[Error] para "data_path" must be config'
    assert not (MODEL_DIR / "test/output/0/train_0.running.log").exists()

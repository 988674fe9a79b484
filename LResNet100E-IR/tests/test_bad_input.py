"""Bad input ends with one clear line on stderr and a non-zero exit, no traceback."""
import pickle
import shutil
import sys

from arcface_helpers import TINY, run


def one_error_line(r):
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    return lines[0]


def test_truncated_rec(demo, tmp_path):
    root = tmp_path / "faces_emore"
    root.mkdir()
    for name in ("train.idx", "property"):
        shutil.copy(demo / name, root / name)
    data = (demo / "train.rec").read_bytes()
    (root / "train.rec").write_bytes(data[: len(data) // 2])
    r = run([sys.executable, "train.py", f"--data_path={root}", "--data_format=rec", "--num_workers=0", *TINY])
    line = one_error_line(r)
    assert "train.rec is truncated" in line and "record" in line


def test_bin_that_is_not_a_pair_pickle(tmp_path):
    p = tmp_path / "lfw.bin"
    p.write_bytes(pickle.dumps({"images": []}))
    r = run([sys.executable, "eval.py", f"--data_path={p}", f"--pth_path={tmp_path / 'none.pth'}"])
    assert "lfw.bin is not a verification pair file" in one_error_line(r)


def test_odd_number_of_pair_images(tmp_path):
    p = tmp_path / "lfw.bin"
    p.write_bytes(pickle.dumps(([b"a", b"b", b"c"], [True]), protocol=2))
    r = run([sys.executable, "eval.py", f"--data_path={p}", f"--pth_path={tmp_path / 'none.pth'}"])
    assert "odd number of pair images (3)" in one_error_line(r)


def test_corrupt_image_in_rec_names_the_record(demo, tmp_path):
    """A record whose JPEG does not decode stops training with its key (from a loader worker)."""
    sys.path.insert(0, str(__import__("arcface_helpers").MODEL_DIR))
    from face_arcface.recordio import IndexedRecordWriter, pack

    root = tmp_path / "faces_emore"
    root.mkdir()
    with IndexedRecordWriter(root / "train.idx", root / "train.rec") as w:
        w.write_idx(0, pack([3, 4], b""))
        w.write_idx(1, pack(0.0, b"\xff\xd8 not a jpeg"))
        w.write_idx(2, pack(0.0, b"\xff\xd8 not a jpeg"))
        w.write_idx(3, pack([1, 3], b""))
    r = run([sys.executable, "train.py", f"--data_path={root}", "--num_workers=1", "--batch-size=2", *TINY])
    line = one_error_line(r)
    assert "cannot decode image" in line and "train.rec record" in line and "--skip_bad_images" in line

"""Readers of the raw and prepared faces_emore layouts and the .bin pair files."""
import pickle
import sys

import cv2
import numpy as np
import pytest
from face_arcface.faces_emore import FolderFaces, RecordFaces, class_index, decode_bin, load_bin
from face_arcface.recordio import IndexedRecordWriter, pack
from PIL import Image

from common.errors import UserError


def test_class_index_is_lexicographic_rank_of_str_label():
    # ImageFolder sorts "0","1","10","11","2",...: label 2 comes after 0,1,10..15 (16 labels)
    idx = class_index(range(16))
    assert idx[0] == 0 and idx[1] == 1 and idx[10] == 2 and idx[15] == 7 and idx[2] == 8 and idx[9] == 15


def _blue_rec(root):
    blue_bgr = np.zeros((8, 8, 3), np.uint8)
    blue_bgr[..., 0] = 255
    ok, jpg = cv2.imencode(".png", blue_bgr)  # lossless, so pixel values are exact
    with IndexedRecordWriter(root / "train.idx", root / "train.rec") as w:
        w.write_idx(0, pack([3, 4], b""))
        w.write_idx(1, pack(7.0, jpg.tobytes()))
        w.write_idx(2, pack([7.0, 1.0], jpg.tobytes()))  # multi-label header: identity first
        w.write_idx(3, pack([1, 3], b""))
    return blue_bgr


def test_colour_order_rec_prepared_and_bin(tmp_path):
    """Upstream feeds B,G,R: a blue face must reach the network as (255, 0, 0) from every path."""
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "tools"))
    from prepare_data import prepare

    blue_bgr = _blue_rec(tmp_path)
    rec = RecordFaces(tmp_path, input_size=8)
    assert len(rec) == 2 and rec.num_classes == 1
    img, label = rec[1]
    assert label == 0 and img.shape == (8, 8, 3) and tuple(img[0, 0].tolist()) == (255, 0, 0)
    prepare(tmp_path, workers=1, quiet=True)
    # upstream's swap: the saved file shows the face red to any viewer
    with Image.open(tmp_path / "imgs" / "7" / "1.jpg") as im:
        r, g, b = np.asarray(im.convert("RGB")).reshape(-1, 3).mean(0)
    assert r > 240 and g < 15 and b < 15
    folder = FolderFaces(tmp_path / "imgs", input_size=8)
    f_img, f_label = folder[0]
    assert f_label == 0 and np.abs(f_img.numpy().astype(int) - blue_bgr).max() < 15
    with open(tmp_path / "p.bin", "wb") as f:
        pickle.dump(([cv2.imencode(".png", blue_bgr)[1].tobytes()] * 2, [True]), f, protocol=2)
    images, issame = decode_bin(tmp_path / "p.bin", 8)
    assert images.shape == (2, 8, 8, 3) and tuple(images[0, 0, 0]) == (255, 0, 0) and issame.tolist() == [True]


def test_demo_rec_and_folder_agree(demo):
    rec, folder = RecordFaces(demo, 32), FolderFaces(demo / "imgs", 32)
    assert len(rec) == len(folder) == 16 * 24 and rec.num_classes == folder.num_classes == 16
    assert sorted(rec.targets.tolist()) == sorted(folder.targets.tolist())
    key = int(folder.paths[30].rsplit("/", 1)[1][:-4])
    i = int(np.nonzero(rec.keys == key)[0][0])
    (a, la), (b, lb) = rec[i], folder[30]
    assert la == lb and np.abs(a.numpy().astype(int) - b.numpy().astype(int)).mean() < 6  # 2nd JPEG pass only


@pytest.mark.parametrize("obj,match", [
    (b"not a pickle", "cannot read verification pair file"),
    ({"a": 1}, "the file holds a dict, expected a tuple or list"),
    (([b"x"] * 3, [True]), "odd number of pair images"),
    (([b"x"] * 4, [True]), "4 images .2 pairs. but 1 issame"),
])
def test_bad_bin_files(tmp_path, obj, match):
    p = tmp_path / "bad.bin"
    p.write_bytes(obj if isinstance(obj, bytes) else pickle.dumps(obj, protocol=2))
    with pytest.raises(UserError, match=match):
        load_bin(p)

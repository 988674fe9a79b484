"""Market-1501 names, the prepare step on a hand-made raw set, pickle reading (as data only:
upstream Python 2 files, malicious and wrong-shape files), PK sampling."""
import os
import pickle

import numpy as np
import pytest
from aligned_reid import market1501 as m
from aligned_reid.sampler import PKBatchSampler
from PIL import Image

from common import safe_pickle
from common.errors import UserError
from common.testing import malicious_pickle


def test_parse_names():
    assert m.parse_original_name("0002_c1s1_000451_03.jpg") == (2, 1)
    assert m.parse_original_name("-1_c3s1_000401_03.jpg") == (-1, 3)
    assert m.parse_original_name("0000_c6s2_000001_00.jpg") == (0, 6)
    assert m.parse_new_name("00000002_0001_00000000.jpg") == (2, 1)
    assert len(m.NEW_NAME.format(1501, 6, 12)) == 26


RAW = {
    "bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c1s1_000551_01.jpg", "0007_c2s3_000101_01.jpg"],
    "bounding_box_test": ["-1_c1s1_000401_03.jpg", "0000_c1s1_000001_00.jpg", "0003_c1s1_000201_01.jpg",
                          "0003_c2s1_000301_01.jpg"],
    "query": ["0003_c1s1_000211_00.jpg"],
    "gt_bbox": ["0003_c1s1_000221_00.jpg", "0003_c3s1_000231_00.jpg", "0005_c1s1_000241_00.jpg"],
}


@pytest.fixture()
def tiny_raw(tmp_path):
    for d, names in RAW.items():
        os.makedirs(tmp_path / "raw" / d)
        for n in names:
            Image.new("RGB", (64, 128), (10, 20, 30)).save(tmp_path / "raw" / d / n)
    return tmp_path


def test_prepare_names_order_marks_by_hand(tiny_raw):
    parts = m.prepare(str(tiny_raw / "raw"), str(tiny_raw / "out"))
    assert parts["trainval_im_names"] == ["00000002_0001_00000000.jpg", "00000002_0001_00000001.jpg",
                                          "00000007_0002_00000000.jpg"]
    assert parts["trainval_ids2labels"] == {2: 0, 7: 1}
    # (3, cam 1) counts on across folders: gallery k=0, query k=1, multi-query k=2;
    # junk '-1' dropped, distractor '0000' kept, gt_bbox only for query (id, cam) pairs
    assert parts["test_im_names"] == ["00000003_0001_00000001.jpg", "00000003_0001_00000002.jpg",
                                      "00000000_0001_00000000.jpg", "00000003_0001_00000000.jpg",
                                      "00000003_0002_00000000.jpg"]
    assert parts["test_marks"] == [0, 2, 1, 1, 1]
    mapping = safe_pickle.load(tiny_raw / "out" / "ori_to_new_im_name.pkl")
    assert mapping["bounding_box_test/0003_c2s1_000301_01.jpg"] == "00000003_0002_00000000.jpg"
    assert "bounding_box_test/-1_c1s1_000401_03.jpg" not in mapping and len(mapping) == 3 + 3 + 1 + 1
    split = safe_pickle.load(tiny_raw / "out" / "train_test_split.pkl")
    assert split["mq_im_names"] == ["00000003_0001_00000002.jpg"]
    assert sorted(os.listdir(tiny_raw / "out" / "images")) == sorted(mapping.values())
    with open(tiny_raw / "out" / "partitions.pkl", "rb") as f:
        assert f.read(2) == b"\x80\x02"  # protocol 2, as upstream


def _short(s: bytes) -> bytes:
    return b"U" + bytes([len(s)]) + s


def test_reads_a_python2_pickle(tmp_path):
    # upstream's files come from Python 2: str values are SHORT_BINSTRING opcodes
    names = [b"00000002_0001_00000000.jpg", b"00000000_0001_00000000.jpg"]
    blob = (b"\x80\x02}(" + _short(b"trainval_im_names") + b"](" + _short(names[0]) + b"e"
            + _short(b"trainval_ids2labels") + b"}(K\x02K\x00u"
            + _short(b"test_im_names") + b"](" + _short(names[0]) + _short(names[1]) + b"e"
            + _short(b"test_marks") + b"](K\x00K\x01eu.")
    (tmp_path / "partitions.pkl").write_bytes(blob)
    parts = m.load_partitions(str(tmp_path))
    assert parts["trainval_im_names"] == ["00000002_0001_00000000.jpg"]
    assert parts["test_im_names"][1] == "00000000_0001_00000000.jpg"
    assert parts["trainval_ids2labels"] == {2: 0} and parts["test_marks"] == [0, 1]


def _py2(obj) -> bytes:
    """obj pickled as Python 2's cPickle (protocol 2) writes it: str as SHORT_BINSTRING bytes."""
    def enc(o):
        if isinstance(o, dict):
            return b"}(" + b"".join(enc(k) + enc(v) for k, v in o.items()) + b"u"
        if isinstance(o, list):
            return b"](" + b"".join(enc(v) for v in o) + b"e"
        if isinstance(o, int):
            assert 0 <= o < 256
            return b"K" + bytes([o])
        return _short(o.encode())
    return b"\x80\x02" + enc(obj) + b"."


def test_check_reads_upstream_python2_pickles(tiny_raw, capsys):
    """tools/transform_market1501.py --check on a folder whose three pickles are Python 2 files."""
    from alignedreid_runs import load_module

    transform_market1501 = load_module("tools/transform_market1501.py")
    parts = m.prepare(str(tiny_raw / "raw"), str(tiny_raw / "out"))
    out = tiny_raw / "out"
    mapping = safe_pickle.load(out / "ori_to_new_im_name.pkl")
    split = safe_pickle.load(out / "train_test_split.pkl")
    parts = {k: v for k, v in parts.items() if k in ("trainval_im_names", "trainval_ids2labels", "test_im_names",
                                                      "test_marks")}
    for name, obj in (("partitions.pkl", parts), ("train_test_split.pkl", split), ("ori_to_new_im_name.pkl", mapping)):
        (out / name).write_bytes(_py2(obj))
    assert (out / "ori_to_new_im_name.pkl").read_bytes()[:5] == b"\x80\x02}(U"  # Python 2 str opcodes
    transform_market1501.main(["--check", str(out)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "trainval 3 images / 2 ids; test: query 1, multi-query 1, gallery 3; 8 original names mapped"
    assert lines[1].endswith("images/ agree")
    (out / "ori_to_new_im_name.pkl").write_bytes(_py2({k: v for k, v in mapping.items() if "query" not in k}))
    with pytest.raises(UserError, match="no original name for 1 image.*00000003_0001_00000001.jpg"):
        m.check_prepared(str(out))


@pytest.mark.parametrize("name,reader", [("partitions.pkl", lambda d: m.load_partitions(d)),
                                         ("partitions.pkl", lambda d: m.load_partitions(d, "partitions.pkl")),
                                         ("train_test_split.pkl", m.load_split),
                                         ("ori_to_new_im_name.pkl", m.load_name_mapping)])
def test_malicious_dataset_pickles_are_refused_without_running(tmp_path, name, reader):
    marker = tmp_path / "ran"
    malicious_pickle(tmp_path / name, marker, wrap=lambda payload: {"trainval_im_names": [payload]})
    with pytest.raises(UserError, match=f"refused to load .*{name}: it references (posix|os).system"):
        reader(str(tmp_path))
    assert not marker.exists()


@pytest.mark.parametrize("obj,needle", [
    (7, "holds a int, expected a dict"),
    ({"trainval_im_names": 3, "trainval_ids2labels": {}, "test_im_names": [], "test_marks": []},
     "'trainval_im_names' holds a int, expected a list or tuple"),
    ({"trainval_im_names": [1], "trainval_ids2labels": {}, "test_im_names": [], "test_marks": []},
     "'trainval_im_names' holds a int, expected image names"),
    ({"trainval_im_names": [], "trainval_ids2labels": [1], "test_im_names": [], "test_marks": []},
     "'trainval_ids2labels' holds a list, expected a dict"),
    ({"trainval_im_names": [], "trainval_ids2labels": {}, "test_im_names": ["a"], "test_marks": ["q"]},
     "'test_marks' must hold integers"),
])
def test_partitions_of_the_wrong_shape_are_one_line(tmp_path, obj, needle):
    (tmp_path / "partitions.pkl").write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(UserError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        m.load_partitions(str(tmp_path))


def test_decodes_bytes_arrays(tmp_path):
    parts = {"trainval_im_names": ["00000002_0001_00000000.jpg"], "trainval_ids2labels": {2: 0},
             "train_im_names": np.array([b"00000002_0001_00000000.jpg"], dtype="S26"),
             "val_im_names": [np.bytes_(b"00000002_0001_00000000.jpg")], "val_marks": [0],
             "test_im_names": ["00000002_0001_00000000.jpg"], "test_marks": [0]}
    with open(tmp_path / "partitions.pkl", "wb") as f:
        pickle.dump(parts, f, protocol=2)
    out = m.load_partitions(str(tmp_path))
    assert out["train_im_names"] == ["00000002_0001_00000000.jpg"]
    assert out["val_im_names"] == ["00000002_0001_00000000.jpg"]


def test_missing_partitions_and_missing_image_are_user_errors(tiny_raw):
    with pytest.raises(UserError, match="partitions.pkl not found"):
        m.load_partitions(str(tiny_raw))
    parts = m.prepare(str(tiny_raw / "raw"), str(tiny_raw / "out"))
    os.remove(tiny_raw / "out" / "images" / "00000007_0002_00000000.jpg")
    with pytest.raises(UserError, match="1 trainval image.*00000007_0002_00000000.jpg"):
        m.TrainSplit(str(tiny_raw / "out"), parts)


def test_pk_sampler_by_hand():
    # id 0: 2 images (< K=4, drawn with replacement); ids 1, 2: 5 images; id 3: 4 images
    labels = [0, 0] + [1] * 5 + [2] * 5 + [3] * 4
    s = PKBatchSampler(labels, ids_per_batch=2, ims_per_id=4, seed=3)
    assert len(s) == 2
    s1 = PKBatchSampler(labels, ids_per_batch=3, ims_per_id=4, seed=3)
    assert len(s1) == 1  # 4 ids // 3: the partial batch is dropped
    s.set_epoch(1)
    batches = list(s)
    assert [len(b) for b in batches] == [8, 8]
    seen = set()
    for b in batches:
        idx = [i for i, _ in b]
        for k in range(2):
            group = idx[4 * k:4 * k + 4]
            pid = labels[group[0]]
            assert all(labels[i] == pid for i in group)
            if pid != 0:
                assert len(set(group)) == 4  # enough images: no repeats
            seen.add(pid)
    assert seen == {0, 1, 2, 3}  # one pass over the ids
    assert list(s) == batches  # a function of (seed, epoch)
    s.set_epoch(2)
    assert list(s) != batches
    s.set_epoch(1, start_batch=1)
    assert list(s) == batches[1:]


def test_pk_sampler_ranks_get_disjoint_ids_and_equal_batches():
    labels = np.repeat(np.arange(11), 4)
    r0 = PKBatchSampler(labels, 2, 4, seed=0, rank=0, world_size=2)
    r1 = PKBatchSampler(labels, 2, 4, seed=0, rank=1, world_size=2)
    assert len(r0) == len(r1) == 2  # 11 ids -> 5 per rank -> 2 batches of 2
    ids0 = {labels[i] for b in r0 for i, _ in b}
    ids1 = {labels[i] for b in r1 for i, _ in b}
    assert not ids0 & ids1
    with pytest.raises(UserError, match="no full batch"):
        PKBatchSampler(labels, 6, 4, world_size=2)

"""VeRi reading and the input MultiTaskNet builds from it, checked against hand-computed values."""
import os

import cv2
import numpy as np
import pytest
import torch
from multitasknet import transforms as T
from multitasknet.dataset import VeRiDataset, collate
from multitasknet.veri import VeRi, camid_from_name, read_label_csv, relabel_map, segment_gate

from common.errors import UserError

W, H = 40, 20  # the image's original size


def write_png_as_jpg(path, array):
    """Lossless pixels under the .jpg name the format asks for (cv2.imread goes by content)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ok, buf = cv2.imencode(".png", array)
    assert ok
    with open(path, "wb") as f:
        f.write(buf.tobytes())


def keypoints_row(conf):
    kp = np.zeros((36, 3))
    kp[:, 0], kp[:, 1], kp[:, 2] = 20.0, 10.0, conf
    kp[0, :2] = (10.0, 5.0)
    return kp


def one_image_veri(root, conf, heatmaps=True, segments=True, columns=112):
    """One image per split: RGB (10,20,30), heatmap j = 5*j, segment s = 100+10*s, all constant."""
    d = os.path.join(root, "veri")
    name = "0002_c003_00030600_0.jpg"
    for split in ("train", "query", "test"):
        bgr = np.empty((H, W, 3), np.uint8)
        bgr[:] = (30, 20, 10)
        write_png_as_jpg(os.path.join(d, f"image_{split}", name), bgr)
        if heatmaps:
            for j in range(36):
                write_png_as_jpg(os.path.join(d, f"heatmap_{split}", name[:-4], f"{j:02d}.jpg"),
                                 np.full((64, 64), 5 * j, np.uint8))
        if segments:
            for s in range(13):
                write_png_as_jpg(os.path.join(d, f"segment_{split}", name[:-4], f"{s:02d}.jpg"),
                                 np.full((64, 64), 100 + 10 * s, np.uint8))
        row = [name, "2", "7", "4"] + [f"{v:.3f}" for v in keypoints_row(conf).reshape(-1)]
        with open(os.path.join(d, f"label_{split}.csv"), "w") as f:
            f.write(",".join(row[:columns]) + "\n")
    return d, name


def test_camid_from_name():
    assert camid_from_name("0002_c002_00030600_0.jpg") == 2
    assert camid_from_name("0776_c020_00012345_1.jpg") == 20
    assert camid_from_name("12345.jpg") == -1


def test_relabel_is_ascending_raw_order():
    assert relabel_map([5, 2, 9, 2]) == {2: 0, 5: 1, 9: 2}


def test_segment_gate_rule():
    conf = np.full(36, 0.9)
    conf[5] = 0.3    # corner of channels 00 (5,15,16,17) and 01 (5,6,12,15)
    conf[35] = 0.5   # exactly 0.5 is kept: the rule is c < 0.5
    gate = segment_gate(conf)
    assert gate.tolist() == [False, False] + [True] * 11
    conf[33] = 0.49  # channels 03 (23,33,34,35), 04 (23,24,30,33), 10 (14,15,33,32), 11 (15,16,34,33)
    assert np.flatnonzero(~segment_gate(conf)).tolist() == [0, 1, 3, 4, 10, 11]


def test_label_csv_wrong_column_count(tmp_path):
    p = tmp_path / "label_train.csv"
    p.write_text("a.jpg,1,2,3\n")
    with pytest.raises(UserError, match=r"label_train.csv line 1: expected 112 columns .* got 4"):
        read_label_csv(str(p))


def test_label_csv_values(tmp_path):
    d, name = one_image_veri(str(tmp_path), 0.9)
    names, labels, kp = read_label_csv(os.path.join(d, "label_query.csv"))
    assert names == [name] and labels.tolist() == [[2, 7, 4]]
    assert kp.shape == (1, 36, 3) and kp[0, 0].tolist() == pytest.approx([10.0, 5.0, 0.9])


def test_stack_channels_zeroing_and_keypoints(tmp_path):
    conf = np.full(36, 0.9)
    conf[5], conf[35] = 0.3, 0.5
    d, name = one_image_veri(str(tmp_path), conf)
    for s in (0, 1):  # gated channels: their files are never read, so they may as well be missing
        os.remove(os.path.join(d, "segment_query", name[:-4], f"{s:02d}.jpg"))
    veri = VeRi(str(tmp_path), heatmaps=True, segments=True, verbose=False)
    ds = VeRiDataset(veri.query, heatmaps=True, segments=True, train=False, width=64, height=32)
    stack, vid, camid, color, vtype, kvec = ds[0]
    assert stack.shape == (32, 64, 52) and stack.dtype == np.uint8
    expected = [10, 20, 30] + [5 * j for j in range(36)] + [0, 0] + [100 + 10 * s for s in range(2, 13)]
    assert stack[16, 32].tolist() == expected
    assert (stack == np.asarray(expected, np.uint8)).all()  # constant inputs stay constant through resizing
    assert (vid, camid, color, vtype) == (2, 3, 7, 4)  # query keeps raw labels; camera from the file name
    # keypoint 0 at (10, 5) of a 40x20 image -> (16, 8) at 64x32 -> 16/64-0.5, 8/32-0.5, c-0.5
    assert kvec.shape == (108,) and kvec.dtype == np.float32
    assert kvec[:3].tolist() == pytest.approx([-0.25, -0.25, 0.4], abs=1e-6)
    assert kvec[3 * 35 + 2] == pytest.approx(0.0)  # c = 0.5 -> 0
    # train split: relabelled 0-based
    train = VeRiDataset(veri.train, heatmaps=True, segments=False, train=False, width=64, height=32)
    s2, vid2, _, color2, type2, _ = train[0]
    assert s2.shape[2] == 39 and (vid2, color2, type2) == (0, 0, 0)


def test_rgb_only_stack_ignores_heatmap_folders(tmp_path):
    one_image_veri(str(tmp_path), 0.9, heatmaps=False, segments=False)
    veri = VeRi(str(tmp_path), verbose=False)
    stack = VeRiDataset(veri.gallery, width=8, height=8)[0][0]
    assert stack.shape == (8, 8, 3) and stack[0, 0].tolist() == [10, 20, 30]


class ScriptedRng:
    """Python-random API returning given values in order."""

    def __init__(self, values):
        self.values = list(values)

    def uniform(self, a, b):
        return self.values.pop(0)

    def random(self):
        return self.values.pop(0)


def test_translation_crop_and_flip_move_keypoints():
    stack = np.zeros((H, W, 3), np.uint8)
    kp = keypoints_row(0.7).astype(np.float32)
    # 0.3 <= 0.5: crop branch; resize to 72x72 (= round(64*1.125)); x1 = round(4.6) = 5, y1 = round(2.2) = 2
    out, k = T.random_2d_translation(stack, kp, 64, 64, ScriptedRng([0.3, 4.6, 2.2]))
    assert out.shape == (64, 64, 3)
    assert k[0].tolist() == pytest.approx([10 * 72 / 40 - 5, 5 * 72 / 20 - 2, 0.7])  # (13, 16)
    # 0.2 < 0.5: flip; x -> 63 - x, no left/right swap of keypoints
    out, k2 = T.random_horizontal_flip(out, k, ScriptedRng([0.2]))
    assert k2[0].tolist() == pytest.approx([50.0, 16.0, 0.7])
    assert k2[18].tolist() == pytest.approx([63 - (20 * 72 / 40 - 5), 10 * 72 / 20 - 2, 0.7])
    # 0.8 > 0.5: plain resize branch
    _, k3 = T.random_2d_translation(stack, kp, 64, 64, ScriptedRng([0.8]))
    assert k3[0].tolist() == pytest.approx([16.0, 16.0, 0.7])
    assert kp[0].tolist() == pytest.approx([10.0, 5.0, 0.7])  # the stored keypoints are never modified


def test_flip_mirrors_every_channel():
    stack = np.arange(3 * 5, dtype=np.uint8).reshape(1, 3, 5)  # 1 x 3 x 5 channels
    out, _ = T.random_horizontal_flip(stack, np.zeros((36, 3), np.float32), ScriptedRng([0.0]))
    assert out[0, :, 0].tolist() == [10, 5, 0] and out[0, :, 4].tolist() == [14, 9, 4]


def test_normalizer_rgb_and_extra_channel_statistics():
    x = torch.zeros(1, 5, 1, 1, dtype=torch.uint8)
    x[0, 0] = 255
    y = T.Normalizer(5)(x).flatten().tolist()
    assert y[0] == pytest.approx((1 - 0.485) / 0.229, rel=1e-6)
    assert y[1] == pytest.approx(-0.456 / 0.224, rel=1e-6)
    assert y[3] == pytest.approx(-0.449 / 0.226, rel=1e-6) and y[4] == y[3]


def test_collate_is_channels_last_uint8():
    item = (np.zeros((4, 6, 39), np.uint8), 1, 2, 3, 4, np.zeros(108, np.float32))
    imgs, vids, camids, colors, types, kp = collate([item, item, None])
    assert imgs.shape == (2, 39, 4, 6) and imgs.dtype == torch.uint8
    assert imgs.is_contiguous(memory_format=torch.channels_last)
    assert vids.tolist() == [1, 1] and kp.shape == (2, 108)


def test_missing_heatmap_folder_and_data_without_heatmaps(tmp_path):
    d, name = one_image_veri(str(tmp_path / "a"), 0.9)
    import shutil
    shutil.rmtree(os.path.join(d, "heatmap_test", name[:-4]))
    with pytest.raises(UserError, match=r"--heatmapaware: heatmap folder missing for 1 of 1 test images"):
        VeRi(str(tmp_path / "a"), heatmaps=True, verbose=False)
    VeRi(str(tmp_path / "a"), heatmaps=False, segments=True, verbose=False)  # not needed: no error
    one_image_veri(str(tmp_path / "b"), 0.9, heatmaps=False)
    with pytest.raises(UserError, match=r"--heatmapaware needs .*heatmap_train"):
        VeRi(str(tmp_path / "b"), heatmaps=True, verbose=False)

"""Files the trans step reads and writes in a MultiTaskNet VeRi folder (`<root>/veri/`):

- reads  `label_<split>.csv`: name,vid,color,type (4 columns) or the full 112-column file;
- writes `heatmap_<split>/<stem>/00.jpg..35.jpg` (uint8 grayscale JPEG, heatmap size),
         `segment_<split>/<stem>/00.jpg..12.jpg` (uint8 grayscale JPEG, 64x64),
         `pose_<split>.csv`  name,x0,y0,c0,...,x35,y35,c35 (109 columns, %.3f),
         `label_<split>.csv` name,vid,color,type,x0,y0,c0,...,x35,y35,c35 (112 columns).
"""
import csv
import os
import shutil
import tempfile

import cv2
import numpy as np

from common.errors import UserError

NUM_JOINTS = 36
LABEL_COLUMNS = 4 + 3 * NUM_JOINTS  # 112
POSE_COLUMNS = 1 + 3 * NUM_JOINTS  # 109


def resolve_veri_dir(data_dir):
    """The MultiTaskNet VeRi folder: DATA_DIR itself, or DATA_DIR/veri when that holds the CSVs."""
    if not data_dir:
        raise UserError("--data_dir is required (the VeRi folder with image_<split>/ and label_<split>.csv)")
    if not os.path.isdir(data_dir):
        raise UserError(f"data folder not found: {data_dir}")
    sub = os.path.join(data_dir, "veri")
    if os.path.isdir(sub) and not any(f.startswith("label_") for f in os.listdir(data_dir)):
        return sub
    return data_dir


def read_labels(path):
    """-> list of (name, vid, color, type) sorted by name. Accepts 4 or 112 columns."""
    if not os.path.isfile(path):
        raise UserError(f"label file not found: {path} (expected name,vid,color,type[,x0,y0,c0,...] rows)")
    rows, seen = [], set()
    with open(path, newline="") as f:
        for line_no, row in enumerate(csv.reader(f), 1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) not in (4, LABEL_COLUMNS):
                raise UserError(f"{path} line {line_no}: expected {LABEL_COLUMNS} columns "
                                f"(name,vid,color,type,x0,y0,c0,...,x35,y35,c35) or 4 (name,vid,color,type), "
                                f"got {len(row)}")
            name = row[0]
            if name in seen:
                raise UserError(f"{path} line {line_no}: duplicate image name {name}")
            seen.add(name)
            try:
                vid, color, vtype = (int(v) for v in row[1:4])
            except ValueError:
                raise UserError(f"{path} line {line_no}: vid, color and type must be integers") from None
            rows.append((name, vid, color, vtype))
    if not rows:
        raise UserError(f"{path}: no rows")
    return sorted(rows)


def stem(name):
    return os.path.splitext(name)[0]


def heatmaps_to_u8(heatmaps):
    """x255, clamp to [0, 255], truncate: as upstream writes them."""
    return np.clip(np.asarray(heatmaps, dtype=np.float32) * 255, 0, 255).astype(np.uint8)


def write_channel_folder(folder, maps_u8):
    """maps_u8 (C, H, W) -> folder/00.jpg .. folder/C-1.jpg"""
    os.makedirs(folder, exist_ok=True)
    for k, m in enumerate(maps_u8):
        path = os.path.join(folder, "%02d.jpg" % k)
        if not cv2.imwrite(path, m):
            raise UserError(f"cannot write {path}")


def format_keypoints(preds, maxvals):
    """(36, 2), (36, 1) -> the 108 '%.3f' strings x0,y0,c0,..."""
    out = []
    for (x, y), (c,) in zip(np.asarray(preds), np.asarray(maxvals)):
        out += ["%.3f" % x, "%.3f" % y, "%.3f" % c]
    return out


def write_text_atomic(path, lines):
    """Temp file + rename; the temp is named like common.checkpoint's (`.tmp_<pid>_`), so a crashed
    write is cleaned by the next start, and the file's mode follows the umask like any other file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".tmp_{os.getpid()}_", suffix="_" + os.path.basename(path), dir=directory)
    mask = os.umask(0)
    os.umask(mask)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.writelines(line + "\n" for line in lines)
            os.fchmod(f.fileno(), 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_pose_csv(path, names, keypoint_strings):
    write_text_atomic(path, [",".join([n] + k) for n, k in zip(names, keypoint_strings)])


def write_label_csv(path, labels, keypoint_strings):
    """labels: (name, vid, color, type) rows in the same order as keypoint_strings. The
    previous file is kept once as label_<split>.csv.orig."""
    if os.path.isfile(path) and not os.path.exists(path + ".orig"):
        shutil.copy2(path, path + ".orig")
    write_text_atomic(path, [",".join([n, str(v), str(c), str(t)] + k)
                             for (n, v, c, t), k in zip(labels, keypoint_strings)])

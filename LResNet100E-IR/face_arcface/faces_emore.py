"""faces_emore readers: the raw `train.rec`/`train.idx`/`property`, the prepared
`imgs/<label>/<key>.jpg` folder, and the verification `.bin` pair pickles.

Every reader yields HWC uint8 arrays in **B,G,R** order (upstream feeds BGR, spec 2.3): cv2 decodes
.rec/.bin JPEGs to BGR directly; the prepared files have R and B swapped by upstream's
cv2-array -> PIL save, so PIL's "RGB" decode of them is BGR again. Batches stack to (B,H,W,3),
which permuted to (B,3,H,W) is already channels_last; normalisation and flips run on the device.
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch

from common import safe_pickle
from common.data import open_image
from common.errors import UserError

from .recordio import IndexedRecordReader, RecordIOError, unpack

VERIFICATION_SETS = ("lfw", "agedb_30", "cfp_fp", "cfp_ff", "calfw", "cplfw", "vgg2_fp")
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def read_property(path):
    """`property`: one line 'classes,H,W'."""
    try:
        with open(path) as f:
            classes, h, w = (int(v) for v in f.read().strip().split(","))
    except (OSError, ValueError):
        raise UserError(f"{path} is not a faces_emore property file (expected one line 'classes,H,W')") from None
    return classes, h, w


def scalar_label(label) -> int:
    """Image label; a multi-label header (flag > 0) carries the identity first."""
    return int(label[0]) if np.ndim(label) else int(label)


def class_index(labels) -> dict[int, int]:
    """Upstream trains through ImageFolder on folders named str(label): class index is the
    lexicographic rank of str(label), which a direct .rec reader must reproduce."""
    return {lab: i for i, lab in enumerate(sorted(set(int(v) for v in labels), key=str))}


def decode_bgr(buf, what: str, skip: bool = False):
    arr = np.frombuffer(buf, dtype=np.uint8) if not isinstance(buf, np.ndarray) else buf.reshape(-1)
    img = cv2.imdecode(arr, cv2.IMREAD_COLOR) if arr.size else None
    if img is None:
        if skip:
            print(f"[Warning] skipped bad image: {what}", file=sys.stderr, flush=True)
            return None
        raise UserError(f"cannot decode image {what} (use --skip_bad_images to skip such images)")
    return img


def check_size(img, size: int, what: str):
    if img.shape[0] != size or img.shape[1] != size:
        raise UserError(f"image {what} is {img.shape[1]}x{img.shape[0]}, expected {size}x{size} "
                        f"(aligned faces; set --input_size to the data's size)")
    return img


class RecordFaces(torch.utils.data.Dataset):
    """Images straight from train.rec through train.idx (record 0 = [first identity key, end key])."""

    def __init__(self, root, input_size: int = 112, skip_bad: bool = False):
        root = os.fspath(root)
        rec, idx = os.path.join(root, "train.rec"), os.path.join(root, "train.idx")
        for p in (rec, idx):
            if not os.path.isfile(p):
                raise UserError(f"{p} not found (faces_emore needs train.rec and train.idx)")
        self.reader = IndexedRecordReader(idx, rec)
        self.reader.check_last_record()
        self.input_size, self.skip_bad = input_size, skip_bad
        header = self.reader.read_header(0) if 0 in self.reader.index else None
        if header is not None and header.flag > 0:
            first_id, end_id = (int(v) for v in header.label[:2])
            self.keys = np.array([k for k in sorted(self.reader.keys()) if 1 <= k < first_id], dtype=np.int64)
            id_keys = [k for k in range(first_id, end_id) if k in self.reader.index]
        else:  # a plain im2rec file: every record is an image
            self.keys = np.array(sorted(self.reader.keys()), dtype=np.int64)
            id_keys = []
        if len(self.keys) == 0:
            raise UserError(f"{rec} holds no image records")
        self.labels = self._read_labels(id_keys)
        self.class_to_idx = class_index(self.labels)
        self.targets = np.array([self.class_to_idx[v] for v in self.labels], dtype=np.int64)
        prop = os.path.join(root, "property")
        self.num_classes = len(self.class_to_idx)
        if os.path.isfile(prop):
            classes, _, _ = read_property(prop)
            if classes != self.num_classes:
                print(f"[Warning] {prop} says {classes} classes, train.rec holds {self.num_classes}", flush=True)

    def _read_labels(self, id_keys):
        """Labels per image: from the identity records' (start, end) ranges (two small reads per
        identity instead of one per image), else from every image header."""
        labels = np.full(len(self.keys), -1, dtype=np.int64)
        pos = {int(k): i for i, k in enumerate(self.keys)}
        for k in id_keys:
            start, end = (int(v) for v in self.reader.read_header(k).label[:2])
            if start in pos and pos.get(end - 1) == pos[start] + (end - start - 1):
                labels[pos[start]:pos[start] + (end - start)] = scalar_label(self.reader.read_header(start).label)
        missing = np.nonzero(labels < 0)[0]
        for i in missing:
            labels[i] = scalar_label(self.reader.read_header(int(self.keys[i])).label)
        return labels

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, i):
        key = int(self.keys[i])
        header, payload = unpack(self.reader.read_idx(key))
        what = f"{self.reader.rec_path} record {key}"
        img = decode_bgr(payload, what, self.skip_bad)
        if img is None:
            return None
        label = self.class_to_idx.get(scalar_label(header.label))
        if label is None:
            raise RecordIOError(f"{what} has label {header.label} outside the identity records")
        if self.input_size:
            check_size(img, self.input_size, what)
        return torch.from_numpy(img), label


class FolderFaces(torch.utils.data.Dataset):
    """The prepared layout `imgs/<label>/<key>.jpg` read like torchvision ImageFolder."""

    def __init__(self, imgs_dir, input_size: int = 112, skip_bad: bool = False):
        imgs_dir = os.fspath(imgs_dir)
        classes = sorted(e.name for e in os.scandir(imgs_dir) if e.is_dir())
        if not classes:
            raise UserError(f"{imgs_dir} has no class folders (expected imgs/<label>/<key>.jpg from "
                            f"tools/prepare_data.py)")
        self.class_to_idx = {c: i for i, c in enumerate(classes)}
        paths, targets = [], []
        for c in classes:
            folder = os.path.join(imgs_dir, c)
            for name in sorted(os.listdir(folder)):
                if name.lower().endswith(IMG_EXTENSIONS):
                    paths.append(os.path.join(folder, name))
                    targets.append(self.class_to_idx[c])
        if not paths:
            raise UserError(f"{imgs_dir} holds no images")
        self.paths, self.targets = paths, np.array(targets, dtype=np.int64)
        self.num_classes = len(classes)
        self.input_size, self.skip_bad = input_size, skip_bad

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        im = open_image(self.paths[i], "RGB", skip=self.skip_bad)
        if im is None:
            return None
        arr = check_size(np.array(im), self.input_size, self.paths[i])
        return torch.from_numpy(arr), int(self.targets[i])


def open_train_set(data_path, data_format="auto", input_size=112, skip_bad=False):
    """The prepared folder when present (upstream reads it), else train.rec directly."""
    data_path = os.fspath(data_path)
    if not os.path.isdir(data_path):
        raise UserError(f"--data_path not found (expected the faces_emore directory): {data_path}")
    imgs = os.path.join(data_path, "imgs")
    if data_format == "folder" or (data_format == "auto" and os.path.isdir(imgs)):
        if not os.path.isdir(imgs):
            raise UserError(f"{imgs} not found: run tools/prepare_data.py --data_path {data_path} first")
        return FolderFaces(imgs, input_size, skip_bad)
    if data_format == "auto" and not os.path.isfile(os.path.join(data_path, "train.rec")):
        raise UserError(f"{data_path} holds neither imgs/ nor train.rec (expected faces_emore)")
    return RecordFaces(data_path, input_size, skip_bad)


# ---------------------------------------------------------------- verification .bin
def load_bin(path):
    """(list of encoded images, bool array issame) from an insightface .bin pickle; pair k is
    images (2k, 2k+1). Read as data (common.safe_pickle: containers, numbers, bytes, numpy arrays
    only); Python 2 files (JPEG bytes pickled as str) are read as latin-1, which keeps every byte."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"verification file not found: {path}")
    what = "verification pair file"
    obj = safe_pickle.expect(safe_pickle.load(path, what=what, encoding="latin1"), (tuple, list), path, what)
    if len(obj) != 2:
        raise UserError(f"{path} is not a verification pair file: expected a pickle of (images, issame), "
                        f"got {len(obj)} items")
    bins, issame = obj
    safe_pickle.expect(bins, (list, tuple, np.ndarray), path, what, "its image list")
    safe_pickle.expect(issame, (list, tuple, np.ndarray), path, what, "its issame list")
    if len(bins) % 2:
        raise UserError(f"{path} holds an odd number of pair images ({len(bins)}): images (2k, 2k+1) form pair k")
    try:
        issame = np.asarray(issame, dtype=bool).reshape(-1)
    except (TypeError, ValueError):
        raise UserError(f"{path}: issame list is not a list of booleans") from None
    if len(issame) != len(bins) // 2:
        raise UserError(f"{path} holds {len(bins)} images ({len(bins) // 2} pairs) but {len(issame)} issame labels")
    if len(issame) == 0:
        raise UserError(f"{path} holds no pairs")
    return list(bins), issame


def is_bcolz_dir(path) -> bool:
    """TreB1eN's data_pipe.py caches each .bin as a bcolz carray folder (meta/, data/)."""
    return os.path.isdir(os.path.join(path, "meta")) and os.path.isdir(os.path.join(path, "data"))


def missing_bin_message(data_path, name, purpose) -> str:
    """One line for a missing <name>.bin, naming TreB1eN's bcolz folder when that is what is there."""
    data_path = os.fspath(data_path)
    folder = os.path.join(data_path, name)
    if is_bcolz_dir(folder):
        return (f"{purpose} needs {os.path.join(data_path, name + '.bin')}, but {folder}/ is TreB1eN's bcolz cache "
                f"(data_pipe.py), which this project does not read: copy {name}.bin from the faces_emore download "
                f"(the cache was made from it) into {data_path}")
    return f"{purpose} needs {os.path.join(data_path, name + '.bin')} (from the faces_emore download), not found"


def _as_buffer(b):
    if isinstance(b, (bytes, bytearray, memoryview)):
        return bytes(b)
    if isinstance(b, str):  # a Python 2 str read as latin-1: code points 0-255 are the bytes
        return b.encode("latin-1")
    if isinstance(b, np.ndarray):
        return b.astype(np.uint8, copy=False).tobytes()
    raise TypeError(type(b).__name__)


def decode_bin(path, input_size=112, threads=4):
    """Decode a .bin to a (2N,H,W,3) uint8 BGR array (port eval.py: cv2.imdecode) and issame."""
    bins, issame = load_bin(path)

    def one(i):
        try:
            buf = _as_buffer(bins[i])
        except (TypeError, UnicodeEncodeError):
            raise UserError(f"{path}: pair image {i} is a {type(bins[i]).__name__}, expected encoded JPEG/PNG "
                            f"bytes") from None
        return check_size(decode_bgr(buf, f"{path} pair image {i}"), input_size, f"{path} pair image {i}")

    with ThreadPoolExecutor(max(1, threads)) as pool:
        images = list(pool.map(one, range(len(bins))))
    return np.stack(images), issame


def find_bin(data_path, name):
    p = os.path.join(os.fspath(data_path), f"{name}.bin")
    return p if os.path.isfile(p) else None

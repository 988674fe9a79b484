"""Market-1501: raw-name parsing, the upstream prepared layout and its reader.

Prepared layout (what `--data_path` points at, as upstream's transform script writes it):

    images/*.jpg               every used image, renamed '{id:08d}_{cam:04d}_{k:08d}.jpg'
    partitions.pkl             name lists and marks read by training and testing
    train_test_split.pkl       intermediate name lists
    ori_to_new_im_name.pkl     original relative path -> new name

Upstream wrote the pickles from Python 2; `load_partitions` reads those as well as ours.
Every pickle is read as data (common.safe_pickle): a file that would run code, or whose
values have the wrong shape, is refused with one line.
"""
import os
import pickle
import shutil
from collections import defaultdict

import numpy as np

from common import safe_pickle
from common.errors import UserError

NEW_NAME = "{:08d}_{:04d}_{:08d}.jpg"
RAW_DIRS = ("bounding_box_train", "bounding_box_test", "query", "gt_bbox")
PARTITION_KEYS = ("trainval_im_names", "trainval_ids2labels", "test_im_names", "test_marks")
# test_marks values
QUERY, GALLERY, MULTI_QUERY = 0, 1, 2


def parse_original_name(name: str) -> tuple[int, int]:
    """(id, cam) of a raw Market-1501 file name; junk images ('-1_c1s1_...') have id -1."""
    name = os.path.basename(name)
    if name.startswith("-1"):
        return -1, int(name[4])
    return int(name[:4]), int(name[6])


def parse_new_name(name: str) -> tuple[int, int]:
    """(id, cam) of a prepared name '00000002_0001_00000000.jpg'."""
    name = os.path.basename(name)
    return int(name[:8]), int(name[9:13])


def _list_jpgs(directory: str) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.lower().endswith(".jpg"))


def _select(raw_dir: str, has_gt_bbox: bool) -> list[tuple[str, list[str]]]:
    """The four directories' images in upstream's selection order and filters."""
    train = _list_jpgs(os.path.join(raw_dir, "bounding_box_train"))
    gallery = [n for n in _list_jpgs(os.path.join(raw_dir, "bounding_box_test")) if not n.startswith("-1")]
    query = _list_jpgs(os.path.join(raw_dir, "query"))
    multi_query = []
    if has_gt_bbox:
        q_id_cams = {parse_original_name(n) for n in query}
        multi_query = [n for n in _list_jpgs(os.path.join(raw_dir, "gt_bbox"))
                       if parse_original_name(n) in q_id_cams]
    return [("bounding_box_train", train), ("bounding_box_test", gallery), ("query", query),
            ("gt_bbox", multi_query)]


def partition_train_val(trainval_names: list[str], num_val_ids: int = 100, seed: int = 1):
    """Hold out `num_val_ids` trainval ids as a validation query/gallery split.

    Shuffled names and ids (numpy seed 1); per held-out id the first image of each camera is
    a query unless no other-camera image of that id is left in the gallery. Unused by the
    default recipe (trainset_part=trainval); kept because partitions.pkl carries it.
    """
    rng = np.random.RandomState(seed)
    names = np.array(trainval_names)
    rng.shuffle(names)
    ids = np.array([parse_new_name(n)[0] for n in names])
    cams = np.array([parse_new_name(n)[1] for n in names])
    unique_ids = np.unique(ids)
    rng.shuffle(unique_ids)
    query_inds, gallery_inds, selected = [], [], 0
    for pid in unique_ids:
        inds = np.flatnonzero(ids == pid)
        queries = [int(inds[cams[inds] == c][0]) for c in np.unique(cams[inds])]
        gallery = sorted(set(inds.tolist()) - set(queries))
        kept = []
        for q in queries:
            if any(cams[g] != cams[q] for g in gallery):
                kept.append(q)
            else:
                gallery.append(q)
        if not kept:
            continue
        query_inds += kept
        gallery_inds += gallery
        selected += 1
        if selected >= num_val_ids:
            break
    query_inds, gallery_inds = sorted(query_inds), sorted(gallery_inds)
    val = set(query_inds) | set(gallery_inds)
    train_inds = [i for i in range(len(names)) if i not in val]
    return ([str(n) for n in names[train_inds]], [str(n) for n in names[query_inds]],
            [str(n) for n in names[gallery_inds]])


def ids2labels(names) -> dict[int, int]:
    return {pid: label for label, pid in enumerate(sorted({parse_new_name(n)[0] for n in names}))}


def save_pickle(obj, path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(obj, f, protocol=2)
    os.replace(tmp, path)


def prepare(raw_dir: str, out_dir: str, num_val_ids: int = 100, copy=shutil.copyfile) -> dict:
    """Turn the raw Market-1501 folders into the prepared layout; returns the partitions."""
    for d in RAW_DIRS[:3]:
        if not os.path.isdir(os.path.join(raw_dir, d)):
            raise UserError(f"raw Market-1501 folder missing: {os.path.join(raw_dir, d)} "
                            f"(expected {', '.join(RAW_DIRS)} under {raw_dir})")
    has_gt_bbox = os.path.isdir(os.path.join(raw_dir, "gt_bbox"))
    img_dir = os.path.join(out_dir, "images")
    os.makedirs(img_dir, exist_ok=True)
    counter = defaultdict(int)  # running index per (id, cam), shared by the four directories
    new_names, ori_to_new = {}, {}
    for d, names in _select(raw_dir, has_gt_bbox):
        new_names[d] = []
        for n in names:
            pid, cam = parse_original_name(n)
            new = NEW_NAME.format(pid, cam, counter[(pid, cam)])
            counter[(pid, cam)] += 1
            copy(os.path.join(raw_dir, d, n), os.path.join(img_dir, new))
            new_names[d].append(new)
            ori_to_new[f"{d}/{n}"] = new
    if not new_names["bounding_box_train"]:
        raise UserError(f"no .jpg images in {os.path.join(raw_dir, 'bounding_box_train')}")
    split = {"trainval_im_names": new_names["bounding_box_train"],
             "gallery_im_names": new_names["bounding_box_test"],
             "q_im_names": new_names["query"], "mq_im_names": new_names["gt_bbox"]}
    trainval = split["trainval_im_names"]
    train, val_q, val_g = partition_train_val(trainval, num_val_ids)
    q, mq, g = split["q_im_names"], split["mq_im_names"], split["gallery_im_names"]
    partitions = {
        "trainval_im_names": trainval,
        "trainval_ids2labels": ids2labels(trainval),
        "train_im_names": train,
        "train_ids2labels": ids2labels(train),
        "val_im_names": val_q + val_g,
        "val_marks": [QUERY] * len(val_q) + [GALLERY] * len(val_g),
        "test_im_names": q + mq + g,
        "test_marks": [QUERY] * len(q) + [MULTI_QUERY] * len(mq) + [GALLERY] * len(g),
    }
    save_pickle(split, os.path.join(out_dir, "train_test_split.pkl"))
    save_pickle(ori_to_new, os.path.join(out_dir, "ori_to_new_im_name.pkl"))
    save_pickle(partitions, os.path.join(out_dir, "partitions.pkl"))
    return partitions


_NAME_TYPES = (str, bytes, np.str_, np.bytes_)


def _as_str_list(values, path, key) -> list[str]:
    """A list of image names (str, or Python 2 bytes decoded), or one line naming the key."""
    if not (isinstance(values, np.ndarray) and values.ndim == 1):
        safe_pickle.expect(values, (list, tuple), path, "partitions file", f"'{key}'")
    bad = [v for v in values if not isinstance(v, _NAME_TYPES)]
    if bad:
        raise UserError(f"partitions file {path}: '{key}' holds a {type(bad[0]).__name__}, expected image names")
    return [v.decode("latin1") if isinstance(v, (bytes, np.bytes_)) else str(v) for v in values]


def _as_int_list(values, path, key) -> list[int]:
    if not (isinstance(values, np.ndarray) and values.ndim == 1):
        safe_pickle.expect(values, (list, tuple), path, "partitions file", f"'{key}'")
    if not all(isinstance(v, (int, np.integer)) for v in values):
        raise UserError(f"partitions file {path}: '{key}' must hold integers (0 query, 1 gallery, 2 multi-query)")
    return [int(v) for v in values]


def _as_int_dict(values, path, key) -> dict[int, int]:
    safe_pickle.expect(values, dict, path, "partitions file", f"'{key}'")
    if not all(isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)) for a, b in values.items()):
        raise UserError(f"partitions file {path}: '{key}' must map integer ids to integer labels")
    return {int(a): int(b) for a, b in values.items()}


def load_partitions(data_path: str, pkl: str = "partitions.pkl") -> dict:
    """Read partitions.pkl (ours or upstream's Python 2 pickle) with every name list as str."""
    path = os.path.join(data_path, pkl)
    if not os.path.isfile(path):
        raise UserError(f"{pkl} not found: {path} (run tools/transform_market1501.py on the raw "
                        "Market-1501 folders, or point --data_path at the prepared market1501 directory)")
    parts = safe_pickle.expect(safe_pickle.load(path, what="partitions file"), dict, path, "partitions file")
    if any(k not in parts for k in PARTITION_KEYS):
        raise UserError(f"{path} is not a Market-1501 partitions file (expected keys {', '.join(PARTITION_KEYS)})")
    out = dict(parts)
    for k in ("trainval_im_names", "train_im_names", "val_im_names", "test_im_names"):
        if k in out:
            out[k] = _as_str_list(out[k], path, k)
    for k in ("val_marks", "test_marks"):
        if k in out:
            out[k] = _as_int_list(out[k], path, k)
    for k in ("trainval_ids2labels", "train_ids2labels"):
        if k in out:
            out[k] = _as_int_dict(out[k], path, k)
    if len(out["test_marks"]) != len(out["test_im_names"]):
        raise UserError(f"{path}: test_marks has {len(out['test_marks'])} entries for "
                        f"{len(out['test_im_names'])} test images")
    return out


def load_name_mapping(data_path: str) -> dict[str, str]:
    """ori_to_new_im_name.pkl: original relative path -> prepared name (ours or upstream's)."""
    path = os.path.join(data_path, "ori_to_new_im_name.pkl")
    what = "name mapping"
    mapping = safe_pickle.expect(safe_pickle.load(path, what=what), dict, path, what)
    bad = [k for k, v in mapping.items() if not isinstance(k, _NAME_TYPES) or not isinstance(v, _NAME_TYPES)]
    if bad:
        raise UserError(f"{what} {path}: entry {bad[0]!r} is not a name -> name pair")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): (v.decode("latin1") if isinstance(v, bytes)
                                                                       else str(v)) for k, v in mapping.items()}


def load_split(data_path: str) -> dict[str, list[str]]:
    """train_test_split.pkl: trainval/gallery/query/multi-query name lists (ours or upstream's)."""
    path = os.path.join(data_path, "train_test_split.pkl")
    split = safe_pickle.expect(safe_pickle.load(path, what="split file"), dict, path, "split file")
    keys = ("trainval_im_names", "gallery_im_names", "q_im_names", "mq_im_names")
    if any(k not in split for k in keys):
        raise UserError(f"{path} is not a Market-1501 split file (expected keys {', '.join(keys)})")
    return {k: _as_str_list(split[k], path, k) for k in keys}


def check_prepared(data_path: str) -> list[str]:
    """Check a prepared folder (ours or upstream's): the three pickles agree with each other and
    with images/. Returns the report lines; a disagreement is one UserError line."""
    parts = load_partitions(data_path)
    split = load_split(data_path)
    mapping = load_name_mapping(data_path)
    img_dir = os.path.join(data_path, "images")
    check_images_exist(img_dir, parts["trainval_im_names"] + parts["test_im_names"], "trainval/test")
    q, mq, g = split["q_im_names"], split["mq_im_names"], split["gallery_im_names"]
    if parts["trainval_im_names"] != split["trainval_im_names"] or parts["test_im_names"] != q + mq + g:
        raise UserError(f"{data_path}: partitions.pkl and train_test_split.pkl list different images")
    marks = parts["test_marks"]
    if marks != [QUERY] * len(q) + [MULTI_QUERY] * len(mq) + [GALLERY] * len(g):
        raise UserError(f"{data_path}: test_marks are not query (0), multi-query (2), gallery (1) in test order")
    used = set(parts["trainval_im_names"]) | set(parts["test_im_names"])
    unmapped = sorted(used - set(mapping.values()))
    if unmapped:
        raise UserError(f"{data_path}: ori_to_new_im_name.pkl has no original name for {len(unmapped)} image(s), "
                        f"e.g. {unmapped[0]}")
    return [f"trainval {len(parts['trainval_im_names'])} images / {len(parts['trainval_ids2labels'])} ids; "
            f"test: query {len(q)}, multi-query {len(mq)}, gallery {len(g)}; {len(mapping)} original names mapped",
            f"{data_path}: partitions.pkl, train_test_split.pkl, ori_to_new_im_name.pkl and images/ agree"]


def check_images_exist(img_dir: str, names, what: str) -> None:
    """One clear line if any listed image is absent (checked up front, not mid-epoch)."""
    if not os.path.isdir(img_dir):
        raise UserError(f"image folder not found: {img_dir} (expected the prepared images/ next to partitions.pkl)")
    present = set(os.listdir(img_dir))
    missing = [n for n in names if n not in present]
    if missing:
        raise UserError(f"{len(missing)} {what} image(s) listed in partitions.pkl are missing from {img_dir}, "
                        f"e.g. {missing[0]}")


class TrainSplit:
    """Train images with labels 0..C-1 (ids2labels of the chosen part)."""

    def __init__(self, data_path: str, parts: dict, part: str = "trainval"):
        key = f"{part}_im_names"
        if key not in parts:
            raise UserError(f"partitions.pkl has no '{key}' (trainset_part={part})")
        self.names = parts[key]
        if not self.names:
            raise UserError(f"the {part} split in partitions.pkl is empty")
        mapping = parts.get(f"{part}_ids2labels") or ids2labels(self.names)
        self.img_dir = os.path.join(data_path, "images")
        check_images_exist(self.img_dir, self.names, part)
        self.labels = np.array([mapping[parse_new_name(n)[0]] for n in self.names], dtype=np.int64)
        self.num_classes = len(mapping)

    def __len__(self):
        return len(self.names)


class TestSplit:
    """Test images (query, multi-query, gallery) with ids, cams and marks."""

    def __init__(self, data_path: str, parts: dict, part: str = "test"):
        self.names = parts[f"{part}_im_names"]
        self.marks = np.array(parts[f"{part}_marks"], dtype=np.int64)
        if not (self.marks == QUERY).any() or not (self.marks == GALLERY).any():
            raise UserError(f"the {part} split in partitions.pkl needs query (mark 0) and gallery (mark 1) images")
        self.img_dir = os.path.join(data_path, "images")
        check_images_exist(self.img_dir, self.names, part)
        id_cams = np.array([parse_new_name(n) for n in self.names], dtype=np.int64).reshape(-1, 2)
        self.ids, self.cams = id_cams[:, 0], id_cams[:, 1]

    def __len__(self):
        return len(self.names)

"""VeRi-776 as MultiTaskNet reads it: label CSVs, image folders and PoseEstNet outputs.

Layout under `<root>/veri/` (or `<root>` itself when it already is that folder):

    image_{train,query,test}/<name>.jpg
    heatmap_{train,query,test}/<stem>/00.jpg .. 35.jpg      (--heatmapaware)
    segment_{train,query,test}/<stem>/00.jpg .. 12.jpg      (--segmentaware)
    label_{train,query,test}.csv

`label_<split>.csv` has no header and 112 columns: name, vid, colour, type, then
x, y, c for each of the 36 keypoints (original-image pixels, PoseEstNet confidence).
Query = image_query; gallery = image_test.
"""
import csv
import os
from dataclasses import dataclass, field

import numpy as np

from common.errors import UserError

NUM_KEYPOINTS = 36
NUM_HEATMAPS = 36
NUM_SEGMENTS = 13
LABEL_COLUMNS = 4 + 3 * NUM_KEYPOINTS  # 112
SPLITS = ("train", "query", "test")

# Keypoints (0-based) whose confidences gate each segment channel; channel s is region s+1
# (I..XIII) of the PAMTRI keypoint/segment figure.
SEGMENT_QUADS = (
    (5, 15, 16, 17), (5, 6, 12, 15), (6, 10, 11, 12), (23, 33, 34, 35), (23, 24, 30, 33),
    (24, 28, 29, 30), (10, 11, 29, 28), (11, 12, 30, 29), (12, 13, 31, 30), (13, 14, 32, 31),
    (14, 15, 33, 32), (15, 16, 34, 33), (16, 17, 35, 34),
)
SEGMENT_MIN_CONFIDENCE = 0.5

COLOR_NAMES = ("yellow", "orange", "green", "gray", "red", "blue", "white", "golden", "brown", "black")
TYPE_NAMES = ("sedan", "suv", "van", "hatchback", "mpv", "pickup", "bus", "truck", "estate")


def camid_from_name(name: str) -> int:
    """VeRi names look like 0002_c002_00030600_0.jpg: the camera is the 3 digits after the first 'c'."""
    i = name.find("c")
    if i < 0:
        return -1
    try:
        return int(name[i + 1:i + 4])
    except ValueError:
        return -1


def segment_gate(confidences) -> np.ndarray:
    """(13,) bool: True where a segment channel is read, False where it is all zeros because
    one of its 4 keypoints has confidence below 0.5."""
    conf = np.asarray(confidences, dtype=np.float32).reshape(NUM_KEYPOINTS)
    quads = np.asarray(SEGMENT_QUADS)
    return (conf[quads] >= SEGMENT_MIN_CONFIDENCE).all(axis=1)


@dataclass
class Split:
    """One split as parallel arrays (row i = image i of the label CSV, in file order)."""
    name: str
    image_dir: str
    heatmap_dir: str
    segment_dir: str
    names: list = field(default_factory=list)
    vids: np.ndarray = None       # raw in query/gallery, relabelled 0..K-1 in train
    camids: np.ndarray = None
    colors: np.ndarray = None     # raw in query/gallery, relabelled in train
    types: np.ndarray = None
    keypoints: np.ndarray = None  # (N, 36, 3) float32: x, y in original pixels, confidence

    def __len__(self):
        return len(self.names)

    @property
    def num_ids(self) -> int:
        return len(np.unique(self.vids)) if len(self) else 0


def read_label_csv(path: str) -> tuple[list, np.ndarray, np.ndarray]:
    """Return (names, labels (N,3) int64 vid/colour/type, keypoints (N,36,3) float32)."""
    if not os.path.isfile(path):
        raise UserError(f"label file not found: {path} (expected a {LABEL_COLUMNS}-column CSV without header)")
    names, labels, keypts = [], [], []
    base = os.path.basename(path)
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != LABEL_COLUMNS:
                raise UserError(f"{base} line {line_no}: expected {LABEL_COLUMNS} columns "
                                f"(name,vid,color,type,x0,y0,c0,...,x35,y35,c35), got {len(row)}")
            try:
                labels.append((int(row[1]), int(row[2]), int(row[3])))
                keypts.append([float(v) for v in row[4:]])
            except ValueError:
                raise UserError(f"{base} line {line_no}: vid, color and type must be integers and the "
                                f"108 keypoint values numbers (row starts {','.join(row[:5])})") from None
            names.append(row[0].strip())
    if not names:
        raise UserError(f"{base} has no rows: {path}")
    return (names, np.asarray(labels, dtype=np.int64).reshape(-1, 3),
            np.asarray(keypts, dtype=np.float32).reshape(-1, NUM_KEYPOINTS, 3))


def relabel_map(values) -> dict:
    """Raw label -> 0..K-1 in ascending raw order (upstream enumerates a set; sorted is the same on VeRi)."""
    return {int(v): i for i, v in enumerate(sorted({int(v) for v in values}))}


def find_veri_dir(root: str) -> str:
    """`<root>/veri` (upstream --root) or `<root>` when it already holds image_train/."""
    if not root:
        raise UserError("--root is empty: give the folder that holds veri/ (image_train/, label_train.csv, ...)")
    candidates = (os.path.join(root, "veri"), root)
    for cand in candidates:
        if os.path.isdir(os.path.join(cand, "image_query")) or os.path.isfile(os.path.join(cand, "label_query.csv")):
            return cand
    if not os.path.isdir(root):
        raise UserError(f"dataset root not found: {root} (expected a folder holding veri/)")
    raise UserError(f"no VeRi data under {root}: expected {os.path.join(root, 'veri')}/ with image_train/, "
                    "image_query/, image_test/ and label_{train,query,test}.csv")


class VeRi:
    """Reads the three splits, relabels train, checks that every file the run needs is there.

    `splits` chooses which splits to load (eval needs only query and test, plus the train
    CSV for the colour/type maps). Checks are done up front, before any training step.
    """

    def __init__(self, root: str, heatmaps: bool = False, segments: bool = False,
                 splits=SPLITS, verbose: bool = True):
        self.dir = find_veri_dir(root)
        self.heatmaps, self.segments = heatmaps, segments
        self.splits = {}
        for split in splits:
            self.splits[split] = self._load_split(split)
        self.vid_map = self.color_map = self.type_map = None
        if "train" in self.splits:
            self._relabel_train()
        if verbose:
            self.print_statistics()

    # -- public views -------------------------------------------------------------------
    @property
    def train(self) -> Split:
        return self.splits["train"]

    @property
    def query(self) -> Split:
        return self.splits["query"]

    @property
    def gallery(self) -> Split:
        return self.splits["test"]

    @property
    def num_train_vids(self) -> int:
        return len(self.vid_map)

    @property
    def num_train_colors(self) -> int:
        return len(self.color_map)

    @property
    def num_train_types(self) -> int:
        return len(self.type_map)

    # -- loading ------------------------------------------------------------------------
    def _load_split(self, split: str) -> Split:
        d = self.dir
        s = Split(split, os.path.join(d, f"image_{split}"), os.path.join(d, f"heatmap_{split}"),
                  os.path.join(d, f"segment_{split}"))
        names, labels, keypts = read_label_csv(os.path.join(d, f"label_{split}.csv"))
        s.names = names
        s.vids, s.colors, s.types = labels[:, 0].copy(), labels[:, 1].copy(), labels[:, 2].copy()
        s.camids = np.asarray([camid_from_name(n) for n in names], dtype=np.int64)
        s.keypoints = keypts
        self._check_files(s)
        return s

    def _check_files(self, s: Split) -> None:
        """One listdir per folder instead of a stat per file: fast on 50k images."""
        if not os.path.isdir(s.image_dir):
            raise UserError(f"image folder not found: {s.image_dir} (VeRi image_{s.name}/)")
        present = set(os.listdir(s.image_dir))
        missing = [n for n in s.names if n not in present]
        if missing:
            raise UserError(f"{len(missing)} of {len(s.names)} images listed in label_{s.name}.csv are missing "
                            f"from {s.image_dir}, e.g. {missing[0]}")
        for wanted, folder, what, count in ((self.heatmaps, s.heatmap_dir, "heatmap", NUM_HEATMAPS),
                                            (self.segments, s.segment_dir, "segment", NUM_SEGMENTS)):
            if not wanted:
                continue
            flag = f"--{what}aware"
            if not os.path.isdir(folder):
                raise UserError(f"{flag} needs {folder}/ (<stem>/00.jpg..{count - 1:02d}.jpg per image, "
                                "written by PoseEstNet trans.py); it does not exist")
            present = set(os.listdir(folder))
            missing = [n for n in s.names if os.path.splitext(n)[0] not in present]
            if missing:
                example = os.path.join(folder, os.path.splitext(missing[0])[0])
                raise UserError(f"{flag}: {what} folder missing for {len(missing)} of {len(s.names)} {s.name} "
                                f"images, e.g. {example}/ (expected 00.jpg..{count - 1:02d}.jpg from "
                                "PoseEstNet trans.py)")

    def _relabel_train(self) -> None:
        t = self.train
        self.vid_map = relabel_map(t.vids)
        self.color_map = relabel_map(t.colors)
        self.type_map = relabel_map(t.types)
        t.vids = np.asarray([self.vid_map[int(v)] for v in t.vids], dtype=np.int64)
        t.colors = np.asarray([self.color_map[int(v)] for v in t.colors], dtype=np.int64)
        t.types = np.asarray([self.type_map[int(v)] for v in t.types], dtype=np.int64)

    def print_statistics(self) -> None:
        rows = [(label, self.splits[key]) for label, key in (("train", "train"), ("query", "query"),
                                                                ("gallery", "test")) if key in self.splits]
        print("=> VeRi loaded")
        print("Dataset statistics:")
        print("  ------------------------------")
        print("  subset   | # ids | # images")
        print("  ------------------------------")
        for label, s in rows:
            print(f"  {label:<8} | {s.num_ids:5d} | {len(s):8d}")
        print("  ------------------------------")
        total_ids = sum(s.num_ids for label, s in rows if label != "gallery")
        print(f"  {'total':<8} | {total_ids:5d} | {sum(len(s) for _, s in rows):8d}")
        print("  ------------------------------", flush=True)


def map_attributes(values, mapping: dict) -> np.ndarray:
    """Raw colour/type labels of query/gallery through the train map; unknown raw values -> -1
    (never equal to a prediction, so they count as errors)."""
    return np.asarray([mapping.get(int(v), -1) for v in values], dtype=np.int64)


def train_attribute_maps(veri_dir: str, model: str = "a checkpoint that does not store them") -> tuple[dict, dict]:
    """Colour/type ground truth goes through the train maps: rebuild them from label_train.csv."""
    path = os.path.join(veri_dir, "label_train.csv")
    if not os.path.isfile(path):
        raise UserError(f"{path} is needed for the colour/type maps of {model}")
    _, labels, _ = read_label_csv(path)
    return relabel_map(labels[:, 1]), relabel_map(labels[:, 2])

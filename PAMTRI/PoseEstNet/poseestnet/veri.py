"""VeRi keypoint data: the PoseEstNet annotation CSVs (`annot/label_<set>.csv`, 111 columns)
with their images under `images/image_<set>/`, the training crop/augmentation/targets, the
training order (`EpochIndexSampler`), and the plain whole-image crops the trans step feeds to the network."""
import csv
import os

import cv2
import numpy as np
import torch
from torch.utils.data import default_collate

from common.data import BadImageError
from common.errors import UserError
from common.sampling import EpochSampler

from .targets import generate_target
from .transforms import FLIP_PAIRS, affine_transform, box_center_scale, fliplr_joints, get_affine_transform

NUM_JOINTS = 36
ANNOT_COLUMNS = 3 + 3 * NUM_JOINTS  # name,width,height,x0,y0,v0,...,x35,y35,v35
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def read_annotations(path):
    """-> list of dicts (name, width, height, joints (36, 2) float, vis (36,) float), sorted by
    name. Any malformed row is a user error naming file, line and what was expected."""
    if not os.path.isfile(path):
        raise UserError(f"keypoint annotation file not found: {path} (expected annot/label_<set>.csv)")
    records = {}
    with open(path, newline="") as f:
        for line_no, row in enumerate(csv.reader(f), 1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != ANNOT_COLUMNS:
                raise UserError(f"{path} line {line_no}: expected {ANNOT_COLUMNS} columns "
                                f"(name,width,height,x0,y0,v0,...,x35,y35,v35), got {len(row)}")
            try:
                values = [int(float(v)) for v in row[1:]]
            except ValueError:
                raise UserError(f"{path} line {line_no}: non-numeric value in columns 2..{ANNOT_COLUMNS}") from None
            kp = np.array(values[2:], dtype=np.float64).reshape(NUM_JOINTS, 3)
            if not set(np.unique(kp[:, 2])) <= {0.0, 1.0}:
                raise UserError(f"{path} line {line_no}: visibility flags must be 0 or 1")
            if values[0] <= 0 or values[1] <= 0:
                raise UserError(f"{path} line {line_no}: width and height must be positive")
            records[row[0]] = {"name": row[0], "width": values[0], "height": values[1],
                               "joints": kp[:, :2].copy(), "vis": kp[:, 2].copy()}
    if not records:
        raise UserError(f"{path}: no annotation rows")
    return [records[k] for k in sorted(records)]


JPEG_SOS, JPEG_EOI = b"\xff\xda", b"\xff\xd9"


def decode_checked(path, flags=cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION):
    """cv2.imread (upstream's reader), except that a damaged file gives (None, reason).

    cv2.imread decodes a truncated JPEG without an error (grey rows, libjpeg only warns), so the
    bytes are read once, a JPEG must have its end-of-image marker after its last start-of-scan
    marker, and cv2.imdecode decodes the same bytes: the pixels are those of cv2.imread."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None, "missing" if not os.path.exists(path) else "unreadable"
    if data[:2] == b"\xff\xd8" and data.rfind(JPEG_EOI) < max(data.rfind(JPEG_SOS), 2):
        return None, "truncated JPEG: no end-of-image marker"
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    return img, (None if img is not None else "not a decodable image")


def read_bgr(path, skip=False):
    img, reason = decode_checked(path)
    if img is None:
        if skip:
            print(f"[Warning] skipped bad image: {path} ({reason})", flush=True)
            return None
        raise BadImageError(f"cannot read image {path} ({reason}) (use --skip_bad_images to skip such files)")
    return img


def to_tensor(rgb_u8):
    """HWC uint8 RGB -> CHW float32, ImageNet-normalised."""
    x = (rgb_u8.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def collate_counting(batch):
    """-> (collated samples or None, number of samples a dataset skipped as None: --skip_bad_images)."""
    kept = [b for b in batch if b is not None]
    return (default_collate(kept) if kept else None), len(batch) - len(kept)


class EpochIndexSampler(EpochSampler):
    """common.sampling.EpochSampler yielding (index, epoch), the key VeRiKeypoints seeds a sample's
    augmentation with; a torch BatchSampler on top makes the batches."""

    def __iter__(self):
        return ((i, self.epoch) for i in super().__iter__())


class VeRiKeypoints(torch.utils.data.Dataset):
    """One item per annotated image. Index with an int (no augmentation randomness needed) or
    with (index, epoch): the augmentation draws come from a generator seeded by
    (seed, epoch, index), so a resumed run sees exactly the same samples."""

    def __init__(self, cfg, root, image_set, is_train, seed=0, skip_bad_images=False, cache_images=False):
        self.root = root
        self.image_set = image_set
        self.is_train = is_train
        self.seed = int(seed)
        self.skip_bad = skip_bad_images
        self.image_size = np.array(cfg.MODEL.IMAGE_SIZE)
        self.heatmap_size = np.array(cfg.MODEL.HEATMAP_SIZE)
        self.sigma = cfg.MODEL.SIGMA
        self.color_rgb = cfg.DATASET.COLOR_RGB
        self.flip = cfg.DATASET.FLIP
        self.scale_factor = cfg.DATASET.SCALE_FACTOR
        self.rotation_factor = cfg.DATASET.ROT_FACTOR
        self.flip_pairs = FLIP_PAIRS
        image_dir = os.path.join(root, "images", f"image_{image_set}")
        if not os.path.isdir(image_dir):
            raise UserError(f"image folder not found: {image_dir} (expected <DATASET.ROOT>/images/image_{image_set}/,"
                            " see tools/create_dataset.py)")
        self.db = read_annotations(os.path.join(root, "annot", f"label_{image_set}.csv"))
        for rec in self.db:
            rec["image"] = os.path.join(image_dir, rec["name"])
            rec["center"], rec["scale"] = box_center_scale(rec["width"], rec["height"], self.image_size)
        missing = [r["image"] for r in self.db if not os.path.isfile(r["image"])]
        if missing and not skip_bad_images:
            raise UserError(f"{len(missing)} annotated images missing, e.g. {missing[0]}")
        self.cache = [self._load(r["image"]) for r in self.db] if cache_images else None

    def __len__(self):
        return len(self.db)

    def _load(self, path):
        img = read_bgr(path, self.skip_bad)
        if img is not None and self.color_rgb:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        return img

    def __getitem__(self, key):
        idx, epoch = key if isinstance(key, tuple) else (key, 0)
        rec = self.db[idx]
        img = self.cache[idx] if self.cache is not None else self._load(rec["image"])
        if img is None:
            return None
        joints = rec["joints"].copy()
        vis = rec["vis"].copy()
        c = rec["center"].copy()
        s = rec["scale"].copy()
        r = 0.0
        if self.is_train:
            rng = np.random.default_rng([self.seed, int(epoch), int(idx)])
            sf, rf = self.scale_factor, self.rotation_factor
            s = s * np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf)
            r = float(np.clip(rng.standard_normal() * rf, -rf * 2, rf * 2)) if rng.random() <= 0.6 else 0.0
            if self.flip and rng.random() <= 0.5:
                img = img[:, ::-1, :]
                joints, vis2 = fliplr_joints(joints, vis[:, None], img.shape[1], self.flip_pairs)
                vis = vis2[:, 0]
                c[0] = img.shape[1] - c[0] - 1
        trans = get_affine_transform(c, s, r, self.image_size)
        inp = cv2.warpAffine(np.ascontiguousarray(img), trans, (int(self.image_size[0]), int(self.image_size[1])),
                             flags=cv2.INTER_LINEAR)
        joints_in = joints.copy()
        joints_in[vis > 0] = affine_transform(joints[vis > 0], trans)
        target, target_weight = generate_target(joints_in, vis, self.image_size, self.heatmap_size, self.sigma)
        meta = {"index": idx, "center": c.astype(np.float32), "scale": s.astype(np.float32),
                "rotation": np.float32(r), "joints": joints_in.astype(np.float32), "joints_vis": vis.astype(np.float32)}
        return to_tensor(inp), torch.from_numpy(target), torch.from_numpy(target_weight), meta


class WholeImages(torch.utils.data.Dataset):
    """Trans-step input: each image's centred 1.25*max(w,h) square, warped to the input size.
    The box comes from the real image size."""

    def __init__(self, paths, image_size, color_rgb=True, skip_bad_images=False):
        self.paths = list(paths)
        self.image_size = np.array(image_size)
        self.color_rgb = color_rgb
        self.skip = skip_bad_images

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        """(input, center, scale, (w, h), index), or None for a bad image skipped with --skip_bad_images."""
        img = read_bgr(self.paths[i], self.skip)
        if img is None:
            return None
        if self.color_rgb:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        h, w = img.shape[:2]
        c, s = box_center_scale(w, h, self.image_size)
        trans = get_affine_transform(c, s, 0, self.image_size)
        inp = cv2.warpAffine(img, trans, (int(self.image_size[0]), int(self.image_size[1])), flags=cv2.INTER_LINEAR)
        return to_tensor(inp), torch.from_numpy(c), torch.from_numpy(s), torch.tensor([w, h]), i

"""PETA: the raw PETA.mat, the prepared pickles of upstream's transform, and the Dataset.

Raw layout: `<root>/PETA.mat` (MATLAB struct `peta`, fields read by position) and
`<root>/images/00001.png ...`. The transform writes `peta_dataset.pkl` and
`peta_partition.pkl` with upstream's keys; upstream's own Python 2 pickles load too.
"""
import os
import pickle

import numpy as np
import torch
from torch.utils.data import Dataset

from common import safe_pickle
from common.data import open_image
from common.errors import UserError

NUM_LABELS = 105          # data columns 4..108
NUM_SELECTED = 35         # the first 35 labels are the attributes DeepMAR trains
NUM_PARTITIONS = 5
DATASET_PKL = "peta_dataset.pkl"
PARTITION_PKL = "peta_partition.pkl"
SPLITS = ("train", "val", "test")


def read_peta_mat(path):
    """Return (data [N,109] ndarray, attribute names [105], partitions [5 x {train,val,test}]).

    Partition indices are returned as stored: 1-based image indices.
    """
    import scipy.io

    if not os.path.isfile(path):
        raise UserError(f"PETA.mat not found: {path}")
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:
        raise UserError(f"cannot read {path} as a MATLAB file: {exc}".splitlines()[0]) from None
    expected = ("expected the struct 'peta' with fields (data [N x 109], attribute [105 x 1 cell], "
                "selected_attribute, partion_attribute [5 x 1 cell of train/val/test])")
    try:
        peta = mat["peta"][0][0]
        data = np.asarray(peta[0])
        names = [str(peta[1][i, 0][0]) for i in range(peta[1].shape[0])]
        parts = []
        for p in range(peta[3].shape[0]):
            rec = peta[3][p][0][0][0]
            parts.append({s: np.asarray(rec[k][:, 0]).astype(np.int64) for k, s in enumerate(SPLITS)})
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise UserError(f"{path} does not have the PETA layout: {expected} ({type(exc).__name__})") from None
    if data.ndim != 2 or data.shape[1] != 4 + NUM_LABELS:
        raise UserError(f"{path}: peta.data has shape {data.shape}, expected [N, {4 + NUM_LABELS}]")
    if len(names) != NUM_LABELS:
        raise UserError(f"{path}: peta.attribute has {len(names)} names, expected {NUM_LABELS}")
    if len(parts) != NUM_PARTITIONS:
        raise UserError(f"{path}: peta.partion_attribute has {len(parts)} partitions, expected {NUM_PARTITIONS}")
    n = data.shape[0]
    for p, part in enumerate(parts):
        for s, idx in part.items():
            if idx.size and (idx.min() < 1 or idx.max() > n):
                raise UserError(f"{path}: partition {p} {s} indices outside 1..{n}")
    return data, names, parts


def build_pickles(data, names, parts, save_dir):
    """The two dicts of upstream's transform_peta (plain Python types)."""
    labels = data[:, 4:]
    dataset = {
        "description": "peta",
        "root": os.path.join(save_dir, "images") + "/",
        "image": ["%05d.png" % (i + 1) for i in range(data.shape[0])],
        "att": [[int(v) for v in row] for row in labels.tolist()],
        "att_name": [str(n) for n in names],
        "selected_attribute": list(range(NUM_SELECTED)),
    }
    partition = {k: [] for k in ("train", "val", "test", "trainval", "weight_train", "weight_trainval")}
    for part in parts:
        train = [int(i) - 1 for i in part["train"]]
        val = [int(i) - 1 for i in part["val"]]
        test = [int(i) - 1 for i in part["test"]]
        trainval = train + val
        partition["train"].append(train)
        partition["val"].append(val)
        partition["test"].append(test)
        partition["trainval"].append(trainval)
        partition["weight_train"].append(np.mean(labels[train] == 1, axis=0).tolist())
        partition["weight_trainval"].append(np.mean(labels[trainval] == 1, axis=0).tolist())
    return dataset, partition


def transform(save_dir):
    """PETA.mat -> peta_dataset.pkl + peta_partition.pkl in `save_dir` (atomic writes)."""
    data, names, parts = read_peta_mat(os.path.join(save_dir, "PETA.mat"))
    dataset, partition = build_pickles(data, names, parts, save_dir)
    for name, obj in ((DATASET_PKL, dataset), (PARTITION_PKL, partition)):
        tmp = os.path.join(save_dir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(obj, f)
        os.replace(tmp, os.path.join(save_dir, name))
    return dataset, partition


def _load_pickle(path):
    if not os.path.isfile(path):
        raise UserError(f"{os.path.basename(path)} not found: {path} (run tools/transform_peta.py on the "
                        "folder holding PETA.mat)")
    # read as data: upstream's Python 2 pickles (latin-1 strings) and ours; nothing that runs code
    obj = safe_pickle.load(path, what="dataset pickle")
    return safe_pickle.expect(obj, dict, path, "dataset pickle")


def _normalise(dataset, partition, save_dir):
    """Plain types, checked: one line naming the file and the key when the shape is wrong."""
    ds_path, pa_path = os.path.join(save_dir, DATASET_PKL), os.path.join(save_dir, PARTITION_PKL)
    for key in ("image", "att", "att_name", "selected_attribute"):
        if key not in dataset:
            raise UserError(f"{DATASET_PKL} in {save_dir} has no key '{key}'")
    for key in ("train", "val", "test", "trainval"):
        if key not in partition:
            raise UserError(f"{PARTITION_PKL} in {save_dir} has no key '{key}'")
    sequence = (list, tuple, range, np.ndarray)
    for key in ("image", "att", "att_name", "selected_attribute"):
        safe_pickle.expect(dataset[key], sequence, ds_path, "dataset pickle", f"key '{key}'")
    for key in partition:
        safe_pickle.expect(partition[key], sequence, pa_path, "dataset pickle", f"key '{key}'")
    key = None
    try:
        key = "image"
        dataset["image"] = [x.decode("latin-1") if isinstance(x, bytes) else str(x) for x in dataset["image"]]
        key = "att_name"
        dataset["att_name"] = [x.decode("latin-1") if isinstance(x, bytes) else str(x) for x in dataset["att_name"]]
        key = "selected_attribute"
        dataset["selected_attribute"] = [int(x) for x in list(dataset["selected_attribute"])]
        key = "att"
        att = np.asarray(dataset["att"])
        if att.ndim != 2 or att.shape[0] != len(dataset["image"]) or not np.issubdtype(att.dtype, np.number):
            raise ValueError(f"shape {att.shape}, expected [{len(dataset['image'])} images, labels]")
        dataset["att"] = att.astype(np.int64)
        if dataset["selected_attribute"] and (min(dataset["selected_attribute"]) < 0 or
                                              max(dataset["selected_attribute"]) >= att.shape[1]):
            key = "selected_attribute"
            raise ValueError(f"indices outside 0..{att.shape[1] - 1}")
    except (TypeError, ValueError) as exc:
        raise UserError(f"dataset pickle {ds_path}: key '{key}' does not hold the upstream layout: "
                        f"{exc}".splitlines()[0]) from None
    n = len(dataset["image"])
    for key in ("train", "val", "test", "trainval"):
        for p, idx in enumerate(partition[key]):
            try:
                values = [int(i) for i in idx]
            except (TypeError, ValueError):
                raise UserError(f"dataset pickle {pa_path}: key '{key}' partition {p} holds a "
                                f"{type(idx).__name__}, expected a list of image indices") from None
            if values and (min(values) < 0 or max(values) >= n):
                raise UserError(f"dataset pickle {pa_path}: key '{key}' partition {p} has indices outside 0..{n - 1}")
    return dataset, partition


def load_prepared(save_dir):
    """Load and normalise the prepared pickles (upstream Py2 or ours)."""
    dataset = _load_pickle(os.path.join(save_dir, DATASET_PKL))
    partition = _load_pickle(os.path.join(save_dir, PARTITION_PKL))
    return _normalise(dataset, partition, save_dir)


def prepare_if_needed(save_dir, log=print):
    """Use the pickles when present, else run the transform on PETA.mat."""
    if not os.path.isdir(save_dir):
        raise UserError(f"data path not found: {save_dir}")
    have = all(os.path.isfile(os.path.join(save_dir, n)) for n in (DATASET_PKL, PARTITION_PKL))
    if not have:
        if not os.path.isfile(os.path.join(save_dir, "PETA.mat")):
            raise UserError(f"{save_dir} holds neither {DATASET_PKL}/{PARTITION_PKL} nor PETA.mat")
        log(f"preparing {save_dir}: PETA.mat -> {DATASET_PKL}, {PARTITION_PKL}")
        transform(save_dir)
    return load_prepared(save_dir)


def positive_ratio(partition, split, partition_idx, selected):
    key = "weight_" + split
    if key not in partition:
        raise UserError(f"{PARTITION_PKL} has no '{key}' (needed for the weighted loss on split '{split}')")
    try:
        ratio = np.asarray(partition[key][partition_idx], dtype=np.float64)
        return ratio[np.asarray(selected, dtype=np.int64)]
    except (TypeError, ValueError, IndexError) as exc:
        raise UserError(f"{PARTITION_PKL}: '{key}' partition {partition_idx} is not a list of one positive ratio "
                        f"per label ({type(exc).__name__}: {exc})".splitlines()[0]) from None


class PetaDataset(Dataset):
    """(image, label) of one split. Train labels are remapped 0 -> -1, 2 -> 0 (ignore);
    evaluation uses the raw 0/1/2 labels (`train_target=False`)."""

    def __init__(self, save_dir, dataset, partition, split, partition_idx=0, transform=None,
                 train_target=True, skip_bad_images=False):
        if split not in partition:
            splits = sorted(k for k in partition if "weight" not in k)
            raise UserError(f"unknown split '{split}', expected one of {splits}")
        if not 0 <= partition_idx < len(partition[split]):
            raise UserError(f"partition_idx {partition_idx} out of range 0..{len(partition[split]) - 1}")
        self.indices = [int(i) for i in partition[split][partition_idx]]
        if not self.indices:
            raise UserError(f"split '{split}' of partition {partition_idx} is empty")
        self.image_dir = os.path.join(save_dir, "images")
        self.names = dataset["image"]
        labels = dataset["att"][:, dataset["selected_attribute"]]
        if train_target:
            labels = np.where(labels == 0, -1, labels)
            labels = np.where(labels == 2, 0, labels)
        self.labels = torch.as_tensor(labels, dtype=torch.float32)
        self.transform = transform
        self.skip_bad_images = skip_bad_images

    def check_files(self):
        """Fail before training when an image of the split is missing."""
        for i in self.indices:
            path = os.path.join(self.image_dir, self.names[i])
            if not os.path.isfile(path):
                raise UserError(f"image listed in {DATASET_PKL} but missing: {path}")

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, k):
        i = self.indices[k]
        img = open_image(os.path.join(self.image_dir, self.names[i]), skip=self.skip_bad_images)
        if img is None:
            return None
        if self.transform is not None:
            img = self.transform(img)
        return img, self.labels[i]

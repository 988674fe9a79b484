#!/usr/bin/env python3
"""Evaluate an exported MultiTaskNet ONNX model with onnxruntime on VeRi (the card's ONNX section).

    python eval_onnx.py --onnx_path multitasknet.onnx --root data --device_target GPU

Prints the same block as eval.py. Input channels (heatmaps/segments) and keypoint use are read
from the ONNX inputs; the colour/type maps from label_train.csv.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repo root: common/
sys.path.insert(0, str(HERE))             # multitasknet/

import argparse
import os

import numpy as np
import torch
from multitasknet.dataset import channel_flags
from multitasknet.evaluation import make_test_loaders, run_test
from multitasknet.flags import add_data_args
from multitasknet.transforms import Normalizer
from multitasknet.veri import VeRi, train_attribute_maps

from common.cli import ArgumentParser, nonneg_int
from common.distributed import Dist
from common.errors import UserError, main_guard


def get_args_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_args(p, default_root="./data")
    p.set_defaults(test_batch=1)
    p.add_argument("--onnx_path", default="", help="model written by export.py")
    p.add_argument("--device_target", default="CPU", type=str.upper, choices=["GPU", "CPU", "ASCEND"],
                   help="GPU uses onnxruntime's CUDA provider when installed (onnxruntime-gpu), else the CPU")
    p.add_argument("--device_id", type=nonneg_int, default=0)
    return p


class OnnxModel:
    """onnxruntime session behind the call signature of MultiTaskNet (returns torch tensors)."""

    def __init__(self, path, device_target, device_id):
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("onnxruntime is not installed (pip install -r 2.14.1_requirements.txt)") from None
        providers = ["CPUExecutionProvider"]
        if device_target == "GPU":
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, ("CUDAExecutionProvider", {"device_id": device_id}))
            else:
                print("Note: this onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu); using the CPU")
        try:
            self.session = ort.InferenceSession(path, providers=providers)
        except Exception as exc:
            raise UserError(f"cannot load ONNX model {path}: {str(exc).splitlines()[0]}") from None
        self.inputs = [i.name for i in self.session.get_inputs()]
        shape = self.session.get_inputs()[0].shape
        if len(shape) != 4 or not all(isinstance(s, int) for s in shape[1:]):
            raise UserError(f"{path}: expected an image input N x C x H x W, got {shape}")
        self.channels, self.height, self.width = shape[1:]
        self.keyptaware = "keypoints" in self.inputs
        self.num_outputs = len(self.session.get_outputs())

    def eval(self):
        return self

    def __call__(self, x, keypoints=None):
        feed = {self.inputs[0]: x.float().contiguous().numpy()}
        if self.keyptaware:
            feed["keypoints"] = keypoints.float().numpy()
        return tuple(torch.from_numpy(np.asarray(o)) for o in self.session.run(None, feed))


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if not args.onnx_path or not os.path.isfile(args.onnx_path):
        raise UserError(f"--onnx_path: ONNX model not found: {args.onnx_path or '(not given)'}")
    model = OnnxModel(args.onnx_path, args.device_target, args.device_id)
    heat, seg = channel_flags(model.channels)
    for flag, wanted, have in (("--heatmapaware", args.heatmapaware, heat), ("--segmentaware", args.segmentaware, seg)):
        if wanted is not None and bool(wanted) != have:
            raise UserError(f"{flag} {bool(wanted)} does not match {args.onnx_path}, whose input has "
                            f"{model.channels} channels")
    args.heatmapaware, args.segmentaware = heat, seg
    args.height, args.width = model.height, model.width
    print(f"Loaded {args.onnx_path}: input {model.channels} x {model.height} x {model.width}, "
          f"keyptaware {model.keyptaware}, {model.num_outputs} outputs")
    veri = VeRi(args.root, heat, seg, splits=("query", "test"))
    color_map = type_map = {}
    if model.num_outputs == 4:
        color_map, type_map = train_attribute_maps(veri.dir, model="an ONNX model")
    device = torch.device("cpu")
    dist = Dist(device=device)
    loaders = make_test_loaders(veri, args, device, dist)
    run_test(model, veri, loaders, args, device, Normalizer(model.channels), dist, color_map, type_map,
             keyptaware=model.keyptaware)


if __name__ == "__main__":
    main_guard(main)()

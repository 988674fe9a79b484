#!/usr/bin/env python3
"""Export a MultiTaskNet checkpoint to ONNX and check it against PyTorch with onnxruntime.

    python export.py --ckpt_path log/best_model.pth.tar --heatmapaware True --file_name multitasknet

Inputs (float32, batch dimension dynamic): `image` N x C x H x W, already normalised, H x W = the
checkpoint's training size (256 x 256 for upstream files) unless --height/--width say otherwise
(C = 3, 39, 16 or 52), and, for keypoint-aware models, `keypoints` N x 108. Outputs:
`y_id`, `y_color`, `y_type`, `feature` (multitask) or `y_id`, `feature`.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repo root: common/
sys.path.insert(0, str(HERE))             # multitasknet/

import argparse

import torch
from multitasknet.checkpoints import load_model_for_eval
from multitasknet.flags import image_size
from multitasknet.model import NUM_KEYPOINT_VALUES

from common.cli import ArgumentParser, add_bool, int_range, nonneg_int
from common.errors import UserError, main_guard
from common.onnx_export import export_and_check

PARITY_TOLERANCE = 1e-3


def get_args_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt_path", "--load-weights", dest="ckpt_path", default="", help="checkpoint to export")
    p.add_argument("--file_name", "--output_path", dest="file_name", default="multitasknet",
                   help="output file (.onnx is added when missing)")
    p.add_argument("--file_format", default="ONNX", type=str.upper, choices=["ONNX", "AIR", "MINDIR"],
                   help="only ONNX: AIR and MINDIR are MindSpore formats")
    p.add_argument("--root", default="", help="accepted for the model card's command line; not needed")
    p.add_argument("-d", "--dataset", default="veri", choices=["veri"])
    p.add_argument("--height", type=image_size, default=None, help="default: the checkpoint's training size, else 256")
    p.add_argument("--width", type=image_size, default=None, help="default: the checkpoint's training size, else 256")
    p.add_argument("--opset", type=int_range(9, 20), default=11, help="ONNX opset (9..20)")
    p.add_argument("--device_target", default="CPU", help="accepted; export runs on the CPU")
    p.add_argument("--device_id", type=nonneg_int, default=0, help="accepted; export runs on the CPU")
    add_bool(p, "--heatmapaware", default=None, help="must match the checkpoint when given")
    add_bool(p, "--segmentaware", default=None, help="must match the checkpoint when given")
    return p


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if args.file_format != "ONNX":
        raise UserError(f"--file_format {args.file_format} is a MindSpore format; this PyTorch port exports ONNX")
    if not args.ckpt_path:
        raise UserError("--ckpt_path is required")
    model, _, cfg = load_model_for_eval(args.ckpt_path, args)
    model.eval()
    path = args.file_name if args.file_name.endswith(".onnx") else args.file_name + ".onnx"
    gen = torch.Generator().manual_seed(0)
    inputs = {"image": torch.randn(1, cfg["in_channels"], args.height, args.width, generator=gen)}
    if cfg["keyptaware"]:
        inputs["keypoints"] = torch.rand(1, NUM_KEYPOINT_VALUES, generator=gen) - 0.5
    outputs = ["y_id", "y_color", "y_type", "feature"] if cfg["multitask"] else ["y_id", "feature"]
    diff = export_and_check(model, inputs, path, outputs, opset=args.opset, tolerance=PARITY_TOLERANCE)
    print(f"Exported {path}: inputs {', '.join(f'{k} {tuple(v.shape)}' for k, v in inputs.items())}, "
          f"outputs {', '.join(outputs)}")
    print(f"onnxruntime parity: max abs diff {diff:.2e}")


if __name__ == "__main__":
    main_guard(main)()

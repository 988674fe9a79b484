"""Export the backbone to ONNX (port LResNet_pth2onnx.py: input `image` (B,3,112,112), output
`features`, dynamic batch, opset 11) and check onnxruntime parity.

    python export.py --pth_path model.pth [--output LResNet100E-IR.onnx]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from face_arcface import architecture, weights

from common import onnx_export
from common.cli import ArgumentParser, int_range, positive_float, positive_int
from common.errors import main_guard


def get_args_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--pth_path", "--checkpoint", dest="pth_path", required=True, help="checkpoint or backbone state_dict; "
                                                                        "a folder: its newest model file")
    a("--output", "-o", default="LResNet100E-IR.onnx")
    a("--opset", type=int_range(7), default=11)
    a("--batch", type=positive_int, default=2, help="batch of the parity check")
    a("--tolerance", type=positive_float, default=1e-4)
    architecture.add_arch_args(p)
    return p


@main_guard
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    pth = weights.newest_model_file(args.pth_path)
    model, arch, _ = weights.load_backbone(pth, architecture.arch_from_args(args))
    size = arch["input_size"]
    dummy = torch.randn(args.batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    diff = onnx_export.export_and_check(model, {"image": dummy}, args.output, ["features"], opset=args.opset,
                                        tolerance=args.tolerance)
    print(f"exported {args.output}: input image (B,3,{size},{size}), output features (B,{arch['embedding_size']}), "
          f"opset {args.opset}; onnxruntime max abs diff {diff:.2e}", flush=True)


if __name__ == "__main__":
    main()

"""Export an AlignedReID checkpoint to ONNX and check it against onnxruntime.

    python export.py --pth_path=ckpt.pth --output=aligned_reid.onnx

As the Ascend ACL export: input 'image' (N,3,256,128) with a dynamic batch, outputs
'global_feat', 'local_feat', 'logits', opset 11.
"""
import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import torch
from aligned_reid import engine
from aligned_reid.model import ARCHS, AlignedReID
from aligned_reid.utils import int_tuple, size_from_checkpoint

from common import onnx_export
from common.cli import ArgumentParser, int_range, nonneg_float, positive_int
from common.errors import UserError, main_guard


@main_guard
def main(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pth_path", "--model_weight_file", dest="pth_path", required=True,
                   help="checkpoint file, or a folder holding ckpt.pth")
    p.add_argument("--output", default="aligned_reid.onnx")
    p.add_argument("--arch", default=None, choices=list(ARCHS), help="default: from the checkpoint, else resnet50")
    p.add_argument("--resize_h_w", type=int_tuple(2, lo=1), default=None,
                   help="default: from the checkpoint, else (256,128)")
    p.add_argument("--opset", type=int_range(9, 20), default=11, help="ONNX opset (Ascend ACL export: 11)")
    p.add_argument("--batch_size", type=positive_int, default=2, help="batch of the parity check")
    p.add_argument("--tolerance", type=nonneg_float, default=1e-3, help="max |torch - onnxruntime| accepted")
    a = p.parse_args(argv)
    sds, meta = engine.read_checkpoint(a.pth_path)
    arch = a.arch or meta.get("arch") or "resnet50"
    trained = meta.get("args") if isinstance(meta.get("args"), dict) else {}
    h, w = a.resize_h_w or size_from_checkpoint(trained, a.pth_path)
    model = AlignedReID(num_classes=engine.num_classes(sds[0], a.pth_path), arch=arch if arch in ARCHS else "resnet50")
    engine.load_weights(model, sds[0], f"checkpoint {a.pth_path}")
    model.eval()
    path = onnx_export.export(model, (torch.zeros(1, 3, h, w),), a.output, ["image"],
                              ["global_feat", "local_feat", "logits"], opset=a.opset)
    x = torch.randn(a.batch_size, 3, h, w, generator=torch.Generator().manual_seed(0))
    diff = onnx_export.parity(model, path, {"image": x})
    print(f"exported {path} ({arch}, input {h}x{w}, opset {a.opset}); "
          f"onnxruntime parity at batch {a.batch_size}: max abs diff {diff:.2e}")
    if not diff <= a.tolerance:
        raise UserError(f"onnxruntime output differs from PyTorch by {diff:.2e} (> {a.tolerance})")


if __name__ == "__main__":
    main()

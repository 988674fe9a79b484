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
from aligned_reid.weights import add_trained_model_args, read_trained_model

from common.cli import ArgumentParser, int_range, nonneg_float, positive_int
from common.errors import main_guard
from common.onnx_export import export_and_check


@main_guard
def main(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_trained_model_args(p)  # --pth_path, --arch, --resize_h_w
    p.add_argument("--output", default="aligned_reid.onnx")
    p.add_argument("--opset", type=int_range(9, 20), default=11, help="ONNX opset (Ascend ACL export: 11)")
    p.add_argument("--batch_size", type=positive_int, default=2, help="batch of the parity check")
    p.add_argument("--tolerance", type=nonneg_float, default=1e-3, help="max |torch - onnxruntime| accepted")
    a = p.parse_args(argv)
    trained = read_trained_model(a.pth_path, a.arch, a.resize_h_w)
    model, (h, w) = trained.build().eval(), trained.size
    x = torch.randn(a.batch_size, 3, h, w, generator=torch.Generator().manual_seed(0))
    diff = export_and_check(model, {"image": torch.zeros(1, 3, h, w)}, a.output,
                            ["global_feat", "local_feat", "logits"], opset=a.opset, tolerance=a.tolerance,
                            check_inputs={"image": x})
    print(f"exported {a.output} ({trained.arch}, input {h}x{w}, opset {a.opset}); "
          f"onnxruntime parity at batch {a.batch_size}: max abs diff {diff:.2e}")


if __name__ == "__main__":
    main()

"""Export HRNet-C weights to ONNX as the port's hrnet_pth2onnx.py does (input `image`
(N,3,224,224), output `class`, dynamic batch axis, opset 11), then check the ONNX model against
PyTorch with onnxruntime.

    python export.py --cfg w18 --pth_path model_best.pth.tar --out hrnet_w18.onnx
"""
import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import torch
from hrnet_cls.checkpoints import load_weights
from hrnet_cls.cls_hrnet import get_cls_net
from hrnet_cls.config import load_config

from common import onnx_export
from common.cli import ArgumentParser, int_range, positive_float
from common.errors import main_guard


@main_guard
def main(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", required=True, help="experiment yaml (.yaml/.yml) or short name (w18, ..., demo_tiny)")
    p.add_argument("--pth_path", "--testModel", dest="pth_path", required=True,
                   help="weights: a state_dict (model_best/final_state.pth.tar, released .pth) or checkpoint.pth.tar")
    p.add_argument("--out", default=None, help="ONNX file (default: <pth_path without extension>.onnx)")
    p.add_argument("--opset", type=int_range(7, 20), default=11, help="ONNX opset (the TorchScript exporter's 7-20)")
    p.add_argument("--tolerance", type=positive_float, default=1e-3,
                   help="max |PyTorch - onnxruntime| logit difference")
    a = p.parse_args(argv)
    cfg, _ = load_config(a.cfg)
    model = get_cls_net(cfg)
    load_weights(model, a.pth_path, "weights")
    out = a.out or str(Path(a.pth_path).with_suffix("").with_suffix("")) + ".onnx"
    width, height = cfg.MODEL.IMAGE_SIZE
    dummy = torch.randn(1, 3, height, width)
    check = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(0))
    diff = onnx_export.export_and_check(model, {"image": dummy}, out, ["class"], opset=a.opset, tolerance=a.tolerance,
                                        check_inputs={"image": check}, dynamic_batch=True)
    print(f"=> exported {out} (input image (N,3,{height},{width}), output class (N,{cfg.MODEL.NUM_CLASSES}), "
          f"opset {a.opset}); onnxruntime vs PyTorch max |diff| {diff:.2e} on a batch of 2")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Export a DeepMar checkpoint to ONNX (as the Ascend pthtar2onnx.py) and check it with
onnxruntime against PyTorch.

    python export.py --pth_path=test/output/0/exp/model/checkpoint.path.tar [--output DeepMar_npu.onnx]
"""
import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import torch
from deepmar.flags import Parser, int_tuple_type
from deepmar.model import ARCHS, DeepMAR, extract_state_dict, infer_arch
from deepmar.transforms import parse_resize

from common import checkpoint, onnx_export
from common.cli import int_range, nonneg_float, positive_int
from common.errors import main_guard


@main_guard
def main(argv=None):
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pth_path", required=True, help="checkpoint.path.tar, ckpt_epoch*.pth or a state_dict")
    p.add_argument("--output", default="DeepMar_npu.onnx")
    p.add_argument("--arch", default=None, choices=list(ARCHS), help="default: the checkpoint's, else resnet50")
    p.add_argument("--resize", type=int_tuple_type(1, 4096, sizes=(1, 2)), default=None,
                   help="(height,width) of the input; default: the checkpoint's")
    p.add_argument("--batch_size", type=positive_int, default=10,
                   help="batch of the dummy input (the axis stays dynamic)")
    p.add_argument("--opset", type=int_range(9, 20), default=11, help="ONNX opset of the TorchScript exporter")
    p.add_argument("--tolerance", type=nonneg_float, default=1e-3, help="max |onnxruntime - PyTorch| accepted")
    args = p.parse_args(argv)
    ckpt = checkpoint.load(args.pth_path, what="checkpoint (--pth_path)")
    state = extract_state_dict(ckpt, f"checkpoint {args.pth_path}")
    saved = ckpt.get("deepmar_args") if isinstance(ckpt, dict) else None
    saved = vars(saved) if isinstance(saved, argparse.Namespace) else saved if isinstance(saved, dict) else {}
    arch = args.arch or saved.get("arch") or infer_arch(state) or "resnet50"
    resize = parse_resize(args.resize or saved.get("resize", "(224,224)"))
    weight = state.get("classifier.weight", state.get("module.classifier.weight"))
    num_att = weight.shape[0] if torch.is_tensor(weight) and weight.dim() == 2 else 35
    stride = saved.get("last_conv_stride") if saved.get("last_conv_stride") in (1, 2) else 2
    model = DeepMAR(num_att, arch, stride)
    checkpoint.load_state_dict_checked(model, state, what=f"checkpoint {args.pth_path}")
    model.eval()
    dummy = torch.randn(args.batch_size, 3, *resize, generator=torch.Generator().manual_seed(0))
    diff = onnx_export.export_and_check(model, {"actual_input_1": dummy}, args.output, ["output1"], opset=args.opset,
                                        tolerance=args.tolerance)
    print(f"exported {args.output} (opset {args.opset}, input actual_input_1 [N,3,{resize[0]},{resize[1]}], "
          f"output output1 [N,{num_att}]); onnxruntime max abs diff vs PyTorch: {diff:.2e}")


if __name__ == "__main__":
    main()

"""Export a DeepMar checkpoint to ONNX (as the Ascend pthtar2onnx.py) and check it with
onnxruntime against PyTorch.

    python export.py --pth_path=test/output/0/exp/model/checkpoint.path.tar [--output DeepMar_npu.onnx]
"""
import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import torch  # noqa: E402
from deepmar.model import ARCHS, DeepMAR, extract_state_dict, infer_arch  # noqa: E402
from deepmar.utils import parse_int_tuple  # noqa: E402

from common import checkpoint, onnx_export  # noqa: E402
from common.errors import UserError, main_guard  # noqa: E402


@main_guard
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pth_path", required=True, help="checkpoint.path.tar, ckpt_epoch*.pth or a state_dict")
    p.add_argument("--output", default="DeepMar_npu.onnx")
    p.add_argument("--arch", default=None, choices=list(ARCHS), help="default: the checkpoint's, else resnet50")
    p.add_argument("--resize", default=None, help="(height,width) of the input; default: the checkpoint's")
    p.add_argument("--batch_size", type=int, default=10, help="batch of the dummy input (the axis stays dynamic)")
    p.add_argument("--opset", type=int, default=11)
    p.add_argument("--tolerance", type=float, default=1e-3, help="max |onnxruntime - PyTorch| accepted")
    args = p.parse_args(argv)
    ckpt = checkpoint.load(args.pth_path)
    saved = ckpt.get("deepmar_args", {}) if isinstance(ckpt, dict) else {}
    arch = args.arch or saved.get("arch") or infer_arch(extract_state_dict(ckpt)) or "resnet50"
    resize = parse_int_tuple(args.resize or saved.get("resize", "(224,224)"), "--resize")
    resize = resize * 2 if len(resize) == 1 else resize
    state = extract_state_dict(ckpt)
    num_att = state["classifier.weight"].shape[0] if "classifier.weight" in state else 35
    model = DeepMAR(num_att, arch, saved.get("last_conv_stride", 2))
    checkpoint.load_state_dict_checked(model, state, what=f"checkpoint {args.pth_path}")
    model.eval()
    dummy = torch.randn(args.batch_size, 3, *resize, generator=torch.Generator().manual_seed(0))
    onnx_export.export(model, (dummy,), args.output, ["actual_input_1"], ["output1"], opset=args.opset)
    diff = onnx_export.parity(model, args.output, {"actual_input_1": dummy})
    print(f"exported {args.output} (opset {args.opset}, input actual_input_1 [N,3,{resize[0]},{resize[1]}], "
          f"output output1 [N,{num_att}]); onnxruntime max abs diff vs PyTorch: {diff:.2e}")
    if not diff <= args.tolerance:
        raise UserError(f"onnxruntime output differs from PyTorch by {diff:.3g} (> {args.tolerance})")


if __name__ == "__main__":
    main()

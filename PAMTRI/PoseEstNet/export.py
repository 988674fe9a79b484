"""Export PoseEstNet to ONNX (input float32 N x 3 x H x W, output the 36 heatmaps N x 36 x H/4 x W/4)
and check it against PyTorch with onnxruntime.

    python export.py --cfg experiments/veri/hrnet/w32_256x256_adam_lr1e-3.yaml --ckpt_path model_best.pth
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from poseestnet import flags
from poseestnet.config import load_config
from poseestnet.pose_hrnet import get_pose_net
from poseestnet.weights import load_pose_weights

from common import onnx_export
from common.cli import int_range, positive_float
from common.errors import main_guard


def get_args(argv=None):
    p = flags.new_parser(__doc__, devices=False)
    p.add_argument("--ckpt_path", default="", help="weights to export (default TEST.MODEL_FILE)")
    p.add_argument("--file_name", default="PoseEstNet", help="output name, .onnx appended")
    p.add_argument("--file_format", default="ONNX", type=str.upper, choices=["ONNX"],
                   help="the card's AIR/MINDIR formats are MindSpore-only")
    p.add_argument("--opset", type=int_range(9, 20), default=11, help="ONNX opset (9..20)")
    p.add_argument("--tolerance", type=positive_float, default=1e-4, help="max |PyTorch - onnxruntime| accepted")
    return flags.parse_args(p, argv)


@main_guard
def main(argv=None):
    args = get_args(argv)
    cfg = load_config(args.cfg, list(args.opts))
    model = load_pose_weights(get_pose_net(cfg), args.ckpt_path or cfg.TEST.MODEL_FILE).eval()
    w, h = cfg.MODEL.IMAGE_SIZE
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    path = args.file_name + ".onnx"
    diff = onnx_export.export_and_check(model, {"input": x}, path, ["heatmaps"], opset=args.opset,
                                        tolerance=args.tolerance)
    print(f"=> exported {path}; max |PyTorch - onnxruntime| = {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

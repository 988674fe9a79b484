"""Command-line flags shared by train.py, eval.py, export.py and eval_onnx.py: the data flags
(common's --device_id and --loss_scale come range-checked). Switches (common.cli.add_bool) take `--flag`, `--flag True`
and `--flag=False` (upstream and MindSpore forms)."""

from common.cli import add_bool, int_range, nonneg_int, positive_int

MIN_SIZE = 32  # DenseNet downsamples 32x: a smaller input leaves no pixel for the last block
image_size = int_range(MIN_SIZE)


def add_data_args(parser, default_root="data"):
    parser.add_argument("--root", default=default_root,
                        help="folder holding veri/ (image_*, heatmap_*, segment_*, label_*.csv); "
                        "veri/ itself works too")
    parser.add_argument("-d", "--dataset", default="veri", choices=["veri"])
    parser.add_argument("--height", type=image_size, default=None,
                        help=f"input height (256; eval: the checkpoint's; >= {MIN_SIZE})")
    parser.add_argument("--width", type=image_size, default=None,
                        help=f"input width (256; eval: the checkpoint's; >= {MIN_SIZE})")
    parser.add_argument("-j", "--workers", type=nonneg_int, default=4, help="data loader workers per process")
    parser.add_argument("--test-batch", type=positive_int, default=100, help="evaluation batch size per process")
    add_bool(parser, "--heatmapaware", default=None,
             help="append the 36 PoseEstNet heatmaps (heatmap_<split>/<stem>/00..35.jpg) as input channels")
    add_bool(parser, "--segmentaware", default=None,
             help="append the 13 segment masks (segment_<split>/<stem>/00..12.jpg) as input channels")

"""Shared pieces of train.py / eval.py / export.py / eval_onnx.py: flags, device choice,
test loaders, the evaluation pass, checkpoint loading, logging."""
import argparse
import os
import sys

import numpy as np
from torch.utils.data import DataLoader, Subset

from common import checkpoint as zckpt
from common.cli import add_bool, int_range, nonneg_int, positive_int
from common.device import add_device_args
from common.errors import UserError

from .dataset import VeRiDataset, collate, loader_options, num_channels
from .densenet import MultiTaskNet, infer_config, modernise_keys, unwrap_checkpoint
from .evaluation import (
    attribute_accuracy,
    evaluate_rank,
    extract_features,
    print_results,
    shard_indices,
    squared_euclidean,
)
from .veri import NUM_HEATMAPS, NUM_SEGMENTS, map_attributes

DEVICE_TARGETS = {"ascend": "npu", "gpu": "cuda", "cpu": "cpu"}


# -- flags ---------------------------------------------------------------------------------
# Switches (common.cli.add_bool) take `--flag`, `--flag True` and `--flag=False` (upstream and MindSpore forms).
MIN_SIZE = 32  # DenseNet downsamples 32x: a smaller input leaves no pixel for the last block
image_size = int_range(MIN_SIZE)


def loss_scale_type(text):
    """--loss_scale: a positive number, or dynamic / -1 (checked when parsed, not at the first step)."""
    if str(text).strip().lower() in ("dynamic", "-1"):
        return str(text).strip()
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number or 'dynamic', got {text!r}")
    return str(text).strip()


loss_scale_type.__name__ = "loss scale"


def tighten_common_flags(parser):
    """common's --device_id and --loss_scale take any int / any text: check their ranges when parsed."""
    for action in parser._actions:
        if "--device_id" in action.option_strings:
            action.type = nonneg_int
        if "--loss_scale" in action.option_strings:
            action.type = loss_scale_type


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


def add_device_flags(parser):
    add_device_args(parser)
    tighten_common_flags(parser)
    parser.add_argument("--device_target", default=None, type=str.lower, choices=sorted(DEVICE_TARGETS),
                        help="model card form of --device: Ascend | GPU | CPU")
    parser.add_argument("--use-cpu", action="store_true", help="upstream form of --device cpu")
    parser.add_argument("--gpu-devices", "--npu-devices", dest="devices", default=None,
                        help="upstream: device list; the first one is used as --device_id (8p: use torchrun)")
    parser.add_argument("--local_rank", "--local-rank", type=nonneg_int, default=None,
                        help="ignored: torchrun sets LOCAL_RANK")


def init_dist(args):
    """common.distributed.init for --device/--device_target/--use-cpu; a target this machine lacks is one
    line that says what to run instead."""
    from common import distributed as zdist

    kind, device_id = device_request(args)
    try:
        return zdist.init(kind, device_id)
    except UserError as exc:
        if getattr(args, "device_target", None):
            raise UserError(f"--device_target {args.device_target}: {exc}; on this machine use --device_target CPU "
                            "(the card's scripts: DEVICE_TARGET=CPU bash scripts/...)") from None
        raise


def device_request(args) -> tuple[str, int]:
    """(device kind for common.device, device id) from --device_target / --use-cpu / --device."""
    kind = args.device
    if getattr(args, "device_target", None):
        kind = DEVICE_TARGETS[args.device_target.lower()]
    if getattr(args, "use_cpu", False):
        kind = "cpu"
    device_id = args.device_id
    if getattr(args, "devices", None):
        device_id = int(str(args.devices).split(",")[0])
    return kind, device_id


# -- logging -------------------------------------------------------------------------------
class Tee:
    """stdout to the terminal and to <save-dir>/log_train.txt, as upstream."""

    def __init__(self, stream, path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.stream, self.file = stream, open(path, "a", encoding="utf-8")

    def write(self, text):
        self.stream.write(text)
        if "\r" not in text:  # a progress bar frame (terminals only) stays out of log_train.txt
            self.file.write(text)

    def flush(self):
        self.stream.flush()
        self.file.flush()

    def isatty(self):  # the progress bar is drawn when the real stdout is a terminal
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False


def silence_stdout():
    """Non-zero ranks print nothing on stdout (one log, no duplicate metric lines); errors still reach stderr."""
    sys.stdout = open(os.devnull, "w")

# -- checkpoints ---------------------------------------------------------------------------
def channel_flags(in_channels: int) -> tuple[bool, bool]:
    """(heatmaps, segments) for a first-conv width."""
    table = {3: (False, False), 3 + NUM_HEATMAPS: (True, False), 3 + NUM_SEGMENTS: (False, True),
             3 + NUM_HEATMAPS + NUM_SEGMENTS: (True, True)}
    if in_channels not in table:
        raise UserError(f"checkpoint first conv takes {in_channels} channels; expected 3, 39, 16 or 52")
    return table[in_channels]


def load_file(path, what="checkpoint"):
    """A checkpoint as data (common.checkpoint.load: never runs code), with the way out for the
    MindSpore card's .ckpt files, which are not PyTorch files."""
    try:
        return zckpt.load(path, what=what)
    except UserError as exc:
        if str(path).endswith(".ckpt") and os.path.isfile(path):
            raise UserError(f"{exc} - {path} looks like a MindSpore .ckpt; this PyTorch port reads PyTorch files: "
                            "torchvision's densenet121-a639ec97.pth for --pre_ckpt_path (no pthtockpt conversion), "
                            "a checkpoint written by train.py for --ckpt_path") from None
        raise


def load_model_for_eval(path, args):
    """Build the model a checkpoint was trained as (channels, heads, classes) and load it strictly.

    --heatmapaware/--segmentaware may be left out (read from the checkpoint); when given they
    must agree with it. Returns (model, checkpoint dict, config)."""
    obj = load_file(path)
    try:
        sd = modernise_keys(unwrap_checkpoint(obj))
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    cfg = dict(obj["config"]) if isinstance(obj, dict) and isinstance(obj.get("config"), dict) else infer_config(sd)
    heat, seg = channel_flags(cfg["in_channels"])
    what = "RGB" + " + heatmaps" * heat + " + segments" * seg
    for flag, wanted, have in (("--heatmapaware", args.heatmapaware, heat), ("--segmentaware", args.segmentaware, seg)):
        if wanted is not None and bool(wanted) != have:
            raise UserError(f"{flag} {bool(wanted)} does not match {path}: its first conv takes "
                            f"{cfg['in_channels']} channels ({what}); drop the flag to follow the checkpoint")
    args.heatmapaware, args.segmentaware = heat, seg
    trained = obj.get("args", {}) if isinstance(obj, dict) and isinstance(obj.get("args"), dict) else {}
    for key in ("height", "width"):  # evaluate at the size the checkpoint was trained at, unless told otherwise
        if getattr(args, key, None) is None:
            setattr(args, key, int(trained.get(key) or 256))
    model = MultiTaskNet(**cfg)
    zckpt.load_state_dict_checked(model, sd, what=path)
    return model, (obj if isinstance(obj, dict) else {}), cfg


def attribute_maps(ckpt: dict, veri_dir_reader):
    """Train colour/type maps: from our checkpoint, else from label_train.csv (upstream ground-truth mapping)."""
    maps = ckpt.get("maps") if isinstance(ckpt, dict) else None
    if maps:
        return {int(k): v for k, v in maps["color"].items()}, {int(k): v for k, v in maps["type"].items()}
    return veri_dir_reader()


# -- evaluation pass -----------------------------------------------------------------------
def make_test_loaders(veri, args, device, dist):
    """Query and gallery loaders; under torchrun each rank gets a contiguous shard."""
    loaders = []
    for split in (veri.query, veri.gallery):
        ds = VeRiDataset(split, args.heatmapaware, args.segmentaware, train=False, width=args.width,
                         height=args.height, skip_bad_images=False)
        idx, _ = shard_indices(len(ds), dist.rank, dist.world_size)
        loaders.append(DataLoader(Subset(ds, idx), batch_size=args.test_batch, shuffle=False, drop_last=False,
                                  collate_fn=collate, **loader_options(args.workers, device)))
    return loaders


def run_test(model, veri, loaders, args, device, normalizer, dist, color_map, type_map, amp=None,
             keyptaware=False, channels_last=False):
    """Extract features (sharded over ranks), then rank 0 prints the result block.
    Returns (rank1, mAP, metrics) on rank 0 (metrics: the block's figures as fractions, for metrics.jsonl),
    (None, None, None) elsewhere."""
    q_loader, g_loader = loaders
    outs = []
    for loader, split in ((q_loader, veri.query), (g_loader, veri.gallery)):
        outs.append(extract_features(model, loader, device, normalizer, amp, keyptaware, channels_last,
                                     dist=dist, total=len(split)))
    (qf, qc, qt, qtimes), (gf, gc, gt, gtimes) = outs
    if not dist.is_main:
        return None, None, None
    print(f"Extracted features for query set, obtained {qf.shape[0]}-by-{qf.shape[1]} matrix")
    print(f"Extracted features for gallery set, obtained {gf.shape[0]}-by-{gf.shape[1]} matrix")
    times = qtimes + gtimes
    batch_time = float(np.mean(times)) if times else 0.0
    print(f"==> BatchTime(s)/BatchSize(img): {batch_time:.3f}/{args.test_batch}")
    if batch_time > 0:
        print("FPS = %d " % (args.test_batch * dist.world_size / batch_time))  # all processes
    if gf.shape[0] < 50:
        print(f"Note: number of gallery samples is quite small, got {gf.shape[0]}")
    distmat = squared_euclidean(qf, gf)
    cmc, mAP, _ = evaluate_rank(distmat, veri.query.vids, veri.gallery.vids, veri.query.camids, veri.gallery.camids)
    color_acc = type_acc = None
    if qc is not None:
        color_acc = attribute_accuracy(qc.numpy(), map_attributes(veri.query.colors, color_map),
                                       gc.numpy(), map_attributes(veri.gallery.colors, color_map))
        type_acc = attribute_accuracy(qt.numpy(), map_attributes(veri.query.types, type_map),
                                      gt.numpy(), map_attributes(veri.gallery.types, type_map))
    print_results(mAP, cmc, color_acc, type_acc)
    sys.stdout.flush()
    metrics = {"mAP": float(mAP), "rank1": float(cmc[0]), "rank5": float(cmc[min(4, len(cmc) - 1)])}
    if color_acc is not None:
        metrics.update(color_acc=float(color_acc), type_acc=float(type_acc))
    return float(cmc[0]), float(mAP), metrics


def model_channels(args) -> int:
    return num_channels(args.heatmapaware, args.segmentaware)

"""Upstream-style configuration: yacs defaults, merged with an experiment yaml and with
`KEY VALUE` pairs from the command line (`python tools/test.py --cfg X TEST.MODEL_FILE m.pth`)."""
import os

from yacs.config import CfgNode as CN

from common.errors import UserError

_C = CN()
_C.OUTPUT_DIR = ""
_C.LOG_DIR = ""
_C.DATA_DIR = ""
_C.GPUS = (0,)
_C.WORKERS = 4
_C.PRINT_FREQ = 20
_C.AUTO_RESUME = False
_C.PIN_MEMORY = True
_C.RANK = 0

_C.CUDNN = CN()
_C.CUDNN.BENCHMARK = True
_C.CUDNN.DETERMINISTIC = False
_C.CUDNN.ENABLED = True

_C.MODEL = CN()
_C.MODEL.NAME = "pose_hrnet"
_C.MODEL.INIT_WEIGHTS = True
_C.MODEL.PRETRAINED = ""
_C.MODEL.NUM_JOINTS = 36
_C.MODEL.TAG_PER_JOINT = True
_C.MODEL.TARGET_TYPE = "gaussian"
_C.MODEL.IMAGE_SIZE = [256, 256]  # width, height
_C.MODEL.HEATMAP_SIZE = [64, 64]  # width, height
_C.MODEL.SIGMA = 2
# Architecture as data. Besides the upstream keys (STAGE2..4, FINAL_CONV_KERNEL,
# PRETRAINED_LAYERS) two optional ones shrink the stem for tests and demos:
# STEM_CHANNELS (upstream 64) and LAYER1_NUM_BLOCKS (upstream 4).
_C.MODEL.EXTRA = CN(new_allowed=True)

_C.LOSS = CN()
_C.LOSS.USE_OHKM = False
_C.LOSS.TOPK = 8
_C.LOSS.USE_TARGET_WEIGHT = True
_C.LOSS.USE_DIFFERENT_JOINTS_WEIGHT = False

_C.DATASET = CN()
_C.DATASET.ROOT = ""
_C.DATASET.DATASET = "veri"
_C.DATASET.TRAIN_SET = "train"
_C.DATASET.TEST_SET = "test"
_C.DATASET.DATA_FORMAT = "jpg"
_C.DATASET.HYBRID_JOINTS_TYPE = ""
_C.DATASET.SELECT_DATA = False
_C.DATASET.FLIP = True
_C.DATASET.SCALE_FACTOR = 0.25
_C.DATASET.ROT_FACTOR = 30
_C.DATASET.PROB_HALF_BODY = 0.0
_C.DATASET.NUM_JOINTS_HALF_BODY = 8
_C.DATASET.COLOR_RGB = False

_C.TRAIN = CN()
_C.TRAIN.LR_FACTOR = 0.1
_C.TRAIN.LR_STEP = [90, 110]
_C.TRAIN.LR = 0.001
_C.TRAIN.OPTIMIZER = "adam"
_C.TRAIN.MOMENTUM = 0.9
_C.TRAIN.WD = 0.0001
_C.TRAIN.NESTEROV = False
_C.TRAIN.GAMMA1 = 0.99
_C.TRAIN.GAMMA2 = 0.0
_C.TRAIN.BEGIN_EPOCH = 0
_C.TRAIN.END_EPOCH = 140
_C.TRAIN.RESUME = False
_C.TRAIN.CHECKPOINT = ""
_C.TRAIN.BATCH_SIZE_PER_GPU = 32
_C.TRAIN.SHUFFLE = True

_C.TEST = CN()
_C.TEST.BATCH_SIZE_PER_GPU = 32
_C.TEST.FLIP_TEST = False
_C.TEST.POST_PROCESS = False
_C.TEST.SHIFT_HEATMAP = False
_C.TEST.USE_GT_BBOX = False
_C.TEST.IMAGE_THRE = 0.1
_C.TEST.NMS_THRE = 0.6
_C.TEST.SOFT_NMS = False
_C.TEST.OKS_THRE = 0.5
_C.TEST.IN_VIS_THRE = 0.0
_C.TEST.COCO_BBOX_FILE = ""
_C.TEST.BBOX_THRE = 1.0
_C.TEST.MODEL_FILE = ""

_C.DEBUG = CN()
_C.DEBUG.DEBUG = False
_C.DEBUG.SAVE_BATCH_IMAGES_GT = False
_C.DEBUG.SAVE_BATCH_IMAGES_PRED = False
_C.DEBUG.SAVE_HEATMAPS_GT = False
_C.DEBUG.SAVE_HEATMAPS_PRED = False

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CFG = os.path.join(HERE, "experiments", "veri", "hrnet", "w32_256x256_adam_lr1e-3.yaml")


def get_default():
    return _C.clone()


# (key, lower bound, strict): the numeric config values a run depends on, checked before anything is read
NUMERIC_KEYS = (("TRAIN.LR", 0, True), ("TRAIN.LR_FACTOR", 0, True), ("TRAIN.BATCH_SIZE_PER_GPU", 1, False),
                ("TEST.BATCH_SIZE_PER_GPU", 1, False), ("TRAIN.BEGIN_EPOCH", 0, False), ("TRAIN.END_EPOCH", 1, False),
                ("WORKERS", 0, False), ("PRINT_FREQ", 1, False), ("MODEL.SIGMA", 0, True),
                ("TRAIN.MOMENTUM", 0, False), ("TRAIN.WD", 0, False), ("DATASET.SCALE_FACTOR", 0, False),
                ("DATASET.ROT_FACTOR", 0, False))


def check_numbers(cfg):
    """One line naming the key and the allowed range for a config value out of range."""
    def get(key):
        node = cfg
        for part in key.split("."):
            node = node[part]
        return node

    for key, lo, strict in NUMERIC_KEYS:
        value = get(key)
        bad = not isinstance(value, (int, float)) or isinstance(value, bool) or value != value or \
            (value <= lo if strict else value < lo)
        if bad:
            raise UserError(f"{key} = {value!r}: expected a number {'>' if strict else '>='} {lo}")
    if any(not isinstance(m, int) or m < 1 for m in cfg.TRAIN.LR_STEP):
        raise UserError(f"TRAIN.LR_STEP = {list(cfg.TRAIN.LR_STEP)}: expected epochs >= 1")
    for key in ("MODEL.IMAGE_SIZE", "MODEL.HEATMAP_SIZE"):
        value = list(get(key))
        if len(value) != 2 or any(not isinstance(v, int) or v < 1 for v in value):
            raise UserError(f"{key} = {value}: expected [width, height], positive integers")


def load_config(cfg_file=None, opts=None, data_dir=None):
    """Defaults <- yaml file <- command-line KEY VALUE pairs <- --data_dir. Bad files or keys
    are user errors (one line)."""
    cfg = _C.clone()
    cfg.defrost()
    cfg_file = cfg_file or DEFAULT_CFG
    if not os.path.isfile(cfg_file):
        raise UserError(f"config file not found: {cfg_file}")
    if os.path.splitext(cfg_file)[1].lower() not in (".yaml", ".yml"):
        # yacs would execute a .py config: configs are data, YAML only
        raise UserError(f"config {cfg_file}: configs are YAML files (.yaml/.yml); other files are not read "
                        "(a .py config would run code)")
    try:
        cfg.merge_from_file(cfg_file)
    except Exception as exc:  # yacs raises KeyError/ValueError/yaml errors
        raise UserError(f"bad config file {cfg_file}: {exc}".splitlines()[0]) from None
    if opts:
        if len(opts) % 2:
            raise UserError(f"config overrides must be KEY VALUE pairs, got {' '.join(opts)}")
        try:
            cfg.merge_from_list(list(opts))
        except Exception as exc:
            raise UserError(f"bad config override {' '.join(opts)}: {exc}".splitlines()[0]) from None
    if data_dir:
        cfg.DATASET.ROOT = data_dir
    if cfg.MODEL.NUM_JOINTS != 36:
        raise UserError(f"MODEL.NUM_JOINTS must be 36 for VeRi vehicle keypoints, got {cfg.MODEL.NUM_JOINTS}")
    check_numbers(cfg)
    iw, ih = cfg.MODEL.IMAGE_SIZE
    hw, hh = cfg.MODEL.HEATMAP_SIZE
    if iw != 4 * hw or ih != 4 * hh:
        raise UserError(f"MODEL.HEATMAP_SIZE {list(cfg.MODEL.HEATMAP_SIZE)} must be MODEL.IMAGE_SIZE/4 "
                        f"({iw // 4}, {ih // 4}) for pose_hrnet")
    cfg.freeze()
    return cfg


def cfg_name(cfg_file) -> str:
    return os.path.splitext(os.path.basename(cfg_file or DEFAULT_CFG))[0]


def load_train_config(args):
    """The training config: load_config, then the MindSpore card's flags and ours over the yaml
    (--pre_trained/--pre_ckpt_path, --workers, --epochs, --output_dir); missing ImageNet weights are
    refused here, before any data is read."""
    cfg = load_config(args.cfg, list(args.opts), args.data_dir or None)
    cfg.defrost()
    if args.pre_trained is not None:
        cfg.MODEL.INIT_WEIGHTS = args.pre_trained
    if args.pre_ckpt_path is not None:
        cfg.MODEL.PRETRAINED = args.pre_ckpt_path
        if args.pre_trained is None:
            cfg.MODEL.INIT_WEIGHTS = True
    if args.workers is not None:
        cfg.WORKERS = args.workers
    if args.epochs is not None:
        cfg.TRAIN.END_EPOCH = args.epochs
    if args.output_dir is not None:
        cfg.OUTPUT_DIR = args.output_dir
    cfg.freeze()
    if cfg.MODEL.INIT_WEIGHTS and cfg.MODEL.PRETRAINED and not os.path.isfile(cfg.MODEL.PRETRAINED):
        raise UserError(f"pretrained HRNet weights not found: {cfg.MODEL.PRETRAINED} (MODEL.PRETRAINED / "
                        "--pre_ckpt_path; --pre_trained False starts from random init)")
    return cfg
